//! Matrix products beyond F32 activations, on the default Vulkan device (lavapipe in CI), validation on:
//! MUL_MAT with an F16 src1 (widened to an F32 copy first: the result must equal the F32-src1 product of the same
//! values bit for bit, every weight type, mat-vec and tiled, batches, permuted views, the fused ADD) and BF16 weights
//! whose rows are not a multiple of 4 values (the scalar BF16 kernels), against f64 references.

mod common;

use common::*;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Node, Op, Tensor};
use half::f16;

/// `n` values of `ty` as bytes: ggml's reference quantization of random values where ggvk has it, random blocks
/// otherwise.
fn random_typed(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let vals: Vec<f32> = rng.vec(n);
    quant::quantize_to_vec(ty, &vals).unwrap_or_else(|_| random_kquant(rng, ty, n))
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| f16::from_f32(x).to_bits().to_ne_bytes()).collect()
}

/// Random values that f16 holds exactly.
fn f16_values(rng: &mut Rng, n: usize) -> Vec<f32> {
    rng.vec(n).iter().map(|&x| f16::from_f32(x).to_f32()).collect()
}

/// A tensor of `ty` over a new buffer holding `bytes`, with explicit strides.
fn view(be: &Backend, ty: GgmlType, ne: [i64; 4], nb: [u64; 4], bytes: &[u8]) -> Tensor {
    let buf = be.alloc(bytes.len() as u64).unwrap();
    buf.write(0, bytes).unwrap();
    Tensor::new(buf, 0, ty, ne, nb).unwrap()
}

fn bits_equal(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: F16 src1 gives {g}, F32 src1 {w}");
    }
}

/// `a x b` with b as F16 and as F32 (the same values, `b_nb` the F32 strides, halved for F16) in one graph: the two
/// results bit for bit equal.
fn f16_src1_case(be: &Backend, rng: &mut Rng, ty: GgmlType, ane: [i64; 4], bne: [i64; 4], b_nb: [u64; 4]) {
    let what = format!("{} a{ane:?} b{bne:?} nb{b_nb:?}", ty.name());
    let a = upload(be, ty, ane, &random_typed(rng, ty, ane.iter().product::<i64>() as usize));
    let span = (0..4).map(|d| (bne[d] as u64 - 1) * b_nb[d]).sum::<u64>() as usize / 4 + 1;
    let vals = f16_values(rng, span);
    let b32 = view(be, GgmlType::F32, bne, b_nb, &f32_bytes(&vals));
    let b16 = view(be, GgmlType::F16, bne, b_nb.map(|s| s / 2), &f16_bytes(&vals));
    let dne = [ane[1], bne[1], bne[2], bne[3]];
    let (d32, d16) = (output(be, dne), output(be, dne));
    let mut g = Graph::new();
    g.mul_mat(&a, &b16, &d16).unwrap();
    g.mul_mat(&a, &b32, &d32).unwrap();
    be.compute(&g).unwrap();
    bits_equal(&what, &download(&d16), &download(&d32));
}

const CONTIGUOUS: fn([i64; 4]) -> [u64; 4] = |ne| {
    let nb1 = 4 * ne[0] as u64;
    [4, nb1, nb1 * ne[1] as u64, nb1 * (ne[1] * ne[2]) as u64]
};

