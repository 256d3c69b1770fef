//! Fusion (src/graph/fusion.rs) against the same nodes recorded apart: RMS_NORM then MUL by a row of weights is one
//! dispatch and gives the same bytes, for the norm's output and the product, as the two nodes with another node
//! between them (which keeps them apart); patterns that must not fuse stay two dispatches. Validation layer on.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Graph, Node, Op, Tensor};

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

/// Row indices as `ty` (I64, else I32) bytes, for SET_ROWS.
fn index_bytes(ty: GgmlType, vals: &[i64]) -> Vec<u8> {
    match ty {
        GgmlType::I64 => vals.iter().flat_map(|s| s.to_ne_bytes()).collect(),
        _ => vals.iter().flat_map(|s| (*s as i32).to_ne_bytes()).collect(),
    }
}

/// A node that keeps two fusable nodes apart when placed between them: it reads the first value of `t` (the
/// second node's destination) as F32 before the second node writes it, so the schedule cannot move the second node
/// up to the first. Its own output is unused.
fn blocker(be: &ggvk::Backend, t: &Tensor) -> Node {
    let first = Tensor::contiguous(t.buffer.clone(), t.offset, GgmlType::F32, [1, 1, 1, 1]).unwrap();
    node(Op::Scale { s: 2.0, b: 0.0 }, &[&first], &output(be, [1, 1, 1, 1]))
}

#[test]
fn rms_norm_then_mul_fuses_and_matches_the_separate_nodes() {
    let be = backend();
    let mut rng = Rng::new(7);
    // Short rows are spread over several workgroups (SLICES) whose spans need not be multiples of four values (36,
    // 100, 1000): their sums must still run in the plain norm's order.
    for (ne0, rows) in [(4096i64, 1i64), (512, 7), (100, 3), (36, 2), (1000, 5), (4100, 1), (2052, 2)] {
        let ne = [ne0, rows, 1, 1];
        let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&rng.vec((ne0 * rows) as usize)));
        let w = upload(&be, GgmlType::F32, [ne0, 1, 1, 1], &f32_bytes(&rng.vec(ne0 as usize)));
        let eps = 1e-6;
        let (n1, m1, n2, m2) = (output(&be, ne), output(&be, ne), output(&be, ne), output(&be, ne));
        // Fused: norm, then mul by the weights.
        let mut g = Graph::new();
        g.push(node(Op::RmsNorm { eps }, &[&x], &n1)).unwrap();
        g.push(node(Op::Mul, &[&n1, &w], &m1)).unwrap();
        let stats = be.compute(&g).unwrap();
        // Apart: a node between them.
        let mut h = Graph::new();
        h.push(node(Op::RmsNorm { eps }, &[&x], &n2)).unwrap();
        h.push(blocker(&be, &m2)).unwrap();
        h.push(node(Op::Mul, &[&n2, &w], &m2)).unwrap();
        let apart = be.compute(&h).unwrap();
        assert_eq!(download(&n1), download(&n2), "norm output, ne0 {ne0}");
        assert_eq!(download(&m1), download(&m2), "product, ne0 {ne0}");
        if ggvk::graph::fusion::enabled() {
            assert_eq!(stats.dispatches, 1, "fused into one dispatch");
        }
        assert_eq!(apart.dispatches, 3);
        // And the product is the norm times the weights.
        let (n, m, wv) = (download(&n1), download(&m1), download(&w));
        for (i, (a, b)) in n.iter().zip(&m).enumerate() {
            assert_eq!(*b, a * wv[i % ne0 as usize]);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn rms_norm_mul_then_add_fuses_and_matches_the_separate_nodes() {
    let be = backend();
    let mut rng = Rng::new(37);
    // (ne0, rows, addend first in the ADD, where the sum goes: 0 apart, 1 over the addend, 2 over the product)
    for (ne0, rows, addend_first, sum_at) in
        [(640i64, 1i64, false, 0u8), (4096, 1, true, 1), (512, 7, false, 2), (100, 3, true, 0)]
    {
        let what = format!("ne0 {ne0}, {rows} rows, addend first {addend_first}, sum at {sum_at}");
        let ne = [ne0, rows, 1, 1];
        let count = (ne0 * rows) as usize;
        let (xv, rv) = (rng.vec(count), rng.vec(count));
        let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
        let w = upload(&be, GgmlType::F32, [ne0, 1, 1, 1], &f32_bytes(&rng.vec(ne0 as usize)));
        let run = |apart: bool| {
            let (n, m) = (output(&be, ne), output(&be, ne));
            let r = upload(&be, GgmlType::F32, ne, &f32_bytes(&rv));
            let sum = match sum_at {
                1 => r.clone(),
                2 => m.clone(),
                _ => output(&be, ne),
            };
            let mut g = Graph::new();
            g.push(node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n)).unwrap();
            g.push(node(Op::Mul, &[&n, &w], &m)).unwrap();
            if apart {
                g.push(blocker(&be, &sum)).unwrap();
            }
            let srcs = if addend_first { [&r, &m] } else { [&m, &r] };
            g.push(node(Op::Add, &srcs, &sum)).unwrap();
            let stats = be.compute(&g).unwrap();
            (raw(&n), raw(&m), raw(&sum), stats.dispatches)
        };
        let (n1, m1, s1, fused) = run(false);
        let (n2, m2, s2, apart) = run(true);
        assert_eq!((n1, s1.clone()), (n2, s2), "{what}: norm output and sum");
        if sum_at != 2 {
            assert_eq!(m1, m2, "{what}: product");
            // The sum is the product plus the addend, as the ADD kernel adds.
            let (mv, sv) = (bytes_f32(&m1), bytes_f32(&s1));
            for (i, (p, q)) in mv.iter().zip(&sv).enumerate() {
                assert_eq!(q.to_bits(), (p + rv[i]).to_bits(), "{what}: element {i}");
            }
        }
        let pair = u32::from(!ggvk::graph::fusion::enabled());
        assert_eq!(apart, 3 + pair, "{what}: apart (norm+mul, the node between, the add)");
        let on = ggvk::graph::fusion::norm_add_enabled();
        assert_eq!(fused, if on { 1 } else { 2 + pair }, "{what}: dispatches");
    }
    assert_no_validation_errors();
}

#[test]
fn in_place_product_fuses_and_other_shapes_do_not() {
    let be = backend();
    let mut rng = Rng::new(9);
    let ne = [256i64, 4, 1, 1];
    let xv = rng.vec(1024);
    let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
    let w = upload(&be, GgmlType::F32, [256, 1, 1, 1], &f32_bytes(&rng.vec(256)));
    let n = output(&be, ne);
    // In place (product written over the norm's output), as ggml's inplace ops do.
    let mut g = Graph::new();
    g.push(node(Op::RmsNorm { eps: 1e-5 }, &[&x], &n)).unwrap();
    g.push(node(Op::Mul, &[&n, &w], &n)).unwrap();
    let stats = be.compute(&g).unwrap();
    let fused = download(&n);
    let mut h = Graph::new();
    let n2 = output(&be, ne);
    h.push(node(Op::RmsNorm { eps: 1e-5 }, &[&x], &n2)).unwrap();
    h.push(blocker(&be, &n2)).unwrap();
    h.push(node(Op::Mul, &[&n2, &w], &n2)).unwrap();
    be.compute(&h).unwrap();
    assert_eq!(fused, download(&n2));
    if ggvk::graph::fusion::enabled() {
        assert_eq!(stats.dispatches, 1);
    }
    // The product written over the norm's input (whose every element the norm reads first): one workgroup per
    // row however the outputs of short rows are otherwise spread, and the same bytes as apart.
    let xi = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
    let (ni, ni2) = (output(&be, ne), output(&be, ne));
    let mut g = Graph::new();
    g.push(node(Op::RmsNorm { eps: 1e-5 }, &[&xi], &ni)).unwrap();
    g.push(node(Op::Mul, &[&ni, &w], &xi)).unwrap();
    let stats = be.compute(&g).unwrap();
    let xj = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
    let mut h = Graph::new();
    h.push(node(Op::RmsNorm { eps: 1e-5 }, &[&xj], &ni2)).unwrap();
    h.push(blocker(&be, &xj)).unwrap();
    h.push(node(Op::Mul, &[&ni2, &w], &xj)).unwrap();
    be.compute(&h).unwrap();
    assert_eq!(download(&ni), download(&ni2), "norm output, product over the input");
    assert_eq!(download(&xi), download(&xj), "product over the input");
    if ggvk::graph::fusion::enabled() {
        assert_eq!(stats.dispatches, 1);
    }
    // Weights of a full tensor (not one row): two dispatches.
    let w_full = upload(&be, GgmlType::F32, ne, &f32_bytes(&rng.vec(1024)));
    let (a, b) = (output(&be, ne), output(&be, ne));
    let mut k = Graph::new();
    k.push(node(Op::RmsNorm { eps: 1e-5 }, &[&x], &a)).unwrap();
    k.push(node(Op::Mul, &[&a, &w_full], &b)).unwrap();
    assert_eq!(be.compute(&k).unwrap().dispatches, 2);
    // MUL of something else than the norm's output: two dispatches.
    let mut l = Graph::new();
    l.push(node(Op::RmsNorm { eps: 1e-5 }, &[&x], &a)).unwrap();
    l.push(node(Op::Mul, &[&x, &w], &b)).unwrap();
    assert_eq!(be.compute(&l).unwrap().dispatches, 2);
    assert_no_validation_errors();
}

