//! The engine's intermediate representation, pure data: tensors (typed, strided views of device buffers, laid out
//! as ggml lays them out), ops with their typed parameters, nodes (an op, its sources and its destination), and the
//! views of neighbouring nodes that one fused kernel records ([`fused`]). Both front doors build it; `ops/` reads it
//! to record kernels; the engine (`graph/`: the checked graph, fusion, planning, the executor) sits above both.
//! Nothing here depends on `ops/` or the executor.

pub mod fused;
pub mod rope;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::quant::GgmlType;
use crate::vk::Buffer;
pub use rope::RopeParams;

/// A strided view of bytes in a device buffer, as ggml describes tensors: `ne[i]` elements along dim `i`
/// (dim 0 innermost), `nb[i]` bytes between neighbours along dim `i` (for quantized types `nb[0]` is the size of
/// one block; other types may have any `nb[0]`, e.g. transposed views).
#[derive(Clone)]
pub struct Tensor {
    /// The buffer holding the bytes.
    pub buffer: Arc<Buffer>,
    /// Byte offset of element `[0, 0, 0, 0]`.
    pub offset: u64,
    /// Element type.
    pub ty: GgmlType,
    /// Elements per dimension.
    pub ne: [i64; 4],
    /// Byte strides per dimension.
    pub nb: [u64; 4],
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?} nb{:?} @buf{}+{}", self.ty.name(), self.ne, self.nb, self.buffer.id(), self.offset)
    }
}

impl Tensor {
    /// A view with explicit strides; checks that the shape is well formed and every byte lies in the buffer.
    pub fn new(buffer: Arc<Buffer>, offset: u64, ty: GgmlType, ne: [i64; 4], nb: [u64; 4]) -> Result<Self> {
        let t = Tensor { buffer, offset, ty, ne, nb };
        t.validate()?;
        Ok(t)
    }

    /// A contiguous tensor (ggml's default strides).
    pub fn contiguous(buffer: Arc<Buffer>, offset: u64, ty: GgmlType, ne: [i64; 4]) -> Result<Self> {
        let nb = Self::contiguous_strides(ty, ne)?;
        Self::new(buffer, offset, ty, ne, nb)
    }

    /// ggml's default strides for `ty` and `ne`.
    pub fn contiguous_strides(ty: GgmlType, ne: [i64; 4]) -> Result<[u64; 4]> {
        if ne.iter().any(|&n| n < 0) {
            return Err(Error::invalid(format!("negative dimension in {ne:?}")));
        }
        let row = ty.row_size(ne[0])? as u64;
        let mut nb = [ty.type_size() as u64, row, 0, 0];
        nb[2] = nb[1].checked_mul(ne[1] as u64).ok_or_else(|| Error::invalid("tensor size overflows"))?;
        nb[3] = nb[2].checked_mul(ne[2] as u64).ok_or_else(|| Error::invalid("tensor size overflows"))?;
        nb[3].checked_mul(ne[3] as u64).ok_or_else(|| Error::invalid("tensor size overflows"))?;
        Ok(nb)
    }

    fn validate(&self) -> Result<()> {
        let ne = self.ne;
        if ne.iter().any(|&n| n < 0) {
            return Err(Error::invalid(format!("negative dimension in {ne:?}")));
        }
        // Products of any dimensions (element counts, rows, columns) must fit: zero dimensions count as 1 here.
        if ne.iter().try_fold(1i64, |a, &n| a.checked_mul(n.max(1))).is_none() {
            return Err(Error::invalid(format!("{ne:?}: the element count overflows")));
        }
        let bs = self.ty.block_size() as i64;
        if ne[0] % bs != 0 {
            return Err(Error::invalid(format!(
                "ne[0] = {} is not a multiple of the {} block size {bs}",
                ne[0],
                self.ty.name()
            )));
        }
        // Quantized rows must be packed blocks; other types may have any element stride (permuted views).
        if self.ty.is_quantized() && self.nb[0] != self.ty.type_size() as u64 {
            return Err(Error::invalid(format!(
                "nb[0] = {} must equal the {} block size in bytes ({})",
                self.nb[0],
                self.ty.name(),
                self.ty.type_size()
            )));
        }
        let end = self
            .offset
            .checked_add(self.span_bytes()?)
            .ok_or_else(|| Error::OutOfBounds(format!("tensor {self:?}: offset + size overflows")))?;
        if end > self.buffer.size() {
            return Err(Error::OutOfBounds(format!(
                "tensor {self:?} ends at byte {end}, past the end of its buffer ({} bytes)",
                self.buffer.size()
            )));
        }
        Ok(())
    }