#[test]
fn mul_mat_f16_src1_equals_f32_src1_every_weight_type() {
    let be = backend();
    let mut rng = Rng::new(1601);
    let types = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_1,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::IQ2_XXS,
        GgmlType::MXFP4,
    ];
    for ty in types {
        let k = 256;
        // Mat-vec (1, 3, 8 columns) and tiled (9, 70 columns); a batch broadcast over A.
        for n in [1, 3, 8, 9, 70] {
            let bne = [k, n, 1, 1];
            f16_src1_case(&be, &mut rng, ty, [k, 37, 1, 1], bne, CONTIGUOUS(bne));
        }
        for n in [1, 17] {
            let bne = [k, n, 6, 2];
            f16_src1_case(&be, &mut rng, ty, [k, 19, 2, 1], bne, CONTIGUOUS(bne));
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_f16_src1_views() {
    let be = backend();
    let mut rng = Rng::new(1602);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        let k = 64;
        // dims 1 and 2 swapped (ggml_permute 0,2,1,3), and columns strided by more than a row (a view of wider rows).
        for (bne, nb) in [
            ([k, 5, 3, 1], [4, 4 * 3 * k as u64, 4 * k as u64, 4 * 15 * k as u64]),
            ([k, 12, 2, 1], [4, 4 * (k as u64 + 32), 4 * 12 * (k as u64 + 32), 4 * 24 * (k as u64 + 32)]),
        ] {
            f16_src1_case(&be, &mut rng, ty, [k, 33, 1, 1], bne, nb);
        }
    }
    assert_no_validation_errors();
}

/// Against the f64 product: F32 and F16 weights times F16 activations (F16 weights see b as it is: f16 already).
#[test]
fn mul_mat_f16_src1_against_reference() {
    let be = backend();
    let mut rng = Rng::new(1603);
    for ty in [GgmlType::F32, GgmlType::F16] {
        for (ane, bne) in [([2048, 1, 1, 1], [2048, 512, 1, 1]), ([100, 70, 2, 1], [100, 9, 4, 3])] {
            let an = ane.iter().product::<i64>() as usize;
            let a_vals = f16_values(&mut rng, an);
            let a_bytes = if ty == GgmlType::F16 { f16_bytes(&a_vals) } else { f32_bytes(&a_vals) };
            let a = upload(&be, ty, ane, &a_bytes);
            let b_vals = f16_values(&mut rng, bne.iter().product::<i64>() as usize);
            let b = upload(&be, GgmlType::F16, bne, &f16_bytes(&b_vals));
            let d = output(&be, [ane[1], bne[1], bne[2], bne[3]]);
            let mut g = Graph::new();
            g.mul_mat(&a, &b, &d).unwrap();
            be.compute(&g).unwrap();
            let (want, mag) = ref_mul_mat(&a_vals, ane, &b_vals, bne);
            let cm = coopmat_rel(&be, &a, &b);
            for (i, ((g, w), m)) in download(&d).iter().zip(&want).zip(&mag).enumerate() {
                let allowed = (1e-5 + cm) * (m + 1e-6);
                assert!((f64::from(*g) - f64::from(*w)).abs() <= allowed, "{ty} {ane:?}x{bne:?} [{i}]: {g} vs {w}");
            }
        }
    }
    assert_no_validation_errors();
}

/// A one-column product followed by an ADD (fused into one kernel where the integer-dot mat-vec takes it): with an
/// F16 src1 both results equal those of the F32 src1.
#[test]
fn mul_mat_f16_src1_then_add() {
    let be = backend();
    let mut rng = Rng::new(1604);
    for ty in [GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::F16] {
        let (k, m) = (512i64, 64i64);
        let a = upload(&be, ty, [k, m, 1, 1], &random_typed(&mut rng, ty, (k * m) as usize));
        let vals = f16_values(&mut rng, k as usize);
        let b16 = upload(&be, GgmlType::F16, [k, 1, 1, 1], &f16_bytes(&vals));
        let b32 = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&vals));
        let r = upload(&be, GgmlType::F32, [m, 1, 1, 1], &f32_bytes(&rng.vec(m as usize)));
        let run_pair = |b: &Tensor| {
            let (d, out) = (output(&be, [m, 1, 1, 1]), output(&be, [m, 1, 1, 1]));
            let mut g = Graph::new();
            g.mul_mat(&a, b, &d).unwrap();
            g.push(Node { op: Op::Add, src: vec![Some(d.clone()), Some(r.clone())], dst: out.clone() }).unwrap();
            be.compute(&g).unwrap();
            (download(&d), download(&out))
        };
        let (p16, s16) = run_pair(&b16);
        let (p32, s32) = run_pair(&b32);
        bits_equal(&format!("{ty} product"), &p16, &p32);
        bits_equal(&format!("{ty} sum"), &s16, &s32);
    }
    assert_no_validation_errors();
}

