//! Training-side ops (OPT_STEP_ADAMW, OPT_STEP_SGD, GET_ROWS_BACK, COUNT_EQUAL) against CPU references written
//! from ggml's CPU semantics, on the default Vulkan device (lavapipe in CI), validation on.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Backend, Graph, Node, Op, Tensor};
use half::f16;

fn i32s(be: &Backend, ne: [i64; 4], v: &[i32]) -> Tensor {
    upload(be, GgmlType::I32, ne, &v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>())
}

#[test]
fn opt_steps_update_weights_and_moments_in_place() {
    let be = backend();
    let mut rng = Rng::new(51);
    let ne = [10i64, 5, 4, 3];
    let n = 600;
    let (wv, gv) = (rng.vec(n), rng.vec(n));
    let (mv, vv): (Vec<f32>, Vec<f32>) = (rng.vec(n), rng.vec(n).iter().map(|x| x.abs()).collect());
    let w = upload(&be, GgmlType::F32, ne, &f32_bytes(&wv));
    let g = upload(&be, GgmlType::F32, ne, &f32_bytes(&gv));
    let m = upload(&be, GgmlType::F32, ne, &f32_bytes(&mv));
    let v = upload(&be, GgmlType::F32, ne, &f32_bytes(&vv));
    let prm = [0.01f32, 0.9, 0.999, 1e-8, 0.1, 1.5, 1.2];
    let p = upload(&be, GgmlType::F32, [7, 1, 1, 1], &f32_bytes(&prm));
    // dst is a view of the weights, as in ggml.
    run(&be, Op::OptStepAdamw, &[&w, &g, &m, &v, &p], &w);
    let keep = 1.0 - prm[0] * prm[4];
    let (mut wm, mut mm, mut vm) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    for i in 0..n {
        mm[i] = mv[i] * prm[1] + gv[i] * (1.0 - prm[1]);
        vm[i] = vv[i] * prm[2] + gv[i] * gv[i] * (1.0 - prm[2]);
        let mh = mm[i] * prm[5];
        let vh = (vm[i] * prm[6]).sqrt() + prm[3];
        wm[i] = wv[i] * keep - prm[0] * mh / vh;
    }
    assert_close("adamw w", &download(&w), &wm, 1e-5);
    assert_close("adamw m", &download(&m), &mm, 1e-6);
    assert_close("adamw v", &download(&v), &vm, 1e-6);

    let w2 = upload(&be, GgmlType::F32, ne, &f32_bytes(&wv));
    let ps = upload(&be, GgmlType::F32, [2, 1, 1, 1], &f32_bytes(&[0.05, 0.2]));
    run(&be, Op::OptStepSgd, &[&w2, &g, &ps], &w2);
    let want: Vec<f32> = (0..n).map(|i| wv[i] * (1.0 - 0.05 * 0.2) - 0.05 * gv[i]).collect();
    assert_close("sgd", &download(&w2), &want, 1e-6);
    // The wrong number of parameters is refused.
    assert!(Graph::new()
        .push(Node { op: Op::OptStepSgd, src: vec![Some(w2.clone()), Some(g), Some(p)], dst: w2 })
        .is_err());
    assert_no_validation_errors();
}

#[test]
fn get_rows_back_sums_rows_in_order() {
    let be = backend();
    let mut rng = Rng::new(52);
    // 20000 ids: more than one dispatch's share.
    for (nc, rows, n_ids, ty) in
        [(7i64, 5i64, 9i64, GgmlType::F32), (256, 5, 4, GgmlType::F16), (3, 40, 20000, GgmlType::F32)]
    {
        let mut av = rng.vec((nc * n_ids) as usize);
        if ty == GgmlType::F16 {
            av = av.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
        }
        let bytes = if ty == GgmlType::F16 {
            av.iter().flat_map(|&x| f16::from_f32(x).to_bits().to_ne_bytes()).collect()
        } else {
            f32_bytes(&av)
        };
        let a = upload(&be, ty, [nc, n_ids, 1, 1], &bytes);
        let idv: Vec<i32> = (0..n_ids).map(|_| rng.below(rows as u64) as i32).collect();
        let ids = i32s(&be, [n_ids, 1, 1, 1], &idv);
        let d = output(&be, [nc, rows, 1, 1]);
        run(&be, Op::GetRowsBack, &[&a, &ids], &d);
        let mut want = vec![0f32; (nc * rows) as usize];
        for (i, &r) in idv.iter().enumerate() {
            for c in 0..nc as usize {
                want[r as usize * nc as usize + c] += av[i * nc as usize + c];
            }
        }
        assert_close(&format!("get_rows_back {} ids", n_ids), &download(&d), &want, 1e-5);
    }
    assert_no_validation_errors();
}

#[test]
fn count_equal_counts_matches() {
    let be = backend();
    let mut rng = Rng::new(53);
    for n in [1usize, 500, 70000] {
        let av: Vec<i32> = (0..n).map(|_| rng.below(4) as i32).collect();
        let bv: Vec<i32> = (0..n).map(|_| rng.below(4) as i32).collect();
        let a = i32s(&be, [n as i64, 1, 1, 1], &av);
        let b = i32s(&be, [n as i64, 1, 1, 1], &bv);
        let buf = be.alloc(8).unwrap();
        let d = Tensor::contiguous(buf, 0, GgmlType::I64, [1, 1, 1, 1]).unwrap();
        run(&be, Op::CountEqual, &[&a, &b], &d);
        let mut raw = [0u8; 8];
        d.read(0, &mut raw).unwrap();
        let want = av.iter().zip(&bv).filter(|(x, y)| x == y).count() as i64;
        assert_eq!(i64::from_ne_bytes(raw), want, "count_equal of {n}");
    }
    assert_no_validation_errors();
}

