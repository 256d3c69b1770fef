//! CUMSUM (ggml_cumsum): per row of src0, `dst[i0] = src0[0] + ... + src0[i0]`, F32. Rows packed along dim 0
//! (nb[0] = 4 on both, as ggml's CPU backend asserts), any other strides. One workgroup per row
//! (`shaders/cumsum.comp`): the row in chunks of WG * 4 values, each thread a run of 4 summed in order, a
//! shared-memory scan over the threads' runs, and a carry from chunk to chunk. Sums in f32 (ggml's CPU backend
//! adds sequentially in f32: results differ by rounding).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, strided};
use super::{dim_u32, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Threads per workgroup (the kernel's shared array is sized by it; a power of two).
const WG: u32 = 128;

/// Push constants of `cumsum.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CumsumPush {
    ne: [u32; 4],
    s_a: [u32; 4],
    s_d: [u32; 4],
    a_off: u32,
    d_off: u32,
    rows: u32,
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<CumsumPush>() as u32;
const _: () = assert!(PUSH == 64);

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    if !matches!(node.op, Op::Cumsum) {
        return Err(Error::Internal(format!("cumsum::check called for {}", node.op.name())));
    }
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("CUMSUM of {} -> {} (f32 only)", a.ty.name(), d.ty.name())));
    }
    if d.ne != a.ne {
        return Err(Error::invalid(format!("CUMSUM: dst shape {:?} differs from src0 {:?}", d.ne, a.ne)));
    }
    if !a.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported("CUMSUM of rows that are not packed (nb[0] = 4)"));
    }
    check_layout("CUMSUM", "src0", a)?;
    check_layout("CUMSUM", "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
    let rows = dim_u32("rows", a.nrows())?;
    let push = CumsumPush { ne: sa.ne, s_a: sa.s, s_d: sd.s, a_off: sa.off, d_off: sd.off, rows, pad: 0 };
    let shader = Shader { name: "cumsum", spirv: spirv::CUMSUM, bindings: 2, push_size: PUSH };
    let pipeline = device.pipelines().get(&device, &shader, &[WG])?;
    let (gx, gy) = split_groups(u64::from(rows), device.caps().max_workgroup_count[0])?;
    rec.dispatch("cumsum", &pipeline, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), [gx, gy, 1])
}