/// Weights of `ty` for a `[k, m]` matrix: quantized from random values, or random K-quant blocks.
fn weights(rng: &mut Rng, ty: GgmlType, k: i64, m: i64) -> Vec<u8> {
    let n = (k * m) as usize;
    match ty {
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => random_kquant(rng, ty, n),
        GgmlType::F16 => rng.vec(n).iter().flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes()).collect(),
        GgmlType::F32 => f32_bytes(&rng.vec(n)),
        _ => random_typed(rng, ty, n),
    }
}

#[test]
fn mat_vec_then_add_fuses_and_matches_the_separate_nodes() {
    let be = backend();
    let mut rng = Rng::new(11);
    let (k, m) = (512i64, 67i64);
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::F16] {
        for (swap, in_place) in [(false, false), (true, false), (false, true)] {
            let what = format!("{ty} swap {swap} in place {in_place}");
            let a = upload(&be, ty, [k, m, 1, 1], &weights(&mut rng, ty, k, m));
            let x = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
            let rv = f32_bytes(&rng.vec(m as usize));
            let v = [m, 1, 1, 1];
            let (r1, r2) = (upload(&be, GgmlType::F32, v, &rv), upload(&be, GgmlType::F32, v, &rv));
            let (t1, t2) = (output(&be, v), output(&be, v));
            let (o1, o2) = if in_place { (r1.clone(), r2.clone()) } else { (output(&be, v), output(&be, v)) };
            let add = |t: &Tensor, r: &Tensor| if swap { [r.clone(), t.clone()] } else { [t.clone(), r.clone()] };
            // Adjacent: fused where a kernel takes it.
            let mut g = Graph::new();
            g.mul_mat(&a, &x, &t1).unwrap();
            let [s0, s1] = add(&t1, &r1);
            g.push(node(Op::Add, &[&s0, &s1], &o1)).unwrap();
            let stats = be.compute(&g).unwrap();
            // Apart: each node in its own graph.
            let mut h = Graph::new();
            h.mul_mat(&a, &x, &t2).unwrap();
            be.compute(&h).unwrap();
            let mut h = Graph::new();
            let [s0, s1] = add(&t2, &r2);
            h.push(node(Op::Add, &[&s0, &s1], &o2)).unwrap();
            let apart = be.compute(&h).unwrap();
            assert_eq!(download(&t1), download(&t2), "{what}: product");
            assert_eq!(download(&o1), download(&o2), "{what}: sum");
            // The integer-dot kernels (after the quantization of x) take the ADD; other kernels leave it apart.
            let int_dot = ggvk::ops::matmul::uses_int_dot(be.device(), &a, &x);
            let subgroups = be.device().caps().subgroup_arithmetic
                && std::env::var("GGVK_SHARED_REDUCTION").ok().as_deref() != Some("1");
            let fused = ggvk::graph::fusion::enabled() && int_dot && subgroups;
            assert_eq!(apart.dispatches, 1);
            assert_eq!(stats.dispatches, u32::from(int_dot) + 1 + u32::from(!fused), "{what}: dispatches");
        }
    }
    assert_no_validation_errors();
}

#[test]
fn prompt_product_then_add_matches_the_separate_nodes() {
    // Several columns: the NV_cooperative_matrix2 kernel takes the ADD in its store (unless `GGVK_CM2_ADD=0`; F16
    // weights or weights decoded to f16 first); every other kernel leaves it to its own dispatch. Bytes as the nodes
    // apart.
    let be = backend();
    let mut rng = Rng::new(17);
    let (k, m) = (256i64, 136i64);
    for ty in [GgmlType::F16, GgmlType::Q4_0] {
        for (n, in_place) in [(12i64, false), (300, false), (300, true)] {
            let what = format!("{ty} n {n} in place {in_place}");
            let a = upload(&be, ty, [k, m, 1, 1], &weights(&mut rng, ty, k, m));
            let x = upload(&be, GgmlType::F32, [k, n, 1, 1], &f32_bytes(&rng.vec((k * n) as usize)));
            let rv = f32_bytes(&rng.vec((m * n) as usize));
            let v = [m, n, 1, 1];
            let (r1, r2) = (upload(&be, GgmlType::F32, v, &rv), upload(&be, GgmlType::F32, v, &rv));
            let (t1, t2) = (output(&be, v), output(&be, v));
            let (o1, o2) = if in_place { (r1.clone(), r2.clone()) } else { (output(&be, v), output(&be, v)) };
            let mut g = Graph::new();
            g.mul_mat(&a, &x, &t1).unwrap();
            g.push(node(Op::Add, &[&t1, &r1], &o1)).unwrap();
            let fused = be.compute(&g).unwrap();
            let mut h = Graph::new();
            h.mul_mat(&a, &x, &t2).unwrap();
            let product = be.compute(&h).unwrap();
            let mut h = Graph::new();
            h.push(node(Op::Add, &[&t2, &r2], &o2)).unwrap();
            let add = be.compute(&h).unwrap();
            assert_eq!(download(&t1), download(&t2), "{what}: product");
            assert_eq!(download(&o1), download(&o2), "{what}: sum");
            // One dispatch fewer where the product's kernel took the ADD, never more.
            let apart = product.dispatches + add.dispatches;
            assert!(
                fused.dispatches == apart || fused.dispatches + 1 == apart,
                "{what}: {} vs {apart}",
                fused.dispatches
            );
        }
    }
    assert_no_validation_errors();
}

#[test]
fn prompt_gate_and_up_products_then_glu_match_the_separate_nodes() {
    // A feed-forward block over several columns: gate and up products of the same activations, their GLU, the
    // down product of that. On NV_cooperative_matrix2 (SWIGLU by default, every GLU with `GGVK_CM2_GLU=2`) the
    // first three are one kernel, which also writes the f16 copy the down product reads; elsewhere they stay
    // apart. Bytes as the nodes apart (each in a graph of its own), edge tiles included (136 rows, 300 columns).
    let be = backend();
    let mut rng = Rng::new(23);
    let k2 = 64i64;
    use ggvk::graph::GluOp::{GeGlu, GeGluErf, GeGluQuick, ReGlu, SwiGlu};
    for (op, ty, k, m, n) in [
        (SwiGlu, GgmlType::F16, 256i64, 136i64, 300i64),
        (SwiGlu, GgmlType::F16, 128, 128, 256),
        (SwiGlu, GgmlType::Q4_0, 256, 136, 300),
        (SwiGlu, GgmlType::Q4_0, 256, 64, 40),
        (ReGlu, GgmlType::F16, 256, 136, 300),
        (GeGlu, GgmlType::F16, 256, 136, 300),
        (GeGluErf, GgmlType::Q4_0, 256, 136, 300),
        (GeGluQuick, GgmlType::F16, 256, 136, 300),
    ] {
        let what = format!("{op:?} {ty} k {k} m {m} n {n}");
        let (wg, wu) = (weights(&mut rng, ty, k, m), weights(&mut rng, ty, k, m));
        let (ag, au) = (upload(&be, ty, [k, m, 1, 1], &wg), upload(&be, ty, [k, m, 1, 1], &wu));
        let ad = upload(&be, GgmlType::F16, [m, k2, 1, 1], &weights(&mut rng, GgmlType::F16, m, k2));
        let x = upload(&be, GgmlType::F32, [k, n, 1, 1], &f32_bytes(&rng.vec((k * n) as usize)));
        let v = [m, n, 1, 1];
        let glu = Op::Glu { op, swapped: false };
        // Apart first (quantized weights' kept f16 copies, where a device keeps them, serve both runs).
        let (g2, u2, o2, y2) = (output(&be, v), output(&be, v), output(&be, v), output(&be, [k2, n, 1, 1]));
        let mut apart = 0;
        let mut h = Graph::new();
        h.mul_mat(&ag, &x, &g2).unwrap();
        h.mul_mat(&au, &x, &u2).unwrap();
        apart += be.compute(&h).unwrap().dispatches;
        let mut h = Graph::new();
        h.push(node(glu.clone(), &[&g2, &u2], &o2)).unwrap();
        apart += be.compute(&h).unwrap().dispatches;
        let mut h = Graph::new();
        h.mul_mat(&ad, &o2, &y2).unwrap();
        apart += be.compute(&h).unwrap().dispatches;
        // Together, up first as llama.cpp builds it.
        let (g1, u1, o1, y1) = (output(&be, v), output(&be, v), output(&be, v), output(&be, [k2, n, 1, 1]));
        let mut g = Graph::new();
        g.mul_mat(&au, &x, &u1).unwrap();
        g.mul_mat(&ag, &x, &g1).unwrap();
        g.push(node(glu, &[&g1, &u1], &o1)).unwrap();
        g.mul_mat(&ad, &o1, &y1).unwrap();
        let together = be.compute(&g).unwrap().dispatches;
        assert_eq!(download(&g1), download(&g2), "{what}: gate");
        assert_eq!(download(&u1), download(&u2), "{what}: up");
        assert_eq!(download(&o1), download(&o2), "{what}: swiglu");
        assert_eq!(download(&y1), download(&y2), "{what}: down product");
        // The fused kernel: the GLU's dispatch, one product's and the down product's f16 copy gone.
        let fused = ggvk::graph::fusion::enabled() && ggvk::ops::matmul::takes_pair_glu(be.device(), op, &ag, &x);
        assert!(together <= apart, "{what}: {together} dispatches together, {apart} apart");
        assert!(!fused || together + 3 <= apart, "{what}: fused kernel, {together} dispatches vs {apart}");
    }
    assert_no_validation_errors();
}

