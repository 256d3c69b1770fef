//! SUM_ROWS, MEAN, SUM and ARGMAX against an f64 reference (sums) and exactly (ARGMAX: first maximum, NaN never
//! wins, all -inf gives 0), on contiguous tensors and on views with padded rows and batch strides, rows shorter
//! and longer than a workgroup.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Backend, Graph, Node, Op, Tensor};

fn run(be: &Backend, op: Op, src: &Tensor, dst: &Tensor) {
    let mut g = Graph::new();
    g.push(Node { op, src: vec![Some(src.clone())], dst: dst.clone() }).unwrap();
    be.compute(&g).unwrap();
}

/// `vals` (logical order of `ne`) stored with rows padded by `pad` floats and each dim-2 slab by `gap` more, at byte
/// offset 8: a view with packed rows but no other contiguity.
fn padded(be: &Backend, ne: [i64; 4], vals: &[f32], pad: usize, gap: usize) -> Tensor {
    let row = ne[0] as usize + pad;
    let slab = row * ne[1] as usize + gap;
    let nb = [4u64, 4 * row as u64, 4 * slab as u64, 4 * (slab * ne[2] as usize) as u64];
    let len = 8 + nb[3] as usize * ne[3] as usize;
    let mut bytes = vec![0xAAu8; len];
    for (k, v) in vals.iter().enumerate() {
        let i0 = k % ne[0] as usize;
        let r = k / ne[0] as usize;
        let (i1, i2, i3) = (r % ne[1] as usize, (r / ne[1] as usize) % ne[2] as usize, r / (ne[1] * ne[2]) as usize);
        let o = 8 + 4 * i0 + i1 * nb[1] as usize + i2 * nb[2] as usize + i3 * nb[3] as usize;
        bytes[o..o + 4].copy_from_slice(&v.to_ne_bytes());
    }
    let buf = be.alloc(len as u64).unwrap();
    let t = Tensor::new(buf, 8, GgmlType::F32, ne, nb).unwrap();
    t.buffer.write(0, &bytes).unwrap();
    t
}

#[test]
fn sums_and_means_of_rows_and_of_everything() {
    let be = backend();
    let mut rng = Rng::new(91);
    for (ne, pad, gap) in
        [([11i64, 5, 6, 3], 0, 0), ([300, 4, 2, 1], 3, 5), ([1, 7, 1, 1], 0, 0), ([4097, 2, 1, 2], 1, 0)]
    {
        let n: usize = ne.iter().product::<i64>() as usize;
        let vals: Vec<f32> = (0..n).map(|_| rng.f32() * 4.0 - 2.0).collect();
        let src = padded(&be, ne, &vals, pad, gap);
        let rows = n / ne[0] as usize;
        let row_sums: Vec<f64> = (0..rows)
            .map(|r| vals[r * ne[0] as usize..(r + 1) * ne[0] as usize].iter().map(|&v| f64::from(v)).sum())
            .collect();
        for (op, div) in [(Op::SumRows, 1.0), (Op::Mean, ne[0] as f64)] {
            let d = output(&be, [1, ne[1], ne[2], ne[3]]);
            run(&be, op.clone(), &src, &d);
            for (r, (g, w)) in download(&d).iter().zip(&row_sums).enumerate() {
                let want = w / div;
                let tol = 1e-5 * (vals.iter().map(|v| f64::from(v.abs())).sum::<f64>() / rows as f64 / div + 1.0);
                assert!((f64::from(*g) - want).abs() <= tol, "{} {ne:?} row {r}: got {g}, want {want}", op.name());
            }
        }
        let d = output(&be, [1, 1, 1, 1]);
        run(&be, Op::Sum, &src, &d);
        let want: f64 = row_sums.iter().sum();
        let got = f64::from(download(&d)[0]);
        assert!((got - want).abs() <= 1e-5 * (n as f64 + 1.0), "SUM {ne:?}: got {got}, want {want}");
    }
    assert_no_validation_errors();
}

#[test]
fn argmax_first_maximum_nan_and_infinities() {
    let be = backend();
    let mut rng = Rng::new(92);
    for (ne0, rows) in [(32i64, 513i64), (1000, 7), (5438, 3), (1, 4)] {
        let mut vals: Vec<f32> = (0..(ne0 * rows) as usize).map(|_| rng.f32()).collect();
        let n0 = ne0 as usize;
        // Row 0: the maximum twice (the first wins); row 1: NaN beside the maximum; row 2: all -inf.
        if ne0 > 3 {
            vals[n0 - 1] = 5.0;
            vals[2] = 5.0;
            vals[n0 + 1] = f32::NAN;
            vals[n0 + 3] = 7.0;
            vals[2 * n0..3 * n0].iter_mut().for_each(|v| *v = f32::NEG_INFINITY);
        }
        let src = padded(&be, [ne0, rows, 1, 1], &vals, 2, 0);
        let dbuf = be.alloc(4 * rows as u64).unwrap();
        dbuf.fill(0, dbuf.size(), 0x7F).unwrap();
        let d = Tensor::contiguous(dbuf, 0, GgmlType::I32, [rows, 1, 1, 1]).unwrap();
        run(&be, Op::ArgMax, &src, &d);
        let mut got = vec![0u8; 4 * rows as usize];
        d.read(0, &mut got).unwrap();
        for r in 0..rows as usize {
            let row = &vals[r * n0..(r + 1) * n0];
            let (mut best, mut at) = (f32::NEG_INFINITY, 0usize);
            for (i, &v) in row.iter().enumerate() {
                if v > best {
                    best = v;
                    at = i;
                }
            }
            let g = i32::from_ne_bytes([got[4 * r], got[4 * r + 1], got[4 * r + 2], got[4 * r + 3]]);
            assert_eq!(g, at as i32, "ARGMAX ne0 {ne0} row {r}");
        }
    }
    assert_no_validation_errors();
}

#[test]
fn reductions_decline_what_they_cannot_run() {
    let be = backend();
    let a = output(&be, [8, 4, 1, 1]);
    // dst of the wrong shape, and a view whose rows are not packed (ggml's CPU has no result for it).
    let bad = Node { op: Op::SumRows, src: vec![Some(a.clone())], dst: output(&be, [4, 1, 1, 1]) };
    assert!(Graph::new().push(bad).is_err());
    let t = Tensor::new(a.buffer.clone(), 0, GgmlType::F32, [4, 8, 1, 1], [32, 4, 128, 128]).unwrap();
    let node = Node { op: Op::Sum, src: vec![Some(t)], dst: output(&be, [1, 1, 1, 1]) };
    assert!(Graph::new().push(node).is_err());
    let three_d = Node { op: Op::ArgMax, src: vec![Some(output(&be, [8, 2, 2, 1]))], dst: output(&be, [2, 1, 1, 1]) };
    assert!(Graph::new().push(three_d).is_err());
}
