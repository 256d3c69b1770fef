//! The generic node call: `ggvk_graph_node` takes a `ggvk_node_desc` (an op, its typed parameters, up to
//! `GGVK_MAX_SRC` sources and the destination) and appends the engine node it describes. Everything about the
//! descriptor that needs no device (op and kind values, parameters, which sources are set, reserved words) is
//! checked by [`decode`] before any tensor is looked at; shapes, types and strides are then checked by the
//! engine's per-op checks (`ops::check`), the same ones the ggml door runs.

use super::api::{ggvk_graph, ggvk_rope_params, ggvk_tensor};
use super::{ggvk_status, guard};
use crate::error::{Error, Result};
use crate::graph::{GluOp, Node, Op, SrcPrec, UnaryOp};
use crate::ir::rope::{RopeParams, ROPE_MODE_NEOX, ROPE_MODE_NORMAL};

/// Most sources a node takes (FLASH_ATTN_EXT: q, k, v, mask, sinks).
pub const GGVK_MAX_SRC: usize = 5;

/// Sort order of `GGVK_OP_ARGSORT`: ascending (ggml's GGML_SORT_ORDER_ASC).
pub const GGVK_SORT_ORDER_ASC: i32 = 0;
/// Sort order of `GGVK_OP_ARGSORT`: descending (ggml's GGML_SORT_ORDER_DESC).
pub const GGVK_SORT_ORDER_DESC: i32 = 1;

/// Precision of `GGVK_OP_FLASH_ATTN_EXT`: the default (ggml's GGML_PREC_DEFAULT).
pub const GGVK_PREC_DEFAULT: i32 = 0;
/// Precision of `GGVK_OP_FLASH_ATTN_EXT`: F32 (ggml's GGML_PREC_F32; ggvk accumulates in f32 either way).
pub const GGVK_PREC_F32: i32 = 10;

