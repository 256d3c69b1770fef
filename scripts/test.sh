#!/usr/bin/env bash
# All of ggvk's tests, on the default Vulkan device (Mesa lavapipe where there is no GPU), with the Khronos
# validation layer on: a validation message fails the run.
#   formatting, clippy, the `unsafe` rule, header freshness (cbindgen --verify),
#   Rust unit + integration tests (both reduction paths, both mat-vec paths), the install (scripts/install.sh), the
#   C harness (ctest) built against it, the C harness again under AddressSanitizer + UndefinedBehaviorSanitizer and
#   under valgrind, the fault-injection sweep and soak, Miri on the pure modules, a short fuzz run, ggml opened
#   RTLD_LOCAL (C and Python hosts), llama.cpp's test-backend-ops on GGVK0, llama-completion through GGVK0
#   against the CPU backend, GGVK0 served by ggml-rpc-server to llama-completion --rpc, a layer split over two GGVK
#   devices, and llama-server on GGVK0 answering concurrent requests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$GGVK_ROOT/scripts/setup.sh"
cd "$GGVK_ROOT"
LOGS="$GGVK_CACHE/test-logs"
rm -rf "$LOGS"; mkdir -p "$LOGS"
export VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation
passed=0

step() { echo; echo "=== $*"; }

# tbo_subset TAG WHAT [NAME=VALUE ...] -- ARGS...: test-backend-ops -b GGVK0 -j 2 ARGS on ggvk, with those
# variables set, logged to $LOGS/test-backend-ops-TAG.log; stops the run unless at least one case ran and every case
# passed, else adds the cases to `passed`.
tbo_subset() {
  local tag=$1 what=$2 log line ok total
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  log="$LOGS/test-backend-ops-$tag.log"
  env ${envs[@]+"${envs[@]}"} GGML_BACKEND_PATH="$GGVK_LIB" "$BIN/test-backend-ops" -b GGVK0 -j 2 "$@" 2>&1 \
    | tee "$log" | grep -aE "tests passed|FAIL" || true
  line=$(grep -aoE '[0-9]+/[0-9]+ tests passed' "$log" | tail -n 1)
  read -r ok total < <(echo "$line" | awk -F'[/ ]' '{print $1, $2}')
  if [ -z "$line" ] || [ "$ok" != "$total" ] || [ "$total" = 0 ] || grep -aq "FAIL" "$log"; then
    echo "test-backend-ops $what failed ($line)"; exit 1
  fi
  passed=$((passed + ok))
}

step "rustfmt"
cargo fmt --check

step "clippy"
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --all-targets --features fault-injection -- -D warnings

step "unsafe only at the boundaries (src/ffi, src/ggml) and around ash (src/vk), each with a SAFETY comment"
python3 scripts/check_unsafe.py .

step "include/ggvk.h is what cbindgen generates"
cbindgen --config cbindgen.toml --crate ggvk --output include/ggvk.h --verify --quiet

step "Rust tests (validation layer on)"
cargo test --release 2>&1 | tee "$LOGS/cargo-test.log"
step "Rust kernel tests with shared-memory reductions (mat-vec, norms, softmax, fused norm, MoE)"
GGVK_SHARED_REDUCTION=1 cargo test --release --test ops --test ops_norm_rows --test ops_dq --test ops_kquant --test fusion \
  --test ops_moe --test ops_products 2>&1 \
  | tee "$LOGS/cargo-test-shmem.log"
step "Rust kernel tests with f32 activations for Q4_0/Q8_0/K-quant weights (GGVK_INT_DOT=0; the default rounds them to 8 bits)"
GGVK_INT_DOT=0 cargo test --release --test ops --test ops_moe --test ops_kquant 2>&1 | tee "$LOGS/cargo-test-f32act.log"
GGVK_INT_DOT=0 cargo test --release --test ops_dq dq_mul_mat_vec 2>&1 | tee "$LOGS/cargo-test-f32act-dq.log"
step "... and with the shared-memory reduction"
GGVK_INT_DOT=0 GGVK_SHARED_REDUCTION=1 cargo test --release --test ops 2>&1 | tee "$LOGS/cargo-test-f32act-shmem.log"
step "Rust kernel tests with every node in its own submission (dependencies across command buffers)"
GGVK_SUBMIT_NODES=1 cargo test --release --test ops --test ops_elementwise --test ops_norm_rows 2>&1 \
  | tee "$LOGS/cargo-test-submit1.log"
