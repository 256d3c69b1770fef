//! `#[repr(C)]` mirrors of the ggml types that the backend adapter exchanges with the host process, and the
//! signatures of the ggml-base functions it resolves there at run time (`dlsym`; ggvk never links ggml).
//!
//! Pinned to the ggml vendored in llama-cpp-python 0.3.36 (ggml 0.25.3, `GGML_BACKEND_API_VERSION` 2), headers
//! `ggml.h`, `ggml-backend.h`, `ggml-backend-impl.h` and `ggml-impl.h`. `tests/ggml_layout.rs` compiles a C
//! program against those headers and checks every size, field offset, field size, constant and function-pointer
//! signature declared here.
//!
//! Conventions:
//! - Items keep their C names. A `*_fn` alias is the type of the ggml function named by the rest of it
//!   (`ggml_nbytes_fn` types `ggml_nbytes`); `*_t` aliases mirror C typedefs of the same name.
//! - C enums are `c_int` aliases with `pub const` values, never Rust enums: a value from C outside a Rust
//!   enum's variants (a newer ggml, a corrupt tensor) would be undefined behaviour, an integer is merely unknown.
//!   Every ggml enum is int-sized on the targets ggvk supports.
//! - Function-pointer members are `Option<unsafe extern "C" fn(..)>`, since C may leave them NULL.
#![allow(non_camel_case_types)]
// Constants and struct fields carry their C names and meanings; the pinned headers document them.
#![allow(missing_docs)]

use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;

// ---------------------------------------------------------------------------------------------------------
// Constants (ggml.h, ggml-backend-impl.h)

/// Maximum number of tensor dimensions (`ne`, `nb`).
pub const GGML_MAX_DIMS: usize = 4;
/// Size of `ggml_tensor::op_params` in bytes.
pub const GGML_MAX_OP_PARAMS: usize = 64;
/// Number of `ggml_tensor::src` slots.
pub const GGML_MAX_SRC: usize = 10;
/// Size of `ggml_tensor::name` in bytes, NUL included (the default; ggml lets a build override it).
pub const GGML_MAX_NAME: usize = 64;
/// The `api_version` a `ggml_backend_reg` must carry for the host to accept it.
pub const GGML_BACKEND_API_VERSION: c_int = 2;

/// Rope mode bits (`GGML_OP_ROPE`, op_params slot 2). NORMAL is the absence of the others.
pub const GGML_ROPE_TYPE_NORMAL: c_int = 0;
pub const GGML_ROPE_TYPE_NEOX: c_int = 2;
pub const GGML_ROPE_TYPE_MROPE: c_int = 8;
pub const GGML_ROPE_TYPE_VISION: c_int = 24;
pub const GGML_ROPE_TYPE_IMROPE: c_int = 40;
/// Number of multi-rope sections (`GGML_ROPE_TYPE_MROPE` and its variants).
pub const GGML_MROPE_SECTIONS: usize = 4;

// ---------------------------------------------------------------------------------------------------------
// Enums

/// `enum ggml_status` (ggml.h): Result of graph computes and tensor initialisation (`GGML_STATUS_SUCCESS` is 0).
pub type ggml_status = c_int;
pub const GGML_STATUS_ALLOC_FAILED: ggml_status = -2;
pub const GGML_STATUS_FAILED: ggml_status = -1;
pub const GGML_STATUS_SUCCESS: ggml_status = 0;
pub const GGML_STATUS_ABORTED: ggml_status = 1;

/// `enum ggml_type` (ggml.h): Element type of a tensor. Numbers 4, 5 and 31..=33, 36..=38 are retired and unused.
pub type ggml_type = c_int;
pub const GGML_TYPE_F32: ggml_type = 0;
pub const GGML_TYPE_F16: ggml_type = 1;
pub const GGML_TYPE_Q4_0: ggml_type = 2;
pub const GGML_TYPE_Q4_1: ggml_type = 3;
pub const GGML_TYPE_Q5_0: ggml_type = 6;
pub const GGML_TYPE_Q5_1: ggml_type = 7;
pub const GGML_TYPE_Q8_0: ggml_type = 8;
pub const GGML_TYPE_Q8_1: ggml_type = 9;
pub const GGML_TYPE_Q2_K: ggml_type = 10;
pub const GGML_TYPE_Q3_K: ggml_type = 11;
pub const GGML_TYPE_Q4_K: ggml_type = 12;
pub const GGML_TYPE_Q5_K: ggml_type = 13;
pub const GGML_TYPE_Q6_K: ggml_type = 14;
pub const GGML_TYPE_Q8_K: ggml_type = 15;
pub const GGML_TYPE_IQ2_XXS: ggml_type = 16;
pub const GGML_TYPE_IQ2_XS: ggml_type = 17;
pub const GGML_TYPE_IQ3_XXS: ggml_type = 18;
pub const GGML_TYPE_IQ1_S: ggml_type = 19;
pub const GGML_TYPE_IQ4_NL: ggml_type = 20;
pub const GGML_TYPE_IQ3_S: ggml_type = 21;
pub const GGML_TYPE_IQ2_S: ggml_type = 22;
pub const GGML_TYPE_IQ4_XS: ggml_type = 23;
pub const GGML_TYPE_I8: ggml_type = 24;
pub const GGML_TYPE_I16: ggml_type = 25;
pub const GGML_TYPE_I32: ggml_type = 26;
pub const GGML_TYPE_I64: ggml_type = 27;
pub const GGML_TYPE_F64: ggml_type = 28;
pub const GGML_TYPE_IQ1_M: ggml_type = 29;
pub const GGML_TYPE_BF16: ggml_type = 30;
pub const GGML_TYPE_TQ1_0: ggml_type = 34;
pub const GGML_TYPE_TQ2_0: ggml_type = 35;
pub const GGML_TYPE_MXFP4: ggml_type = 39;
pub const GGML_TYPE_NVFP4: ggml_type = 40;
pub const GGML_TYPE_Q1_0: ggml_type = 41;
pub const GGML_TYPE_Q2_0: ggml_type = 42;
pub const GGML_TYPE_COUNT: ggml_type = 43;

