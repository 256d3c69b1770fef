#!/usr/bin/env bash
# The prompt-kernel and host-wait switches that are off by default until a GPU run decides them, measured and checked
# side by side on one GPU (NOTES.md, 2026-12-07): for each setting its registers (driver statistics), its speed next
# to the default's and ggml-vulkan's, and the conformance cases of the kernel it changes.
#
#   bash scripts/measure-switches.sh BIN LIB GGVK OUTDIR
#     BIN     bin directory of the pinned llama.cpp built with ggml-vulkan (scripts/reference-llama-vulkan.sh)
#     LIB     libggvk.so
#     GGVK    the `ggvk` command-line tool (its `bench --resident` times one product with GPU timestamps)
#     OUTDIR  the random 7B Q4_0 model (made by scripts/make_tiny_llama.py --fast when absent) and the logs
#
# Sections (each prints one line per setting):
#   A  mul_mat_cm16.comp's k loop (GGVK_CM16_LOOP 0/1/2) and k step (GGVK_CM16_BK 64/32): registers, time at
#      4096 x 4096 x 2048 and 11008 x 4096 x 2048 (F16 weights), the CPU check of three columns; BEST = fastest
#   B  flash_attn_cm2.comp's per-tile variants (GGVK_FA_CM2_VARIANT 0 / 7 / 15) next to ggml-vulkan: time and
#      registers, 4,096 queries, 8 heads (and 8 x 4 GQA), 4,096 / 8,192 keys
#   C  each variant through the prompt-sized FLASH_ATTN_EXT cases (head sizes 64-256, 32 and 75 rows, F16 / Q8_0 /
#      Q4_0 K); single bits where neither 7 nor 15 passes. FBEST = the fastest passing of 7 and 15, else 0
#   D  every MUL_MAT case with BEST; every FLASH_ATTN_EXT case with FBEST (both with the validation layer when
#      VK_INSTANCE_LAYERS names it)
#   E  pp2048 / pp512 with flash attention: ggml-vulkan, ggvk's defaults, ggvk with BEST and FBEST
#   T  tg128 with flash attention, waits blocking (GGVK_WAIT_POLL_US=0) and polling (200), alternated
set -uo pipefail
BIN=$1 LIB=$2 GGVK=$3 OUT=$4
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$OUT"
export GGML_BACKEND_PATH="$LIB" LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
MODEL="$OUT/rand-7b-q4_0.gguf"
if [ ! -f "$MODEL" ]; then
  python3 "$HERE/make_tiny_llama.py" "$MODEL" --fast --type q4_0 --vocab 32000 --ff 11008 --kv-heads 32 --embd 4096 \
    --heads 32 --layers 32 --ctx 16384 >"$OUT/model.log" 2>&1 &
fi
MODEL_PID=$!
section() { echo "=== $(date -u +%H:%M:%S) $*"; }
# Median tokens/s of each llama-bench JSON line on stdin, on one line.
MEDIANS_PY=$(cat <<'PY'
import json, statistics, sys
out = []
for line in sys.stdin:
    if line.startswith("{"):
        r = json.loads(line)
        s = [float(x) for x in r.get("samples_ts") or []]
        v = statistics.median(s) if s else float(r["avg_ts"])
        out.append(f"p={r['n_prompt']} n={r['n_gen']}: {v:.1f}")
print("; ".join(out))
PY
)
medians() { python3 -c "$MEDIANS_PY"; }
passed() { grep -aoE '[0-9]+/[0-9]+ tests passed' "$1" | tail -1; }
fails() { grep -ac FAIL "$1"; }

