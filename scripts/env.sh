# Sourced by the scripts: where builds and caches live (outside the clone, reused across runs).
GGVK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GGVK_ROOT
export GGVK_CACHE="${GGVK_CACHE:-$HOME/.cache/ggvk}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$GGVK_CACHE/target}"
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$GGVK_CACHE/mesa-shader-cache}"
export PATH="$GGVK_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"
export GGVK_LIB="$CARGO_TARGET_DIR/release/libggvk.so"
mkdir -p "$GGVK_CACHE"
