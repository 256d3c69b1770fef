//! COUNT_EQUAL (ggml_count_equal): how many positions of the I32 tensors src0 and src1 (one shape, any strides)
//! hold the same value, as one I64. One workgroup of 256 threads (`shaders/count_equal.comp`); at most 2^22
//! elements (each thread's loop stays under lavapipe's 65535 iterations).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, strided};
use super::{bind, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Threads of the one workgroup (the shader's shared array is sized by it).
const WG: u32 = 256;

/// Push constants of `count_equal.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CountPush {
    ne: [u32; 4],
    s_a: [u32; 4],
    s_b: [u32; 4],
    a_off: u32,
    b_off: u32,
    d_off: u32,
    n: u32,
}

const PUSH: u32 = std::mem::size_of::<CountPush>() as u32;
const _: () = assert!(PUSH == 64);

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    if !matches!(node.op, Op::CountEqual) {
        return Err(Error::Internal(format!("count_equal::check called for {op}")));
    }
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    if a.ty != GgmlType::I32 || b.ty != GgmlType::I32 || d.ty != GgmlType::I64 {
        return Err(Error::unsupported(format!("{op} of {} and {} -> {}", a.ty.name(), b.ty.name(), d.ty.name())));
    }
    if a.ne != b.ne || d.ne != [1, 1, 1, 1] {
        return Err(Error::invalid(format!("{op}: src0 {:?}, src1 {:?}, dst {:?}", a.ne, b.ne, d.ne)));
    }
    if a.nelements() > i64::from(WG) * 16384 {
        return Err(Error::unsupported(format!("{op} of {} elements (at most {})", a.nelements(), WG * 16384)));
    }
    if d.offset % 4 != 0 {
        return Err(Error::unsupported(format!("{op}: dst offset {} is not a multiple of 4", d.offset)));
    }
    check_layout(op, "src0", a)?;
    check_layout(op, "src1", b)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sb = strided(&device, b, false, "src1")?;
    let (db, d_off) = bind(&device, d, 4, true)?;
    let push =
        CountPush { ne: sa.ne, s_a: sa.s, s_b: sb.s, a_off: sa.off, b_off: sb.off, d_off, n: a.nelements() as u32 };
    let shader = Shader { name: "count_equal", spirv: spirv::COUNT_EQUAL, bindings: 3, push_size: PUSH };
    let wg = WG.min(device.caps().max_workgroup_invocations);
    let p = device.pipelines().get(&device, &shader, &[wg])?;
    rec.dispatch("count_equal", &p, &[sa.binding, sb.binding, db], bytemuck::bytes_of(&push), [1, 1, 1])
}
