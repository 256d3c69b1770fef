//! RMS_NORM_BACK (ggml_rms_norm_back: src0 the output gradient dz, src1 the forward input x) and SOFT_MAX_BACK
//! (ggml_soft_max_ext_back: src0 the output gradient dy, src1 the forward output y), F32. SOFT_MAX_BACK takes any
//! ALiBi `max_bias`: the op has no mask, so the forward pass's bias term (slope times mask) is a constant of the
//! input and drops out of the gradient, `scale * y * (dy - dot(y, dy))` whatever `max_bias` is (ggml's CPU backend
//! declines `max_bias != 0`, ggml-vulkan computes it this way). One workgroup per row (`shaders/row_back.comp`):
//! the row's two sums (x x and x dz, or y dy) reduced in shared memory, in f32 (ggml's CPU backend sums
//! RMS_NORM_BACK's in double: results differ by rounding), then the row written. Rows packed (nb[0] = 4), any other
//! strides.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, strided};
use super::{dim_u32, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Threads per workgroup (a power of two; the shader's shared arrays are sized by it).
const WG: u32 = 128;

/// Push constants of `row_back.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RowBackPush {
    ne: [u32; 4],
    s_a: [u32; 4],
    s_b: [u32; 4],
    s_d: [u32; 4],
    a_off: u32,
    b_off: u32,
    d_off: u32,
    rows: u32,
    mode: u32,
    param: f32,
    pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<RowBackPush>() as u32;
const _: () = assert!(PUSH == 96);

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    match node.op {
        Op::RmsNormBack { .. } | Op::SoftMaxBack { .. } => {}
        _ => return Err(Error::Internal(format!("row_back::check called for {op}"))),
    }
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    if [a.ty, b.ty, d.ty] != [GgmlType::F32; 3] {
        return Err(Error::unsupported(format!("{op} of {} and {} -> {}", a.ty.name(), b.ty.name(), d.ty.name())));
    }
    if a.ne != b.ne || a.ne != d.ne {
        return Err(Error::invalid(format!("{op}: shapes {:?}, {:?} -> {:?}", a.ne, b.ne, d.ne)));
    }
    if !a.is_row_packed() || !b.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported(format!("{op} of rows that are not packed")));
    }
    check_layout(op, "src0", a)?;
    check_layout(op, "src1", b)?;
    check_layout(op, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (mode, param) = match node.op {
        Op::RmsNormBack { eps } => (0, eps),
        Op::SoftMaxBack { scale, .. } => (1, scale),
        _ => return Err(Error::Internal("row_back::record".into())),
    };
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sb = strided(&device, b, false, "src1")?;
    let sd = strided(&device, d, true, "dst")?;
    let rows = dim_u32("rows", a.nrows())?;
    let push = RowBackPush {
        ne: sa.ne,
        s_a: sa.s,
        s_b: sb.s,
        s_d: sd.s,
        a_off: sa.off,
        b_off: sb.off,
        d_off: sd.off,
        rows,
        mode,
        param,
        pad: [0; 2],
    };
    let shader = Shader { name: "row_back", spirv: spirv::ROW_BACK, bindings: 3, push_size: PUSH };
    let wg = WG.min(device.caps().max_workgroup_invocations);
    let p = device.pipelines().get(&device, &shader, &[wg])?;
    let (gx, gy) = split_groups(u64::from(rows), device.caps().max_workgroup_count[0])?;
    let label = if mode == 0 { "rms_norm_back" } else { "soft_max_back" };
    rec.dispatch(label, &p, &[sa.binding, sb.binding, sd.binding], bytemuck::bytes_of(&push), [gx, gy, 1])
}
