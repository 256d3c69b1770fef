//! Reductions: SUM_ROWS (ggml_sum_rows: `dst[0, i1, i2, i3] = sum over i0`), MEAN (ggml_mean: the same divided by
//! ne0), SUM (ggml_sum: every element into one value) and ARGMAX (ggml_argmax: per row of a 2-D src0, the index of
//! the largest value, I32; the first on ties, NaN never wins). src0 F32 with packed rows (nb[0] = 4, as ggml's CPU
//! backend assumes) and any other strides; dst F32 (I32 for ARGMAX) with any strides. One workgroup per row (`shaders/reduce.comp`), a shared-memory tree within it; sums in f32 (the
//! CPU backend sums in double: results differ by f32 rounding).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, strided};
use super::{dim_u32, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Threads per workgroup (the kernel's shared arrays are sized by it).
const WG: u32 = 128;

/// Push constants of `reduce.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ReducePush {
    ne: [u32; 4],
    st: [u32; 4],
    dst_s: [u32; 4],
    a_off: u32,
    d_off: u32,
    n: u32,
    segments: u32,
    div: f32,
    pad: [u32; 3],
}

const PUSH: u32 = std::mem::size_of::<ReducePush>() as u32;
const _: () = assert!(PUSH == 80);

fn shader(op: &Op) -> Shader {
    let (name, spirv) = match op {
        Op::ArgMax => ("reduce_argmax", spirv::REDUCE_ARGMAX),
        _ => ("reduce_sum", spirv::REDUCE_SUM),
    };
    Shader { name, spirv, bindings: 2, push_size: PUSH }
}

/// Whether ggvk supports this reduction node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("{name} of {} (only f32)", a.ty.name())));
    }
    // ggml's CPU backend reads rows as packed floats (nb[0] = 4) whatever the view says, so a view with other
    // element strides has no reference result: declined, as ggml-vulkan does.
    if !a.is_row_packed() {
        return Err(Error::unsupported(format!("{name} of a view whose rows are not packed (nb[0] = {})", a.nb[0])));
    }
    let want = match node.op {
        Op::SumRows | Op::Mean => ([1, a.ne[1], a.ne[2], a.ne[3]], GgmlType::F32),
        Op::Sum => ([1, 1, 1, 1], GgmlType::F32),
        Op::ArgMax => {
            if a.ne[2] != 1 || a.ne[3] != 1 {
                return Err(Error::invalid(format!("ARGMAX of a {:?} tensor (only 2-D)", a.ne)));
            }
            ([a.ne[1], 1, 1, 1], GgmlType::I32)
        }
        _ => return Err(Error::Internal(format!("reduce::check called for {name}"))),
    };
    if d.ne != want.0 || d.ty != want.1 {
        return Err(Error::invalid(format!(
            "{name}: dst {} {:?}, want {} {:?} for src0 {:?}",
            d.ty.name(),
            d.ne,
            want.1.name(),
            want.0,
            a.ne
        )));
    }
    dim_u32(&format!("{name} elements"), a.nelements())?;
    check_layout(name, "src0", a)?;
    check_layout(name, "dst", d)
}

/// Record the reduction node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
    let total = dim_u32("elements", a.nelements())?;
    let (n, segments, div, dst_s) = match node.op {
        Op::Sum => (total, 1, 1.0, [0; 4]),
        Op::ArgMax => (sa.ne[0], sa.ne[1], 1.0, [0, sd.s[0], 0, 0]),
        Op::Mean => (sa.ne[0], sa.ne[1] * sa.ne[2] * sa.ne[3], a.ne[0] as f32, sd.s),
        _ => (sa.ne[0], sa.ne[1] * sa.ne[2] * sa.ne[3], 1.0, sd.s),
    };
    if n == 0 || segments == 0 {
        return Ok(());
    }
    let push = ReducePush { ne: sa.ne, st: sa.s, dst_s, a_off: sa.off, d_off: sd.off, n, segments, div, pad: [0; 3] };
    let pipeline = device.pipelines().get(&device, &shader(&node.op), &[WG])?;
    let (gx, gy) = split_groups(u64::from(segments), device.caps().max_workgroup_count[0])?;
    rec.dispatch(node.op.name(), &pipeline, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), [gx, gy, 1])
}
