//! F16 copies of quantized weights kept between submissions (`ops::matmul::kept_f16`, `vk::kept`): prompt products
//! that dequantize their weights first (forced on this device with `GGVK_DEQUANT_F16=1` from 9 columns) decode them
//! once and reuse the copy; anything that writes the weights' buffer (the host, a kernel of a graph, a replayed
//! graph) drops it, and the next product decodes the new weights; buffers that kernels write, or whose copies were
//! dropped twice, are not kept from at all. Every result is checked against the reference
//! over the weights the buffer holds at that moment. Validation layer on. (Its own test binary: knobs are read once
//! per process.)

mod common;

use common::*;
use ggvk::graph::{Node, Op};
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Tensor};

const K: i64 = 256;
const M: i64 = 40;
const N: i64 = 16;

fn force_on() {
    // SAFETY: set before this binary's tests open a device; no other thread reads the environment meanwhile (every
    // test calls this first, and the values are the same).
    unsafe {
        std::env::set_var("GGVK_DEQUANT_F16", "1");
        std::env::set_var("GGVK_DEQUANT_F16_MIN_N", "9");
        std::env::set_var("GGVK_KEEP_F16_WEIGHTS", "64M");
        std::env::set_var("GGVK_SCRATCH_RING", "1");
    }
}

/// `a x b` into a fresh output through graph `g` (built by the caller), checked against the reference over the
/// weights `a_bytes`; returns the dispatches it took besides the activations' f16 copy (on devices whose prompt
/// products read one).
fn check(
    be: &Backend,
    g: &Graph,
    d: &Tensor,
    (a, a_bytes): (&Tensor, &[u8]),
    (b, b_vals): (&Tensor, &[f32]),
    what: &str,
) -> u32 {
    let stats = be.compute(g).unwrap();
    verify(be, d, (a, a_bytes), (b, b_vals), what);
    stats.dispatches - u32::from(ggvk::ops::matmul::reads_f16_copy(be.device(), a, b))
}

/// `d` holds `a x b` (b of `b.ne[1]` columns) within the products' bound, over the weights `a_bytes`.
fn verify(be: &Backend, d: &Tensor, (a, a_bytes): (&Tensor, &[u8]), (b, b_vals): (&Tensor, &[f32]), what: &str) {
    let na = (K * M) as usize;
    let a_vals = quant::dequantize_to_f32(a.ty, a_bytes, na).unwrap();
    let seen = mul_mat_activations_seen(be, a, b, b_vals);
    let (want, mag) = ref_mul_mat(&a_vals, [K, M, 1, 1], &seen, [K, b.ne[1], 1, 1]);
    let got = download(d);
    for (i, ((g, w), mg)) in got.iter().zip(&want).zip(&mag).enumerate() {
        let diff = (f64::from(*g) - f64::from(*w)).abs();
        assert!(diff <= 1.2e-3 * (mg + 1e-6), "{what}: element {i}: got {g}, want {w}");
    }
}

fn product(a: &Tensor, b: &Tensor, d: &Tensor) -> Graph {
    let mut g = Graph::new();
    g.mul_mat(a, b, d).unwrap();
    g
}

#[test]
fn the_copy_is_made_once_and_dropped_when_the_host_writes_the_weights() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(601);
    let mut a_bytes = random_typed(&mut rng, GgmlType::Q4_0, (K * M) as usize);
    let a = upload(&be, GgmlType::Q4_0, [K, M, 1, 1], &a_bytes);
    let fresh = |rng: &mut Rng| {
        let b_vals = rng.vec((K * N) as usize);
        (upload(&be, GgmlType::F32, [K, N, 1, 1], &f32_bytes(&b_vals)), b_vals, output(&be, [M, N, 1, 1]))
    };
    // First product: the copy (kept) and the f16 product. Later products (other activations, so other graphs):
    // the product alone.
    let (b, bv, d) = fresh(&mut rng);
    assert_eq!(check(&be, &product(&a, &b, &d), &d, (&a, &a_bytes), (&b, &bv), "first"), 2);
    for i in 0..2 {
        let (b, bv, d) = fresh(&mut rng);
        assert_eq!(check(&be, &product(&a, &b, &d), &d, (&a, &a_bytes), (&b, &bv), &format!("kept {i}")), 1);
    }
    // New weights from the host: decoded again, then kept again.
    a_bytes = random_typed(&mut rng, GgmlType::Q4_0, (K * M) as usize);
    a.write(0, &a_bytes).unwrap();
    let (b, bv, d) = fresh(&mut rng);
    assert_eq!(check(&be, &product(&a, &b, &d), &d, (&a, &a_bytes), (&b, &bv), "after write"), 2);
    let (b, bv, d) = fresh(&mut rng);
    assert_eq!(check(&be, &product(&a, &b, &d), &d, (&a, &a_bytes), (&b, &bv), "kept after write"), 1);
    // A memset of the weights' buffer (zero codes and scales): the products see zeros.
    a.buffer.fill(0, a.buffer.size(), 0).unwrap();
    let zeros = vec![0u8; a_bytes.len()];
    let (b, bv, d) = fresh(&mut rng);
    assert_eq!(check(&be, &product(&a, &b, &d), &d, (&a, &zeros), (&b, &bv), "after fill"), 2);
    // Its copies were dropped twice: weights the host keeps rewriting are decoded per product, not kept.
    for i in 0..2 {
        let (b, bv, d) = fresh(&mut rng);
        assert_eq!(check(&be, &product(&a, &b, &d), &d, (&a, &zeros), (&b, &bv), &format!("not kept {i}")), 2);
    }
    assert_no_validation_errors();
}