/// BF16 weights with rows of any length (the generic kernels take multiples of 4; the rest run the scalar BF16
/// kernels), mat-vec and tiled, batch broadcast, a permuted src1 view, F16 src1.
#[test]
fn mul_mat_bf16_rows_of_any_length() {
    let be = backend();
    let mut rng = Rng::new(1605);
    for k in [1i64, 3, 5, 129, 1057] {
        for (m, n, a2, b2, b3) in [(17, 1, 1, 1, 1), (64, 4, 2, 4, 1), (33, 9, 1, 1, 1), (70, 65, 1, 2, 2)] {
            let ane = [k, m, a2, 1];
            let bne = [k, n, b2, b3];
            let a_bytes = random_typed(&mut rng, GgmlType::BF16, ane.iter().product::<i64>() as usize);
            let a_deq = quant::dequantize_to_f32(GgmlType::BF16, &a_bytes, a_bytes.len() / 2).unwrap();
            let a = upload(&be, GgmlType::BF16, ane, &a_bytes);
            let b_vals = f16_values(&mut rng, bne.iter().product::<i64>() as usize);
            for b_ty in [GgmlType::F32, GgmlType::F16] {
                let bytes = if b_ty == GgmlType::F16 { f16_bytes(&b_vals) } else { f32_bytes(&b_vals) };
                let b = upload(&be, b_ty, bne, &bytes);
                let d = output(&be, [m, n, b2, b3]);
                let mut g = Graph::new();
                g.mul_mat(&a, &b, &d).unwrap();
                be.compute(&g).unwrap();
                let seen = activations_seen(&a, &b_vals);
                let (want, mag) = ref_mul_mat(&a_deq, ane, &seen, bne);
                for (i, ((g, w), mg)) in download(&d).iter().zip(&want).zip(&mag).enumerate() {
                    let allowed = 1e-5 * (mg + 1e-6);
                    assert!(
                        (f64::from(*g) - f64::from(*w)).abs() <= allowed,
                        "bf16 a{ane:?} x {b_ty} b{bne:?} [{i}]: {g} vs {w}"
                    );
                }
            }
        }
    }
    // A permuted src1 (ggml_permute 0,2,1,3 of [k, 3, 5]) with an odd k.
    let k = 129i64;
    let a_bytes = random_typed(&mut rng, GgmlType::BF16, (k * 40 * 3) as usize);
    let a_deq = quant::dequantize_to_f32(GgmlType::BF16, &a_bytes, a_bytes.len() / 2).unwrap();
    let a = upload(&be, GgmlType::BF16, [k, 40, 3, 1], &a_bytes);
    let raw = rng.vec((k * 15) as usize);
    let b = view(
        &be,
        GgmlType::F32,
        [k, 5, 3, 1],
        [4, 4 * 3 * k as u64, 4 * k as u64, 4 * 15 * k as u64],
        &f32_bytes(&raw),
    );
    let d = output(&be, [40, 5, 3, 1]);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    be.compute(&g).unwrap();
    // The permuted view's columns in ggml order: (i1, i2) at raw column i2 + 3 i1.
    let mut cols = Vec::new();
    for i2 in 0..3usize {
        for i1 in 0..5usize {
            cols.extend_from_slice(&raw[(i2 + 3 * i1) * k as usize..][..k as usize]);
        }
    }
    let seen = activations_seen(&a, &cols);
    let (want, mag) = ref_mul_mat(&a_deq, [k, 40, 3, 1], &seen, [k, 5, 3, 1]);
    for (i, ((g, w), mg)) in download(&d).iter().zip(&want).zip(&mag).enumerate() {
        assert!((f64::from(*g) - f64::from(*w)).abs() <= 1e-5 * (mg + 1e-6), "permuted [{i}]: {g} vs {w}");
    }
    assert_no_validation_errors();
}

/// OUT_PROD reference in f64: `d[i0, i1, i2, i3] = sum_j a[i0, j, i2 / r2, i3 / r3] * b(i1, j, i2, i3)`, with `b`
/// given as a function of its indices; also the per-element magnitude sum for the tolerance.
fn ref_out_prod(
    a: &[f32],
    ane: [i64; 4],
    b: impl Fn(i64, i64, i64, i64) -> f32,
    dne: [i64; 4],
) -> (Vec<f64>, Vec<f64>) {
    let (m, k) = (ane[0], ane[1]);
    let (r2, r3) = (dne[2] / ane[2], dne[3] / ane[3]);
    let (mut out, mut mag) = (Vec::new(), Vec::new());
    for i3 in 0..dne[3] {
        for i2 in 0..dne[2] {
            for i1 in 0..dne[1] {
                for i0 in 0..m {
                    let (mut s, mut g) = (0f64, 0f64);
                    for j in 0..k {
                        let av = a[(((i3 / r3) * ane[2] + i2 / r2) * k * m + j * m + i0) as usize];
                        let p = f64::from(av) * f64::from(b(i1, j, i2, i3));
                        s += p;
                        g += p.abs();
                    }
                    out.push(s);
                    mag.push(g);
                }
            }
        }
    }
    (out, mag)
}

