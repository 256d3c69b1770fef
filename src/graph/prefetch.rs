//! Planning of weight prefetches ([`crate::ops::prefetch`]): a token's products of one column stream their weights
//! from memory, and each waits behind a barrier for a short step (a norm, the attention's reduction, a GLU) during
//! which the memory system is idle. A prefetch recorded with that short step fetches part of the next products'
//! rows into L2 meanwhile. This module picks the products: for each run of mat-vec products that read the same
//! activations (a layer's Q, K and V; gate and up; the output product; down), one prefetch per product, recorded
//! just before the run's first product, the run's `budget` bytes split over its products in proportion to their
//! weights (the same share of every row, so the product's workgroups all find the same share in L2).

use super::{Node, Op};
use crate::ir::Tensor;
use crate::ops::matmul::MATVEC_MAX_COLS;

/// Products whose weights are smaller than this are not worth a dispatch.
const MIN_WEIGHT_BYTES: u64 = 1 << 20;
/// How far ahead in recording order a run's later products may sit (a product's rope and cache writes come
/// between the Q, K and V products).
const WINDOW: usize = 12;

/// Bytes to fetch per run of products: `GGVK_PREFETCH` (a byte count, 0 or unset: no prefetches; read once per
/// process).
pub fn budget() -> u64 {
    static BUDGET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| crate::knobs::size("GGVK_PREFETCH").unwrap_or(0))
}

/// A mat-vec product of 2-D weights large enough to prefetch: its weights and activations.
fn product(node: &Node) -> Option<(&Tensor, &Tensor)> {
    if !matches!(node.op, Op::MulMat) {
        return None;
    }
    let (a, b) = (node.src(0).ok()?, node.src(1).ok()?);
    let matvec = b.ne[1] <= i64::from(MATVEC_MAX_COLS) && b.ne[2] == 1 && b.ne[3] == 1;
    let matrix = a.ne[2] == 1 && a.ne[3] == 1 && a.is_contiguous();
    (matvec && matrix && a.nbytes() >= MIN_WEIGHT_BYTES).then_some((a, b))
}

/// Whether two tensors are the same bytes seen the same way.
fn same(x: &Tensor, y: &Tensor) -> bool {
    x.buffer.id() == y.buffer.id() && x.offset == y.offset && x.ne == y.ne && x.nb == y.nb
}

/// Per node index: the products (node indices) whose weights to prefetch just before that node is recorded, with
/// the bytes of each of their rows to fetch. Empty everywhere when `budget` is 0. `order` is the recording order
/// ([`super::schedule::order`]).
pub fn plan(nodes: &[Node], order: &[usize], budget: u64) -> Vec<Vec<(usize, u64)>> {
    let mut out = vec![Vec::new(); nodes.len()];
    if budget == 0 {
        return out;
    }
    let mut p = 0;
    while p < order.len() {
        let first = order[p];
        let Some((_, act)) = nodes.get(first).and_then(product) else {
            p += 1;
            continue;
        };
        let end = (p + WINDOW).min(order.len());
        let run: Vec<(usize, usize, &Tensor)> = (p..end)
            .filter_map(|q| {
                let i = order[q];
                let (w, b) = nodes.get(i).and_then(product)?;
                same(b, act).then_some((q, i, w))
            })
            .collect();
        let total: u64 = run.iter().map(|(_, _, w)| w.nbytes()).sum();
        for &(_, i, w) in &run {
            let row_bytes = w.nbytes() / w.nrows().max(1) as u64;
            let share = if total <= budget {
                row_bytes
            } else {
                (u128::from(row_bytes) * u128::from(budget) / u128::from(total)) as u64
            };
            out[first].push((i, share));
        }
        p = run.last().map_or(p, |&(q, _, _)| q) + 1;
    }
    out
}