section "A: mul_mat_cm16.comp k loop : k step"
COMBOS="0:64 1:64 2:64 0:32 1:32"
for c in $COMBOS; do
  GGVK_CM16_LOOP=${c%:*} GGVK_CM16_BK=${c#*:} GGVK_PIPELINE_STATS=1 "$GGVK" bench --type f16 --m 4096 --k 4096 \
    --n 2048 --resident --seconds 0.1 2>&1 | grep -m1 "pipeline mul_mat_cm16 " | cut -c1-240 | sed "s/^/$c /"
done
for shape in "4096 4096 2048" "11008 4096 2048"; do
  set -- $shape
  for c in $COMBOS; do
    r=$(GGVK_CM16_LOOP=${c%:*} GGVK_CM16_BK=${c#*:} "$GGVK" bench --type f16 --m "$1" --k "$2" --n "$3" --resident \
      --seconds 0.3 2>&1 | grep -E "worst|median|rror|FAIL" | tr '\n' ' ')
    echo "m=$1 k=$2 n=$3 $c: $r"
  done
done | tee "$OUT/cm16.txt"
BEST=$(python3 - "$OUT/cm16.txt" <<'PY'
import collections, re, sys
t, n = collections.defaultdict(float), collections.Counter()
for l in open(sys.argv[1]):
    m = re.match(r"m=\d+ k=\d+ n=\d+ (\d:\d+): .*median\s+([\d.]+)", l)
    if m and "FAIL" not in l:
        t[m.group(1)] += float(m.group(2)); n[m.group(1)] += 1
t = {k: v for k, v in t.items() if n[k] == max(n.values())}
print(min(t, key=t.get) if t else "0:64")
PY
)
echo "BEST (fastest k loop : k step) = $BEST"

section "B: prompt attention variants"
P='hsk=128,hsv=128,nh=8,nr23=\[(1|4),1\],kv=(4096|8192),nb=4096'
"$BIN/test-backend-ops" perf -b Vulkan0 -o FLASH_ATTN_EXT -p "$P" 2>&1 | grep "us/run" | sed 's/^/ggml-vulkan /'
for v in 0 7 15; do
  GGVK_FA_CM2_VARIANT=$v GGVK_PIPELINE_STATS=1 "$BIN/test-backend-ops" perf -b GGVK0 -o FLASH_ATTN_EXT -p "$P" \
    >"$OUT/fa-perf-$v.txt" 2>&1
  grep "us/run" "$OUT/fa-perf-$v.txt" | sed "s/^/variant $v /"
  grep -am1 "pipeline flash_attn_cm2_d128" "$OUT/fa-perf-$v.txt" | cut -c1-240
done

section "C: prompt attention variants, prompt-sized FLASH_ATTN_EXT cases"
F='hsk=(64|80|128|256),.*nb=(32|75),.*type_K=(f16|q8_0|q4_0),'
PASS=""
for v in 15 7 1 2 4 8; do
  if [ -n "$PASS" ] && [ "$v" -lt 7 ]; then break; fi
  GGVK_FA_CM2_VARIANT=$v "$BIN/test-backend-ops" test -b GGVK0 -o FLASH_ATTN_EXT -p "$F" >"$OUT/fa-test-$v.txt" 2>&1
  echo "variant $v: $(passed "$OUT/fa-test-$v.txt"), $(fails "$OUT/fa-test-$v.txt") FAIL"
  if [ "$(fails "$OUT/fa-test-$v.txt")" = 0 ] && [ -n "$(passed "$OUT/fa-test-$v.txt")" ]; then PASS="$PASS $v"; fi
done
FBEST=$(python3 - "$OUT" $PASS <<'PY'
import re, sys
def total(v):
    return sum(float(m.group(1)) for l in open(f"{sys.argv[1]}/fa-perf-{v}.txt", errors="replace")
               for m in [re.search(r"([\d.]+) us/run", l)] if m)
cands = [v for v in sys.argv[2:] if v in ("7", "15") and 0 < total(v) < total(0)]
print(min(cands, key=total) if cands else "0")
PY
)
echo "FBEST (fastest passing variant) = $FBEST"

section "D: every MUL_MAT case with $BEST, every FLASH_ATTN_EXT case with variant $FBEST"
GGVK_CM16_LOOP=${BEST%:*} GGVK_CM16_BK=${BEST#*:} "$BIN/test-backend-ops" test -b GGVK0 -o MUL_MAT >"$OUT/mm-test.txt" 2>&1
echo "MUL_MAT: $(passed "$OUT/mm-test.txt"), $(fails "$OUT/mm-test.txt") FAIL"
GGVK_FA_CM2_VARIANT=$FBEST "$BIN/test-backend-ops" test -b GGVK0 -o FLASH_ATTN_EXT >"$OUT/fa-test-all.txt" 2>&1
echo "FLASH_ATTN_EXT: $(passed "$OUT/fa-test-all.txt"), $(fails "$OUT/fa-test-all.txt") FAIL"

wait "$MODEL_PID" 2>/dev/null
section "E: pp2048 / pp512, flash attention on"
bench() { "$BIN/llama-bench" -m "$MODEL" -ngl 99 -fa 1 -o jsonl "$@" 2>/dev/null | medians; }
# ggml-vulkan twice in one process: the first pass warms it up (scripts/bench-vs-vulkan.sh says why); read the second.
echo "ggml-vulkan (warm-up pass, then measured): $(bench -dev Vulkan0,Vulkan0 -p 2048,512 -ub 2048 -n 0 -r 3)"
echo "ggvk defaults: $(bench -dev GGVK0 -p 2048,512 -ub 2048 -n 0 -r 3)"
echo "ggvk $BEST, variant $FBEST: $(GGVK_CM16_LOOP=${BEST%:*} GGVK_CM16_BK=${BEST#*:} GGVK_FA_CM2_VARIANT=$FBEST \
  bench -dev GGVK0 -p 2048,512 -ub 2048 -n 0 -r 3)"

section "T: tg128, flash attention on, waits blocking / polling"
for p in 0 200 0 200; do
  echo "GGVK_WAIT_POLL_US=$p: $(GGVK_WAIT_POLL_US=$p bench -dev GGVK0 -p 0 -n 128 -r 3)"
done
