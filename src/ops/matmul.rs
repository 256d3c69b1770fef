//! MUL_MAT: `dst[M, N, b2, b3] = A[K, M, a2, a3] x B[K, N, b2, b3]^T` with ggml's batch broadcast
//! (`b2 % a2 == 0`, A batch `i2 / (b2 / a2)`). A: F32, F16, Q4_0 or Q8_0; B and dst: F32.
//! One column (`N == 1`) runs the mat-vec kernel (token generation); more run the tiled kernel.

use bytemuck::{Pod, Zeroable};

use super::{bind, dim_u32, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

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

/// Mat-vec shaders: (subgroup reduction, shared-memory reduction) per weight type.
fn matvec_shaders(ty: GgmlType) -> Option<(Shader, Shader)> {
    Some(match ty {
        GgmlType::F32 => (
            shader("mul_mat_vec_f32", spirv::MUL_MAT_VEC_F32),
            shader("mul_mat_vec_f32_shmem", spirv::MUL_MAT_VEC_F32_SHMEM),
        ),
        GgmlType::F16 => (
            shader("mul_mat_vec_f16", spirv::MUL_MAT_VEC_F16),
            shader("mul_mat_vec_f16_shmem", spirv::MUL_MAT_VEC_F16_SHMEM),
        ),
        GgmlType::Q4_0 => (
            shader("mul_mat_vec_q4_0", spirv::MUL_MAT_VEC_Q4_0),
            shader("mul_mat_vec_q4_0_shmem", spirv::MUL_MAT_VEC_Q4_0_SHMEM),
        ),
        GgmlType::Q8_0 => (
            shader("mul_mat_vec_q8_0", spirv::MUL_MAT_VEC_Q8_0),
            shader("mul_mat_vec_q8_0_shmem", spirv::MUL_MAT_VEC_Q8_0_SHMEM),
        ),
        _ => return None,
    })
}

fn matmul_shader(ty: GgmlType) -> Option<Shader> {
    Some(match ty {
        GgmlType::F32 => shader("mul_mat_f32", spirv::MUL_MAT_F32),
        GgmlType::F16 => shader("mul_mat_f16", spirv::MUL_MAT_F16),
        GgmlType::Q4_0 => shader("mul_mat_q4_0", spirv::MUL_MAT_Q4_0),
        GgmlType::Q8_0 => shader("mul_mat_q8_0", spirv::MUL_MAT_Q8_0),
        _ => return None,
    })
}

/// Mat-vec workgroup size (a power of two, at least 4), rows of A per workgroup, blocks per loop trip.
///
/// Defaults suit both lavapipe and NVIDIA; `GGVK_MATVEC_WG` and `GGVK_MATVEC_ROWS` override them for tuning
/// (read once per process; invalid values are ignored), as does `GGVK_MATVEC_UNROLL`.
pub fn matvec_config() -> MatVecConfig {
    static CONFIG: std::sync::OnceLock<MatVecConfig> = std::sync::OnceLock::new();
    *CONFIG.get_or_init(|| {
        let env = |name: &str, ok: fn(u32) -> bool, default: u32| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&v| ok(v)).unwrap_or(default)
        };
        MatVecConfig {
            wg: env("GGVK_MATVEC_WG", |v| v.is_power_of_two() && (4..=1024).contains(&v), MATVEC_WG),
            rows: env("GGVK_MATVEC_ROWS", |v| (1..=8).contains(&v), MATVEC_ROWS),
            unroll: env("GGVK_MATVEC_UNROLL", |v| (1..=8).contains(&v), MATVEC_UNROLL),
        }
    })
}

/// Mat-vec kernel shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatVecConfig {
    /// Threads per workgroup.
    pub wg: u32,
    /// Rows of A per workgroup.
    pub rows: u32,
    /// Quantized blocks per thread per loop trip.
    pub unroll: u32,
}

/// Default quantized blocks per thread per loop trip.
pub const MATVEC_UNROLL: u32 = 2;
/// Default mat-vec workgroup size.
pub const MATVEC_WG: u32 = 256;
/// Default rows of A per mat-vec workgroup.
pub const MATVEC_ROWS: u32 = 2;
/// Output tile of the tiled kernel.
const TILE: u32 = 64;

/// Whether ggvk supports this multiplication (independent of device limits).
pub fn check(a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    if matvec_shaders(a.ty).is_none() {
        return Err(Error::unsupported(format!("MUL_MAT with {} weights", a.ty.name())));
    }
    if b.ty != GgmlType::F32 || dst.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "MUL_MAT needs F32 src1 and dst, got {} and {}",
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

/// Record the multiplication.
pub fn record(rec: &mut Recorder<'_>, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    check(a, b, dst)?;
    let device = rec.device().clone();
    let caps = device.caps();
    let a_unit = if a.ty == GgmlType::F32 { 4 } else { 2 };
    let (a_bind, a_off) = bind(&device, a, a_unit, false)?;
    let (b_bind, b_off) = bind(&device, b, 4, false)?;
    let (d_bind, d_off) = bind(&device, dst, 4, true)?;
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
    let batches = dim_u32("batches", b.ne[2] * b.ne[3])?;
    let bindings = [a_bind, b_bind, d_bind];
    let push = bytemuck::bytes_of(&p);
    if p.n == 1 {
        let (sg, shmem) = matvec_shaders(a.ty).expect("checked");
        let use_sg = caps.subgroup_arithmetic && !device_forces_shared_reduction();
        let vec4 = (p.b_off % 4 == 0 && p.b_s2 % 4 == 0 && p.b_s3 % 4 == 0) as u32;
        let MatVecConfig { wg, rows, unroll } = matvec_config();
        let max_pow2 = 1u32 << (31 - caps.max_workgroup_invocations.max(4).leading_zeros());
        let wg = wg.min(max_pow2);
        let spec = [wg, 1, 1, rows, vec4, unroll];
        let pipeline = device.pipelines().get(&device, if use_sg { &sg } else { &shmem }, &spec)?;
        let (gx, gy) = split_groups(u64::from(p.m.div_ceil(rows)), caps.max_workgroup_count[0])?;
        rec.dispatch("mul_mat_vec", &pipeline, &bindings, push, [gx, gy, batches])
    } else {
        let shader = matmul_shader(a.ty).expect("checked");
        let pipeline = device.pipelines().get(&device, &shader, &[])?;
        rec.dispatch("mul_mat", &pipeline, &bindings, push, [p.m.div_ceil(TILE), p.n.div_ceil(TILE), batches])
    }
}

/// `GGVK_SHARED_REDUCTION=1` makes mat-vec use the shared-memory reduction even where subgroups exist
/// (tests cover both paths on one device this way).
fn device_forces_shared_reduction() -> bool {
    std::env::var("GGVK_SHARED_REDUCTION").is_ok_and(|v| v == "1")
}
