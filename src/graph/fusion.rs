//! Fusion: adjacent nodes that one kernel can record with exactly the result of recording them apart (same
//! arithmetic, same order; every tensor the separate nodes write is still written). The executor asks here for
//! each pair of neighbours it records; `GGVK_FUSION=0` turns fusion off (read once per process).
//!
//! Patterns:
//! - RMS_NORM then MUL by a row of weights (every llama-family block starts its attention and feed-forward halves
//!   so): one workgroup per row normalises it, writes the norm's output and the product. Saves a dispatch and a
//!   barrier per norm (two per layer).
//! - RMS_NORM, MUL and then the ADD of the product and another tensor (gemma's norms after the attention and the
//!   feed-forward, summed with the residual): the fused norm kernel also writes the sum, element by element as the
//!   ADD kernel adds. One dispatch and barrier less per such norm.
//! - MUL_MAT of one column then ADD of its result and another vector (the residual connections after the attention
//!   output and feed-forward down products): the integer-dot mat-vec kernels write the product and the sum
//!   (`FUSE_ADD`); the sum is the product's f32 value plus the addend's, as the ADD kernel computes it. Where no
//!   fused kernel applies the ADD is recorded on its own.
//! - ROPE then the SET_ROWS that stores its output into a cache (the K half of every llama-family attention: the
//!   rotated keys go into the K cache at the batch's slots): the rope kernel also writes each value, converted as
//!   SET_ROWS converts it, into the cache row of its position. Saves the set's dispatch, its read of the rope's
//!   output and the barrier between the two (one dependent step per layer of a generated token).
//! - ROPE then the SCALE of its output (gemma's and phi's queries are scaled after their rotation): the rope kernel
//!   writes each value and its scaled value, as SCALE computes it. Saves the scale's dispatch and the barrier
//!   before it (one dependent step per layer of those models).
//! - MUL_MAT of one column then what a llama-family attention does next with the token's rows: the ROPE of Q, the
//!   ROPE of K and the SET_ROWS of the rotated keys into the K cache, the SET_ROWS of V into the V cache. The
//!   integer-dot mat-vec kernels rotate and store their rows themselves (`matvec_rope.glsl`): the step of ropes and
//!   cache writes between a token's Q/K/V products and its attention is gone. These nodes are not neighbours in
//!   graph order (ggml builds Q, its rope, K, V, then K's rope and the cache writes): [`plan_groups`] pulls the
//!   later members up to the product where nothing between them touches their bytes.
//! - Two MUL_MATs of the same activations, several columns, then the GLU of their results (a llama-family
//!   feed-forward block's gate and up products and their SWIGLU; gemma's GEGLU): the NV_cooperative_matrix2
//!   kernel multiplies both weights by each activation tile, stores both products, and applies the GLU in its
//!   store, writing its f32 output and the f16 copy the down product reads ([`pair_glu_takes`] says which GLUs).
//!   Saves the GLU's dispatch and its read of both products, the down product's copy of its activations, and two
//!   dependent steps per layer of a prompt. Where no fused kernel applies the three nodes are recorded apart.
//!
//! Not a fusion but read from the neighbours the same way: [`rows_period`] tells a transposed V cache's write
//! (SET_ROWS of one-value rows) the row length of the product whose values it stores, so that it moves them in
//! tiles.

use super::{Node, Op, Tensor};
pub(crate) use crate::ir::fused::overlaps;
pub use crate::ir::fused::{CacheRows, MatVecAdd, MatVecRope, NormAdd, PairGlu, RmsNormMul, RopeScale, RopeSetRows};
use crate::quant::GgmlType;

/// Whether fusion is on (`GGVK_FUSION`, default on).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSION", true))
}

/// Same bytes, type and layout.
fn same_view(a: &Tensor, b: &Tensor) -> bool {
    a.buffer.id() == b.buffer.id() && a.offset == b.offset && a.ty == b.ty && a.ne == b.ne && a.nb == b.nb
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
    (row_of_weights && laid_out_as_norm && no_partial_alias).then_some(RmsNormMul { norm, weight, out, add: None })
}