step "Rust: the activation-rounding pre-pass for the generic weight types (GGVK_ROUND_ACTIVATIONS=1), bit-exact"
GGVK_ROUND_ACTIVATIONS=1 cargo test --release --test ops_act_round --test ops_dq --test ops_kquant --test ops_moe 2>&1 \
  | tee "$LOGS/cargo-test-round.log"
step "Rust: products whose tensors exceed one storage window are cut into pieces (window capped at 1 MiB)"
GGVK_MAX_STORAGE_RANGE=1048576 cargo test --release --test ops mul_mat_pieces 2>&1 | tee "$LOGS/cargo-test-pieces.log"
GGVK_MAX_STORAGE_RANGE=1048576 cargo test --release --test ops_moe in_pieces 2>&1 \
  | tee "$LOGS/cargo-test-pieces-moe.log"
step "bad input and elementwise kernels with robustBufferAccess on (GGVK_ROBUST_BUFFER_ACCESS=1; debug builds always)"
GGVK_ROBUST_BUFFER_ACCESS=1 cargo test --release --test bad_input --test ops_elementwise 2>&1 | tee "$LOGS/cargo-test-robust.log"
step "replayed graphs waited for by polling their fences near the predicted end (GGVK_WAIT_POLL_US=100)"
GGVK_WAIT_POLL_US=100 cargo test --release --test replay --test concurrency --test kept_weights 2>&1 \
  | tee "$LOGS/cargo-test-wait-poll.log"
step "the transfer path of discrete GPUs (staging copies, small writes batched into the next submission; GGVK_DIRECT_MAPPING=0)"
GGVK_DIRECT_MAPPING=0 cargo test --release --test ops --test replay --test concurrency --test bad_input --test fusion \
  --test memory_budget 2>&1 \
  | tee "$LOGS/cargo-test-staged.log"
GGVK_DIRECT_MAPPING=0 GGVK_SOAK=30 cargo test --release --features fault-injection --test fault_injection -- --nocapture 2>&1 \
  | tee "$LOGS/cargo-test-fault-staged.log" | grep -aE "^test |fault points|soak:|test result"
step "fault injection: every alloc/submit/pipeline/map point of a model step, device loss at each submit, soak"
GGVK_SOAK="${GGVK_SOAK:-300}" cargo test --release --features fault-injection --test fault_injection -- --nocapture 2>&1 \
  | tee "$LOGS/cargo-test-fault.log" | grep -aE "^test |fault points|soak:|test result"
GGVK_SUBMIT_NODES=1 cargo test --release --features fault-injection --test fault_injection -- --nocapture sweep \
  device_lost 2>&1 | tee "$LOGS/cargo-test-fault-submit1.log" | grep -aE "^test |fault points|test result"
step "Miri: FFI argument checks, IR layout arithmetic, quantization rules (no Vulkan; built without shaderc)"
CARGO_TARGET_DIR="$GGVK_CACHE/target-miri" cargo +nightly miri test --no-default-features --lib -- ffi:: graph:: ir:: \
  quant::tests 2>&1 | tee "$LOGS/cargo-test-miri.log" | grep -aE "^test |test result"
for f in "$LOGS"/cargo-test*.log; do
  n=$(grep -oE 'test result: ok\. [0-9]+ passed' "$f" | awk '{s += $4} END {print s + 0}')
  passed=$((passed + n))
done

step "build libggvk.so and the ggvk binary"
cargo build --release

step "install into a prefix (header, libggvk.so.X.Y.Z + soname links, ggvk.pc, CMake package; scripts/install.sh)"
PREFIX="$GGVK_ROOT/build/prefix"
rm -rf "$PREFIX"
GGVK_INSTALL_NO_BUILD=1 bash scripts/install.sh "$PREFIX"
dyn=$(readelf -d "$PREFIX/lib/libggvk.so")
grep -q 'Library soname: \[libggvk.so.0\]' <<<"$dyn" || { echo "soname is not libggvk.so.0"; exit 1; }
[ "$(readlink "$PREFIX/lib/libggvk.so")" = libggvk.so.0 ] && [ -f "$PREFIX/lib/libggvk.so.0" ]
# the ggml backend entry points (GGML_BACKEND_PATH) and the C API's version, exported by the installed library
syms=$(nm -D --defined-only "$PREFIX/lib/libggvk.so")
for sym in ggml_backend_init ggml_backend_score ggvk_version; do
  grep -qw "$sym" <<<"$syms" || { echo "$sym is not exported"; exit 1; }
