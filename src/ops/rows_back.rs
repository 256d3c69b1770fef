//! GET_ROWS_BACK (ggml_get_rows_back, the gradient of GET_ROWS): dst `[nc, rows]` (F32, contiguous) holds, for
//! each row r, the sum of the rows i of src0 (F32 or F16) whose id (src1, I32) is r, added in ascending i as
//! ggml's CPU backend does. One thread per dst element (`shaders/get_rows_back.comp`); long id lists go in
//! several dispatches. Ids outside `[0, rows)` add nowhere (ggml's CPU backend asserts on them).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `get_rows_back.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RowsBackPush {
    nc: u32,
    rows: u32,
    a_off: u32,
    a_s1: u32,
    ids_off: u32,
    d_off: u32,
    i0: u32,
    i1: u32,
}

const PUSH: u32 = std::mem::size_of::<RowsBackPush>() as u32;
const _: () = assert!(PUSH == 32);

/// Ids one dispatch walks (lavapipe ends a shader's loops after 65535 iterations).
const IDS_PER_DISPATCH: u32 = 16384;

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let op = node.op.name();
    if !matches!(node.op, Op::GetRowsBack) {
        return Err(Error::Internal(format!("rows_back::check called for {op}")));
    }
    let (a, ids, d) = (node.src(0)?, node.src(1)?, &node.dst);
    if !matches!(a.ty, GgmlType::F32 | GgmlType::F16) || ids.ty != GgmlType::I32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!(
            "{op} of {} with {} ids -> {}",
            a.ty.name(),
            ids.ty.name(),
            d.ty.name()
        )));
    }
    if a.ne[2] != 1 || a.ne[3] != 1 || d.ne[2] != 1 || d.ne[3] != 1 || d.ne[0] != a.ne[0] || ids.nelements() > a.ne[1] {
        return Err(Error::invalid(format!("{op}: src0 {:?}, ids {:?}, dst {:?}", a.ne, ids.ne, d.ne)));
    }
    // ggml's CPU backend reads the ids as adjacent values and steps through src0 rows by nb[1].
    let ids_adjacent = ids.nb[0] == 4 && (ids.is_contiguous() || ids.ne[1..].iter().all(|&n| n == 1));
    if !ids_adjacent || !a.is_row_packed() || !d.is_contiguous() {
        return Err(Error::unsupported(format!("{op}: ids not adjacent, or src0 rows or dst not packed")));
    }
    check_layout(op, "src0", a)?;
    check_layout(op, "ids", ids)?;
    check_layout(op, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, ids, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let si = strided(&device, ids, false, "ids")?;
    let sd = strided(&device, d, true, "dst")?;
    let n = dim_u32("elements", d.nelements())?;
    let n_ids = dim_u32("ids", ids.nelements())?;
    let (name, spirv) = if a.ty == GgmlType::F16 {
        ("get_rows_back_f16", spirv::GET_ROWS_BACK_F16)
    } else {
        ("get_rows_back_f32", spirv::GET_ROWS_BACK_F32)
    };
    let shader = Shader { name, spirv, bindings: 3, push_size: PUSH };
    let p = pipeline(&device, &shader, &[])?;
    let bindings = [sa.binding, si.binding, sd.binding];
    let mut i0 = 0u32;
    loop {
        let i1 = n_ids.min(i0.saturating_add(IDS_PER_DISPATCH));
        let push = RowsBackPush {
            nc: sd.ne[0],
            rows: sd.ne[1],
            a_off: sa.off,
            a_s1: sa.s[1],
            ids_off: si.off,
            d_off: sd.off,
            i0,
            i1,
        };
        dispatch(rec, "get_rows_back", &p, &bindings, bytemuck::bytes_of(&push), n)?;
        if i1 >= n_ids {
            return Ok(());
        }
        i0 = i1;
    }
}