/// `enum ggml_prec` (ggml.h): Requested precision, stored in the op_params of some ops (`MUL_MAT`, `FLASH_ATTN_EXT`, ...).
pub type ggml_prec = c_int;
pub const GGML_PREC_UNDEFINED: ggml_prec = 0;
pub const GGML_PREC_DEFAULT: ggml_prec = 0;
pub const GGML_PREC_F32: ggml_prec = 10;
pub const GGML_PREC_BF16: ggml_prec = 15;
pub const GGML_PREC_F16: ggml_prec = 20;
pub const GGML_PREC_Q8: ggml_prec = 30;
pub const GGML_PREC_Q4: ggml_prec = 40;

/// `enum ggml_op_hint` (ggml.h): Op hint, stored in the op_params of `MUL_MAT` / `MUL_MAT_ID` (slot 1).
pub type ggml_op_hint = c_int;
pub const GGML_HINT_NONE: ggml_op_hint = 0;
pub const GGML_HINT_SRC0_IS_HADAMARD: ggml_op_hint = 1;

/// `enum ggml_op` (ggml.h): The operation that computes a tensor (`ggml_tensor::op`).
pub type ggml_op = c_int;
pub const GGML_OP_NONE: ggml_op = 0;
pub const GGML_OP_DUP: ggml_op = 1;
pub const GGML_OP_ADD: ggml_op = 2;
pub const GGML_OP_ADD_ID: ggml_op = 3;
pub const GGML_OP_ADD1: ggml_op = 4;
pub const GGML_OP_ACC: ggml_op = 5;
pub const GGML_OP_SUB: ggml_op = 6;
pub const GGML_OP_MUL: ggml_op = 7;
pub const GGML_OP_DIV: ggml_op = 8;
pub const GGML_OP_SQR: ggml_op = 9;
pub const GGML_OP_SQRT: ggml_op = 10;
pub const GGML_OP_LOG: ggml_op = 11;
pub const GGML_OP_SIN: ggml_op = 12;
pub const GGML_OP_COS: ggml_op = 13;
pub const GGML_OP_SUM: ggml_op = 14;
pub const GGML_OP_SUM_ROWS: ggml_op = 15;
pub const GGML_OP_CUMSUM: ggml_op = 16;
pub const GGML_OP_MEAN: ggml_op = 17;
pub const GGML_OP_ARGMAX: ggml_op = 18;
pub const GGML_OP_COUNT_EQUAL: ggml_op = 19;
pub const GGML_OP_REPEAT: ggml_op = 20;
pub const GGML_OP_REPEAT_BACK: ggml_op = 21;
pub const GGML_OP_CONCAT: ggml_op = 22;
pub const GGML_OP_SILU_BACK: ggml_op = 23;
pub const GGML_OP_NORM: ggml_op = 24;
pub const GGML_OP_RMS_NORM: ggml_op = 25;
pub const GGML_OP_RMS_NORM_BACK: ggml_op = 26;
pub const GGML_OP_GROUP_NORM: ggml_op = 27;
pub const GGML_OP_L2_NORM: ggml_op = 28;
pub const GGML_OP_MUL_MAT: ggml_op = 29;
pub const GGML_OP_MUL_MAT_ID: ggml_op = 30;
pub const GGML_OP_OUT_PROD: ggml_op = 31;
pub const GGML_OP_SCALE: ggml_op = 32;
pub const GGML_OP_SET: ggml_op = 33;
pub const GGML_OP_CPY: ggml_op = 34;
pub const GGML_OP_CONT: ggml_op = 35;
pub const GGML_OP_RESHAPE: ggml_op = 36;
pub const GGML_OP_VIEW: ggml_op = 37;
pub const GGML_OP_PERMUTE: ggml_op = 38;
pub const GGML_OP_TRANSPOSE: ggml_op = 39;
pub const GGML_OP_GET_ROWS: ggml_op = 40;
pub const GGML_OP_GET_ROWS_BACK: ggml_op = 41;
pub const GGML_OP_SET_ROWS: ggml_op = 42;
pub const GGML_OP_DIAG: ggml_op = 43;
pub const GGML_OP_DIAG_MASK_INF: ggml_op = 44;
pub const GGML_OP_DIAG_MASK_ZERO: ggml_op = 45;
pub const GGML_OP_SOFT_MAX: ggml_op = 46;
pub const GGML_OP_SOFT_MAX_BACK: ggml_op = 47;
pub const GGML_OP_ROPE: ggml_op = 48;
pub const GGML_OP_ROPE_BACK: ggml_op = 49;
pub const GGML_OP_CLAMP: ggml_op = 50;
pub const GGML_OP_CONV_TRANSPOSE_1D: ggml_op = 51;
pub const GGML_OP_IM2COL: ggml_op = 52;
pub const GGML_OP_IM2COL_BACK: ggml_op = 53;
pub const GGML_OP_IM2COL_3D: ggml_op = 54;
pub const GGML_OP_COL2IM_1D: ggml_op = 55;
pub const GGML_OP_CONV_2D: ggml_op = 56;
pub const GGML_OP_CONV_3D: ggml_op = 57;
pub const GGML_OP_CONV_2D_DW: ggml_op = 58;
pub const GGML_OP_CONV_TRANSPOSE_2D: ggml_op = 59;
pub const GGML_OP_POOL_1D: ggml_op = 60;
pub const GGML_OP_POOL_2D: ggml_op = 61;
pub const GGML_OP_POOL_2D_BACK: ggml_op = 62;
pub const GGML_OP_UPSCALE: ggml_op = 63;
pub const GGML_OP_PAD: ggml_op = 64;
pub const GGML_OP_PAD_REFLECT_1D: ggml_op = 65;
pub const GGML_OP_ROLL: ggml_op = 66;
pub const GGML_OP_ARANGE: ggml_op = 67;
pub const GGML_OP_TIMESTEP_EMBEDDING: ggml_op = 68;
pub const GGML_OP_ARGSORT: ggml_op = 69;
pub const GGML_OP_TOP_K: ggml_op = 70;
pub const GGML_OP_LEAKY_RELU: ggml_op = 71;
pub const GGML_OP_TRI: ggml_op = 72;
pub const GGML_OP_FILL: ggml_op = 73;
pub const GGML_OP_FLASH_ATTN_EXT: ggml_op = 74;
pub const GGML_OP_FLASH_ATTN_BACK: ggml_op = 75;
pub const GGML_OP_SSM_CONV: ggml_op = 76;
pub const GGML_OP_SSM_SCAN: ggml_op = 77;
pub const GGML_OP_WIN_PART: ggml_op = 78;
pub const GGML_OP_WIN_UNPART: ggml_op = 79;
pub const GGML_OP_GET_REL_POS: ggml_op = 80;
pub const GGML_OP_ADD_REL_POS: ggml_op = 81;
pub const GGML_OP_RWKV_WKV6: ggml_op = 82;
pub const GGML_OP_GATED_LINEAR_ATTN: ggml_op = 83;
pub const GGML_OP_RWKV_WKV7: ggml_op = 84;
pub const GGML_OP_SOLVE_TRI: ggml_op = 85;
pub const GGML_OP_GATED_DELTA_NET: ggml_op = 86;
pub const GGML_OP_LIGHTNING_INDEXER: ggml_op = 87;
pub const GGML_OP_DSV4_HC_COMB: ggml_op = 88;
pub const GGML_OP_DSV4_HC_PRE: ggml_op = 89;
pub const GGML_OP_DSV4_HC_POST: ggml_op = 90;
pub const GGML_OP_UNARY: ggml_op = 91;
pub const GGML_OP_MAP_CUSTOM1: ggml_op = 92;
pub const GGML_OP_MAP_CUSTOM2: ggml_op = 93;
pub const GGML_OP_MAP_CUSTOM3: ggml_op = 94;
pub const GGML_OP_CUSTOM: ggml_op = 95;
pub const GGML_OP_CROSS_ENTROPY_LOSS: ggml_op = 96;
pub const GGML_OP_CROSS_ENTROPY_LOSS_BACK: ggml_op = 97;
pub const GGML_OP_OPT_STEP_ADAMW: ggml_op = 98;
pub const GGML_OP_OPT_STEP_SGD: ggml_op = 99;
pub const GGML_OP_GLU: ggml_op = 100;
pub const GGML_OP_COUNT: ggml_op = 101;