done
echo "installed: $(find "$PREFIX" \( -type f -o -type l \) -printf '%P ' | tr -s ' ')"

run_ctest() {  # $1 build dir, $2.. extra cmake args; the harness consumes the installed package, as a user's project
  local dir=$1; shift
  rm -rf "$dir"
  cmake -S examples-c -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$PREFIX" "$@" >/dev/null
  cmake --build "$dir"
  ctest --test-dir "$dir" --output-on-failure 2>&1 | tee "$dir/ctest.log"
  local n
  n=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$dir/ctest.log" | awk '{print $6 - $1}')
  passed=$((passed + n))
}
step "C harness (ctest, validation layer on)"
run_ctest "$GGVK_ROOT/build/c" -DGGVK_SANITIZE=OFF
step "C harness under AddressSanitizer + UndefinedBehaviorSanitizer"
run_ctest "$GGVK_ROOT/build/c-asan" -DGGVK_SANITIZE=ON
step "C harness (API tests) under valgrind memcheck: no errors, no definite leaks"
bash scripts/valgrind.sh "$GGVK_ROOT/build/c" 2>&1 | tee "$LOGS/valgrind.log"
passed=$((passed + $(grep -ac ': ERROR SUMMARY: 0 errors' "$LOGS/valgrind.log")))

step "fuzzing (cargo fuzz, ASan): ${GGVK_FUZZ_SECONDS:-30} s per target from the committed corpus"
bash scripts/fuzz.sh "${GGVK_FUZZ_SECONDS:-30}" 2>&1 | tee "$LOGS/fuzz.log" | grep -aE "^fuzz:"

step "reference llama.cpp (llama-cpp-python 0.3.36 sdist: ggml 0.25.3, backend API 2)"
BIN=$(bash scripts/reference-llama.sh | tail -n 1)
echo "$BIN"

step "ggml opened RTLD_LOCAL (ctypes, llama-cpp-python): a C host and a Python ctypes host load the installed libggvk.so"
bash scripts/rtld-local.sh "$PREFIX/lib/libggvk.so" 2>&1 | tee "$LOGS/rtld-local.log"
passed=$((passed + $(grep -aoE 'rtld-local: [0-9]+ passed' "$LOGS/rtld-local.log" | awk '{print $2}')))

step "K/V cache quantizers (GPU SET_ROWS and CPU references) against ggml's quantize_row_*_ref, byte for byte"
bash scripts/cache_quant_crosscheck.sh 2>&1 | tee "$LOGS/cargo-test-cache-xcheck.log" | grep -aE "blocks|test result"
passed=$((passed + $(grep -aoE 'test result: ok\. [0-9]+ passed' "$LOGS/cargo-test-cache-xcheck.log" | awk '{s += $4} END {print s + 0}')))

# The weight types after IQ4_NL (IQ4_XS, MXFP4, IQ3_S, IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0)
# have their own named subset below; the other runs leave them out (all their cases: about 15 minutes on lavapipe).
# So do Q1_0, Q2_0 and NVFP4 (weights, and SET_ROWS / CPY into them), with a named subset of their own.
NEW_TYPES='iq[123]_[a-z]+|iq4_xs|tq[12]_0|mxfp4'
LOWBIT_TYPES='q1_0|q2_0|nvfp4'
NOT_NEW="^(?!.*type(_a)?=($NEW_TYPES))(?!.*type(_a|_src|_dst)?=($LOWBIT_TYPES),)"

