//! Fusion: adjacent nodes that one kernel can record with exactly the result of recording them apart (same
//! arithmetic, same order; every tensor the separate nodes write is still written). The executor asks here for
//! each pair of neighbours it records; `GGVK_FUSION=0` turns fusion off (read once per process).
//!
//! Patterns:
//! - RMS_NORM then MUL by a row of weights (every llama-family block starts its attention and feed-forward halves
//!   so): one workgroup per row normalises it, writes the norm's output and the product. Saves a dispatch and a
//!   barrier per norm (two per layer).
//! - MUL_MAT of one column then ADD of its result and another vector (the residual connections after the attention
//!   output and feed-forward down products): the integer-dot mat-vec kernels write the product and the sum
//!   (`FUSE_ADD`); the sum is the product's f32 value plus the addend's, as the ADD kernel computes it. Where no
//!   fused kernel applies the ADD is recorded on its own.
//! - ROPE then the SET_ROWS that stores its output into a cache (the K half of every llama-family attention: the
//!   rotated keys go into the K cache at the batch's slots): the rope kernel also writes each value, converted as
//!   SET_ROWS converts it, into the cache row of its position. Saves the set's dispatch, its read of the rope's
//!   output and the barrier between the two (one dependent step per layer of a generated token).

use super::{Node, Op, Tensor};

/// Whether fusion is on (`GGVK_FUSION`, default on).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSION", true))
}

/// An RMS_NORM node and the MUL that scales its output by one row of weights.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormMul<'g> {
    /// The RMS_NORM node (its output is still written).
    pub norm: &'g Node,
    /// The weights: F32, `[ne0, 1, 1, 1]`, packed.
    pub weight: &'g Tensor,
    /// The MUL's destination: the norm's shape and strides.
    pub out: &'g Tensor,
}

/// Same bytes, type and layout.
fn same_view(a: &Tensor, b: &Tensor) -> bool {
    a.buffer.id() == b.buffer.id() && a.offset == b.offset && a.ty == b.ty && a.ne == b.ne && a.nb == b.nb
}

/// The two views share any byte of one buffer.
pub(crate) fn overlaps(a: &Tensor, b: &Tensor) -> bool {
    let ((a0, a1), (b0, b1)) = (a.byte_range(), b.byte_range());
    a.buffer.id() == b.buffer.id() && a0 < b1 && b0 < a1
}

/// `norm` then `mul` as one [`RmsNormMul`], when that gives the same bytes as the two nodes: `norm` is a
/// supported RMS_NORM, `mul` multiplies its exact output by F32 weights of one packed row (either operand order;
/// f32 products commute), into a tensor laid out as the norm's output. Each output element is read and written by
/// one invocation, so outputs may be the norm's input itself (in place) but must not partly overlap it, nor the
/// weights.
pub fn rms_norm_mul<'g>(norm: &'g Node, mul: &'g Node) -> Option<RmsNormMul<'g>> {
    if !matches!(norm.op, Op::RmsNorm { .. }) || !matches!(mul.op, Op::Mul) || crate::ops::norm::check(norm).is_err() {
        return None;
    }
    let (n, x) = (&norm.dst, norm.src(0).ok()?);
    let (s0, s1) = (mul.src(0).ok()?, mul.src(1).ok()?);
    let weight = if same_view(s0, n) {
        s1
    } else if same_view(s1, n) {
        s0
    } else {
        return None;
    };
    let out = &mul.dst;
    let row_of_weights = weight.ty == crate::quant::GgmlType::F32
        && weight.ne == [n.ne[0], 1, 1, 1]
        && weight.is_row_packed()
        && !overlaps(weight, n)
        && !overlaps(weight, out);
    let laid_out_as_norm = out.ty == n.ty && out.ne == n.ne && out.nb == n.nb;
    let no_partial_alias =
        [n, out].iter().all(|t| same_view(t, x) || !overlaps(t, x)) && (same_view(out, n) || !overlaps(out, n));
    (row_of_weights && laid_out_as_norm && no_partial_alias).then_some(RmsNormMul { norm, weight, out })
}