/// `enum ggml_unary_op` (ggml.h): Sub-op of `GGML_OP_UNARY`, stored in `op_params[0]`.
pub type ggml_unary_op = c_int;
pub const GGML_UNARY_OP_ABS: ggml_unary_op = 0;
pub const GGML_UNARY_OP_SGN: ggml_unary_op = 1;
pub const GGML_UNARY_OP_NEG: ggml_unary_op = 2;
pub const GGML_UNARY_OP_STEP: ggml_unary_op = 3;
pub const GGML_UNARY_OP_TANH: ggml_unary_op = 4;
pub const GGML_UNARY_OP_ELU: ggml_unary_op = 5;
pub const GGML_UNARY_OP_RELU: ggml_unary_op = 6;
pub const GGML_UNARY_OP_SIGMOID: ggml_unary_op = 7;
pub const GGML_UNARY_OP_GELU: ggml_unary_op = 8;
pub const GGML_UNARY_OP_GELU_QUICK: ggml_unary_op = 9;
pub const GGML_UNARY_OP_SILU: ggml_unary_op = 10;
pub const GGML_UNARY_OP_HARDSWISH: ggml_unary_op = 11;
pub const GGML_UNARY_OP_HARDSIGMOID: ggml_unary_op = 12;
pub const GGML_UNARY_OP_EXP: ggml_unary_op = 13;
pub const GGML_UNARY_OP_EXPM1: ggml_unary_op = 14;
pub const GGML_UNARY_OP_SOFTPLUS: ggml_unary_op = 15;
pub const GGML_UNARY_OP_GELU_ERF: ggml_unary_op = 16;
pub const GGML_UNARY_OP_XIELU: ggml_unary_op = 17;
pub const GGML_UNARY_OP_FLOOR: ggml_unary_op = 18;
pub const GGML_UNARY_OP_CEIL: ggml_unary_op = 19;
pub const GGML_UNARY_OP_ROUND: ggml_unary_op = 20;
pub const GGML_UNARY_OP_TRUNC: ggml_unary_op = 21;
pub const GGML_UNARY_OP_COUNT: ggml_unary_op = 22;

/// `enum ggml_glu_op` (ggml.h): Sub-op of `GGML_OP_GLU`, stored in `op_params[0]`.
pub type ggml_glu_op = c_int;
pub const GGML_GLU_OP_REGLU: ggml_glu_op = 0;
pub const GGML_GLU_OP_GEGLU: ggml_glu_op = 1;
pub const GGML_GLU_OP_SWIGLU: ggml_glu_op = 2;
pub const GGML_GLU_OP_SWIGLU_OAI: ggml_glu_op = 3;
pub const GGML_GLU_OP_GEGLU_ERF: ggml_glu_op = 4;
pub const GGML_GLU_OP_GEGLU_QUICK: ggml_glu_op = 5;
pub const GGML_GLU_OP_SWIGLU_CLAMP: ggml_glu_op = 6;
pub const GGML_GLU_OP_COUNT: ggml_glu_op = 7;

