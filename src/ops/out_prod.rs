//! OUT_PROD (ggml_out_prod): `dst[i0, i1, i2, i3] = sum_j src0[i0, j, i2 / r2, i3 / r3] * src1[i1, j, i2, i3]`, the
//! sum of the outer products of src0's rows and src1's columns (the weight gradient of a product in training), with
//! ggml's broadcast of src0 over dims 2 and 3 (`r2 = ne2 / ne02`, `r3 = ne3 / ne03`).
//!
//! src0: F32, F16, BF16, Q4_0, Q8_0 or any type with a dequantization include (`shaders/dequant/`, rows of whole
//! units as MUL_MAT asks), dequantized on load as ggml's CPU backend dequantizes a row before its multiply-adds;
//! packed rows, any row and batch strides. src1: F32 with any strides (a transposed view included), or F16 widened
//! to an F32 copy first ([`super::cpy::f32_operand`], exact). dst: F32 with packed rows. One tiled kernel,
//! `shaders/out_prod.comp` (64 x 64 output tiles, 32-deep steps over j in order).

use bytemuck::{Pod, Zeroable};

use super::matmul::dq_row_multiple;
use super::{bind, cpy, dim_u32, spirv, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Push constants of `out_prod.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct OutProdPush {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_s1: u32,
    a_s2: u32,
    a_s3: u32,
    b_off: u32,
    b_s0: u32,
    b_s1: u32,
    b_s2: u32,
    b_s3: u32,
    d_off: u32,
    d_s1: u32,
    d_s2: u32,
    d_s3: u32,
    ne2: u32,
    r2: u32,
    r3: u32,
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<OutProdPush>() as u32;
const _: () = assert!(PUSH == 80);

/// Output tile of the kernel (rows and columns).
const TILE: u32 = 64;

/// The kernel for src0 of type `ty`.
fn shader(ty: GgmlType) -> Option<Shader> {
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        GgmlType::F32 => ("out_prod_f32", spirv::OUT_PROD_F32),
        GgmlType::F16 => ("out_prod_f16", spirv::OUT_PROD_F16),
        GgmlType::BF16 => ("out_prod_bf16", spirv::OUT_PROD_BF16),
        GgmlType::Q4_0 => ("out_prod_q4_0", spirv::OUT_PROD_Q4_0),
        GgmlType::Q8_0 => ("out_prod_q8_0", spirv::OUT_PROD_Q8_0),
        ty => spirv::dq_module("out_prod_dq", ty.name())?,
    };
    Some(Shader { name, spirv, bindings: 3, push_size: PUSH })
}

/// Bytes of one unit of src0 as the kernel reads it (floats for F32, 16-bit words otherwise).
fn a_unit(ty: GgmlType) -> u64 {
    if ty == GgmlType::F32 {
        4
    } else {
        2
    }
}

/// Whether ggvk supports this node (device limits aside).
pub fn check(node: &Node) -> Result<()> {
    if !matches!(node.op, Op::OutProd) {
        return Err(Error::Internal(format!("out_prod::check called for {}", node.op.name())));
    }
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    if shader(a.ty).is_none() {
        return Err(Error::unsupported(format!("OUT_PROD with {} src0", a.ty.name())));
    }
    if a.ty.is_quantized() && a.ne[0] % dq_row_multiple(a.ty) != 0 {
        return Err(Error::unsupported(format!(
            "OUT_PROD with {} src0 needs rows of a multiple of {} values, got {}",
            a.ty.name(),
            dq_row_multiple(a.ty),
            a.ne[0]
        )));
    }
    if !matches!(b.ty, GgmlType::F32 | GgmlType::F16) || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "OUT_PROD needs F32 or F16 src1 and F32 dst, got {} and {}",
            b.ty.name(),
            d.ty.name()
        )));
    }
    if !a.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported("OUT_PROD with src0 or dst rows not packed (nb[0] != element size)"));
    }
    if a.ne[1] != b.ne[1] {
        return Err(Error::invalid(format!("OUT_PROD: src0 ne[1] = {} but src1 ne[1] = {}", a.ne[1], b.ne[1])));
    }
    if a.ne[1] == 0 {
        return Err(Error::unsupported("OUT_PROD over an empty dimension (src0 ne[1] = 0)"));
    }
    let want = [a.ne[0], b.ne[0], b.ne[2], b.ne[3]];
    if d.ne != want {
        return Err(Error::invalid(format!("OUT_PROD: dst shape {:?}, expected {want:?}", d.ne)));
    }
    for dim in 2..4 {
        if a.ne[dim] == 0 || b.ne[dim] % a.ne[dim] != 0 {
            return Err(Error::invalid(format!(
                "OUT_PROD: src1 ne[{dim}] = {} is not a multiple of src0 ne[{dim}] = {}",
                b.ne[dim], a.ne[dim]
            )));
        }
    }
    for dim in 0..4 {
        dim_u32("OUT_PROD dimension", b.ne[dim].max(a.ne[dim]))?;
    }
    // Strides the kernel takes in its units (src0's rows and batches; every stride of src1 and dst).
    let unit = a_unit(a.ty);
    if a.offset % unit != 0 {
        return Err(Error::unsupported(format!("OUT_PROD: src0 offset {} is not a multiple of {unit}", a.offset)));
    }
    for dim in 1..4 {
        stride_units("OUT_PROD src0", a.nb[dim], unit)?;
    }
    let b_unit = b.ty.type_size() as u64;
    if b.offset % b_unit != 0 {
        return Err(Error::unsupported(format!("OUT_PROD: src1 offset {} is not element-aligned", b.offset)));
    }
    for dim in 0..4 {
        stride_units("OUT_PROD src1", b.nb[dim], b_unit)?;
    }
    if d.offset % 4 != 0 {
        return Err(Error::unsupported(format!("OUT_PROD: dst offset {} is not a multiple of 4", d.offset)));
    }
    for dim in 1..4 {
        stride_units("OUT_PROD dst", d.nb[dim], 4)?;
    }
    Ok(())
}

/// Whether the node runs on `device`: [`check`], the F32 copy of an F16 src1, the workgroup counts.
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    check(node)?;
    cpy::check_f32_operand(device, "OUT_PROD", node.src(1)?)?;
    let d = &node.dst;
    let caps = device.caps();
    let tiles = |n: i64| (n.max(0) as u64).div_ceil(u64::from(TILE));
    let groups = [tiles(d.ne[0]), tiles(d.ne[1]), (d.ne[2] * d.ne[3]).max(0) as u64];
    if groups.iter().zip(caps.max_workgroup_count).any(|(&g, max)| g > u64::from(max)) {
        return Err(Error::unsupported(format!("OUT_PROD: {groups:?} workgroups exceed this device's limits")));
    }
    Ok(())
}

/// Scratch bytes of the node (the F32 copy of an F16 src1).
pub fn scratch_bytes(device: &Device, node: &Node) -> u64 {
    node.src(1).map_or(0, |b| cpy::widened_bytes(device, b))
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, d) = (node.src(0)?, &node.dst);
    let b: &Tensor = &cpy::f32_operand(rec, node.src(1)?)?;
    let device = rec.device().clone();
    let unit = a_unit(a.ty);
    let (a_bind, a_off) = bind(&device, a, unit, false)?;
    let (b_bind, b_off) = bind(&device, b, 4, false)?;
    let (d_bind, d_off) = bind(&device, d, 4, true)?;
    let p = OutProdPush {
        m: dim_u32("M", a.ne[0])?,
        n: dim_u32("N", b.ne[0])?,
        k: dim_u32("K", a.ne[1])?,
        a_off,
        a_s1: stride_units("src0 row", a.nb[1], unit)?,
        a_s2: stride_units("src0 dim-2", a.nb[2], unit)?,
        a_s3: stride_units("src0 dim-3", a.nb[3], unit)?,
        b_off,
        b_s0: stride_units("src1 dim-0", b.nb[0], 4)?,
        b_s1: stride_units("src1 dim-1", b.nb[1], 4)?,
        b_s2: stride_units("src1 dim-2", b.nb[2], 4)?,
        b_s3: stride_units("src1 dim-3", b.nb[3], 4)?,
        d_off,
        d_s1: stride_units("dst dim-1", d.nb[1], 4)?,
        d_s2: stride_units("dst dim-2", d.nb[2], 4)?,
        d_s3: stride_units("dst dim-3", d.nb[3], 4)?,
        ne2: dim_u32("dst ne[2]", d.ne[2])?,
        r2: dim_u32("broadcast", b.ne[2] / a.ne[2])?,
        r3: dim_u32("broadcast", b.ne[3] / a.ne[3])?,
        pad: 0,
    };
    let shader = shader(a.ty).expect("checked");
    let pipeline = device.pipelines().get(&device, &shader, &[])?;
    let groups = [p.m.div_ceil(TILE), p.n.div_ceil(TILE), dim_u32("batches", d.ne[2] * d.ne[3])?];
    rec.dispatch("out_prod", &pipeline, &[a_bind, b_bind, d_bind], bytemuck::bytes_of(&p), groups)
}