#[test]
fn norm_writes_the_f16_activations_its_prompt_products_read() {
    // A prompt's RMS_NORM+MUL then a product of several columns: where the product reads an f16 copy of its
    // activations (cooperative matrices), the fused norm writes that copy itself and the product makes none.
    // Bytes as the nodes apart, where a CPY keeps the product from the norm's copy. Rows of 256 values take the
    // norm's four-values-a-load path, rows of 258 its value-pair path.
    let be = backend();
    let mut rng = Rng::new(29);
    let m = 64i64;
    for (k, n) in [(256i64, 300i64), (258, 40), (256, 12)] {
        let what = format!("k {k} n {n}");
        let ne = [k, n, 1, 1];
        let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&rng.vec((k * n) as usize)));
        let w = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
        let a = upload(&be, GgmlType::F16, [k, m, 1, 1], &weights(&mut rng, GgmlType::F16, k, m));
        let v = [m, n, 1, 1];
        let (n1, o1, p1) = (output(&be, ne), output(&be, ne), output(&be, v));
        let mut g = Graph::new();
        g.push(node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n1)).unwrap();
        g.push(node(Op::Mul, &[&n1, &w], &o1)).unwrap();
        g.mul_mat(&a, &o1, &p1).unwrap();
        let together = be.compute(&g).unwrap().dispatches;
        let (n2, o2, c2, p2) = (output(&be, ne), output(&be, ne), output(&be, ne), output(&be, v));
        let mut h = Graph::new();
        h.push(node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n2)).unwrap();
        h.push(node(Op::Mul, &[&n2, &w], &o2)).unwrap();
        h.push(node(Op::Cpy, &[&o2], &c2)).unwrap();
        h.mul_mat(&a, &c2, &p2).unwrap();
        let apart = be.compute(&h).unwrap().dispatches;
        assert_eq!(download(&n1), download(&n2), "{what}: norm");
        assert_eq!(download(&o1), download(&o2), "{what}: norm times weights");
        assert_eq!(download(&p1), download(&p2), "{what}: product");
        // Apart: the CPY, and the product's own f16 copy where it reads one.
        let copies = ggvk::ops::matmul::reads_f16_copy(be.device(), &a, &o1);
        let emits = copies && ggvk::graph::fusion::quantize_enabled();
        assert_eq!(together + 1 + u32::from(emits), apart, "{what}: {together} dispatches vs {apart}");
    }
    assert_no_validation_errors();
}

#[test]
fn gate_up_swiglu_pattern_takes_only_what_one_kernel_can_write() {
    use ggvk::graph::fusion::mul_mat_pair_glu;
    use ggvk::graph::GluOp;
    let be = backend();
    let (k, m, n) = (64i64, 32i64, 16i64);
    let w = || output(&be, [k, m, 1, 1]);
    let (ag, au, x, x2) = (w(), w(), output(&be, [k, n, 1, 1]), output(&be, [k, n, 1, 1]));
    let v = [m, n, 1, 1];
    let (g, u, o) = (output(&be, v), output(&be, v), output(&be, v));
    let swiglu = Op::Glu { op: GluOp::SwiGlu, swapped: false };
    let (pg, pu) = (node(Op::MulMat, &[&ag, &x], &g), node(Op::MulMat, &[&au, &x], &u));
    let glu = node(swiglu.clone(), &[&g, &u], &o);
    // Either product first; the gate is the GLU's first operand.
    for (first, second) in [(&pg, &pu), (&pu, &pg)] {
        let f = mul_mat_pair_glu(first, second, &glu).expect("gate, up, swiglu");
        assert!(std::ptr::eq(f.gate, &pg) && std::ptr::eq(f.up, &pu) && f.out.offset == o.offset);
    }
    // The other GLUs of the family too (gemma's GEGLU).
    let geglu = node(Op::Glu { op: GluOp::GeGlu, swapped: false }, &[&g, &u], &o);
    assert_eq!(mul_mat_pair_glu(&pu, &pg, &geglu).map(|f| f.op), Some(GluOp::GeGlu));
    // Swapped halves, a GLU with parameters, other activations for up, the GLU writing over the gate, one column:
    // apart.
    let swapped = node(Op::Glu { op: GluOp::SwiGlu, swapped: true }, &[&g, &u], &o);
    assert!(mul_mat_pair_glu(&pu, &pg, &swapped).is_none());
    let oai = node(Op::SwigluOai { swapped: false, alpha: 1.702, limit: 7.0 }, &[&g, &u], &o);
    assert!(mul_mat_pair_glu(&pu, &pg, &oai).is_none());
    let other_x = node(Op::MulMat, &[&au, &x2], &u);
    assert!(mul_mat_pair_glu(&other_x, &pg, &glu).is_none());
    let in_place = node(swiglu.clone(), &[&g, &u], &g);
    assert!(mul_mat_pair_glu(&pu, &pg, &in_place).is_none());
    let col = [m, 1, 1, 1];
    let (x1, g1, u1, o1) = (output(&be, [k, 1, 1, 1]), output(&be, col), output(&be, col), output(&be, col));
    let (pg1, pu1) = (node(Op::MulMat, &[&ag, &x1], &g1), node(Op::MulMat, &[&au, &x1], &u1));
    assert!(mul_mat_pair_glu(&pu1, &pg1, &node(swiglu, &[&g1, &u1], &o1)).is_none());
}

/// Whether this run's products quantize their activations and producers write the quantized copy themselves.
fn emission_on(be: &ggvk::Backend, a: &Tensor, x: &Tensor) -> bool {
    let subgroups =
        be.device().caps().subgroup_arithmetic && std::env::var("GGVK_SHARED_REDUCTION").ok().as_deref() != Some("1");
    ggvk::graph::fusion::quantize_enabled() && subgroups && ggvk::ops::matmul::uses_int_dot(be.device(), a, x)
}

