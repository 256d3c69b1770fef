//! Row-split weights (tensor parallelism per product): one weight matrix cut by rows over several devices, and the
//! products over it, each device multiplying its rows and the partial results gathered on the main device.
//!
//! A product `dst = W x src1` over a row-split `W` runs as: the main device's rows straight into their rows of
//! `dst`; for every other device holding rows, `src1` read from the main device once (after the main device's
//! work), written to that device, multiplied there into a scratch buffer, read back and written into its rows of
//! `dst` (directly when those rows are contiguous, else through a gather buffer and a CPY that the caller records
//! on the main device before the nodes after the product). Two Vulkan devices share no memory, so the host is the
//! meeting point; products that read the same `src1` (Q, K and V; gate and up) go as one group: one read, one
//! write and one wait per device for all of them.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Buffer, Device};

/// Row boundaries for `rows` rows over devices with relative `shares` (all zero or none positive: equal shares):
/// `shares.len() + 1` increasing values from 0 to `rows`; inner boundaries are multiples of `granularity` (rows
/// of a product tile) so that every device's part starts on a tile.
pub fn row_bounds(rows: i64, shares: &[f32], granularity: i64) -> Vec<i64> {
    let n = shares.len();
    let clean: Vec<f64> = shares.iter().map(|&s| if s.is_finite() && s > 0.0 { f64::from(s) } else { 0.0 }).collect();
    let total: f64 = clean.iter().sum();
    let weights = if total > 0.0 { clean } else { vec![1.0; n] };
    let total: f64 = weights.iter().sum();
    let g = granularity.max(1);
    let mut bounds = Vec::with_capacity(n + 1);
    bounds.push(0);
    let mut acc = 0.0;
    for w in weights.iter().take(n.saturating_sub(1)) {
        acc += w;
        let at = ((rows as f64 * acc / total) as i64 / g * g).clamp(0, rows);
        let prev = *bounds.last().expect("starts with 0");
        bounds.push(at.max(prev));
    }
    if n > 0 {
        bounds.push(rows);
    }
    bounds
}

/// One device's rows of a split weight.
pub struct Part {
    /// The rows' bytes, on the device that multiplies them.
    pub buffer: Arc<Buffer>,
    /// Which rows (of all `ne[1] * ne[2] * ne[3]`).
    pub rows: Range<i64>,
}

/// A weight tensor whose rows are spread over devices (each device's rows contiguous, in row order).
pub struct SplitWeight {
    ty: GgmlType,
    ne: [i64; 4],
    row_bytes: u64,
    parts: Vec<Part>,
}

impl std::fmt::Debug for SplitWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<_> = self.parts.iter().map(|p| (p.buffer.device().index(), p.rows.clone())).collect();
        write!(f, "{}{:?} split {parts:?}", self.ty.name(), self.ne)
    }
}

impl SplitWeight {
    /// Allocate a tensor of type `ty` and shape `ne` with rows `bounds[i]..bounds[i + 1]` on `devices[i]`
    /// (devices with no rows hold nothing).
    pub fn new(devices: &[Arc<Device>], bounds: &[i64], ty: GgmlType, ne: [i64; 4]) -> Result<Self> {
        let nb = Tensor::contiguous_strides(ty, ne)?;
        let rows = ne[1] * ne[2] * ne[3];
        if bounds.len() != devices.len() + 1
            || bounds.first() != Some(&0)
            || bounds.last() != Some(&rows)
            || bounds.windows(2).any(|w| w[0] > w[1])
        {
            return Err(Error::invalid(format!(
                "row bounds {bounds:?} do not split {rows} rows over {} devices",
                devices.len()
            )));
        }
        let mut parts = Vec::new();
        for (d, w) in devices.iter().zip(bounds.windows(2)) {
            if w[1] > w[0] {
                let bytes = (w[1] - w[0]) as u64 * nb[1];
                parts.push(Part { buffer: Buffer::new(d, bytes, "ggvk split weight")?, rows: w[0]..w[1] });
            }
        }
        Ok(SplitWeight { ty, ne, row_bytes: nb[1], parts })
    }

    /// Element type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Shape of the whole tensor.
    pub fn ne(&self) -> [i64; 4] {
        self.ne
    }

    /// Size of the whole tensor in bytes.
    pub fn nbytes(&self) -> u64 {
        self.row_bytes * (self.ne[1] * self.ne[2] * self.ne[3]) as u64
    }