step "test-backend-ops -b GGVK0, mode test, the plug-in's ops (llama.cpp loads libggvk.so; validation layer on)"
OPS=ADD,MUL,SCALE,RMS_NORM,SOFT_MAX,CPY,CONT,DUP,SET_ROWS,GET_ROWS,SILU,SWIGLU,ROPE,MUL_MAT
OPS+=,ABS,SGN,NEG,STEP,TANH,ELU,RELU,SIGMOID,GELU,GELU_QUICK,HARDSWISH,HARDSIGMOID,EXP,EXPM1,SOFTPLUS,GELU_ERF
OPS+=,FLOOR,CEIL,ROUND,TRUNC,SQR,SQRT,SIN,COS,LOG,CLAMP,LEAKY_RELU,REGLU,GEGLU,GEGLU_ERF,GEGLU_QUICK
OPS+=,SUB,DIV,NORM,L2_NORM,L2_NORM_BATCH,GROUP_NORM,SUM,SUM_ROWS,MEAN,ARGMAX,ADD_ID
# Multimodal projectors and audio encoders, and the other movement ops (2,936 cases: 78 s on lavapipe on a loaded
# 2-core VM, 2026-12-03; the first 2,760 took about 30 s unloaded).
OPS+=,REPEAT,CONCAT,PAD,PAD_REFLECT_1D,ROLL,ARANGE,CUMSUM,IM2COL,IM2COL_3D,POOL_1D,POOL_2D,UPSCALE,CONV_TRANSPOSE_1D
OPS+=,COL2IM_1D,DIAG,REPEAT_BACK
# Diffusion / vision / audio convolutions (CONV_2D in a named subset below), recurrent models, and the simple and
# training-side ops (about 60 s together on lavapipe).
OPS+=,CONV_2D_DW,CONV_3D,CONV_TRANSPOSE_2D,TIMESTEP_EMBEDDING
OPS+=,SSM_CONV,SSM_CONV_BIAS_SILU,SSM_SCAN,SSM_SCAN_ROLLBACK,RWKV_WKV6,RWKV_WKV7,GATED_LINEAR_ATTN,GATED_DELTA_NET
OPS+=,GATED_DELTA_NET_CACHE_FUSION,FILL,TRI,DIAG_MASK_INF,ACC,SET,SWIGLU_OAI,XIELU,SILU_BACK,OPT_STEP_ADAMW,OPT_STEP_SGD
OPS+=,GET_ROWS_BACK,COUNT_EQUAL,SWIGLU_CLAMP,RMS_NORM_BACK,SOFT_MAX_BACK,CROSS_ENTROPY_LOSS,CROSS_ENTROPY_LOSS_BACK
# Triangular solve and DeepSeek-V4's hyper-connections (62 cases, about 5 s on lavapipe; LIGHTNING_INDEXER below).
OPS+=,SOLVE_TRI,DSV4_HC_PRE,DSV4_HC_POST,DSV4_HC_COMB
OPS+=,OUT_PROD
GGML_BACKEND_PATH="$GGVK_LIB" "$BIN/test-backend-ops" -b GGVK0 -j 2 -o "$OPS" -p "$NOT_NEW" 2>&1 \
  | tee "$LOGS/test-backend-ops.log" \
  | grep -aE "tests passed|FAIL|Backend GGVK0" || true
line=$(grep -aoE '[0-9]+/[0-9]+ tests passed' "$LOGS/test-backend-ops.log" | tail -n 1)
read -r ok total < <(echo "$line" | awk -F'[/ ]' '{print $1, $2}')
if [ -z "$line" ] || [ "$ok" != "$total" ] || grep -aq "FAIL" "$LOGS/test-backend-ops.log"; then
  echo "test-backend-ops failed ($line)"; exit 1
fi
echo "test-backend-ops: $line, $(grep -ac 'not supported' "$LOGS/test-backend-ops.log") cases reported unsupported"
passed=$((passed + ok))

step "test-backend-ops -b GGVK0 -o CONV_2D,ROPE_BACK, named subset (validation layer on)"
# CONV_2D: every case but the four 256x256x192-channel ones (5.5 minutes of the 6 on lavapipe; 2028 of 2030
# cases, about 1 minute). ROPE_BACK: every mode, type and option at the model shapes, not the 8192- and
# 2457-token ones (ROPE runs them all above; the backward kernel is the forward one with the sine negated).
SUB_CASES='ne_input=\[(1|141|19|13),|ne_a=\[(128|64|80),[0-9]+,2,'
tbo_subset conv2d "CONV_2D,ROPE_BACK" -- -o CONV_2D,ROPE_BACK -p "$SUB_CASES"