#[test]
fn rms_norm_back_and_soft_max_back() {
    let be = backend();
    let mut rng = Rng::new(54);
    for ne in [[7i64, 3, 2, 1], [1000, 4, 1, 1]] {
        let (nc, n) = (ne[0] as usize, ne.iter().product::<i64>() as usize);
        let (av, bv) = (rng.vec(n), rng.vec(n));
        let a = upload(&be, GgmlType::F32, ne, &f32_bytes(&av));
        let b = upload(&be, GgmlType::F32, ne, &f32_bytes(&bv));
        let eps = 1e-5f32;
        let d = output(&be, ne);
        run(&be, Op::RmsNormBack { eps }, &[&a, &b], &d);
        let mut want = vec![0f32; n];
        for r in 0..n / nc {
            let (dz, x) = (&av[r * nc..][..nc], &bv[r * nc..][..nc]);
            let sxx: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
            let sxdz: f64 = x.iter().zip(dz).map(|(&v, &g)| f64::from(v * g)).sum();
            let rrms = 1.0 / ((sxx as f32) / nc as f32 + eps).sqrt();
            let scale_x = (-sxdz as f32) / ((sxx as f32) + eps * nc as f32);
            for i in 0..nc {
                want[r * nc + i] = (dz[i] + x[i] * scale_x) * rrms;
            }
        }
        assert_close(&format!("rms_norm_back {ne:?}"), &download(&d), &want, 1e-4);
        let d = output(&be, ne);
        run(&be, Op::SoftMaxBack { scale: 0.7, max_bias: 0.0 }, &[&a, &b], &d);
        for r in 0..n / nc {
            let (dy, y) = (&av[r * nc..][..nc], &bv[r * nc..][..nc]);
            let dot: f32 = y.iter().zip(dy).map(|(&u, &g)| u * g).sum();
            for i in 0..nc {
                want[r * nc + i] = (dy[i] - dot) * y[i] * 0.7;
            }
        }
        assert_close(&format!("soft_max_back {ne:?}"), &download(&d), &want, 1e-4);
        // With ALiBi: the op has no mask, so the bias is a constant of the input and the gradient is the same, bit
        // for bit.
        for max_bias in [8.0f32, 0.5, -1.0] {
            let d2 = output(&be, ne);
            run(&be, Op::SoftMaxBack { scale: 0.7, max_bias }, &[&a, &b], &d2);
            let (g0, g1) = (download(&d), download(&d2));
            assert!(g0.iter().zip(&g1).all(|(x, y)| x.to_bits() == y.to_bits()), "soft_max_back max_bias {max_bias}");
        }
    }
    assert_no_validation_errors();
}

#[test]
fn cross_entropy_loss_and_back() {
    let be = backend();
    let mut rng = Rng::new(55);
    for ne in [[10i64, 5, 4, 1], [3000, 2, 1, 1]] {
        let (nc, n) = (ne[0] as usize, ne.iter().product::<i64>() as usize);
        let rows = n / nc;
        let xv: Vec<f32> = rng.vec(n).iter().map(|v| v * 3.0).collect();
        // Labels: a probability distribution per row.
        let mut pv: Vec<f32> = (0..n).map(|_| rng.f32().abs() + 0.01).collect();
        for r in 0..rows {
            let s: f32 = pv[r * nc..][..nc].iter().sum();
            pv[r * nc..][..nc].iter_mut().for_each(|v| *v /= s);
        }
        let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
        let p = upload(&be, GgmlType::F32, ne, &f32_bytes(&pv));
        let loss = output(&be, [1, 1, 1, 1]);
        run(&be, Op::CrossEntropyLoss, &[&x, &p], &loss);
        let (mut total, mut soft) = (0f64, vec![0f32; n]);
        for r in 0..rows {
            let row = &xv[r * nc..][..nc];
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let s: f64 = row.iter().map(|&v| f64::from((v - m).exp())).sum();
            for i in 0..nc {
                total += (f64::from(row[i] - m) - s.ln()) * f64::from(pv[r * nc + i]);
                soft[r * nc + i] = ((f64::from(row[i] - m)).exp() / s) as f32;
            }
        }
        assert_close(&format!("cross_entropy_loss {ne:?}"), &download(&loss), &[(-total / rows as f64) as f32], 1e-4);
        let gt = upload(&be, GgmlType::F32, [1, 1, 1, 1], &f32_bytes(&[0.5]));
        let d = output(&be, ne);
        run(&be, Op::CrossEntropyLossBack, &[&gt, &x, &p], &d);
        let want: Vec<f32> = (0..n).map(|i| (soft[i] - pv[i]) * 0.5 / rows as f32).collect();
        assert_close(&format!("cross_entropy_loss_back {ne:?}"), &download(&d), &want, 1e-5);
    }
    assert_no_validation_errors();
}