    /// The parts, in row order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The rows `device` holds, if any.
    pub fn part_on(&self, device: &Arc<Device>) -> Option<&Part> {
        self.parts.iter().find(|p| Arc::ptr_eq(p.buffer.device(), device))
    }

    /// A part as a weight matrix of its own (`[ne0, rows]`).
    pub fn part_tensor(&self, part: &Part) -> Result<Tensor> {
        let rows = part.rows.end - part.rows.start;
        Tensor::contiguous(part.buffer.clone(), 0, self.ty, [self.ne[0], rows, 1, 1])
    }

    /// Call `f(part, offset in the part, range in the caller's bytes)` for the pieces of bytes
    /// `[offset, offset + len)` of the whole tensor.
    fn pieces(&self, offset: u64, len: u64, mut f: impl FnMut(&Part, u64, Range<usize>) -> Result<()>) -> Result<()> {
        let end = offset.checked_add(len).filter(|&e| e <= self.nbytes()).ok_or_else(|| {
            Error::OutOfBounds(format!("bytes [{offset}, {offset}+{len}) outside a split tensor of {}", self.nbytes()))
        })?;
        for p in &self.parts {
            let (lo, hi) = (p.rows.start as u64 * self.row_bytes, p.rows.end as u64 * self.row_bytes);
            let (a, b) = (offset.max(lo), end.min(hi));
            if a < b {
                f(p, a - lo, (a - offset) as usize..(b - offset) as usize)?;
            }
        }
        Ok(())
    }

    /// Copy `data` into the tensor's bytes at `offset`, each row to the device holding it.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.pieces(offset, data.len() as u64, |p, at, r| p.buffer.write(at, &data[r]))
    }

    /// Copy the tensor's bytes at `offset` into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        let len = out.len() as u64;
        self.pieces(offset, len, |p, at, r| p.buffer.read(at, &mut out[r]))
    }

    /// Set `len` bytes at `offset` to `value`.
    pub fn fill(&self, offset: u64, len: u64, value: u8) -> Result<()> {
        self.pieces(offset, len, |p, at, r| p.buffer.fill(at, r.len() as u64, value))
    }
}

/// One product over a row-split weight: `dst = weight x src1` (ggml_mul_mat), `src1` and `dst` on the main device.
pub struct SplitProduct {
    /// The weight (2-D).
    pub weight: Arc<SplitWeight>,
    /// The activations.
    pub src1: Tensor,
    /// The result, `[rows of weight, src1.ne[1], src1.ne[2], src1.ne[3]]`, rows packed.
    pub dst: Tensor,
}

impl SplitProduct {
    fn check(&self) -> Result<()> {
        let w = &self.weight;
        if w.ne[2] != 1 || w.ne[3] != 1 {
            return Err(Error::unsupported(format!(
                "MUL_MAT over a row-split weight needs a 2-D weight, got {:?}",
                w.ne
            )));
        }
        let want = [w.ne[1], self.src1.ne[1], self.src1.ne[2], self.src1.ne[3]];
        if self.dst.ne != want || self.src1.ne[0] != w.ne[0] {
            return Err(Error::invalid(format!(
                "MUL_MAT over a row-split weight {w:?}: src1 {:?}, dst {:?}",
                self.src1, self.dst
            )));
        }
        if self.dst.ty != GgmlType::F32 || !self.dst.is_row_packed() {
            return Err(Error::unsupported("MUL_MAT over a row-split weight needs an F32 dst with packed rows"));
        }
        Ok(())
    }

    /// Whether `self` and `other` read the same src1 (same bytes, same view).
    pub fn shares_src1(&self, other: &SplitProduct) -> bool {
        let (a, b) = (&self.src1, &other.src1);
        a.buffer.id() == b.buffer.id() && a.offset == b.offset && a.ty == b.ty && a.ne == b.ne && a.nb == b.nb
    }

    /// The rows `rows` of dst, in place.
    fn dst_rows(&self, rows: &Range<i64>) -> Result<Tensor> {
        let d = &self.dst;
        let ne = [rows.end - rows.start, d.ne[1], d.ne[2], d.ne[3]];
        Tensor::new(d.buffer.clone(), d.offset + rows.start as u64 * d.nb[0], d.ty, ne, d.nb)
    }

    /// Bytes of the results for `rows` (contiguous).
    fn result_bytes(&self, rows: &Range<i64>) -> u64 {
        (rows.end - rows.start) as u64 * self.columns() as u64 * 4
    }

    /// Whether results for `rows` can be written into dst as they are (one contiguous range there).
    fn lands_directly(&self, rows: &Range<i64>) -> bool {
        self.columns() == 1 || (rows.end - rows.start == self.dst.ne[0] && self.dst.is_contiguous())
    }