/// `enum ggml_tensor_flag` (ggml.h): Bits of `ggml_tensor::flags`.
pub type ggml_tensor_flag = c_int;
pub const GGML_TENSOR_FLAG_INPUT: ggml_tensor_flag = 1;
pub const GGML_TENSOR_FLAG_OUTPUT: ggml_tensor_flag = 2;
pub const GGML_TENSOR_FLAG_PARAM: ggml_tensor_flag = 4;
pub const GGML_TENSOR_FLAG_LOSS: ggml_tensor_flag = 8;
pub const GGML_TENSOR_FLAG_COMPUTE: ggml_tensor_flag = 16;

/// `enum ggml_tri_type` (ggml.h): Triangle selection of `GGML_OP_TRI`, stored in op_params.
pub type ggml_tri_type = c_int;
pub const GGML_TRI_TYPE_UPPER_DIAG: ggml_tri_type = 0;
pub const GGML_TRI_TYPE_UPPER: ggml_tri_type = 1;
pub const GGML_TRI_TYPE_LOWER_DIAG: ggml_tri_type = 2;
pub const GGML_TRI_TYPE_LOWER: ggml_tri_type = 3;

/// `enum ggml_op_pool` (ggml.h): Pooling kind of `GGML_OP_POOL_1D` / `POOL_2D`, stored in op_params.
pub type ggml_op_pool = c_int;
pub const GGML_OP_POOL_MAX: ggml_op_pool = 0;
pub const GGML_OP_POOL_AVG: ggml_op_pool = 1;
pub const GGML_OP_POOL_COUNT: ggml_op_pool = 2;

/// `enum ggml_scale_mode` (ggml.h): Interpolation mode of `GGML_OP_UPSCALE`, the low byte of its mode op_param.
pub type ggml_scale_mode = c_int;
pub const GGML_SCALE_MODE_NEAREST: ggml_scale_mode = 0;
pub const GGML_SCALE_MODE_BILINEAR: ggml_scale_mode = 1;
pub const GGML_SCALE_MODE_BICUBIC: ggml_scale_mode = 2;
pub const GGML_SCALE_MODE_COUNT: ggml_scale_mode = 3;

/// `enum ggml_scale_flag` (ggml.h): Flag bits OR-ed into the mode op_param of `GGML_OP_UPSCALE`.
pub type ggml_scale_flag = c_int;
pub const GGML_SCALE_FLAG_ALIGN_CORNERS: ggml_scale_flag = 256;
pub const GGML_SCALE_FLAG_ANTIALIAS: ggml_scale_flag = 512;

/// `enum ggml_sort_order` (ggml.h): Order of `GGML_OP_ARGSORT`, stored in op_params.
pub type ggml_sort_order = c_int;
pub const GGML_SORT_ORDER_ASC: ggml_sort_order = 0;
pub const GGML_SORT_ORDER_DESC: ggml_sort_order = 1;

/// `enum ggml_log_level` (ggml.h): Level of a log message (`ggml_log_internal`).
pub type ggml_log_level = c_int;
pub const GGML_LOG_LEVEL_NONE: ggml_log_level = 0;
pub const GGML_LOG_LEVEL_DEBUG: ggml_log_level = 1;
pub const GGML_LOG_LEVEL_INFO: ggml_log_level = 2;
pub const GGML_LOG_LEVEL_WARN: ggml_log_level = 3;
pub const GGML_LOG_LEVEL_ERROR: ggml_log_level = 4;
pub const GGML_LOG_LEVEL_CONT: ggml_log_level = 5;

/// `enum ggml_backend_buffer_usage` (ggml-backend.h): What a buffer holds (`ggml_backend_buffer::usage`).
pub type ggml_backend_buffer_usage = c_int;
pub const GGML_BACKEND_BUFFER_USAGE_ANY: ggml_backend_buffer_usage = 0;
pub const GGML_BACKEND_BUFFER_USAGE_WEIGHTS: ggml_backend_buffer_usage = 1;
pub const GGML_BACKEND_BUFFER_USAGE_COMPUTE: ggml_backend_buffer_usage = 2;

/// `enum ggml_backend_dev_type` (ggml-backend.h): Kind of device (`ggml_backend_device_i::get_type`, `ggml_backend_dev_props::type`).
pub type ggml_backend_dev_type = c_int;
pub const GGML_BACKEND_DEVICE_TYPE_CPU: ggml_backend_dev_type = 0;
pub const GGML_BACKEND_DEVICE_TYPE_GPU: ggml_backend_dev_type = 1;
pub const GGML_BACKEND_DEVICE_TYPE_IGPU: ggml_backend_dev_type = 2;
pub const GGML_BACKEND_DEVICE_TYPE_ACCEL: ggml_backend_dev_type = 3;
pub const GGML_BACKEND_DEVICE_TYPE_META: ggml_backend_dev_type = 4;

/// `enum ggml_cgraph_eval_order` (ggml-impl.h): Order in which a graph was built (`ggml_cgraph::order`).
pub type ggml_cgraph_eval_order = c_int;
pub const GGML_CGRAPH_EVAL_ORDER_LEFT_TO_RIGHT: ggml_cgraph_eval_order = 0;
pub const GGML_CGRAPH_EVAL_ORDER_RIGHT_TO_LEFT: ggml_cgraph_eval_order = 1;
pub const GGML_CGRAPH_EVAL_ORDER_COUNT: ggml_cgraph_eval_order = 2;

// ---------------------------------------------------------------------------------------------------------
// Handle typedefs and small types (ggml.h, ggml-backend.h, ggml-impl.h)

