//! Graph replay: a graph computed again with the same ops, shapes, buffers and offsets is recorded once more for
//! replay (second time) and then submitted without recording (third time on). Each result must equal, bit for bit,
//! what a fresh backend (nothing kept) computes from the same inputs; a recording whose buffers are gone (the
//! scratch buffer replaced by a larger one) is recorded again; graphs that alternate are each replayed.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Backend, Graph, Node, Op, Tensor};

/// A small decoder-like step: x -> rms_norm -> (* w) -> Q4_0 product (activations quantized into scratch) -> + r.
struct Step {
    x: Tensor,
    graph: Graph,
    out: Tensor,
}

fn step(be: &Backend, rng: &mut Rng, k: i64, m: i64) -> Step {
    let wq = upload(be, GgmlType::Q4_0, [k, m, 1, 1], &to_type(GgmlType::Q4_0, &rng.vec((k * m) as usize)));
    let norm_w = upload(be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
    let resid = upload(be, GgmlType::F32, [m, 1, 1, 1], &f32_bytes(&rng.vec(m as usize)));
    let x = output(be, [k, 1, 1, 1]);
    let normed = output(be, [k, 1, 1, 1]);
    let scaled = output(be, [k, 1, 1, 1]);
    let prod = output(be, [m, 1, 1, 1]);
    let out = output(be, [m, 1, 1, 1]);
    let mut g = Graph::new();
    g.push(Node { op: Op::RmsNorm { eps: 1e-5 }, src: vec![Some(x.clone())], dst: normed.clone() }).unwrap();
    g.push(Node { op: Op::Mul, src: vec![Some(normed), Some(norm_w)], dst: scaled.clone() }).unwrap();
    g.mul_mat(&wq, &scaled, &prod).unwrap();
    g.push(Node { op: Op::Add, src: vec![Some(prod), Some(resid)], dst: out.clone() }).unwrap();
    Step { x, graph: g, out }
}

/// Run `s` with input `xs` on `be`; returns the output bits and whether it was replayed.
fn run(be: &Backend, s: &Step, xs: &[f32]) -> (Vec<u32>, bool) {
    s.x.write(0, &f32_bytes(xs)).unwrap();
    let stats = be.compute(&s.graph).unwrap();
    (download(&s.out).iter().map(|v| v.to_bits()).collect(), stats.replayed)
}

/// The same step's output computed from `xs` by a fresh backend on the same device (nothing recorded before).
fn fresh(be: &Backend, s: &Step, xs: &[f32]) -> Vec<u32> {
    let other = Backend::on(be.device()).unwrap();
    run(&other, s, xs).0
}

#[test]
fn replayed_graph_computes_new_inputs() {
    let be = backend();
    let mut rng = Rng::new(77);
    let s = step(&be, &mut rng, 256, 64);
    let mut replays = Vec::new();
    for i in 0..6 {
        let xs = rng.vec(256);
        let (got, replayed) = run(&be, &s, &xs);
        replays.push(replayed);
        assert_eq!(got, fresh(&be, &s, &xs), "run {i}: replayed {replayed}");
    }
    // First time as usual, second recorded for replay, then replayed (GGVK_REPLAY=0 turns it off).
    let want = if ggvk::graph::replay::enabled() { vec![false, false, true, true, true, true] } else { vec![false; 6] };
    assert_eq!(replays, want);
    assert_no_validation_errors();
}

#[test]
fn alternating_graphs_and_stale_recordings() {
    let be = backend();
    let mut rng = Rng::new(78);
    let a = step(&be, &mut rng, 256, 64);
    let b = step(&be, &mut rng, 512, 32);
    for round in 0..3 {
        for (name, s, k) in [("a", &a, 256), ("a", &a, 256), ("b", &b, 512), ("b", &b, 512)] {
            let xs = rng.vec(k);
            let (got, _) = run(&be, s, &xs);
            assert_eq!(got, fresh(&be, s, &xs), "round {round} graph {name}");
        }
    }
    // A graph whose activations need far more scratch: the stream replaces its scratch buffer, so the kept
    // recordings of a and b (which used the old one) are stale and must be recorded again, correctly.
    let big = step(&be, &mut rng, 8192, 16);
    for _ in 0..3 {
        let xs = rng.vec(8192);
        assert_eq!(run(&be, &big, &xs).0, fresh(&be, &big, &xs), "big");
    }
    let mut replays = Vec::new();
    for (name, s, k) in [("a", &a, 256), ("b", &b, 512), ("a", &a, 256), ("a", &a, 256), ("a", &a, 256)] {
        let xs = rng.vec(k);
        let (got, replayed) = run(&be, s, &xs);
        replays.push(replayed);
        assert_eq!(got, fresh(&be, s, &xs), "after the scratch grew: graph {name}");
    }
    // a and b were stale (run as new graphs), a is recorded again on its second run in a row and replayed after.
    let want = if ggvk::graph::replay::enabled() { vec![false, false, false, false, true] } else { vec![false; 5] };
    assert_eq!(replays, want);
    assert_no_validation_errors();
}

#[test]
fn cycle_of_many_graphs_is_replayed() {
    // ggml's meta backend (tensor parallelism) hands each device one graph per block of the model in turn: a cycle
    // of distinct graphs, none twice in a row, more of them than a handful.
    let be = backend();
    let mut rng = Rng::new(79);
    let steps: Vec<Step> = (0..6).map(|i| step(&be, &mut rng, 256, 32 + 16 * i)).collect();
    let mut replays = Vec::new();
    for round in 0..3 {
        for (i, s) in steps.iter().enumerate() {
            let xs = rng.vec(256);
            let (got, replayed) = run(&be, s, &xs);
            replays.push(replayed);
            assert_eq!(got, fresh(&be, s, &xs), "round {round} graph {i}");
        }
    }
    // The first round as usual, the second recorded for replay, the third replayed.
    let on = ggvk::graph::replay::enabled();
    let want: Vec<bool> = (0..18).map(|j| on && j >= 12).collect();
    assert_eq!(replays, want);
    assert_no_validation_errors();
}

#[test]
fn progress_points_advance_with_submissions() {
    // The device's progress point (behind ggml's events): every submission moves it on, and waiting for a point
    // returns once the work before it is done, again at once when it already is.
    let be = backend();
    let device = be.device().clone();
    let Some(before) = device.progress().unwrap() else { return }; // no timeline semaphores on this device
    let mut rng = Rng::new(80);
    let s = step(&be, &mut rng, 256, 64);
    s.x.write(0, &f32_bytes(&rng.vec(256))).unwrap();
    be.compute_async(&s.graph).unwrap();
    let after = device.progress().unwrap().expect("a timeline device keeps one");
    assert!(after > before, "a graph's submission moves the point on: {before} -> {after}");
    device.wait_progress(after).unwrap();
    device.wait_progress(before.max(1)).unwrap();
    be.synchronize().unwrap();
    assert_no_validation_errors();
}
