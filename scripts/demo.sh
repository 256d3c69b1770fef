#!/usr/bin/env bash
# The main job: install what is missing, build, describe the Vulkan devices, and run the mat-vec benchmark
# (Q4_0 m=4096 k=14336, weights streamed from a >= 256 MiB set) on the default device, next to the CPU
# reference. Extra arguments go to `ggvk bench` (e.g. --device 1, --resident, --type q8_0).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$GGVK_ROOT/scripts/setup.sh"
cd "$GGVK_ROOT"
cargo build --release --bin ggvk
"$CARGO_TARGET_DIR/release/ggvk" info
"$CARGO_TARGET_DIR/release/ggvk" bench "$@"
