//! b as the product kernels read it, derived once per submission: 8-bit blocks (q8_1 for the 32-value types,
//! Q8_K for the K-quants), f16 copies for the cooperative-matrix kernels, and activations rounded onto the grid
//! ggml's CPU backend multiplies them on.

use bytemuck::{Pod, Zeroable};

use super::{
    bf16_scalar, block32_int_dot, check, dequant_first_bytes, int_dot_on, int_dot_shaders, kquant_int_dot_shaders,
    split_plan, MatMulPush, MATVEC_MAX_COLS,
};
use crate::error::{Error, Result};
use crate::ir::Tensor;
use crate::ops::q8_emit::Q8Layout;
use crate::ops::{bind, coopmat, dim_u32, spirv, split_groups};
use crate::quant::{act_rounding, ActRounding, GgmlType};
use crate::vk::{Binding, Derived, Device, Recorder, Shader};

/// Quantize b onto the Q8_K grid into this submission's scratch (`quantize_q8_k.comp`, one workgroup per 256
/// values); returns the read-only binding of the copy and the push constants redirected to it (76 words per block).
pub(crate) fn quantize_b_q8k(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
) -> Result<(Binding, MatMulPush)> {
    if p.k % 256 != 0 {
        return Err(Error::Internal(format!("MUL_MAT: k = {} is not a multiple of 256 for Q8_K", p.k)));
    }
    let nblocks = p.k / 256;
    let col_words = dim_u32("quantized column", i64::from(nblocks) * Q8K_WORDS as i64)?;
    derive_b(rec, b, b_bind, p, (&QUANTIZE_Q8K, QUANTIZE_Q8K.name, 0), (nblocks, 64, false), col_words)
}

/// Words of one quantized 32-value block of x: d, sum(q), 8 words of packed q.
pub(crate) const QX_WORDS: u64 = 10;

/// Push constants of `quantize_q8_1.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct QuantizePush {
    nblocks: u32,
    ncols: u32,
    ne11: u32,
    ne12: u32,
    b_off: u32,
    b_col: u32,
    b_s2: u32,
    b_s3: u32,
    q_off: u32,
    pad: [u32; 3],
}

