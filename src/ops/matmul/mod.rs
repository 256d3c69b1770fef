//! MUL_MAT: `dst[M, N, b2, b3] = A[K, M, a2, a3] x B[K, N, b2, b3]^T` with ggml's batch broadcast
//! (`b2 % a2 == 0`, A batch `i2 / (b2 / a2)`). A: F32, F16, Q4_0 or Q8_0 (specialised kernels), or any type with a
//! dequantization include `shaders/dequant/<type>.glsl` (generic kernels: Q4_1, Q5_0, Q5_1, BF16, ...; the mat-vec
//! of the K-quants, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS and MXFP4 runs on integer dot products where the device has
//! them, see [`block32_int_dot`] and [`kquant_int_dot`]); dst F32; B
//! F32, or F16 widened to an F32 copy first (exact; every path is then the F32 one). Up to [`MATVEC_MAX_COLS`] columns run the mat-vec kernel (token generation); more run the tiled kernel: on
//! cooperative matrices where the device has them ([`super::coopmat`]), else the scalar one.
//!
//! Here: the check, the split of products too large for one dispatch, the recording and its fused epilogues (the
//! residual ADD, the rope and cache writes). `matvec`: which mat-vec kernel runs a product of few columns and how.
//! `operands`: b as the kernels read it (8-bit blocks, f16 copies, activations rounded onto the CPU's grid).
//! `weights_f16`: quantized weights decoded to f16 for the prompt products, per batch or kept between prompts.
//! `pair_glu`: a prompt's gate and up products and their SWIGLU as one NV_cooperative_matrix2 kernel.

use bytemuck::{Pod, Zeroable};

use super::{bind, coopmat, cpy, dim_u32, spirv, split_groups, stride_units, window_limit};
use crate::error::{Error, Result};
use crate::ir::fused::{MatVecAdd, MatVecRope};
use crate::ir::Tensor;
use crate::quant::GgmlType;
use crate::vk::{Binding, Device, Recorder, Shader};

mod matvec;
mod operands;
mod pair_glu;
mod weights_f16;

pub(crate) use matvec::{
    block32_idot_config, device_forces_shared_reduction, dq_span16, kquant_idot_config, kquant_int_dot,
    kquant_wide_shader, matvec_kernel_type, matvec_workgroup, wide16, MATVEC_MAX_COLS,
};
pub use matvec::{block32_int_dot, matvec_config, uses_int_dot, MatVecConfig};
use matvec::{
    dq_shader, int_dot_on, int_dot_shaders, kquant_int_dot_shaders, kquant_matvec_shaders, kquant_wide_unit,
    matvec_shaders, matvec_shaders_for, record_int_dot, staged_block32, words32_idot_shaders,
};
pub use operands::reads_f16_copy;
use operands::tiled_reads_q8;
pub use operands::{activation_grid, quantized_b_layout, quantizes_activations, rounds_activations};
pub(crate) use operands::{
    derived_column_bytes, narrow_b, narrowed_column_bytes, quantize_b, quantize_b_q8k, round_b, NARROW_F16_KIND,
    Q8K_WORDS, QX_WORDS,
};
pub use pair_glu::{pair_glu_kind, record_pair_glu, takes_pair_glu};
use weights_f16::f16_copy;
pub use weights_f16::{dequant_first_bytes, keep_f16_budget};

/// Push constants of `mul_mat_vec.comp` and `mul_mat.comp` (`MATMUL_PUSH` in `shaders/common.glsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatMulPush {
    /// Rows of A (= dst ne0).
    pub m: u32,
    /// Columns of B (= dst ne1).
    pub n: u32,
    /// Shared dimension.
    pub k: u32,
    /// A: first element, row stride, batch strides (A's units).
    pub a_off: u32,
    /// A row stride.
    pub a_row: u32,
    /// A dim-2 stride.
    pub a_s2: u32,
    /// A dim-3 stride.
    pub a_s3: u32,
    /// B: first element, column stride, batch strides (floats).
    pub b_off: u32,
    /// B column stride.
    pub b_col: u32,
    /// B dim-2 stride.
    pub b_s2: u32,
    /// B dim-3 stride.
    pub b_s3: u32,
    /// dst: first element, column stride, batch strides (floats).
    pub d_off: u32,
    /// dst column stride.
    pub d_col: u32,
    /// dst dim-2 stride.
    pub d_s2: u32,
    /// dst dim-3 stride.
    pub d_s3: u32,
    /// B/dst batches along dim 2.
    pub ne12: u32,
    /// Broadcast ratio along dim 2 (`b2 / a2`).
    pub r2: u32,
    /// Broadcast ratio along dim 3.
    pub r3: u32,
    /// Padding to 16 bytes.
    pub pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<MatMulPush>() as u32;

