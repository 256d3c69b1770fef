#!/usr/bin/env bash
# Two GGVK devices in one process: llama-completion splits a tiny random-weight llama by layers over GGVK0 and
# GGVK1 (`--device GGVK0,GGVK1 -sm layer -ts 1,1 -ngl 99`; llama.cpp's scheduler copies the activations between
# them) and must give exactly the greedy tokens of the same model on GGVK0 alone (32 tokens, flash attention on
# and off). The log must show layers on both devices. A longer prompt in batches of 4 tokens (`-ub 4`) runs the same
# split with pipeline parallelism (llama.cpp's scheduler gives one device the next batch while the other works on
# the last, ordered by ggvk's events) and must give GGVK0's tokens too. Tensor parallelism (`-sm tensor`, ggml's meta backend: each
# weight matrix split over both devices, the partial sums reduced by ggvk's allreduce, src/ggml/comm.rs, and with
# `GGVK_ALLREDUCE=0` by ggml's generic one; llama.cpp requires flash attention for it) must give GGVK0's tokens too.
# Row split (`-sm row`: ggvk's split buffer type, each weight matrix's rows over both devices, the partial products
# gathered on the main device) must give GGVK0's tokens too. Vulkan validation layer on.
# Where the loader lists one device (lavapipe on a machine without GPUs), a second lavapipe driver is made from a
# copy of its library with its own manifest (two drivers, two VkPhysicalDevices).
#   bash scripts/multi-gpu-e2e.sh [TYPES...]        (default: q4_0 f16)
# Logs in $GGVK_CACHE/multi-gpu-e2e.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
LIB="$CARGO_TARGET_DIR/release/libggvk.so"
[ -f "$LIB" ] || (cd "$GGVK_ROOT" && cargo build --release --lib)
OUTDIR="$GGVK_CACHE/multi-gpu-e2e"
rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"
TYPES=("$@"); [ ${#TYPES[@]} -gt 0 ] || TYPES=(q4_0 f16)
export GGML_BACKEND_PATH="$LIB"
export VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation

devices() { timeout 120 "$BIN/llama-completion" --list-devices 2>&1 | grep -cE '^ +GGVK[0-9]+:' || true; }
if [ "$(devices)" -lt 2 ]; then
  icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1)
  [ -n "$icd" ] || { echo "multi-gpu-e2e: one Vulkan device and no lavapipe manifest to make a second"; exit 1; }
  lib=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ICD"]["library_path"])' "$icd")
  mkdir -p "$OUTDIR/lvp2"
  cp "$lib" "$OUTDIR/lvp2/libvulkan_lvp_second.so"
  python3 - "$icd" "$OUTDIR/lvp2/lvp_second.json" "$OUTDIR/lvp2/libvulkan_lvp_second.so" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["ICD"]["library_path"] = sys.argv[3]
json.dump(m, open(sys.argv[2], "w"))
PY
  export VK_DRIVER_FILES="$icd:$OUTDIR/lvp2/lvp_second.json"
  echo "two lavapipe drivers: $VK_DRIVER_FILES"
fi
timeout 120 "$BIN/llama-completion" --list-devices 2>&1 | grep -E '^ +GGVK' | tee "$OUTDIR/devices.txt"
[ "$(grep -c . "$OUTDIR/devices.txt")" -ge 2 ] || { echo "multi-gpu-e2e: fewer than two GGVK devices"; exit 1; }

common=(-n 32 --temp 0 --top-k 1 --seed 1 -no-cnv -v -p "Once upon a time")
PROMPT_LONG="Once upon a time there was a little fox who lived by the river and every morning"
pass=0
fail=0
for ty in "${TYPES[@]}"; do
  model="$OUTDIR/tiny-llama-$ty-4l.gguf"
  python3 "$GGVK_ROOT/scripts/make_tiny_llama.py" "$model" --type "$ty" --layers 4 >/dev/null
  for fa in off on; do
    tag="$ty-fa$fa"
    timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0 -ngl 99 -fa $fa "${common[@]}" \
      >"$OUTDIR/one-$tag.txt" 2>"$OUTDIR/one-$tag.log" </dev/null
    timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0,GGVK1 -sm layer -ts 1,1 -ngl 99 -fa $fa \
      "${common[@]}" >"$OUTDIR/two-$tag.txt" 2>"$OUTDIR/two-$tag.log" </dev/null
    on0=$(grep -c "assigned to device GGVK0" "$OUTDIR/two-$tag.log" || true)
    on1=$(grep -c "assigned to device GGVK1" "$OUTDIR/two-$tag.log" || true)
    if [ "$on0" -eq 0 ] || [ "$on1" -eq 0 ]; then
      echo "FAIL $tag: layers on GGVK0 $on0, on GGVK1 $on1 (want both)"; fail=$((fail + 1))
    elif ! cmp -s "$OUTDIR/one-$tag.txt" "$OUTDIR/two-$tag.txt"; then
      echo "FAIL $tag: two devices generated other text than one"; diff "$OUTDIR/one-$tag.txt" "$OUTDIR/two-$tag.txt" || true
      fail=$((fail + 1))
    else
      echo "ok   $tag: layer placements on GGVK0 $on0 / GGVK1 $on1 (log lines), same $(wc -c <"$OUTDIR/two-$tag.txt") bytes of text as GGVK0 alone"
      pass=$((pass + 1))
    fi
  done
  # Pipeline parallelism: several batches in flight over the two devices.
  for fa in off on; do
    tag="$ty-pipeline-fa$fa"
    pipe=(-n 16 --temp 0 --top-k 1 --seed 1 -no-cnv -v -b 64 -ub 4 -fa $fa -p "$PROMPT_LONG")
    timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0 -ngl 99 "${pipe[@]}" \
      >"$OUTDIR/one-$tag.txt" 2>"$OUTDIR/one-$tag.log" </dev/null
    timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0,GGVK1 -sm layer -ngl 99 "${pipe[@]}" \
      >"$OUTDIR/two-$tag.txt" 2>"$OUTDIR/two-$tag.log" </dev/null
    if ! grep -q "pipeline parallelism enabled" "$OUTDIR/two-$tag.log"; then
      echo "FAIL $tag: llama.cpp did not enable pipeline parallelism"; fail=$((fail + 1))
    elif ! cmp -s "$OUTDIR/one-$tag.txt" "$OUTDIR/two-$tag.txt"; then
      echo "FAIL $tag: pipelined layer split generated other text than GGVK0 alone"
      diff "$OUTDIR/one-$tag.txt" "$OUTDIR/two-$tag.txt" || true; fail=$((fail + 1))
    else
      echo "ok   $tag: layer split, batches of 4 tokens pipelined, same $(wc -c <"$OUTDIR/two-$tag.txt") bytes of text as GGVK0 alone"
      pass=$((pass + 1))
    fi
  done
  # Tensor parallelism (flash attention on: llama.cpp refuses -sm tensor without it).
  # ggvk's allreduce and ggml's, an even split, and (ggvk's) an uneven one.
  # `1s`: ggvk's allreduce with staged (unmapped) buffers, as on discrete GPUs, where the devices' partials are
  # read with one wait for all (`GGVK_DIRECT_MAPPING=0`).
  for run in 1:1,1 0:1,1 1:3,1 1s:1,1; do
    ar=${run%%:*}; ts=${run#*:}; direct=1; suffix=
    if [ "$ar" = 1s ]; then ar=1; direct=0; suffix=-staged; fi
    tag="$ty-tensor-allreduce$ar-ts${ts/,/-}$suffix"
    GGVK_DIRECT_MAPPING=$direct GGVK_ALLREDUCE=$ar GGVK_TIMELINE=1 timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0,GGVK1 -sm tensor \
      -ts "$ts" -ngl 99 -fa on "${common[@]}" >"$OUTDIR/$tag.txt" 2>"$OUTDIR/$tag.log" </dev/null || true
    # The timeline's reports count the allreduces ggvk did per graph (0.0 when ggml's generic one ran).
    per=$(grep -aoE 'allreduces [0-9]+ us \([0-9.]+ per graph\)' "$OUTDIR/$tag.log" | tail -n 1 | grep -oE '\([0-9.]+' | tr -d '(')
    if ! grep -q "creating a Meta device with 2 devices" "$OUTDIR/$tag.log"; then
      echo "FAIL $tag: no meta device over GGVK0 and GGVK1"; tail -n 5 "$OUTDIR/$tag.log"; fail=$((fail + 1))
    elif [ -z "$per" ] || { [ "$ar" = 1 ] && [ "$per" = 0.0 ]; } || { [ "$ar" = 0 ] && [ "$per" != 0.0 ]; }; then
      echo "FAIL $tag: allreduces by ggvk per graph '${per:-no timeline report}' (want > 0 with GGVK_ALLREDUCE=1, 0 with 0)"
      fail=$((fail + 1))
    elif ! cmp -s "$OUTDIR/one-$ty-faon.txt" "$OUTDIR/$tag.txt"; then
      echo "FAIL $tag: tensor parallelism generated other text than GGVK0 alone"
      diff "$OUTDIR/one-$ty-faon.txt" "$OUTDIR/$tag.txt" || true; fail=$((fail + 1))
    else
      echo "ok   $tag: -sm tensor over GGVK0,GGVK1, ggvk allreduces per graph $per, same $(wc -c <"$OUTDIR/$tag.txt") bytes of text as GGVK0 alone"
      pass=$((pass + 1))
    fi
  done
  # A prompt of over 300 tokens in one batch: its activations (over 256 KiB) cross between the devices through host memory
  # both imported (VK_EXT_external_memory_host; `GGVK_HOST_IMPORT=0`: staging buffers and a host copy instead).
  long=(-n 16 --temp 0 --top-k 1 --seed 1 -no-cnv -v -b 512 -ub 512 -fa on -p "$(printf 'the quick brown fox jumps over the lazy dog %.0s' {1..9})")
  timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0 -ngl 99 "${long[@]}" >"$OUTDIR/one-$ty-long.txt" \
    2>"$OUTDIR/one-$ty-long.log" </dev/null
  for run in layer:1 layer:0 row:1 row:0; do
    sm=${run%%:*}; hi=${run#*:}
    tag="$ty-long-$sm-import$hi"
    GGVK_HOST_IMPORT=$hi timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0,GGVK1 -sm "$sm" -ngl 99 \
      "${long[@]}" >"$OUTDIR/$tag.txt" 2>"$OUTDIR/$tag.log" </dev/null || true
    if cmp -s "$OUTDIR/one-$ty-long.txt" "$OUTDIR/$tag.txt" && [ -s "$OUTDIR/$tag.txt" ]; then
      echo "ok   $tag: one batch of over 300 tokens, -sm $sm, GGVK_HOST_IMPORT=$hi, same text as GGVK0 alone"; pass=$((pass + 1))
    else
      echo "FAIL $tag: other text than GGVK0 alone"; tail -n 3 "$OUTDIR/$tag.log"; fail=$((fail + 1))
    fi
  done
  # Row split: every weight matrix's rows over both devices (GGVK's split buffer type), the partial products
  # gathered on the layer's main device; an even and an uneven share, flash attention off and on.
  for run in faoff:1,1 faon:1,1 faoff:3,1; do
    fa=${run%%:*}; fa=${fa#fa}; ts=${run#*:}
    tag="$ty-row-fa$fa-ts${ts/,/-}"
    timeout 600 "$BIN/llama-completion" -m "$model" --device GGVK0,GGVK1 -sm row -ts "$ts" -ngl 99 -fa $fa \
      "${common[@]}" >"$OUTDIR/$tag.txt" 2>"$OUTDIR/$tag.log" </dev/null || true
    if ! grep -q "GGVK0_Split: weight rows over GGVK0 [1-9][0-9]*%, GGVK1 [1-9][0-9]*%" "$OUTDIR/$tag.log"; then
      echo "FAIL $tag: no split buffer type with rows on both devices"; tail -n 5 "$OUTDIR/$tag.log"; fail=$((fail + 1))
    elif ! cmp -s "$OUTDIR/one-$ty-fa$fa.txt" "$OUTDIR/$tag.txt"; then
      echo "FAIL $tag: row split generated other text than GGVK0 alone"
      diff "$OUTDIR/one-$ty-fa$fa.txt" "$OUTDIR/$tag.txt" || true; fail=$((fail + 1))
    else
      echo "ok   $tag: -sm row over GGVK0,GGVK1, same $(wc -c <"$OUTDIR/$tag.txt") bytes of text as GGVK0 alone"
      pass=$((pass + 1))
    fi
  done
done
if grep -al "GGVK VALIDATION ERROR\|Validation Error" "$OUTDIR"/*.log; then
  echo "FAIL validation messages"; fail=$((fail + 1))
fi
echo "multi-gpu-e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
