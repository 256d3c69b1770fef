#!/usr/bin/env bash
# On a machine with a GPU, from an unpacked scripts/bundle.sh bundle: llama.cpp's conformance suite on GGVK0
# (test-backend-ops mode test against the CPU backend, validation layer on where it is installed), support counts of
# GGVK0 and Vulkan0, and the side-by-side benchmark (scripts/bench-vs-vulkan.sh).
#   bash scripts/gpu-suite.sh BUNDLE OUTDIR STEP...
#     STEP: test[=OPS]   mode test over OPS (comma-separated; default every op), "-p" pattern from GGVK_SUITE_PATTERN
#           support      test-backend-ops support -b GGVK0 and -b Vulkan0 (CSV) and their counts
#           bench        scripts/bench-vs-vulkan.sh (BENCH_* variables pass through)
#           quickbench   the same with --quick
# Prints one summary line per step last.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B=$1 OUT=$2; shift 2
BIN="$B/bin" LIB="$B/lib/libggvk.so"
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$OUT"
summary=()
for step in "$@"; do
  case $step in
    test*)
      ops=${step#test}; ops=${ops#=}
      args=(-b GGVK0 -j "$(nproc)")
      [ -n "$ops" ] && args+=(-o "$ops")
      [ -n "${GGVK_SUITE_PATTERN:-}" ] && args+=(-p "$GGVK_SUITE_PATTERN")
      log="$OUT/test${ops:+-${ops//,/_}}.log"
      layers=()
      # The layer where the loader finds it: the system directory or VK_ADD_LAYER_PATH / VK_LAYER_PATH (a newer
      # layer unpacked elsewhere: cooperative-matrix shaders need 1.3.255 or later).
      for dir in /usr/share/vulkan/explicit_layer.d ${VK_ADD_LAYER_PATH:+${VK_ADD_LAYER_PATH//:/ }} ${VK_LAYER_PATH:+${VK_LAYER_PATH//:/ }}; do
        [ -f "$dir/VkLayer_khronos_validation.json" ] && layers=(VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation)
      done
      start=$(date +%s)
      env "${layers[@]}" GGML_BACKEND_PATH="$LIB" "$BIN/test-backend-ops" test "${args[@]}" >"$log" 2>&1
      line=$(grep -aoE '[0-9]+/[0-9]+ tests passed' "$log" | tail -n 1)
      fails=$(grep -ac "FAIL" "$log")
      val=$(grep -ac "GGVK VALIDATION ERROR" "$log")
      uns=$(grep -ac "not supported" "$log")
      summary+=("test ${ops:-all}: ${line:-no result} ($fails FAIL lines, $uns unsupported, $val ggvk validation messages, ${layers[*]:-no validation layer}, $(($(date +%s) - start)) s)")
      grep -a "FAIL" "$log" | head -n 20
      ;;
    support)
      for be in GGVK0 Vulkan0; do
        GGML_BACKEND_PATH="$LIB" "$BIN/test-backend-ops" support -b "$be" --output csv >"$OUT/support-$be.csv" 2>"$OUT/support-$be.log"
        n=$(python3 - "$OUT/support-$be.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sup = [r for r in rows if r.get("supported") == "1"]
print(f"{len(sup)} of {len(rows)} cases over {len({r['op_name'] for r in sup})} ops")
PY
)
        summary+=("support $be: $n")
      done
      ;;
    bench) GGML_BACKEND_PATH="$LIB" bash "$HERE/bench-vs-vulkan.sh" "$BIN" "$LIB" "$OUT/bench" | tee "$OUT/bench.txt"
      summary+=("bench: $OUT/bench.txt") ;;
    quickbench) bash "$HERE/bench-vs-vulkan.sh" "$BIN" "$LIB" "$OUT/bench" --quick | tee "$OUT/bench.txt"
      summary+=("quickbench: $OUT/bench.txt") ;;
    *) echo "gpu-suite: unknown step $step" >&2; exit 2 ;;
  esac
done
echo
printf '%s\n' "${summary[@]}"