/// `ggml_backend_buffer_type_t`.
pub type ggml_backend_buffer_type_t = *mut ggml_backend_buffer_type;
/// `ggml_backend_buffer_t`.
pub type ggml_backend_buffer_t = *mut ggml_backend_buffer;
/// `ggml_backend_event_t`.
pub type ggml_backend_event_t = *mut ggml_backend_event;
/// `ggml_backend_t`: a backend (stream).
pub type ggml_backend_t = *mut ggml_backend;
/// `ggml_backend_graph_plan_t`: an opaque graph plan.
pub type ggml_backend_graph_plan_t = *mut c_void;
/// `ggml_backend_reg_t`: a backend registration, what `ggml_backend_init` returns.
pub type ggml_backend_reg_t = *mut ggml_backend_reg;
/// `ggml_backend_dev_t`.
pub type ggml_backend_dev_t = *mut ggml_backend_device;
/// `ggml_guid`: a 16-byte identifier (the array typedef itself).
pub type ggml_guid = [u8; 16];
/// `ggml_guid_t`: pointer to a [`ggml_guid`].
pub type ggml_guid_t = *mut ggml_guid;
/// `ggml_bitset_t` (ggml-impl.h): a word of the bitset in [`ggml_hash_set::used`].
pub type ggml_bitset_t = u32;
/// `ggml_abort_callback`: returns true to abort a computation.
pub type ggml_abort_callback = Option<unsafe extern "C" fn(data: *mut c_void) -> bool>;

// ---------------------------------------------------------------------------------------------------------
// Tensors and graphs

/// `struct ggml_tensor` (ggml.h): an n-dimensional tensor, or a node of a graph.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_tensor {
    /// Element type, a `GGML_TYPE_*`.
    pub r#type: ggml_type,
    /// Buffer holding `data`; NULL when unallocated.
    pub buffer: *mut ggml_backend_buffer,
    /// Number of elements per dimension.
    pub ne: [i64; GGML_MAX_DIMS],
    /// Stride in bytes per dimension (`nb[0]` is the type size; rows may be padded).
    pub nb: [usize; GGML_MAX_DIMS],
    /// The op computing this tensor, a `GGML_OP_*`.
    pub op: ggml_op,
    /// Op parameters: `GGML_MAX_OP_PARAMS` bytes as `int32_t` (floats stored bitwise).
    pub op_params: [i32; GGML_MAX_OP_PARAMS / size_of::<i32>()],
    /// `GGML_TENSOR_FLAG_*` bits.
    pub flags: i32,
    /// Operands; unused slots are NULL.
    pub src: [*mut ggml_tensor; GGML_MAX_SRC],
    /// For views: the viewed tensor.
    pub view_src: *mut ggml_tensor,
    /// For views: byte offset into `view_src`'s data.
    pub view_offs: usize,
    /// Address of the data (inside `buffer`'s base range for device buffers).
    pub data: *mut c_void,
    /// NUL-terminated name.
    pub name: [c_char; GGML_MAX_NAME],
    /// Backend-private per-tensor data.
    pub extra: *mut c_void,
    pub padding: [c_char; 8],
}

/// `struct ggml_hash_set` (ggml-impl.h): open-addressing set of tensors, part of [`ggml_cgraph`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_hash_set {
    /// Number of slots.
    pub size: usize,
    /// Occupancy bitset, one bit per slot.
    pub used: *mut ggml_bitset_t,
    /// The tensors; `keys[i]` is defined only where bit `i` of `used` is set.
    pub keys: *mut *mut ggml_tensor,
}

/// `struct ggml_cgraph` (ggml-impl.h, not in the public headers): a computation graph, what
/// `ggml_backend_i::graph_compute` receives.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_cgraph {
    /// Capacity of `nodes` / `leafs` / `grads` / `grad_accs`.
    pub size: c_int,
    /// Nodes in use.
    pub n_nodes: c_int,
    /// Leafs in use.
    pub n_leafs: c_int,
    /// Tensors computed by the graph, in execution order.
    pub nodes: *mut *mut ggml_tensor,
    /// Gradients of the nodes (may be NULL).
    pub grads: *mut *mut ggml_tensor,
    /// Gradient accumulators (may be NULL).
    pub grad_accs: *mut *mut ggml_tensor,
    /// Tensors with constant data (inputs, weights).
    pub leafs: *mut *mut ggml_tensor,
    /// Uses of each tensor, indexed by hash-set slot.
    pub use_counts: *mut i32,
    pub visited_hash_set: ggml_hash_set,
    pub order: ggml_cgraph_eval_order,
    /// Graph identity: two equal non-zero values mean the same graph; 0 means unset.
    pub uid: u64,
}

// ---------------------------------------------------------------------------------------------------------
// Buffer types and buffers (ggml-backend-impl.h)

/// `struct ggml_backend_buffer_type_i`: the methods of a buffer type.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_buffer_type_i {
    pub get_name: Option<unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> *const c_char>,
    /// Allocate a buffer of this type.
    pub alloc_buffer:
        Option<unsafe extern "C" fn(buft: ggml_backend_buffer_type_t, size: usize) -> ggml_backend_buffer_t>,
    /// Tensor alignment in bytes.
    pub get_alignment: Option<unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> usize>,
    /// (optional) Largest allocatable buffer; SIZE_MAX when NULL.
    pub get_max_size: Option<unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> usize>,
    /// (optional) Bytes a tensor needs, padding included; `ggml_nbytes` when NULL.
    pub get_alloc_size:
        Option<unsafe extern "C" fn(buft: ggml_backend_buffer_type_t, tensor: *const ggml_tensor) -> usize>,
    /// (optional) Whether data is in host memory with the standard layout; false when NULL.
    pub is_host: Option<unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> bool>,
}

/// `struct ggml_backend_buffer_type`: a buffer type (its methods, device and private context).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_buffer_type {
    pub iface: ggml_backend_buffer_type_i,
    pub device: ggml_backend_dev_t,
    pub context: *mut c_void,
}

