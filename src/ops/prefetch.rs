//! Weights fetched into the GPU's L2 cache ahead of the product that reads them (`shaders/prefetch.comp`): a
//! dispatch that loads the first bytes of each weight row and writes nothing. Recorded next to a short step (a norm,
//! an attention reduction, a GLU) that the product waits for, it streams from memory while that step and the
//! barrier after it leave the memory system idle; the product then finds part of its rows in L2.
//! [`crate::graph::prefetch`] decides which products and how many bytes.

use bytemuck::{Pod, Zeroable};

use super::{bind, dim_u32, spirv};
use crate::error::Result;
use crate::ir::Tensor;
use crate::vk::{Recorder, Shader};

/// Push constants of `prefetch.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct PrefetchPush {
    first: u32,
    row_stride: u32,
    prefix: u32,
    rows: u32,
    /// Always 0: the kernel stores the sum of what it loaded (into its first word) only where this is not 0, a use
    /// no compiler can rule out, so none drops the loads. The binding is declared read-only to the recorder.
    keep: u32,
    pad: [u32; 3],
}

const SHADER: Shader = Shader {
    name: "prefetch",
    spirv: spirv::PREFETCH,
    bindings: 1,
    push_size: std::mem::size_of::<PrefetchPush>() as u32,
};

/// Invocations per workgroup and sectors each loads per trip (`prefetch.comp`).
const WG: u64 = 256;
const PER_TRIP: u64 = 4;
/// At most this many workgroups: enough loads in flight to stream at the memory's rate, few enough that the
/// short step beside it keeps SMs to run on.
const MAX_GROUPS: u64 = 512;

/// Bytes of each row that [`record`] would fetch for a `prefix`-byte request: rounded down to whole 32-byte
/// sectors and capped at the row; 0 where `w` is not a matrix of rows on 4-byte boundaries (nothing recorded).
pub(crate) fn row_prefix(w: &Tensor, prefix: u64) -> u64 {
    let row = w.nb[1];
    let rows_on_words = w.offset % 4 == 0 && row % 4 == 0;
    if !rows_on_words || !w.is_contiguous() || w.ne[1] < 1 {
        return 0;
    }
    let row_bytes = w.nbytes() / w.nrows().max(1) as u64;
    prefix.min(row_bytes) / 32 * 32
}

/// Record a prefetch of the first `prefix` bytes of each row of `w` ([`row_prefix`]). Returns whether it was
/// recorded: not where the prefix is empty, nor where it would have to wait behind an earlier dispatch of the same
/// barrier interval (a prefetch never costs a barrier).
pub(crate) fn record(rec: &mut Recorder<'_>, w: &Tensor, prefix: u64) -> Result<bool> {
    let prefix = row_prefix(w, prefix);
    if prefix == 0 {
        return Ok(false);
    }
    let device = rec.device().clone();
    let (binding, first) = bind(&device, w, 4, false)?;
    if rec.conflicts(std::slice::from_ref(&binding)) {
        return Ok(false);
    }
    let rows = dim_u32("prefetch rows", w.nrows())?;
    let push = PrefetchPush {
        first,
        row_stride: dim_u32("prefetch row stride", (w.nb[1] / 4) as i64)?,
        prefix: dim_u32("prefetch prefix", (prefix / 4) as i64)?,
        rows,
        keep: 0,
        pad: [0; 3],
    };
    let sectors = prefix / 32 * u64::from(rows);
    let groups = sectors.div_ceil(WG * PER_TRIP).clamp(1, MAX_GROUPS) as u32;
    let pipeline = device.pipelines().get(&device, &SHADER, &[])?;
    rec.dispatch("prefetch", &pipeline, &[binding], bytemuck::bytes_of(&push), [groups, 1, 1])?;
    Ok(true)
}
