//! Producer-side quantization of activations. The integer-dot products quantize their activation column(s) into
//! scratch first (a dispatch, and a barrier, per product input; [`super::matmul`]). A producer kernel that writes
//! that activation can write the quantized copy too (`shaders/emit_q8.glsl`): the copy is registered as the
//! product's derived data ([`crate::vk::Derived`], the same key the product looks up), so the product finds it and
//! records no quantization of its own. The codes are bit-identical to the stand-alone kernels'.
//!
//! Producers: RMS_NORM fused with its MUL ([`super::norm::record_rms_norm_mul`]; also the f16 copy the prompt
//! products on cooperative matrices read, [`Q8Layout::F16`]), the GLU family ([`super::glu::record_emitting`]),
//! and the f16 copy only: the prompt attention on NV_cooperative_matrix2 and SOFT_MAX
//! ([`super::softmax::record_emitting`]). The executor asks the engine's fusion planning
//! (`graph::fusion::plan_quantize`) whether a later product will read a node's output quantized, and in which layout.

use super::bind;
use crate::error::Result;
use crate::ir::Tensor;
use crate::quant::GgmlType;
use crate::vk::{Binding, Derived, Recorder};

/// The layouts of derived activations a producer can write for the products that read them: quantized for the
/// integer-dot products, packed f16 for the cooperative-matrix products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Q8Layout {
    /// `quantize_q8_1.comp`: 10 words per 32 values (Q4_0 / Q8_0 weights).
    Qx,
    /// `quantize_q8_k.comp`: 76 words per 256 values (K-quant weights).
    Q8k,
    /// `narrow_f16.comp`: two values per word, rounded to nearest even (prompt products on cooperative matrices;
    /// only the fused RMS_NORM+MUL writes it).
    F16,
}

impl Q8Layout {
    /// Values per block.
    pub fn block(self) -> i64 {
        match self {
            Q8Layout::Qx => 32,
            Q8Layout::Q8k => 256,
            Q8Layout::F16 => 2,
        }
    }

    /// 32-bit words per block.
    pub fn words(self) -> u64 {
        match self {
            Q8Layout::Qx => super::matmul::QX_WORDS,
            Q8Layout::Q8k => super::matmul::Q8K_WORDS,
            Q8Layout::F16 => 1,
        }
    }

    /// Invocations that quantize one block together in the producers.
    pub fn threads(self) -> u32 {
        match self {
            Q8Layout::Qx => 8,
            Q8Layout::Q8k => 64,
            Q8Layout::F16 => 1,
        }
    }

    /// The derived-data kind the products look up (the stand-alone kernel's name).
    pub fn kind(self) -> &'static str {
        match self {
            Q8Layout::Qx => "quantize_q8_1",
            Q8Layout::Q8k => "quantize_q8_k",
            Q8Layout::F16 => super::matmul::NARROW_F16_KIND,
        }
    }

    /// Scratch bytes of `t`'s quantized copy (its rows of `ne[0]` values, one column each).
    pub fn bytes(self, t: &Tensor) -> u64 {
        let cols = (t.ne[1] * t.ne[2] * t.ne[3]).max(0) as u64;
        (t.ne[0].max(0) / self.block()) as u64 * self.words() * 4 * cols
    }

    /// Whether a producer can write `t` (F32, rows a multiple of the block, not empty) in this layout.
    pub fn fits(self, t: &Tensor) -> bool {
        t.ty == GgmlType::F32 && t.ne[0] > 0 && t.ne[0] % self.block() == 0 && t.nelements() > 0
    }
}

/// A producer's planned quantized copy (the engine's `graph::fusion::plan_quantize`): the layout, and the view
/// through which the product reads the producer's output (that output itself, or a contiguous reshape of it; the
/// copy is sized and registered by this view).
#[derive(Clone, Debug)]
pub struct Planned {
    /// The layout.
    pub layout: Q8Layout,
    /// The product's view of the producer's output.
    pub view: Tensor,
}

/// Where a producer writes the quantized copy of its output.
pub struct Emit {
    /// The layout.
    pub layout: Q8Layout,
    /// Scratch region, writable.
    pub write: Binding,
    /// Its first word in the binding.
    pub word: u32,
}

/// Take scratch for `out`'s quantized copy.
pub fn reserve(rec: &mut Recorder<'_>, out: &Tensor, layout: Q8Layout) -> Result<Emit> {
    let device = rec.device().clone();
    let bytes = layout.bytes(out);
    let (scratch, offset) = rec.scratch(bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::I32, [(bytes / 4) as i64, 1, 1, 1])?;
    let (write, word) = bind(&device, &region, 4, true)?;
    Ok(Emit { layout, write, word })
}

/// After the producer's dispatch: make the copy what a product of `out` (the view it reads) finds instead of
/// quantizing it again.
pub fn publish(rec: &mut Recorder<'_>, out: &Tensor, emit: Emit) {
    let (start, end) = out.byte_range();
    rec.add_derived(Derived {
        kind: emit.layout.kind(),
        source: (out.buffer.id(), start, end),
        layout: (out.ty.raw(), out.ne, out.nb),
        result: (Binding { write: false, ..emit.write }, emit.word),
    });
}

/// Whether a producer writing its output `d` in element order can write the f16 copy `emit` plans: that layout,
/// over `d`'s bytes (a contiguous view of the same elements), `d` contiguous, so that the copy's halves sit in the
/// output's order.
pub fn f16_in_order(d: &Tensor, emit: &Planned) -> bool {
    emit.layout == Q8Layout::F16
        && d.is_contiguous()
        && emit.view.is_contiguous()
        && emit.view.buffer.id() == d.buffer.id()
        && emit.view.offset == d.offset
        && emit.view.nelements() == d.nelements()
        && emit.layout.fits(&emit.view)
}
