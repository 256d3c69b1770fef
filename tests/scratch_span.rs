//! A producer's copy survives the scratch ring (src/graph/exec.rs): a fused RMS_NORM+MUL that writes the 8-bit copy
//! its mat-vec products read reserves scratch up to its last reader, so where the ring would wrap between it and
//! a reader (forgetting the copy: the reader quantizes again), it wraps before the copy is made. Results are the
//! nodes' bytes computed one at a time. Validation layer on. (Its own test binary: the knobs are read once per
//! process: a 2 MiB ring, graph order.)

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Graph, Node, Op, Tensor};

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

#[test]
fn a_ring_wraps_before_a_producer_rather_than_between_it_and_its_readers() {
    // SAFETY: set before this binary's only test opens a device; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("GGVK_SCRATCH_RING", "2M");
        std::env::set_var("GGVK_SCHEDULE", "0");
    }
    let be = backend();
    let mut rng = Rng::new(78);
    let k = 4096i64;
    let q4 = |rng: &mut Rng, m: i64| {
        let bytes = ggvk::quant::quantize_to_vec(GgmlType::Q4_0, &rng.vec((k * m) as usize)).unwrap();
        upload(&be, GgmlType::Q4_0, [k, m, 1, 1], &bytes)
    };
    let cols = |rng: &mut Rng, n: i64| upload(&be, GgmlType::F32, [k, n, 1, 1], &f32_bytes(&rng.vec((k * n) as usize)));
    let (wa, wb, w1, w2) = (q4(&mut rng, 32), q4(&mut rng, 32), q4(&mut rng, 48), q4(&mut rng, 48));
    // A and B: products whose copies of their activations (8-bit blocks or f16, 5 or 8 KiB a column) take most of
    // the ring, A's and B's together more than all of it, B's and the norm's readers' less; between them the norm
    // and its first reader, after B its second.
    let (za, zb, x) = (cols(&mut rng, 240), cols(&mut rng, 200), cols(&mut rng, 1));
    let w = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
    let outs = [[32, 240], [k, 1], [k, 1], [48, 1], [32, 200], [48, 1]].map(|[m, n]| output(&be, [m, n, 1, 1]));
    let [pa, n, nm, p1, pb, p2] = outs.clone();
    let nodes = [
        node(Op::MulMat, &[&wa, &za], &pa),
        node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n),
        node(Op::Mul, &[&n, &w], &nm),
        node(Op::MulMat, &[&w1, &nm], &p1),
        node(Op::MulMat, &[&wb, &zb], &pb),
        node(Op::MulMat, &[&w2, &nm], &p2),
    ];
    let mut whole = Graph::new();
    for nd in &nodes {
        whole.push(nd.clone()).unwrap();
    }
    let together = be.compute(&whole).unwrap().dispatches;
    let got: Vec<_> = outs.iter().map(download).collect();
    // Apart: the norm and its MUL as one graph (they fuse), every product alone.
    let mut apart = 0;
    for part in [&nodes[0..1], &nodes[1..3], &nodes[3..4], &nodes[4..5], &nodes[5..6]] {
        let mut g = Graph::new();
        for nd in part {
            g.push(nd.clone()).unwrap();
        }
        apart += be.compute(&g).unwrap().dispatches;
    }
    for (i, (g, t)) in got.iter().zip(&outs).enumerate() {
        assert!(g.iter().zip(download(t)).all(|(a, b)| a.to_bits() == b.to_bits()), "node {i}: bytes differ");
    }
    // Where the norm writes the readers' 8-bit copy, neither reader quantizes: two dispatches fewer than apart.
    let subgroups = be.device().caps().subgroup_arithmetic;
    let emits =
        ggvk::graph::fusion::quantize_enabled() && subgroups && ggvk::ops::matmul::uses_int_dot(be.device(), &w1, &nm);
    assert_eq!(together + 2 * u32::from(emits), apart, "dispatches together {together}, apart {apart}");
    assert_no_validation_errors();
}