const _: () = assert!(PUSH == 80);

const fn shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 3, push_size: PUSH }
}

/// Values per chunk of the generic kernels' rows: a row of a type with a dequantization include must hold whole
/// chunks (`dq_get4` reads 4 values; blocks are multiples of 4, BF16 "blocks" are 4 values). MXFP4's unit is a pair
/// of its 17-byte blocks (64 values on 17 16-bit words, `shaders/dequant/mxfp4.glsl`).
pub(crate) fn dq_row_multiple(ty: GgmlType) -> i64 {
    match ty {
        GgmlType::MXFP4 => 64,
        _ => ty.block_size().max(4) as i64,
    }
}

/// BF16 weights whose rows are not a multiple of 4 values: the generic kernels read 4-value chunks, so these take
/// the float kernels' `A_BF16` variants instead (one value per thread per step, like F16), which take any length.
pub(crate) fn bf16_scalar(a: &Tensor) -> bool {
    a.ty == GgmlType::BF16 && a.ne[0] % 4 != 0
}

fn matmul_shader(ty: GgmlType) -> Option<Shader> {
    Some(match ty {
        GgmlType::F32 => shader("mul_mat_f32", spirv::MUL_MAT_F32),
        GgmlType::F16 => shader("mul_mat_f16", spirv::MUL_MAT_F16),
        GgmlType::Q4_0 => shader("mul_mat_q4_0", spirv::MUL_MAT_Q4_0),
        GgmlType::Q8_0 => shader("mul_mat_q8_0", spirv::MUL_MAT_Q8_0),
        _ => return dq_shader("mul_mat_dq", ty),
    })
}

/// Shared memory the dequantization include of `ty` takes for its grid table (`shaders/iq_grids/`) or its 16-entry
/// level table (IQ4_NL, IQ4_XS, MXFP4, NVFP4: `shaders/dq_levels16.glsl`, and the integer-dot mat-vec kernels').
pub(crate) fn dq_table_bytes(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::IQ4_NL | GgmlType::IQ4_XS | GgmlType::MXFP4 | GgmlType::NVFP4 => 64,
        GgmlType::IQ1_S | GgmlType::IQ1_M => 4096,
        GgmlType::IQ2_S | GgmlType::IQ3_S => 2048,
        GgmlType::IQ2_XS | GgmlType::IQ3_XXS => 1024,
        GgmlType::IQ2_XXS => 512,
        _ => 0,
    }
}

/// Output tile of the tiled kernel.
const TILE: u32 = 64;

/// Whether ggvk supports this multiplication (independent of device limits).
pub fn check(a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    if matvec_shaders(a.ty).is_none() || matmul_shader(a.ty).is_none() {
        return Err(Error::unsupported(format!("MUL_MAT with {} weights", a.ty.name())));
    }
    let generic = !matches!(a.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q8_0);
    if generic && !bf16_scalar(a) && a.ne[0] % dq_row_multiple(a.ty) != 0 {
        return Err(Error::unsupported(format!(
            "MUL_MAT with {} weights needs rows of a multiple of {} values, got {}",
            a.ty.name(),
            dq_row_multiple(a.ty),
            a.ne[0]
        )));
    }
    if !matches!(b.ty, GgmlType::F32 | GgmlType::F16) || dst.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "MUL_MAT needs F32 or F16 src1 and F32 dst, got {} and {}",
            b.ty.name(),
            dst.ty.name()
        )));
    }
    if !a.is_row_packed() || !b.is_row_packed() || !dst.is_row_packed() {
        return Err(Error::unsupported("MUL_MAT with non-contiguous rows (nb[0] != element size)"));
    }
    if a.ne[0] != b.ne[0] {
        return Err(Error::invalid(format!("MUL_MAT: src0 ne[0] = {} but src1 ne[0] = {}", a.ne[0], b.ne[0])));
    }
    let want = [a.ne[1], b.ne[1], b.ne[2], b.ne[3]];
    if dst.ne != want {
        return Err(Error::invalid(format!("MUL_MAT: dst shape {:?}, expected {want:?}", dst.ne)));
    }
    for d in 2..4 {
        if a.ne[d] == 0 || b.ne[d] % a.ne[d] != 0 {
            return Err(Error::invalid(format!(
                "MUL_MAT: src1 ne[{d}] = {} is not a multiple of src0 ne[{d}] = {}",
                b.ne[d], a.ne[d]
            )));
        }
    }
    Ok(())
}