/// The ops `ggvk_graph_node` runs (`ggvk_node_desc.op`). Sources are listed in ggml's order; "opt" sources may
/// be NULL. Every source and the destination are `ggvk_tensor`s laid out as ggml lays them out. 0 is no op, so a
/// zeroed descriptor is refused.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ggvk_op {
    /// Not an op: refused with `GGVK_STATUS_INVALID_ARGUMENT`.
    GGVK_OP_NONE = 0,
    /// ggml_mul_mat, `dst = a x b^T`: src[0] a (weights `[K, M, a2, a3]`, any `GGVK_TYPE_*` listed as a weight
    /// type), src[1] b F32 `[K, N, b2, b3]` with `b2 % a2 == 0`, `b3 % a3 == 0`; dst F32 `[M, N, b2, b3]`.
    GGVK_OP_MUL_MAT = 1,
    /// ggml_mul_mat_id (mixture of experts): src[0] the experts' weights `[K, M, n_experts]` (any weight type),
    /// src[1] b F32 `[K, n_b1, n_tokens]`, src[2] ids I32 `[n_used, n_tokens]`; dst F32 `[M, n_used, n_tokens]`.
    GGVK_OP_MUL_MAT_ID = 2,
    /// `dst = a + b` (ggml_add), b broadcast (repeated) over a: src[0] a, src[1] b; F32 or F16.
    GGVK_OP_ADD = 3,
    /// `dst = a * b` (ggml_mul), b broadcast over a.
    GGVK_OP_MUL = 4,
    /// `dst = a - b` (ggml_sub), b broadcast over a.
    GGVK_OP_SUB = 5,
    /// `dst = a / b` (ggml_div), b broadcast over a.
    GGVK_OP_DIV = 6,
    /// `dst = x * s + b` (ggml_scale, ggml_scale_bias): src[0] x; params.scale.
    GGVK_OP_SCALE = 7,
    /// Elementwise function of src[0] x (ggml_unary and ggml's SQR, SQRT, SIN, COS, LOG): params.unary.kind.
    GGVK_OP_UNARY = 8,
    /// `dst = MAX(MIN(x, max), min)` (ggml_clamp): src[0] x; params.clamp.
    GGVK_OP_CLAMP = 9,
    /// `dst = max(x, 0) + slope * min(x, 0)` (ggml_leaky_relu): src[0] x; params.leaky_relu.
    GGVK_OP_LEAKY_RELU = 10,
    /// Gated linear unit (ggml_glu): src[0] holds gate and up halves along dim 0 (gate first unless
    /// params.glu.swapped), or, with opt src[1], src[0] is the gate and src[1] the up projection
    /// (ggml_glu_split); dst has the halves' shape. params.glu.
    GGVK_OP_GLU = 11,
    /// Copy with type conversion and any strides (ggml_cpy / ggml_cont / ggml_dup): src[0] -> dst.
    GGVK_OP_CPY = 12,
    /// `x / sqrt(mean(x^2) + eps)` per row (ggml_rms_norm): src[0] x F32; params.norm.eps.
    GGVK_OP_RMS_NORM = 13,
    /// `(x - mean) / sqrt(var + eps)` per row (ggml_norm): src[0] x F32; params.norm.eps.
    GGVK_OP_NORM = 14,
    /// `x / max(|x|, eps)` per row (ggml_l2_norm): src[0] x F32; params.norm.eps.
    GGVK_OP_L2_NORM = 15,
    /// ggml_group_norm over `params.norm.groups` groups of dim-2 channels: src[0] x F32; params.norm.
    GGVK_OP_GROUP_NORM = 16,
    /// `softmax(x * scale + slope * mask)` per row (ggml_soft_max_ext): src[0] x F32, opt src[1] mask (F32 or
    /// F16, `[ne0, >= ne1, ...]`), opt src[2] sinks F32; params.soft_max.
    GGVK_OP_SOFT_MAX = 17,
    /// ggml_get_rows: src[0] data (F32, F16, BF16, I32 or any quantized weight type), src[1] row indices I32;
    /// dst F32 (I32 for I32 data).
    GGVK_OP_GET_ROWS = 18,
    /// ggml_set_rows: rows of src[0] (F32 or F16) written into dst (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
    /// IQ4_NL) at the indices src[1] (I64 or I32).
    GGVK_OP_SET_ROWS = 19,
    /// ggml_sum_rows: `dst[0, i1, i2, i3]` = the sum of row (i1, i2, i3) of src[0] (F32).
    GGVK_OP_SUM_ROWS = 20,
    /// ggml_mean: the row sums of src[0] (F32) divided by ne0.
    GGVK_OP_MEAN = 21,
    /// ggml_sum: the sum of every element of src[0] (F32); dst one value.
    GGVK_OP_SUM = 22,
    /// ggml_argmax: per row of a 2-D src[0] (F32), the I32 index of its largest value.
    GGVK_OP_ARGMAX = 23,
    /// ggml_argsort: per row of src[0] (F32), the I32 indices that sort it; params.argsort.order.
    GGVK_OP_ARGSORT = 24,
    /// ggml_top_k: per row of src[0] (F32), the I32 indices of its `dst.ne[0]` largest values (in no particular
    /// order).
    GGVK_OP_TOP_K = 25,
    /// ggml_rope_ext: src[0] x F32 `[ne0, heads, tokens, ne3]`, src[1] positions I32 `[tokens]`, opt src[2]
    /// frequency factors F32 `[n_dims/2]`; dst F32 shaped like x (may be x itself). params.rope.
    GGVK_OP_ROPE = 26,
    /// ggml_flash_attn_ext: src[0] q F32 `[DK, n_q, H, ne3]`, src[1] k `[DK, n_kv, H_kv, ...]`, src[2] v
    /// `[DV, n_kv, H_kv, ...]` (K/V F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 or IQ4_NL), opt src[3] mask F16
    /// `[n_kv, >= n_q, ...]`, opt src[4] sinks F32 `[H]`; dst F32 `[DV, H, n_q, ne3]`. params.flash_attn.
    GGVK_OP_FLASH_ATTN_EXT = 27,
    /// ggml_add_id: `dst[:, i1, i2] = a[:, i1, i2] + b[:, ids[i1, i2]]`: src[0] a F32, src[1] b F32, src[2] ids I32
    /// `[ne1, ne2]`.
    GGVK_OP_ADD_ID = 28,
}