#[test]
fn norm_writes_the_quantized_activations_its_products_read() {
    let be = backend();
    let mut rng = Rng::new(13);
    let (k, m) = (512i64, 67i64);
    // Q4_0 / Q8_0 read 32-value blocks, the K-quants Q8_K blocks; 12 columns take Q4_0's tiled kernel.
    // `tied`: unit weights and each column's largest magnitude twice in one Q8_K block, negative first (values 5
    // and 200: different subgroups of the block on every device); the block's maximum is found across subgroups.
    for (ty, cols, tied) in [
        (GgmlType::Q4_0, 1i64, false),
        (GgmlType::Q8_0, 3, false),
        (GgmlType::Q4_K, 1, false),
        (GgmlType::Q6_K, 2, false),
        (GgmlType::Q4_0, 12, false),
        (GgmlType::Q4_K, 2, true),
        // The other 32-value block types and K-quants on integer dot products read the same blocks.
        (GgmlType::Q5_0, 1, false),
        (GgmlType::MXFP4, 2, false),
        (GgmlType::IQ4_XS, 1, false),
        (GgmlType::Q3_K, 3, false),
    ] {
        let what = format!("{ty} x {cols} columns (tied maxima: {tied})");
        let ne = [k, cols, 1, 1];
        let mut xv = rng.vec((k * cols) as usize);
        let mut wv = rng.vec(k as usize);
        if tied {
            wv.iter_mut().for_each(|v| *v = 1.0);
            for col in xv.chunks_mut(k as usize) {
                col[5] = -4.0;
                col[200] = 4.0;
            }
        }
        let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
        let w = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&wv));
        let a = upload(&be, ty, [k, m, 1, 1], &weights(&mut rng, ty, k, m));
        let a2 = upload(&be, ty, [k, m, 1, 1], &weights(&mut rng, ty, k, m));
        let d = [m, cols, 1, 1];
        let (n1, m1, p1, q1) = (output(&be, ne), output(&be, ne), output(&be, d), output(&be, d));
        let (n2, m2, p2, q2) = (output(&be, ne), output(&be, ne), output(&be, d), output(&be, d));
        // The fused norm writes the product's quantized copy; both products read it.
        let mut g = Graph::new();
        g.push(node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n1)).unwrap();
        g.push(node(Op::Mul, &[&n1, &w], &m1)).unwrap();
        g.mul_mat(&a, &m1, &p1).unwrap();
        g.mul_mat(&a2, &m1, &q1).unwrap();
        let stats = be.compute(&g).unwrap();
        // Apart (a node between norm and MUL): the first product quantizes, the second reuses it.
        let mut h = Graph::new();
        h.push(node(Op::RmsNorm { eps: 1e-6 }, &[&x], &n2)).unwrap();
        h.push(blocker(&be, &m2)).unwrap();
        h.push(node(Op::Mul, &[&n2, &w], &m2)).unwrap();
        h.mul_mat(&a, &m2, &p2).unwrap();
        h.mul_mat(&a2, &m2, &q2).unwrap();
        let apart = be.compute(&h).unwrap();
        assert_eq!(download(&m1), download(&m2), "{what}: product of the norm");
        assert_eq!(download(&p1), download(&p2), "{what}: first product");
        assert_eq!(download(&q1), download(&q2), "{what}: second product");
        let (emits, fused) = (emission_on(&be, &a, &m1), ggvk::graph::fusion::enabled());
        let quantizes = ggvk::ops::matmul::uses_int_dot(be.device(), &a, &m1);
        // A cooperative-matrix product of f16 operands (devices that have one) reads an f16 copy of the activations,
        // made once for both products.
        // The fused norm writes that copy itself (`norm_writes_the_f16_activations_its_prompt_products_read`).
        let narrows = u32::from(ggvk::ops::coopmat::reads_f16_b(be.device(), &a, &m1));
        assert_eq!(apart.dispatches, 5 + u32::from(quantizes) + narrows, "{what}: apart");
        let f16_emits =
            ggvk::graph::fusion::quantize_enabled() && ggvk::ops::matmul::reads_f16_copy(be.device(), &a, &m1);
        let fused_count = 2 + u32::from(!fused) + 1 + u32::from(quantizes && !emits) + narrows * u32::from(!f16_emits);
        assert_eq!(stats.dispatches, fused_count, "{what}: fused");
    }
    assert_no_validation_errors();
}

#[test]
fn glu_writes_the_quantized_activations_its_product_reads() {
    let be = backend();
    let mut rng = Rng::new(17);
    let (k, m) = (768i64, 33i64);
    for (ty, cols) in [
        (GgmlType::Q4_0, 1i64),
        (GgmlType::Q8_0, 2),
        (GgmlType::Q5_K, 1),
        (GgmlType::Q6_K, 1),
        (GgmlType::Q4_1, 1),
        (GgmlType::Q2_K, 2),
    ] {
        let what = format!("{ty} x {cols} columns");
        let ne = [k, cols, 1, 1];
        let gate = upload(&be, GgmlType::F32, ne, &f32_bytes(&rng.vec((k * cols) as usize)));
        let up = upload(&be, GgmlType::F32, ne, &f32_bytes(&rng.vec((k * cols) as usize)));
        let a = upload(&be, ty, [k, m, 1, 1], &weights(&mut rng, ty, k, m));
        let d = [m, cols, 1, 1];
        let (y1, p1, y2, c2, p2) = (output(&be, ne), output(&be, d), output(&be, ne), output(&be, ne), output(&be, d));
        let glu = Op::Glu { op: ggvk::graph::GluOp::SwiGlu, swapped: false };
        let mut g = Graph::new();
        g.push(node(glu.clone(), &[&gate, &up], &y1)).unwrap();
        g.mul_mat(&a, &y1, &p1).unwrap();
        let stats = be.compute(&g).unwrap();
        // Apart: the product reads a copy (CPY writes no quantized copy), so it quantizes for itself.
        let mut h = Graph::new();
        h.push(node(glu, &[&gate, &up], &y2)).unwrap();
        h.push(node(Op::Cpy, &[&y2], &c2)).unwrap();
        h.mul_mat(&a, &c2, &p2).unwrap();
        let apart = be.compute(&h).unwrap();
        assert_eq!(download(&y1), download(&y2), "{what}: glu");
        assert_eq!(download(&p1), download(&p2), "{what}: product");
        let quantizes = ggvk::ops::matmul::uses_int_dot(be.device(), &a, &y1);
        let emits = ggvk::graph::fusion::quantize_enabled() && quantizes;
        assert_eq!(apart.dispatches, 3 + u32::from(quantizes), "{what}: apart");
        assert_eq!(stats.dispatches, 2 + u32::from(quantizes && !emits), "{what}: emitting");
    }
    assert_no_validation_errors();
}

/// Raw bytes of a tensor.
fn raw(t: &Tensor) -> Vec<u8> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).expect("download");
    out
}

#[test]
fn rope_then_set_rows_writes_the_cache_and_matches_the_separate_nodes() {
    use ggvk::ops::rope::{RopeParams, ROPE_MODE_NEOX, ROPE_MODE_NORMAL};
    let be = backend();
    let mut rng = Rng::new(19);
    // (rope type, cache type, index type, mode, [head size, heads, positions], cache rows)
    let cases = [
        (GgmlType::F32, GgmlType::F16, GgmlType::I64, ROPE_MODE_NORMAL, [64i64, 4, 5], 16i64),
        (GgmlType::F32, GgmlType::F32, GgmlType::I32, ROPE_MODE_NEOX, [32, 2, 1], 8),
        (GgmlType::F16, GgmlType::F16, GgmlType::I32, ROPE_MODE_NEOX, [128, 3, 7], 9),
    ];
    for (ty, cache_ty, idx_ty, mode, [hs, heads, n], rows) in cases {
        let what = format!("{ty} rope into a {cache_ty} cache, {idx_ty} indices, mode {mode}");
        let ne = [hs, heads, n, 1];
        let count = (hs * heads * n) as usize;
        let xv = rng.vec(count);
        let bytes = |ty: GgmlType, v: &[f32]| match ty {
            GgmlType::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_bits().to_le_bytes()).collect(),
            _ => f32_bytes(v),
        };
        let x = upload(&be, ty, ne, &bytes(ty, &xv));
        let pos = upload(
            &be,
            GgmlType::I32,
            [n, 1, 1, 1],
            &(0..n as i32).flat_map(|p| (3 * p + 1).to_ne_bytes()).collect::<Vec<u8>>(),
        );
        // Slots: distinct rows in a scrambled order; the last position's slot is out of range (nothing written).
        let slots: Vec<i64> = (0..n).map(|p| if p == n - 1 && n > 1 { rows + 2 } else { (p * 5 + 3) % rows }).collect();
        let idx = upload(&be, idx_ty, [n, 1, 1, 1], &index_bytes(idx_ty, &slots));
        let cache_fill = bytes(cache_ty, &rng.vec((hs * heads * rows) as usize));
        let params = RopeParams { n_dims: hs as i32, mode, freq_base: 10000.0, ..RopeParams::default() };
        let run = |apart: bool| {
            let out = upload(&be, ty, ne, &vec![0u8; count * ty.type_size()]);
            let cache = upload(&be, cache_ty, [hs * heads, rows, 1, 1], &cache_fill);
            let rows_view = Tensor::contiguous(out.buffer.clone(), 0, ty, [hs * heads, n, 1, 1]).unwrap();
            let mut g = Graph::new();
            g.push(node(Op::Rope(params), &[&x, &pos], &out)).unwrap();
            if apart {
                g.push(blocker(&be, &cache)).unwrap();
            }
            g.push(node(Op::SetRows, &[&rows_view, &idx], &cache)).unwrap();
            let stats = be.compute(&g).unwrap();
            (raw(&out), raw(&cache), stats.dispatches)
        };
        let (out1, cache1, fused) = run(false);
        let (out2, cache2, apart) = run(true);
        assert_eq!(out1, out2, "{what}: rope output");
        assert_eq!(cache1, cache2, "{what}: cache");
        assert_ne!(cache1, cache_fill, "{what}: the cache was written");
        assert_eq!(apart, 3);
        let on = ggvk::graph::fusion::rope_set_rows_enabled();
        assert_eq!(fused, if on { 1 } else { 2 }, "{what}: dispatches");
    }
    assert_no_validation_errors();
}

