#!/usr/bin/env bash
# ggvk loaded by ggml_backend_load into a process where ggml was opened RTLD_LOCAL (Python's ctypes default, as
# llama-cpp-python opens libllama/libggml): ggml's functions are not in the global scope, and ggvk must find them in
# the loaded libggml-base. tests/e2e/rtld_local.c (a C host that dlopens the pinned libggml.so RTLD_LOCAL, computes
# mul_mat + add on GGVK0 and checks the numbers) and tests/e2e/rtld_local.py (the same through ctypes: a GGVK0
# buffer); the C host also checks that ggvk's diagnostics reach its ggml_log_set callback. Validation layer on. Uses the installed library when given (scripts/rtld-local.sh [libggvk.so]).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
LIB=${1:-$GGVK_LIB}
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
SRC=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" --source-only | tail -n 1)
OUT="$GGVK_CACHE/rtld-local"
rm -rf "$OUT"; mkdir -p "$OUT"
# No -lggml: the program opens ggml itself, RTLD_LOCAL.
cc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$SRC/ggml/include" "$GGVK_ROOT/tests/e2e/rtld_local.c" -ldl -lm \
  -o "$OUT/rtld_local"
export VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation
pass=0
run() {  # name, command...
  local name=$1; shift
  if "$@" >"$OUT/$name.log" 2>&1 && ! grep -aq "GGVK VALIDATION ERROR\|Validation Error" "$OUT/$name.log"; then
    grep -a "^rtld_local" "$OUT/$name.log"; pass=$((pass + 1))
  else
    tail -n 20 "$OUT/$name.log"; echo "rtld-local: $name failed"; exit 1
  fi
}
# ggvk's diagnostics through ggml's logger: the host's ggml_log_set callback must see the reason for a declined op
# (GGVK_DEBUG_SUPPORT) and the warning about an unknown GGVK_* variable.
run c env GGVK_DEBUG_SUPPORT=1 GGVK_NOT_A_SETTING=1 "$OUT/rtld_local" "$BIN/libggml.so" "$LIB"
run python python3 "$GGVK_ROOT/tests/e2e/rtld_local.py" "$BIN/libggml.so" "$LIB"
echo "rtld-local: $pass passed"