/// The functions of `GGVK_OP_UNARY` (`params.unary.kind`). 0 is not a kind.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ggvk_unary_op {
    /// x * sigmoid(x).
    GGVK_UNARY_SILU = 1,
    /// |x|.
    GGVK_UNARY_ABS = 2,
    /// -1, 0 or 1.
    GGVK_UNARY_SGN = 3,
    /// -x.
    GGVK_UNARY_NEG = 4,
    /// 1 for x > 0, else 0.
    GGVK_UNARY_STEP = 5,
    /// tanh(x).
    GGVK_UNARY_TANH = 6,
    /// x for x > 0, else e^x - 1.
    GGVK_UNARY_ELU = 7,
    /// max(x, 0).
    GGVK_UNARY_RELU = 8,
    /// 1 / (1 + e^-x).
    GGVK_UNARY_SIGMOID = 9,
    /// GELU, tanh approximation (through ggml's f16 table).
    GGVK_UNARY_GELU = 10,
    /// x * sigmoid(1.702 x) (through ggml's f16 table).
    GGVK_UNARY_GELU_QUICK = 11,
    /// x * hardsigmoid(x).
    GGVK_UNARY_HARDSWISH = 12,
    /// clamp((x + 3) / 6, 0, 1).
    GGVK_UNARY_HARDSIGMOID = 13,
    /// e^x.
    GGVK_UNARY_EXP = 14,
    /// e^x - 1.
    GGVK_UNARY_EXPM1 = 15,
    /// log(1 + e^x) (x for x > 20).
    GGVK_UNARY_SOFTPLUS = 16,
    /// GELU with the exact erf.
    GGVK_UNARY_GELU_ERF = 17,
    /// floor(x).
    GGVK_UNARY_FLOOR = 18,
    /// ceil(x).
    GGVK_UNARY_CEIL = 19,
    /// roundf(x) (halves away from zero).
    GGVK_UNARY_ROUND = 20,
    /// trunc(x).
    GGVK_UNARY_TRUNC = 21,
    /// x * x (ggml_sqr).
    GGVK_UNARY_SQR = 22,
    /// sqrt(x) (ggml_sqrt).
    GGVK_UNARY_SQRT = 23,
    /// sin(x) (ggml_sin).
    GGVK_UNARY_SIN = 24,
    /// cos(x) (ggml_cos).
    GGVK_UNARY_COS = 25,
    /// log(x) (ggml_log).
    GGVK_UNARY_LOG = 26,
}

/// The gates of `GGVK_OP_GLU` (`params.glu.kind`). 0 is not a kind.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ggvk_glu_op {
    /// silu(gate) * up.
    GGVK_GLU_SWIGLU = 1,
    /// relu(gate) * up.
    GGVK_GLU_REGLU = 2,
    /// gelu(gate) * up (tanh approximation).
    GGVK_GLU_GEGLU = 3,
    /// gelu(gate) * up with the exact erf.
    GGVK_GLU_GEGLU_ERF = 4,
    /// gelu_quick(gate) * up.
    GGVK_GLU_GEGLU_QUICK = 5,
}

/// `GGVK_OP_SCALE`: `dst = x * s + b`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_scale_params {
    /// Multiplier (not NaN).
    pub s: f32,
    /// Added after scaling (not NaN; 0 for ggml_scale).
    pub b: f32,
}

/// `GGVK_OP_UNARY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_unary_params {
    /// A `ggvk_unary_op`.
    pub kind: i32,
}

/// `GGVK_OP_CLAMP`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_clamp_params {
    /// Lower bound (not NaN).
    pub min: f32,
    /// Upper bound (not NaN).
    pub max: f32,
}

/// `GGVK_OP_LEAKY_RELU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_leaky_relu_params {
    /// Slope for negative x (not NaN).
    pub slope: f32,
}

/// `GGVK_OP_GLU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_glu_params {
    /// A `ggvk_glu_op`.
    pub kind: i32,
    /// 0: gate in the first half of src[0]; 1: gate in the second half (ggml's swapped variants). Must be 0 in
    /// the split form (src[1] set).
    pub swapped: i32,
}

/// `GGVK_OP_RMS_NORM`, `GGVK_OP_NORM`, `GGVK_OP_L2_NORM`, `GGVK_OP_GROUP_NORM`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_norm_params {
    /// Added to the mean of squares / variance, or the norm's lower bound for L2_NORM (>= 0, finite).
    pub eps: f32,
    /// GROUP_NORM only: number of groups along dim 2 (>= 1, dividing ne[2]); ignored by the others.
    pub groups: i32,
}

/// `GGVK_OP_SOFT_MAX`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_soft_max_params {
    /// Multiplier of x (finite; 1 for ggml_soft_max).
    pub scale: f32,
    /// ALiBi maximum bias (>= 0, finite; 0: no ALiBi).
    pub max_bias: f32,
}

/// `GGVK_OP_ARGSORT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_argsort_params {
    /// `GGVK_SORT_ORDER_ASC` or `GGVK_SORT_ORDER_DESC`.
    pub order: i32,
}

/// `GGVK_OP_FLASH_ATTN_EXT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_flash_attn_params {
    /// Multiplier of q k^T (finite; usually 1/sqrt(DK)).
    pub scale: f32,
    /// ALiBi maximum bias (>= 0, finite; 0: no ALiBi).
    pub max_bias: f32,
    /// Logit soft-capping `softcap * tanh(s / softcap)` (>= 0, finite; 0: off).
    pub softcap: f32,
    /// `GGVK_PREC_DEFAULT` or `GGVK_PREC_F32`.
    pub prec: i32,
}