    /// Bytes from the first to one past the last byte of the view (ggml_nbytes); 0 for an empty tensor.
    pub fn nbytes(&self) -> u64 {
        self.span_bytes().unwrap_or(u64::MAX)
    }

    fn span_bytes(&self) -> Result<u64> {
        if self.ne.contains(&0) {
            return Ok(0);
        }
        // ggml_nbytes: one row (or one element, for unblocked types) plus the strides to the last one.
        let overflow = || Error::invalid("tensor size overflows");
        let (mut n, first) = if self.ty.block_size() == 1 {
            (self.ty.type_size() as u64, 0)
        } else {
            (self.ty.row_size(self.ne[0])? as u64, 1)
        };
        for i in first..4 {
            let step = (self.ne[i] as u64 - 1).checked_mul(self.nb[i]).ok_or_else(overflow)?;
            n = n.checked_add(step).ok_or_else(overflow)?;
        }
        Ok(n)
    }

    /// Elements along dim 0 are packed (`nb[0]` is the element or block size).
    pub fn is_row_packed(&self) -> bool {
        self.nb[0] == self.ty.type_size() as u64
    }

    /// Number of elements (0 when any dimension is 0; validated tensors never overflow).
    pub fn nelements(&self) -> i64 {
        if self.ne.contains(&0) {
            return 0;
        }
        self.ne.iter().try_fold(1i64, |a, &n| a.checked_mul(n)).unwrap_or(i64::MAX)
    }

    /// Rows of dimension 0 (`ne[1] * ne[2] * ne[3]`; 0 when any dimension is 0).
    pub fn nrows(&self) -> i64 {
        if self.ne.contains(&0) {
            return 0;
        }
        self.ne[1..].iter().try_fold(1i64, |a, &n| a.checked_mul(n)).unwrap_or(i64::MAX)
    }

    /// Laid out exactly as `contiguous` would lay it out.
    pub fn is_contiguous(&self) -> bool {
        Self::contiguous_strides(self.ty, self.ne).map(|nb| nb == self.nb).unwrap_or(false)
    }

    /// Same shape as `other`.
    pub fn same_shape(&self, other: &Tensor) -> bool {
        self.ne == other.ne
    }

    /// The byte range `[start, end)` of the buffer the view covers.
    pub fn byte_range(&self) -> (u64, u64) {
        (self.offset, self.offset + self.nbytes())
    }

    /// Copy `data` into the tensor's bytes starting `offset` bytes in (synchronous).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_io(offset, data.len() as u64)?;
        self.buffer.write(self.offset + offset, data)
    }

    /// Copy the tensor's bytes starting `offset` bytes in into `out` (synchronous).
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        self.check_io(offset, out.len() as u64)?;
        self.buffer.read(self.offset + offset, out)
    }

    fn check_io(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.nbytes() => Ok(()),
            _ => Err(Error::OutOfBounds(format!(
                "bytes [{offset}, {offset}+{len}) are outside the tensor's {} bytes",
                self.nbytes()
            ))),
        }
    }
}

/// How coarse a copy of a product's src1 the kernels may make (ggml.h's `ggml_prec_set_src`, [TAG_GGML_PREC]): each
/// level allows itself and every finer form; `Any` (GGML_PREC_DEFAULT) allows everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrcPrec {
    /// GGML_PREC_DEFAULT: any copy (f16, 8-bit blocks).
    Any,
    /// GGML_PREC_F32: src1 as F32 only.
    F32,
    /// GGML_PREC_BF16: BF16 or finer.
    Bf16,
    /// GGML_PREC_F16: F16 or finer.
    F16,
    /// GGML_PREC_Q8: 8-bit blocks or finer.
    Q8,
    /// GGML_PREC_Q4: 4-bit blocks or finer.
    Q4,
}

impl SrcPrec {
    /// The level of ggml_prec value `v`; None for values ggml does not define.
    pub fn from_ggml(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Any,
            10 => Self::F32,
            15 => Self::Bf16,
            20 => Self::F16,
            30 => Self::Q8,
            40 => Self::Q4,
            _ => return None,
        })
    }

    /// ggml's value of this level.
    pub fn ggml(self) -> i32 {
        match self {
            Self::Any => 0,
            Self::F32 => 10,
            Self::Bf16 => 15,
            Self::F16 => 20,
            Self::Q8 => 30,
            Self::Q4 => 40,
        }
    }

    /// Whether src1 may be copied to F16 (the cooperative-matrix kernels' copy; F16 weights' rounding).
    pub fn allows_f16(self) -> bool {
        !matches!(self, Self::F32 | Self::Bf16)
    }

    /// Whether src1 may be quantized to 8-bit blocks or rounded onto their grid (the integer-dot kernels).
    pub fn allows_q8(self) -> bool {
        matches!(self, Self::Any | Self::Q8 | Self::Q4)
    }
}

