#!/usr/bin/env bash
# Two GPUs of one machine, side by side: llama-bench from the pinned llama.cpp built with ggml-vulkan, in one
# process per model, splitting random-weight models over ggml-vulkan's Vulkan0/Vulkan1 and over GGVK0/GGVK1, by
# layers (`-sm layer`, flash attention off and on) and by tensor (`-sm tensor`, ggml's meta backend, flash
# attention on, which llama.cpp requires there), and GGVK0/GGVK1 by rows (`-sm row`, ggvk's split buffer type, flash
# attention off and on; its ratio is against ggml-vulkan's layer split, row `row/vkl`), next to one device of each.
# Prints a table of ggvk / ggml-vulkan ratios and writes the CSVs and logs to OUTDIR.
#
#   bash scripts/bench-multi-gpu.sh BIN LIB OUTDIR [--quick]
#     BIN     bin directory of the pinned llama.cpp built with ggml-vulkan (scripts/reference-llama-vulkan.sh)
#     LIB     libggvk.so
#     OUTDIR  models (random Llama-shaped GGUFs written by scripts/make_tiny_llama.py --fast when absent: 7B Q4_0,
#             7B Q4_K with a Q6_K output matrix, and a 70B-shaped Q4_0 cut to 40 layers), CSVs and logs
#     --quick one repetition, the 7B Q4_0 model only
# Environment: BENCH_MODELS="q4_0 q4_k 70b" (which models; `tiny`: a 4-layer tiny llama, to try the script on
# lavapipe), BENCH_REPS=3.
set -euo pipefail
BIN=$1 LIB=$2 OUT=$3
QUICK=${4:-}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$OUT"
REPS=${BENCH_REPS:-3}
MODELS=${BENCH_MODELS:-q4_0 q4_k 70b}
if [ "$QUICK" = --quick ]; then REPS=1; MODELS=q4_0; fi
export GGML_BACKEND_PATH="$LIB"

for t in $MODELS; do
  case $t in
    tiny) m="$OUT/tiny-q4_0-4l.gguf"; shape=(--type q4_0 --layers 4) ;;
    70b) m="$OUT/rand-70b-40l-q4_0.gguf"
         shape=(--type q4_0 --vocab 32000 --embd 8192 --ff 28672 --heads 64 --kv-heads 8 --layers 40 --ctx 4096) ;;
    q4_k) m="$OUT/rand-7b-q4_k.gguf"
         shape=(--type q4_k --output-type q6_k --vocab 32000 --embd 4096 --ff 11008 --heads 32 --kv-heads 32
                --layers 32 --ctx 16384) ;;
    *)   m="$OUT/rand-7b-$t.gguf"
         shape=(--type "$t" --vocab 32000 --embd 4096 --ff 11008 --heads 32 --kv-heads 32 --layers 32 --ctx 16384) ;;
  esac
  [ -f "$m" ] || python3 "$HERE/make_tiny_llama.py" "$m" --fast "${shape[@]}" >&2
  # One process per split mode and model: both libraries' runs in it, so their ratio is from one run.
  "$BIN/llama-bench" -m "$m" -dev Vulkan0,GGVK0,Vulkan0/Vulkan1,GGVK0/GGVK1 -sm layer -ngl 99 -p 512 -n 128 \
    -fa 0,1 -r "$REPS" -o csv >"$OUT/mgpu-$t-layer.csv" 2>"$OUT/mgpu-$t-layer.log" || true
  "$BIN/llama-bench" -m "$m" -dev Vulkan0/Vulkan1,GGVK0/GGVK1 -sm tensor -ngl 99 -p 512 -n 128 -fa 1 \
    -r "$REPS" -o csv >"$OUT/mgpu-$t-tensor.csv" 2>"$OUT/mgpu-$t-tensor.log" || true
  # Row split: ggvk's split buffer type (ggml-vulkan has none); compared with ggml-vulkan's layer split below.
  "$BIN/llama-bench" -m "$m" -dev GGVK0/GGVK1 -sm row -ngl 99 -p 512 -n 128 -fa 0,1 \
    -r "$REPS" -o csv >"$OUT/mgpu-$t-row.csv" 2>"$OUT/mgpu-$t-row.log" || true
done

python3 - "$OUT" <<'PY'
import csv, glob, os, sys
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "mgpu-*.csv"))):
    model = os.path.basename(f)[len("mgpu-"):].rsplit("-", 1)[0]
    with open(f) as fh:
        for r in csv.DictReader(fh):
            if not r.get("devices") or not r.get("avg_ts"):
                continue  # a run that failed (its log says why)
            devs = r["devices"].split("/")
            lib = "ggvk" if devs[0].startswith("GGVK") else "vulkan"
            split = r["split_mode"] if len(devs) > 1 else "one GPU"
            test = f"pp{r['n_prompt']}" if r["n_prompt"] != "0" else f"tg{r['n_gen']}"
            fa = "on" if r["flash_attn"] in ("1", "true") else "off"
            rows.setdefault((model, split, fa, test), {})[lib] = float(r["avg_ts"])
print(f"{'model':<14} {'split':<8} {'fa':<4} {'test':<7} {'ggml-vulkan t/s':>16} {'ggvk t/s':>10} {'ratio':>7}")
for (model, split, fa, test), d in sorted(rows.items()):
    v, g = d.get("vulkan"), d.get("ggvk")
    if split == "row":
        # ggml-vulkan has no row split: the ratio is against its layer split.
        v = rows.get((model, "layer", fa, test), {}).get("vulkan")
        split = "row/vkl"
    ratio = f"{g / v:.2f}" if v and g else "-"
    print(f"{model:<14} {split:<8} {fa:<4} {test:<7} {v or 0:>16.1f} {g or 0:>10.1f} {ratio:>7}")
PY