#[test]
fn rope_then_scale_writes_both_and_matches_the_separate_nodes() {
    use ggvk::ops::rope::{RopeParams, ROPE_MODE_NEOX, ROPE_MODE_NORMAL};
    let be = backend();
    let mut rng = Rng::new(29);
    // (mode, [head size, heads, positions], rotated dims, frequency factors, SCALE's s and b, in place)
    let cases = [
        (ROPE_MODE_NEOX, [64i64, 4, 3], 64, false, (0.125f32, 0.0f32), false),
        (ROPE_MODE_NORMAL, [32, 2, 5], 16, true, (-0.3, 0.0), true),
        (ROPE_MODE_NEOX, [128, 3, 1], 96, false, (0.0883883, 0.5), false),
        (ROPE_MODE_NORMAL, [96, 8, 2], 96, false, (2.0, -1.25), true),
    ];
    for (mode, [hs, heads, n], n_dims, with_ff, (s, b), in_place) in cases {
        let what =
            format!("mode {mode}, head {hs}, {n_dims} dims rotated, ff {with_ff}, s {s} b {b}, in place {in_place}");
        let ne = [hs, heads, n, 1];
        let count = (hs * heads * n) as usize;
        let mut xv = rng.vec(count);
        xv[1] = -0.0;
        let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
        let pos = upload(
            &be,
            GgmlType::I32,
            [n, 1, 1, 1],
            &(0..n as i32).flat_map(|p| (7 * p + 2).to_ne_bytes()).collect::<Vec<u8>>(),
        );
        let ff =
            upload(&be, GgmlType::F32, [i64::from(n_dims / 2), 1, 1, 1], &f32_bytes(&rng.vec(n_dims as usize / 2)));
        let params = RopeParams { n_dims, mode, freq_base: 10000.0, ..RopeParams::default() };
        let run = |apart: bool| {
            let out = output(&be, ne);
            let scaled = if in_place { out.clone() } else { output(&be, ne) };
            let mut g = Graph::new();
            let srcs: Vec<&Tensor> = if with_ff { vec![&x, &pos, &ff] } else { vec![&x, &pos] };
            g.push(node(Op::Rope(params), &srcs, &out)).unwrap();
            if apart {
                g.push(blocker(&be, &scaled)).unwrap();
            }
            g.push(node(Op::Scale { s, b }, &[&out], &scaled)).unwrap();
            let stats = be.compute(&g).unwrap();
            (raw(&out), raw(&scaled), stats.dispatches)
        };
        let (out1, scaled1, fused) = run(false);
        let (out2, scaled2, apart) = run(true);
        assert_eq!(out1, out2, "{what}: rope output");
        assert_eq!(scaled1, scaled2, "{what}: scaled output");
        assert_eq!(apart, 3, "{what}: apart");
        let on = ggvk::graph::fusion::rope_scale_enabled();
        assert_eq!(fused, if on { 1 } else { 2 }, "{what}: dispatches");
        if !in_place {
            // The scaled output is the rope's output scaled, as SCALE computes it (with a bias through GLSL's fma,
            // which a driver may round once or twice).
            let (r, sc) = (bytes_f32(&out1), bytes_f32(&scaled1));
            for (i, (v, w)) in r.iter().zip(&sc).enumerate() {
                let want = if b == 0.0 { vec![v * s] } else { vec![v.mul_add(s, b), v * s + b] };
                assert!(want.iter().any(|x| x.to_bits() == w.to_bits()), "{what}: element {i}: {w} for {want:?}");
            }
        }
    }
    // Not fused: an F16 rope, and a SCALE into a tensor that overlaps the rope's source.
    let ne = [64i64, 2, 2, 1];
    let pos = upload(&be, GgmlType::I32, [2, 1, 1, 1], &[0u8, 0, 0, 0, 1, 0, 0, 0]);
    let params = RopeParams { n_dims: 64, mode: ROPE_MODE_NEOX, freq_base: 10000.0, ..RopeParams::default() };
    let xh = upload(&be, GgmlType::F16, ne, &vec![0u8; 512]);
    let (oh, sh) = (upload(&be, GgmlType::F16, ne, &vec![0u8; 512]), upload(&be, GgmlType::F16, ne, &vec![0u8; 512]));
    let (rope16, scale16) =
        (node(Op::Rope(params), &[&xh, &pos], &oh), node(Op::Scale { s: 0.5, b: 0.0 }, &[&oh], &sh));
    assert!(ggvk::graph::fusion::rope_scale(&rope16, &scale16).is_none(), "F16 rope");
    let both = output(&be, [64, 2, 4, 1]);
    let x = Tensor::contiguous(both.buffer.clone(), 0, GgmlType::F32, ne).unwrap();
    let o = output(&be, ne);
    let over = Tensor::contiguous(both.buffer.clone(), 4 * 64, GgmlType::F32, ne).unwrap();
    let mut g = Graph::new();
    g.push(node(Op::Rope(params), &[&x, &pos], &o)).unwrap();
    g.push(node(Op::Scale { s: 0.5, b: 0.0 }, &[&o], &over)).unwrap();
    assert_eq!(be.compute(&g).unwrap().dispatches, 2, "scaled output over the rope's source");
    assert_no_validation_errors();
}

#[test]
fn a_cache_write_after_an_unrelated_node_joins_its_rope() {
    use ggvk::ops::rope::{RopeParams, ROPE_MODE_NEOX};
    // Gemma's order: the K rope, the V product (unrelated to the K cache), then the K cache write. The write moves up
    // to the rope and the two are one kernel; a node between them that reads the cache keeps them apart.
    let be = backend();
    let mut rng = Rng::new(31);
    let (hs, heads, rows) = (64i64, 2i64, 8i64);
    let x = upload(&be, GgmlType::F32, [hs, heads, 1, 1], &f32_bytes(&rng.vec((hs * heads) as usize)));
    let pos = upload(&be, GgmlType::I32, [1, 1, 1, 1], &9i32.to_ne_bytes());
    let idx = upload(&be, GgmlType::I32, [1, 1, 1, 1], &3i32.to_ne_bytes());
    let w = upload(&be, GgmlType::F32, [hs, hs, 1, 1], &f32_bytes(&rng.vec((hs * hs) as usize)));
    let v_in = upload(&be, GgmlType::F32, [hs, 1, 1, 1], &f32_bytes(&rng.vec(hs as usize)));
    let params = RopeParams { n_dims: hs as i32, mode: ROPE_MODE_NEOX, freq_base: 10000.0, ..RopeParams::default() };
    let fill: Vec<u8> =
        (0..hs * heads * rows).flat_map(|i| half::f16::from_f32(i as f32).to_bits().to_le_bytes()).collect();
    // between: 0 an unrelated product, 1 the same and a node reading the cache.
    let run = |between: u32| {
        let out = output(&be, [hs, heads, 1, 1]);
        let v = output(&be, [hs, 1, 1, 1]);
        let cache = upload(&be, GgmlType::F16, [hs * heads, rows, 1, 1], &fill);
        let rows_view =
            Tensor::contiguous(out.buffer.clone(), out.offset, GgmlType::F32, [hs * heads, 1, 1, 1]).unwrap();
        let mut g = Graph::new();
        g.push(node(Op::Rope(params), &[&x, &pos], &out)).unwrap();
        g.push(node(Op::MulMat, &[&w, &v_in], &v)).unwrap();
        if between == 1 {
            let cache_f32 =
                Tensor::contiguous(cache.buffer.clone(), cache.offset, GgmlType::F32, [4, 1, 1, 1]).unwrap();
            g.push(node(Op::Scale { s: 1.0, b: 0.0 }, &[&cache_f32], &output(&be, [4, 1, 1, 1]))).unwrap();
        }
        g.push(node(Op::SetRows, &[&rows_view, &idx], &cache)).unwrap();
        let stats = be.compute(&g).unwrap();
        (raw(&out), raw(&cache), raw(&v), stats.dispatches)
    };
    let (out0, cache0, v0, d0) = run(0);
    let (out1, cache1, v1, d1) = run(1);
    assert_eq!((out0, cache0, v0), (out1, cache1, v1), "same bytes either way");
    let on = ggvk::graph::fusion::rope_set_rows_enabled() && ggvk::graph::schedule::enabled();
    assert_eq!(d0, if on { 2 } else { 3 }, "rope and cache write as one kernel past the product");
    assert_eq!(d1, 4, "a node between that reads the cache keeps them apart");
    assert_no_validation_errors();
}