/// How a product too large for one storage window per tensor is cut: rows of A (= rows of dst) per piece and
/// columns of B (= columns of dst) per piece. `None` when every tensor fits as it is.
fn split_plan(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<Option<(i64, i64)>> {
    let limit = window_limit(device);
    if [a, b, dst].iter().all(|t| t.nbytes() <= limit) {
        return Ok(None);
    }
    let too_big = || {
        Error::unsupported(format!(
            "MUL_MAT: tensors larger than this device's maxStorageBufferRange ({} bytes) can only be split for \
             2-D products with rows that fit (src0 {a:?}, src1 {b:?})",
            device.caps().max_storage_buffer_range
        ))
    };
    if a.ne[2] != 1 || a.ne[3] != 1 || b.ne[2] != 1 || b.ne[3] != 1 {
        return Err(too_big());
    }
    let (m, n) = (a.ne[1], b.ne[1]);
    let a_row = a.nbytes() / m.max(1) as u64;
    // Rows of A per piece: as many as fit, a multiple of the tile when there are that many.
    let mut rows = (limit / a.nb[1].max(a_row)) as i64;
    if rows >= i64::from(TILE) {
        rows -= rows % i64::from(TILE);
    }
    let rows = rows.min(m);
    // Columns per piece: B's columns and dst's columns (of `rows` floats) must fit too.
    let fit = |stride: u64, first: u64| if first > limit { 0 } else { ((limit - first) / stride.max(1)) as i64 + 1 };
    let cols = fit(b.nb[1], b.ne[0] as u64 * 4).min(fit(dst.nb[1], rows as u64 * 4)).min(n);
    if rows < 1 || cols < 1 {
        return Err(too_big());
    }
    Ok(Some((rows, cols)))
}

/// Whether the multiplication runs on `device`: [`check`] plus the storage-window limits (products whose
/// tensors exceed one window are cut into pieces that fit, see [`split_plan`]).
pub fn check_on(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    check(a, b, dst)?;
    cpy::check_f32_operand(device, "MUL_MAT", b)?;
    split_plan(device, a, &cpy::widened_view(b), dst).map(|_| ())
}

/// Record the multiplication (in pieces, when a tensor is larger than one storage window). An F16 src1 is first
/// widened to an F32 copy ([`cpy::f32_operand`]; the kernels read f32 activations), so the weight types' paths and
/// numerics are those of F32 src1 (its values are exact in f32).
pub fn record(rec: &mut Recorder<'_>, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    check(a, b, dst)?;
    let b = &cpy::f32_operand(rec, b)?;
    let device = rec.device().clone();
    let Some((rows, cols)) = split_plan(&device, a, b, dst)? else {
        return record_piece(rec, a, b, dst, Epilogue::None).map(|_| ());
    };
    let (m, n) = (a.ne[1], b.ne[1]);
    for r0 in (0..m).step_by(rows as usize) {
        let nr = rows.min(m - r0);
        let a_piece = Tensor::new(a.buffer.clone(), a.offset + r0 as u64 * a.nb[1], a.ty, [a.ne[0], nr, 1, 1], a.nb)?;
        for c0 in (0..n).step_by(cols as usize) {
            let nc = cols.min(n - c0);
            let b_piece =
                Tensor::new(b.buffer.clone(), b.offset + c0 as u64 * b.nb[1], b.ty, [b.ne[0], nc, 1, 1], b.nb)?;
            let d_off = dst.offset + r0 as u64 * dst.nb[0] + c0 as u64 * dst.nb[1];
            let d_piece = Tensor::new(dst.buffer.clone(), d_off, dst.ty, [nr, nc, 1, 1], dst.nb)?;
            record_piece(rec, &a_piece, &b_piece, &d_piece, Epilogue::None)?;
        }
    }
    Ok(())
}

/// Record the product of `f` and, where a fused kernel takes it (one batch, every tensor in one storage window; one
/// column: the integer-dot mat-vec kernels with subgroup reductions; several: `mul_mat_cm2.comp` with F16 weights
/// unless `GGVK_CM2_ADD=0`), the ADD that follows it in the same dispatch. Returns whether the ADD was recorded;
/// if not, the caller records it as its own node.
pub fn record_with_add(rec: &mut Recorder<'_>, f: &MatVecAdd<'_>) -> Result<bool> {
    record_fused(rec, f.mm, Epilogue::Add(f), &[f.addend, f.out])
}

/// Record the product of `mm` and, where a mat-vec kernel takes `epi` in the same dispatch (every tensor, the
/// product's and the epilogue's `outside` ones, in one storage window), `epi` with it. Returns whether it did; if
/// not, the product alone is recorded and the caller records the rest.
fn record_fused(rec: &mut Recorder<'_>, mm: &crate::ir::Node, epi: Epilogue<'_>, outside: &[&Tensor]) -> Result<bool> {
    let (a, b) = (mm.src(0)?, mm.src(1)?);
    let dst = &mm.dst;
    check(a, b, dst)?;
    let b = &cpy::f32_operand(rec, b)?;
    let device = rec.device().clone();
    if split_plan(&device, a, b, dst)?.is_some() || outside.iter().any(|t| t.nbytes() > window_limit(&device)) {
        return record(rec, a, b, dst).map(|_| false);
    }
    record_piece(rec, a, b, dst, epi)
}

/// The mat-vec kernel that also writes the following ADD (`FUSE_ADD`), for weights of type `ty` on the
/// integer-dot paths.
fn fused_add_shader(ty: GgmlType, wide: bool) -> Option<Shader> {
    let (name, spirv) = match ty {
        GgmlType::Q4_K if wide => ("mul_mat_vec_q4_k_idot_wide_add", spirv::MUL_MAT_VEC_Q4_K_IDOT_WIDE_ADD),
        GgmlType::Q5_K if wide => ("mul_mat_vec_q5_k_idot_wide_add", spirv::MUL_MAT_VEC_Q5_K_IDOT_WIDE_ADD),
        GgmlType::Q4_0 => ("mul_mat_vec_q4_0_idot_add", spirv::MUL_MAT_VEC_Q4_0_IDOT_ADD),
        GgmlType::Q8_0 => ("mul_mat_vec_q8_0_idot_add", spirv::MUL_MAT_VEC_Q8_0_IDOT_ADD),
        GgmlType::Q4_K => ("mul_mat_vec_q4_k_idot_add", spirv::MUL_MAT_VEC_Q4_K_IDOT_ADD),
        GgmlType::Q5_K => ("mul_mat_vec_q5_k_idot_add", spirv::MUL_MAT_VEC_Q5_K_IDOT_ADD),
        GgmlType::Q6_K => ("mul_mat_vec_q6_k_idot_add", spirv::MUL_MAT_VEC_Q6_K_IDOT_ADD),
        _ => return None,
    };
    Some(Shader { name, spirv, bindings: 5, push_size: PUSH })
}

/// What a one-column mat-vec kernel also does with its rows in the same dispatch.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// Nothing: the product only.
    None,
    /// The ADD that follows ([`fused_add_shader`]).
    Add(&'a MatVecAdd<'a>),
    /// The rope and cache writes that follow ([`super::matvec_rope`]).
    Rope(&'a MatVecRope<'a>),
}