/// The typed parameters of every op family. Only the member that `ggvk_node_desc.op` names is read (ops not
/// listed here take none); the others are ignored. `reserved` must be zero (room for later families).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_op_params {
    /// `GGVK_OP_SCALE`.
    pub scale: ggvk_scale_params,
    /// `GGVK_OP_UNARY`.
    pub unary: ggvk_unary_params,
    /// `GGVK_OP_CLAMP`.
    pub clamp: ggvk_clamp_params,
    /// `GGVK_OP_LEAKY_RELU`.
    pub leaky_relu: ggvk_leaky_relu_params,
    /// `GGVK_OP_GLU`.
    pub glu: ggvk_glu_params,
    /// `GGVK_OP_RMS_NORM`, `GGVK_OP_NORM`, `GGVK_OP_L2_NORM`, `GGVK_OP_GROUP_NORM`.
    pub norm: ggvk_norm_params,
    /// `GGVK_OP_SOFT_MAX`.
    pub soft_max: ggvk_soft_max_params,
    /// `GGVK_OP_ARGSORT`.
    pub argsort: ggvk_argsort_params,
    /// `GGVK_OP_ROPE` (the same struct `ggvk_graph_rope` takes).
    pub rope: ggvk_rope_params,
    /// `GGVK_OP_FLASH_ATTN_EXT`.
    pub flash_attn: ggvk_flash_attn_params,
    /// Must be zero.
    pub reserved: [i32; 8],
}

/// One node for `ggvk_graph_node`: what to compute, from which tensors, into which. Start from
/// `ggvk_node_desc_init` (or zero it), then set the sources, the destination and the member of `params` the op
/// names.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ggvk_node_desc {
    /// A `ggvk_op`.
    pub op: i32,
    /// Sources in the op's order (see `ggvk_op`); the op's required ones non-NULL, optional ones NULL or set,
    /// the rest NULL.
    pub src: [*const ggvk_tensor; GGVK_MAX_SRC],
    /// The destination (written; it may be one of the sources where the op allows in-place use).
    pub dst: *const ggvk_tensor,
    /// Parameters of the op's family.
    pub params: ggvk_op_params,
}

impl Default for ggvk_node_desc {
    fn default() -> Self {
        ggvk_node_desc {
            op: 0,
            src: [std::ptr::null(); GGVK_MAX_SRC],
            dst: std::ptr::null(),
            params: ggvk_op_params::default(),
        }
    }
}

/// Whether a source is required or may be left NULL.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}
use Need::{Optional as Opt, Required as Req};

/// The C name of an op and its sources (name, need), in order.
struct Spec {
    name: &'static str,
    srcs: &'static [(&'static str, Need)],
}

const BINARY: &[(&str, Need)] = &[("a", Req), ("b", Req)];
const ONE: &[(&str, Need)] = &[("x", Req)];

fn spec(op: ggvk_op) -> Spec {
    use ggvk_op::*;
    let (name, srcs): (&str, &[(&str, Need)]) = match op {
        GGVK_OP_NONE => ("GGVK_OP_NONE", &[]),
        GGVK_OP_MUL_MAT => ("GGVK_OP_MUL_MAT", &[("weights a", Req), ("b", Req)]),
        GGVK_OP_MUL_MAT_ID => ("GGVK_OP_MUL_MAT_ID", &[("expert weights as", Req), ("b", Req), ("ids", Req)]),
        GGVK_OP_ADD => ("GGVK_OP_ADD", BINARY),
        GGVK_OP_MUL => ("GGVK_OP_MUL", BINARY),
        GGVK_OP_SUB => ("GGVK_OP_SUB", BINARY),
        GGVK_OP_DIV => ("GGVK_OP_DIV", BINARY),
        GGVK_OP_SCALE => ("GGVK_OP_SCALE", ONE),
        GGVK_OP_UNARY => ("GGVK_OP_UNARY", ONE),
        GGVK_OP_CLAMP => ("GGVK_OP_CLAMP", ONE),
        GGVK_OP_LEAKY_RELU => ("GGVK_OP_LEAKY_RELU", ONE),
        GGVK_OP_GLU => ("GGVK_OP_GLU", &[("x", Req), ("up", Opt)]),
        GGVK_OP_CPY => ("GGVK_OP_CPY", &[("src", Req)]),
        GGVK_OP_RMS_NORM => ("GGVK_OP_RMS_NORM", ONE),
        GGVK_OP_NORM => ("GGVK_OP_NORM", ONE),
        GGVK_OP_L2_NORM => ("GGVK_OP_L2_NORM", ONE),
        GGVK_OP_GROUP_NORM => ("GGVK_OP_GROUP_NORM", ONE),
        GGVK_OP_SOFT_MAX => ("GGVK_OP_SOFT_MAX", &[("x", Req), ("mask", Opt), ("sinks", Opt)]),
        GGVK_OP_GET_ROWS => ("GGVK_OP_GET_ROWS", &[("data", Req), ("indices", Req)]),
        GGVK_OP_SET_ROWS => ("GGVK_OP_SET_ROWS", &[("rows", Req), ("indices", Req)]),
        GGVK_OP_SUM_ROWS => ("GGVK_OP_SUM_ROWS", ONE),
        GGVK_OP_MEAN => ("GGVK_OP_MEAN", ONE),
        GGVK_OP_SUM => ("GGVK_OP_SUM", ONE),
        GGVK_OP_ARGMAX => ("GGVK_OP_ARGMAX", ONE),
        GGVK_OP_ARGSORT => ("GGVK_OP_ARGSORT", ONE),
        GGVK_OP_TOP_K => ("GGVK_OP_TOP_K", ONE),
        GGVK_OP_ROPE => ("GGVK_OP_ROPE", &[("x", Req), ("pos", Req), ("freq_factors", Opt)]),
        GGVK_OP_FLASH_ATTN_EXT => {
            ("GGVK_OP_FLASH_ATTN_EXT", &[("q", Req), ("k", Req), ("v", Req), ("mask", Opt), ("sinks", Opt)])
        }
        GGVK_OP_ADD_ID => ("GGVK_OP_ADD_ID", &[("a", Req), ("b", Req), ("ids", Req)]),
    };
    Spec { name, srcs }
}

