#!/usr/bin/env bash
# Side-by-side speed of GGVK0 and the in-tree Vulkan0 (ggml-vulkan) from the same pinned llama.cpp build, in one
# process per measurement, on the same model files: llama-bench (prompts of 2,048 tokens in one ubatch and of 512,
# token generation, flash attention off and on) and test-backend-ops perf (MUL_MAT mat-vec and prompt-size products, single-token
# FLASH_ATTN_EXT). Prints a table of ggvk / ggml-vulkan ratios last and writes the raw results (llama-bench's JSON
# lines, test-backend-ops' logs) to OUTDIR.
#
#   bash scripts/bench-vs-vulkan.sh BIN LIB OUTDIR [--quick]
#     BIN     bin directory of the pinned llama.cpp built with ggml-vulkan (scripts/reference-llama-vulkan.sh)
#     LIB     libggvk.so
#     OUTDIR  models (random 7B Llama-2-shaped GGUFs: Q4_0, and Q4_K with a Q6_K output matrix, written by
#             scripts/make_tiny_llama.py --fast when absent; gqa-TYPE: 8B Llama-3-shaped, 8 KV heads for 32 Q
#             heads and a 128,256-token vocabulary), results and logs
#     --quick one repetition, no depth runs
# Environment: BENCH_MODELS="q4_0 q4_k" (which models; e.g. "q4_0 q4_k gqa-q4_k"), BENCH_DEPTH=8192 (tg128 at that
# depth, fa on; 0 = skip), BENCH_REPS=5.
#
# The first repetitions of whichever backend runs first in a process can run at a third of the speed of the
# others, llama-bench's warm-up run included (NOTES.md, 2026-12-06), so each process runs Vulkan0's tests once
# unrecorded before the measured Vulkan0 and GGVK0 passes, and the ratios are of medians over the repetitions
# (llama-bench's samples_ts) rather than of its means.
set -euo pipefail
BIN=$1 LIB=$2 OUT=$3
QUICK=${4:-}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$OUT"
REPS=${BENCH_REPS:-5}
DEPTH=${BENCH_DEPTH:-8192}
if [ "$QUICK" = --quick ]; then REPS=1; DEPTH=0; fi
export GGML_BACKEND_PATH="$LIB"

