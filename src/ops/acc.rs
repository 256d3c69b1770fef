//! ACC (ggml_acc: src0 with src1 added into a strided view of it) and SET (ggml_set: src1 written into the
//! view), F32 (SET also I32). ggml's op parameters give the view's byte strides nb1..nb3 and byte offset over
//! src0/dst (contiguous; element stride the element size). dst first gets src0 (a copy through CPY, skipped when
//! dst is src0 itself), then one thread per src1 element writes its view element (`shaders/acc.comp`). Views
//! whose elements overlap, which would make the result depend on the order of the writes, are declined.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `acc.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct AccPush {
    ne_b: [u32; 4],
    s_b: [u32; 4],
    /// Offset, then the strides of dims 1..3, in elements.
    view: [u32; 4],
    a_off: u32,
    b_off: u32,
    d_off: u32,
    n: u32,
    acc: u32,
    pad: [u32; 3],
}

const PUSH: u32 = std::mem::size_of::<AccPush>() as u32;
const _: () = assert!(PUSH == 80);

/// The view (offset, strides of dims 1..3) in elements, after checking it lies inside dst and does not overlap
/// itself.
fn view(node: &Node) -> Result<[u32; 4]> {
    let op = node.op.name();
    let (Op::Acc { nb, offset } | Op::Set { nb, offset }) = node.op else {
        return Err(Error::Internal(format!("acc::view called for {op}")));
    };
    let (b, d) = (node.src(1)?, &node.dst);
    if nb.iter().any(|&v| v < 0 || v % 4 != 0) || offset < 0 || offset % 4 != 0 {
        return Err(Error::unsupported(format!(
            "{op}: view strides {nb:?} and offset {offset} (multiples of 4 bytes)"
        )));
    }
    let v = [offset / 4, nb[0] / 4, nb[1] / 4, nb[2] / 4].map(|x| x as u64);
    // Dims with their element stride and extent, by stride: each must step past everything below it.
    let mut dims: Vec<(u64, u64)> =
        (0..4).filter(|&i| b.ne[i] > 1).map(|i| (if i == 0 { 1 } else { v[i] }, b.ne[i] as u64)).collect();
    dims.sort();
    let mut span = 0u64; // one past the highest element reached by the dims so far
    for &(stride, ne) in &dims {
        if stride < span.max(1) {
            return Err(Error::unsupported(format!("{op}: the view (strides {nb:?}) overlaps itself")));
        }
        span = stride * (ne - 1) + span.max(1);
    }
    let last = v[0] + span.max(1) - 1;
    if b.nelements() > 0 && last >= d.nelements() as u64 {
        return Err(Error::invalid(format!("{op}: the view reaches element {last} of {}", d.nelements())));
    }
    Ok([v[0], v[1], v[2], v[3]].map(|x| x as u32))
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let types_ok = match node.op {
        Op::Acc { .. } => [a.ty, b.ty, d.ty] == [GgmlType::F32; 3],
        _ => a.ty == b.ty && a.ty == d.ty && matches!(a.ty, GgmlType::F32 | GgmlType::I32),
    };
    if !types_ok {
        return Err(Error::unsupported(format!("{op} of {} and {} -> {}", a.ty.name(), b.ty.name(), d.ty.name())));
    }
    if a.ne != d.ne || !a.is_contiguous() || !d.is_contiguous() {
        return Err(Error::unsupported(format!("{op}: src0 and dst must be contiguous and of one shape")));
    }
    if b.nb[0] != 4 {
        return Err(Error::unsupported(format!("{op}: src1 values are not adjacent")));
    }
    if u32::try_from(d.nelements()).is_err() {
        return Err(Error::unsupported(format!("{op}: too many elements for 32-bit indexing")));
    }
    view(node)?;
    check_layout(op, "src0", a)?;
    check_layout(op, "src1", b)?;
    check_layout(op, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let v = view(node)?;
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let in_place = a.buffer.id() == d.buffer.id() && a.offset == d.offset;
    if !in_place {
        super::cpy::record(rec, &Node { op: Op::Cpy, src: vec![Some(a.clone())], dst: d.clone() })?;
    }
    let n = dim_u32("src1 elements", b.nelements())?;
    if n == 0 {
        return Ok(());
    }
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sb = strided(&device, b, false, "src1")?;
    let sd = strided(&device, d, true, "dst")?;
    let push = AccPush {
        ne_b: sb.ne,
        s_b: sb.s,
        view: v,
        a_off: sa.off,
        b_off: sb.off,
        d_off: sd.off,
        n,
        acc: u32::from(matches!(node.op, Op::Acc { .. })),
        pad: [0; 3],
    };
    let shader = Shader { name: "acc", spirv: spirv::ACC, bindings: 3, push_size: PUSH };
    let p = pipeline(&device, &shader, &[])?;
    dispatch(rec, "acc", &p, &[sa.binding, sb.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