impl ggvk_op {
    /// Every op, in numbering order.
    const ALL: [ggvk_op; 29] = {
        use ggvk_op::*;
        [
            GGVK_OP_NONE,
            GGVK_OP_MUL_MAT,
            GGVK_OP_MUL_MAT_ID,
            GGVK_OP_ADD,
            GGVK_OP_MUL,
            GGVK_OP_SUB,
            GGVK_OP_DIV,
            GGVK_OP_SCALE,
            GGVK_OP_UNARY,
            GGVK_OP_CLAMP,
            GGVK_OP_LEAKY_RELU,
            GGVK_OP_GLU,
            GGVK_OP_CPY,
            GGVK_OP_RMS_NORM,
            GGVK_OP_NORM,
            GGVK_OP_L2_NORM,
            GGVK_OP_GROUP_NORM,
            GGVK_OP_SOFT_MAX,
            GGVK_OP_GET_ROWS,
            GGVK_OP_SET_ROWS,
            GGVK_OP_SUM_ROWS,
            GGVK_OP_MEAN,
            GGVK_OP_SUM,
            GGVK_OP_ARGMAX,
            GGVK_OP_ARGSORT,
            GGVK_OP_TOP_K,
            GGVK_OP_ROPE,
            GGVK_OP_FLASH_ATTN_EXT,
            GGVK_OP_ADD_ID,
        ]
    };

    fn from_raw(raw: i32) -> Option<Self> {
        let i = usize::try_from(raw).ok()?;
        Self::ALL.get(i).copied()
    }
}

fn unary_from_raw(raw: i32) -> Option<UnaryOp> {
    use UnaryOp as U;
    const ALL: [UnaryOp; 26] = [
        U::Silu,
        U::Abs,
        U::Sgn,
        U::Neg,
        U::Step,
        U::Tanh,
        U::Elu,
        U::Relu,
        U::Sigmoid,
        U::Gelu,
        U::GeluQuick,
        U::HardSwish,
        U::HardSigmoid,
        U::Exp,
        U::Expm1,
        U::Softplus,
        U::GeluErf,
        U::Floor,
        U::Ceil,
        U::Round,
        U::Trunc,
        U::Sqr,
        U::Sqrt,
        U::Sin,
        U::Cos,
        U::Log,
    ];
    let i = usize::try_from(raw).ok()?.checked_sub(1)?;
    ALL.get(i).copied()
}

fn glu_from_raw(raw: i32) -> Option<GluOp> {
    const ALL: [GluOp; 5] = [GluOp::SwiGlu, GluOp::ReGlu, GluOp::GeGlu, GluOp::GeGluErf, GluOp::GeGluQuick];
    let i = usize::try_from(raw).ok()?.checked_sub(1)?;
    ALL.get(i).copied()
}

// The C numbering of the kinds follows the tables above.
const _: () = assert!(ggvk_unary_op::GGVK_UNARY_LOG as i32 == 26 && ggvk_glu_op::GGVK_GLU_GEGLU_QUICK as i32 == 5);
const _: () = assert!(ggvk_op::GGVK_OP_ADD_ID as usize == ggvk_op::ALL.len() - 1);

fn not_nan(op: &str, what: &str, v: f32) -> Result<()> {
    if v.is_nan() {
        return Err(Error::invalid(format!("{op}: {what} is NaN")));
    }
    Ok(())
}

fn finite(op: &str, what: &str, v: f32) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::invalid(format!("{op}: {what} = {v} must be finite")));
    }
    Ok(())
}