/// An operation with its typed parameters (ggml's op, with ggml's source order).
#[derive(Clone, Debug)]
pub enum Op {
    /// `dst = src0 x src1^T` (ggml_mul_mat): src0 the weights `[K, M, ...]`, src1 `[K, N, ...]`, dst `[M, N, ...]`.
    MulMat,
    /// ggml_out_prod: `dst[i0, i1, i2, i3] = sum_j src0[i0, j, ...] * src1[i1, j, i2, i3]`, src0 broadcast over dims 2
    /// and 3 as in [`Op::MulMat`]; dst `[src0 ne0, src1 ne0, src1 ne2, src1 ne3]`.
    OutProd,
    /// ggml_rope_ext / ggml_rope_multi (or their _back): src0 x, src1 positions (I32), optional src2 frequency
    /// factors.
    Rope(RopeParams),
    /// `dst = src0 + src1`, src1 broadcast (repeated) over src0 as ggml_add does.
    Add,
    /// `dst = src0 * src1`, src1 broadcast as ggml_mul does.
    Mul,
    /// `dst = src0 - src1`, src1 broadcast as ggml_sub does.
    Sub,
    /// `dst = src0 / src1`, src1 broadcast as ggml_div does.
    Div,
    /// `dst = src0 * s + b` (ggml_scale / ggml_scale_bias).
    Scale {
        /// Multiplier.
        s: f32,
        /// Added after scaling.
        b: f32,
    },
    /// Elementwise activation (ggml_unary).
    Unary(UnaryOp),
    /// `dst = MAX(MIN(x, max), min)` (ggml_clamp).
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `dst = max(x, 0) + slope * min(x, 0)` (ggml_leaky_relu).
    LeakyRelu {
        /// Negative slope.
        slope: f32,
    },
    /// Gated linear unit (ggml_glu): src0 holds both halves unless src1 is given (split form).
    Glu {
        /// The activation applied to the gate.
        op: GluOp,
        /// Whether the halves are swapped (gate second).
        swapped: bool,
    },
    /// Copy with type conversion and arbitrary strides (ggml_cpy, ggml_cont, ggml_dup): src0 -> dst.
    Cpy,
    /// `dst = src0 / sqrt(mean(src0^2) + eps)` per row (ggml_rms_norm).
    RmsNorm {
        /// Added to the mean of squares.
        eps: f32,
    },
    /// `dst = (src0 - mean) / sqrt(variance + eps)` per row (ggml_norm: layer norm without affine).
    Norm {
        /// Added to the variance.
        eps: f32,
    },
    /// `dst = src0 / max(|src0|, eps)` per row (ggml_l2_norm).
    L2Norm {
        /// Lower bound of the norm.
        eps: f32,
    },
    /// ggml_group_norm: NORM over each group of `ne2 / groups` channels (dims 0, 1 and those channels).
    GroupNorm {
        /// Number of groups along dim 2.
        groups: i32,
        /// Added to the variance.
        eps: f32,
    },
    /// ggml_soft_max_ext: softmax(src0 * scale + slope * mask) per row; src1 optional mask (F16/F32),
    /// src2 optional sinks.
    SoftMax {
        /// Multiplier of src0.
        scale: f32,
        /// ALiBi maximum bias (0: no ALiBi).
        max_bias: f32,
    },
    /// ggml_get_rows: rows of src0 selected by the I32 indices src1, converted to dst's type.
    GetRows,
    /// ggml_set_rows: rows of src0 written into dst at the I64/I32 indices src1, converted to dst's type.
    SetRows,
    /// ggml_sum_rows: `dst[0, i1, i2, i3]` = the sum of row (i1, i2, i3) of src0.
    SumRows,
    /// ggml_mean: the rows' sums divided by ne0.
    Mean,
    /// ggml_sum: the sum of every element of src0, one value.
    Sum,
    /// ggml_argmax: per row of a 2-D src0, the index (I32) of its largest value.
    ArgMax,
    /// ggml_mul_mat_id (mixture of experts): src0 the experts' weights `[K, M, n_as]`, src1 `[K, n_b1, n_tokens]`,
    /// src2 the I32 expert ids `[n_used, n_tokens]`; dst `[M, n_used, n_tokens]`.
    MulMatId {
        /// The coarsest copy of src1 the product may make (ggml_prec_set_src on src1, op param 3).
        b_prec: SrcPrec,
    },
    /// ggml_add_id: `dst[:, i1, i2] = src0[:, i1, i2] + src1[:, ids[i1, i2]]`, src2 the I32 ids `[ne1, ne2]`.
    AddId,
    /// ggml_argsort: per row of src0 (F32), the I32 indices that sort it.
    ArgSort {
        /// Descending (GGML_SORT_ORDER_DESC) rather than ascending.
        desc: bool,
    },
    /// ggml_top_k: per row of src0 (F32), the I32 indices of its `dst.ne[0]` largest values (in no particular
    /// order).
    TopK,
    /// ggml_flash_attn_ext: src0 q, src1 k, src2 v, optional src3 mask (F16), optional src4 sinks (F32).
    FlashAttnExt {
        /// Multiplier of q k^T.
        scale: f32,
        /// ALiBi maximum bias (0: no ALiBi).
        max_bias: f32,
        /// Logit soft-capping (0: off).
        softcap: f32,
        /// ggml_prec (op param 3).
        prec: i32,
    },
    /// ggml_repeat: src0 tiled to dst's shape (each dst dim a multiple of src0's).
    Repeat,
    /// ggml_concat: src0 then src1 along `dim` (the other dims equal).
    Concat {
        /// The dimension joined along (0..=3).
        dim: i32,
    },
    /// ggml_pad_ext: src0 with `lp[d]` elements before and `rp[d]` after it along each dim, zeros there (or,
    /// `circular`, the values wrapped around from the other side: ggml_pad_ext_circular).
    Pad {
        /// Elements added before, per dim.
        lp: [i32; 4],
        /// Elements added after, per dim.
        rp: [i32; 4],
        /// Wrap around instead of zeros.
        circular: bool,
    },
    /// ggml_pad_reflect_1d: src0 with `p0` values before and `p1` after along dim 0, mirrored about the row's
    /// first and last values (F32).
    PadReflect1d {
        /// Values added before.
        p0: i32,
        /// Values added after.
        p1: i32,
    },
    /// ggml_roll: `dst[i] = src0[(i - shift) mod ne]` along every dim (F32).
    Roll {
        /// Shift per dim (|shift| < ne).
        shift: [i32; 4],
    },
    /// ggml_arange: `dst[i] = start + step * i` (F32, no sources).
    Arange {
        /// First value.
        start: f32,
        /// End (exclusive; fixes the element count with `step`).
        stop: f32,
        /// Increment.
        step: f32,
    },
    /// ggml_cumsum: the inclusive prefix sums of each row of src0.
    Cumsum,
    /// ggml_diag: dst `[n, n, ne2, ne3]` holds each row of src0 `[n, 1, ne2, ne3]` on its diagonal, zeros elsewhere.
    Diag,
    /// ggml_repeat_back: dst (src0's shape divided by whole repeat counts) the sum of src0's tiles (F32).
    RepeatBack,
    /// ggml_col2im_1d: src0 the columns `[K * oc, T_in]` scatter-added into dst `[T_out, oc]`,
    /// `T_out = (T_in - 1) * s0 + K - 2 * p0` (the signal cropped by `p0` on both sides).
    Col2Im1d {
        /// Stride.
        s0: i32,
        /// Output channels.
        oc: i32,
        /// Padding cropped from both sides.
        p0: i32,
    },
    /// ggml_im2col: src0 the kernel (only its shape is used), src1 the image; dst the unfolded patches.
    Im2Col {
        /// Strides (width, height).
        s: [i32; 2],
        /// Padding (width, height).
        p: [i32; 2],
        /// Dilation (width, height).
        d: [i32; 2],
        /// 2-D (else 1-D: no height).
        is_2d: bool,
    },
    /// ggml_im2col_3d: src0 the kernel `[KW, KH, KD, OC * IC]` (shape only), src1 the volume `[W, H, D, N * IC]`.
    Im2Col3d {
        /// Strides (width, height, depth).
        s: [i32; 3],
        /// Padding (width, height, depth).
        p: [i32; 3],
        /// Dilation (width, height, depth).
        d: [i32; 3],
        /// Input channels.
        ic: i32,
    },
    /// ggml_pool_1d over dim 0 of each row.
    Pool1d {
        /// Max or average.
        op: PoolOp,
        /// Kernel size.
        k: i32,
        /// Stride.
        s: i32,
        /// Padding.
        p: i32,
    },
    /// ggml_pool_2d over dims 0 and 1 of each plane.
    Pool2d {
        /// Max or average.
        op: PoolOp,
        /// Kernel size (width, height).
        k: [i32; 2],
        /// Stride (width, height).
        s: [i32; 2],
        /// Padding (width, height).
        p: [i32; 2],
    },
    /// ggml_upscale / ggml_interpolate: src0 resampled to dst's shape.
    Upscale {
        /// Interpolation along dims 0 and 1 (dims 2 and 3 take the nearest).
        mode: ScaleMode,
        /// GGML_SCALE_FLAG_ALIGN_CORNERS.
        align_corners: bool,
        /// GGML_SCALE_FLAG_ANTIALIAS (bilinear only).
        antialias: bool,
    },
    /// ggml_conv_transpose_1d: src0 the kernel `[K, C_out, C_in]`, src1 the input `[L, C_in]`.
    ConvTranspose1d {
        /// Stride.
        s0: i32,
        /// Padding (ggml allows 0 only).
        p0: i32,
        /// Dilation (ggml allows 1 only).
        d0: i32,
    },
    /// ggml_conv_2d_direct: src0 the kernel `[KW, KH, IC, OC]`, src1 the input `[W, H, IC, N]`.
    Conv2d {
        /// Strides (width, height).
        s: [i32; 2],
        /// Padding (width, height).
        p: [i32; 2],
        /// Dilation (width, height).
        d: [i32; 2],
    },
    /// ggml_conv_2d_dw_direct: src0 the kernel `[KW, KH, 1, C]`, src1 the input `[W, H, C, N]`.
    Conv2dDw {
        /// Strides (width, height).
        s: [i32; 2],
        /// Padding (width, height).
        p: [i32; 2],
        /// Dilation (width, height).
        d: [i32; 2],
    },
    /// ggml_conv_3d_direct: src0 the kernel `[KW, KH, KD, IC * OC]`, src1 the input `[W, H, D, IC * N]`.
    Conv3d {
        /// Strides (width, height, depth).
        s: [i32; 3],
        /// Padding (width, height, depth).
        p: [i32; 3],
        /// Dilation (width, height, depth).
        d: [i32; 3],
        /// Input channels.
        ic: i32,
        /// Batch.
        n: i32,
        /// Output channels.
        oc: i32,
    },
    /// ggml_conv_transpose_2d_p0: src0 the kernel `[Kw, Kh, Cout, Cin]`, src1 the input `[Sw, Sh, Cin, N]`.
    ConvTranspose2d {
        /// Stride (both dims).
        stride: i32,
    },
    /// ggml_timestep_embedding: src0 the timesteps `[n]`; dst `[dim, n]`.
    TimestepEmbedding {
        /// Embedding width.
        dim: i32,
        /// Longest period.
        max_period: i32,
    },
    /// ggml_swiglu_oai (GGML_GLU_OP_SWIGLU_OAI): `min(gate, limit) * sigmoid(alpha * min(gate, limit)) *
    /// (clamp(up, -limit, limit) + 1)`, halves as [`Op::Glu`].
    SwigluOai {
        /// Whether the halves are swapped (gate second).
        swapped: bool,
        /// Sigmoid slope.
        alpha: f32,
        /// Clamp of gate (above) and up (both sides).
        limit: f32,
    },
    /// ggml_xielu (GGML_UNARY_OP_XIELU): `alpha_p x^2 + beta x` for x > 0, else
    /// `(expm1(min(x, eps)) - x) alpha_n + beta x`, with the parameters as ggml stores them.
    Xielu {
        /// Op param 1 (ggml stores beta + softplus of the model's alpha_n).
        alpha_n: f32,
        /// Op param 2 (softplus of the model's alpha_p).
        alpha_p: f32,
        /// Op param 3.
        beta: f32,
        /// Op param 4.
        eps: f32,
    },
    /// ggml_swiglu_clamp (GGML_GLU_OP_SWIGLU_CLAMP): `silu(min(gate, limit)) * clamp(up, -limit, limit)`, halves as
    /// [`Op::Glu`].
    SwigluClamp {
        /// Whether the halves are swapped (gate second).
        swapped: bool,
        /// Clamp of gate (above) and up (both sides).
        limit: f32,
    },
    /// ggml_silu_back: src0 the gradient dy, src1 the forward input x (same shape):
    /// `dy * sigmoid(x) * (1 + x * (1 - sigmoid(x)))`.
    SiluBack,
    /// ggml_opt_step_adamw: src0 the weights (updated in place; dst views them), src1 the gradient, src2 and src3
    /// the moments (updated in place), src4 the 7 AdamW parameters.
    OptStepAdamw,
    /// ggml_opt_step_sgd: src0 the weights (updated in place; dst views them), src1 the gradient, src2 alpha and
    /// weight decay.
    OptStepSgd,
    /// ggml_get_rows_back: dst `[nc, rows]` F32, each row the sum of the src0 rows whose id (src1, I32) it is.
    GetRowsBack,
    /// ggml_count_equal: the number of equal positions of the I32 src0 and src1, one I64.
    CountEqual,
    /// ggml_rms_norm_back: src0 the output gradient dz, src1 the forward input x.
    RmsNormBack {
        /// The forward pass's eps.
        eps: f32,
    },
    /// ggml_soft_max_ext_back: src0 the output gradient dy, src1 the forward output y.
    SoftMaxBack {
        /// The forward pass's scale.
        scale: f32,
        /// The forward pass's ALiBi bias (no mask is given, so the gradient does not depend on it).
        max_bias: f32,
    },
    /// ggml_cross_entropy_loss: src0 logits, src1 labels; dst one F32 value.
    CrossEntropyLoss,
    /// ggml_cross_entropy_loss_back: src0 the loss gradient (one value), src1 logits, src2 labels.
    CrossEntropyLossBack,
    /// ggml_fill: every value of dst (src0's shape) set to `c`.
    Fill {
        /// The value.
        c: f32,
    },
    /// ggml_tri: src0 where the (i0, i1) predicate of the ggml_tri_type holds, zeros elsewhere.
    Tri {
        /// ggml_tri_type (0 upper with diagonal, 1 upper, 2 lower with diagonal, 3 lower).
        ty: i32,
    },
    /// ggml_diag_mask_inf: src0 with -inf where `i0 > n_past + i1`.
    DiagMaskInf {
        /// Columns kept on every row.
        n_past: i32,
    },
    /// ggml_acc: src0 with src1 added into the view (byte strides `nb` of dims 1..3, byte `offset`).
    Acc {
        /// View strides of dims 1..3 in bytes.
        nb: [i32; 3],
        /// View offset in bytes.
        offset: i32,
    },
    /// ggml_set: src0 with src1 written into the view (byte strides `nb` of dims 1..3, byte `offset`).
    Set {
        /// View strides of dims 1..3 in bytes.
        nb: [i32; 3],
        /// View offset in bytes.
        offset: i32,
    },
    /// ggml_ssm_conv: src0 `sx` `[d_conv - 1 + n_t, d_inner, n_s]`, src1 the kernel `[d_conv, d_inner]`; dst
    /// `[d_inner, n_t, n_s]`.
    SsmConv,
    /// ggml_ssm_scan: src0 states, src1 x, src2 dt, src3 A, src4 B, src5 C, src6 the I32 state ids; dst the
    /// outputs then `k` sets of states (the final ones, then those 1 .. k-1 tokens before the end).
    SsmScan {
        /// Snapshot slots (op param 0; at least 1).
        k: i32,
    },
    /// ggml_rwkv_wkv6: src0 k, src1 v, src2 r, src3 time_faaaa, src4 time_decay, src5 state.
    RwkvWkv6,
    /// ggml_gated_linear_attn: src0 k, src1 v, src2 q, src3 g, src4 state.
    GatedLinearAttn {
        /// Multiplier of q.
        scale: f32,
    },
    /// ggml_rwkv_wkv7: src0 r, src1 w, src2 k, src3 v, src4 a, src5 b, src6 state.
    RwkvWkv7,
    /// ggml_gated_delta_net: src0 q, src1 k, src2 v, src3 g, src4 beta, src5 state.
    GatedDeltaNet {
        /// Snapshot slots (op param 0; at least 1).
        k: i32,
    },
    /// ggml_solve_tri (left, lower, not unit-diagonal: the variant ggml builds): src0 `A` `[n, n, ne2, ne3]`
    /// lower triangular, src1 `B` `[k, n, ne2, ne3]`; dst `X` with `A X = B`.
    SolveTri,
    /// ggml_lightning_indexer: src0 q `[D, n_head, n_tokens, ns]`, src1 k `[D, 1, n_kv, ns]`, src2 weights
    /// `[n_head, n_tokens, 1, ns]`, src3 the F16 mask `[n_kv, n_tokens, 1, m_ne3]`; dst `[n_kv, n_tokens, 1, ns]`.
    LightningIndexer,
    /// ggml_dsv4_hc_comb: src0 mixes `[24, n_tokens]`, src1 scale `[>= 3]`, src2 base `[24]`; dst `[4, 4, n_tokens]`.
    Dsv4HcComb {
        /// Added in every normalisation.
        eps: f32,
        /// Normalisation rounds (at least 1).
        n_iter: i32,
    },
    /// ggml_dsv4_hc_pre (and _pre_gated): src0 x `[n_embd, hc, n_tokens]`, src1 weights `[hc, n_tokens]` (gate
    /// `[n_embd, hc, n_tokens]` when gated); dst `[n_embd, n_tokens]`.
    Dsv4HcPre {
        /// Multiplier of the sum.
        scale: f32,
        /// src1 is a gate (weights `sigmoid(gate)`).
        gated: bool,
    },
    /// ggml_dsv4_hc_post: src0 x `[n_embd, n_tokens]`, src1 residual `[n_embd, hc, n_tokens]`, src2 post
    /// `[hc, n_tokens]`, src3 comb `[hc, hc, n_tokens]` (optional: identity); dst `[n_embd, hc, n_tokens]`.
    Dsv4HcPost,
}