/// `struct ggml_backend_buffer_i`: the methods of a buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_buffer_i {
    /// (optional) Free the buffer.
    pub free_buffer: Option<unsafe extern "C" fn(buffer: ggml_backend_buffer_t)>,
    /// Base address of the buffer.
    pub get_base: Option<unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> *mut c_void>,
    /// (optional) Initialise a tensor placed in the buffer (e.g. set `extra`).
    pub init_tensor:
        Option<unsafe extern "C" fn(buffer: ggml_backend_buffer_t, tensor: *mut ggml_tensor) -> ggml_status>,
    pub memset_tensor: Option<
        unsafe extern "C" fn(
            buffer: ggml_backend_buffer_t,
            tensor: *mut ggml_tensor,
            value: u8,
            offset: usize,
            size: usize,
        ),
    >,
    pub set_tensor: Option<
        unsafe extern "C" fn(
            buffer: ggml_backend_buffer_t,
            tensor: *mut ggml_tensor,
            data: *const c_void,
            offset: usize,
            size: usize,
        ),
    >,
    pub get_tensor: Option<
        unsafe extern "C" fn(
            buffer: ggml_backend_buffer_t,
            tensor: *const ggml_tensor,
            data: *mut c_void,
            offset: usize,
            size: usize,
        ),
    >,
    /// (optional) `n_copies` copies of `size` bytes, strided in the tensor and in `data`.
    pub set_tensor_2d: Option<
        unsafe extern "C" fn(
            buffer: ggml_backend_buffer_t,
            tensor: *mut ggml_tensor,
            data: *const c_void,
            offset: usize,
            size: usize,
            n_copies: usize,
            stride_tensor: usize,
            stride_data: usize,
        ),
    >,
    /// (optional) `n_copies` copies of `size` bytes, strided in the tensor and in `data`.
    pub get_tensor_2d: Option<
        unsafe extern "C" fn(
            buffer: ggml_backend_buffer_t,
            tensor: *const ggml_tensor,
            data: *mut c_void,
            offset: usize,
            size: usize,
            n_copies: usize,
            stride_tensor: usize,
            stride_data: usize,
        ),
    >,
    /// (optional) Copy `src` (any buffer, any backend) into `dst` (in this buffer); false if unsupported.
    pub cpy_tensor: Option<
        unsafe extern "C" fn(buffer: ggml_backend_buffer_t, src: *const ggml_tensor, dst: *mut ggml_tensor) -> bool,
    >,
    /// Fill the whole buffer with `value`.
    pub clear: Option<unsafe extern "C" fn(buffer: ggml_backend_buffer_t, value: u8)>,
    /// (optional) Drop state from tensor initialisation (e.g. tensor extras).
    pub reset: Option<unsafe extern "C" fn(buffer: ggml_backend_buffer_t)>,
}

/// `struct ggml_backend_buffer`: a buffer (methods, type, private context, size, usage).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_buffer {
    pub iface: ggml_backend_buffer_i,
    pub buft: ggml_backend_buffer_type_t,
    pub context: *mut c_void,
    pub size: usize,
    pub usage: ggml_backend_buffer_usage,
}

// ---------------------------------------------------------------------------------------------------------
// Backends (streams) and events (ggml-backend-impl.h)

/// `struct ggml_backend_graph_optimize_params`: passed to `ggml_backend_i::graph_optimize` so that a backend
/// that reorders nodes can extend tensor lifetimes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_graph_optimize_params {
    /// Keep `tensor` allocated at least until node `until` of the same graph has been computed.
    pub add_alloc_dep:
        Option<unsafe extern "C" fn(user_data: *mut c_void, tensor: *mut ggml_tensor, until: *mut ggml_tensor)>,
    pub user_data: *mut c_void,
}

/// `struct ggml_backend_i`: the methods of a backend (stream).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_i {
    pub get_name: Option<unsafe extern "C" fn(backend: ggml_backend_t) -> *const c_char>,
    pub free: Option<unsafe extern "C" fn(backend: ggml_backend_t)>,
    /// (optional) Asynchronous tensor write.
    pub set_tensor_async: Option<
        unsafe extern "C" fn(
            backend: ggml_backend_t,
            tensor: *mut ggml_tensor,
            data: *const c_void,
            offset: usize,
            size: usize,
        ),
    >,
    /// (optional) Asynchronous tensor read.
    pub get_tensor_async: Option<
        unsafe extern "C" fn(
            backend: ggml_backend_t,
            tensor: *const ggml_tensor,
            data: *mut c_void,
            offset: usize,
            size: usize,
        ),
    >,
    /// (optional) Asynchronous strided write.
    pub set_tensor_2d_async: Option<
        unsafe extern "C" fn(
            backend: ggml_backend_t,
            tensor: *mut ggml_tensor,
            data: *const c_void,
            offset: usize,
            size: usize,
            n_copies: usize,
            stride_tensor: usize,
            stride_data: usize,
        ),
    >,
    /// (optional) Asynchronous strided read.
    pub get_tensor_2d_async: Option<
        unsafe extern "C" fn(
            backend: ggml_backend_t,
            tensor: *const ggml_tensor,
            data: *mut c_void,
            offset: usize,
            size: usize,
            n_copies: usize,
            stride_tensor: usize,
            stride_data: usize,
        ),
    >,
    /// (optional) Asynchronous copy between backends; false if unsupported.
    pub cpy_tensor_async: Option<
        unsafe extern "C" fn(
            backend_src: ggml_backend_t,
            backend_dst: ggml_backend_t,
            src: *const ggml_tensor,
            dst: *mut ggml_tensor,
        ) -> bool,
    >,
    /// (optional) Wait for all pending work (required if any async method is provided).
    pub synchronize: Option<unsafe extern "C" fn(backend: ggml_backend_t)>,
    /// (optional) Graph plans (unused by ggml at present).
    pub graph_plan_create:
        Option<unsafe extern "C" fn(backend: ggml_backend_t, cgraph: *const ggml_cgraph) -> ggml_backend_graph_plan_t>,
    pub graph_plan_free: Option<unsafe extern "C" fn(backend: ggml_backend_t, plan: ggml_backend_graph_plan_t)>,
    pub graph_plan_update: Option<
        unsafe extern "C" fn(backend: ggml_backend_t, plan: ggml_backend_graph_plan_t, cgraph: *const ggml_cgraph),
    >,
    pub graph_plan_compute:
        Option<unsafe extern "C" fn(backend: ggml_backend_t, plan: ggml_backend_graph_plan_t) -> ggml_status>,
    /// Compute a graph (asynchronously if the backend supports it).
    pub graph_compute: Option<unsafe extern "C" fn(backend: ggml_backend_t, cgraph: *mut ggml_cgraph) -> ggml_status>,
    /// (optional) Record an event on this stream.
    pub event_record: Option<unsafe extern "C" fn(backend: ggml_backend_t, event: ggml_backend_event_t)>,
    /// (optional) Make this stream wait for an event.
    pub event_wait: Option<unsafe extern "C" fn(backend: ggml_backend_t, event: ggml_backend_event_t)>,
    /// (optional) Reorder/optimise the nodes of a graph before it is allocated.
    pub graph_optimize: Option<
        unsafe extern "C" fn(
            backend: ggml_backend_t,
            cgraph: *mut ggml_cgraph,
            params: *mut ggml_backend_graph_optimize_params,
        ),
    >,
}