/// Whether an RMS_NORM+MUL also computes the ADD of its product that follows (`GGVK_FUSE_NORM_ADD`, default on; off
/// with fusion).
pub fn norm_add_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    enabled() && *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSE_NORM_ADD", true))
}

/// A fused RMS_NORM+MUL `f` ([`rms_norm_mul`]) and the `add` that follows as one [`RmsNormMul`] with its
/// [`NormAdd`], when the kernel gives the same bytes as the three nodes: `add` sums exactly the product (either
/// operand; f32 addition commutes) and an F32 tensor laid out as the product, into F32 laid out the same. Each sum
/// element is read and written by the invocation that computes its product, while other workgroups of the row may
/// still read the norm's input: the sum is the addend, the product or the norm's output itself, or overlaps none of
/// them, nor the input or the weights; the addend overlaps neither output of the norm.
pub fn rms_norm_mul_add<'g>(f: RmsNormMul<'g>, add: &'g Node) -> Option<RmsNormMul<'g>> {
    use crate::quant::GgmlType;
    if !norm_add_enabled() || !matches!(add.op, Op::Add) || add.src.len() != 2 {
        return None;
    }
    let norm = f.norm;
    let (s0, s1) = (add.src(0).ok()?, add.src(1).ok()?);
    let addend = if same_view(s0, f.out) {
        s1
    } else if same_view(s1, f.out) {
        s0
    } else {
        return None;
    };
    let (sum, x) = (&add.dst, norm.src(0).ok()?);
    let laid_out = |t: &Tensor| t.ty == GgmlType::F32 && t.ne == f.out.ne && t.nb == f.out.nb;
    let apart = |t: &Tensor| same_view(sum, t) || !overlaps(sum, t);
    let safe = [addend, f.out, &norm.dst, x].into_iter().all(apart)
        && !overlaps(sum, f.weight)
        && !overlaps(addend, f.out)
        && !overlaps(addend, &norm.dst);
    (laid_out(addend) && laid_out(sum) && safe).then_some(RmsNormMul { add: Some(NormAdd { addend, sum }), ..f })
}

/// `mm` then `add` as one [`MatVecAdd`], when one kernel can give the same bytes: `mm` is a MUL_MAT of one batch
/// into `t`, a packed F32 vector (one column) or a contiguous F32 matrix (several: the prompt products' store,
/// `mul_mat_cm2.comp`'s `FUSE_ADD`; other kernels record the ADD as its own node), `add` sums `t` (exactly that
/// view, either operand) and an F32 tensor laid out as `t` into another. The product's workgroups read all of b
/// and a while others already write, so the sum must not overlap them; each sum element is read and written by one
/// invocation (one workgroup's tile), so it may be the addend itself or `t` itself, but must not partly overlap
/// either, and the addend must not overlap `t`.
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
    let one_batch = b.ne[2] == 1 && b.ne[3] == 1 && t.ne == [a.ne[1], b.ne[1], 1, 1];
    let vector = |v: &Tensor| {
        v.ty == GgmlType::F32 && v.ne == t.ne && if b.ne[1] == 1 { v.is_row_packed() } else { v.is_contiguous() }
    };
    let apart = |x: &Tensor, y: &Tensor| same_view(x, y) || !overlaps(x, y);
    let safe = !overlaps(out, a)
        && !overlaps(out, b)
        && !overlaps(addend, t)
        && apart(out, addend)
        && apart(out, t)
        && !same_view(addend, t);
    (one_batch && vector(t) && vector(addend) && vector(out) && safe).then_some(MatVecAdd { mm, addend, out })
}

/// Whether a prompt's gate and up products take the GLU `op` that follows them: fusion on and the kernel's GLU
/// kinds ([`crate::ops::matmul::pair_glu_kind`]).
pub fn pair_glu_takes(op: crate::ir::GluOp) -> bool {
    enabled() && crate::ops::matmul::pair_glu_kind(op)
}