/// One OUT_PROD: src0 of `ty` `[m, k, a2, a3]`, src1 of `b_ty` `[n, k, b2, b3]` (as the transposed view of a
/// `[k, n, b2, b3]` tensor when `trans_b`), against [`ref_out_prod`].
#[allow(clippy::too_many_arguments)]
fn out_prod_case(
    be: &Backend,
    rng: &mut Rng,
    ty: GgmlType,
    b_ty: GgmlType,
    (m, n, k): (i64, i64, i64),
    a_batch: [i64; 2],
    b_batch: [i64; 2],
    trans_b: bool,
) {
    let what = format!("{} x {b_ty} m {m} n {n} k {k} a{a_batch:?} b{b_batch:?} trans_b {trans_b}", ty.name());
    let ane = [m, k, a_batch[0], a_batch[1]];
    let an = ane.iter().product::<i64>() as usize;
    let a_bytes = random_typed(rng, ty, an);
    let a_deq = quant::dequantize_to_f32(ty, &a_bytes, an).unwrap();
    let a = upload(be, ty, ane, &a_bytes);
    let bn = (n * k * b_batch[0] * b_batch[1]) as usize;
    let vals = f16_values(rng, bn);
    let es = b_ty.type_size() as u64;
    let bytes = if b_ty == GgmlType::F16 { f16_bytes(&vals) } else { f32_bytes(&vals) };
    // Memory: [n, k, ...] (element (i1, j) at i1 + n j), or [k, n, ...] transposed (at j + k i1).
    let (ne, nb) = if trans_b {
        ([n, k, b_batch[0], b_batch[1]], [es * k as u64, es, es * (n * k) as u64, es * (n * k * b_batch[0]) as u64])
    } else {
        ([n, k, b_batch[0], b_batch[1]], [es, es * n as u64, es * (n * k) as u64, es * (n * k * b_batch[0]) as u64])
    };
    let b = view(be, b_ty, ne, nb, &bytes);
    let dne = [m, n, b_batch[0], b_batch[1]];
    let d = output(be, dne);
    run(be, Op::OutProd, &[&a, &b], &d);
    let b_at = |i1: i64, j: i64, i2: i64, i3: i64| {
        let base = (i2 + b_batch[0] * i3) * n * k;
        vals[(base + if trans_b { j + k * i1 } else { i1 + n * j }) as usize]
    };
    let (want, mag) = ref_out_prod(&a_deq, ane, b_at, dne);
    for (i, ((g, w), mg)) in download(&d).iter().zip(&want).zip(&mag).enumerate() {
        assert!((f64::from(*g) - w).abs() <= 1e-5 * (mg + 1e-6), "{what}: element {i}: got {g}, want {w}");
    }
}

#[test]
fn out_prod_every_src0_type() {
    let be = backend();
    let mut rng = Rng::new(1606);
    let types = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q5_1,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ4_NL,
        GgmlType::MXFP4,
    ];
    for ty in types {
        // Rows of 256 (every block type's multiple), and of 5 and 70 for the float types.
        let ms: &[i64] = if ty.is_quantized() { &[256] } else { &[5, 70, 256] };
        for &m in ms {
            for (n, k) in [(1, 1), (7, 16), (70, 33)] {
                out_prod_case(&be, &mut rng, ty, GgmlType::F32, (m, n, k), [1, 1], [1, 1], false);
            }
        }
        // Batches without broadcast (what ggml's CPU backend takes for non-F32 src0), and broadcast over dims 2/3.
        out_prod_case(&be, &mut rng, ty, GgmlType::F32, (256, 16, 16), [3, 2], [3, 2], false);
        out_prod_case(&be, &mut rng, ty, GgmlType::F32, (256, 9, 16), [1, 3], [2, 6], false);
    }
    assert_no_validation_errors();
}

#[test]
fn out_prod_transposed_and_f16_src1() {
    let be = backend();
    let mut rng = Rng::new(1607);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0] {
        for b_ty in [GgmlType::F32, GgmlType::F16] {
            for trans_b in [false, true] {
                out_prod_case(&be, &mut rng, ty, b_ty, (64, 16, 16), [1, 1], [1, 1], trans_b);
                out_prod_case(&be, &mut rng, ty, b_ty, (128, 65, 40), [2, 1], [4, 2], trans_b);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn out_prod_declines_what_it_does_not_run() {
    let be = backend();
    let f32t = |ne: [i64; 4]| output(&be, ne);
    let q = |ne: [i64; 4]| {
        let n = ne.iter().product::<i64>() as usize;
        upload(&be, GgmlType::Q4_K, ne, &vec![0u8; GgmlType::Q4_K.row_size(n as i64).unwrap()])
    };
    // k of src0 and src1 differ; dst of the wrong shape; src1 batches not a multiple of src0's.
    assert!(refused(Op::OutProd, &[&f32t([8, 4, 1, 1]), &f32t([3, 5, 1, 1])], &f32t([8, 3, 1, 1])));
    assert!(refused(Op::OutProd, &[&f32t([8, 4, 1, 1]), &f32t([3, 4, 1, 1])], &f32t([8, 4, 1, 1])));
    assert!(refused(Op::OutProd, &[&f32t([8, 4, 2, 1]), &f32t([3, 4, 3, 1])], &f32t([8, 3, 3, 1])));
    // Q4_K src0 with an F32 src1 is taken, with an I32 src1 declined.
    let qa = q([256, 4, 1, 1]);
    let ids = upload(&be, GgmlType::I32, [3, 4, 1, 1], &[0u8; 48]);
    assert!(refused(Op::OutProd, &[&qa, &ids], &f32t([256, 3, 1, 1])));
    assert!(!refused(Op::OutProd, &[&qa, &f32t([3, 4, 1, 1])], &f32t([256, 3, 1, 1])));
    assert_no_validation_errors();
}