/// A MUL_MAT of one column and the ADD of its result that follows it.
#[derive(Clone, Copy, Debug)]
pub struct MatVecAdd<'g> {
    /// The MUL_MAT node (its output is still written).
    pub mm: &'g Node,
    /// The ADD's other operand: F32, the product's shape, packed.
    pub addend: &'g Tensor,
    /// The ADD's destination: F32, the product's shape, packed.
    pub out: &'g Tensor,
}

/// `mm` then `add` as one [`MatVecAdd`], when one kernel can give the same bytes: `mm` is a MUL_MAT of one column
/// of one batch into a packed F32 vector `t`, `add` sums `t` (exactly that view, either operand) and an F32 vector
/// of the same shape into a packed F32 vector. The mat-vec's workgroups read all of b and a while others already
/// write, so the sum must not overlap them; each sum element is read and written by one invocation, so it may be
/// the addend itself or `t` itself, but must not partly overlap either, and the addend must not overlap `t`.
pub fn mul_mat_add<'g>(mm: &'g Node, add: &'g Node) -> Option<MatVecAdd<'g>> {
    use crate::quant::GgmlType;
    if !matches!(mm.op, Op::MulMat) || !matches!(add.op, Op::Add) || add.src.len() != 2 {
        return None;
    }
    let (a, b, t) = (mm.src(0).ok()?, mm.src(1).ok()?, &mm.dst);
    let (s0, s1) = (add.src(0).ok()?, add.src(1).ok()?);
    let addend = if same_view(s0, t) {
        s1
    } else if same_view(s1, t) {
        s0
    } else {
        return None;
    };
    let out = &add.dst;
    let vector = |v: &Tensor| v.ty == GgmlType::F32 && v.ne == t.ne && v.is_row_packed();
    let one_column = b.ne[1] == 1 && b.ne[2] == 1 && b.ne[3] == 1 && t.ne == [a.ne[1], 1, 1, 1];
    let apart = |x: &Tensor, y: &Tensor| same_view(x, y) || !overlaps(x, y);
    let safe = !overlaps(out, a)
        && !overlaps(out, b)
        && !overlaps(addend, t)
        && apart(out, addend)
        && apart(out, t)
        && !same_view(addend, t);
    (one_column && vector(t) && vector(addend) && vector(out) && safe).then_some(MatVecAdd { mm, addend, out })
}

/// A ROPE and the SET_ROWS that writes the rope's output, seen as rows of `ne0 * ne1` values, into a cache.
#[derive(Clone, Copy, Debug)]
pub struct RopeSetRows<'g> {
    /// The ROPE node (its output is still written).
    pub rope: &'g Node,
    /// The row indices: I32 or I64, one per rope position, packed.
    pub index: &'g Tensor,
    /// The SET_ROWS destination (the cache view): rows of `ne0 * ne1` values, F16 or (from an F32 rope) F32.
    pub cache: &'g Tensor,
}

/// Whether a rope writes the cache rows of a following SET_ROWS (`GGVK_FUSE_ROPE_SET_ROWS`, default on; off with
/// fusion).
pub fn rope_set_rows_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    enabled() && *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSE_ROPE_SET_ROWS", true))
}