/// `first`, `second` then `glu` as one [`PairGlu`], when one kernel can give the same bytes: two MUL_MATs of one
/// batch and several columns reading the same activations, with weights of one type, shape and layout, then a
/// split GLU (SWIGLU, REGLU, GEGLU, GEGLU_ERF or GEGLU_QUICK; not swapped) of their two outputs, one the gate (the
/// GLU's first operand) and the other up, in either node order. Products and GLU output F32, packed, of one
/// shape; no output overlaps another or an operand.
pub fn mul_mat_pair_glu<'g>(first: &'g Node, second: &'g Node, glu: &'g Node) -> Option<PairGlu<'g>> {
    if !matches!(first.op, Op::MulMat) || !matches!(second.op, Op::MulMat) || glu.src.len() != 2 {
        return None;
    }
    let Op::Glu { op, swapped: false } = glu.op else { return None };
    let (g_src, u_src) = (glu.src(0).ok()?, glu.src(1).ok()?);
    let (gate, up) = if same_view(g_src, &first.dst) && same_view(u_src, &second.dst) {
        (first, second)
    } else if same_view(g_src, &second.dst) && same_view(u_src, &first.dst) {
        (second, first)
    } else {
        return None;
    };
    let (ga, gb, ua, ub) = (gate.src(0).ok()?, gate.src(1).ok()?, up.src(0).ok()?, up.src(1).ok()?);
    let out = &glu.dst;
    let shape = [ga.ne[1], gb.ne[1], 1, 1];
    let weights = ga.ty == ua.ty && ga.ne == ua.ne && ga.nb == ua.nb && ga.ne[2] == 1 && ga.ne[3] == 1;
    let activations = same_view(gb, ub) && gb.ne[2] == 1 && gb.ne[3] == 1 && gb.ne[1] > 1;
    let packed = |t: &Tensor| t.ty == GgmlType::F32 && t.ne == shape && t.is_contiguous();
    let outputs = [&gate.dst, &up.dst, out];
    let apart = outputs
        .iter()
        .enumerate()
        .all(|(i, t)| outputs[i + 1..].iter().all(|u| !overlaps(t, u)) && [ga, ua, gb].iter().all(|x| !overlaps(t, x)));
    (weights && activations && outputs.iter().all(|t| packed(t)) && apart).then_some(PairGlu { op, gate, up, out })
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

/// Whether a rope also writes the scaled values of a following SCALE (`GGVK_FUSE_ROPE_SCALE`, default on; off with
/// fusion).
pub fn rope_scale_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    enabled() && *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSE_ROPE_SCALE", true))
}

/// `rope` then `scale` as one [`RopeScale`], when the rope kernel gives the same bytes as the two nodes: `rope` is a
/// supported forward ROPE of F32, `scale` a SCALE of exactly its output into F32 laid out as that output. Each rope
/// invocation reads its pair of the source and writes that pair's outputs, while others still read theirs, so the
/// scaled output is the rope's output itself (the SCALE in place) or overlaps nothing the rope reads or writes.
pub fn rope_scale<'g>(rope: &'g Node, scale: &'g Node) -> Option<RopeScale<'g>> {
    use crate::quant::GgmlType;
    let (Op::Rope(params), Op::Scale { s, b }) = (&rope.op, &scale.op) else { return None };
    if !rope_scale_enabled() || params.back || crate::ops::check(rope).is_err() || crate::ops::check(scale).is_err() {
        return None;
    }
    let (d, src, out) = (&rope.dst, scale.src(0).ok()?, &scale.dst);
    let f32s = d.ty == GgmlType::F32 && rope.src(0).ok()?.ty == GgmlType::F32 && out.ty == GgmlType::F32;
    let laid_out = same_view(src, d) && out.ne == d.ne && out.nb == d.nb;
    let apart = same_view(out, d) || rope.src.iter().flatten().chain([d]).all(|t| !overlaps(t, out));
    (f32s && laid_out && apart).then_some(RopeScale { rope, s: *s, b: *b, out })
}

