//! The activation-rounding pre-pass of MUL_MAT (`shaders/round_act.comp`) against the CPU reference
//! (`ggvk::quant::round_activations`), bit for bit: weights that dequantize to an identity matrix make each output
//! element one rounded activation (1 x b_i plus zeros: exact in f32), for each grid: Q8_0 (Q4_1 weights; Q8_1
//! rounds the same), Q8_K (Q4_K weights), BF16. Inputs: random values over many magnitudes, all-zero blocks,
//! halfway cases (amax = 127 makes the scale 1), +/- max ties, tiny and huge normal values, one-hot blocks. Run on
//! the default Vulkan device with the validation layer on; needs rounding on (the default).

mod common;

use common::*;
use ggvk::quant::{self, act_rounding, round_activations_to_vec, GgmlType};
use ggvk::Graph;
use half::f16;

/// Bytes of a k x k weight matrix of type `ty` whose dequantization is the identity.
fn identity(ty: GgmlType, k: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let one = f16::from_f32(1.0).to_le_bytes();
    let zero = f16::from_f32(0.0).to_le_bytes();
    for row in 0..k {
        match ty {
            GgmlType::BF16 => {
                for j in 0..k {
                    let v: u16 = if j == row { 0x3F80 } else { 0 };
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            GgmlType::Q4_1 => {
                for blk in 0..k / 32 {
                    out.extend_from_slice(&one); // d
                    out.extend_from_slice(&zero); // m
                    let mut qs = [0u8; 16];
                    if row / 32 == blk {
                        let e = row % 32;
                        qs[e % 16] |= if e < 16 { 1 } else { 0x10 };
                    }
                    out.extend_from_slice(&qs);
                }
            }
            GgmlType::Q4_K => {
                for blk in 0..k / 256 {
                    out.extend_from_slice(&one); // d
                    out.extend_from_slice(&zero); // dmin
                                                  // Sub-block scales 1 and mins 0 for all 8 sub-blocks (6-bit packing of get_scale_min_k4).
                    out.extend_from_slice(&[1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]);
                    let mut qs = [0u8; 128];
                    if row / 256 == blk {
                        let e = row % 256;
                        let (c, l, hi) = (e / 64, e % 32, (e % 64) >= 32);
                        qs[32 * c + l] |= if hi { 0x10 } else { 1 };
                    }
                    out.extend_from_slice(&qs);
                }
            }
            _ => unreachable!("no identity for {ty}"),
        }
    }
    out
}

/// Activations with the edge cases described above, `k` values per column, `cols` columns.
fn inputs(rng: &mut Rng, k: usize, cols: usize, block: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(k * cols);
    let mut case = 0usize;
    while x.len() < k * cols {
        let mut blk: Vec<f32> = match case % 8 {
            0 => rng.vec(block),
            1 => rng.vec(block).iter().map(|v| v * 10f32.powi(rng.below(13) as i32 - 6)).collect(),
            2 => vec![0.0; block],
            // Halfway cases: with amax = 127 the scale is 1, so k + 0.5 sits exactly between two codes.
            3 => (0..block).map(|i| if i == 1 { -127.0 } else { (i % 100) as f32 - 50.5 }).collect(),
            // +max and -max: the first one decides the sign of Q8_K's scale.
            4 => (0..block)
                .map(|i| {
                    if i == 3 {
                        7.25
                    } else if i == 9 {
                        -7.25
                    } else {
                        rng.f32()
                    }
                })
                .collect(),
            5 => rng.vec(block).iter().map(|v| v * 1e-30).collect(),
            // Huge values; Q8_0's f16 scale overflows above 127 x 65504 (to infinity on the CPU too, which an
            // identity product cannot carry), so its blocks stay below that.
            6 => rng.vec(block).iter().map(|v| v * if block == 32 { 8e6 } else { 1e30 }).collect(),
            _ => (0..block).map(|i| if i == block / 2 { -3.0 } else { 0.0 }).collect(),
        };
        // Per-value magnitudes within a block, so blocks hold values far below their maximum.
        if case % 8 == 0 {
            for v in &mut blk {
                *v *= 2f32.powi(rng.below(20) as i32 - 10);
            }
        }
        x.extend_from_slice(&blk);
        case += 1;
    }
    x.truncate(k * cols);
    x
}

fn check(ty: GgmlType, k: usize, bne: [i64; 4], seed: u64) {
    let be = backend();
    let mut rng = Rng::new(seed);
    let r = act_rounding(ty).unwrap();
    let a_bytes = identity(ty, k);
    let a_deq = quant::dequantize_to_f32(ty, &a_bytes, k * k).unwrap();
    for (i, v) in a_deq.iter().enumerate() {
        assert_eq!(*v, if i / k == i % k { 1.0 } else { 0.0 }, "{ty} identity element {i}");
    }
    let cols = (bne[1] * bne[2] * bne[3]) as usize;
    let block = r.block().max(4);
    let b_vals = inputs(&mut rng, k, cols, block);
    let a = upload(&be, ty, [k as i64, k as i64, 1, 1], &a_bytes);
    if std::env::var("GGVK_ROUND_ACTIVATIONS").ok().as_deref() != Some("1") {
        // Off by default; scripts/test.sh runs this file with GGVK_ROUND_ACTIVATIONS=1.
        assert_eq!(ggvk::ops::matmul::rounds_activations(&a), None, "{ty}: rounding is on by default");
        eprintln!("skipped: set GGVK_ROUND_ACTIVATIONS=1 to check the rounding pre-pass");
        return;
    }
    assert_eq!(ggvk::ops::matmul::rounds_activations(&a), Some(r), "{ty}: rounding is off (GGVK_ROUND_ACTIVATIONS)");
    let b = upload(&be, GgmlType::F32, bne, &f32_bytes(&b_vals));
    let d = output(&be, [k as i64, bne[1], bne[2], bne[3]]);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    be.compute(&g).unwrap();
    let got = download(&d);
    let want = round_activations_to_vec(r, &b_vals);
    let mut changed = 0;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // 1 x b_i + 0 x ... is b_i exactly, except that the sum of a -0 with +0 products is +0.
        let same = g.to_bits() == w.to_bits() || (*g == 0.0 && *w == 0.0);
        assert!(
            same,
            "{ty} b{bne:?}: element {i}: GPU {g:e} ({:#x}), CPU {w:e} ({:#x}), input {:e}",
            g.to_bits(),
            w.to_bits(),
            b_vals[i]
        );
        changed += usize::from(w.to_bits() != b_vals[i].to_bits());
    }
    // The grid really is coarser than f32 (the check would be empty otherwise).
    assert!(changed > got.len() / 4, "{ty}: only {changed} of {} values changed by rounding", got.len());
    assert_no_validation_errors();
}

#[test]
fn round_q8_0_grid_bit_exact() {
    // Mat-vec (1 and 5 columns, batched) and tiled (12 columns).
    check(GgmlType::Q4_1, 512, [512, 1, 1, 1], 0xac70);
    check(GgmlType::Q4_1, 512, [512, 5, 2, 1], 0xac71);
    check(GgmlType::Q4_1, 256, [256, 12, 1, 1], 0xac72);
}

#[test]
fn round_q8_k_grid_bit_exact() {
    check(GgmlType::Q4_K, 512, [512, 1, 1, 1], 0xac73);
    check(GgmlType::Q4_K, 512, [512, 3, 2, 1], 0xac74);
    check(GgmlType::Q4_K, 256, [256, 12, 1, 1], 0xac75);
}

#[test]
fn round_bf16_grid_bit_exact() {
    check(GgmlType::BF16, 256, [256, 2, 1, 1], 0xac76);
    check(GgmlType::BF16, 128, [128, 10, 1, 1], 0xac77);
}