fn non_negative(op: &str, what: &str, v: f32) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(Error::invalid(format!("{op}: {what} = {v} must be finite and >= 0")));
    }
    Ok(())
}

/// The engine op a descriptor describes, with the names of its sources: the op value, its parameters, which
/// sources are set and the reserved words are checked here; no tensor is read.
fn decode(d: &ggvk_node_desc) -> Result<(Op, Spec)> {
    let op = ggvk_op::from_raw(d.op).ok_or_else(|| {
        Error::invalid(format!("unknown op {} (ggvk_op values are 1..={})", d.op, ggvk_op::ALL.len() - 1))
    })?;
    let spec = spec(op);
    let name = spec.name;
    let p = &d.params;
    if let Some(i) = p.reserved.iter().position(|&r| r != 0) {
        return Err(Error::invalid(format!("{name}: params.reserved[{i}] = {} must be 0", p.reserved[i])));
    }
    use ggvk_op::*;
    let op = match op {
        GGVK_OP_NONE => {
            return Err(Error::invalid("op is GGVK_OP_NONE (0): set ggvk_node_desc.op to a ggvk_op"));
        }
        GGVK_OP_MUL_MAT => Op::MulMat,
        GGVK_OP_MUL_MAT_ID => Op::MulMatId { b_prec: SrcPrec::Any },
        GGVK_OP_ADD => Op::Add,
        GGVK_OP_MUL => Op::Mul,
        GGVK_OP_SUB => Op::Sub,
        GGVK_OP_DIV => Op::Div,
        GGVK_OP_SCALE => {
            not_nan(name, "params.scale.s", p.scale.s)?;
            not_nan(name, "params.scale.b", p.scale.b)?;
            Op::Scale { s: p.scale.s, b: p.scale.b }
        }
        GGVK_OP_UNARY => Op::Unary(unary_from_raw(p.unary.kind).ok_or_else(|| {
            Error::invalid(format!("{name}: params.unary.kind = {} is not a ggvk_unary_op (1..=26)", p.unary.kind))
        })?),
        GGVK_OP_CLAMP => {
            not_nan(name, "params.clamp.min", p.clamp.min)?;
            not_nan(name, "params.clamp.max", p.clamp.max)?;
            Op::Clamp { min: p.clamp.min, max: p.clamp.max }
        }
        GGVK_OP_LEAKY_RELU => {
            not_nan(name, "params.leaky_relu.slope", p.leaky_relu.slope)?;
            Op::LeakyRelu { slope: p.leaky_relu.slope }
        }
        GGVK_OP_GLU => {
            let kind = glu_from_raw(p.glu.kind).ok_or_else(|| {
                Error::invalid(format!("{name}: params.glu.kind = {} is not a ggvk_glu_op (1..=5)", p.glu.kind))
            })?;
            let swapped = match p.glu.swapped {
                0 => false,
                1 => true,
                s => return Err(Error::invalid(format!("{name}: params.glu.swapped = {s} must be 0 or 1"))),
            };
            if swapped && !d.src[1].is_null() {
                return Err(Error::invalid(format!(
                    "{name}: params.glu.swapped must be 0 in the split form (src[1] set): pass the gate as src[0]"
                )));
            }
            Op::Glu { op: kind, swapped }
        }
        GGVK_OP_CPY => Op::Cpy,
        GGVK_OP_RMS_NORM | GGVK_OP_NORM | GGVK_OP_L2_NORM | GGVK_OP_GROUP_NORM => {
            let eps = p.norm.eps;
            non_negative(name, "params.norm.eps", eps)?;
            match op {
                GGVK_OP_RMS_NORM => Op::RmsNorm { eps },
                GGVK_OP_NORM => Op::Norm { eps },
                GGVK_OP_L2_NORM => Op::L2Norm { eps },
                _ => {
                    if p.norm.groups < 1 {
                        return Err(Error::invalid(format!(
                            "{name}: params.norm.groups = {} must be >= 1",
                            p.norm.groups
                        )));
                    }
                    Op::GroupNorm { groups: p.norm.groups, eps }
                }
            }
        }
        GGVK_OP_SOFT_MAX => {
            finite(name, "params.soft_max.scale", p.soft_max.scale)?;
            non_negative(name, "params.soft_max.max_bias", p.soft_max.max_bias)?;
            Op::SoftMax { scale: p.soft_max.scale, max_bias: p.soft_max.max_bias }
        }
        GGVK_OP_GET_ROWS => Op::GetRows,
        GGVK_OP_SET_ROWS => Op::SetRows,
        GGVK_OP_SUM_ROWS => Op::SumRows,
        GGVK_OP_MEAN => Op::Mean,
        GGVK_OP_SUM => Op::Sum,
        GGVK_OP_ARGMAX => Op::ArgMax,
        GGVK_OP_ARGSORT => match p.argsort.order {
            GGVK_SORT_ORDER_ASC => Op::ArgSort { desc: false },
            GGVK_SORT_ORDER_DESC => Op::ArgSort { desc: true },
            o => {
                return Err(Error::invalid(format!(
                    "{name}: params.argsort.order = {o} is not GGVK_SORT_ORDER_ASC (0) or GGVK_SORT_ORDER_DESC (1)"
                )))
            }
        },
        GGVK_OP_TOP_K => Op::TopK,
        GGVK_OP_ROPE => Op::Rope(rope_params(name, &p.rope)?),
        GGVK_OP_FLASH_ATTN_EXT => {
            let f = &p.flash_attn;
            finite(name, "params.flash_attn.scale", f.scale)?;
            non_negative(name, "params.flash_attn.max_bias", f.max_bias)?;
            non_negative(name, "params.flash_attn.softcap", f.softcap)?;
            if f.prec != GGVK_PREC_DEFAULT && f.prec != GGVK_PREC_F32 {
                return Err(Error::invalid(format!(
                    "{name}: params.flash_attn.prec = {} is not GGVK_PREC_DEFAULT (0) or GGVK_PREC_F32 (10)",
                    f.prec
                )));
            }
            Op::FlashAttnExt { scale: f.scale, max_bias: f.max_bias, softcap: f.softcap, prec: f.prec }
        }
        GGVK_OP_ADD_ID => Op::AddId,
    };
    // Which sources are set: required ones non-NULL, none past the op's last.
    for (i, &s) in d.src.iter().enumerate() {
        match spec.srcs.get(i) {
            Some(&(what, Req)) if s.is_null() => {
                return Err(Error::invalid(format!("{name}: src[{i}] ({what}) is NULL but required")));
            }
            None if !s.is_null() => {
                let names: Vec<&str> = spec.srcs.iter().map(|(n, _)| *n).collect();
                return Err(Error::invalid(format!(
                    "{name} takes {} source(s) ({}); src[{i}] must be NULL",
                    spec.srcs.len(),
                    names.join(", ")
                )));
            }
            _ => {}
        }
    }
    if d.dst.is_null() {
        return Err(Error::invalid(format!("{name}: dst is NULL")));
    }
    Ok((op, spec))
}