/// A mat-vec kernel with an epilogue: its shader, the bindings after the product's three, its push constants.
pub(crate) struct FusedKernel {
    pub shader: Shader,
    pub extra: Vec<Binding>,
    pub push: Vec<u8>,
}

/// The shader, the extra bindings and the push constants of a mat-vec kernel (weights of type `ty`, the 16-byte
/// K-quant kernel if `wide`, `rows` rows per workgroup) that also does `epi`, when `fuse` holds (one column of
/// one batch, subgroup reductions) and a fused kernel exists for it.
fn fused_epilogue(
    device: &Device,
    epi: Epilogue<'_>,
    fuse: bool,
    (ty, wide, rows): (GgmlType, bool, u32),
    mut p: MatMulPush,
) -> Result<Option<FusedKernel>> {
    if !fuse {
        return Ok(None);
    }
    match epi {
        Epilogue::None => Ok(None),
        Epilogue::Add(add) => {
            let Some(shader) = fused_add_shader(ty, wide) else { return Ok(None) };
            let (extra, offs) = add_operands(device, add)?;
            p.pad = offs;
            Ok(Some(FusedKernel { shader, extra: extra.to_vec(), push: bytemuck::bytes_of(&p).to_vec() }))
        }
        Epilogue::Rope(f) => super::matvec_rope::prepare(device, f, (ty, wide, rows), p),
    }
}

