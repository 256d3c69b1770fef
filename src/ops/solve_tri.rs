//! SOLVE_TRI (ggml_solve_tri): `A X = B` for lower-triangular `A` with a non-zero diagonal, the variant ggml
//! builds (left, lower, not unit-diagonal; its op carries no parameters). F32: src0 `A` `[n, n, ne2, ne3]`, src1
//! `B` `[k, n, ne2, ne3]`, dst `X` like `B`. Rows packed along dim 0 (ggml asserts contiguous A and B), any other
//! strides.
//!
//! `shaders/solve_tri.comp`: a thread per column of `X`, forward substitution in ggml's CPU order (sum of fused
//! multiply-adds over the earlier rows, then a correctly rounded division by the diagonal), so the results are
//! the CPU backend's where the GPU's `fma` is fused. The rows go in several dispatches when `n` is large (each
//! thread reads the earlier rows of its column back from dst), keeping a thread's loops short per dispatch.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `solve_tri.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SolveTriPush {
    n: u32,
    k: u32,
    ne2: u32,
    threads: u32,
    a: [u32; 4],
    b: [u32; 4],
    x: [u32; 4],
    r0: u32,
    r1: u32,
    pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<SolveTriPush>() as u32;
const _: () = assert!(PUSH == 80);

/// Loop iterations a thread may run in one dispatch (lavapipe ends a shader's loops after 65535 in all).
const ITERS_PER_DISPATCH: u64 = 16384;
/// Iterations row `i` costs beyond its `i` products: the correctly rounded division's loop, and slack.
const ROW_OVERHEAD: u64 = 32;

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    if !matches!(node.op, Op::SolveTri) {
        return Err(Error::Internal(format!("solve_tri::check called for {}", node.op.name())));
    }
    let (a, b, x) = (node.src(0)?, node.src(1)?, &node.dst);
    for (what, t) in [("A", a), ("B", b), ("X", x)] {
        if t.ty != GgmlType::F32 {
            return Err(Error::unsupported(format!("SOLVE_TRI with {what} of type {} (f32 only)", t.ty.name())));
        }
        if !t.is_row_packed() {
            return Err(Error::unsupported(format!("SOLVE_TRI: {what} rows are not packed")));
        }
        check_layout("SOLVE_TRI", what, t)?;
    }
    let n = a.ne[0];
    if a.ne[1] != n || b.ne[1] != n || b.ne[2] != a.ne[2] || b.ne[3] != a.ne[3] || x.ne != b.ne {
        return Err(Error::invalid(format!(
            "SOLVE_TRI: A {:?}, B {:?} and X {:?} do not fit together",
            a.ne, b.ne, x.ne
        )));
    }
    Ok(())
}

/// Row ranges `[r0, r1)` of an `n`-row solve, each within [`ITERS_PER_DISPATCH`] loop iterations a thread.
fn row_chunks(n: u32) -> Vec<[u32; 2]> {
    let mut out = Vec::new();
    let mut r0 = 0u32;
    while r0 < n {
        let mut r1 = r0;
        let mut cost = 0u64;
        while r1 < n && (r1 == r0 || cost + u64::from(r1) + ROW_OVERHEAD <= ITERS_PER_DISPATCH) {
            cost += u64::from(r1) + ROW_OVERHEAD;
            r1 += 1;
        }
        out.push([r0, r1]);
        r0 = r1;
    }
    out
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let device = rec.device().clone();
    let (a, b, x) = (node.src(0)?, node.src(1)?, &node.dst);
    let sa = strided(&device, a, false, "A")?;
    let sb = strided(&device, b, false, "B")?;
    let sx = strided(&device, x, true, "X")?;
    let threads = dim_u32("SOLVE_TRI columns", x.ne[0] * x.ne[2] * x.ne[3])?;
    let mut push = SolveTriPush {
        n: sa.ne[0],
        k: sx.ne[0],
        ne2: sx.ne[2],
        threads,
        a: [sa.off, sa.s[1], sa.s[2], sa.s[3]],
        b: [sb.off, sb.s[1], sb.s[2], sb.s[3]],
        x: [sx.off, sx.s[1], sx.s[2], sx.s[3]],
        ..Default::default()
    };
    let shader = Shader { name: "solve_tri", spirv: spirv::SOLVE_TRI, bindings: 3, push_size: PUSH };
    let p = pipeline(&device, &shader, &[])?;
    let bindings = [sa.binding, sb.binding, sx.binding];
    for [r0, r1] in row_chunks(push.n) {
        push.r0 = r0;
        push.r1 = r1;
        dispatch(rec, "solve_tri", &p, &bindings, bytemuck::bytes_of(&push), threads)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_chunks_cover_rows_in_budget() {
        for n in [0u32, 1, 10, 128, 179, 180, 181, 1000] {
            let chunks = row_chunks(n);
            let mut next = 0;
            for [r0, r1] in &chunks {
                assert_eq!(*r0, next);
                assert!(r1 > r0);
                let cost: u64 = (*r0..*r1).map(|i| u64::from(i) + ROW_OVERHEAD).sum();
                assert!(cost <= ITERS_PER_DISPATCH || r1 - r0 == 1, "n {n}: [{r0}, {r1}) costs {cost}");
                next = *r1;
            }
            assert_eq!(next, n);
        }
        assert_eq!(row_chunks(128).len(), 1);
    }
}
