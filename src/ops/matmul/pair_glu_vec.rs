//! A token's gate and up products and the GLU after them ([`PairGlu`] of one column) as one integer-dot mat-vec
//! dispatch (`mul_mat_vec.comp` FUSE_GLU): each workgroup takes [`glu_rows`] rows of both weights and sums every
//! row in the order of the plain Q4_0 / Q8_0 kernel (so both products are the bytes the separate dispatches store),
//! stores the products, then `act(gate) * up` in f32. Where the down product reads 8-bit blocks
//! ([`Q8Layout::Qx`]) the workgroups of each 32-row block count themselves in the stream's counters
//! ([`Recorder::counters`]) and the last of them writes the block (`emit_q8.glsl`, as the GLU's own emitting
//! kernel writes it). One dispatch and one dependent step fewer per feed-forward block than products, GLU and
//! quantization apart.
//!
//! Where anything the kernel needs is missing (other weight types, several columns, no subgroup reductions, no
//! device-scope atomics for the counting, a layout the kernel cannot write), nothing is recorded and the executor
//! records the nodes apart.

use bytemuck::{Pod, Zeroable};

use super::matvec::{device_forces_shared_reduction, int_dot_shaders, matvec_config, matvec_workgroup};
use super::{check, operands_of, quantize_b, MatMulPush};
use crate::error::Result;
use crate::ir::fused::PairGlu;
use crate::ir::Tensor;
use crate::ops::q8_emit::{self, Q8Layout};
use crate::ops::{bind, spirv, split_groups};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Rows of each product per workgroup (a power of two up to 32): 2, so that a workgroup reads as many rows as the
/// plain Q4_0 kernel's four and the pair runs as many workgroups as the two products apart;
/// `GGVK_MATVEC_GLU_ROWS` overrides it (read once per process).
pub fn glu_rows() -> u32 {
    static ROWS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        let knob = crate::knobs::number("GGVK_MATVEC_GLU_ROWS").and_then(|v| u32::try_from(v).ok());
        knob.filter(|v| v.is_power_of_two() && *v <= 32).unwrap_or(2)
    })
}

/// Push constants of the FUSE_GLU mat-vec: the product's, then the up weights' first 16-bit word, the up product's
/// and the GLU output's first floats, the 8-bit copy's and the counters' first words.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MatVecGluPush {
    mm: MatMulPush,
    a2_off: u32,
    d2_off: u32,
    g_off: u32,
    q_off: u32,
    c_off: u32,
    pad: [u32; 3],
}

const fn glu_shader(name: &'static str, spirv: &'static [u8], bindings: u32) -> Shader {
    Shader { name, spirv, bindings, push_size: std::mem::size_of::<MatVecGluPush>() as u32 }
}

/// The kernel for weights of type `ty`, writing the 8-bit copy if `emit`.
fn shader_for(ty: GgmlType, emit: bool) -> Option<Shader> {
    Some(match (ty, emit) {
        (GgmlType::Q4_0, false) => glu_shader("mul_mat_vec_q4_0_idot_glu", spirv::MUL_MAT_VEC_Q4_0_IDOT_GLU, 6),
        (GgmlType::Q8_0, false) => glu_shader("mul_mat_vec_q8_0_idot_glu", spirv::MUL_MAT_VEC_Q8_0_IDOT_GLU, 6),
        (GgmlType::Q4_0, true) => glu_shader("mul_mat_vec_q4_0_idot_glu_qx", spirv::MUL_MAT_VEC_Q4_0_IDOT_GLU_QX, 8),
        (GgmlType::Q8_0, true) => glu_shader("mul_mat_vec_q8_0_idot_glu_qx", spirv::MUL_MAT_VEC_Q8_0_IDOT_GLU_QX, 8),
        _ => return None,
    })
}

/// `GGVK_MATVEC_GLU=0` records a token's gate and up products and their GLU apart (read once per process).
fn enabled() -> bool {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| crate::knobs::switch("GGVK_MATVEC_GLU", true)) && crate::graph::fusion::enabled()
}