/// Whether producers write quantized copies of their outputs for the integer-dot products that read them, and the
/// fused norm the f16 copy prompt products read (`GGVK_FUSE_QUANTIZE`, default on; off with fusion).
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
/// anything writes over it; the MUL of an RMS_NORM+MUL pair and an attention on the NV_cooperative_matrix2 prompt
/// kernel, and a SOFT_MAX (the probabilities a product multiplies with V when attention is not fused), also where
/// the product reads an f16 copy of it. The first such product decides the layout; others of another layout
/// quantize for themselves.
pub fn plan_quantize(device: &crate::vk::Device, nodes: &[Node]) -> Vec<Option<crate::ops::q8_emit::Planned>> {
    let mut plan = vec![None; nodes.len()];
    if !quantize_enabled() {
        return plan;
    }
    for (i, node) in nodes.iter().enumerate() {
        // Whether the node writes 8-bit copies, f16 copies, and whether a product may read it through a reshape.
        let (q8, f16, reshaped) = match &node.op {
            Op::Mul => {
                let norm = i > 0 && rms_norm_mul(&nodes[i - 1], node).is_some();
                (norm, norm, false)
            }
            Op::Glu { .. } => (crate::ops::glu::can_emit(node), false, false),
            Op::FlashAttnExt { .. } => {
                use crate::ops::flash_attn::{prompt_emits_f16, reduce_emits};
                (reduce_emits(device, node), prompt_emits_f16(device, node), true)
            }
            Op::SoftMax { .. } => (false, crate::ops::softmax::can_emit_f16(node), false),
            _ => (false, false, false),
        };
        if !q8 && !f16 {
            continue;
        }
        let out = &node.dst;
        for later in nodes.iter().skip(i + 1).take(QUANTIZE_LOOKAHEAD) {
            if let (Op::MulMat, Ok(a), Ok(b)) = (&later.op, later.src(0), later.src(1)) {
                if same_view(b, out) || (reshaped && same_contiguous_bytes(b, out)) {
                    // The f16 copy a prompt product on cooperative matrices reads.
                    let f16 = f16 && crate::ops::matmul::reads_f16_copy(device, a, b);
                    let q8 = q8.then(|| crate::ops::matmul::quantized_b_layout(device, a, b, &later.dst));
                    plan[i] = q8
                        .flatten()
                        .or(f16.then_some(crate::ops::q8_emit::Q8Layout::F16))
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

/// Whether one-column products rotate and store their rows for the ROPE / SET_ROWS that follow them
/// (`GGVK_FUSE_MATVEC_ROPE`, default on; off with fusion).
pub fn mat_vec_rope_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    enabled() && *ON.get_or_init(|| crate::knobs::switch("GGVK_FUSE_MATVEC_ROPE", true))
}

/// Node indices of a [`MatVecRope`] group: the product, the rope, the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatVecRopeGroup {
    /// The MUL_MAT.
    pub mm: usize,
    /// The ROPE, if any.
    pub rope: Option<usize>,
    /// The SET_ROWS, if any.
    pub set: Option<usize>,
}

impl MatVecRopeGroup {
    /// The nodes after the product, in graph order.
    pub fn later(&self) -> impl Iterator<Item = usize> {
        self.rope.into_iter().chain(self.set)
    }

    /// The group's view of `nodes`.
    pub fn view<'g>(&self, nodes: &'g [Node]) -> Option<MatVecRope<'g>> {
        let mm = nodes.get(self.mm)?;
        let rope = self.rope.map(|r| &nodes[r]);
        let src = rope.map_or(&mm.dst, |r| &r.dst);
        let cache = match self.set {
            Some(s) => Some(cache_rows(mm, src, &nodes[s])?),
            None => None,
        };
        Some(MatVecRope { mm, rope, cache })
    }
}

/// A MUL_MAT of one column of one batch into a packed F32 vector.
fn one_column_product(mm: &Node) -> bool {
    let (Op::MulMat, Ok(a), Ok(b)) = (&mm.op, mm.src(0), mm.src(1)) else { return false };
    let t = &mm.dst;
    b.ne[1] == 1
        && b.ne[2] == 1
        && b.ne[3] == 1
        && t.ne == [a.ne[1], 1, 1, 1]
        && t.ty == GgmlType::F32
        && t.is_contiguous()
}

/// `rope` rotates exactly the rows of `mm`'s product (seen as heads) the way the epilogue does: forward, normal
/// mode, no channel offset, F32 in and out, packed, one token, its output apart from the weights, the product and
/// its own other sources. It may take the bytes of the product's activations (ggml's allocator reuses them once
/// the last product read them): the fused kernels read those as an 8-bit copy quantized before them, and apart the
/// rope is recorded after the product.
fn rope_of_product(mm: &Node, rope: &Node) -> bool {
    let Op::Rope(p) = &rope.op else { return false };
    if p.back || p.mode != crate::ir::rope::ROPE_MODE_NORMAL || p.n_offs != 0 || crate::ops::check(rope).is_err() {
        return false;
    }
    let (Ok(x), Ok(a)) = (rope.src(0), mm.src(0)) else { return false };
    let (t, out) = (&mm.dst, &rope.dst);
    let heads = x.ne[0] > 0 && x.ne[0] % 2 == 0 && x.ne == [x.ne[0], t.ne[0] / x.ne[0], 1, 1];
    let f32s = x.ty == GgmlType::F32 && out.ty == GgmlType::F32 && out.is_contiguous();
    let apart =
        [a, t].iter().all(|u| !overlaps(u, out)) && rope.src.iter().flatten().skip(1).all(|u| !overlaps(u, out));
    same_contiguous_bytes(x, t) && heads && f32s && apart
}

/// `set` stores `src` (the product's rows, or their rotation) as rows of a two-dimensional F16 cache, where the
/// epilogue can do it: `src` seen as `m / row_len` packed rows, one packed I32/I64 index each, the cache apart
/// from everything the group reads or writes.
fn cache_rows<'g>(mm: &'g Node, src: &'g Tensor, set: &'g Node) -> Option<CacheRows<'g>> {
    if !matches!(set.op, Op::SetRows) || crate::ops::check(set).is_err() {
        return None;
    }
    let (rows, index, cache) = (set.src(0).ok()?, set.src(1).ok()?, &set.dst);
    let row_len = rows.ne[0];
    let as_rows =
        same_contiguous_bytes(rows, src) && row_len > 0 && rows.ne == [row_len, src.nelements() / row_len, 1, 1];
    let indices =
        matches!(index.ty, GgmlType::I32 | GgmlType::I64) && index.ne == [rows.ne[1], 1, 1, 1] && index.is_row_packed();
    let cache_rows = cache.ty == GgmlType::F16
        && cache.is_row_packed()
        && cache.ne[0] == row_len
        && cache.ne[2] == 1
        && cache.ne[3] == 1;
    let apart =
        mm.src.iter().flatten().chain([&mm.dst, src, index]).all(|t| !overlaps(t, cache)) && !overlaps(index, src);
    (as_rows && indices && cache_rows && apart).then_some(CacheRows { set, index, cache, row_len })
}