/// `rope` then `set` as one [`RopeSetRows`], when the rope kernel can write the set's bytes too: `rope` is a
/// supported forward ROPE with a packed output, `set` a supported SET_ROWS whose source is exactly that output seen
/// as one row of `ne0 * ne1` values per position (`ne2 * ne3` rows), with one packed I32/I64 index per row, into a
/// two-dimensional cache of F16 rows (or F32 rows from an F32 rope: the conversions SET_ROWS would make). The
/// cache must not overlap anything the rope reads or writes, nor the indices; the indices not the rope's output.
pub fn rope_set_rows<'g>(rope: &'g Node, set: &'g Node) -> Option<RopeSetRows<'g>> {
    use crate::quant::GgmlType;
    if !rope_set_rows_enabled() || !matches!(set.op, Op::SetRows) {
        return None;
    }
    let Op::Rope(params) = &rope.op else { return None };
    if params.back || crate::ops::check(rope).is_err() || crate::ops::check(set).is_err() {
        return None;
    }
    let (out, src, index, cache) = (&rope.dst, set.src(0).ok()?, set.src(1).ok()?, &set.dst);
    let as_rows = same_contiguous_bytes(src, out) && src.ne == [out.ne[0] * out.ne[1], out.ne[2] * out.ne[3], 1, 1];
    let indices =
        matches!(index.ty, GgmlType::I32 | GgmlType::I64) && index.ne == [src.ne[1], 1, 1, 1] && index.is_row_packed();
    let converts =
        matches!((out.ty, cache.ty), (GgmlType::F32, GgmlType::F16 | GgmlType::F32) | (GgmlType::F16, GgmlType::F16));
    let cache_rows = cache.is_row_packed() && cache.ne[0] == src.ne[0] && cache.ne[2] == 1 && cache.ne[3] == 1;
    let apart = rope.src.iter().flatten().chain([out, index]).all(|t| !overlaps(t, cache)) && !overlaps(index, out);
    (as_rows && indices && converts && cache_rows && apart).then_some(RopeSetRows { rope, index, cache })
}

/// Whether producers write quantized copies of their outputs for the integer-dot products that read them
/// (`GGVK_FUSE_QUANTIZE`, default on; off with fusion).
pub fn quantize_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    enabled() && *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSE_QUANTIZE", true))
}

/// Nodes looked at past a producer for the product that reads its output.
const QUANTIZE_LOOKAHEAD: usize = 24;

/// Producer-side quantization: for each node of `nodes`, the layout in which its output is also written
/// quantized ([`crate::ops::q8_emit`]), when the node can write it (the MUL of an RMS_NORM+MUL pair, a GLU of F32,
/// an attention whose output its split reduction writes) and a MUL_MAT within the next few nodes reads exactly
/// that output quantized (the attention's also through a contiguous reshape: its heads as one row), before
/// anything writes over it. The first such product decides the layout; others of another layout quantize for
/// themselves.
pub fn plan_quantize(device: &crate::vk::Device, nodes: &[Node]) -> Vec<Option<crate::ops::q8_emit::Planned>> {
    let mut plan = vec![None; nodes.len()];
    if !quantize_enabled() {
        return plan;
    }
    for (i, node) in nodes.iter().enumerate() {
        let (producer, reshaped) = match &node.op {
            Op::Mul => (i > 0 && rms_norm_mul(&nodes[i - 1], node).is_some(), false),
            Op::Glu { .. } => (crate::ops::glu::can_emit(node), false),
            Op::FlashAttnExt { .. } => (crate::ops::flash_attn::reduce_emits(device, node), true),
            _ => (false, false),
        };
        if !producer {
            continue;
        }
        let out = &node.dst;
        for later in nodes.iter().skip(i + 1).take(QUANTIZE_LOOKAHEAD) {
            if let (Op::MulMat, Ok(a), Ok(b)) = (&later.op, later.src(0), later.src(1)) {
                if same_view(b, out) || (reshaped && same_contiguous_bytes(b, out)) {
                    plan[i] = crate::ops::matmul::quantized_b_layout(device, a, b, &later.dst)
                        .filter(|l| l.fits(b))
                        .map(|layout| crate::ops::q8_emit::Planned { layout, view: b.clone() });
                    break;
                }
            }
            if overlaps(&later.dst, out) {
                break;
            }
        }
    }
    plan
}

/// Both views contiguous over the same bytes with the same type (one a reshape of the other).
fn same_contiguous_bytes(a: &Tensor, b: &Tensor) -> bool {
    a.buffer.id() == b.buffer.id()
        && a.offset == b.offset
        && a.ty == b.ty
        && a.nelements() == b.nelements()
        && a.is_contiguous()
        && b.is_contiguous()
}