/// The bindings of a fused ADD's addend and sum (after the product's own) and their first elements in floats, which
/// the kernels take in the push constants' `pad`.
pub(crate) fn add_operands(device: &Device, add: &MatVecAdd<'_>) -> Result<([Binding; 2], [u32; 2])> {
    let (r_bind, r_off) = bind(device, add.addend, 4, false)?;
    let (o_bind, o_off) = bind(device, add.out, 4, true)?;
    Ok(([r_bind, o_bind], [r_off, o_off]))
}

/// Record the product of `f` and, where the mat-vec kernel takes them (see [`super::matvec_rope`]), its rope and
/// cache writes in the same dispatch. Returns whether it did; if not, only the product is recorded and the caller
/// records the rest.
pub fn record_with_rope(rec: &mut Recorder<'_>, f: &MatVecRope<'_>) -> Result<bool> {
    let rope_out = f.rope.map(|r| &r.dst);
    let cache = f.cache.map(|c| c.cache);
    let outside: Vec<&Tensor> = rope_out.into_iter().chain(cache).collect();
    record_fused(rec, f.mm, Epilogue::Rope(f), &outside)
}

/// Record a multiplication whose tensors each fit one storage window, and the ADD of `add` with it where a fused
/// kernel applies (returns whether it did).
fn record_piece(rec: &mut Recorder<'_>, a: &Tensor, b: &Tensor, dst: &Tensor, epi: Epilogue<'_>) -> Result<bool> {
    let device = rec.device().clone();
    let caps = device.caps();
    let ([a_bind, b_bind, d_bind], p) = operands_of(&device, a, b, dst)?;
    let batches = dim_u32("batches", b.ne[2] * b.ne[3])?;
    let use_sg = caps.subgroup_arithmetic && !device_forces_shared_reduction();
    let fuse = use_sg && p.n == 1 && batches == 1;
    // K-quant mat-vec on integer dot products: b quantized onto the CPU backend's Q8_K grid.
    if p.n <= MATVEC_MAX_COLS {
        if let Some((sg, shmem)) = kquant_int_dot_shaders(&device, a, b) {
            let cfg = kquant_idot_config();
            let wg = matvec_workgroup(caps, a.ty, cfg, p.k, p.n);
            let (gx, gy) = split_groups(u64::from(p.m.div_ceil(cfg.rows)), caps.max_workgroup_count[0])?;
            let (q_read, p) = quantize_b_q8k(rec, b, &b_bind, p)?;
            let wide_sg = kquant_wide_shader(a.ty, &p).filter(|_| use_sg);
            let wide = wide_sg.is_some();
            let sg = wide_sg.unwrap_or(sg);
            // The wide kernel's thread takes 32 (Q2_K: 64) values per trip: short rows take fewer threads.
            let wg = match wide {
                true => wg
                    .min((p.k / kquant_wide_unit(a.ty)).next_power_of_two().max(caps.subgroup_size.max(16)))
                    .max((cfg.rows * p.n).next_power_of_two()),
                false => wg,
            };
            let spec = [wg, 1, 1, cfg.rows, 0, cfg.unroll, p.n];
            let mut bindings = vec![a_bind, q_read, d_bind];
            let (shader, push, fused) = match fused_epilogue(&device, epi, fuse, (a.ty, wide, cfg.rows), p)? {
                Some(FusedKernel { shader, extra, push }) => {
                    bindings.extend(extra);
                    (shader, push, true)
                }
                None => (if use_sg { sg } else { shmem }, bytemuck::bytes_of(&p).to_vec(), false),
            };
            let pipeline = device.pipelines().get(&device, &shader, &spec)?;
            rec.dispatch("mul_mat_vec_idot", &pipeline, &bindings, &push, [gx, gy, batches])?;
            return Ok(fused);
        }
    }
    let int_dot = if p.n <= MATVEC_MAX_COLS { int_dot_shaders(&device, a, b) } else { None };
    let int_dot = int_dot.map(|pair| words32_idot_shaders(a.ty, &p).unwrap_or(pair));
    // F16 / BF16 rows on 16-byte boundaries: eight values per thread per step (a thread took one before).
    let wide = p.n <= MATVEC_MAX_COLS && wide16(a, &p);
    // Generic weight types read b through a copy rounded onto the CPU backend's grid for them (the integer-dot
    // kernels quantize it onto that grid themselves, the wide BF16 kernel rounds it as it reads it).
    let (bindings, p) = match rounds_activations(a).filter(|_| int_dot.is_none() && !wide) {
        Some(r) => {
            let (rounded, p) = round_b(rec, b, &b_bind, p, r)?;
            ([a_bind, rounded, d_bind], p)
        }
        None => ([a_bind, b_bind, d_bind], p),
    };
    let push = bytemuck::bytes_of(&p);
    if p.n <= MATVEC_MAX_COLS {
        let cfg = if int_dot.is_some() && block32_int_dot(a) { block32_idot_config(a.ty) } else { matvec_config(a.ty) };
        let (rows, unroll) = (cfg.rows, cfg.unroll);
        let wg = matvec_workgroup(caps, matvec_kernel_type(a), cfg, p.k, p.n);
        let (gx, gy) = split_groups(u64::from(p.m.div_ceil(rows)), caps.max_workgroup_count[0])?;
        if let Some((sg, shmem)) = int_dot {
            let staged = staged_block32(caps, a.ty, &p, (wg, rows, unroll));
            return record_int_dot(
                rec,
                b,
                &bindings,
                p,
                [wg, 1, 1, rows, 1, unroll, p.n, staged as u32],
                if use_sg { sg } else { shmem },
                [gx, gy, batches],
                (if fuse { epi } else { Epilogue::None }, a.ty),
            );
        }
        let vec4 = (p.b_off % 4 == 0 && p.b_col % 4 == 0 && p.b_s2 % 4 == 0 && p.b_s3 % 4 == 0) as u32;
        let wg = match wide {
            true => wg
                .min((p.k / 8).next_power_of_two().max(caps.subgroup_size.max(16)))
                .max((rows * p.n).next_power_of_two()),
            false => wg,
        };
        // F16 / F32 weights take the rope epilogue too (`mul_mat_vec.comp`'s float path), unless the rope writes over
        // the activations, which this kernel reads as they are while its rows are rotated (the integer-dot kernels
        // read an 8-bit copy made before them).
        let rope_over_b = match epi {
            Epilogue::Rope(f) => f.rope.is_some_and(|r| crate::ir::fused::overlaps(&r.dst, b)),
            _ => true,
        };
        if matches!(a.ty, GgmlType::F16 | GgmlType::F32) && !rope_over_b {
            if let Some(FusedKernel { shader, extra, push }) =
                fused_epilogue(&device, epi, fuse, (a.ty, wide, rows), p)?
            {
                let pipeline = device.pipelines().get(&device, &shader, &[wg, 1, 1, rows, vec4, unroll, p.n])?;
                let all: Vec<Binding> = bindings.iter().cloned().chain(extra).collect();
                rec.dispatch("mul_mat_vec", &pipeline, &all, &push, [gx, gy, batches])?;
                return Ok(true);
            }
        }
        let (sg, shmem) = match (wide, a.ty) {
            (true, GgmlType::BF16) => (
                shader("mul_mat_vec_bf16_wide", spirv::MUL_MAT_VEC_BF16_WIDE),
                shader("mul_mat_vec_bf16_wide_shmem", spirv::MUL_MAT_VEC_BF16_WIDE_SHMEM),
            ),
            (true, _) => (
                shader("mul_mat_vec_f16_wide", spirv::MUL_MAT_VEC_F16_WIDE),
                shader("mul_mat_vec_f16_wide_shmem", spirv::MUL_MAT_VEC_F16_WIDE_SHMEM),
            ),
            (false, _) => kquant_matvec_shaders(a.ty, &p).or_else(|| matvec_shaders_for(a)).expect("checked"),
        };
        // Constant 7: the wide kernels' rounding of the activations (the BF16 one rounds them itself where they are
        // rounded, F16's always are); the generic dequantizing kernel's unit of 16 consecutive values.
        let seventh = match wide {
            true => a.ty == GgmlType::F16 || rounds_activations(a).is_some(),
            false => dq_span16(caps),
        };
        let spec = [wg, 1, 1, rows, vec4, unroll, p.n, u32::from(seventh)];
        let pipeline = device.pipelines().get(&device, if use_sg { &sg } else { &shmem }, &spec)?;
        rec.dispatch("mul_mat_vec", &pipeline, &bindings, push, [gx, gy, batches]).map(|_| false)
    } else {
        // Weights dequantized to f16 first where the f16 kernel more than pays for the copy.
        if let Some(bytes) = dequant_first_bytes(&device, a, p.n) {
            let a16 = f16_copy(rec, a, &bindings[0], &p, bytes)?;
            return record_piece(rec, &a16, b, dst, epi);
        }
        let q8_b = quantizes_activations(a);
        // The cooperative-matrix kernels read whole 4-value chunks: not for [`bf16_scalar`] weights.
        let plan = if bf16_scalar(a) { None } else { coopmat::plan_on(&device, a.ty, q8_b, p.n) };
        if let Some(plan) = plan {
            // Activations as the kernel reads them: 8-bit blocks (Q4_0 / Q8_0), else f16 (made once per submission).
            let (b_read, p) = if plan.1.b_q8 {
                quantize_b(rec, b, &bindings[1], p)?
            } else {
                narrow_b(rec, b, &bindings[1], p, rounds_activations(a))?
            };
            let bindings = [bindings[0].clone(), b_read, bindings[2].clone()];
            // The ADD that follows, in the NV_cooperative_matrix2 kernel's store where it takes it.
            let add = match epi {
                Epilogue::Add(f) => Some(f),
                _ => None,
            };
            return coopmat::record(rec, plan, &bindings, &p, (batches, a.ty), add);
        }
        let groups = [p.m.div_ceil(TILE), p.n.div_ceil(TILE), batches];
        if q8_b {
            let shader = match a.ty {
                GgmlType::Q4_0 => shader("mul_mat_q4_0_bq8", spirv::MUL_MAT_Q4_0_BQ8),
                _ => shader("mul_mat_q8_0_bq8", spirv::MUL_MAT_Q8_0_BQ8),
            };
            let (q_read, p) = quantize_b(rec, b, &bindings[1], p)?;
            let pipeline = device.pipelines().get(&device, &shader, &[])?;
            let bindings = [bindings[0].clone(), q_read, bindings[2].clone()];
            return rec.dispatch("mul_mat_bq8", &pipeline, &bindings, bytemuck::bytes_of(&p), groups).map(|_| false);
        }
        let shader = if bf16_scalar(a) {
            shader("mul_mat_bf16", spirv::MUL_MAT_BF16)
        } else {
            matmul_shader(a.ty).expect("checked")
        };
        let pipeline = device.pipelines().get(&device, &shader, &[])?;
        rec.dispatch("mul_mat", &pipeline, &bindings, push, groups).map(|_| false)
    }
}