/// ggml_op_pool values ggvk runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolOp {
    /// GGML_OP_POOL_MAX.
    Max,
    /// GGML_OP_POOL_AVG.
    Avg,
}

/// ggml_scale_mode values (the low byte of UPSCALE's mode parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// GGML_SCALE_MODE_NEAREST.
    Nearest,
    /// GGML_SCALE_MODE_BILINEAR.
    Bilinear,
    /// GGML_SCALE_MODE_BICUBIC.
    Bicubic,
}

/// ggml_unary_op values ggvk knows, plus ggml's parameterless elementwise ops (SQR, SQRT, SIN, COS, LOG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// x * sigmoid(x).
    Silu,
    /// |x|.
    Abs,
    /// -1, 0 or 1.
    Sgn,
    /// -x.
    Neg,
    /// 1 for x > 0, else 0.
    Step,
    /// tanh(x).
    Tanh,
    /// x for x > 0, else e^x - 1.
    Elu,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// GELU, tanh approximation (through ggml's f16 table).
    Gelu,
    /// x * sigmoid(1.702 x) (through ggml's f16 table).
    GeluQuick,
    /// x * hardsigmoid(x).
    HardSwish,
    /// clamp((x + 3) / 6, 0, 1).
    HardSigmoid,
    /// e^x.
    Exp,
    /// e^x - 1.
    Expm1,
    /// log(1 + e^x) (x for x > 20).
    Softplus,
    /// GELU with the exact erf.
    GeluErf,
    /// floor(x).
    Floor,
    /// ceil(x).
    Ceil,
    /// roundf(x) (halves away from zero).
    Round,
    /// trunc(x).
    Trunc,
    /// x * x (GGML_OP_SQR).
    Sqr,
    /// sqrt(x) (GGML_OP_SQRT).
    Sqrt,
    /// sin(x) (GGML_OP_SIN).
    Sin,
    /// cos(x) (GGML_OP_COS).
    Cos,
    /// log(x) (GGML_OP_LOG).
    Log,
}