/// The rope parameters the engine takes, checked: n_dims even and positive, a mode ggvk runs, finite factors.
fn rope_params(name: &str, p: &ggvk_rope_params) -> Result<RopeParams> {
    if p.n_dims <= 0 || p.n_dims % 2 != 0 {
        return Err(Error::invalid(format!("{name}: params.rope.n_dims = {} must be even and > 0", p.n_dims)));
    }
    if p.mode != ROPE_MODE_NORMAL && p.mode != ROPE_MODE_NEOX {
        return Err(Error::unsupported(format!(
            "{name}: params.rope.mode = {} (only GGVK_ROPE_MODE_NORMAL 0 and GGVK_ROPE_MODE_NEOX 2)",
            p.mode
        )));
    }
    for (what, v) in [
        ("freq_base", p.freq_base),
        ("freq_scale", p.freq_scale),
        ("ext_factor", p.ext_factor),
        ("attn_factor", p.attn_factor),
        ("beta_fast", p.beta_fast),
        ("beta_slow", p.beta_slow),
    ] {
        finite(name, &format!("params.rope.{what}"), v)?;
    }
    if p.freq_base <= 0.0 {
        return Err(Error::invalid(format!("{name}: params.rope.freq_base = {} must be > 0", p.freq_base)));
    }
    Ok(RopeParams {
        n_dims: p.n_dims,
        mode: p.mode,
        n_ctx_orig: p.n_ctx_orig,
        freq_base: p.freq_base,
        freq_scale: p.freq_scale,
        ext_factor: p.ext_factor,
        attn_factor: p.attn_factor,
        beta_fast: p.beta_fast,
        beta_slow: p.beta_slow,
        ..RopeParams::default()
    })
}

/// Append the node `d` describes to `graph` (the body of `ggvk_graph_node` and of its thin wrappers).
pub(crate) fn append(graph: *mut ggvk_graph, d: &ggvk_node_desc) -> Result<()> {
    let g = super::api::graph_mut(graph)?;
    let (op, spec) = decode(d)?;
    let mut src = Vec::with_capacity(spec.srcs.len());
    for (i, (what, _)) in spec.srcs.iter().enumerate() {
        src.push(super::api::tensor_opt(d.src[i], &format!("{}: src[{i}] ({what})", spec.name))?);
    }
    let dst = super::api::tensor(d.dst, &format!("{}: dst", spec.name))?;
    g.push(Node { op, src, dst })
}

