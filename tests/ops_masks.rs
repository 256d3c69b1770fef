//! FILL, TRI, DIAG_MASK_INF, ACC and SET against CPU references written from ggml's CPU semantics, on the default
//! Vulkan device (lavapipe in CI), validation on. Results are compared bit for bit (no rounding is involved but
//! ACC's one addition, done in f32 on both sides).

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::Op;
use half::f16;

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: got {g}, want {w}");
    }
}

#[test]
fn fill_tri_diag_mask_inf() {
    let be = backend();
    let mut rng = Rng::new(31);
    let ne = [7i64, 7, 3, 2];
    let n = ne.iter().product::<i64>() as usize;
    let vals = rng.vec(n);
    let a = upload(&be, GgmlType::F32, ne, &f32_bytes(&vals));

    let d = output(&be, ne);
    run(&be, Op::Fill { c: -1.5 }, &[&a], &d);
    assert_bits("fill f32", &download(&d), &vec![-1.5; n]);
    // F16: the value rounded to nearest even.
    let a16 = upload(&be, GgmlType::F16, ne, &vec![0u8; n * 2]);
    let d16 = upload(&be, GgmlType::F16, ne, &vec![0u8; n * 2]);
    run(&be, Op::Fill { c: 0.1 }, &[&a16], &d16);
    let mut raw = vec![0u8; n * 2];
    d16.read(0, &mut raw).unwrap();
    assert!(raw.chunks_exact(2).all(|c| u16::from_ne_bytes([c[0], c[1]]) == f16::from_f32(0.1).to_bits()));

    for ty in 0..4 {
        let d = output(&be, ne);
        run(&be, Op::Tri { ty }, &[&a], &d);
        let want: Vec<f32> = (0..n)
            .map(|k| {
                let (i0, i1) = (k % 7, (k / 7) % 7);
                let keep = match ty {
                    0 => i0 >= i1,
                    1 => i0 > i1,
                    2 => i0 <= i1,
                    _ => i0 < i1,
                };
                if keep {
                    vals[k]
                } else {
                    0.0
                }
            })
            .collect();
        assert_bits(&format!("tri {ty}"), &download(&d), &want);
    }
    assert!(refused(Op::Tri { ty: 4 }, &[&a], &output(&be, ne)));

    for n_past in [0, 3] {
        let d = output(&be, ne);
        run(&be, Op::DiagMaskInf { n_past }, &[&a], &d);
        let want: Vec<f32> = (0..n)
            .map(|k| {
                let (i0, i1) = ((k % 7) as i32, ((k / 7) % 7) as i32);
                if i0 > n_past + i1 {
                    f32::NEG_INFINITY
                } else {
                    vals[k]
                }
            })
            .collect();
        assert_bits(&format!("diag_mask_inf {n_past}"), &download(&d), &want);
    }
    assert_no_validation_errors();
}

#[test]
fn acc_and_set_into_views() {
    let be = backend();
    let mut rng = Rng::new(32);
    let ne = [16i64, 6, 3, 1];
    let n = ne.iter().product::<i64>() as usize;
    let base = rng.vec(n);
    let a = upload(&be, GgmlType::F32, ne, &f32_bytes(&base));
    // src1 [5, 3, 2] into rows of 16 values, planes of 96, starting at element 18.
    let bne = [5i64, 3, 2, 1];
    let bv = rng.vec(30);
    let b = upload(&be, GgmlType::F32, bne, &f32_bytes(&bv));
    let (nb, offset) = ([16 * 4, 96 * 4, 288 * 4], 18 * 4);
    let view = |i0: usize, i1: usize, i2: usize| 18 + i0 + 16 * i1 + 96 * i2;
    for acc in [true, false] {
        let d = output(&be, ne);
        let op = if acc { Op::Acc { nb, offset } } else { Op::Set { nb, offset } };
        run(&be, op, &[&a, &b], &d);
        let mut want = base.clone();
        for i2 in 0..2 {
            for i1 in 0..3 {
                for i0 in 0..5 {
                    let v = bv[i0 + 5 * (i1 + 3 * i2)];
                    let k = view(i0, i1, i2);
                    want[k] = if acc { base[k] + v } else { v };
                }
            }
        }
        assert_bits(if acc { "acc" } else { "set" }, &download(&d), &want);
    }
    // SET of I32 in place (dst is src0).
    let bits: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2654435761)).collect();
    let ai = upload(&be, GgmlType::I32, ne, &bits.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>());
    let bi_bits: Vec<u32> = (0..30u32).map(|i| 0xFFFF_0000 | i).collect();
    let bi = upload(&be, GgmlType::I32, bne, &bi_bits.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>());
    run(&be, Op::Set { nb, offset }, &[&ai, &bi], &ai);
    let mut raw = vec![0u8; n * 4];
    ai.read(0, &mut raw).unwrap();
    let got: Vec<u32> = raw.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut want = bits.clone();
    for i2 in 0..2 {
        for i1 in 0..3 {
            for i0 in 0..5 {
                want[view(i0, i1, i2)] = bi_bits[i0 + 5 * (i1 + 3 * i2)];
            }
        }
    }
    assert_eq!(got, want, "set i32 in place");
    // A view whose rows overlap, and one running past dst, are refused.
    let d = output(&be, ne);
    assert!(refused(Op::Set { nb: [3 * 4, 96 * 4, 288 * 4], offset }, &[&a, &b], &d));
    assert!(refused(Op::Acc { nb, offset: 200 * 4 }, &[&a, &b], &d));
    assert_no_validation_errors();
}
