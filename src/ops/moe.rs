//! Expert routing: ADD_ID (ggml_add_id: `dst[:, i1, i2] = a[:, i1, i2] + b[:, ids[i1, i2]]`, gpt-oss's expert
//! biases), ARGSORT (ggml_argsort: per row, the I32 indices that sort it ascending or descending; a MoE router
//! takes the first n_used of the descending order) and TOP_K (ggml_top_k: per row, the indices of the k largest
//! values, in no particular order by ggml's contract). F32 data, I32 indices.
//!
//! ARGSORT / TOP_K sort one row per workgroup in shared memory (`shaders/argsort.comp`, bitonic) when its
//! (value, index) pairs fit the device's shared memory (8 bytes a slot: 4096 values in 32 KiB); longer rows (up to
//! 2^24 values) run the same network in passes over scratch (`shaders/argsort_big.comp`: blocks of the shared
//! memory's size, global compare-exchange steps between them). Ties keep index order (the stable order; ggml's CPU
//! backend leaves it unspecified).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided, Strided};
use super::{bind, dim_u32, spirv, split_groups, window_limit};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Binding, Device, Recorder, Shader};

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

/// Push constants of `argsort_big.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct BigSortPush {
    ne: [u32; 4],
    sa: [u32; 4],
    sd: [u32; 4],
    a_off: u32,
    d_off: u32,
    count: u32,
    desc: u32,
    rows: u32,
    n: u32,
    k: u32,
    j: u32,
    mode: u32,
    k_off: u32,
    x_off: u32,
    pad: u32,
}

const ARGSORT_BIG: Shader = Shader {
    name: "argsort_big",
    spirv: spirv::ARGSORT_BIG,
    bindings: 4,
    push_size: std::mem::size_of::<BigSortPush>() as u32,
};

/// Longest row ARGSORT / TOP_K take (values).
const MAX_ROW: i64 = 1 << 24;

/// Sort slots (a power of two >= the row's `n` values).
fn sort_slots(n: i64) -> u64 {
    (n.max(2) as u64).next_power_of_two()
}

/// Slots one workgroup sorts in `device`'s shared memory (8 bytes a slot; a power of two).
fn shared_slots(device: &Device) -> u64 {
    let max = u64::from(device.caps().max_shared_memory / 8).max(2);
    1 << (63 - max.leading_zeros())
}

/// Bytes of each of the two scratch regions (keys, indices) the multi-pass sort of `node` needs on `device`
/// (0 when its rows fit one workgroup).
fn big_sort_bytes(device: &Device, node: &Node) -> u64 {
    let Ok(a) = node.src(0) else { return 0 };
    let slots = sort_slots(a.ne[0]);
    if slots <= shared_slots(device) {
        return 0;
    }
    slots * a.nrows().max(0) as u64 * 4
}

/// Scratch bytes the node needs on `device`.
pub fn scratch_bytes(device: &Device, node: &Node) -> u64 {
    let bytes = big_sort_bytes(device, node);
    let align = device.caps().min_storage_offset_alignment.max(256);
    2 * bytes.div_ceil(align) * align
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
            if a.ne[0] > MAX_ROW {
                return Err(Error::unsupported(format!("{name} of rows of {} values (at most {MAX_ROW})", a.ne[0])));
            }
            dim_u32(&format!("{name} slots"), (sort_slots(a.ne[0]) * a.nrows().max(0) as u64) as i64)?;
            check_layout(name, "src0", a)?;
            check_layout(name, "dst", d)
        }
        _ => Err(Error::Internal(format!("moe::check called for {name}"))),
    }
}

/// [`check`] plus, for long rows, the multi-pass sort's scratch in one storage window on `device`.
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    check(node)?;
    let bytes = big_sort_bytes(device, node);
    if bytes > window_limit(device) {
        return Err(Error::unsupported(format!(
            "{}: the sort's {bytes} bytes of scratch exceed this device's maxStorageBufferRange ({} bytes)",
            node.op.name(),
            device.caps().max_storage_buffer_range
        )));
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
            let slots = sort_slots(a.ne[0]);
            let rows = dim_u32("rows", a.nrows())?;
            if slots > shared_slots(&device) {
                return record_big(rec, node, desc, [sa, sd]);
            }
            let slots = slots as u32;
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

/// ARGSORT / TOP_K of rows longer than one workgroup sorts: the bitonic network in passes over scratch (see
/// `shaders/argsort_big.comp`).
fn record_big(rec: &mut Recorder<'_>, node: &Node, desc: bool, [sa, sd]: [Strided; 2]) -> Result<()> {
    let device = rec.device().clone();
    let caps = device.caps();
    let a = node.src(0)?;
    let bytes = big_sort_bytes(&device, node);
    let region = |rec: &mut Recorder<'_>| -> Result<(Binding, u32)> {
        let (scratch, offset) = rec.scratch(bytes)?;
        let t = Tensor::contiguous(scratch, offset, GgmlType::I32, [(bytes / 4) as i64, 1, 1, 1])?;
        bind(&device, &t, 4, true)
    };
    let (keys, k_off) = region(rec)?;
    let (idx, x_off) = region(rec)?;
    let n = dim_u32("slots", sort_slots(a.ne[0]) as i64)?;
    let l = shared_slots(&device) as u32;
    let wg = (l / 2).min(256).min(caps.max_workgroup_invocations);
    let rows = dim_u32("rows", a.nrows())?;
    let base = BigSortPush {
        ne: sa.ne,
        sa: sa.s,
        sd: sd.s,
        a_off: sa.off,
        d_off: sd.off,
        count: sd.ne[0],
        desc: u32::from(desc),
        rows,
        n,
        k: 0,
        j: 0,
        mode: 0,
        k_off,
        x_off,
        pad: 0,
    };
    let pipe = device.pipelines().get(&device, &ARGSORT_BIG, &[wg, l])?;
    let bindings = [sa.binding, keys, idx, sd.binding];
    let name = node.op.name();
    let run = |rec: &mut Recorder<'_>, p: BigSortPush, groups: u64| -> Result<()> {
        let (gx, gy) = split_groups(groups, caps.max_workgroup_count[0])?;
        rec.dispatch(name, &pipe, &bindings, bytemuck::bytes_of(&p), [gx, gy, 1])
    };
    let blocks = u64::from(rows) * u64::from(n / l);
    let pairs = (u64::from(rows) * u64::from(n / 2)).div_ceil(u64::from(wg));
    // Every stage up to L within blocks, then for each longer stage its global steps and the block-local rest.
    run(rec, base, blocks)?;
    let mut k = 2 * l;
    while k <= n {
        let mut j = k / 2;
        while j >= l {
            run(rec, BigSortPush { mode: 1, k, j, ..base }, pairs)?;
            j /= 2;
        }
        run(rec, BigSortPush { mode: 2, k, ..base }, blocks)?;
        k *= 2;
    }
    let outs = (u64::from(rows) * u64::from(sd.ne[0])).div_ceil(u64::from(wg));
    run(rec, BigSortPush { mode: 3, ..base }, outs)
}
