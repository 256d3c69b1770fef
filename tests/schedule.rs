//! The recording order (`graph::schedule`): independent nodes move up to the level their inputs allow, every pair
//! of nodes touching the same bytes (one of them writing) keeps its order, fused neighbours and groups stay together, fences
//! stay put; and a graph recorded in that order gives the bytes of its nodes run in graph order.

mod common;

use common::*;
use ggvk::graph::schedule;
use ggvk::graph::UnaryOp;
use ggvk::quant::GgmlType;
use ggvk::{Graph, Node, Op, Tensor};

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

/// `n` F32 tensors of `k` values, packed one after another in one buffer.
fn tensors(be: &ggvk::Backend, k: i64, n: usize) -> Vec<Tensor> {
    let buf = be.alloc((k as u64) * 4 * n as u64).unwrap();
    (0..n)
        .map(|i| Tensor::contiguous(buf.clone(), i as u64 * k as u64 * 4, GgmlType::F32, [k, 1, 1, 1]).unwrap())
        .collect()
}

/// A block's first half as the graph builder writes it: norm, scale, Q product, Q "rope", K and V products, K
/// "rope", the K and V cache writes. Products are MUL_MATs of [k, k] weights; the ropes and cache writes stand in
/// as element-wise ops and copies (the order only looks at the bytes they touch).
fn attention_head(be: &ggvk::Backend, k: i64) -> (Vec<Node>, Vec<Tensor>) {
    let t = tensors(be, k, 12);
    let w = upload(be, GgmlType::F32, [k, k, 1, 1], &f32_bytes(&Rng::new(9).vec((k * k) as usize)));
    let (x, norm, h, q, qr, kk, v, kr, kc, vc, g) =
        (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9], &t[10]);
    let nodes = vec![
        node(Op::RmsNorm { eps: 1e-5 }, &[x], norm),
        node(Op::Mul, &[norm, g], h),
        node(Op::MulMat, &[&w, h], q),
        node(Op::Unary(UnaryOp::Silu), &[q], qr),
        node(Op::MulMat, &[&w, h], kk),
        node(Op::MulMat, &[&w, h], v),
        node(Op::Unary(UnaryOp::Silu), &[kk], kr),
        node(Op::Cpy, &[kr], kc),
        node(Op::Cpy, &[v], vc),
    ];
    (nodes, t)
}

#[test]
fn independent_products_move_together_and_dependencies_keep_their_order() {
    let be = backend();
    let (nodes, _) = attention_head(&be, 64);
    // Norm+scale (one unit), the three products, the two "ropes" and the V cache write, then the K cache write.
    assert_eq!(schedule::order(&nodes, &[]), [0, 1, 2, 4, 5, 3, 6, 8, 7]);
}

#[test]
fn a_write_over_bytes_read_earlier_stays_after_the_read() {
    let be = backend();
    let t = tensors(&be, 16, 4);
    let nodes = vec![
        node(Op::Unary(UnaryOp::Silu), &[&t[0]], &t[1]),
        node(Op::Unary(UnaryOp::Abs), &[&t[1]], &t[2]),
        // Independent of both, but overwrites what node 1 reads: must not move before it.
        node(Op::Unary(UnaryOp::Neg), &[&t[3]], &t[1]),
        // Reads only t[3] but writes t[0]: after node 0, beside node 1.
        node(Op::Unary(UnaryOp::Abs), &[&t[3]], &t[0]),
    ];
    let order = schedule::order(&nodes, &[]);
    let pos = |i: usize| order.iter().position(|&j| j == i).unwrap();
    assert!(pos(2) > pos(1), "{order:?}");
    // Node 3 writes t[0], which node 0 reads: it stays after node 0 too.
    assert!(pos(3) > pos(0), "{order:?}");
    assert_eq!(order.len(), 4);
}

#[test]
fn ops_that_update_their_sources_are_fences() {
    let be = backend();
    let t = tensors(&be, 16, 6);
    let nodes = vec![
        node(Op::Unary(UnaryOp::Silu), &[&t[0]], &t[1]),
        node(Op::Unary(UnaryOp::Abs), &[&t[1]], &t[2]),
        node(Op::Sum, &[&t[4]], &t[5]),
        // Independent of everything before, but behind a node outside the movable set.
        node(Op::Unary(UnaryOp::Neg), &[&t[3]], &t[4]),
    ];
    let order = schedule::order(&nodes, &[]);
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn a_reordered_graph_gives_the_bytes_of_its_nodes_in_graph_order() {
    let be = backend();
    let k = 64;
    let (nodes, t) = attention_head(&be, k);
    let vals = Rng::new(3).vec(k as usize);
    let results = |graphs: Vec<Graph>| {
        t[0].write(0, &f32_bytes(&vals)).unwrap();
        t[10].write(0, &f32_bytes(&vals)).unwrap();
        for g in &graphs {
            be.compute(g).unwrap();
        }
        [&t[3], &t[4], &t[8], &t[9]].iter().map(|x| download(x)).collect::<Vec<_>>()
    };
    let mut whole = Graph::new();
    for n in &nodes {
        whole.push(n.clone()).unwrap();
    }
    let reordered = results(vec![whole]);
    let one_by_one = results(
        nodes
            .iter()
            .map(|n| {
                let mut g = Graph::new();
                g.push(n.clone()).unwrap();
                g
            })
            .collect(),
    );
    assert_eq!(reordered, one_by_one);
    assert_no_validation_errors();
}

#[test]
fn a_group_records_its_later_members_right_after_its_first() {
    use ggvk::graph::fusion::MatVecRopeGroup;
    let be = backend();
    let (nodes, _) = attention_head(&be, 64);
    // As the planner groups a token's products with their ropes and cache writes: Q with its rope, K with its rope
    // and cache write, V with its cache write.
    let mut groups = vec![None; nodes.len()];
    groups[2] = Some(MatVecRopeGroup { mm: 2, rope: Some(3), set: None });
    groups[4] = Some(MatVecRopeGroup { mm: 4, rope: Some(6), set: Some(7) });
    groups[5] = Some(MatVecRopeGroup { mm: 5, rope: None, set: Some(8) });
    let order = schedule::order(&nodes, &groups);
    assert_eq!(order, [0, 1, 2, 3, 4, 6, 7, 5, 8]);
}