/// ggml_glu_op values ggvk knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GluOp {
    /// silu(gate) * up.
    SwiGlu,
    /// relu(gate) * up.
    ReGlu,
    /// gelu(gate) * up (tanh approximation, through ggml's f16 table).
    GeGlu,
    /// gelu(gate) * up with the exact erf.
    GeGluErf,
    /// gelu_quick(gate) * up (through ggml's f16 table).
    GeGluQuick,
}

impl Op {
    /// Whether the op writes its destination only (every source is only read): such nodes may be reordered
    /// among each other by the bytes they touch ([`schedule`], [`fusion::plan_groups`]); the others (ops that
    /// update a source in place, and rarely seen ones) keep their place.
    pub fn writes_dst_only(&self) -> bool {
        matches!(
            self,
            Op::MulMat
                | Op::Rope(_)
                | Op::Add
                | Op::Mul
                | Op::Sub
                | Op::Div
                | Op::Scale { .. }
                | Op::Unary(_)
                | Op::Glu { .. }
                | Op::Cpy
                | Op::RmsNorm { .. }
                | Op::Norm { .. }
                | Op::SoftMax { .. }
                | Op::GetRows
                | Op::SetRows
                | Op::FlashAttnExt { .. }
                | Op::MulMatId { .. }
                | Op::AddId
                | Op::Repeat
                | Op::Concat { .. }
        )
    }