step "test-backend-ops -b GGVK0 -o LIGHTNING_INDEXER, named subset (every K type, both kernels; validation layer on)"
# The suite's 156 cases take about 15 minutes on lavapipe (the 512-token ones). This subset keeps every K type with
# one token over 4 streams sharing a mask (the decode kernel) and 32 tokens over 7 and 65 keys (the prompt kernel's
# partial key tiles): 34 cases, about 12 s.
LI_CASES='nb=1,ns=4,nm=1,|kv=(7|65),'
tbo_subset indexer "LIGHTNING_INDEXER" -- -o LIGHTNING_INDEXER -p "$LI_CASES"

step "test-backend-ops -b GGVK0 -o FLASH_ATTN_EXT, named subset (every K/V type and head size; validation layer on)"
# The full FLASH_ATTN_EXT matrix (3620 cases GGVK0 supports) is too slow for CI on lavapipe. This subset keeps every
# head size (40..576, DK != DV), K/V type (F32, F16, Q8_0, Q4_0, mixed), mask/sinks/ALiBi/softcap/precision variant
# and permuted q at kv=113 (one key tile plus a partial one), the asymmetric and mixed-type cases, GQA 4:1
# single-token decode at kv=512 (the split-KV path), and single tokens whose 12 or 16 rows per KV head the decode
# kernel takes in two workgroups, or with DeepSeek's 576 / 512 heads.
FA_CASES='kv=113,nb=3,|kv=(256|128|96|17),nb=2,|kv=17,|nr23=\[4,1\],kv=512,nb=1,mask=1,sinks=1'
FA_CASES+='|nr23=\[(12|16),1\],kv=(113|512|1024),nb=1,|hsk=576,.*kv=(113|1024),nb=1,'
tbo_subset fa "FLASH_ATTN_EXT" -- -o FLASH_ATTN_EXT -p "$FA_CASES"

step "test-backend-ops -b GGVK0 -o MUL_MAT_ID, named subset (every weight type and shape family; validation layer on)"
# The full MUL_MAT_ID matrix (517 cases GGVK0 supports) takes about 12 minutes on lavapipe, mostly its few
# 600 MB-of-experts cases. This subset keeps every weight type (m=512, k=256, 1 and 32 tokens, and k = 3 blocks),
# src1 broadcast or per slot with 5 and 129 tokens, experts strided by more rows than used, k = 1/63/65, 512 and
# 1024 experts, src1 beyond f16's range, the token-tile boundaries, 16 of 16 experts over 200 tokens, and experts
# that receive no rows.
MMID_CASES='n_mats=4,n_used=2,b=0,m=512,n=(1|32),k=256,|n_mats=4,n_used=2,b=0,m=64,n=16,|n_mats=8,n_used=4,b=[01],m=512,n=(5|129),'
MMID_CASES+='|m_v=64|k=(1|63|65),|n_mats=(512|1024),n_used=10,b=0,m=256,n=(1|64),|n_mats=8,n_used=2,b=0,m=512,n=16,k=256,amax=100000'
MMID_CASES+='|n_mats=4,n_used=4,b=0,m=512,n=(15|16|17|33|49),|n_mats=16,n_used=16,b=[01],m=50,n=200,k=64,|n_mats=8,n_used=1,b=0,m=512,n=1,'
tbo_subset mmid "MUL_MAT_ID" -- -o MUL_MAT_ID -p "$NOT_NEW.*($MMID_CASES)"

