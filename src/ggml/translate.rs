//! ggml graph -> engine graph. VIEW, RESHAPE, PERMUTE, TRANSPOSE and NONE become nothing (the views' strides
//! and offsets travel with the tensors that use them); every other op maps to an engine node with its typed
//! parameters decoded from `op_params`.

use std::sync::Arc;

use super::buffer::{buffer_of, BASE};
use super::sys;
use crate::error::{Error, Result};
use crate::graph::{GluOp, Node, Op, PoolOp, ScaleMode, Tensor, UnaryOp};
use crate::ir::{RopeParams, SrcPrec};
use crate::quant::GgmlType;
use crate::vk::{Buffer, Device};

/// Where tensor memory comes from while translating.
#[derive(Clone, Copy)]
pub enum Memory<'a> {
    /// The tensors' own ggvk buffers (graph compute).
    Real(&'a Arc<Device>),
    /// A placeholder of the device for tensors without memory (supports_op); each tensor gets its own range.
    Check(&'a Arc<Buffer>),
}

fn f32_param(t: &sys::ggml_tensor, i: usize) -> f32 {
    f32::from_bits(t.op_params[i] as u32)
}

/// ggml_op_pool (op param 0 of POOL_1D / POOL_2D).
fn pool_op(raw: i32) -> Result<PoolOp> {
    match raw {
        sys::GGML_OP_POOL_MAX => Ok(PoolOp::Max),
        sys::GGML_OP_POOL_AVG => Ok(PoolOp::Avg),
        o => Err(Error::unsupported(format!("pool op {o}"))),
    }
}

/// The engine view of a ggml tensor. `slot` numbers the tensors of one node (distinct ranges when checking).
///
/// # Safety
/// `t` must point to a live ggml tensor whose `buffer`, if non-null, is a live ggml buffer.
pub unsafe fn tensor(t: *const sys::ggml_tensor, mem: Memory<'_>, slot: u64) -> Result<Tensor> {
    // SAFETY: the caller guarantees `t` is a live tensor.
    let t = unsafe { t.as_ref() }.ok_or_else(|| Error::invalid("NULL tensor"))?;
    let ty = GgmlType::from_raw(t.r#type).ok_or_else(|| Error::unsupported(format!("ggml type {}", t.r#type)))?;
    let nb = t.nb.map(|x| x as u64);
    match mem {
        Memory::Real(device) => {
            // SAFETY: the caller guarantees the buffer pointer, when non-null, is a live ggml buffer.
            let buf = unsafe { buffer_of(t.buffer) }.ok_or_else(|| Error::invalid("tensor is not in a GGVK buffer"))?;
            if !Arc::ptr_eq(buf.device(), device) {
                return Err(Error::invalid("tensor is in a buffer of another GGVK device"));
            }
            let offset = (t.data as usize)
                .checked_sub(BASE)
                .ok_or_else(|| Error::invalid("tensor data pointer is below its buffer's base"))?;
            Tensor::new(buf, offset as u64, ty, t.ne, nb)
        }
        Memory::Check(placeholder) => Tensor::new(placeholder.clone(), slot << 40, ty, t.ne, nb),
    }
}

/// Whether ggml's node needs no work (views, empty tensors, nodes not flagged for compute).
pub fn is_noop(t: &sys::ggml_tensor) -> bool {
    matches!(
        t.op,
        sys::GGML_OP_NONE | sys::GGML_OP_VIEW | sys::GGML_OP_RESHAPE | sys::GGML_OP_PERMUTE | sys::GGML_OP_TRANSPOSE
    ) || t.ne.contains(&0)
}

/// Translate one ggml node; `Ok(None)` for nodes that need no work.
///
/// # Safety
/// `t` and its sources must be live ggml tensors.
pub unsafe fn node(t: *const sys::ggml_tensor, mem: Memory<'_>) -> Result<Option<Node>> {
    // SAFETY: the caller guarantees `t` is live.
    let tr = unsafe { t.as_ref() }.ok_or_else(|| Error::invalid("NULL node"))?;
    if is_noop(tr) {
        return Ok(None);
    }
    let op = match tr.op {
        // Every MUL_MAT path may copy src1 to f16 or 8-bit blocks: a request to keep it finer runs elsewhere.
        sys::GGML_OP_MUL_MAT => match SrcPrec::from_ggml(tr.op_params[3]) {
            Some(SrcPrec::Any | SrcPrec::Q8 | SrcPrec::Q4) => Op::MulMat,
            _ => return Err(Error::unsupported(format!("MUL_MAT with src1 precision {}", tr.op_params[3]))),
        },
        sys::GGML_OP_OUT_PROD => Op::OutProd,
        sys::GGML_OP_MUL_MAT_ID => Op::MulMatId {
            b_prec: SrcPrec::from_ggml(tr.op_params[3])
                .ok_or_else(|| Error::unsupported(format!("MUL_MAT_ID with src1 precision {}", tr.op_params[3])))?,
        },
        sys::GGML_OP_ADD_ID => Op::AddId,
        sys::GGML_OP_ARGSORT => match tr.op_params[0] {
            sys::GGML_SORT_ORDER_ASC => Op::ArgSort { desc: false },
            sys::GGML_SORT_ORDER_DESC => Op::ArgSort { desc: true },
            o => return Err(Error::unsupported(format!("ARGSORT with sort order {o}"))),
        },
        sys::GGML_OP_TOP_K => Op::TopK,
        sys::GGML_OP_ADD => Op::Add,
        sys::GGML_OP_MUL => Op::Mul,
        sys::GGML_OP_SUB => Op::Sub,
        sys::GGML_OP_DIV => Op::Div,
        // ggml_add1 adds a one-element src1: ADD's broadcast covers it.
        sys::GGML_OP_ADD1 => Op::Add,
        sys::GGML_OP_SCALE => Op::Scale { s: f32_param(tr, 0), b: f32_param(tr, 1) },
        sys::GGML_OP_RMS_NORM => Op::RmsNorm { eps: f32_param(tr, 0) },
        sys::GGML_OP_NORM => Op::Norm { eps: f32_param(tr, 0) },
        sys::GGML_OP_L2_NORM => Op::L2Norm { eps: f32_param(tr, 0) },
        sys::GGML_OP_GROUP_NORM => Op::GroupNorm { groups: tr.op_params[0], eps: f32_param(tr, 1) },
        sys::GGML_OP_SOFT_MAX => Op::SoftMax { scale: f32_param(tr, 0), max_bias: f32_param(tr, 1) },
        sys::GGML_OP_CPY | sys::GGML_OP_CONT | sys::GGML_OP_DUP => Op::Cpy,
        sys::GGML_OP_GET_ROWS => Op::GetRows,
        sys::GGML_OP_SET_ROWS => Op::SetRows,
        sys::GGML_OP_SUM_ROWS => Op::SumRows,
        sys::GGML_OP_MEAN => Op::Mean,
        sys::GGML_OP_SUM => Op::Sum,
        sys::GGML_OP_ARGMAX => Op::ArgMax,
        sys::GGML_OP_FLASH_ATTN_EXT => Op::FlashAttnExt {
            scale: f32_param(tr, 0),
            max_bias: f32_param(tr, 1),
            softcap: f32_param(tr, 2),
            prec: tr.op_params[3],
        },
        sys::GGML_OP_ROPE | sys::GGML_OP_ROPE_BACK => {
            let p = &tr.op_params;
            // Multi-section (mrope/imrope/vision) modes carry their sections in params 11..15.
            Op::Rope(RopeParams {
                n_dims: p[1],
                mode: p[2],
                n_ctx_orig: p[4],
                freq_base: f32_param(tr, 5),
                freq_scale: f32_param(tr, 6),
                ext_factor: f32_param(tr, 7),
                attn_factor: f32_param(tr, 8),
                beta_fast: f32_param(tr, 9),
                beta_slow: f32_param(tr, 10),
                n_offs: p[15],
                sections: [p[11], p[12], p[13], p[14]],
                back: tr.op == sys::GGML_OP_ROPE_BACK,
            })
        }
        sys::GGML_OP_UNARY if tr.op_params[0] == sys::GGML_UNARY_OP_XIELU => Op::Xielu {
            alpha_n: f32_param(tr, 1),
            alpha_p: f32_param(tr, 2),
            beta: f32_param(tr, 3),
            eps: f32_param(tr, 4),
        },
        sys::GGML_OP_UNARY => Op::Unary(match tr.op_params[0] {
            sys::GGML_UNARY_OP_SILU => UnaryOp::Silu,
            sys::GGML_UNARY_OP_ABS => UnaryOp::Abs,
            sys::GGML_UNARY_OP_SGN => UnaryOp::Sgn,
            sys::GGML_UNARY_OP_NEG => UnaryOp::Neg,
            sys::GGML_UNARY_OP_STEP => UnaryOp::Step,
            sys::GGML_UNARY_OP_TANH => UnaryOp::Tanh,
            sys::GGML_UNARY_OP_ELU => UnaryOp::Elu,
            sys::GGML_UNARY_OP_RELU => UnaryOp::Relu,
            sys::GGML_UNARY_OP_SIGMOID => UnaryOp::Sigmoid,
            sys::GGML_UNARY_OP_GELU => UnaryOp::Gelu,
            sys::GGML_UNARY_OP_GELU_QUICK => UnaryOp::GeluQuick,
            sys::GGML_UNARY_OP_HARDSWISH => UnaryOp::HardSwish,
            sys::GGML_UNARY_OP_HARDSIGMOID => UnaryOp::HardSigmoid,
            sys::GGML_UNARY_OP_EXP => UnaryOp::Exp,
            sys::GGML_UNARY_OP_EXPM1 => UnaryOp::Expm1,
            sys::GGML_UNARY_OP_SOFTPLUS => UnaryOp::Softplus,
            sys::GGML_UNARY_OP_GELU_ERF => UnaryOp::GeluErf,
            sys::GGML_UNARY_OP_FLOOR => UnaryOp::Floor,
            sys::GGML_UNARY_OP_CEIL => UnaryOp::Ceil,
            sys::GGML_UNARY_OP_ROUND => UnaryOp::Round,
            sys::GGML_UNARY_OP_TRUNC => UnaryOp::Trunc,
            u => return Err(Error::unsupported(format!("unary op {u}"))),
        }),
        sys::GGML_OP_SQR => Op::Unary(UnaryOp::Sqr),
        sys::GGML_OP_SQRT => Op::Unary(UnaryOp::Sqrt),
        sys::GGML_OP_SIN => Op::Unary(UnaryOp::Sin),
        sys::GGML_OP_COS => Op::Unary(UnaryOp::Cos),
        sys::GGML_OP_LOG => Op::Unary(UnaryOp::Log),
        sys::GGML_OP_CLAMP => Op::Clamp { min: f32_param(tr, 0), max: f32_param(tr, 1) },
        sys::GGML_OP_LEAKY_RELU => Op::LeakyRelu { slope: f32_param(tr, 0) },
        sys::GGML_OP_GLU if tr.op_params[0] == sys::GGML_GLU_OP_SWIGLU_OAI => {
            Op::SwigluOai { swapped: tr.op_params[1] != 0, alpha: f32_param(tr, 2), limit: f32_param(tr, 3) }
        }
        sys::GGML_OP_GLU if tr.op_params[0] == sys::GGML_GLU_OP_SWIGLU_CLAMP => {
            Op::SwigluClamp { swapped: tr.op_params[1] != 0, limit: f32_param(tr, 3) }
        }
        sys::GGML_OP_GLU => {
            let op = match tr.op_params[0] {
                sys::GGML_GLU_OP_SWIGLU => GluOp::SwiGlu,
                sys::GGML_GLU_OP_REGLU => GluOp::ReGlu,
                sys::GGML_GLU_OP_GEGLU => GluOp::GeGlu,
                sys::GGML_GLU_OP_GEGLU_ERF => GluOp::GeGluErf,
                sys::GGML_GLU_OP_GEGLU_QUICK => GluOp::GeGluQuick,
                g => return Err(Error::unsupported(format!("glu op {g}"))),
            };
            Op::Glu { op, swapped: tr.op_params[1] != 0 }
        }
        sys::GGML_OP_REPEAT => Op::Repeat,
        sys::GGML_OP_CONCAT => Op::Concat { dim: tr.op_params[0] },
        sys::GGML_OP_PAD => {
            let p = &tr.op_params;
            Op::Pad { lp: [p[0], p[2], p[4], p[6]], rp: [p[1], p[3], p[5], p[7]], circular: p[8] != 0 }
        }
        sys::GGML_OP_PAD_REFLECT_1D => Op::PadReflect1d { p0: tr.op_params[0], p1: tr.op_params[1] },
        sys::GGML_OP_ROLL => {
            let p = &tr.op_params;
            Op::Roll { shift: [p[0], p[1], p[2], p[3]] }
        }
        sys::GGML_OP_ARANGE => Op::Arange { start: f32_param(tr, 0), stop: f32_param(tr, 1), step: f32_param(tr, 2) },
        sys::GGML_OP_CUMSUM => Op::Cumsum,
        sys::GGML_OP_DIAG => Op::Diag,
        sys::GGML_OP_REPEAT_BACK => Op::RepeatBack,
        sys::GGML_OP_COL2IM_1D => {
            let p = &tr.op_params;
            Op::Col2Im1d { s0: p[0], oc: p[1], p0: p[2] }
        }
        sys::GGML_OP_IM2COL => {
            let p = &tr.op_params;
            Op::Im2Col { s: [p[0], p[1]], p: [p[2], p[3]], d: [p[4], p[5]], is_2d: p[6] == 1 }
        }
        sys::GGML_OP_IM2COL_3D => {
            let p = &tr.op_params;
            Op::Im2Col3d { s: [p[0], p[1], p[2]], p: [p[3], p[4], p[5]], d: [p[6], p[7], p[8]], ic: p[9] }
        }
        sys::GGML_OP_POOL_1D => {
            let p = &tr.op_params;
            Op::Pool1d { op: pool_op(p[0])?, k: p[1], s: p[2], p: p[3] }
        }
        sys::GGML_OP_POOL_2D => {
            let p = &tr.op_params;
            Op::Pool2d { op: pool_op(p[0])?, k: [p[1], p[2]], s: [p[3], p[4]], p: [p[5], p[6]] }
        }
        sys::GGML_OP_UPSCALE => {
            let flags = tr.op_params[0];
            let mode = match flags & 0xFF {
                sys::GGML_SCALE_MODE_NEAREST => ScaleMode::Nearest,
                sys::GGML_SCALE_MODE_BILINEAR => ScaleMode::Bilinear,
                sys::GGML_SCALE_MODE_BICUBIC => ScaleMode::Bicubic,
                m => return Err(Error::unsupported(format!("UPSCALE mode {m}"))),
            };
            let known = 0xFF | sys::GGML_SCALE_FLAG_ALIGN_CORNERS | sys::GGML_SCALE_FLAG_ANTIALIAS;
            if flags & !known != 0 {
                return Err(Error::unsupported(format!("UPSCALE flags {flags:#x}")));
            }
            Op::Upscale {
                mode,
                align_corners: flags & sys::GGML_SCALE_FLAG_ALIGN_CORNERS != 0,
                antialias: flags & sys::GGML_SCALE_FLAG_ANTIALIAS != 0,
            }
        }
        sys::GGML_OP_CONV_TRANSPOSE_1D => {
            let p = &tr.op_params;
            Op::ConvTranspose1d { s0: p[0], p0: p[1], d0: p[2] }
        }
        sys::GGML_OP_CONV_2D | sys::GGML_OP_CONV_2D_DW => {
            let p = &tr.op_params;
            let (s, pd, d) = ([p[0], p[1]], [p[2], p[3]], [p[4], p[5]]);
            if tr.op == sys::GGML_OP_CONV_2D {
                Op::Conv2d { s, p: pd, d }
            } else {
                Op::Conv2dDw { s, p: pd, d }
            }
        }
        sys::GGML_OP_CONV_3D => {
            let p = &tr.op_params;
            Op::Conv3d {
                s: [p[0], p[1], p[2]],
                p: [p[3], p[4], p[5]],
                d: [p[6], p[7], p[8]],
                ic: p[9],
                n: p[10],
                oc: p[11],
            }
        }
        sys::GGML_OP_CONV_TRANSPOSE_2D => Op::ConvTranspose2d { stride: tr.op_params[0] },
        sys::GGML_OP_TIMESTEP_EMBEDDING => Op::TimestepEmbedding { dim: tr.op_params[0], max_period: tr.op_params[1] },
        sys::GGML_OP_SILU_BACK => Op::SiluBack,
        sys::GGML_OP_OPT_STEP_ADAMW => Op::OptStepAdamw,
        sys::GGML_OP_OPT_STEP_SGD => Op::OptStepSgd,
        sys::GGML_OP_GET_ROWS_BACK => Op::GetRowsBack,
        sys::GGML_OP_CROSS_ENTROPY_LOSS => Op::CrossEntropyLoss,
        sys::GGML_OP_CROSS_ENTROPY_LOSS_BACK => Op::CrossEntropyLossBack,
        sys::GGML_OP_RMS_NORM_BACK => Op::RmsNormBack { eps: f32_param(tr, 0) },
        sys::GGML_OP_SOFT_MAX_BACK => Op::SoftMaxBack { scale: f32_param(tr, 0), max_bias: f32_param(tr, 1) },
        sys::GGML_OP_COUNT_EQUAL => Op::CountEqual,
        sys::GGML_OP_FILL => Op::Fill { c: f32_param(tr, 0) },
        sys::GGML_OP_TRI => Op::Tri { ty: tr.op_params[0] },
        sys::GGML_OP_DIAG_MASK_INF => Op::DiagMaskInf { n_past: tr.op_params[0] },
        sys::GGML_OP_ACC | sys::GGML_OP_SET => {
            let p = &tr.op_params;
            let (nb, offset) = ([p[0], p[1], p[2]], p[3]);
            if tr.op == sys::GGML_OP_ACC {
                Op::Acc { nb, offset }
            } else {
                Op::Set { nb, offset }
            }
        }
        sys::GGML_OP_SSM_CONV => Op::SsmConv,
        sys::GGML_OP_SSM_SCAN => Op::SsmScan { k: tr.op_params[0] },
        sys::GGML_OP_RWKV_WKV6 => Op::RwkvWkv6,
        sys::GGML_OP_GATED_LINEAR_ATTN => Op::GatedLinearAttn { scale: f32_param(tr, 0) },
        sys::GGML_OP_RWKV_WKV7 => Op::RwkvWkv7,
        sys::GGML_OP_GATED_DELTA_NET => Op::GatedDeltaNet { k: tr.op_params[0] },
        sys::GGML_OP_SOLVE_TRI => Op::SolveTri,
        sys::GGML_OP_LIGHTNING_INDEXER => Op::LightningIndexer,
        sys::GGML_OP_DSV4_HC_COMB => Op::Dsv4HcComb { eps: f32_param(tr, 0), n_iter: tr.op_params[1] },
        sys::GGML_OP_DSV4_HC_PRE => Op::Dsv4HcPre { scale: f32_param(tr, 0), gated: tr.op_params[1] != 0 },
        sys::GGML_OP_DSV4_HC_POST => Op::Dsv4HcPost,
        other => return Err(Error::unsupported(format!("ggml op {other}"))),
    };
    // Sources in ggml's order. CPY's second and SET_ROWS's third source are the destination the node views,
    // not inputs.
    let n_src = match op {
        Op::Arange { .. } => 0,
        Op::Cpy => 1,
        Op::MulMat | Op::OutProd | Op::Add | Op::Mul | Op::Sub | Op::Div | Op::GetRows | Op::SetRows => 2,
        Op::Rope(_)
        | Op::SoftMax { .. }
        | Op::MulMatId { .. }
        | Op::AddId
        | Op::OptStepSgd
        | Op::CrossEntropyLossBack => 3,
        Op::Glu { .. }
        | Op::SwigluOai { .. }
        | Op::SwigluClamp { .. }
        | Op::SiluBack
        | Op::Concat { .. }
        | Op::Im2Col { .. }
        | Op::Im2Col3d { .. }
        | Op::ConvTranspose1d { .. } => 2,
        Op::FlashAttnExt { .. } | Op::GatedLinearAttn { .. } | Op::OptStepAdamw => 5,
        Op::SsmConv
        | Op::GetRowsBack
        | Op::CountEqual
        | Op::CrossEntropyLoss
        | Op::RmsNormBack { .. }
        | Op::SoftMaxBack { .. }
        | Op::Acc { .. }
        | Op::Set { .. }
        | Op::Conv2d { .. }
        | Op::Conv2dDw { .. }
        | Op::Conv3d { .. }
        | Op::ConvTranspose2d { .. } => 2,
        Op::RwkvWkv6 | Op::GatedDeltaNet { .. } => 6,
        Op::SolveTri | Op::Dsv4HcPre { .. } => 2,
        Op::Dsv4HcComb { .. } => 3,
        Op::LightningIndexer | Op::Dsv4HcPost => 4,
        Op::SsmScan { .. } | Op::RwkvWkv7 => 7,
        Op::Scale { .. }
        | Op::Unary(_)
        | Op::Clamp { .. }
        | Op::LeakyRelu { .. }
        | Op::Xielu { .. }
        | Op::RmsNorm { .. }
        | Op::Norm { .. }
        | Op::L2Norm { .. }
        | Op::GroupNorm { .. }
        | Op::SumRows
        | Op::Mean
        | Op::Sum
        | Op::ArgMax
        | Op::ArgSort { .. }
        | Op::TopK
        | Op::Repeat
        | Op::RepeatBack
        | Op::Diag
        | Op::Col2Im1d { .. }
        | Op::Pad { .. }
        | Op::PadReflect1d { .. }
        | Op::Roll { .. }
        | Op::Cumsum
        | Op::Pool1d { .. }
        | Op::Pool2d { .. }
        | Op::Upscale { .. }
        | Op::Fill { .. }
        | Op::Tri { .. }
        | Op::DiagMaskInf { .. }
        | Op::TimestepEmbedding { .. } => 1,
    };
    let mut src = Vec::with_capacity(n_src);
    for (i, &s) in tr.src.iter().take(n_src).enumerate() {
        src.push(if s.is_null() {
            None
        } else {
            // SAFETY: ggml's sources of a live node are live tensors.
            Some(unsafe { tensor(s, mem, i as u64 + 1) }?)
        });
    }
    if tr.src.iter().skip(n_src).any(|s| !s.is_null()) && !matches!(op, Op::Cpy | Op::SetRows) {
        return Err(Error::unsupported(format!("{} with more than {n_src} sources", op.name())));
    }
    // SAFETY: `t` is live (checked above).
    let dst = unsafe { tensor(t, mem, 0) }?;
    Ok(Some(Node { op, src, dst }))
}
