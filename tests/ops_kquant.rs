//! K-quant weights (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) on the GPU against the CPU reference dequantizers:
//! GET_ROWS (bit-exact), MUL_MAT through the mat-vec (n = 1..8) and tiled (n > 8) kernels.
//! Weights are random blocks (random code/scale bytes, f16 super-block scales of magnitude 2^-7..2^-5).

mod common;

use common::*;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Node, Op};

const K_QUANTS: [GgmlType; 5] = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];

fn run(be: &Backend, node: Node) {
    let mut g = Graph::new();
    g.push(node).unwrap();
    be.compute(&g).unwrap();
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

/// GET_ROWS of `r` random indices (out-of-range ones when `oob`) from `[n, m, b2, 1]` weights of type `ty`; every
/// dst value must equal the CPU dequantizer's bit for bit.
fn get_rows_case(be: &Backend, rng: &mut Rng, ty: GgmlType, (n, m, r, b2): (i64, i64, i64, i64), oob: bool) {
    let what = format!("get_rows {ty} n {n} m {m} r {r} b2 {b2} oob {oob}");
    let data = random_kquant(rng, ty, (n * m * b2) as usize);
    let a = upload(be, ty, [n, m, b2, 1], &data);
    let idx: Vec<i32> =
        (0..r * b2)
            .map(|_| {
                if oob && rng.below(4) == 0 {
                    [-1, m as i32][rng.below(2) as usize]
                } else {
                    rng.below(m as u64) as i32
                }
            })
            .collect();
    let it = upload(be, GgmlType::I32, [r, b2, 1, 1], &i32_bytes(&idx));
    let d = output(be, [n, r, b2, 1]);
    run(be, Node { op: Op::GetRows, src: vec![Some(a), Some(it)], dst: d.clone() });
    let got = download(&d);
    let rs = ty.row_size(n).unwrap();
    for (k, &ix) in idx.iter().enumerate() {
        let row = &got[k * n as usize..(k + 1) * n as usize];
        if ix < 0 || ix >= m as i32 {
            assert!(row.iter().all(|&v| v.to_bits() == 0), "{what}: out-of-range index {ix} must give zeros");
            continue;
        }
        let src_row = (k / r as usize) * m as usize + ix as usize;
        let want = quant::dequantize_to_f32(ty, &data[src_row * rs..(src_row + 1) * rs], n as usize).unwrap();
        for (c, (g, w)) in row.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{what}: dst row {k} <- src row {ix}, column {c}: got {g:e} want {w:e}"
            );
        }
    }
}

#[test]
fn get_rows_k_quants_bit_exact() {
    let be = backend();
    let mut rng = Rng::new(0x6b71);
    for ty in K_QUANTS {
        for (n, m, r, b2, oob) in [(256, 5, 4, 1, false), (512, 7, 9, 3, true), (256 * 9, 3, 5, 2, false)] {
            get_rows_case(&be, &mut rng, ty, (n, m, r, b2), oob);
        }
    }
    assert_no_validation_errors();
}

/// One MUL_MAT of `ane` K-quant weights by `bne` random f32 columns, against the f64 reference over the CPU
/// dequantizer's weights (f32 accumulation on the GPU: error within 1e-5 of sum |a||b| per output).
fn mul_mat_case(be: &Backend, rng: &mut Rng, ty: GgmlType, ane: [i64; 4], bne: [i64; 4]) {
    let n_a = ane.iter().product::<i64>() as usize;
    let a_bytes = random_kquant(rng, ty, n_a);
    let a_deq = quant::dequantize_to_f32(ty, &a_bytes, n_a).unwrap();
    let b_vals = rng.vec(bne.iter().product::<i64>() as usize);
    let a = upload(be, ty, ane, &a_bytes);
    let b = upload(be, GgmlType::F32, bne, &f32_bytes(&b_vals));
    let d = output(be, [ane[1], bne[1], bne[2], bne[3]]);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    be.compute(&g).unwrap();
    let got = download(&d);
    // Against the activations the kernels see (rounded onto the CPU backend's grid unless GGVK_ROUND_ACTIVATIONS=0).
    let (want, mag) = ref_mul_mat(&a_deq, ane, &mul_mat_activations_seen(be, &a, &b, &b_vals), bne);
    assert_eq!(got.len(), want.len());
    let cm = coopmat_rel(be, &a, &b);
    for (i, ((g, w), m)) in got.iter().zip(&want).zip(&mag).enumerate() {
        let diff = (f64::from(*g) - f64::from(*w)).abs();
        let allowed = (1e-5 + cm) * (m + 1e-6);
        assert!(
            diff <= allowed,
            "{ty} a{ane:?} b{bne:?}: element {i}: got {g}, want {w} (diff {diff:e} > {allowed:e})"
        );
    }
}