#[test]
fn split_attention_writes_the_quantized_activations_of_the_output_product() {
    let be = backend();
    let mut rng = Rng::new(23);
    // One query, 8 Q heads over 2 KV heads of 128, 512 keys: the token-generation shape whose keys are split over
    // workgroups, then reduced. The output product reads the heads as one row of 1024.
    let (hs, n_head, n_head_kv, n_kv) = (128i64, 8i64, 2i64, 512i64);
    let f16 =
        |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| half::f16::from_f32(*x).to_bits().to_le_bytes()).collect() };
    let q = upload(&be, GgmlType::F32, [hs, 1, n_head, 1], &f32_bytes(&rng.vec((hs * n_head) as usize)));
    let kv = [hs, n_kv, n_head_kv, 1];
    let k = upload(&be, GgmlType::F16, kv, &f16(&rng.vec((hs * n_kv * n_head_kv) as usize)));
    let v = upload(&be, GgmlType::F16, kv, &f16(&rng.vec((hs * n_kv * n_head_kv) as usize)));
    let op = Op::FlashAttnExt { scale: 0.088, max_bias: 0.0, softcap: 0.0, prec: 0 };
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        let m = 48i64;
        let a = upload(&be, ty, [hs * n_head, m, 1, 1], &weights(&mut rng, ty, hs * n_head, m));
        let run = |apart: bool| {
            let out = output(&be, [hs, n_head, 1, 1]);
            let row = Tensor::contiguous(out.buffer.clone(), 0, GgmlType::F32, [hs * n_head, 1, 1, 1]).unwrap();
            let (copy, p) = (output(&be, [hs * n_head, 1, 1, 1]), output(&be, [m, 1, 1, 1]));
            let mut g = Graph::new();
            g.push(node(op.clone(), &[&q, &k, &v], &out)).unwrap();
            if apart {
                // The product reads a copy (CPY writes no quantized copy), so it quantizes for itself.
                g.push(node(Op::Cpy, &[&row], &copy)).unwrap();
                g.mul_mat(&a, &copy, &p).unwrap();
            } else {
                g.mul_mat(&a, &row, &p).unwrap();
            }
            let stats = be.compute(&g).unwrap();
            (download(&out), download(&p), stats.dispatches)
        };
        let (o1, p1, fused) = run(false);
        let (o2, p2, apart) = run(true);
        assert_eq!(o1, o2, "{ty}: attention output");
        assert_eq!(p1, p2, "{ty}: product");
        let row = Tensor::contiguous(a.buffer.clone(), 0, GgmlType::F32, [hs * n_head, 1, 1, 1]).unwrap();
        let quantizes = ggvk::ops::matmul::uses_int_dot(be.device(), &a, &row);
        let fa_node = node(op.clone(), &[&q, &k, &v], &output(&be, [hs, n_head, 1, 1]));
        let emits = ggvk::graph::fusion::quantize_enabled()
            && quantizes
            && ggvk::ops::flash_attn::reduce_emits(be.device(), &fa_node);
        assert_eq!(apart, 2 + 1 + u32::from(quantizes) + 1, "{ty}: apart");
        assert_eq!(fused, 2 + u32::from(quantizes && !emits) + 1, "{ty}: emitting");
        if be.device().caps().subgroup_arithmetic {
            assert!(emits == (quantizes && ggvk::graph::fusion::quantize_enabled()), "{ty}: the reduction emits");
        }
    }
    assert_no_validation_errors();
}

#[test]
fn prompt_attention_writes_the_f16_activations_of_the_output_product() {
    // A prompt's attention (128 queries under a causal mask, 4 heads of 128, F16 K/V) and the output product reading
    // its heads as one row of 512 per query: where the attention runs on the NV_cooperative_matrix2 prompt kernel
    // and the product reads an f16 copy of its activations, the attention writes that copy too and the product
    // makes none. Bytes as the nodes apart, where a CPY keeps the product from the attention's copy.
    let be = backend();
    let mut rng = Rng::new(31);
    let (hs, n_head, n_q, n_kv) = (128i64, 4i64, 128i64, 256i64);
    let f16 =
        |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| half::f16::from_f32(*x).to_bits().to_le_bytes()).collect() };
    let q = upload(&be, GgmlType::F32, [hs, n_q, n_head, 1], &f32_bytes(&rng.vec((hs * n_q * n_head) as usize)));
    let kv = [hs, n_kv, n_head, 1];
    let k = upload(&be, GgmlType::F16, kv, &f16(&rng.vec((hs * n_kv * n_head) as usize)));
    let v = upload(&be, GgmlType::F16, kv, &f16(&rng.vec((hs * n_kv * n_head) as usize)));
    let causal: Vec<f32> = (0..n_q)
        .flat_map(|i| (0..n_kv).map(move |j| if j <= i + n_kv - n_q { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    let mask = upload(&be, GgmlType::F16, [n_kv, n_q, 1, 1], &f16(&causal));
    let op = Op::FlashAttnExt { scale: 0.088, max_bias: 0.0, softcap: 0.0, prec: 0 };
    let m = 96i64;
    let a = upload(&be, GgmlType::F16, [hs * n_head, m, 1, 1], &weights(&mut rng, GgmlType::F16, hs * n_head, m));
    let run = |apart: bool| {
        let out = output(&be, [hs, n_head, n_q, 1]);
        let rows = Tensor::contiguous(out.buffer.clone(), 0, GgmlType::F32, [hs * n_head, n_q, 1, 1]).unwrap();
        let (copy, p) = (output(&be, [hs * n_head, n_q, 1, 1]), output(&be, [m, n_q, 1, 1]));
        let mut g = Graph::new();
        g.push(node(op.clone(), &[&q, &k, &v, &mask], &out)).unwrap();
        if apart {
            g.push(node(Op::Cpy, &[&rows], &copy)).unwrap();
            g.mul_mat(&a, &copy, &p).unwrap();
        } else {
            g.mul_mat(&a, &rows, &p).unwrap();
        }
        let stats = be.compute(&g).unwrap();
        (download(&out), download(&p), stats.dispatches)
    };
    let (o1, p1, fused) = run(false);
    let (o2, p2, apart) = run(true);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&o1), bits(&o2), "attention output");
    assert_eq!(bits(&p1), bits(&p2), "product");
    let narrows = ggvk::ops::matmul::reads_f16_copy(be.device(), &a, &output(&be, [hs * n_head, n_q, 1, 1]));
    let fa_node = node(op.clone(), &[&q, &k, &v, &mask], &output(&be, [hs, n_head, n_q, 1]));
    let emits = ggvk::graph::fusion::quantize_enabled()
        && narrows
        && ggvk::ops::flash_attn::prompt_emits_f16(be.device(), &fa_node);
    // Apart: the CPY, and the product's own copy where it reads one (the fused graph's too where nothing emits).
    assert_eq!(apart, fused + 1 + u32::from(emits), "dispatches: fused {fused}, apart {apart}");
    assert_no_validation_errors();
}