step "test-backend-ops -b GGVK0 -o MUL_MAT,MUL_MAT_ID,GET_ROWS for IQ4_XS, MXFP4, IQ3_S, IQ3_XXS, IQ2_*, IQ1_*, TQ*, named subset"
# Every one of these types: GET_ROWS (every case), mat-vec and tiled MUL_MAT (m=16, 1, 8 and 9 columns at k=256,
# the strided k=4096 row, the 10-column panel), batch broadcast at 16 columns, MUL_MAT_ID with 1 and 32 tokens (m=512,
# k=256), 16 tokens over k = 3 blocks, 10 tokens over 4 of 4 experts, and MXFP4's gpt-oss-shaped 2880 x 2880 product.
NEW_CASES="type=($NEW_TYPES)|type_a=($NEW_TYPES),type_b=f32,m=16,n=(1|8|9),k=256,bs=\\[1,1\\],nr=\\[1,1\\],per=\\[0,1,2,3\\]"
NEW_CASES+="|type_a=($NEW_TYPES),type_b=f32,m=16,n=1,k=4096,"
NEW_CASES+="|type_a=($NEW_TYPES),type_b=f32,m=16,n=(10|16),k=256,bs=\\[(1,1|3,2)\\],nr=\\[(1,1|2,2)\\],per=\\[0,1,2,3\\]"
NEW_CASES+="|type_a=($NEW_TYPES),type_b=f32,n_mats=4,n_used=(2|4),b=0,m=(512|64|16),n=(1|32|16|10),k=(256|96|768),"
NEW_CASES+="|type_a=mxfp4,type_b=f32,m=2880,n=32,k=2880"
tbo_subset iq "IQ/TQ/MXFP4 weights" -- -o MUL_MAT,MUL_MAT_ID,GET_ROWS -p "$NEW_CASES"

step "... their mat-vecs again with the 16-value units GPUs take (GGVK_MATVEC_DQ_SPAN16=1; CPU devices default to 0)"
SPAN_CASES="type_a=($NEW_TYPES),type_b=f32,m=16,n=(1|8),k=256,bs=\\[1,1\\],nr=\\[1,1\\],per=\\[0,1,2,3\\]"
SPAN_CASES+="|type_a=($NEW_TYPES),type_b=f32,m=16,n=1,k=4096,"
SPAN_CASES+="|type_a=($NEW_TYPES),type_b=f32,n_mats=4,n_used=2,b=0,m=(64|16),n=(1|10|16),k=(256|768),"
tbo_subset span16 "IQ/TQ mat-vec, 16-value units" GGVK_MATVEC_DQ_SPAN16=1 -- -o MUL_MAT,MUL_MAT_ID -p "$SPAN_CASES"

step "test-backend-ops -b GGVK0 for Q1_0, Q2_0, NVFP4 (weights, SET_ROWS / CPY into them), named subset"
# GET_ROWS, SET_ROWS and CPY into / out of / between them (every case), MUL_MAT as the IQ subset takes it (m=16, 1, 8
# and 9 columns at k=256, the k=4096 row, 10 and 16 columns with batch broadcast), MUL_MAT_ID with 1, 10, 16 and 32
# tokens, and NVFP4's MUL_MAT(_ID)_W4A4 / _W4A8 cases (src1 precision Q8 or default: Q8_0 activations either way).
LB_CASES="type(_src|_dst)?=($LOWBIT_TYPES),|type_a=($LOWBIT_TYPES),type_b=f32,m=16,n=(1|8|9),k=256,bs=\\[1,1\\],nr=\\[1,1\\],per=\\[0,1,2,3\\]"
LB_CASES+="|type_a=($LOWBIT_TYPES),type_b=f32,m=16,n=1,k=4096,"
LB_CASES+="|type_a=($LOWBIT_TYPES),type_b=f32,m=16,n=(10|16),k=256,bs=\\[(1,1|3,2)\\],nr=\\[(1,1|2,2)\\],per=\\[0,1,2,3\\]"
LB_CASES+="|type_a=($LOWBIT_TYPES),type_b=f32,n_mats=4,n_used=(2|4),b=0,m=(512|64|16),n=(1|32|16|10),k=(256|96|768),"
LB_CASES+="|type_a=nvfp4,type_b=f32,(m=(32|64),n=(1|32|16),k=(256|512),bs|n_mats=(8|4),n_used=2,b=[01],m=(32|64),n=(32|16),k=256,amax=1)"
LB_OPS=MUL_MAT,MUL_MAT_ID,GET_ROWS,SET_ROWS,CPY,MUL_MAT_W4A4,MUL_MAT_W4A8,MUL_MAT_ID_W4A4,MUL_MAT_ID_W4A8
tbo_subset lowbit "Q1_0/Q2_0/NVFP4" -- -o "$LB_OPS" -p "$LB_CASES"