/// `struct ggml_backend`: a backend (stream) instance.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend {
    pub guid: ggml_guid_t,
    pub iface: ggml_backend_i,
    pub device: ggml_backend_dev_t,
    pub context: *mut c_void,
}

/// `struct ggml_backend_event`: an event of a device.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_event {
    pub device: *mut ggml_backend_device,
    pub context: *mut c_void,
}

// ---------------------------------------------------------------------------------------------------------
// Devices (ggml-backend.h, ggml-backend-impl.h)

/// `struct ggml_backend_dev_caps` (ggml-backend.h): what a device supports.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_dev_caps {
    /// Asynchronous operations.
    pub r#async: bool,
    /// A pinned host buffer type.
    pub host_buffer: bool,
    /// Buffers from host pointers.
    pub buffer_from_host_ptr: bool,
    /// Event synchronisation.
    pub events: bool,
    /// mmap can be used when loading.
    pub mmap_support: bool,
}

/// `struct ggml_backend_dev_props` (ggml-backend.h): all properties of a device.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_dev_props {
    pub name: *const c_char,
    pub description: *const c_char,
    /// Free device memory in bytes.
    pub memory_free: usize,
    /// Total device memory in bytes.
    pub memory_total: usize,
    pub r#type: ggml_backend_dev_type,
    /// Lower-case PCI bus id "domain:bus:device.function", or NULL if unknown.
    pub device_id: *const c_char,
    pub caps: ggml_backend_dev_caps,
}

/// `struct ggml_backend_device_i`: the methods of a device.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_device_i {
    /// Short identifier such as "CPU" or "CUDA0".
    pub get_name: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t) -> *const c_char>,
    /// Short description, e.g. the model name.
    pub get_description: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t) -> *const c_char>,
    /// Memory in bytes; 0 for none to report.
    pub get_memory: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, free: *mut usize, total: *mut usize)>,
    pub get_type: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t) -> ggml_backend_dev_type>,
    pub get_props: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, props: *mut ggml_backend_dev_props)>,
    /// Create a backend (stream) on the device.
    pub init_backend: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, params: *const c_char) -> ggml_backend_t>,
    /// Preferred buffer type.
    pub get_buffer_type: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t) -> ggml_backend_buffer_type_t>,
    /// (optional) Pinned host buffer type.
    pub get_host_buffer_type: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t) -> ggml_backend_buffer_type_t>,
    /// (optional) Wrap host memory (e.g. an mmapped model) in a buffer.
    pub buffer_from_host_ptr: Option<
        unsafe extern "C" fn(
            dev: ggml_backend_dev_t,
            ptr: *mut c_void,
            size: usize,
            max_tensor_size: usize,
        ) -> ggml_backend_buffer_t,
    >,
    /// Whether the device can compute `op`.
    pub supports_op: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, op: *const ggml_tensor) -> bool>,
    /// Whether the device can use tensors in buffers of type `buft`.
    pub supports_buft: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, buft: ggml_backend_buffer_type_t) -> bool>,
    /// (optional) Whether to run `op` here even when its weights live in an incompatible buffer.
    pub offload_op: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, op: *const ggml_tensor) -> bool>,
    /// (optional) Events.
    pub event_new: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t) -> ggml_backend_event_t>,
    pub event_free: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, event: ggml_backend_event_t)>,
    pub event_synchronize: Option<unsafe extern "C" fn(dev: ggml_backend_dev_t, event: ggml_backend_event_t)>,
}

/// `struct ggml_backend_device`: a device (methods, registration, private context).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_device {
    pub iface: ggml_backend_device_i,
    pub reg: ggml_backend_reg_t,
    pub context: *mut c_void,
}

// ---------------------------------------------------------------------------------------------------------
// Registration (ggml-backend-impl.h)

/// `struct ggml_backend_reg_i`: the methods of a backend registration.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_reg_i {
    pub get_name: Option<unsafe extern "C" fn(reg: ggml_backend_reg_t) -> *const c_char>,
    pub get_device_count: Option<unsafe extern "C" fn(reg: ggml_backend_reg_t) -> usize>,
    pub get_device: Option<unsafe extern "C" fn(reg: ggml_backend_reg_t, index: usize) -> ggml_backend_dev_t>,
    /// (optional) Look up a backend-specific function by name (e.g. "ggml_backend_get_features").
    pub get_proc_address: Option<unsafe extern "C" fn(reg: ggml_backend_reg_t, name: *const c_char) -> *mut c_void>,
}

