//! Prompt products that dequantize their weights to f16 first (`ops::matmul::dequant_first_bytes`,
//! `shaders/dequant_f16.comp`), forced on this device with `GGVK_DEQUANT_F16=1` from 9 columns: every weight type with
//! a dequantizing kernel against an f64 reference over the CPU's dequantization, the extra dispatch counted, and
//! products the path must leave alone (mat-vecs, batched weights) unchanged. Validation layer on. (Its own test
//! binary: the knobs are read once per process.)

mod common;

use common::*;
use ggvk::ops::spirv;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Tensor};

fn force_on() {
    // SAFETY: set before this binary's tests open a device; no other thread reads the environment meanwhile (every
    // test calls this first, and the values are the same).
    unsafe {
        std::env::set_var("GGVK_DEQUANT_F16", "1");
        std::env::set_var("GGVK_DEQUANT_F16_MIN_N", "9");
    }
}

/// Q4_0, Q8_0 and every type with a dequantization include but BF16 (which keeps its own kernels).
fn types() -> Vec<GgmlType> {
    let mut out = vec![GgmlType::Q4_0, GgmlType::Q8_0];
    out.extend(
        spirv::DQ_TYPES
            .iter()
            .filter(|n| **n != "bf16")
            .map(|name| *GgmlType::ALL.iter().find(|t| t.name().eq_ignore_ascii_case(name)).expect("a known type")),
    );
    out
}

/// `a (ty) [k, m, a2, 1] x b [k, n, b2, 1]`: GPU vs reference; returns the dispatches it took.
fn case(be: &Backend, rng: &mut Rng, ty: GgmlType, (k, m, n): (i64, i64, i64), (a2, b2): (i64, i64)) -> u32 {
    let what = format!("{} k {k} m {m} n {n} a2 {a2} b2 {b2}", ty.name());
    let ane = [k, m, a2, 1];
    let bne = [k, n, b2, 1];
    let na = (k * m * a2) as usize;
    let a_bytes = random_typed(rng, ty, na);
    let a_vals = quant::dequantize_to_f32(ty, &a_bytes, na).unwrap();
    let b_vals = rng.vec((k * n * b2) as usize);
    let a = upload(be, ty, ane, &a_bytes);
    let b = upload(be, GgmlType::F32, bne, &f32_bytes(&b_vals));
    let d = output(be, [m, n, b2, 1]);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    let stats = be.compute(&g).unwrap();
    let got = download(&d);
    let (want, mag) = ref_mul_mat(&a_vals, ane, &mul_mat_activations_seen(be, &a, &b, &b_vals), bne);
    // Weights and activations each rounded once to f16 (2^-11 relative each), on top of f32 accumulation.
    for (i, ((g, w), mg)) in got.iter().zip(&want).zip(&mag).enumerate() {
        let diff = (f64::from(*g) - f64::from(*w)).abs();
        let allowed = 1.2e-3 * (mg + 1e-6);
        assert!(diff <= allowed, "{what}: element {i}: got {g}, want {w} (diff {diff:e} > {allowed:e})");
    }
    stats.dispatches
}

#[test]
fn every_type_dequantized_first_matches_the_reference() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(515);
    let mut taken = Vec::new();
    for ty in types() {
        let k = if ty.block_size() >= 256 { 512 } else { 256 };
        let a = probe(&be, ty, [k, 37, 1, 1]);
        let dq = ggvk::ops::matmul::dequant_first_bytes(be.device(), &a, 9);
        // Types whose activations are rounded onto a CPU grid (the IQ family, ...) keep their kernels.
        if ggvk::ops::matmul::rounds_activations(&a).is_some() {
            assert_eq!(dq, None, "{ty}");
            continue;
        }
        assert_eq!(dq, Some((k * 37 * 2) as u64), "{ty}: the forced path takes it");
        taken.push(ty);
        for (m, n) in [(37, 9), (64, 64), (130, 33)] {
            case(&be, &mut rng, ty, (k, m, n), (1, 1));
        }
    }
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        assert!(taken.contains(&ty), "{ty} is dequantized first");
    }
    assert_no_validation_errors();
}