/// One node writes bytes the other reads or writes.
fn conflict(x: &Node, y: &Node) -> bool {
    let writes_into =
        |w: &Node, r: &Node| overlaps(&w.dst, &r.dst) || r.src.iter().flatten().any(|s| overlaps(&w.dst, s));
    writes_into(x, y) || writes_into(y, x)
}

/// Nodes looked at past a product for the rope and the set it may take.
const ROPE_LOOKAHEAD: usize = 12;

/// The first node after `from` (within the lookahead) that reads or writes bytes of `t`.
fn next_toucher(nodes: &[Node], from: usize, t: &Tensor) -> Option<usize> {
    (from + 1..nodes.len().min(from + 1 + ROPE_LOOKAHEAD))
        .find(|&j| overlaps(&nodes[j].dst, t) || nodes[j].src.iter().flatten().any(|s| overlaps(s, t)))
}

/// The [`MatVecRopeGroup`]s of `nodes`, indexed by their product (the later members are pulled up to it): for each
/// one-column product, the first later node touching its output, if that is a ROPE the epilogue can do (then the
/// first node touching the rope's output, if that is a SET_ROWS into an F16 cache), or such a SET_ROWS. Taken
/// only where every node between the product and a later member is an op that writes only its destination and
/// touches none of that member's bytes, so the pulled-up order computes the same. A node is in one group at
/// most.
pub fn plan_groups(nodes: &[Node]) -> Vec<Option<MatVecRopeGroup>> {
    let mut groups = vec![None; nodes.len()];
    if !mat_vec_rope_enabled() {
        return groups;
    }
    let mut taken = vec![false; nodes.len()];
    for (i, mm) in nodes.iter().enumerate() {
        if taken[i] || !one_column_product(mm) {
            continue;
        }
        let Some(j) = next_toucher(nodes, i, &mm.dst) else { continue };
        let mut group = MatVecRopeGroup { mm: i, rope: None, set: None };
        if rope_of_product(mm, &nodes[j]) {
            group.rope = Some(j);
            if let Some(k) = next_toucher(nodes, j, &nodes[j].dst) {
                if cache_rows(mm, &nodes[j].dst, &nodes[k]).is_some() {
                    group.set = Some(k);
                }
            }
        } else if cache_rows(mm, &mm.dst, &nodes[j]).is_some() {
            group.set = Some(j);
        } else {
            continue;
        }
        // Nodes between the product and a later member stay after the group: they must not touch its bytes.
        // Members of earlier groups were pulled up before this product already.
        let pullable = |x: usize, group: &MatVecRopeGroup| {
            (i + 1..x).all(|y| {
                taken[y]
                    || group.later().any(|m| m == y)
                    || (nodes[y].op.writes_dst_only() && !conflict(&nodes[y], &nodes[x]))
            })
        };
        if group.set.is_some_and(|k| !pullable(k, &group)) {
            group.set = None;
        }
        if group.rope.is_some_and(|r| !pullable(r, &group)) || (group.rope.is_none() && group.set.is_none()) {
            continue;
        }
        taken[i] = true;
        for m in group.later() {
            taken[m] = true;
        }
        groups[i] = Some(group);
    }
    groups
}

/// Nodes looked at before a SET_ROWS of one-value rows for the node that wrote those rows ([`rows_period`]).
const WRITER_WINDOW: usize = 64;

/// For a SET_ROWS at position `p` of `order` whose rows are one value each (a transposed V cache's write, its rows
/// the V product's values one by one): the row length of the tensor that the latest earlier node within
/// [`WRITER_WINDOW`] wrote at the same bytes, which the cache write's tiled kernel takes as its period
/// ([`crate::ops::rows::record_set_rows_of`]); `None` where no such writer is found or it wrote another extent.
pub fn rows_period(all: &[Node], order: &[usize], p: usize) -> Option<u32> {
    let a = all[*order.get(p)?].src.first()?.as_ref()?;
    if a.ne[0] != 1 {
        return None;
    }
    let w = order[..p].iter().rev().take(WRITER_WINDOW).map(|&j| &all[j].dst).find(|d| overlaps(d, a))?;
    let same = w.offset == a.offset && w.is_contiguous() && a.is_contiguous() && w.nelements() == a.nelements();
    same.then(|| u32::try_from(w.ne[0]).ok()).flatten()
}
