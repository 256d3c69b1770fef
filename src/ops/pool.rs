//! POOL_1D (ggml_pool_1d: along dim 0 of each row) and POOL_2D (ggml_pool_2d: over dims 0 and 1 of each
//! plane), max or average, F32 -> F32, both contiguous (as ggml's CPU backend reads and writes them whatever the
//! views say). ggml's rules: windows start at `o * s - p`; the maximum starts from -FLT_MAX and keeps the running
//! value unless the next one is not smaller (`std::max(v, res)`); the 1-D average divides by the values inside
//! the input, the 2-D one by `k0 * k1` (padding counts as zeros). One thread per dst element
//! (`shaders/pool.comp`).

use bytemuck::{Pod, Zeroable};

use super::binary::{dispatch, pipeline};
use super::{bind, dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, PoolOp};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `pool.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct PoolPush {
    /// Input width and height, output width and height.
    dims: [u32; 4],
    k: [i32; 2],
    s: [i32; 2],
    p: [i32; 2],
    /// 0 max, 1 average.
    op: u32,
    /// Average over the values inside the input (1-D) rather than the whole window.
    div_count: u32,
    n: u32,
    a_off: u32,
    d_off: u32,
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<PoolPush>() as u32;
const _: () = assert!(PUSH == 64);

/// ggml_calc_pool_output_size; -1 where ggml's arithmetic would overflow or divide by zero.
fn pool_out(ins: i64, k: i32, s: i32, p: i32) -> i64 {
    match ins.checked_add(2 * i64::from(p)) {
        Some(v) if s != 0 => (v - i64::from(k)) / i64::from(s) + 1,
        _ => -1,
    }
}

/// (op, kernel, stride, padding, 2-D) of a node, 1-D as a 2-D pool of height 1.
type Params = (PoolOp, [i32; 2], [i32; 2], [i32; 2], bool);

/// The node's [`Params`].
fn params(op: &Op) -> Result<Params> {
    match *op {
        Op::Pool1d { op, k, s, p } => Ok((op, [k, 1], [s, 1], [p, 0], false)),
        Op::Pool2d { op, k, s, p } => Ok((op, k, s, p, true)),
        ref other => Err(Error::Internal(format!("pool::check called for {}", other.name()))),
    }
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let (_, k, s, p, is_2d) = params(&node.op)?;
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("{name} of {} -> {} (f32 only)", a.ty.name(), d.ty.name())));
    }
    if k.iter().chain(s.iter()).any(|&v| v <= 0) || p.iter().any(|&v| v < 0) {
        return Err(Error::unsupported(format!("{name} with kernel {k:?}, stride {s:?}, padding {p:?}")));
    }
    let want = if is_2d {
        [pool_out(a.ne[0], k[0], s[0], p[0]), pool_out(a.ne[1], k[1], s[1], p[1]), a.ne[2], a.ne[3]]
    } else {
        [pool_out(a.ne[0], k[0], s[0], p[0]), a.ne[1], a.ne[2], a.ne[3]]
    };
    if d.ne != want || want.iter().any(|&v| v <= 0) {
        return Err(Error::invalid(format!("{name}: dst {:?}, want {want:?} for src0 {:?}", d.ne, a.ne)));
    }
    if !a.is_contiguous() || !d.is_contiguous() {
        return Err(Error::unsupported(format!("{name} of non-contiguous tensors")));
    }
    dim_u32(&format!("{name} src0 elements"), a.nelements())?;
    dim_u32(&format!("{name} dst elements"), d.nelements())?;
    let reach = |x: usize| (want[x] - 1).saturating_mul(i64::from(s[x])).saturating_add(i64::from(k[x]));
    if reach(0) > i64::from(i32::MAX) || reach(1) > i64::from(i32::MAX) {
        return Err(Error::unsupported(format!("{name}: window positions do not fit 32 bits")));
    }
    if a.offset % 4 != 0 || d.offset % 4 != 0 {
        return Err(Error::unsupported(format!("{name}: offsets not a multiple of 4")));
    }
    Ok(())
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (op, k, s, p, is_2d) = params(&node.op)?;
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let (ab, a_off) = bind(&device, a, 4, false)?;
    let (db, d_off) = bind(&device, d, 4, true)?;
    let n = dim_u32("elements", d.nelements())?;
    let (ih, oh) = if is_2d { (a.ne[1], d.ne[1]) } else { (1, 1) };
    let push = PoolPush {
        dims: [dim_u32("ne0", a.ne[0])?, dim_u32("ne1", ih)?, dim_u32("ne0", d.ne[0])?, dim_u32("ne1", oh)?],
        k,
        s,
        p,
        op: u32::from(op == PoolOp::Avg),
        div_count: u32::from(!is_2d),
        n,
        a_off,
        d_off,
        pad: 0,
    };
    let shader = Shader { name: "pool_f32", spirv: spirv::POOL_F32, bindings: 2, push_size: PUSH };
    let pipeline = pipeline(&device, &shader, &[])?;
    dispatch(rec, if is_2d { "pool_2d" } else { "pool_1d" }, &pipeline, &[ab, db], bytemuck::bytes_of(&push), n)
}
