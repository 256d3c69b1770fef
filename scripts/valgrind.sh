#!/usr/bin/env bash
# The C harness's API tests under valgrind memcheck: no invalid access, no use of uninitialised memory, no
# definite leak (suppressions: examples-c/valgrind.supp, Vulkan loader/driver only). The compute-heavy tests
# (mat-vec, rope) run under ASan+UBSan instead: under valgrind lavapipe's JIT makes them take many minutes.
#   scripts/valgrind.sh <C harness build dir> [tests...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
dir=$1
shift
tests=("$@")
((${#tests[@]})) || tests=(test_enumerate test_errors test_buffer test_version)
for t in "${tests[@]}"; do
  log="$dir/valgrind-$t.log"
  # Validation layer off here: it is on in every other run, and it multiplies valgrind's time.
  if ! VK_INSTANCE_LAYERS= valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --show-leak-kinds=definite --num-callers=40 --suppressions="$GGVK_ROOT/examples-c/valgrind.supp" \
      "$dir/$t" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "valgrind: $t failed"
    exit 1
  fi
  echo "valgrind: $t: $(grep -aoE 'ERROR SUMMARY: [0-9]+ errors' "$log" | tail -n 1), $(grep -aoE 'definitely lost: [0-9,]+ bytes' "$log" | tail -n 1 || echo 'no leaks')"
done
