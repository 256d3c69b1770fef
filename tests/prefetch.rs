//! Weight prefetches (`graph::prefetch`, `ops::prefetch`, `shaders/prefetch.comp`), on in this binary through
//! `GGVK_PREFETCH` (the knob is read once per process): the plan takes a layer's products that read the same
//! activations as one run and splits the budget over them; recorded, the prefetches go beside the step before the
//! products (no barrier of their own), change no result and no byte of the weights. Validation layer on.

mod common;

use common::*;
use ggvk::graph::{prefetch, schedule};
use ggvk::quant::GgmlType;
use ggvk::{Backend, Graph, Node, Op, Tensor};

fn force_on() {
    // SAFETY: set before this binary's tests open a device; no other thread reads the environment meanwhile (every
    // test calls this first, and the value is the same).
    unsafe { std::env::set_var("GGVK_PREFETCH", "64M") };
}

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

/// An attention block's start: norm, its scale, then Q, K and V products of the scaled row (`cols` columns) with
/// `ty` weights of `k` x `m` (Q) and `k` x `m / 2` (K, V). Returns the nodes, the weights and the products' outputs.
fn block(be: &Backend, ty: GgmlType, k: i64, m: i64, cols: i64) -> (Vec<Node>, Vec<Tensor>, Vec<Tensor>) {
    let mut rng = Rng::new(5);
    let x = upload(be, GgmlType::F32, [k, cols, 1, 1], &f32_bytes(&rng.vec((k * cols) as usize)));
    let g = upload(be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
    let (norm, h) = (output(be, [k, cols, 1, 1]), output(be, [k, cols, 1, 1]));
    let rows = [m, m / 2, m / 2];
    let w: Vec<Tensor> =
        rows.iter().map(|&r| upload(be, ty, [k, r, 1, 1], &random_typed(&mut rng, ty, (k * r) as usize))).collect();
    let out: Vec<Tensor> = rows.iter().map(|&r| output(be, [r, cols, 1, 1])).collect();
    let mut nodes = vec![node(Op::RmsNorm { eps: 1e-5 }, &[&x], &norm), node(Op::Mul, &[&norm, &g], &h)];
    nodes.extend((0..3).map(|i| node(Op::MulMat, &[&w[i], &h], &out[i])));
    (nodes, w, out)
}

/// A tensor's bytes.
fn bytes(t: &Tensor) -> Vec<u8> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).expect("download");
    out
}

#[test]
fn a_layers_products_of_one_row_are_one_run_sharing_the_budget() {
    force_on();
    let be = backend();
    let (k, m) = (1024, 2048);
    let (nodes, w, _) = block(&be, GgmlType::F32, k, m, 1);
    let order = schedule::order(&nodes, &[]);
    let row = |i: usize| w[i].nb[1];
    // A budget that covers all three: whole rows, all planned before Q (node 2).
    let all = prefetch::plan(&nodes, &order, 1 << 30);
    assert_eq!(all[2], [(2, row(0)), (3, row(1)), (4, row(2))]);
    assert!(all.iter().enumerate().all(|(i, p)| i == 2 || p.is_empty()), "{all:?}");
    // A quarter of their bytes: a quarter of every row.
    let total: u64 = w.iter().map(|t| t.nbytes()).sum();
    let quarter = prefetch::plan(&nodes, &order, total / 4);
    assert_eq!(quarter[2], [(2, row(0) / 4), (3, row(1) / 4), (4, row(2) / 4)]);
    // None without a budget, and none for products of many columns (prompts are not bound by their weights).
    assert!(prefetch::plan(&nodes, &order, 0).iter().all(Vec::is_empty));
    let (prompt, _, _) = block(&be, GgmlType::F32, k, m, 16);
    assert!(prefetch::plan(&prompt, &schedule::order(&prompt, &[]), 1 << 30).iter().all(Vec::is_empty));
    // Nor for weights under a MiB.
    let (small, _, _) = block(&be, GgmlType::F32, 256, 256, 1);
    assert!(prefetch::plan(&small, &schedule::order(&small, &[]), 1 << 30).iter().all(Vec::is_empty));
    assert_no_validation_errors();
}

#[test]
fn prefetches_share_the_norms_barrier_and_change_no_byte() {
    force_on();
    assert_eq!(prefetch::budget(), 64 << 20);
    let be = backend();
    for ty in [GgmlType::F32, GgmlType::Q4_0, GgmlType::Q4_K] {
        let (k, m) = if ty == GgmlType::F32 { (1024, 512) } else { (2048, 2048) };
        let (nodes, w, out) = block(&be, ty, k, m, 1);
        let weights: Vec<Vec<u8>> = w.iter().map(bytes).collect();
        let mut g = Graph::new();
        for n in &nodes {
            g.push(n.clone()).unwrap();
        }
        let stats = be.compute(&g).unwrap();
        // The norm and its scale as one kernel, three products (each quantizing kernel reads the norm's 8-bit
        // copy), three prefetches; one barrier between the norm and the products, none for the prefetches.
        assert_eq!((stats.dispatches, stats.barriers), (7, 1), "{}: {stats:?}", ty.name());
        // The weights are untouched and each product equals the same product run on its own.
        for i in 0..3 {
            assert!(bytes(&w[i]) == weights[i], "{}: weights {i} changed", ty.name());
            let alone = output(&be, out[i].ne);
            let mut one = Graph::new();
            one.mul_mat(&w[i], &nodes[1].dst, &alone).unwrap();
            be.compute(&one).unwrap();
            assert_eq!(download(&out[i]), download(&alone), "{}: product {i}", ty.name());
        }
    }
    assert_no_validation_errors();
}