#[test]
fn a_replayed_graph_reads_the_new_weights_after_a_write() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(602);
    let mut a_bytes = random_typed(&mut rng, GgmlType::Q8_0, (K * M) as usize);
    let a = upload(&be, GgmlType::Q8_0, [K, M, 1, 1], &a_bytes);
    let b_vals = rng.vec((K * N) as usize);
    let b = upload(&be, GgmlType::F32, [K, N, 1, 1], &f32_bytes(&b_vals));
    let d = output(&be, [M, N, 1, 1]);
    let g = product(&a, &b, &d);
    // The same graph again and again: recorded, then replayed, reading the kept copy.
    let mut replayed = false;
    for i in 0..4 {
        check(&be, &g, &d, (&a, &a_bytes), (&b, &b_vals), &format!("run {i}"));
        replayed |= be.compute(&g).unwrap().replayed;
    }
    assert!(replayed, "the graph was replayed");
    for round in 0..3 {
        // A graph seen for the first time (recorded as usual, not for replay) reads the kept copy too, not waited
        // for: its command buffer keeps the copy alive past the write below, so only the store's epoch tells the
        // recording of `g` that its copy is stale.
        let b2 = upload(&be, GgmlType::F32, [K, N, 1, 1], &f32_bytes(&b_vals));
        let d2 = output(&be, [M, N, 1, 1]);
        assert!(
            !be.compute_async(&product(&a, &b2, &d2)).unwrap().kept,
            "a graph seen once is not recorded for replay"
        );
        a_bytes = random_typed(&mut rng, GgmlType::Q8_0, (K * M) as usize);
        a.write(0, &a_bytes).unwrap();
        for i in 0..3 {
            check(&be, &g, &d, (&a, &a_bytes), (&b, &b_vals), &format!("round {round} run {i}"));
        }
    }
    assert_no_validation_errors();
}

#[test]
fn a_graph_that_writes_the_weights_drops_their_copy() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(603);
    let a_bytes = random_typed(&mut rng, GgmlType::Q4_0, (K * M) as usize);
    let a = upload(&be, GgmlType::Q4_0, [K, M, 1, 1], &a_bytes);
    let b_vals = rng.vec((K * N) as usize);
    let b = upload(&be, GgmlType::F32, [K, N, 1, 1], &f32_bytes(&b_vals));
    let d = output(&be, [M, N, 1, 1]);
    check(&be, &product(&a, &b, &d), &d, (&a, &a_bytes), (&b, &b_vals), "kept");
    // Other weights copied into a's bytes by a kernel (CPY of whole blocks), then the product: the copy is stale.
    let new_bytes = random_typed(&mut rng, GgmlType::Q4_0, (K * M) as usize);
    let src = upload(&be, GgmlType::Q4_0, [K, M, 1, 1], &new_bytes);
    let mut g = Graph::new();
    g.push(Node { op: Op::Cpy, src: vec![Some(src.clone())], dst: a.clone() }).unwrap();
    g.mul_mat(&a, &b, &d).unwrap();
    for i in 0..4 {
        // Each run rewrites the same bytes: results stay those of the new weights, recorded or replayed.
        check(&be, &g, &d, (&a, &new_bytes), (&b, &b_vals), &format!("copy then product, run {i}"));
    }
    // A kernel has written a's buffer: its products decode the weights every time (nothing kept from it).
    let b2 = upload(&be, GgmlType::F32, [K, N, 1, 1], &f32_bytes(&b_vals));
    let d2 = output(&be, [M, N, 1, 1]);
    for i in 0..2 {
        let g = product(&a, &b2, &d2);
        assert_eq!(check(&be, &g, &d2, (&a, &new_bytes), (&b2, &b_vals), &format!("kernel-written, {i}")), 2);
    }
    // A graph that writes the weights after reading them (the product first, then the copy of the old bytes back):
    // each run's product reads what the buffer held when it started.
    let old = upload(&be, GgmlType::Q4_0, [K, M, 1, 1], &a_bytes);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    g.push(Node { op: Op::Cpy, src: vec![Some(old.clone())], dst: a.clone() }).unwrap();
    check(&be, &g, &d, (&a, &new_bytes), (&b, &b_vals), "product then copy back");
    for i in 0..3 {
        check(&be, &g, &d, (&a, &a_bytes), (&b, &b_vals), &format!("product then copy back, run {i}"));
    }
    assert_no_validation_errors();
}