    /// Columns of dst (all dims past the first).
    fn columns(&self) -> i64 {
        self.dst.ne[1] * self.dst.ne[2] * self.dst.ne[3]
    }
}

/// Rows of one product that another device computed, at byte `at` of its output scratch.
struct Piece {
    product: usize,
    rows: Range<i64>,
    at: u64,
}

/// Another device's share of a group: its pieces and (once read back) their bytes.
struct Remote {
    helper: usize,
    pieces: Vec<Piece>,
    size: u64,
    bytes: Vec<u8>,
}

/// Another device's stream and scratch for the parts it multiplies.
struct Helper {
    backend: Backend,
    input: Option<Arc<Buffer>>,
    output: Option<Arc<Buffer>>,
}

/// A buffer of at least `size` bytes on `device` in `slot` (grown, never shrunk; the caller has waited for every
/// use of the old one).
fn scratch(slot: &mut Option<Arc<Buffer>>, device: &Arc<Device>, size: u64) -> Result<Arc<Buffer>> {
    match slot {
        Some(b) if b.size() >= size => Ok(b.clone()),
        _ => {
            *slot = None;
            let b = Buffer::new(device, size.max(256).next_power_of_two(), "ggvk split scratch")?;
            *slot = Some(b.clone());
            Ok(b)
        }
    }
}

/// Runs groups of products over row-split weights for one main-device stream.
#[derive(Default)]
pub struct SplitRunner {
    helpers: Mutex<Vec<Helper>>,
    gather: Mutex<Option<Arc<Buffer>>>,
}

impl SplitRunner {
    /// Run `group` (products that share `src1`) for `main`, whose earlier work is already submitted. The main
    /// device's rows and the rows written back directly are submitted or written here; where another device's rows
    /// land non-contiguously in dst, CPY nodes are appended to `after`, which the caller must submit on `main`
    /// before anything that reads these products' results.
    pub fn run(&self, main: &Backend, group: &[SplitProduct], after: &mut Graph) -> Result<()> {
        let Some(first) = group.first() else { return Ok(()) };
        for p in group {
            p.check()?;
            if !p.shares_src1(first) {
                return Err(Error::invalid("products of one row-split group must share src1"));
            }
        }
        let main_dev = main.device();
        // Other devices in order of first appearance.
        let mut others: Vec<Arc<Device>> = Vec::new();
        for p in group {
            for part in p.weight.parts() {
                let d = part.buffer.device();
                if !Arc::ptr_eq(d, main_dev) && !others.iter().any(|o| Arc::ptr_eq(o, d)) {
                    others.push(d.clone());
                }
            }
        }
        if others.is_empty() {
            return self.own_rows(main, group);
        }
        // src1 goes to each other device once the main device's work so far is done: through host memory both
        // devices imported where `copy_across` takes it (large ones), else through the host (read once).
        let src1 = &first.src1;
        let in_bytes = src1.nbytes();
        let mut input: Option<Vec<u8>> = None;
        let mut helpers = self.helpers.lock().unwrap_or_else(|p| p.into_inner());
        // Every other device: src1 in, its rows multiplied into its output scratch (products one after another).
        let mut remotes = Vec::new();
        for d in &others {
            let h = match helpers.iter().position(|h| Arc::ptr_eq(h.backend.device(), d)) {
                Some(i) => i,
                None => {
                    helpers.push(Helper { backend: Backend::on(d)?, input: None, output: None });
                    helpers.len() - 1
                }
            };
            let helper = &mut helpers[h];
            let inbuf = scratch(&mut helper.input, d, in_bytes)?;
            if !src1.buffer.copy_across(src1.offset, &inbuf, 0, in_bytes)? {
                if input.is_none() {
                    let mut bytes = vec![0u8; usize::try_from(in_bytes).map_err(|_| Error::invalid("src1 too large"))?];
                    src1.buffer.read(src1.offset, &mut bytes)?;
                    input = Some(bytes);
                }
                inbuf.write(0, input.as_deref().expect("read above"))?;
            }
            let x = Tensor::new(inbuf, 0, src1.ty, src1.ne, src1.nb)?;
            let mut pieces = Vec::new();
            let mut size = 0u64;
            for (i, p) in group.iter().enumerate() {
                if let Some(part) = p.weight.part_on(d) {
                    pieces.push(Piece { product: i, rows: part.rows.clone(), at: size });
                    size += p.result_bytes(&part.rows).next_multiple_of(256);
                }
            }
            let outbuf = scratch(&mut helper.output, d, size)?;
            let mut g = Graph::new();
            for piece in &pieces {
                let p = &group[piece.product];
                let part = p.weight.part_on(d).expect("listed above");
                let ne = [piece.rows.end - piece.rows.start, p.dst.ne[1], p.dst.ne[2], p.dst.ne[3]];
                let out = Tensor::contiguous(outbuf.clone(), piece.at, GgmlType::F32, ne)?;
                g.mul_mat(&p.weight.part_tensor(part)?, &x, &out)?;
            }
            helper.backend.compute_async(&g)?;
            remotes.push(Remote { helper: h, pieces, size, bytes: Vec::new() });
        }
        // The main device's rows, submitted after the other devices' (theirs carry the transfers: the longer way).
        self.own_rows(main, group)?;
        // Gather: each device's results back to the main device, large pieces through imported host memory where
        // the devices can, the rest through the host (each device's results read once).
        let mut gather_size = 0u64;
        for r in &remotes {
            for piece in &r.pieces {
                let p = &group[piece.product];
                if !p.lands_directly(&piece.rows) {
                    gather_size = (gather_size + p.result_bytes(&piece.rows)).next_multiple_of(256);
                }
            }
        }
        let mut gather = self.gather.lock().unwrap_or_else(|p| p.into_inner());
        let gbuf = if gather_size > 0 { Some(scratch(&mut gather, main_dev, gather_size)?) } else { None };
        let mut gat = 0u64;
        for r in &mut remotes {
            let out = helpers[r.helper].output.clone().expect("made above");
            for piece in &r.pieces {
                let p = &group[piece.product];
                let len = p.result_bytes(&piece.rows);
                let target = p.dst_rows(&piece.rows)?;
                // Where the rows go: straight into dst, or into the gather buffer and from there by a CPY.
                let (to, to_offset) = if p.lands_directly(&piece.rows) {
                    (target.buffer.clone(), target.offset)
                } else {
                    let g = gbuf.clone().expect("sized above");
                    let staged = Tensor::contiguous(g.clone(), gat, GgmlType::F32, target.ne)?;
                    after.push(Node { op: Op::Cpy, src: vec![Some(staged)], dst: target })?;
                    let at = gat;
                    gat = (gat + len).next_multiple_of(256);
                    (g, at)
                };
                if out.copy_across(piece.at, &to, to_offset, len)? {
                    continue;
                }
                if r.bytes.is_empty() {
                    r.bytes = vec![0u8; usize::try_from(r.size).map_err(|_| Error::invalid("result too large"))?];
                    out.read(0, &mut r.bytes)?;
                }
                to.write(to_offset, &r.bytes[piece.at as usize..(piece.at + len) as usize])?;
            }
        }
        Ok(())
    }

