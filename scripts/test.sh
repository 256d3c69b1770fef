#!/usr/bin/env bash
# All of ggvk's tests, on the default Vulkan device (Mesa lavapipe where there is no GPU), with the Khronos
# validation layer on: a validation message fails the run.
#   formatting, clippy, the `unsafe` rule, header freshness (cbindgen --verify),
#   Rust unit + integration tests (both mat-vec reduction paths), the C harness (ctest),
#   and the C harness again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$GGVK_ROOT/scripts/setup.sh"
cd "$GGVK_ROOT"
LOGS="$GGVK_CACHE/test-logs"
rm -rf "$LOGS"; mkdir -p "$LOGS"
export VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation
passed=0

step() { echo; echo "=== $*"; }

step "rustfmt"
cargo fmt --check

step "clippy"
cargo clippy --release --all-targets -- -D warnings

step "unsafe only at the boundaries (src/ffi, src/ggml) and around ash (src/vk), each with a SAFETY comment"
stray=$(grep -rln --include='*.rs' -E '\bunsafe (\{|fn|extern|impl)' src | grep -vE '^src/(ffi|vk|ggml)/' || true)
if [ -n "$stray" ]; then echo "unsafe outside src/ffi, src/ggml and src/vk: $stray"; exit 1; fi
blocks=$(grep -rhoE 'unsafe \{|unsafe extern "C" fn|unsafe fn' src | wc -l)
safety=$(grep -rhE '// SAFETY:|/// # Safety' src | wc -l)
echo "$blocks unsafe blocks/functions, $safety SAFETY comments"
if [ "$safety" -lt "$blocks" ]; then echo "some unsafe block lacks its SAFETY comment"; exit 1; fi

step "include/ggvk.h is what cbindgen generates"
cbindgen --config cbindgen.toml --crate ggvk --output include/ggvk.h --verify --quiet

step "Rust tests (validation layer on)"
cargo test --release 2>&1 | tee "$LOGS/cargo-test.log"
step "Rust kernel tests with shared-memory reductions (mat-vec, norms, softmax)"
GGVK_SHARED_REDUCTION=1 cargo test --release --test ops --test ops_norm_rows 2>&1 | tee "$LOGS/cargo-test-shmem.log"
step "Rust kernel tests with the integer-dot mat-vec forced on (8-bit x, dp4a-style)"
GGVK_INT_DOT=1 cargo test --release --test ops 2>&1 | tee "$LOGS/cargo-test-idot.log"
step "... and with the shared-memory reduction"
GGVK_INT_DOT=1 GGVK_SHARED_REDUCTION=1 cargo test --release --test ops 2>&1 | tee "$LOGS/cargo-test-idot-shmem.log"
for f in "$LOGS"/cargo-test*.log; do
  n=$(grep -oE 'test result: ok\. [0-9]+ passed' "$f" | awk '{s += $4} END {print s + 0}')
  passed=$((passed + n))
done

run_ctest() {  # $1 build dir, $2.. extra cmake args
  local dir=$1; shift
  cmake -S examples-c -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGGVK_LIB="$GGVK_LIB" "$@" >/dev/null
  cmake --build "$dir"
  ctest --test-dir "$dir" --output-on-failure 2>&1 | tee "$dir/ctest.log"
  local n
  n=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$dir/ctest.log" | awk '{print $6 - $1}')
  passed=$((passed + n))
}
step "C harness (ctest, validation layer on)"
run_ctest "$GGVK_CACHE/build-c" -DGGVK_SANITIZE=OFF
step "C harness under AddressSanitizer + UndefinedBehaviorSanitizer"
run_ctest "$GGVK_CACHE/build-c-asan" -DGGVK_SANITIZE=ON

step "no validation messages anywhere"
if grep -l "GGVK VALIDATION ERROR\|Validation Error" "$LOGS"/*.log "$GGVK_CACHE"/build-c*/ctest.log 2>/dev/null; then
  echo "validation errors reported"; exit 1
fi
echo "none"
echo
echo "ggvk: $passed passed, 0 failed"