#[test]
fn token_products_rotate_and_store_their_rows_as_the_separate_nodes_do() {
    use ggvk::ops::rope::{RopeParams, ROPE_MODE_NORMAL};
    let be = backend();
    let mut rng = Rng::new(23);
    let (k, hd, heads, rows) = (256i64, 64i64, 4i64, 8i64);
    let m = hd * heads;
    let types =
        [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::F32];
    for (case, ty) in types.into_iter().enumerate() {
        // Variations: YaRN and a partial rotation with frequency factors, I64 indices, a transposed V cache
        // (one value per cache row, as llama.cpp stores V without flash attention). F16 and F32 weights take the
        // float kernel's epilogue.
        let params = match case % 3 {
            0 => RopeParams { n_dims: hd as i32, mode: ROPE_MODE_NORMAL, ..RopeParams::default() },
            1 => RopeParams {
                n_dims: hd as i32 / 2,
                mode: ROPE_MODE_NORMAL,
                n_ctx_orig: 4096,
                freq_scale: 0.5,
                ext_factor: 1.0,
                attn_factor: 0.9,
                ..RopeParams::default()
            },
            _ => RopeParams { n_dims: hd as i32, mode: ROPE_MODE_NORMAL, freq_base: 500000.0, ..RopeParams::default() },
        };
        let with_ff = case % 3 == 1;
        let idx_ty = if case % 2 == 0 { GgmlType::I32 } else { GgmlType::I64 };
        let v_transposed = case % 3 == 2;
        let w: Vec<Tensor> = (0..3).map(|_| upload(&be, ty, [k, m, 1, 1], &weights(&mut rng, ty, k, m))).collect();
        let x_bytes = f32_bytes(&rng.vec(k as usize));
        let x = upload(&be, GgmlType::F32, [k, 1, 1, 1], &x_bytes);
        // K's rope written over the activations (k == m here) in every other case.
        let over_x = case % 2 == 1;
        let what = format!("{ty}, case {case}, K rope over x {over_x}");
        let pos = upload(&be, GgmlType::I32, [1, 1, 1, 1], &37i32.to_ne_bytes());
        let ff = upload(
            &be,
            GgmlType::F32,
            [hd / 2, 1, 1, 1],
            &f32_bytes(&(0..hd / 2).map(|i| 1.0 + i as f32 * 0.25).collect::<Vec<_>>()),
        );
        let index = |vals: &[i64]| upload(&be, idx_ty, [vals.len() as i64, 1, 1, 1], &index_bytes(idx_ty, vals));
        let k_idx = index(&[5]);
        let v_idx = if v_transposed { index(&(0..m).map(|r| r * rows + 5).collect::<Vec<_>>()) } else { index(&[5]) };
        let k_fill = rng.vec((m * rows) as usize);
        let v_fill = rng.vec((m * rows) as usize);
        let f16_bytes =
            |v: &[f32]| v.iter().flat_map(|x| half::f16::from_f32(*x).to_bits().to_le_bytes()).collect::<Vec<u8>>();
        let norm_w = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
        // `normed`: the activations come from an RMS_NORM+MUL first (a token's layer input: fused, it writes the
        // 8-bit copy the integer-dot products read).
        let run = |apart: bool, normed: bool| {
            let (qt, kt, vt) = (output(&be, [m, 1, 1, 1]), output(&be, [m, 1, 1, 1]), output(&be, [m, 1, 1, 1]));
            let x_in = upload(&be, GgmlType::F32, [k, 1, 1, 1], &x_bytes);
            let x = if normed { output(&be, [k, 1, 1, 1]) } else { x_in.clone() };
            let qr = output(&be, [hd, heads, 1, 1]);
            let kr = if over_x {
                Tensor::contiguous(x.buffer.clone(), x.offset, GgmlType::F32, [hd, heads, 1, 1]).unwrap()
            } else {
                output(&be, [hd, heads, 1, 1])
            };
            let k_cache = upload(&be, GgmlType::F16, [m, rows, 1, 1], &f16_bytes(&k_fill));
            let v_cache = if v_transposed {
                upload(&be, GgmlType::F16, [1, m * rows, 1, 1], &f16_bytes(&v_fill))
            } else {
                upload(&be, GgmlType::F16, [m, rows, 1, 1], &f16_bytes(&v_fill))
            };
            let heads_of =
                |t: &Tensor| Tensor::contiguous(t.buffer.clone(), t.offset, GgmlType::F32, [hd, heads, 1, 1]).unwrap();
            let row_of =
                |t: &Tensor| Tensor::contiguous(t.buffer.clone(), t.offset, GgmlType::F32, [m, 1, 1, 1]).unwrap();
            let v_rows = if v_transposed {
                Tensor::contiguous(vt.buffer.clone(), vt.offset, GgmlType::F32, [1, m, 1, 1]).unwrap()
            } else {
                row_of(&vt)
            };
            let rope_src = |t: &Tensor| {
                if with_ff {
                    vec![heads_of(t), pos.clone(), ff.clone()]
                } else {
                    vec![heads_of(t), pos.clone()]
                }
            };
            // ggml's order: Q, its rope, K and V (either order), K's rope, the cache writes. With V first, K's rope
            // may take the activations' bytes (ggml's allocator reuses them once the last product read them).
            let q_nodes = [
                Node { op: Op::MulMat, src: vec![Some(w[0].clone()), Some(x.clone())], dst: qt.clone() },
                Node { op: Op::Rope(params), src: rope_src(&qt).into_iter().map(Some).collect(), dst: qr.clone() },
            ];
            let k_node = Node { op: Op::MulMat, src: vec![Some(w[1].clone()), Some(x.clone())], dst: kt.clone() };
            let v_node = Node { op: Op::MulMat, src: vec![Some(w[2].clone()), Some(x.clone())], dst: vt.clone() };
            let mut nodes = Vec::new();
            if normed {
                let xn = output(&be, [k, 1, 1, 1]);
                nodes.push(node(Op::RmsNorm { eps: 1e-6 }, &[&x_in], &xn));
                nodes.push(node(Op::Mul, &[&xn, &norm_w], &x));
            }
            nodes.extend(q_nodes);
            if over_x {
                nodes.extend([v_node, k_node]);
            } else {
                nodes.extend([k_node, v_node]);
            }
            nodes.push(Node {
                op: Op::Rope(params),
                src: rope_src(&kt).into_iter().map(Some).collect(),
                dst: kr.clone(),
            });
            nodes.push(node(Op::SetRows, &[&row_of(&kr), &k_idx], &k_cache));
            nodes.push(node(Op::SetRows, &[&v_rows, &v_idx], &v_cache));
            let mut dispatches = 0;
            if apart {
                for n in nodes {
                    let mut g = Graph::new();
                    g.push(n).unwrap();
                    dispatches += be.compute(&g).unwrap().dispatches;
                }
            } else {
                let mut g = Graph::new();
                nodes.into_iter().for_each(|n| g.push(n).unwrap());
                dispatches = be.compute(&g).unwrap().dispatches;
            }
            ([&qt, &qr, &kt, &kr, &vt, &k_cache, &v_cache].map(raw), dispatches)
        };
        let (fused, fused_dispatches) = run(false, false);
        let (apart, _) = run(true, false);
        let (fused_normed, normed_dispatches) = run(false, true);
        let (apart_normed, _) = run(true, true);
        for (i, name) in
            ["Q product", "Q rope", "K product", "K rope", "V product", "K cache", "V cache"].iter().enumerate()
        {
            assert_eq!(fused[i], apart[i], "{what}: {name}");
            assert_eq!(fused_normed[i], apart_normed[i], "{what}: {name} after the norm");
        }
        assert_ne!(fused[5], f16_bytes(&k_fill), "{what}: the K cache was written");
        assert_ne!(fused[6], f16_bytes(&v_fill), "{what}: the V cache was written");
        // The three products alone: where the epilogue runs, the ropes and sets add no dispatch.
        let mut g = Graph::new();
        for (i, t) in (0..3).map(|i| (i, output(&be, [m, 1, 1, 1]))) {
            g.mul_mat(&w[i], &x, &t).unwrap();
        }
        let products = be.compute(&g).unwrap().dispatches;
        let subgroups = be.device().caps().subgroup_arithmetic
            && std::env::var("GGVK_SHARED_REDUCTION").ok().as_deref() != Some("1");
        // The integer-dot kernels and the F16 / F32 kernel take the epilogue.
        let int_dot =
            ggvk::ops::matmul::uses_int_dot(be.device(), &w[0], &x) || matches!(ty, GgmlType::F16 | GgmlType::F32);
        let float = matches!(ty, GgmlType::F16 | GgmlType::F32);
        if ggvk::graph::fusion::mat_vec_rope_enabled() && subgroups && int_dot {
            // A float kernel leaves a rope over its activations to the rope kernel (with its cache write).
            let apart = u32::from(float && over_x);
            assert_eq!(fused_dispatches, products + apart, "{what}: dispatches");
            // After the norm, the integer-dot products read the 8-bit copy it writes: no quantization of their own.
            if !float && emission_on(&be, &w[0], &x) {
                assert_eq!(normed_dispatches, 4, "{what}: the norm and three products");
            }
        } else {
            // Each product once, the ropes and sets apart (K's rope and set as one where that fuses).
            let rope_set = u32::from(!ggvk::graph::fusion::rope_set_rows_enabled());
            assert_eq!(fused_dispatches, products + 3 + rope_set, "{what}: dispatches");
        }
    }
    assert_no_validation_errors();
}

#[test]
fn a_node_touching_a_later_member_keeps_the_group_apart() {
    use ggvk::graph::fusion::plan_groups;
    use ggvk::ops::rope::{RopeParams, ROPE_MODE_NORMAL};
    let be = backend();
    let mut rng = Rng::new(31);
    let (k, hd, heads) = (256i64, 64i64, 4i64);
    let m = hd * heads;
    let w = upload(&be, GgmlType::Q4_0, [k, m, 1, 1], &weights(&mut rng, GgmlType::Q4_0, k, m));
    let x = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&rng.vec(k as usize)));
    let pos = upload(&be, GgmlType::I32, [1, 1, 1, 1], &5i32.to_ne_bytes());
    let params = RopeParams { n_dims: hd as i32, mode: ROPE_MODE_NORMAL, ..RopeParams::default() };
    let t = output(&be, [m, 1, 1, 1]);
    let r = output(&be, [hd, heads, 1, 1]);
    let heads_of_t = Tensor::contiguous(t.buffer.clone(), t.offset, GgmlType::F32, [hd, heads, 1, 1]).unwrap();
    let product = Node { op: Op::MulMat, src: vec![Some(w.clone()), Some(x.clone())], dst: t.clone() };
    let rope = node(Op::Rope(params), &[&heads_of_t, &pos], &r);
    let other = output(&be, [4, 1, 1, 1]);
    let four = output(&be, [4, 1, 1, 1]);
    let on = ggvk::graph::fusion::mat_vec_rope_enabled();
    // Between them: an unrelated node (pulled past), one that reads the rope's output before the rope writes it,
    // and one that writes the rope's positions.
    let unrelated = node(Op::Scale { s: 2.0, b: 0.0 }, &[&four], &other);
    let reads_output = node(Op::Scale { s: 2.0, b: 0.0 }, &[&r], &other);
    let pos_f32 = Tensor::contiguous(pos.buffer.clone(), pos.offset, GgmlType::F32, [1, 1, 1, 1]).unwrap();
    let writes_positions = node(Op::Scale { s: 1.0, b: 0.0 }, &[&pos_f32], &pos_f32);
    for (between, fuses) in [(unrelated, true), (reads_output, false), (writes_positions, false)] {
        let nodes = [product.clone(), between.clone(), rope.clone()];
        let groups = plan_groups(&nodes);
        assert_eq!(groups[0].is_some(), on && fuses, "{:?} between", between.op);
        assert!(groups[1].is_none() && groups[2].is_none());
    }
    // A SET_ROWS that something between the rope and it reads keeps to itself; the rope still joins the product.
    let cache = upload(&be, GgmlType::F16, [m, 4, 1, 1], &vec![0u8; (m * 4 * 2) as usize]);
    let idx = upload(&be, GgmlType::I32, [1, 1, 1, 1], &1i32.to_ne_bytes());
    let rows_of_r = Tensor::contiguous(r.buffer.clone(), r.offset, GgmlType::F32, [m, 1, 1, 1]).unwrap();
    let set = node(Op::SetRows, &[&rows_of_r, &idx], &cache);
    let cache_f16_row = Tensor::contiguous(cache.buffer.clone(), cache.offset, GgmlType::F16, [m, 1, 1, 1]).unwrap();
    let reads_cache = node(Op::Scale { s: 1.0, b: 0.0 }, &[&cache_f16_row], &other);
    let nodes = [product.clone(), rope.clone(), reads_cache, set];
    if let Some(g) = plan_groups(&nodes)[0] {
        assert_eq!((g.rope, g.set), (Some(1), None));
    } else {
        assert!(!on, "the product and its rope group");
    }
}

