//! SOLVE_TRI, LIGHTNING_INDEXER and the DeepSeek-V4 hyper-connection ops (DSV4_HC_PRE, DSV4_HC_POST,
//! DSV4_HC_COMB) against CPU references written from ggml's CPU semantics (sums in its order, products added as
//! fused multiply-adds as its build compiles them), on the default Vulkan device (lavapipe in CI), validation on.

mod common;

use common::*;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Node, Op, Tensor};
use half::f16;

fn f32s(be: &Backend, ne: [i64; 4], v: &[f32]) -> Tensor {
    upload(be, GgmlType::F32, ne, &f32_bytes(v))
}

fn n(ne: [i64; 4]) -> usize {
    ne.iter().product::<i64>() as usize
}

/// `got` equals `want` within `tol` relative to max(|want|, 1); infinities must match exactly.
fn assert_close_inf(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() {
            assert_eq!(g, w, "{what}: element {i}");
        } else {
            assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}: element {i}: got {g}, want {w}");
        }
    }
}

/// A view of `ne` whose rows are `pad` elements longer than needed (f32), holding `vals` in logical order.
fn padded_rows(be: &Backend, ne: [i64; 4], pad: i64, vals: &[f32]) -> Tensor {
    let row = ne[0] + pad;
    let nb = [4, 4 * row as u64, 4 * (row * ne[1]) as u64, 4 * (row * ne[1] * ne[2]) as u64];
    let mut data = vec![f32::NAN; (row * ne[1] * ne[2] * ne[3]) as usize];
    for r in 0..(ne[1] * ne[2] * ne[3]) as usize {
        let k = ne[0] as usize;
        data[r * row as usize..][..k].copy_from_slice(&vals[r * k..][..k]);
    }
    let buf = be.alloc(data.len() as u64 * 4).unwrap();
    buf.write(0, &f32_bytes(&data)).unwrap();
    Tensor::new(buf, 0, GgmlType::F32, ne, nb).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// SOLVE_TRI

/// ggml's CPU loop: X[i] = (B[i] - sum_t A[i, t] X[t]) / A[i, i], the sum as a chain of fused multiply-adds.
fn ref_solve_tri(a: &[f32], b: &[f32], nn: usize, k: usize, batches: usize) -> Vec<f32> {
    let mut x = vec![0f32; b.len()];
    for bt in 0..batches {
        let (ab, bb) = (bt * nn * nn, bt * nn * k);
        for col in 0..k {
            for i in 0..nn {
                let mut sum = 0f32;
                for t in 0..i {
                    sum = a[ab + i * nn + t].mul_add(x[bb + t * k + col], sum);
                }
                x[bb + i * k + col] = (b[bb + i * k + col] - sum) / a[ab + i * nn + i];
            }
        }
    }
    x
}

#[test]
fn solve_tri_matches_forward_substitution() {
    let be = backend();
    let mut rng = Rng::new(71);
    // (n, k, ne2, ne3): the suite's first shape, one element, square, and rows enough for several dispatches.
    for (nn, k, ne2, ne3) in [(10i64, 3i64, 4i64, 3i64), (1, 1, 1, 1), (64, 64, 2, 2), (17, 9, 2, 4), (300, 5, 1, 2)] {
        let ane = [nn, nn, ne2, ne3];
        let bne = [k, nn, ne2, ne3];
        // A: a diagonal of 1..2 and small entries below it (well conditioned); NaN above, which must not be read.
        let mut av = vec![0f32; n(ane)];
        for bt in 0..(ne2 * ne3) as usize {
            for i in 0..nn as usize {
                for t in 0..nn as usize {
                    av[bt * (nn * nn) as usize + i * nn as usize + t] = match t.cmp(&i) {
                        std::cmp::Ordering::Less => rng.f32() / nn as f32,
                        std::cmp::Ordering::Equal => 1.5 + 0.5 * rng.f32(),
                        std::cmp::Ordering::Greater => f32::NAN,
                    };
                }
            }
        }
        let bv = rng.vec(n(bne));
        let (a, b) = (f32s(&be, ane, &av), f32s(&be, bne, &bv));
        let x = output(&be, bne);
        run(&be, Op::SolveTri, &[&a, &b], &x);
        let want = ref_solve_tri(&av, &bv, nn as usize, k as usize, (ne2 * ne3) as usize);
        assert_close(&format!("solve_tri n {nn} k {k}"), &download(&x), &want, 1e-5);

        // B and X with padded rows give the same values.
        if nn > 1 {
            let bp = padded_rows(&be, bne, 3, &bv);
            let xp = padded_rows(&be, bne, 2, &vec![0.0; n(bne)]);
            run(&be, Op::SolveTri, &[&a, &bp], &xp);
            let mut raw = vec![0u8; xp.nbytes() as usize];
            xp.read(0, &mut raw).unwrap();
            let all = bytes_f32(&raw);
            let got: Vec<f32> = all.chunks(k as usize + 2).flat_map(|r| r[..k as usize].to_vec()).collect();
            assert_close("solve_tri padded", &got[..want.len()], &want, 1e-5);
        }
    }
    // Shapes that do not fit, and F16, are declined.
    let a = f32s(&be, [4, 4, 1, 1], &[1.0; 16]);
    let b = f32s(&be, [2, 3, 1, 1], &[1.0; 6]);
    assert!(refused(Op::SolveTri, &[&a, &b], &output(&be, [2, 3, 1, 1])));
    let b4 = f32s(&be, [2, 4, 1, 1], &[1.0; 8]);
    assert!(refused(Op::SolveTri, &[&a, &b4], &output(&be, [2, 4, 2, 1])));
    let a16 = upload(&be, GgmlType::F16, [4, 4, 1, 1], &[0u8; 32]);
    assert!(refused(Op::SolveTri, &[&a16, &b4], &output(&be, [2, 4, 1, 1])));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// LIGHTNING_INDEXER

struct Indexer {
    d: i64,
    nh: i64,
    kv: i64,
    nt: i64,
    ns: i64,
    nm: i64,
    ty: GgmlType,
}

fn indexer_case(be: &Backend, rng: &mut Rng, c: &Indexer) {
    let qne = [c.d, c.nh, c.nt, c.ns];
    let kne = [c.d, 1, c.kv, c.ns];
    let wne = [c.nh, c.nt, 1, c.ns];
    let mne = [c.kv, c.nt, 1, c.nm];
    let dne = [c.kv, c.nt, 1, c.ns];
    let qv = rng.vec(n(qne));
    let kv = rng.vec(n(kne));
    let wv: Vec<f32> = rng.vec(n(wne)).iter().map(|x| x * 0.1).collect();
    // Mask: mostly 0, some -inf, some small values.
    let mv: Vec<f16> = (0..n(mne))
        .map(|_| match rng.below(8) {
            0 => f16::NEG_INFINITY,
            1 => f16::from_f32(rng.f32()),
            _ => f16::ZERO,
        })
        .collect();
    let kb = to_type(c.ty, &kv);
    let kd = quant::dequantize_to_f32(c.ty, &kb, kv.len()).unwrap();
    let q = f32s(be, qne, &qv);
    let k = upload(be, c.ty, kne, &kb);
    let w = f32s(be, wne, &wv);
    let m = upload(be, GgmlType::F16, mne, &mv.iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<u8>>());
    let out = output(be, dne);
    run(be, Op::LightningIndexer, &[&q, &k, &w, &m], &out);

    let d = c.d as usize;
    let mut want = vec![0f32; n(dne)];
    for s in 0..c.ns as usize {
        for t in 0..c.nt as usize {
            for key in 0..c.kv as usize {
                let krow = &kd[(s * c.kv as usize + key) * d..][..d];
                let mut score = 0f32;
                for h in 0..c.nh as usize {
                    let qrow = &qv[((s * c.nt as usize + t) * c.nh as usize + h) * d..][..d];
                    let dot = qrow.iter().zip(krow).fold(0f32, |acc, (a, b)| a.mul_add(*b, acc));
                    score = dot.max(0.0).mul_add(wv[(s * c.nt as usize + t) * c.nh as usize + h], score);
                }
                let mask = mv[((s % c.nm as usize) * c.nt as usize + t) * c.kv as usize + key].to_f32();
                want[(s * c.nt as usize + t) * c.kv as usize + key] = score + mask;
            }
        }
    }
    let what = format!("lightning_indexer {} d {} nh {} kv {} nt {} ns {}/{}", c.ty, c.d, c.nh, c.kv, c.nt, c.ns, c.nm);
    assert_close_inf(&what, &download(&out), &want, 1e-5);
}

#[test]
fn lightning_indexer_every_k_type() {
    let be = backend();
    let mut rng = Rng::new(72);
    use GgmlType::*;
    for ty in [F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL] {
        // Partial key and token tiles (the prompt kernel from 9 tokens on, the decode kernel below), streams with
        // a shared and a per-stream mask.
        indexer_case(&be, &mut rng, &Indexer { d: 128, nh: 5, kv: 37, nt: 35, ns: 2, nm: 1, ty });
        indexer_case(&be, &mut rng, &Indexer { d: 64, nh: 3, kv: 65, nt: 1, ns: 2, nm: 2, ty });
        indexer_case(&be, &mut rng, &Indexer { d: 128, nh: 4, kv: 40, nt: 5, ns: 1, nm: 1, ty });
    }
    // Head sizes that are not a multiple of 32 (zero-padded in the prompt kernel) or of 8 (the decode kernel's
    // slices).
    indexer_case(&be, &mut rng, &Indexer { d: 40, nh: 2, kv: 9, nt: 33, ns: 1, nm: 1, ty: F16 });
    indexer_case(&be, &mut rng, &Indexer { d: 36, nh: 2, kv: 9, nt: 3, ns: 1, nm: 1, ty: F32 });
    // More heads than one dispatch takes (both kernels): partial sums carried through dst.
    indexer_case(&be, &mut rng, &Indexer { d: 128, nh: 150, kv: 33, nt: 9, ns: 1, nm: 1, ty: Q8_0 });
    indexer_case(&be, &mut rng, &Indexer { d: 128, nh: 400, kv: 33, nt: 2, ns: 1, nm: 1, ty: Q4_1 });
    assert_no_validation_errors();
}

#[test]
fn lightning_indexer_views_and_declines() {
    let be = backend();
    let mut rng = Rng::new(73);
    let (d, nh, kv) = (64i64, 4i64, 20i64);
    // 5 tokens take the decode kernel, 12 the prompt kernel.
    for nt in [5i64, 12] {
        let qv = rng.vec((d * nh * nt) as usize);
        let kv_vals = rng.vec((d * kv) as usize);
        let wv = rng.vec((nh * nt) as usize);
        // q with padded rows, K rows 2 values apart beyond their length.
        let q = padded_rows(&be, [d, nh, nt, 1], 4, &qv);
        let k = padded_rows(&be, [d, 1, kv, 1], 2, &kv_vals);
        let w = f32s(&be, [nh, nt, 1, 1], &wv);
        let m = upload(&be, GgmlType::F16, [kv, nt, 1, 1], &vec![0u8; (kv * nt * 2) as usize]);
        let out = output(&be, [kv, nt, 1, 1]);
        run(&be, Op::LightningIndexer, &[&q, &k, &w, &m], &out);
        let mut want = vec![0f32; (kv * nt) as usize];
        for t in 0..nt as usize {
            for key in 0..kv as usize {
                let mut score = 0f32;
                for h in 0..nh as usize {
                    let qrow = &qv[(t * nh as usize + h) * d as usize..][..d as usize];
                    let krow = &kv_vals[key * d as usize..][..d as usize];
                    let dot = qrow.iter().zip(krow).fold(0f32, |acc, (a, b)| a.mul_add(*b, acc));
                    score = dot.max(0.0).mul_add(wv[t * nh as usize + h], score);
                }
                want[t * kv as usize + key] = score;
            }
        }
        assert_close(&format!("lightning_indexer views, {nt} tokens"), &download(&out), &want, 1e-5);
    }

    let nt = 5i64;
    let q = f32s(&be, [d, nh, nt, 1], &vec![0.0; (d * nh * nt) as usize]);
    let k = f32s(&be, [d, 1, kv, 1], &vec![0.0; (d * kv) as usize]);
    let w = f32s(&be, [nh, nt, 1, 1], &vec![0.0; (nh * nt) as usize]);
    let m = upload(&be, GgmlType::F16, [kv, nt, 1, 1], &vec![0u8; (kv * nt * 2) as usize]);
    let out = output(&be, [kv, nt, 1, 1]);
    let kv_vals = vec![0.0; (d * kv) as usize];
    // Declined: an F32 mask, K with two heads, a K-quant K, a mask batch that does not divide the streams.
    let m32 = f32s(&be, [kv, nt, 1, 1], &vec![0.0; (kv * nt) as usize]);
    assert!(refused(Op::LightningIndexer, &[&q, &k, &w, &m32], &out));
    let k2 = f32s(&be, [d, 2, kv / 2, 1], &kv_vals);
    assert!(refused(Op::LightningIndexer, &[&q, &k2, &w, &m], &output(&be, [kv / 2, nt, 1, 1])));
    let kq = upload(&be, GgmlType::Q4_K, [256, 1, kv, 1], &vec![0u8; 144 * kv as usize]);
    let q256 = f32s(&be, [256, nh, nt, 1], &vec![0.0; (256 * nh * nt) as usize]);
    assert!(refused(Op::LightningIndexer, &[&q256, &kq, &w, &m], &out));
    let q3 = f32s(&be, [d, nh, nt, 3], &vec![0.0; (d * nh * nt * 3) as usize]);
    let k3 = f32s(&be, [d, 1, kv, 3], &vec![0.0; (d * kv * 3) as usize]);
    let w3 = f32s(&be, [nh, nt, 1, 3], &vec![0.0; (nh * nt * 3) as usize]);
    let m2 = upload(&be, GgmlType::F16, [kv, nt, 1, 2], &vec![0u8; (kv * nt * 4) as usize]);
    assert!(refused(Op::LightningIndexer, &[&q3, &k3, &w3, &m2], &output(&be, [kv, nt, 1, 3])));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// DSV4_HC_PRE, DSV4_HC_POST, DSV4_HC_COMB

#[test]
fn dsv4_hc_pre_plain_and_gated() {
    let be = backend();
    let mut rng = Rng::new(74);
    for (n_embd, hc, nt) in [(31i64, 4i64, 17i64), (1, 1, 1), (128, 5, 3), (300, 65, 2)] {
        let xne = [n_embd, hc, nt, 1];
        let xv = rng.vec(n(xne));
        let x = f32s(&be, xne, &xv);
        for gated in [false, true] {
            let wne = if gated { xne } else { [hc, nt, 1, 1] };
            let wv: Vec<f32> = rng.vec(n(wne)).iter().map(|v| if gated { 4.0 * v } else { 0.5 + 0.5 * v }).collect();
            let w = f32s(&be, wne, &wv);
            let scale = if gated { 1.0 / hc as f32 } else { 1.0 };
            let out = output(&be, [n_embd, nt, 1, 1]);
            run(&be, Op::Dsv4HcPre { scale, gated }, &[&x, &w], &out);
            let mut want = vec![0f32; (n_embd * nt) as usize];
            for t in 0..nt as usize {
                for i in 0..n_embd as usize {
                    let mut sum = 0f32;
                    for h in 0..hc as usize {
                        let xi = (t * hc as usize + h) * n_embd as usize + i;
                        let wval = if gated { 1.0 / (1.0 + (-wv[xi]).exp()) } else { wv[t * hc as usize + h] };
                        sum = xv[xi].mul_add(wval, sum);
                    }
                    want[t * n_embd as usize + i] = scale * sum;
                }
            }
            assert_close(&format!("hc_pre {n_embd} {hc} {nt} gated {gated}"), &download(&out), &want, 1e-5);
        }
    }
    // Weights of the wrong shape are declined.
    let x = f32s(&be, [8, 4, 2, 1], &[0.0; 64]);
    let w = f32s(&be, [4, 3, 1, 1], &[0.0; 12]);
    assert!(refused(Op::Dsv4HcPre { scale: 1.0, gated: false }, &[&x, &w], &output(&be, [8, 2, 1, 1])));
    assert_no_validation_errors();
}

#[test]
fn dsv4_hc_post_with_and_without_comb() {
    let be = backend();
    let mut rng = Rng::new(75);
    for (n_embd, hc, nt) in [(31i64, 4i64, 17i64), (1, 4, 1), (130, 3, 5)] {
        let xv = rng.vec((n_embd * nt) as usize);
        let rv = rng.vec((n_embd * hc * nt) as usize);
        let pv = rng.vec((hc * nt) as usize);
        let cv = rng.vec((hc * hc * nt) as usize);
        let x = f32s(&be, [n_embd, nt, 1, 1], &xv);
        let r = f32s(&be, [n_embd, hc, nt, 1], &rv);
        let p = f32s(&be, [hc, nt, 1, 1], &pv);
        let c = f32s(&be, [hc, hc, nt, 1], &cv);
        for with_comb in [true, false] {
            let out = output(&be, [n_embd, hc, nt, 1]);
            let mut g = Graph::new();
            let src = vec![Some(x.clone()), Some(r.clone()), Some(p.clone()), with_comb.then(|| c.clone())];
            g.push(Node { op: Op::Dsv4HcPost, src, dst: out.clone() }).unwrap();
            be.compute(&g).unwrap();
            let (ne, h) = (n_embd as usize, hc as usize);
            let mut want = vec![0f32; ne * h * nt as usize];
            for t in 0..nt as usize {
                for dd in 0..h {
                    for i in 0..ne {
                        let xp = xv[t * ne + i] * pv[t * h + dd];
                        let v = if with_comb {
                            (0..h).fold(xp, |s, sr| rv[(t * h + sr) * ne + i].mul_add(cv[(t * h + sr) * h + dd], s))
                        } else {
                            xv[t * ne + i].mul_add(pv[t * h + dd], rv[(t * h + dd) * ne + i])
                        };
                        want[(t * h + dd) * ne + i] = v;
                    }
                }
            }
            assert_close(&format!("hc_post {n_embd} {hc} {nt} comb {with_comb}"), &download(&out), &want, 1e-5);
        }
    }
    assert_no_validation_errors();
}

/// ggml's CPU DSV4_HC_COMB for one token.
fn ref_hc_comb(mixes: &[f32], scale: f32, base: &[f32], eps: f32, n_iter: i32) -> [f32; 16] {
    let mut m = [0f32; 16];
    for j in 0..4 {
        let mut mx = f32::NEG_INFINITY;
        for i in 0..4 {
            let k = 8 + i + 4 * j;
            m[i + 4 * j] = mixes[k].mul_add(scale, base[k]);
            mx = mx.max(m[i + 4 * j]);
        }
        let mut s = 0f32;
        for i in 0..4 {
            m[i + 4 * j] = (m[i + 4 * j] - mx).exp();
            s += m[i + 4 * j];
        }
        let inv = 1.0 / s;
        for i in 0..4 {
            m[i + 4 * j] = m[i + 4 * j].mul_add(inv, eps);
        }
    }
    let norm_dst = |m: &mut [f32; 16]| {
        for i in 0..4 {
            let inv = 1.0 / (0..4).fold(eps, |s, j| s + m[i + 4 * j]);
            (0..4).for_each(|j| m[i + 4 * j] *= inv);
        }
    };
    let norm_src = |m: &mut [f32; 16]| {
        for j in 0..4 {
            let inv = 1.0 / (0..4).fold(eps, |s, i| s + m[i + 4 * j]);
            (0..4).for_each(|i| m[i + 4 * j] *= inv);
        }
    };
    norm_dst(&mut m);
    for _ in 1..n_iter {
        norm_src(&mut m);
        norm_dst(&mut m);
    }
    m
}

#[test]
fn dsv4_hc_comb_sinkhorn() {
    let be = backend();
    let mut rng = Rng::new(76);
    for (nt, n_iter) in [(1i64, 1i32), (17, 4), (300, 20)] {
        let mv: Vec<f32> = rng.vec((24 * nt) as usize).iter().map(|v| 2.0 * v).collect();
        let sv: Vec<f32> = rng.vec(3).iter().map(|v| 0.5 * v).collect();
        let bv: Vec<f32> = rng.vec(24).iter().map(|v| 0.25 * v).collect();
        let eps = 1e-6;
        let (m, s, b) = (f32s(&be, [24, nt, 1, 1], &mv), f32s(&be, [3, 1, 1, 1], &sv), f32s(&be, [24, 1, 1, 1], &bv));
        let out = output(&be, [4, 4, nt, 1]);
        run(&be, Op::Dsv4HcComb { eps, n_iter }, &[&m, &s, &b], &out);
        let want: Vec<f32> =
            (0..nt as usize).flat_map(|t| ref_hc_comb(&mv[t * 24..][..24], sv[2], &bv, eps, n_iter)).collect();
        assert_close(&format!("hc_comb {nt} tokens, {n_iter} rounds"), &download(&out), &want, 1e-5);
        assert!(refused(Op::Dsv4HcComb { eps, n_iter: 0 }, &[&m, &s, &b], &out));
    }
    // Five streams ((2 + 5) * 5 mixes) are declined: ggml's op has four.
    let m = f32s(&be, [35, 2, 1, 1], &[0.0; 70]);
    let (s, b) = (f32s(&be, [3, 1, 1, 1], &[0.0; 3]), f32s(&be, [35, 1, 1, 1], &[0.0; 35]));
    assert!(refused(Op::Dsv4HcComb { eps: 1e-6, n_iter: 1 }, &[&m, &s, &b], &output(&be, [5, 5, 2, 1])));
    assert_no_validation_errors();
}