    /// Submit the products of the main device's own rows, straight into their rows of dst.
    fn own_rows(&self, main: &Backend, group: &[SplitProduct]) -> Result<()> {
        let mut own = Graph::new();
        for p in group {
            if let Some(part) = p.weight.part_on(main.device()) {
                own.mul_mat(&p.weight.part_tensor(part)?, &p.src1, &p.dst_rows(&part.rows)?)?;
            }
        }
        if !own.is_empty() {
            main.compute_async(&own)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::row_bounds;

    #[test]
    fn row_bounds_follow_shares_on_tile_multiples() {
        assert_eq!(row_bounds(4096, &[1.0, 1.0], 64), vec![0, 2048, 4096]);
        assert_eq!(row_bounds(4096, &[0.0, 0.0], 64), vec![0, 2048, 4096]);
        assert_eq!(row_bounds(4096, &[3.0, 1.0], 64), vec![0, 3072, 4096]);
        assert_eq!(row_bounds(1000, &[1.0, 1.0, 1.0], 64), vec![0, 320, 640, 1000]);
        // A device with no share gets no rows; fewer rows than a tile all go to the last device.
        assert_eq!(row_bounds(4096, &[0.0, 1.0], 64), vec![0, 0, 4096]);
        assert_eq!(row_bounds(32, &[1.0, 1.0], 64), vec![0, 0, 32]);
        assert_eq!(row_bounds(7, &[1.0], 64), vec![0, 7]);
        // Bad shares count as none.
        assert_eq!(row_bounds(128, &[f32::NAN, -1.0], 64), vec![0, 64, 128]);
        assert_eq!(row_bounds(0, &[1.0, 1.0], 64), vec![0, 0, 0]);
    }
}
