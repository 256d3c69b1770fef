//! Expert routing: ADD_ID (ggml_add_id: `dst[:, i1, i2] = a[:, i1, i2] + b[:, ids[i1, i2]]`, gpt-oss's expert
//! biases), ARGSORT (ggml_argsort: per row, the I32 indices that sort it ascending or descending; a MoE router
//! takes the first n_used of the descending order) and TOP_K (ggml_top_k: per row, the indices of the k largest
//! values, in no particular order by ggml's contract). F32 data, I32 indices.
//!
//! ARGSORT / TOP_K sort one row per workgroup in shared memory (`shaders/argsort.comp`, bitonic): rows up to the
//! largest power of two whose (value, index) pairs fit the device's shared memory (8 bytes a slot: 4096 values in
//! 32 KiB); longer rows are declined. Ties keep index order (the stable order; ggml's CPU backend leaves it
//! unspecified).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv, split_groups};
use crate::error::{Error, Result};
use crate::graph::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Push constants of `add_id.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct AddIdPush {
    ne: [u32; 4],
    sa: [u32; 4],
    sd: [u32; 4],
    a_off: u32,
    b_off: u32,
    i_off: u32,
    d_off: u32,
    b_row: u32,
    b_rows: u32,
    i_s0: u32,
    i_s1: u32,
    n: u32,
    pad: [u32; 3],
}

/// Push constants of `argsort.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SortPush {
    ne: [u32; 4],
    sa: [u32; 4],
    sd: [u32; 4],
    a_off: u32,
    d_off: u32,
    count: u32,
    desc: u32,
    rows: u32,
    pad: [u32; 3],
}

const ADD_ID: Shader =
    Shader { name: "add_id", spirv: spirv::ADD_ID, bindings: 4, push_size: std::mem::size_of::<AddIdPush>() as u32 };
const ARGSORT: Shader =
    Shader { name: "argsort", spirv: spirv::ARGSORT, bindings: 2, push_size: std::mem::size_of::<SortPush>() as u32 };

/// Sort slots (a power of two) for rows of `n` values, if the device's shared memory holds them.
fn sort_slots(device: Option<&Device>, n: i64) -> Result<u32> {
    let slots = (n.max(2) as u64).next_power_of_two();
    // 8 bytes a slot; without a device, 64 KiB (more than the largest common limit; the device's own limit is
    // checked by `check_on` and again when recording).
    let shared = device.map_or(65536, |d| d.caps().max_shared_memory);
    if slots * 8 > u64::from(shared) {
        return Err(Error::unsupported(format!(
            "ARGSORT / TOP_K of rows of {n} values: the sort needs {} bytes of shared memory, the device has {shared}",
            slots * 8
        )));
    }
    Ok(slots as u32)
}

/// Whether ggvk supports this routing node (independent of device limits, except the sort's shared memory which
/// [`check_on`] checks).
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let (a, d) = (node.src(0)?, &node.dst);
    match node.op {
        Op::AddId => {
            let (b, ids) = (node.src(1)?, node.src(2)?);
            if a.ty != GgmlType::F32 || b.ty != GgmlType::F32 || d.ty != GgmlType::F32 || ids.ty != GgmlType::I32 {
                return Err(Error::unsupported(format!(
                    "ADD_ID of {} + {} by {} ids into {} (only f32 + f32 by i32 into f32)",
                    a.ty.name(),
                    b.ty.name(),
                    ids.ty.name(),
                    d.ty.name()
                )));
            }
            if a.ne[0] != b.ne[0] || a.ne[1] != ids.ne[0] || a.ne[2] != ids.ne[1] || d.ne != a.ne {
                return Err(Error::invalid(format!(
                    "ADD_ID: a {:?}, b {:?}, ids {:?}, dst {:?} do not match",
                    a.ne, b.ne, ids.ne, d.ne
                )));
            }
            if b.ne[1] < 1 {
                return Err(Error::invalid("ADD_ID: b has no rows"));
            }
            // ggml's CPU backend reads b's rows packed whatever nb[0] says.
            if !b.is_row_packed() {
                return Err(Error::unsupported(format!("ADD_ID: b's rows are not packed (nb[0] = {})", b.nb[0])));
            }
            check_layout(name, "a", a)?;
            check_layout(name, "b", b)?;
            check_layout(name, "ids", ids)?;
            check_layout(name, "dst", d)
        }
        Op::ArgSort { .. } | Op::TopK => {
            if a.ty != GgmlType::F32 || d.ty != GgmlType::I32 {
                return Err(Error::unsupported(format!(
                    "{name} of {} into {} (only f32 into i32)",
                    a.ty.name(),
                    d.ty.name()
                )));
            }
            let k = if matches!(node.op, Op::TopK) { d.ne[0] } else { a.ne[0] };
            if d.ne != [k, a.ne[1], a.ne[2], a.ne[3]] || k > a.ne[0] {
                return Err(Error::invalid(format!("{name}: dst {:?} for src0 {:?}", d.ne, a.ne)));
            }
            sort_slots(None, a.ne[0])?;
            check_layout(name, "src0", a)?;
            check_layout(name, "dst", d)
        }
        _ => Err(Error::Internal(format!("moe::check called for {name}"))),
    }
}

/// [`check`] plus the sort's shared memory on `device`.
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    check(node)?;
    if matches!(node.op, Op::ArgSort { .. } | Op::TopK) {
        sort_slots(Some(device), node.src(0)?.ne[0])?;
    }
    Ok(())
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    let (a, d) = (node.src(0)?, &node.dst);
    let sa = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
    match node.op {
        Op::AddId => {
            let (b, ids) = (node.src(1)?, node.src(2)?);
            let sb = strided(&device, b, false, "b")?;
            let si = strided(&device, ids, false, "ids")?;
            let n = dim_u32("elements", d.nelements())?;
            let push = AddIdPush {
                ne: sd.ne,
                sa: sa.s,
                sd: sd.s,
                a_off: sa.off,
                b_off: sb.off,
                i_off: si.off,
                d_off: sd.off,
                b_row: sb.s[1],
                b_rows: sb.ne[1],
                i_s0: si.s[0],
                i_s1: si.s[1],
                n,
                pad: [0; 3],
            };
            let pipe = pipeline(&device, &ADD_ID, &[])?;
            let bindings = [sa.binding, sb.binding, si.binding, sd.binding];
            dispatch(rec, "add_id", &pipe, &bindings, bytemuck::bytes_of(&push), n)
        }
        Op::ArgSort { .. } | Op::TopK => {
            // TOP_K: the first k of the descending order.
            let desc = match node.op {
                Op::ArgSort { desc } => desc,
                _ => true,
            };
            let slots = sort_slots(Some(&device), a.ne[0])?;
            let rows = dim_u32("rows", a.nrows())?;
            let push = SortPush {
                ne: sa.ne,
                sa: sa.s,
                sd: sd.s,
                a_off: sa.off,
                d_off: sd.off,
                count: sd.ne[0],
                desc: u32::from(desc),
                rows,
                pad: [0; 3],
            };
            let caps = device.caps();
            let wg = (slots / 2).clamp(1, 256.min(caps.max_workgroup_invocations));
            let pipe = device.pipelines().get(&device, &ARGSORT, &[wg, slots])?;
            let (gx, gy) = split_groups(u64::from(rows), caps.max_workgroup_count[0])?;
            rec.dispatch(node.op.name(), &pipe, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), [gx, gy, 1])
        }
        _ => Err(Error::Internal(format!("moe::record called for {}", node.op.name()))),
    }
}