const QUANTIZE: Shader = Shader {
    name: "quantize_q8_1",
    spirv: spirv::QUANTIZE_Q8_1,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

/// Words of one Q8_K block of x (`quantize_q8_k.comp`): d, eight sub-block code sums, 3 words of padding, 64 words
/// of codes.
pub(crate) const Q8K_WORDS: u64 = 76;

const QUANTIZE_Q8K: Shader = Shader {
    name: "quantize_q8_k",
    spirv: spirv::QUANTIZE_Q8_K,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

/// Whether `a x b` rounds b to 8 bits per 32-value block first, as ggml's CPU backend does for Q4_0 and Q8_0
/// weights (its `vec_dot_type` is Q8_0): on by default for those weight types so results track the CPU
/// backend's; `GGVK_INT_DOT=0` keeps b in f32 (read once per process).
pub fn quantizes_activations(a: &Tensor) -> bool {
    int_dot_on() && matches!(a.ty, GgmlType::Q4_0 | GgmlType::Q8_0)
}

/// Whether the product of more than [`MATVEC_MAX_COLS`] columns reads b as 8-bit blocks: the Q4_0 / Q8_0 tiled
/// kernels and the 8-bit cooperative-matrix kernel do; weights dequantized to f16 first ([`dequant_first_bytes`])
/// and the f16 cooperative-matrix kernels read f16 activations.
pub(super) fn tiled_reads_q8(device: &Device, a: &Tensor, b: &Tensor) -> bool {
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    if !quantizes_activations(a) || n <= MATVEC_MAX_COLS || dequant_first_bytes(device, a, n).is_some() {
        return false;
    }
    let plan = if bf16_scalar(a) { None } else { coopmat::plan_on(device, a.ty, true, n) };
    plan.is_none_or(|(_, tile)| tile.b_q8)
}

/// The quantized copy of b that recording `a x b` on `device` looks up (as derived data) before quantizing b
/// itself, when it quantizes b at all: the Q8_K blocks of the integer-dot K-quant mat-vec, or the 32-value
/// blocks of the Q4_0 / Q8_0 products. None where the product is cut into pieces (each piece quantizes its own
/// columns) or reads b in f32. A producer of b may write the copy instead ([`super::q8_emit`]).
pub fn quantized_b_layout(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Option<Q8Layout> {
    if check(a, b, dst).is_err() || !matches!(split_plan(device, a, b, dst), Ok(None)) {
        return None;
    }
    if kquant_int_dot_shaders(device, a, b).is_some() {
        return Some(Q8Layout::Q8k);
    }
    (tiled_reads_q8(device, a, b) || int_dot_shaders(device, a, b).is_some()).then_some(Q8Layout::Qx)
}

/// The grid b's values are on when `a x b` multiplies them on `device`: the CPU backend's Q8_K for the integer-dot
/// K-quant mat-vec, Q8_0's for the integer-dot mat-vec of the other 32-value block types ([`block32_int_dot`]),
/// [`rounds_activations`] otherwise (None: f32 as given; Q4_0/Q8_0's 8-bit blocks are not a grid of this kind, see
/// [`quantizes_activations`]).
pub fn activation_grid(device: &Device, a: &Tensor, b: &Tensor) -> Option<ActRounding> {
    if kquant_int_dot_shaders(device, a, b).is_some() {
        Some(ActRounding::Q8K)
    } else if block32_int_dot(a) && int_dot_shaders(device, a, b).is_some() {
        Some(ActRounding::Q8_0)
    } else {
        rounds_activations(a)
    }
}

/// Bytes of one column of b's derived copy for weights `a`: quantized to 8-bit blocks (`quantized`), rounded onto
/// the CPU's grid as f32, or none (0).
pub(crate) fn derived_column_bytes(a: &Tensor, b: &Tensor, quantized: bool) -> u64 {
    let k = b.ne[0].max(0) as u64;
    use GgmlType::{IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K};
    if quantized && matches!(a.ty, Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | IQ4_XS) {
        (k / 256) * Q8K_WORDS * 4
    } else if quantized {
        (k / 32) * QX_WORDS * 4
    } else if rounds_activations(a).is_some() {
        k * 4
    } else {
        0
    }
}

/// Quantize b into this submission's scratch; returns the binding of the quantized copy (read-only) and the
/// push constants with b's offset and strides redirected to it (in words; 10 per 32-value block).
pub(crate) fn quantize_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
) -> Result<(Binding, MatMulPush)> {
    let nblocks = p.k / 32;
    // Columns are laid out one after another: column i11 of batch (i12, i13) starts at
    // ((i13 * ne12 + i12) * n + i11) * nblocks blocks.
    let col_words = dim_u32("quantized column", i64::from(nblocks) * QX_WORDS as i64)?;
    // quantize_q8_1.comp: eight threads per 32-value block.
    derive_b(rec, b, b_bind, p, (&QUANTIZE, QUANTIZE.name, 0), (nblocks, 8, false), col_words)
}

const NARROW_F16_VEC: Shader = Shader {
    name: "narrow_f16_vec",
    spirv: spirv::NARROW_F16_VEC,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

const NARROW_F16: Shader = Shader {
    name: "narrow_f16",
    spirv: spirv::NARROW_F16,
    bindings: 2,
    push_size: std::mem::size_of::<QuantizePush>() as u32,
};

/// Whether the product `a x b` on `device` reads b through its plain packed f16 copy ([`narrow_b`] without
/// rounding, [`NARROW_F16_KIND`]): a prompt product on the cooperative-matrix kernels over f32 activations, its
/// weights F16, decoded to f16 first, or of a type whose activations are not rounded onto another grid.
pub fn reads_f16_copy(device: &Device, a: &Tensor, b: &Tensor) -> bool {
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    if b.ty != GgmlType::F32 || n <= super::MATVEC_MAX_COLS {
        return false;
    }
    match super::dequant_first_bytes(device, a, n) {
        Some(_) => coopmat::plan_on(device, GgmlType::F16, false, n).is_some_and(|(_, t)| !t.b_q8),
        None => rounds_activations(a).is_none() && coopmat::reads_f16_b(device, a, b),
    }
}

/// The derived-data kind of b's packed f16 copy (not rounded onto another grid first), which producers that write
/// that copy themselves register too.
pub(crate) const NARROW_F16_KIND: &str = "narrow_f16";

/// Bytes per column of the packed f16 copy [`narrow_b`] writes for `k` values (`ceil(k / 2)` 32-bit words).
pub(crate) fn narrowed_column_bytes(k: i64) -> u64 {
    (k.max(0) as u64).div_ceil(2) * 4
}

/// Write b as packed f16 (rounded to nearest even) into this submission's scratch for the cooperative-matrix
/// kernels; returns the read-only binding and the push constants with b's offset and strides redirected to it, in
/// halves (columns of `2 ceil(k / 2)` halves one after another). `rounded`: b was already rounded onto this grid
/// (the copy is then cached apart from a copy of the unrounded values).
pub(crate) fn narrow_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
    rounded: Option<ActRounding>,
) -> Result<(Binding, MatMulPush)> {
    let col_words = p.k.div_ceil(2);
    let cols = i64::from(p.n) * b.ne[2] * b.ne[3];
    dim_u32("f16 activations (halves)", i64::from(col_words) * 2 * cols)?;
    let kind = match rounded {
        None => NARROW_F16_KIND,
        Some(ActRounding::Q8_0) => "narrow_f16_q8_0",
        Some(ActRounding::Q8K) => "narrow_f16_q8k",
        Some(ActRounding::Bf16) => "narrow_f16_bf16",
    };
    // Eight values per invocation where k and b's offset and strides allow 16-byte loads and stores (the copy is
    // the same: one kind of derived data).
    let vec8 = p.k % 8 == 0 && [p.b_off, p.b_col, p.b_s2, p.b_s3].iter().all(|v| v % 4 == 0);
    let (shader, groups) = if vec8 { (&NARROW_F16_VEC, col_words / 4) } else { (&NARROW_F16, col_words) };
    let (read, mut p) = derive_b(rec, b, b_bind, p, (shader, kind, p.k), (groups, 1, true), col_words)?;
    p.b_off *= 2;
    p.b_col *= 2;
    p.b_s2 *= 2;
    p.b_s3 *= 2;
    Ok((read, p))
}

/// Write a per-column transform of b (`shader`: 8-bit quantization or rounding onto a grid; `nblocks` blocks of
/// `block_threads` threads each per column (`blocks` = (nblocks, block_threads, packs); 64-thread workgroups;
/// `packs`: the shader takes several columns per workgroup where a column needs fewer than 64 threads, as many as
/// push `pad[1]` says, `narrow_f16.comp`), `col_words` 32-bit words per output column, columns one after another)
/// into this submission's scratch; returns the read-only binding of the copy and the push constants with b's offset and
/// strides redirected to it. The same activation feeding several products (Q, K and V; gate and up) is
/// transformed once per submission (until its bytes are written again).
fn derive_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
    (shader, kind, pad0): (&Shader, &'static str, u32),
    (nblocks, block_threads, packs): (u32, u32, bool),
    col_words: u32,
) -> Result<(Binding, MatMulPush)> {
    let device = rec.device().clone();
    let cols = u64::from(p.n) * (b.ne[2] * b.ne[3]) as u64;
    // Overflow of the redirected strides is caught here rather than wrapping in the kernel.
    dim_u32("derived activations", i64::from(col_words) * cols as i64)?;
    let redirect = |mut p: MatMulPush, off: u32| {
        p.b_off = off;
        p.b_col = col_words;
        p.b_s2 = col_words * p.n;
        p.b_s3 = col_words * p.n * p.ne12;
        p
    };
    let (start, end) = b.byte_range();
    let source = (b.buffer.id(), start, end);
    let layout = (b.ty.raw(), b.ne, b.nb);
    if let Some((read, off)) = rec.find_derived(kind, source, layout) {
        return Ok((read, redirect(p, off)));
    }
    let bytes = u64::from(col_words) * 4 * cols;
    let (scratch, offset) = rec.scratch(bytes)?;
    let region = Tensor::contiguous(scratch, offset, GgmlType::I32, [(bytes / 4) as i64, 1, 1, 1])?;
    let (write, off) = bind(&device, &region, 4, true)?;
    // Columns of fewer than 64 threads share workgroups where the shader allows (a 2,048-token prompt's 65,536
    // query columns of 128 values, attention without flash attention: 16 of 64 threads busy otherwise).
    let threads = u64::from(nblocks) * u64::from(block_threads);
    let per = if packs && threads > 0 && threads < 64 { 64 / threads } else { 1 };
    let push = QuantizePush {
        nblocks,
        ncols: dim_u32("columns", cols as i64)?,
        ne11: p.n,
        ne12: p.ne12,
        b_off: p.b_off,
        b_col: p.b_col,
        b_s2: p.b_s2,
        b_s3: p.b_s3,
        q_off: off,
        pad: [pad0, per as u32, 0],
    };
    let pipeline = device.pipelines().get(&device, shader, &[])?;
    let (gy, gz) = split_groups(cols.div_ceil(per), device.caps().max_workgroup_count[1])?;
    let gx = if per > 1 { 1 } else { threads.div_ceil(64) as u32 };
    rec.dispatch(shader.name, &pipeline, &[b_bind.clone(), write.clone()], bytemuck::bytes_of(&push), [gx, gy, gz])?;
    let read = Binding { write: false, ..write };
    rec.add_derived(Derived { kind, source, layout, result: (read.clone(), off) });
    Ok((read, redirect(p, off)))
}

/// Whether `a x b` runs the generic f32-activation kernels on a copy of b rounded onto the grid ggml's CPU backend
/// puts activations on for `a`'s type (its `vec_dot_type`: Q8_0/Q8_1 for Q4_1/Q5_0/Q5_1, Q8_K for the K-quants,
/// BF16 for BF16, Q8_0 for IQ4_NL, MXFP4, NVFP4, Q1_0 and Q2_0, Q8_K for the other IQ types and TQ1_0/TQ2_0; see
/// [`crate::quant::act`]), and which grid. `GGVK_ROUND_ACTIVATIONS=1` turns it on for every generic type, `=0` off
/// for all (read once per process); by default IQ4_NL rounds (a K cache in IQ4_NL meets the attention's Q there: with
/// f32 Q, greedy decoding of a tiny model left the CPU's tokens at step 9), and so do the IQ types added after it,
/// TQ1_0/TQ2_0, MXFP4, NVFP4, Q1_0 and Q2_0 (their products then agree with the CPU backend's to f32 noise, as llama.cpp's
/// test-backend-ops checks them). It brings single products to the CPU backend's result within f32 noise, but on Gemma 3
/// 270M (Q4_K_M) the end-to-end KL divergence against the CPU was worse with it (NOTES.md), hence off by default for
/// the older types. Q4_0, Q8_0 and F16 weights have their own paths ([`quantizes_activations`], the F16 kernels'
/// f16 rounding); F32 weights take b as it is.
pub fn rounds_activations(a: &Tensor) -> Option<ActRounding> {
    static KNOB: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let knob = *KNOB.get_or_init(|| crate::knobs::either("GGVK_ROUND_ACTIVATIONS"));
    let generic = !matches!(a.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q8_0);
    if generic && knob.unwrap_or(rounds_by_default(a.ty)) {
        act_rounding(a.ty)
    } else {
        None
    }
}

/// The weight types whose activations [`rounds_activations`] rounds without `GGVK_ROUND_ACTIVATIONS`.
fn rounds_by_default(ty: GgmlType) -> bool {
    use GgmlType as T;
    matches!(
        ty,
        T::IQ4_NL
            | T::IQ4_XS
            | T::IQ3_S
            | T::IQ3_XXS
            | T::IQ2_XXS
            | T::IQ2_XS
            | T::IQ2_S
            | T::IQ1_S
            | T::IQ1_M
            | T::TQ1_0
            | T::TQ2_0
            | T::MXFP4
            | T::NVFP4
            | T::Q1_0
            | T::Q2_0
    )
}

/// Push constants of `round_act.comp` (same layout as [`QuantizePush`], offsets in floats).
type RoundPush = QuantizePush;

fn round_shader(r: ActRounding) -> Shader {
    let (name, spirv) = match r {
        ActRounding::Q8_0 => ("round_act_q8_0", spirv::ROUND_ACT_Q8_0),
        ActRounding::Q8K => ("round_act_q8_k", spirv::ROUND_ACT_Q8_K),
        ActRounding::Bf16 => ("round_act_bf16", spirv::ROUND_ACT_BF16),
    };
    Shader { name, spirv, bindings: 2, push_size: std::mem::size_of::<RoundPush>() as u32 }
}

/// Round b onto `r`'s grid into this submission's scratch (f32, columns one after another, k floats each);
/// returns the read-only binding of the copy and the push constants with b's offset and strides redirected to it.
pub(crate) fn round_b(
    rec: &mut Recorder<'_>,
    b: &Tensor,
    b_bind: &Binding,
    p: MatMulPush,
    r: ActRounding,
) -> Result<(Binding, MatMulPush)> {
    let block = r.block() as u32;
    if p.k % block != 0 {
        return Err(Error::Internal(format!("MUL_MAT: k = {} is not a multiple of {block} for rounding", p.k)));
    }
    let shader = round_shader(r);
    derive_b(rec, b, b_bind, p, (&shader, shader.name, 0), (p.k / block, 1, false), p.k)
}