/// Fill `*desc` for `op`: every source, the destination and `reserved` zero/NULL, and the op's parameters at
/// ggml's defaults (SCALE s = 1, b = 0; CLAMP -inf..inf; SOFT_MAX scale 1, max_bias 0; norms eps 1e-6 (GROUP_NORM
/// 1e-6 with 1 group); ROPE freq_base 10000, freq_scale 1, ext_factor 0, attn_factor 1, beta_fast 32, beta_slow 1,
/// mode NORMAL, n_dims 0 (set it); FLASH_ATTN_EXT scale 1; UNARY and GLU kind 0 (set it); ARGSORT ascending).
/// Any `op` value is accepted here (an unknown one is refused by `ggvk_graph_node`).
#[no_mangle]
pub extern "C" fn ggvk_node_desc_init(desc: *mut ggvk_node_desc, op: i32) -> ggvk_status {
    guard("ggvk_node_desc_init", || {
        let out = super::api::out_ref(desc, "desc")?;
        let mut d = ggvk_node_desc { op, ..Default::default() };
        let p = &mut d.params;
        p.scale = ggvk_scale_params { s: 1.0, b: 0.0 };
        p.clamp = ggvk_clamp_params { min: f32::NEG_INFINITY, max: f32::INFINITY };
        p.norm = ggvk_norm_params { eps: 1e-6, groups: 1 };
        p.soft_max = ggvk_soft_max_params { scale: 1.0, max_bias: 0.0 };
        let r = RopeParams::default();
        p.rope = ggvk_rope_params {
            n_dims: 0,
            mode: r.mode,
            n_ctx_orig: 0,
            freq_base: r.freq_base,
            freq_scale: r.freq_scale,
            ext_factor: r.ext_factor,
            attn_factor: r.attn_factor,
            beta_fast: r.beta_fast,
            beta_slow: r.beta_slow,
        };
        p.flash_attn = ggvk_flash_attn_params { scale: 1.0, max_bias: 0.0, softcap: 0.0, prec: GGVK_PREC_DEFAULT };
        *out = d;
        Ok(())
    })
}

/// Append one node to `graph`: `desc->op` with `desc->params`, sources `desc->src[0..]`, destination
/// `desc->dst` (see `ggvk_op` for each op's sources, types and shapes).
///
/// Checked before anything is appended, each failure a status with a message in `ggvk_last_error()`:
/// `GGVK_STATUS_INVALID_ARGUMENT` for a NULL graph or descriptor, an unknown op or kind, a bad parameter (NaN,
/// negative eps or max_bias, ...), a required source or dst NULL, a source set past the op's last, non-zero
/// `reserved`, a tensor that is malformed, and shapes that do not fit together; `GGVK_STATUS_OUT_OF_BOUNDS` for a
/// tensor that reaches past its buffer; `GGVK_STATUS_UNSUPPORTED` for a valid combination ggvk does not run
/// (a type, a rope mode, strides a kernel cannot take). On failure the graph is unchanged and still usable.
///
/// Ownership: the descriptor and the `ggvk_tensor` structs it points to are read during the call only (the node
/// keeps copies of the tensors' type, shape, strides and offset), so they may be reused or freed right after.
/// The node holds a reference to each buffer it names: `ggvk_buffer_free` on one of them releases the handle,
/// and the memory stays alive until every graph using it is freed and its submitted work has finished. A graph
/// reads its buffers' bytes when computed, not when built.
#[no_mangle]
pub extern "C" fn ggvk_graph_node(graph: *mut ggvk_graph, desc: *const ggvk_node_desc) -> ggvk_status {
    guard("ggvk_graph_node", || {
        let d = super::api::in_ref(desc, "desc")?;
        append(graph, d)
    })
}

/// A static, NUL-terminated name of a `ggvk_op` ("GGVK_OP_ROPE"); "GGVK_OP_UNKNOWN" for other values.
#[no_mangle]
pub extern "C" fn ggvk_op_name(op: i32) -> *const std::ffi::c_char {
    static NAMES: std::sync::OnceLock<Vec<std::ffi::CString>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        ggvk_op::ALL.iter().map(|&o| std::ffi::CString::new(spec(o).name).unwrap_or_default()).collect()
    });
    match usize::try_from(op).ok().and_then(|i| names.get(i)) {
        Some(n) => n.as_ptr(),
        None => c"GGVK_OP_UNKNOWN".as_ptr(),
    }
}

#[cfg(test)]
pub(crate) fn decode_for_test(d: &ggvk_node_desc) -> Result<String> {
    decode(d).map(|(op, spec)| format!("{} {:?}", spec.name, op))
}
