//! Views of neighbouring nodes that one kernel records together, exactly as recording them apart would (same
//! arithmetic, same order, every tensor the separate nodes write still written). The engine's fusion pass
//! (`graph::fusion`) finds them; the ops' fused kernels take them.

use super::{Node, Tensor};

/// An RMS_NORM node and the MUL that scales its output by one row of weights.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormMul<'g> {
    /// The RMS_NORM node (its output is still written).
    pub norm: &'g Node,
    /// The weights: F32, `[ne0, 1, 1, 1]`, packed.
    pub weight: &'g Tensor,
    /// The MUL's destination: the norm's shape and strides.
    pub out: &'g Tensor,
    /// An ADD of the product and another tensor that follows (gemma's post-norms and their residuals).
    pub add: Option<NormAdd<'g>>,
}

/// The ADD that an RMS_NORM+MUL also computes: `sum = product + addend`, element by element.
#[derive(Clone, Copy, Debug)]
pub struct NormAdd<'g> {
    /// The other operand: F32, the product's shape and strides.
    pub addend: &'g Tensor,
    /// The ADD's destination: F32, the product's shape and strides.
    pub sum: &'g Tensor,
}

/// The two views share any byte of one buffer.
pub(crate) fn overlaps(a: &Tensor, b: &Tensor) -> bool {
    let ((a0, a1), (b0, b1)) = (a.byte_range(), b.byte_range());
    a.buffer.id() == b.buffer.id() && a0 < b1 && b0 < a1
}

/// A MUL_MAT of one batch and the ADD of its result that follows it (one column: the mat-vec kernels' epilogue;
/// several: the prompt products' store, where a kernel takes it).
#[derive(Clone, Copy, Debug)]
pub struct MatVecAdd<'g> {
    /// The MUL_MAT node (its output is still written).
    pub mm: &'g Node,
    /// The ADD's other operand: F32, the product's shape, packed.
    pub addend: &'g Tensor,
    /// The ADD's destination: F32, the product's shape, packed.
    pub out: &'g Tensor,
}

/// Two products of the same activations and the GLU of their results that follows them (a feed-forward block's
/// gate and up halves): `glu = act(gate.dst) * up.dst`, element by element (SWIGLU: act = silu; GEGLU, ...).
#[derive(Clone, Copy, Debug)]
pub struct PairGlu<'g> {
    /// The GLU's activation.
    pub op: super::GluOp,
    /// The gate's MUL_MAT node (the GLU's first operand; its output is still written).
    pub gate: &'g Node,
    /// The up MUL_MAT node (the GLU's second operand; its output is still written): the gate's activations, weights
    /// of the gate's type and shape.
    pub up: &'g Node,
    /// The GLU's destination: F32, the products' shape, packed.
    pub out: &'g Tensor,
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

/// A ROPE and the SCALE of its output (gemma's and phi's queries, scaled after their rotation).
#[derive(Clone, Copy, Debug)]
pub struct RopeScale<'g> {
    /// The ROPE node (its output is still written, unless the SCALE writes over it).
    pub rope: &'g Node,
    /// SCALE's multiplier and the value added after it.
    pub s: f32,
    /// See `s`.
    pub b: f32,
    /// The SCALE's destination: laid out as the rope's output (F32), that output itself or apart from everything
    /// the rope reads and writes.
    pub out: &'g Tensor,
}

/// Where a one-column product's rows (or their rotation) also go: cache rows of a SET_ROWS.
#[derive(Clone, Copy, Debug)]
pub struct CacheRows<'g> {
    /// The SET_ROWS node.
    pub set: &'g Node,
    /// Its row indices: I32 or I64, packed, one per row of `row_len` values.
    pub index: &'g Tensor,
    /// Its destination: a two-dimensional F16 cache of rows of `row_len` values.
    pub cache: &'g Tensor,
    /// Values per set row (the product's rows split into `m / row_len` of them).
    pub row_len: i64,
}

/// A MUL_MAT of one column and the ROPE of its rows (Q), that ROPE and the SET_ROWS of its output (K), or the
/// SET_ROWS of its rows (V), recorded as one kernel (see the module docs). Every tensor the nodes write is written.
#[derive(Clone, Copy, Debug)]
pub struct MatVecRope<'g> {
    /// The MUL_MAT node: one column, an F32 packed output of `m` rows.
    pub mm: &'g Node,
    /// The ROPE of the product's rows seen as heads (normal mode, no channel offset, F32, packed output).
    pub rope: Option<&'g Node>,
    /// The SET_ROWS of the rope's output, or of the product's rows without a rope.
    pub cache: Option<CacheRows<'g>>,
}