/// Attention without flash attention: SOFT_MAX of the scores (with a mask), then the product of V (f16, a view of
/// a cache laid out as llama.cpp's transposed V) and the probabilities. Where that product reads an f16 copy of
/// the probabilities (cooperative matrices), the softmax writes it; the bytes of both outputs equal the same nodes
/// with a copy between them (the product then reads the copy's f16 conversion), and the softmax's f16 copy saves
/// the product's conversion dispatch.
#[test]
fn softmax_writes_the_f16_probabilities_its_product_reads() {
    let be = backend();
    let mut rng = Rng::new(31);
    for (n_kv, n_q, heads, hd) in [(256i64, 64i64, 4i64, 64i64), (512, 48, 2, 128), (96, 200, 3, 64)] {
        let what = format!("{n_kv} keys, {n_q} queries, {heads} heads of {hd}");
        let s_ne = [n_kv, n_q, heads, 1];
        let scores = upload(&be, GgmlType::F32, s_ne, &f32_bytes(&rng.vec((n_kv * n_q * heads) as usize)));
        // A causal-style mask: -inf past each query's diagonal (every row keeps its first key).
        let mask: Vec<f32> = (0..n_q)
            .flat_map(|q| (0..n_kv).map(move |k| if k > (q + n_kv - n_q).max(0) { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let m = upload(&be, GgmlType::F32, [n_kv, n_q, 1, 1], &f32_bytes(&mask));
        // V cache transposed: per head hd rows of n_kv values, heads one after another.
        let v_vals = rng.vec((n_kv * hd * heads) as usize);
        let v = upload(&be, GgmlType::F16, [n_kv, hd, heads, 1], &to_type(GgmlType::F16, &v_vals));
        let sm = Op::SoftMax { scale: 0.125, max_bias: 0.0 };
        let o_ne = [hd, n_q, heads, 1];
        let (p1, o1) = (output(&be, s_ne), output(&be, o_ne));
        let (p2, c2, o2) = (output(&be, s_ne), output(&be, s_ne), output(&be, o_ne));
        let mut g = Graph::new();
        g.push(node(sm.clone(), &[&scores, &m], &p1)).unwrap();
        g.mul_mat(&v, &p1, &o1).unwrap();
        let fused = be.compute(&g).unwrap();
        // Apart: the product reads a copy of the probabilities.
        let mut h = Graph::new();
        h.push(node(sm, &[&scores, &m], &p2)).unwrap();
        h.push(node(Op::Cpy, &[&p2], &c2)).unwrap();
        h.mul_mat(&v, &c2, &o2).unwrap();
        let apart = be.compute(&h).unwrap();
        assert_eq!(download(&p1), download(&p2), "{what}: probabilities");
        assert_eq!(download(&o1), download(&o2), "{what}: product");
        let narrows = u32::from(ggvk::ops::coopmat::reads_f16_b(be.device(), &v, &p1));
        let emits = ggvk::graph::fusion::quantize_enabled() && ggvk::ops::matmul::reads_f16_copy(be.device(), &v, &p1);
        assert_eq!(apart.dispatches, 3 + narrows, "{what}: apart");
        assert_eq!(fused.dispatches, 2 + narrows * u32::from(!emits), "{what}: fused");
        // And the probabilities are a softmax: each row sums to 1.
        for row in download(&p1).chunks(n_kv as usize) {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-4, "{what}: a row sums to {s}");
        }
    }
    assert_no_validation_errors();
}

/// A transposed V cache's write (llama.cpp without flash attention: SET_ROWS of one-value rows, each value of the V
/// product into the cell of its channel and token) learns the product's row length from the graph and moves in
/// tiles; its bytes equal the same write without the product in the graph (one value per invocation), and the
/// rule `cache[idx[i]] = convert(v[i])` with out-of-range indices writing nothing.
#[test]
fn transposed_v_cache_write_after_its_product_moves_in_tiles() {
    use ggvk::graph::fusion::rows_period;
    let be = backend();
    let mut rng = Rng::new(37);
    // (channels, tokens, cache cells, cache type, index type): tiles whole and cut at both edges.
    let cases = [
        (256i64, 64i64, 96i64, GgmlType::F16, GgmlType::I64),
        (100, 70, 80, GgmlType::F32, GgmlType::I32),
        (64, 33, 40, GgmlType::BF16, GgmlType::I64),
    ];
    for (ch, tok, kv, cache_ty, idx_ty) in cases {
        let what = format!("{ch} channels x {tok} tokens into {kv} {cache_ty} cells, {idx_ty} indices");
        let n = (ch * tok) as usize;
        let vals = rng.vec(n);
        // Token t goes to cell (7 t + 3) % kv, except the last token (out of range) and the one before (negative).
        let idx: Vec<i64> = (0..tok)
            .flat_map(|t| {
                (0..ch).map(move |c| match t {
                    _ if t == tok - 1 => ch * kv + 5 + c,
                    _ if t == tok - 2 => -1 - c,
                    _ => c * kv + (7 * t + 3) % kv,
                })
            })
            .collect();
        let idx_t = upload(&be, idx_ty, [ch * tok, 1, 1, 1], &index_bytes(idx_ty, &idx));
        let fill: Vec<u8> = (0..ch * kv * cache_ty.type_size() as i64).map(|b| (b * 13 % 251) as u8).collect();
        let run = |with_product: bool| {
            let src = upload(&be, GgmlType::F32, [ch, tok, 1, 1], &f32_bytes(&vals));
            let v = output(&be, [ch, tok, 1, 1]);
            let cache = upload(&be, cache_ty, [1, ch * kv, 1, 1], &fill);
            let mut g = Graph::new();
            let rows_of =
                |t: &Tensor| Tensor::contiguous(t.buffer.clone(), t.offset, GgmlType::F32, [1, ch * tok, 1, 1]);
            if with_product {
                g.push(node(Op::Cpy, &[&src], &v)).unwrap();
                g.push(node(Op::SetRows, &[&rows_of(&v).unwrap(), &idx_t], &cache)).unwrap();
            } else {
                g.push(node(Op::SetRows, &[&rows_of(&src).unwrap(), &idx_t], &cache)).unwrap();
            }
            let order: Vec<usize> = (0..g.nodes().len()).collect();
            let period = rows_period(g.nodes(), &order, order.len() - 1);
            be.compute(&g).unwrap();
            let mut out = vec![0u8; cache.nbytes() as usize];
            cache.read(0, &mut out).unwrap();
            (out, period)
        };
        let (tiled, p1) = run(true);
        let (plain, p0) = run(false);
        assert_eq!(p1, Some(ch as u32), "{what}: the period the product gives");
        assert_eq!(p0, None, "{what}: no product, no period");
        assert_eq!(tiled, plain, "{what}: bytes");
        // And the rule itself, where it is simple to state on the host.
        let size = cache_ty.type_size();
        let mut want = fill.clone();
        for (i, &at) in idx.iter().enumerate() {
            if (0..ch * kv).contains(&at) {
                let bytes = match cache_ty {
                    GgmlType::F16 => half::f16::from_f32(vals[i]).to_bits().to_ne_bytes().to_vec(),
                    GgmlType::F32 => vals[i].to_ne_bytes().to_vec(),
                    _ => tiled[at as usize * size..(at as usize + 1) * size].to_vec(),
                };
                want[at as usize * size..(at as usize + 1) * size].copy_from_slice(&bytes);
            }
        }
        assert_eq!(tiled, want, "{what}: cache");
        assert_ne!(tiled, fill, "{what}: the cache was written");
    }
    assert_no_validation_errors();
}