step "test-backend-ops -b GGVK0 -o ARGSORT,TOP_K, rows up to 99999 values (validation layer on)"
# Every case but the rows of 10^5..10^6 values, which take the multi-pass sort as the 5000..99999-value rows do
# (all 623 cases: about 8 minutes on lavapipe, nearly all in TOP_K's 202048-value rows).
tbo_subset sort "ARGSORT,TOP_K" -- -o ARGSORT,TOP_K -p 'ne=\[[0-9]{1,5},'

step "test-backend-ops -b GGVK0 -o MUL_MAT with f32 activations (GGVK_INT_DOT=0)"
tbo_subset idot "(f32 activations)" GGVK_INT_DOT=0 -- -o MUL_MAT -p "$NOT_NEW"

step "test-backend-ops -b GGVK0 -o MUL_MAT, 32-value block mat-vecs staging their blocks in shared memory (GGVK_MATVEC_STAGED=1)"
tbo_subset staged "(staged blocks)" GGVK_MATVEC_STAGED=1 -- -o MUL_MAT -p 'type_a=(q4_0|q8_0|q4_1|q5_0|q5_1|iq4_nl),'

step "test-backend-ops -b GGVK0 -o MUL_MAT, 4-bit level-table weights in mat-vec workgroups of 8 (GGVK_MATVEC_WG=8)"
tbo_subset wg8 "(mat-vec workgroups of 8)" GGVK_MATVEC_WG=8 -- -o MUL_MAT \
  -p 'type_a=(iq4_nl|iq4_xs|mxfp4|nvfp4),type_b=f32,m=[0-9]+,n=1,'

step "test-backend-ops support -b GGVK0 (artifact: $GGVK_CACHE/artifacts/test-backend-ops-support-GGVK0.csv)"
mkdir -p "$GGVK_CACHE/artifacts"
GGML_BACKEND_PATH="$GGVK_LIB" "$BIN/test-backend-ops" support -b GGVK0 --output csv \
  >"$GGVK_CACHE/artifacts/test-backend-ops-support-GGVK0.csv" 2>"$LOGS/test-backend-ops-support.log"
python3 scripts/support_table.py "$GGVK_CACHE/artifacts/test-backend-ops-support-GGVK0.csv"

step "end-to-end: llama-completion on GGVK0 vs the CPU backend (tiny random-weight llama, Q4_0 and F16)"
bash scripts/e2e-llama.sh 2>&1 | tee "$LOGS/e2e.log"
passed=$((passed + $(grep -aoE 'e2e: [0-9]+ passed' "$LOGS/e2e.log" | awk '{print $2}')))

step "ggml-rpc: ggml-rpc-server serves GGVK0 on 127.0.0.1, llama-completion --rpc -ngl 99 vs the CPU backend (tiny llama, F16, Q4_0)"
bash scripts/rpc-e2e.sh 2>&1 | tee "$LOGS/rpc-e2e.log"
passed=$((passed + $(grep -aoE 'rpc-e2e: [0-9]+ passed' "$LOGS/rpc-e2e.log" | awk '{print $2}')))

step "two GGVK devices (a second lavapipe driver where there is one device): -sm layer, -sm tensor and -sm row give GGVK0's tokens"
bash scripts/multi-gpu-e2e.sh 2>&1 | tee "$LOGS/multi-gpu-e2e.log"
passed=$((passed + $(grep -aoE 'multi-gpu-e2e: [0-9]+ passed' "$LOGS/multi-gpu-e2e.log" | awk '{print $2}')))

step "llama-server --device GGVK0 -ngl 99 -np 4: 8 concurrent greedy requests vs the same server on the CPU (tiny llama, F16)"
bash scripts/server-e2e.sh 2>&1 | tee "$LOGS/server-e2e.log"
passed=$((passed + $(grep -aoE 'server-e2e: [0-9]+ passed' "$LOGS/server-e2e.log" | awk '{print $2}')))

step "no validation messages anywhere"
if grep -al "GGVK VALIDATION ERROR\|Validation Error" "$LOGS"/*.log "$GGVK_ROOT"/build/c*/ctest.log "$GGVK_CACHE"/e2e/*.log \
  "$GGVK_CACHE"/rpc-e2e/*.log "$GGVK_CACHE"/server-e2e/*.log "$GGVK_CACHE"/multi-gpu-e2e/*.log 2>/dev/null; then
  echo "validation errors reported"; exit 1
fi
echo "none"
echo
echo "ggvk: $passed passed, 0 failed"