/// Products whose weights' kept copies serve them reserve no scratch for those copies: the scratch ring (as small
/// as `GGVK_SCRATCH_RING=1` makes it: what two neighbouring nodes take) does not wrap at them, so the 8-bit copy of
/// a column that a mat-vec made before them still serves the mat-vec after them (one quantization, no wrap).
#[test]
fn products_served_by_kept_copies_take_no_scratch_reservation() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(604);
    let typed = |rng: &mut Rng| {
        let bytes = random_typed(rng, GgmlType::Q4_0, (K * M) as usize);
        (upload(&be, GgmlType::Q4_0, [K, M, 1, 1], &bytes), bytes)
    };
    let weights: Vec<(Tensor, Vec<u8>)> = (0..4).map(|_| typed(&mut rng)).collect();
    let run = |rng: &mut Rng, what: &str| {
        let cols = |rng: &mut Rng, n: i64| {
            let vals = rng.vec((K * n) as usize);
            (upload(&be, GgmlType::F32, [K, n, 1, 1], &f32_bytes(&vals)), vals)
        };
        let (one, one_vals) = cols(rng, 1);
        let (many, many_vals) = cols(rng, N);
        // A mat-vec, two prompt products (f16 copies of their weights), a mat-vec of the same column.
        let inputs = [(&one, &one_vals), (&many, &many_vals), (&many, &many_vals), (&one, &one_vals)];
        let outs: Vec<Tensor> = inputs.iter().map(|(b, _)| output(&be, [M, b.ne[1], 1, 1])).collect();
        let mut g = Graph::new();
        for (((a, _), (b, _)), d) in weights.iter().zip(&inputs).zip(&outs) {
            g.mul_mat(a, b, d).unwrap();
        }
        let stats = be.compute(&g).unwrap();
        for (i, (((a, a_bytes), (b, b_vals)), d)) in weights.iter().zip(&inputs).zip(&outs).enumerate() {
            verify(&be, d, (a, a_bytes), (b, b_vals), &format!("{what}, product {i}"));
        }
        stats
    };
    // First: the two prompt products decode their weights into kept copies.
    let first = run(&mut rng, "first");
    // Then (new activations: a graph of its own) they read the copies: the mat-vecs' column is quantized once.
    let matvecs = {
        let b = upload(&be, GgmlType::F32, [K, 1, 1, 1], &f32_bytes(&rng.vec(K as usize)));
        let mut g = Graph::new();
        let (d0, d1) = (output(&be, [M, 1, 1, 1]), output(&be, [M, 1, 1, 1]));
        g.mul_mat(&weights[0].0, &b, &d0).unwrap();
        g.mul_mat(&weights[3].0, &b, &d1).unwrap();
        be.compute(&g).unwrap().dispatches
    };
    let later = run(&mut rng, "kept");
    // (Where prompt products read an f16 copy of their activations, both read the one copy.)
    let narrow = u32::from(ggvk::ops::matmul::reads_f16_copy(be.device(), &weights[1].0, &output(&be, [K, N, 1, 1])));
    assert_eq!(later.dispatches, matvecs + 2 + narrow, "mat-vecs with their one quantization, and the two products");
    assert!(first.dispatches > later.dispatches, "the copies were made in the first run ({first:?})");
    assert_no_validation_errors();
}