#[test]
fn mul_mat_vec_k_quants_1_to_8_columns() {
    let be = backend();
    let mut rng = Rng::new(0x6b72);
    for ty in K_QUANTS {
        for n in 1..=8 {
            mul_mat_case(&be, &mut rng, ty, [512, 17, 1, 1], [512, n, 1, 1]);
        }
        for (k, m, n) in [(256, 1, 1), (256 * 9, 67, 1), (256 * 9, 67, 8)] {
            mul_mat_case(&be, &mut rng, ty, [k, m, 1, 1], [k, n, 1, 1]);
        }
        // A long row (k = 4096, 16 blocks) and more rows than one workgroup takes.
        mul_mat_case(&be, &mut rng, ty, [4096, 333, 1, 1], [4096, 1, 1, 1]);
    }
    assert_no_validation_errors();
}

/// K-quant weights at byte offsets 2 and 4 of their buffer (Q4_K's dedicated mat-vec reads 32-bit words, so the
/// first takes the generic kernel and the second the dedicated one) and with padded rows: same results.
#[test]
fn mul_mat_vec_k_quants_offsets_and_padded_rows() {
    let be = backend();
    let mut rng = Rng::new(0x6b75);
    let (k, m) = (512i64, 9i64);
    for ty in K_QUANTS {
        let a_bytes = random_kquant(&mut rng, ty, (k * m) as usize);
        let a_deq = quant::dequantize_to_f32(ty, &a_bytes, (k * m) as usize).unwrap();
        let row = ty.row_size(k).unwrap();
        let b_vals = rng.vec(k as usize);
        let b = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&b_vals));
        for (offset, pad) in [(2u64, 0usize), (4, 0), (4, 6), (2, 4)] {
            let stride = row + pad;
            let buf = be.alloc(offset + (stride * m as usize) as u64).unwrap();
            buf.fill(0, buf.size(), 0x5A).unwrap();
            let nb = [ty.type_size() as u64, stride as u64, (stride * m as usize) as u64, (stride * m as usize) as u64];
            let a = ggvk::Tensor::new(buf, offset, ty, [k, m, 1, 1], nb).unwrap();
            for r in 0..m as usize {
                a.write((r * stride) as u64, &a_bytes[r * row..(r + 1) * row]).unwrap();
            }
            let d = output(&be, [m, 1, 1, 1]);
            let mut g = Graph::new();
            g.mul_mat(&a, &b, &d).unwrap();
            be.compute(&g).unwrap();
            let got = download(&d);
            let (want, mag) =
                ref_mul_mat(&a_deq, [k, m, 1, 1], &mul_mat_activations_seen(&be, &a, &b, &b_vals), [k, 1, 1, 1]);
            for (i, ((g, w), mg)) in got.iter().zip(&want).zip(&mag).enumerate() {
                let diff = (f64::from(*g) - f64::from(*w)).abs();
                assert!(diff <= 1e-5 * (mg + 1e-6), "{ty} offset {offset} pad {pad}: row {i}: got {g}, want {w}");
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_tiled_k_quants() {
    let be = backend();
    let mut rng = Rng::new(0x6b73);
    for ty in K_QUANTS {
        for (k, m, n) in [(256, 63, 9), (512, 130, 65), (768, 5, 200), (256, 64, 64)] {
            mul_mat_case(&be, &mut rng, ty, [k, m, 1, 1], [k, n, 1, 1]);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_k_quants_batched_broadcast() {
    let be = backend();
    let mut rng = Rng::new(0x6b74);
    for ty in K_QUANTS {
        // b2 = 6 over a2 = 2 (ratio 3), b3 = 2 over a3 = 1; mat-vec and tiled.
        mul_mat_case(&be, &mut rng, ty, [512, 19, 2, 1], [512, 1, 6, 2]);
        mul_mat_case(&be, &mut rng, ty, [512, 19, 2, 1], [512, 12, 6, 2]);
    }
    assert_no_validation_errors();
}

#[test]
fn k_quant_rows_must_be_whole_super_blocks() {
    // A K-quant row is whole 256-value blocks by construction (row_size refuses anything else), so a tensor of
    // 128 values per row cannot even be described.
    for ty in K_QUANTS {
        assert!(ggvk::Tensor::contiguous_strides(ty, [128, 2, 1, 1]).is_err(), "{ty}");
    }
}