/// A placeholder-backed tensor of the shape (for asking the selection; never bound).
fn probe(be: &Backend, ty: GgmlType, ne: [i64; 4]) -> Tensor {
    let buf = ggvk::vk::Buffer::placeholder(be.device());
    Tensor::contiguous(buf, 0, ty, ne).unwrap()
}

#[test]
fn the_copy_is_one_more_dispatch_and_only_for_prompt_products_of_one_weight_batch() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(516);
    let dev = be.device();
    // Below 9 columns (mat-vec kernels), batched weights and BF16 / F16 / F32 weights: not taken.
    assert_eq!(ggvk::ops::matmul::dequant_first_bytes(dev, &probe(&be, GgmlType::Q4_0, [256, 64, 1, 1]), 8), None);
    assert_eq!(ggvk::ops::matmul::dequant_first_bytes(dev, &probe(&be, GgmlType::Q4_0, [256, 64, 2, 1]), 64), None);
    for ty in [GgmlType::BF16, GgmlType::F16, GgmlType::F32] {
        assert_eq!(ggvk::ops::matmul::dequant_first_bytes(dev, &probe(&be, ty, [256, 64, 1, 1]), 64), None, "{ty}");
    }
    // A product that dequantizes first reads f16 activations: no producer writes 8-bit blocks for it.
    let (a, b, d) = (
        probe(&be, GgmlType::Q4_0, [256, 64, 1, 1]),
        probe(&be, GgmlType::F32, [256, 16, 1, 1]),
        probe(&be, GgmlType::F32, [64, 16, 1, 1]),
    );
    assert!(ggvk::ops::matmul::quantized_b_layout(dev, &a, &b, &d).is_none());
    assert!(!ggvk::ops::matmul::uses_int_dot(dev, &a, &b));
    // Q4_0 x 16 columns: the copy and the product (two dispatches); 8 columns: the mat-vec's own dispatches.
    let with_copy = case(&be, &mut rng, GgmlType::Q4_0, (256, 64, 16), (1, 1));
    assert_eq!(with_copy, 2, "dequantize + f16 product");
    case(&be, &mut rng, GgmlType::Q4_K, (256, 40, 8), (1, 1));
    // Batched weights keep the quantized kernels and their results.
    case(&be, &mut rng, GgmlType::Q4_K, (256, 19, 12), (2, 4));
    assert_no_validation_errors();
}

/// Q4_K weights at a 16-byte-aligned offset take the vector kernel (`dequant_f16_q4_k`), at an offset of one
/// 16-bit word the generic one: both compute every value by the same f32 formula, so the products agree bit for
/// bit (and each with the reference, through `case`'s tolerance on the aligned one).
#[test]
fn q4_k_vector_copy_equals_the_generic_copy() {
    force_on();
    let be = backend();
    let mut rng = Rng::new(517);
    let (k, m, n) = (512i64, 48i64, 16i64);
    let a_bytes = random_typed(&mut rng, GgmlType::Q4_K, (k * m) as usize);
    let b_vals = rng.vec((k * n) as usize);
    let b = upload(&be, GgmlType::F32, [k, n, 1, 1], &f32_bytes(&b_vals));
    let product = |offset: u64| {
        let buf = be.alloc(a_bytes.len() as u64 + offset).expect("alloc");
        let a = Tensor::contiguous(buf, offset, GgmlType::Q4_K, [k, m, 1, 1]).expect("tensor");
        a.write(0, &a_bytes).expect("upload");
        let d = output(&be, [m, n, 1, 1]);
        let mut g = Graph::new();
        g.mul_mat(&a, &b, &d).unwrap();
        let stats = be.compute(&g).unwrap();
        assert_eq!(stats.dispatches, 2, "offset {offset}: dequantize + f16 product");
        download(&d)
    };
    let vector = product(0);
    let generic = product(2);
    for (i, (v, g)) in vector.iter().zip(&generic).enumerate() {
        assert_eq!(v.to_bits(), g.to_bits(), "element {i}: vector copy {v}, generic copy {g}");
    }
    case(&be, &mut rng, GgmlType::Q4_K, (k, m, n), (1, 1));
    assert_no_validation_errors();
}
