#!/usr/bin/env bash
# Fuzzing (cargo fuzz, libFuzzer + AddressSanitizer) of the C API call sequences (c_api), engine graphs over real
# device memory (engine_graph: bad offsets, strides, shapes, NaN/Inf data; kernels must not write outside their
# destination) and the ggml graph translation with its support checks (ggml_translate).
#   scripts/fuzz.sh [seconds per target, default 40] [targets...]
# The committed corpus (fuzz/corpus/<target>) seeds each run; new inputs go to $GGVK_CACHE/fuzz-corpus/<target>,
# crashes to fuzz/artifacts/<target>/ (the run fails). The fuzz build has its own target directory and no shaderc:
# it embeds the SPIR-V of the normal release build (run `cargo build --release` first).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$GGVK_ROOT"
secs=${1:-40}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(ggml_translate engine_graph c_api)
export PATH="$GGVK_CACHE/tools/bin:$PATH"
out=$(ls -td "${CARGO_TARGET_DIR:-$GGVK_ROOT/target}"/release/build/ggvk-*/out 2>/dev/null | while read -r d; do
  [ -f "$d/shaders.rs" ] && [ -n "$(ls "$d"/*.spv 2>/dev/null)" ] && echo "$d" && break; done || true)
if [ -z "$out" ]; then echo "fuzz: no SPIR-V from a release build found; run cargo build --release first"; exit 1; fi
export GGVK_SPIRV_DIR="$out"
export CARGO_TARGET_DIR="$GGVK_CACHE/target-fuzz"
(cd fuzz && cargo +nightly fuzz build --release)
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
export LSAN_OPTIONS="suppressions=$GGVK_ROOT/fuzz/lsan.supp"
total=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$t" "$GGVK_CACHE/fuzz-corpus/$t"
  log="$GGVK_CACHE/fuzz-$t.log"
  "$bin/$t" "$GGVK_CACHE/fuzz-corpus/$t" "fuzz/corpus/$t" -max_total_time="$secs" -max_len=512 -timeout=30 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || { tail -n 40 "$log"; echo "fuzz: $t failed"; exit 1; }
  n=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | awk '{print $2}')
  echo "fuzz: $t: $n executions in $secs s, no crash"
  total=$((total + n))
done
echo "fuzz: $total executions in total"