/// The bindings of a product's A, b and dst, and its push constants (offsets and strides in the kernels' units).
fn operands_of(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<([Binding; 3], MatMulPush)> {
    let a_unit = if a.ty == GgmlType::F32 { 4 } else { 2 };
    let (a_bind, a_off) = bind(device, a, a_unit, false)?;
    let (b_bind, b_off) = bind(device, b, 4, false)?;
    let (d_bind, d_off) = bind(device, dst, 4, true)?;
    let p = MatMulPush {
        m: dim_u32("M", a.ne[1])?,
        n: dim_u32("N", b.ne[1])?,
        k: dim_u32("K", a.ne[0])?,
        a_off,
        a_row: stride_units("src0 row", a.nb[1], a_unit)?,
        a_s2: stride_units("src0 dim-2", a.nb[2], a_unit)?,
        a_s3: stride_units("src0 dim-3", a.nb[3], a_unit)?,
        b_off,
        b_col: stride_units("src1 column", b.nb[1], 4)?,
        b_s2: stride_units("src1 dim-2", b.nb[2], 4)?,
        b_s3: stride_units("src1 dim-3", b.nb[3], 4)?,
        d_off,
        d_col: stride_units("dst column", dst.nb[1], 4)?,
        d_s2: stride_units("dst dim-2", dst.nb[2], 4)?,
        d_s3: stride_units("dst dim-3", dst.nb[3], 4)?,
        ne12: dim_u32("src1 ne[2]", b.ne[2])?,
        r2: dim_u32("broadcast", b.ne[2] / a.ne[2])?,
        r3: dim_u32("broadcast", b.ne[3] / a.ne[3])?,
        pad: [0; 2],
    };
    Ok(([a_bind, b_bind, d_bind], p))
}

/// Pieces of columns [`split_plan`] cuts a product into (1 when it is not cut).
fn column_pieces(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> u64 {
    match split_plan(device, a, b, dst) {
        Ok(Some((_, piece_cols))) => (b.ne[1] as u64).div_ceil(piece_cols as u64),
        _ => 1,
    }
}

/// Scratch for `bytes` of f16 weight copy in each of `col_pieces` pieces of columns (every piece of columns
/// dequantizes its rows again; pieces of rows together: the whole of A), aligned.
fn dequant_scratch(device: &Device, bytes: u64, col_pieces: u64) -> u64 {
    let align = device.caps().min_storage_offset_alignment.max(256);
    (bytes.div_ceil(align) + 1) * align * col_pieces
}

/// Of the scratch [`scratch_bytes`] counts for a product, what its weights' f16 copy takes where a kept copy
/// serves them now (the product then reads that copy and takes none of it). Read at recording time: the executor
/// reserves a node's scratch without it, so that a ring of scratch does not wrap (and forget the activations'
/// derived copies) for ~90 MB a 7B feed-forward weight never takes.
pub fn kept_weight_scratch(rec: &mut Recorder<'_>, a: &Tensor, b: &Tensor, dst: &Tensor) -> u64 {
    let device = rec.device().clone();
    let b = &cpy::widened_view(b);
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    match dequant_first_bytes(&device, a, n) {
        Some(bytes) if weights_f16::has_kept_f16(rec, a) => {
            dequant_scratch(&device, bytes, column_pieces(&device, a, b, dst))
        }
        _ => 0,
    }
}

/// Scratch bytes a multiplication needs on `device` (b quantized to 8 bits per block, or b rounded onto the CPU's
/// grid as f32; the f16 copy of the weights where [`dequant_first_bytes`] takes them).
pub fn scratch_bytes(device: &Device, a: &Tensor, b: &Tensor, dst: &Tensor) -> u64 {
    // An F16 b is widened to F32 first; the rest sizes what is derived from that copy.
    let widened = cpy::widened_bytes(device, b);
    let b = &cpy::widened_view(b);
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    let align = device.caps().min_storage_offset_alignment.max(256);
    let col_pieces = column_pieces(device, a, b, dst);
    let dequant = dequant_first_bytes(device, a, n);
    let dequant_bytes = dequant.map_or(0, |d| dequant_scratch(device, d, col_pieces));
    let derived = derived_column_bytes(a, b, uses_int_dot(device, a, b));
    // The cooperative-matrix kernels read f16 activations (unless they read 8-bit blocks): a packed f16 copy.
    let reads_f16 = match dequant {
        Some(_) => coopmat::plan_on(device, GgmlType::F16, false, n).is_some(),
        None => coopmat::reads_f16_b(device, a, b),
    };
    let narrowed = if reads_f16 { narrowed_column_bytes(b.ne[0]) } else { 0 };
    let regions = u64::from(derived > 0) + u64::from(narrowed > 0);
    if regions == 0 {
        return widened + dequant_bytes;
    }
    let cols = (b.ne[1] * b.ne[2] * b.ne[3]).max(0) as u64;
    // Cut into pieces: each piece of columns takes its own aligned regions (pieces of rows reuse them).
    widened + dequant_bytes + (derived + narrowed) * cols + col_pieces * align * regions
}