for t in ${BENCH_MODELS:-q4_0 q4_k}; do
  ty=${t#gqa-}
  if [ "$ty" = "$t" ]; then
    m="$OUT/rand-7b-$t.gguf" shape=(--vocab 32000 --ff 11008 --kv-heads 32)
  else
    m="$OUT/rand-8b-$t.gguf" shape=(--vocab 128256 --ff 14336 --kv-heads 8)
  fi
  if [ ! -f "$m" ]; then
    extra=()
    [ "$ty" = q4_k ] && extra=(--output-type q6_k)
    python3 "$HERE/make_tiny_llama.py" "$m" --fast --type "$ty" "${extra[@]}" "${shape[@]}" --embd 4096 \
      --heads 32 --layers 32 --ctx 16384 >&2
  fi
  "$BIN/llama-bench" -m "$m" -dev Vulkan0,Vulkan0,GGVK0 -ngl 99 -p 2048,512 -ub 2048 -n 128 -fa 0,1 -r "$REPS" -o jsonl \
    >"$OUT/llama-bench-$t.jsonl" 2>"$OUT/llama-bench-$t.log"
  if [ "$DEPTH" != 0 ]; then
    "$BIN/llama-bench" -m "$m" -dev Vulkan0,Vulkan0,GGVK0 -ngl 99 -p 0 -n 128 -d "$DEPTH" -fa 1 -r "$REPS" -o jsonl \
      >"$OUT/llama-bench-$t-depth.jsonl" 2>"$OUT/llama-bench-$t-depth.log"
  fi
done

perf() { # $1 tag, $2 op, $3 parameter regex
  for be in Vulkan0 GGVK0; do
    "$BIN/test-backend-ops" perf -b "$be" -o "$2" -p "$3" >"$OUT/perf-$1-$be.txt" 2>&1 || true
  done
}
perf mm MUL_MAT 'type_a=(f16|bf16|q4_0|q8_0|q4_K|q5_K|q6_K),type_b=f32,m=4096,n=(1|512),k=14336,'
# One column for every other weight type (the integer-dot, 16-byte and generic dequantizing mat-vec kernels).
MV_TYPES='q4_1|q5_0|q5_1|iq4_nl|mxfp4|nvfp4|q1_0|q2_0|q2_K|q3_K|iq4_xs|iq2_xxs|iq2_xs|iq2_s|iq3_xxs|iq3_s|iq1_s|iq1_m'
perf mv MUL_MAT "type_a=($MV_TYPES|tq1_0|tq2_0),type_b=f32,m=4096,n=1,k=14336,"
perf fa FLASH_ATTN_EXT 'kv=(4096|7680|16384),nb=1,'

python3 - "$OUT" <<'PY'
import glob, json, os, re, statistics, sys
out = sys.argv[1]


def rate(r):
    # Median of the repetitions' t/s where llama-bench lists them, else its mean.
    samples = [float(x) for x in r.get("samples_ts") or []]
    return statistics.median(samples) if samples else float(r["avg_ts"])


rows = []
for f in sorted(glob.glob(os.path.join(out, "llama-bench-*.jsonl"))):
    with open(f) as fh:
        recs = [json.loads(line) for line in fh if line.strip().startswith("{")]
    for r in recs:
        r["_file"] = os.path.basename(f)
    by = {}
    for r in recs:
        key = (r["_file"], str(r["n_prompt"]), str(r["n_gen"]), str(r.get("n_depth", 0)), str(r["flash_attn"]))
        # A device's later pass replaces its warm-up pass.
        by.setdefault(key, {})[r["devices"]] = rate(r)
    for (fname, npp, ng, depth, fa), d in sorted(by.items()):
        test = f"pp{npp}" if npp != "0" else f"tg{ng}"
        if depth not in ("0", ""):
            test += f" @ d{depth}"
        v, g = d.get("Vulkan0"), d.get("GGVK0")
        name = fname.replace("llama-bench-", "").replace(".jsonl", "")
        rows.append((name, test, "fa " + ("on" if fa in ("1", "true", "True") else "off"), v, g))
print()
print(f"{'model':<14} {'test (median)':<14} {'fa':<7} {'ggml-vulkan t/s':>16} {'ggvk t/s':>10} {'ratio':>7}")
for name, test, fa, v, g in rows:
    ratio = f"{g / v:.2f}" if v and g else "-"
    print(f"{name:<14} {test:<14} {fa:<7} {v or 0:>16.1f} {g or 0:>10.1f} {ratio:>7}")
pat = re.compile(r"^\s*(\S+\(.*\)):\s+\d+ runs -\s+([\d.]+) us/run")
for tag in ("mm", "mv", "fa"):
    res = {}
    for be in ("Vulkan0", "GGVK0"):
        try:
            for line in open(os.path.join(out, f"perf-{tag}-{be}.txt")):
                m = pat.match(line)
                if m:
                    res.setdefault(m.group(1), {})[be] = float(m.group(2))
        except FileNotFoundError:
            pass
    print()
    print(f"{'test-backend-ops perf (us/run)':<100} {'vulkan':>9} {'ggvk':>9} {'ggvk/vk':>8}")
    for case, d in res.items():
        v, g = d.get("Vulkan0"), d.get("GGVK0")
        ratio = f"{g / v:.2f}" if v and g else "-"
        short = case.replace("type_b=f32,", "").replace(",bs=[1,1],nr=[1,1],per=[0,1,2,3],k_v=0,o=1", "")
        print(f"{short[:100]:<100} {v or 0:>9.1f} {g or 0:>9.1f} {ratio:>8}")
PY
