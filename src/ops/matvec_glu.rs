//! A token's gate and up products with the GLU after them in one kernel (`mul_mat_vec_glu.comp`; grouped by
//! [`crate::graph::fusion::plan_groups`]): both products on the integer-dot mat-vec path (Q4_0 or Q8_0 weights,
//! activations as 8-bit blocks), the GLU of their rows, and the GLU's 8-bit copy for the down product when the
//! planner asked for quantize_q8_1.comp's blocks (32 rows: one workgroup's). The products are bit-identical to the
//! separate mat-vec kernels (a slice of the workgroup runs their loop with their workgroup size), the GLU to
//! `glu.comp` (`glu_fn.glsl`), the copy to the GLU's own emission (`emit_q8.glsl`).

use bytemuck::{Pod, Zeroable};

use super::q8_emit::{self, Q8Layout};
use super::{bind, dim_u32, glu, matmul, spirv, split_groups, window_limit};
use crate::error::Result;
use crate::graph::fusion::MatVecGlu;
use crate::graph::Op;
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `mul_mat_vec_glu.comp`: offsets in the units of their bindings (16-bit words of weights, 32-bit
/// words of the activations' blocks and of the quantized copy, floats of the outputs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GluPush {
    m: u32,
    k: u32,
    g_off: u32,
    g_row: u32,
    u_off: u32,
    u_row: u32,
    b_off: u32,
    dg_off: u32,
    du_off: u32,
    d_off: u32,
    q_off: u32,
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<GluPush>() as u32;
const _: () = assert!(PUSH == 48);

/// Rows per workgroup (one 8-bit block of the GLU's output) and the slices that share them.
const ROWS: u32 = 32;
const SLICES: u32 = 4;

fn shader(ty: GgmlType, emit: bool) -> Shader {
    let (name, spirv) = match (ty, emit) {
        (GgmlType::Q4_0, false) => ("mul_mat_vec_q4_0_glu", spirv::MUL_MAT_VEC_Q4_0_GLU),
        (GgmlType::Q4_0, true) => ("mul_mat_vec_q4_0_glu_qx", spirv::MUL_MAT_VEC_Q4_0_GLU_QX),
        (_, false) => ("mul_mat_vec_q8_0_glu", spirv::MUL_MAT_VEC_Q8_0_GLU),
        (_, true) => ("mul_mat_vec_q8_0_glu_qx", spirv::MUL_MAT_VEC_Q8_0_GLU_QX),
    };
    Shader { name, spirv, bindings: if emit { 7 } else { 6 }, push_size: PUSH }
}

/// Record `f` as one kernel, writing the GLU's output quantized in `emit` too, and return true; or record nothing
/// and return false where the kernel does not apply: a copy planned in another layout, no integer-dot mat-vec or
/// subgroup reductions for these products, a tensor beyond one storage window, or a workgroup beyond the device's.
pub fn record(rec: &mut Recorder<'_>, f: &MatVecGlu<'_>, emit: Option<Q8Layout>) -> Result<bool> {
    let device = rec.device().clone();
    let caps = device.caps();
    let (ag, au, b) = (f.gate.src(0)?, f.up.src(0)?, f.gate.src(1)?);
    let Op::Glu { op, .. } = f.glu.op else { return Ok(false) };
    if emit.is_some_and(|l| l != Q8Layout::Qx)
        || !caps.subgroup_arithmetic
        || matmul::device_forces_shared_reduction()
        || matmul::int_dot_shaders(&device, ag, b).is_none()
    {
        return Ok(false);
    }
    matmul::check(ag, b, &f.gate.dst)?;
    matmul::check(au, b, &f.up.dst)?;
    glu::check(f.glu)?;
    let limit = window_limit(&device);
    if [ag, au, b, &f.gate.dst, &f.up.dst, &f.glu.dst].iter().any(|t| t.nbytes() > limit) {
        return Ok(false);
    }
    let (m, k) = (dim_u32("M", ag.ne[1])?, dim_u32("K", ag.ne[0])?);
    let cfg = matmul::matvec_config(ag.ty);
    // The separate products' workgroup size: one slice's.
    let slice = matmul::matvec_workgroup(caps, ag.ty, cfg, k, 1);
    let wg = slice * SLICES;
    let emit = emit.filter(|l| l.fits(&f.glu.dst));
    let shared = 4 * (2 * ROWS * (wg / 8) + ROWS) + if emit.is_some() { 8 * wg } else { 0 };
    // The kernel's shared sums hold a workgroup of subgroups of at least 8 invocations, each slice whole ones.
    let subgroups_fit = caps.subgroup_size >= 8 && slice % caps.subgroup_size == 0;
    if wg > caps.max_workgroup_invocations || !subgroups_fit || shared > caps.max_shared_memory {
        return Ok(false);
    }
    let ([g_bind, b_bind, dg_bind], pg) = matmul::product_push(&device, ag, b, &f.gate.dst)?;
    let ([u_bind, _, du_bind], pu) = matmul::product_push(&device, au, b, &f.up.dst)?;
    let (q_read, pq) = matmul::quantize_b(rec, b, &b_bind, pg)?;
    let (d_bind, d_off) = bind(&device, &f.glu.dst, 4, true)?;
    let mut push = GluPush {
        m,
        k,
        g_off: pg.a_off,
        g_row: pg.a_row,
        u_off: pu.a_off,
        u_row: pu.a_row,
        b_off: pq.b_off,
        dg_off: pg.d_off,
        du_off: pu.d_off,
        d_off,
        q_off: 0,
        pad: 0,
    };
    let mut bindings = vec![g_bind, u_bind, q_read, dg_bind, du_bind, d_bind];
    let e = match emit {
        Some(layout) => {
            let e = q8_emit::reserve(rec, &f.glu.dst, layout)?;
            push.q_off = e.word;
            bindings.push(e.write.clone());
            Some(e)
        }
        None => None,
    };
    let (code, _) = glu::glu_code(op);
    let pipeline = device.pipelines().get(&device, &shader(ag.ty, e.is_some()), &[wg, code, cfg.unroll])?;
    let (gx, gy) = split_groups(u64::from(m.div_ceil(ROWS)), caps.max_workgroup_count[0])?;
    rec.dispatch("mul_mat_vec_glu", &pipeline, &bindings, bytemuck::bytes_of(&push), [gx, gy, 1])?;
    if let Some(e) = e {
        q8_emit::publish(rec, &f.glu.dst, e);
    }
    Ok(true)
}