/// The workgroup size and the partial sums' slots per row where gate and up products with weights like `a` over
/// one column `b` take the fused kernel on `device`: the plain kernel's workgroup (its summation order), at least
/// one invocation per row slot and eight for a block's quantization, shared memory for the sums and the blocks.
fn plan(device: &Device, a: &Tensor, b: &Tensor) -> Option<(u32, u32)> {
    let caps = device.caps();
    let types = matches!(a.ty, GgmlType::Q4_0 | GgmlType::Q8_0) && b.ty == GgmlType::F32;
    let one = b.ne[1] == 1 && b.ne[2] == 1 && b.ne[3] == 1 && a.ne[2] == 1 && a.ne[3] == 1;
    if !enabled() || !types || !one || !caps.subgroup_arithmetic || device_forces_shared_reduction() {
        return None;
    }
    int_dot_shaders(device, a, b)?;
    let k = u32::try_from(a.ne[0]).ok()?;
    let wg = matvec_workgroup(caps, a.ty, matvec_config(a.ty), k, 1);
    let rows = 2 * glu_rows();
    // Subgroups of at least 4 invocations: at most wg / 4 partial sums per row.
    let slots = wg / 4;
    let shared = 4 * (rows * slots + 2 * wg);
    (caps.subgroup_size >= 4 && wg >= rows.max(8) && wg % 8 == 0 && shared <= caps.max_shared_memory)
        .then_some((wg, slots))
}

/// Whether gate and up products with weights like `a` over one column `b` take the fused mat-vec on `device`.
pub fn takes_pair_glu_vec(device: &Device, a: &Tensor, b: &Tensor) -> bool {
    plan(device, a, b).is_some()
}

/// Record `f` (one column) as one kernel, writing the GLU's 8-bit copy in `emit` where a product after it reads
/// one; returns whether it did (nothing recorded if not).
pub fn record_pair_glu_vec(rec: &mut Recorder<'_>, f: &PairGlu<'_>, emit: Option<Q8Layout>) -> Result<bool> {
    let device = rec.device().clone();
    let (ga, b, ua) = (f.gate.src(0)?, f.gate.src(1)?, f.up.src(0)?);
    let (gd, ud) = (&f.gate.dst, &f.up.dst);
    check(ga, b, gd)?;
    check(ua, b, ud)?;
    let Some((wg, slots)) = plan(&device, ga, b) else { return Ok(false) };
    let m = u32::try_from(f.out.ne[0]).unwrap_or(u32::MAX);
    let emit = match emit {
        None => false,
        // The counting takes device-scope atomics and a counter per 32-row block.
        Some(Q8Layout::Qx)
            if Q8Layout::Qx.fits(f.out)
                && device.caps().device_scope_atomics()
                && u64::from(m / 32) * 4 <= crate::vk::COUNTER_BYTES =>
        {
            true
        }
        Some(_) => return Ok(false),
    };
    let counters = match (emit, rec.counters()) {
        (true, None) => return Ok(false),
        (_, c) => c.filter(|_| emit),
    };
    let Some(shader) = shader_for(ga.ty, emit) else { return Ok(false) };
    let ([a_bind, b_bind, d_bind], p) = operands_of(&device, ga, b, gd)?;
    let ([a2_bind, _, d2_bind], up_p) = operands_of(&device, ua, b, ud)?;
    if up_p.a_row != p.a_row {
        return Ok(false);
    }
    let (out_bind, g_off) = bind(&device, f.out, 4, true)?;
    let (q_read, p) = quantize_b(rec, b, &b_bind, p)?;
    let e = if emit { Some(q8_emit::reserve(rec, f.out, Q8Layout::Qx)?) } else { None };
    let q_off = e.as_ref().map_or(0, |e| e.word);
    let push = MatVecGluPush { mm: p, a2_off: up_p.a_off, d2_off: up_p.d_off, g_off, q_off, c_off: 0, pad: [0; 3] };
    let mut bindings = vec![a_bind, q_read, d_bind, a2_bind, d2_bind, out_bind];
    if let (Some(e), Some(counters)) = (&e, counters) {
        let words = crate::vk::COUNTER_BYTES / 4;
        let region = Tensor::contiguous(counters, 0, GgmlType::I32, [words as i64, 1, 1, 1])?;
        bindings.push(e.write.clone());
        bindings.push(bind(&device, &region, 4, true)?.0);
    }
    let rows = glu_rows();
    let unroll = matvec_config(ga.ty).unroll;
    let spec = [wg, 1, 1, 2 * rows, 1, unroll, 1, 0, crate::ops::glu::op_code(f.op).0, slots];
    let pipeline = device.pipelines().get(&device, &shader, &spec)?;
    let (gx, gy) = split_groups(u64::from(p.m.div_ceil(rows)), device.caps().max_workgroup_count[0])?;
    rec.dispatch("mul_mat_vec_idot_glu", &pipeline, &bindings, bytemuck::bytes_of(&push), [gx, gy, 1])?;
    if let Some(e) = e {
        q8_emit::publish(rec, f.out, e);
    }
    Ok(true)
}