/// `struct ggml_backend_reg`: a backend registration, what `ggml_backend_init` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_reg {
    /// Must be [`GGML_BACKEND_API_VERSION`].
    pub api_version: c_int,
    pub iface: ggml_backend_reg_i,
    pub context: *mut c_void,
}

/// `struct ggml_backend_feature` (ggml-backend.h): one name/value pair of the NULL-terminated array that
/// `ggml_backend_get_features` (a `get_proc_address` function) returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggml_backend_feature {
    pub name: *const c_char,
    pub value: *const c_char,
}

// ---------------------------------------------------------------------------------------------------------
// Entry points a dynamically loaded backend exports (ggml-backend-impl.h), and the `get_proc_address` function
// the host asks for by name (ggml-backend.h)

/// `ggml_backend_init_t`: type of the exported `ggml_backend_init`.
pub type ggml_backend_init_t = unsafe extern "C" fn() -> ggml_backend_reg_t;
/// `ggml_backend_score_t`: type of the optional export `ggml_backend_score` (higher is preferred, 0 unsupported).
pub type ggml_backend_score_t = unsafe extern "C" fn() -> c_int;
/// `ggml_backend_get_features_t`: returns a `{NULL, NULL}`-terminated array of features.
pub type ggml_backend_get_features_t = unsafe extern "C" fn(reg: ggml_backend_reg_t) -> *mut ggml_backend_feature;

// ---------------------------------------------------------------------------------------------------------
// ggml-base functions the adapter resolves in the host process

// ggml-backend-impl.h
/// Create a buffer from a buffer type, methods (copied), private context and size.
pub type ggml_backend_buffer_init_fn = unsafe extern "C" fn(
    buft: ggml_backend_buffer_type_t,
    iface: ggml_backend_buffer_i,
    context: *mut c_void,
    size: usize,
) -> ggml_backend_buffer_t;
/// Copy between buffers through their `cpy_tensor` methods (what `ggml_backend_tensor_copy` uses).
pub type ggml_backend_buffer_copy_tensor_fn =
    unsafe extern "C" fn(src: *const ggml_tensor, dst: *mut ggml_tensor) -> bool;
/// Whether an op may need more than `ggml_nbytes` from `get_alloc_size`.
pub type ggml_op_alloc_size_may_expand_fn = unsafe extern "C" fn(op: ggml_op) -> bool;

// ggml-backend.h
pub type ggml_backend_buffer_get_base_fn = unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> *mut c_void;
pub type ggml_backend_buffer_get_size_fn = unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> usize;
pub type ggml_backend_buffer_get_type_fn =
    unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> ggml_backend_buffer_type_t;
pub type ggml_backend_buffer_get_usage_fn =
    unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> ggml_backend_buffer_usage;
pub type ggml_backend_buffer_is_host_fn = unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> bool;
pub type ggml_backend_buffer_name_fn = unsafe extern "C" fn(buffer: ggml_backend_buffer_t) -> *const c_char;
pub type ggml_backend_buft_is_host_fn = unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> bool;
pub type ggml_backend_buft_name_fn = unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> *const c_char;
pub type ggml_backend_buft_get_device_fn = unsafe extern "C" fn(buft: ggml_backend_buffer_type_t) -> ggml_backend_dev_t;
pub type ggml_backend_reg_dev_get_fn =
    unsafe extern "C" fn(reg: ggml_backend_reg_t, index: usize) -> ggml_backend_dev_t;

// ggml.h
pub type ggml_nbytes_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> usize;
pub type ggml_nelements_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> i64;
pub type ggml_nrows_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> i64;
pub type ggml_is_contiguous_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> bool;
pub type ggml_is_empty_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> bool;
pub type ggml_blck_size_fn = unsafe extern "C" fn(r#type: ggml_type) -> i64;
pub type ggml_type_size_fn = unsafe extern "C" fn(r#type: ggml_type) -> usize;
pub type ggml_row_size_fn = unsafe extern "C" fn(r#type: ggml_type, ne: i64) -> usize;
pub type ggml_type_name_fn = unsafe extern "C" fn(r#type: ggml_type) -> *const c_char;
pub type ggml_op_name_fn = unsafe extern "C" fn(op: ggml_op) -> *const c_char;
/// Op name, or the unary / GLU sub-op name for those ops.
pub type ggml_op_desc_fn = unsafe extern "C" fn(t: *const ggml_tensor) -> *const c_char;
pub type ggml_unary_op_name_fn = unsafe extern "C" fn(op: ggml_unary_op) -> *const c_char;
pub type ggml_glu_op_name_fn = unsafe extern "C" fn(op: ggml_glu_op) -> *const c_char;
/// Sub-op of a `GGML_OP_UNARY` tensor (asserts the op).
pub type ggml_get_unary_op_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> ggml_unary_op;
/// Sub-op of a `GGML_OP_GLU` tensor (asserts the op).
pub type ggml_get_glu_op_fn = unsafe extern "C" fn(tensor: *const ggml_tensor) -> ggml_glu_op;
pub type ggml_guid_matches_fn = unsafe extern "C" fn(guid_a: ggml_guid_t, guid_b: ggml_guid_t) -> bool;
pub type ggml_status_to_string_fn = unsafe extern "C" fn(status: ggml_status) -> *const c_char;

// ggml-impl.h
/// printf-style logging through the host's log callback (`ggml_log_set`).
pub type ggml_log_internal_fn = unsafe extern "C" fn(level: ggml_log_level, format: *const c_char, ...);
