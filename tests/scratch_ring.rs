//! Scratch as a ring (src/graph/exec.rs, `Recorder::reserve_scratch`): with `GGVK_SCRATCH_RING` at its smallest,
//! every node of a graph takes its scratch from the start of the buffer again after a barrier, and forgets the
//! copies derived there; the graph's results are still the bytes its nodes give computed one at a time, when it is
//! recorded and when it is replayed. Validation layer on. (Its own test binary: the knob is read once per process.)

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Graph, Node, Op, Tensor};

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

#[test]
fn a_graph_wrapping_its_scratch_at_every_node_gives_the_separate_nodes_bytes() {
    // SAFETY: set before this binary's only test opens a device; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("GGVK_SCRATCH_RING", "1") };
    let be = backend();
    let mut rng = Rng::new(77);
    let (k, m, cols) = (512i64, 512i64, 3i64);
    let ne = [k, cols, 1, 1];
    let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&rng.vec((k * cols) as usize)));
    let w = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
    // Products that derive 8-bit copies of their activations (Q4_0: q8 blocks; Q4_K: Q8_K blocks), chained so a
    // later product reads an earlier one's result.
    let q4_0 = ggvk::quant::quantize_to_vec(GgmlType::Q4_0, &rng.vec((k * m) as usize)).unwrap();
    let a1 = upload(&be, GgmlType::Q4_0, [k, m, 1, 1], &q4_0);
    let a2 = upload(&be, GgmlType::Q4_K, [k, m, 1, 1], &random_kquant(&mut rng, GgmlType::Q4_K, (k * m) as usize));
    let a3 = upload(&be, GgmlType::Q4_K, [m, m, 1, 1], &random_kquant(&mut rng, GgmlType::Q4_K, (m * m) as usize));
    let outs: Vec<Tensor> = (0..6).map(|_| output(&be, [k, cols, 1, 1])).collect();
    let [n, nm, p1, p2, p3, s] = [0, 1, 2, 3, 4, 5].map(|i| outs[i].clone());
    let nodes = [
        node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n),
        node(Op::Mul, &[&n, &w], &nm),
        node(Op::MulMat, &[&a1, &nm], &p1),
        node(Op::MulMat, &[&a2, &nm], &p2),
        node(Op::MulMat, &[&a3, &p1], &p3),
        node(Op::Add, &[&p3, &p2], &s),
    ];
    let mut whole = Graph::new();
    for nd in &nodes {
        whole.push(nd.clone()).unwrap();
    }
    let mut results = Vec::new();
    for _ in 0..2 {
        // Recorded once, then replayed.
        be.compute(&whole).unwrap();
        results.push(outs.iter().map(download).collect::<Vec<_>>());
    }
    for nd in &nodes {
        let mut g = Graph::new();
        g.push(nd.clone()).unwrap();
        be.compute(&g).unwrap();
    }
    let apart: Vec<_> = outs.iter().map(download).collect();
    for (run, got) in results.iter().enumerate() {
        for (i, (g, w)) in got.iter().zip(&apart).enumerate() {
            assert!(g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()), "run {run}, node {i}: bytes differ");
        }
    }
    assert!(apart[5].iter().all(|v| v.is_finite()) && apart[5].iter().any(|v| *v != 0.0), "a real result");
    assert_no_validation_errors();
}