    /// Short name for logs and timing reports (ggml's op name).
    pub fn name(&self) -> &'static str {
        match self {
            Op::MulMat => "MUL_MAT",
            Op::OutProd => "OUT_PROD",
            Op::Rope(p) if p.back => "ROPE_BACK",
            Op::Rope(_) => "ROPE",
            Op::Add => "ADD",
            Op::Mul => "MUL",
            Op::Sub => "SUB",
            Op::Div => "DIV",
            Op::Scale { .. } => "SCALE",
            Op::Unary(_) => "UNARY",
            Op::Clamp { .. } => "CLAMP",
            Op::LeakyRelu { .. } => "LEAKY_RELU",
            Op::Glu { .. } => "GLU",
            Op::Cpy => "CPY",
            Op::RmsNorm { .. } => "RMS_NORM",
            Op::Norm { .. } => "NORM",
            Op::L2Norm { .. } => "L2_NORM",
            Op::GroupNorm { .. } => "GROUP_NORM",
            Op::SoftMax { .. } => "SOFT_MAX",
            Op::GetRows => "GET_ROWS",
            Op::SetRows => "SET_ROWS",
            Op::FlashAttnExt { .. } => "FLASH_ATTN_EXT",
            Op::SumRows => "SUM_ROWS",
            Op::Mean => "MEAN",
            Op::Sum => "SUM",
            Op::ArgMax => "ARGMAX",
            Op::MulMatId { .. } => "MUL_MAT_ID",
            Op::AddId => "ADD_ID",
            Op::ArgSort { .. } => "ARGSORT",
            Op::TopK => "TOP_K",
            Op::Repeat => "REPEAT",
            Op::Concat { .. } => "CONCAT",
            Op::Pad { .. } => "PAD",
            Op::Arange { .. } => "ARANGE",
            Op::PadReflect1d { .. } => "PAD_REFLECT_1D",
            Op::Roll { .. } => "ROLL",
            Op::Cumsum => "CUMSUM",
            Op::Diag => "DIAG",
            Op::RepeatBack => "REPEAT_BACK",
            Op::Col2Im1d { .. } => "COL2IM_1D",
            Op::Im2Col { .. } => "IM2COL",
            Op::Im2Col3d { .. } => "IM2COL_3D",
            Op::Pool1d { .. } => "POOL_1D",
            Op::Pool2d { .. } => "POOL_2D",
            Op::Upscale { .. } => "UPSCALE",
            Op::ConvTranspose1d { .. } => "CONV_TRANSPOSE_1D",
            Op::Conv2d { .. } => "CONV_2D",
            Op::Conv2dDw { .. } => "CONV_2D_DW",
            Op::Conv3d { .. } => "CONV_3D",
            Op::ConvTranspose2d { .. } => "CONV_TRANSPOSE_2D",
            Op::TimestepEmbedding { .. } => "TIMESTEP_EMBEDDING",
            Op::SwigluOai { .. } => "SWIGLU_OAI",
            Op::Xielu { .. } => "XIELU",
            Op::SiluBack => "SILU_BACK",
            Op::SwigluClamp { .. } => "SWIGLU_CLAMP",
            Op::OptStepAdamw => "OPT_STEP_ADAMW",
            Op::OptStepSgd => "OPT_STEP_SGD",
            Op::GetRowsBack => "GET_ROWS_BACK",
            Op::CountEqual => "COUNT_EQUAL",
            Op::RmsNormBack { .. } => "RMS_NORM_BACK",
            Op::SoftMaxBack { .. } => "SOFT_MAX_BACK",
            Op::CrossEntropyLoss => "CROSS_ENTROPY_LOSS",
            Op::CrossEntropyLossBack => "CROSS_ENTROPY_LOSS_BACK",
            Op::Fill { .. } => "FILL",
            Op::Tri { .. } => "TRI",
            Op::DiagMaskInf { .. } => "DIAG_MASK_INF",
            Op::Acc { .. } => "ACC",
            Op::Set { .. } => "SET",
            Op::SsmConv => "SSM_CONV",
            Op::SsmScan { .. } => "SSM_SCAN",
            Op::RwkvWkv6 => "RWKV_WKV6",
            Op::GatedLinearAttn { .. } => "GATED_LINEAR_ATTN",
            Op::RwkvWkv7 => "RWKV_WKV7",
            Op::GatedDeltaNet { .. } => "GATED_DELTA_NET",
            Op::SolveTri => "SOLVE_TRI",
            Op::LightningIndexer => "LIGHTNING_INDEXER",
            Op::Dsv4HcComb { .. } => "DSV4_HC_COMB",
            Op::Dsv4HcPre { .. } => "DSV4_HC_PRE",
            Op::Dsv4HcPost => "DSV4_HC_POST",
        }
    }
}

/// One node: op, sources, destination.
#[derive(Clone, Debug)]
pub struct Node {
    /// What to compute.
    pub op: Op,
    /// Inputs (`None` for an optional input left out).
    pub src: Vec<Option<Tensor>>,
    /// Output.
    pub dst: Tensor,
}

impl Node {
    /// Source `i`, which the op requires.
    pub fn src(&self, i: usize) -> Result<&Tensor> {
        self.src
            .get(i)
            .and_then(|s| s.as_ref())
            .ok_or_else(|| Error::invalid(format!("{} needs source {i}", self.op.name())))
    }
}
