//! GPU kernels against CPU references, on the default Vulkan device (lavapipe in CI), validation on.

mod common;

use common::*;
use ggvk::ops::rope::{
    RopeParams, ROPE_MODE_IMROPE, ROPE_MODE_MROPE, ROPE_MODE_NEOX, ROPE_MODE_NORMAL, ROPE_MODE_VISION,
};
use ggvk::quant::{self, GgmlType};
use ggvk::{Error, Graph, Tensor};
use half::f16;

const TYPES: [GgmlType; 4] = [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0];

/// Run one mul_mat case and compare against the f64 reference over the dequantized weights.
fn mul_mat_case(be: &ggvk::Backend, rng: &mut Rng, ty: GgmlType, ane: [i64; 4], bne: [i64; 4]) {
    let a_vals = rng.vec(ane.iter().product::<i64>() as usize);
    let a_bytes = to_type(ty, &a_vals);
    let a_deq = quant::dequantize_to_f32(ty, &a_bytes, a_vals.len()).unwrap();
    let b_vals = rng.vec(bne.iter().product::<i64>() as usize);
    let a = upload(be, ty, ane, &a_bytes);
    let b = upload(be, GgmlType::F32, bne, &f32_bytes(&b_vals));
    let dne = [ane[1], bne[1], bne[2], bne[3]];
    let d = output(be, dne);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    be.compute(&g).unwrap();
    let got = download(&d);
    let (want, mag) = ref_mul_mat(&a_deq, ane, &b_vals, bne);
    assert_eq!(got.len(), want.len());
    // The integer-dot path rounds x to 8 bits per 32-value block first (scale d = max|x|/127 kept as f16), so each
    // output may move by up to sum over blocks of (d/2 + 127 d 2^-11) * sum|a| in that block.
    let q_bound =
        ggvk::ops::matmul::uses_int_dot(be.device(), &a, &b).then(|| int_dot_bound(&a_deq, ane, &b_vals, bne));
    // F16 weights see b rounded to f16 (as ggml's CPU backend does): each product moves by at most 2^-11.
    let f16_round = if ty == GgmlType::F16 { 1.0 / 2048.0 } else { 0.0 };
    let cm = coopmat_rel(be, &a, &b);
    for (i, ((g, w), m)) in got.iter().zip(&want).zip(&mag).enumerate() {
        let diff = (f64::from(*g) - f64::from(*w)).abs();
        let allowed = (1e-5 + f16_round + cm) * (m + 1e-6) + q_bound.as_ref().map_or(0.0, |qb| 1.01 * qb[i]);
        assert!(
            diff <= allowed,
            "{} a{ane:?} b{bne:?}: element {i}: got {g}, want {w} (diff {diff:e} > {allowed:e})",
            ty.name()
        );
    }
}

/// Per-output bound of the error that quantizing x to 8 bits per 32-value block can cause (dst layout).
fn int_dot_bound(a: &[f32], ane: [i64; 4], b: &[f32], bne: [i64; 4]) -> Vec<f64> {
    let (k, m, n) = (ane[0] as usize, ane[1] as usize, bne[1] as usize);
    let (r2, r3) = (bne[2] / ane[2], bne[3] / ane[3]);
    let mut out = Vec::new();
    for i13 in 0..bne[3] {
        for i12 in 0..bne[2] {
            let ab = ((i13 / r3) * ane[2] + i12 / r2) as usize * m * k;
            for col in 0..n {
                let bb = ((i13 * bne[2] + i12) as usize * n + col) * k;
                for row in 0..m {
                    let mut bound = 0f64;
                    for blk in 0..k / 32 {
                        let xs = &b[bb + blk * 32..bb + blk * 32 + 32];
                        let d = xs.iter().fold(0f32, |acc, v| acc.max(v.abs())) as f64 / 127.0;
                        let sa: f64 = a[ab + row * k + blk * 32..ab + row * k + blk * 32 + 32]
                            .iter()
                            .map(|v| f64::from(v.abs()))
                            .sum();
                        // |x - d16 q| <= d/2 + |d - d16| * 127, and f16 rounding moves d by at most d * 2^-11.
                        bound += d * (0.5 + 127.0 / 2048.0) * sa;
                    }
                    out.push(bound);
                }
            }
        }
    }
    out
}

#[test]
fn mul_mat_vec_all_types_odd_shapes() {
    let be = backend();
    let mut rng = Rng::new(1);
    for ty in TYPES {
        let ks: &[i64] = if ty.is_quantized() { &[32, 96, 256, 4096] } else { &[1, 7, 33, 96, 1000] };
        for &k in ks {
            for m in [1, 2, 3, 17, 333] {
                mul_mat_case(&be, &mut rng, ty, [k, m, 1, 1], [k, 1, 1, 1]);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_tiled_all_types_odd_shapes() {
    let be = backend();
    let mut rng = Rng::new(2);
    for ty in TYPES {
        let ks: &[i64] = if ty.is_quantized() { &[32, 160] } else { &[5, 64, 100] };
        for &k in ks {
            for (m, n) in [(1, 2), (63, 65), (64, 64), (130, 7), (5, 200)] {
                mul_mat_case(&be, &mut rng, ty, [k, m, 1, 1], [k, n, 1, 1]);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_batched_broadcast() {
    let be = backend();
    let mut rng = Rng::new(3);
    for ty in TYPES {
        // b2 = 6 over a2 = 2 (ratio 3), b3 = 2 over a3 = 1; mat-vec and tiled.
        mul_mat_case(&be, &mut rng, ty, [64, 19, 2, 1], [64, 1, 6, 2]);
        mul_mat_case(&be, &mut rng, ty, [64, 19, 2, 1], [64, 9, 6, 2]);
        mul_mat_case(&be, &mut rng, ty, [32, 8, 3, 2], [32, 1, 3, 2]);
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_vec_large_rows_split_workgroups() {
    // More rows than one dispatch dimension holds on some devices: 2 rows per workgroup, 140_000 rows.
    let be = backend();
    let mut rng = Rng::new(4);
    mul_mat_case(&be, &mut rng, GgmlType::Q4_0, [64, 140_000, 1, 1], [64, 1, 1, 1]);
    assert_no_validation_errors();
}

#[test]
fn strided_and_offset_views() {
    // B is a view whose columns are 3 floats apart from their padded neighbours, at a non-zero offset;
    // dst is written into the middle of a larger buffer.
    let be = backend();
    let mut rng = Rng::new(5);
    let (k, m, n) = (64i64, 40i64, 5i64);
    let a_vals = rng.vec((k * m) as usize);
    let a = upload(&be, GgmlType::Q8_0, [k, m, 1, 1], &to_type(GgmlType::Q8_0, &a_vals));
    let a_deq = quant::dequantize_to_f32(GgmlType::Q8_0, &to_type(GgmlType::Q8_0, &a_vals), a_vals.len()).unwrap();
    let pitch = k + 3;
    let big = rng.vec((pitch * n + 8) as usize);
    let bbuf = be.alloc(big.len() as u64 * 4).unwrap();
    bbuf.write(0, &f32_bytes(&big)).unwrap();
    let b = Tensor::new(
        bbuf,
        8 * 4,
        GgmlType::F32,
        [k, n, 1, 1],
        [4, pitch as u64 * 4, (pitch * n) as u64 * 4, (pitch * n) as u64 * 4],
    )
    .unwrap();
    let dbuf = be.alloc(4096 * 4).unwrap();
    dbuf.fill(0, 4096 * 4, 0).unwrap();
    let d = Tensor::contiguous(dbuf.clone(), 1024, GgmlType::F32, [m, n, 1, 1]).unwrap();
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    be.compute(&g).unwrap();
    let got = download(&d);
    let b_dense: Vec<f32> =
        (0..n).flat_map(|c| big[(8 + c * pitch) as usize..(8 + c * pitch + k) as usize].to_vec()).collect();
    let (want, mag) = ref_mul_mat(&a_deq, [k, m, 1, 1], &b_dense, [k, n, 1, 1]);
    let q_bound = ggvk::ops::matmul::uses_int_dot(be.device(), &a, &b)
        .then(|| int_dot_bound(&a_deq, [k, m, 1, 1], &b_dense, [k, n, 1, 1]));
    let cm = coopmat_rel(&be, &a, &b);
    for i in 0..want.len() {
        let allowed = (1e-5 + cm) * (mag[i] + 1e-6) + q_bound.as_ref().map_or(0.0, |qb| 1.01 * qb[i]);
        assert!((f64::from(got[i] - want[i])).abs() <= allowed, "element {i}: {} vs {}", got[i], want[i]);
    }
    // Bytes around dst are untouched.
    let mut head = vec![0u8; 1024];
    dbuf.read(0, &mut head).unwrap();
    assert!(head.iter().all(|&x| x == 0));
    assert_no_validation_errors();
}

#[test]
fn dependent_nodes_get_barriers_independent_ones_do_not() {
    let be = backend();
    let mut rng = Rng::new(6);
    let k = 64i64;
    let w_vals = rng.vec((k * k) as usize);
    let w = upload(&be, GgmlType::F32, [k, k, 1, 1], &f32_bytes(&w_vals));
    let x_vals = rng.vec(k as usize);
    let x = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&x_vals));
    // One buffer, three disjoint slices: y1 = W x, y2 = W y1 (depends on y1), z = W x (independent of y2).
    let buf = be.alloc(3 * 256 * 4).unwrap();
    let y1 = Tensor::contiguous(buf.clone(), 0, GgmlType::F32, [k, 1, 1, 1]).unwrap();
    let y2 = Tensor::contiguous(buf.clone(), 1024, GgmlType::F32, [k, 1, 1, 1]).unwrap();
    let z = Tensor::contiguous(buf.clone(), 2048, GgmlType::F32, [k, 1, 1, 1]).unwrap();
    let mut g = Graph::new();
    g.mul_mat(&w, &x, &y1).unwrap();
    g.mul_mat(&w, &x, &z).unwrap();
    g.mul_mat(&w, &y1, &y2).unwrap();
    let stats = be.compute(&g).unwrap();
    assert_eq!(stats.dispatches, 3);
    if stats.submissions == 1 {
        assert_eq!(stats.barriers, 1, "only y2 = W y1 waits");
    }
    let (r1, _) = ref_mul_mat(&w_vals, [k, k, 1, 1], &x_vals, [k, 1, 1, 1]);
    let (r2, _) = ref_mul_mat(&w_vals, [k, k, 1, 1], &r1, [k, 1, 1, 1]);
    let got = download(&y2);
    for i in 0..k as usize {
        assert!((got[i] - r2[i]).abs() <= 1e-3 * (1.0 + r2[i].abs()), "{i}: {} vs {}", got[i], r2[i]);
    }
    assert_eq!(download(&z), download(&y1));
    assert_no_validation_errors();
}

/// CPU reference of ggml_rope_ext for one contiguous F32 tensor.
fn ref_rope(x: &[f32], ne: [i64; 4], pos: &[i32], ff: Option<&[f32]>, p: &RopeParams) -> Vec<f32> {
    let mut out = x.to_vec();
    let corr = p.corr_dims();
    let theta_scale = p.theta_scale();
    let n_dims = p.n_dims as usize;
    let ne0 = ne[0] as usize;
    for row in 0..(ne[1] * ne[2] * ne[3]) as usize {
        let i2 = (row / ne[1] as usize) % ne[2] as usize;
        let base = row * ne0;
        let mut theta = pos[i2] as f32;
        for i0 in (0..n_dims).step_by(2) {
            let f = ff.map(|f| f[i0 / 2]).unwrap_or(1.0);
            let te = theta / f;
            let ti = p.freq_scale * te;
            let mut th = ti;
            let mut ms = p.attn_factor;
            if p.ext_factor != 0.0 {
                let y = ((i0 / 2) as f32 - corr[0]) / (corr[1] - corr[0]).max(0.001);
                let mix = (1.0 - y.clamp(0.0, 1.0)) * p.ext_factor;
                th = ti * (1.0 - mix) + te * mix;
                ms *= 1.0 + 0.1 * (1.0 / p.freq_scale).ln();
            }
            let (c, s) = (th.cos() * ms, th.sin() * ms);
            let (ia, ib) = if p.mode == ROPE_MODE_NEOX { (i0 / 2, i0 / 2 + n_dims / 2) } else { (i0, i0 + 1) };
            let (x0, x1) = (x[base + ia], x[base + ib]);
            out[base + ia] = x0 * c - x1 * s;
            out[base + ib] = x0 * s + x1 * c;
            theta *= theta_scale;
        }
    }
    out
}

#[test]
fn rope_modes_partial_dims_yarn_freq_factors() {
    let be = backend();
    let mut rng = Rng::new(7);
    let ne = [128i64, 4, 5, 1];
    let n = ne.iter().product::<i64>() as usize;
    let plain = RopeParams { freq_base: 10000.0, ..Default::default() };
    let yarn = RopeParams {
        freq_scale: 0.25,
        ext_factor: 1.0,
        n_ctx_orig: 4096,
        beta_fast: 32.0,
        beta_slow: 1.0,
        attn_factor: 1.0,
        ..plain
    };
    let mut cases = 0;
    for mode in [ROPE_MODE_NORMAL, ROPE_MODE_NEOX] {
        for n_dims in [128, 64] {
            for base in [plain, yarn] {
                for with_ff in [false, true] {
                    let p = RopeParams { mode, n_dims, ..base };
                    let xv = rng.vec(n);
                    let pos: Vec<i32> = (0..ne[2]).map(|_| rng.below(100) as i32).collect();
                    let ffv: Vec<f32> = (0..n_dims / 2).map(|_| 1.0 + rng.f32().abs() * 3.0).collect();
                    let x = upload(&be, GgmlType::F32, ne, &f32_bytes(&xv));
                    let pos_bytes: Vec<u8> = pos.iter().flat_map(|v| v.to_ne_bytes()).collect();
                    let pt = upload(&be, GgmlType::I32, [ne[2], 1, 1, 1], &pos_bytes);
                    let ft = upload(&be, GgmlType::F32, [i64::from(n_dims / 2), 1, 1, 1], &f32_bytes(&ffv));
                    let d = output(&be, ne);
                    let mut g = Graph::new();
                    g.rope(&x, &pt, with_ff.then_some(&ft), &d, p).unwrap();
                    be.compute(&g).unwrap();
                    let got = download(&d);
                    let want = ref_rope(&xv, ne, &pos, with_ff.then_some(&ffv[..]), &p);
                    for i in 0..n {
                        assert!(
                            (got[i] - want[i]).abs() < 1e-4 * (1.0 + want[i].abs()),
                            "mode {mode} n_dims {n_dims} ff {with_ff} yarn {}: element {i}: {} vs {}",
                            p.ext_factor,
                            got[i],
                            want[i]
                        );
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 16);
    assert_no_validation_errors();
}

/// CPU reference of ggml_rope_multi (and _back) for one contiguous tensor: per position a table of (cos, sin) for
/// every pair, theta advanced by multiplication as ggml's CPU backend does, each section's theta reset at its
/// start in vision mode.
fn ref_rope_multi(x: &[f32], ne: [i64; 4], pos: &[i32], ff: Option<&[f32]>, p: &RopeParams) -> Vec<f32> {
    let mut out = x.to_vec();
    let corr = p.corr_dims();
    let theta_scale = p.theta_scale();
    let n_dims = p.n_dims as usize;
    let ne0 = ne[0] as usize;
    let ne2 = ne[2] as usize;
    let s = p.sections.map(|v| v as usize);
    let total = s.iter().sum::<usize>();
    let vision = p.mode == ROPE_MODE_VISION;
    let sign = if p.back { -1.0 } else { 1.0 };
    for row in 0..(ne[1] * ne[2] * ne[3]) as usize {
        let i2 = (row / ne[1] as usize) % ne2;
        let base = row * ne0;
        let bases: [f32; 4] = std::array::from_fn(|k| pos[i2 + k * ne2] as f32);
        let mut th = bases;
        let pairs = if vision { n_dims } else { n_dims / 2 };
        for q in 0..pairs {
            let sector = q % total;
            if vision {
                if sector == 0 {
                    th[0] = bases[0];
                } else if sector == s[0] {
                    th[1] = bases[1];
                } else if sector == s[0] + s[1] {
                    th[2] = bases[2];
                } else if sector == s[0] + s[1] + s[2] {
                    th[3] = bases[3];
                }
            }
            let k = if p.mode == ROPE_MODE_IMROPE {
                if sector % 3 == 1 && sector < 3 * s[1] {
                    1
                } else if sector % 3 == 2 && sector < 3 * s[2] {
                    2
                } else if sector % 3 == 0 && sector < 3 * s[0] {
                    0
                } else {
                    3
                }
            } else if sector < s[0] {
                0
            } else if sector < s[0] + s[1] {
                1
            } else if sector < s[0] + s[1] + s[2] {
                2
            } else {
                3
            };
            let te = th[k] / ff.map(|f| f[q]).unwrap_or(1.0);
            let ti = p.freq_scale * te;
            let mut t = ti;
            let mut ms = p.attn_factor;
            if p.ext_factor != 0.0 {
                let y = (q as f32 - corr[0]) / (corr[1] - corr[0]).max(0.001);
                let mix = (1.0 - y.clamp(0.0, 1.0)) * p.ext_factor;
                t = ti * (1.0 - mix) + te * mix;
                ms *= 1.0 + 0.1 * (1.0 / p.freq_scale).ln();
            }
            let (c, sn) = (t.cos() * ms, t.sin() * ms * sign);
            let (ia, ib) = if vision { (q, q + n_dims) } else { (q, q + n_dims / 2) };
            let (x0, x1) = (x[base + ia], x[base + ib]);
            out[base + ia] = x0 * c - x1 * sn;
            out[base + ib] = x0 * sn + x1 * c;
            for v in &mut th {
                *v *= theta_scale;
            }
        }
    }
    out
}

#[test]
fn rope_multi_section_vision_f16_and_back() {
    let be = backend();
    let mut rng = Rng::new(17);
    let yarn =
        RopeParams { freq_scale: 0.7, ext_factor: 0.75, n_ctx_orig: 512, attn_factor: 1.4, ..RopeParams::default() };
    let mut cases = 0;
    for (mode, ne, n_dims, sections) in [
        (ROPE_MODE_MROPE, [128i64, 3, 4, 1], 128, [42, 42, 42, 0]),
        (ROPE_MODE_MROPE, [128, 3, 4, 1], 40, [6, 6, 6, 2]),
        (ROPE_MODE_IMROPE, [128, 3, 4, 1], 128, [24, 20, 20, 0]),
        (ROPE_MODE_IMROPE, [64, 2, 3, 2], 64, [11, 10, 10, 1]),
        (ROPE_MODE_VISION, [80, 3, 4, 1], 40, [10, 10, 0, 0]),
        (ROPE_MODE_VISION, [48, 2, 3, 1], 24, [5, 0, 4, 3]),
    ] {
        for ty in [GgmlType::F32, GgmlType::F16] {
            for back in [false, true] {
                for (with_ff, base) in [(false, RopeParams::default()), (true, yarn)] {
                    let p = RopeParams { mode, n_dims, sections, back, ..base };
                    let n = ne.iter().product::<i64>() as usize;
                    let mut xv = rng.vec(n);
                    if ty == GgmlType::F16 {
                        xv = xv.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
                    }
                    let pos: Vec<i32> = (0..ne[2] * 4).map(|_| rng.below(200) as i32).collect();
                    let n_ff = if mode == ROPE_MODE_VISION { n_dims } else { n_dims / 2 };
                    let ffv: Vec<f32> = (0..n_ff).map(|_| 1.0 + rng.f32().abs() * 3.0).collect();
                    let x = upload(&be, ty, ne, &to_type(ty, &xv));
                    let pos_bytes: Vec<u8> = pos.iter().flat_map(|v| v.to_ne_bytes()).collect();
                    let pt = upload(&be, GgmlType::I32, [ne[2] * 4, 1, 1, 1], &pos_bytes);
                    let ft = upload(&be, GgmlType::F32, [i64::from(n_ff), 1, 1, 1], &f32_bytes(&ffv));
                    let d = upload(&be, ty, ne, &to_type(ty, &vec![0.0; n]));
                    let mut g = Graph::new();
                    g.rope(&x, &pt, with_ff.then_some(&ft), &d, p).unwrap();
                    be.compute(&g).unwrap();
                    let mut raw = vec![0u8; d.nbytes() as usize];
                    d.read(0, &mut raw).unwrap();
                    let got = quant::dequantize_to_f32(ty, &raw, n).unwrap();
                    let want = ref_rope_multi(&xv, ne, &pos, with_ff.then_some(&ffv[..]), &p);
                    let tol = if ty == GgmlType::F16 { 2e-3 } else { 1e-4 };
                    for i in 0..n {
                        assert!(
                            (got[i] - want[i]).abs() < tol * (1.0 + want[i].abs()),
                            "mode {mode} {} back {back} ff {with_ff}: element {i}: {} vs {}",
                            ty.name(),
                            got[i],
                            want[i]
                        );
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 48);
    // Shapes ggml refuses are declined, not run.
    let x = upload(&be, GgmlType::F32, [80, 2, 2, 1], &[0u8; 80 * 4 * 4]);
    let pt = upload(&be, GgmlType::I32, [8, 1, 1, 1], &[0u8; 32]);
    let d = output(&be, [80, 2, 2, 1]);
    let bad = RopeParams { mode: ROPE_MODE_VISION, n_dims: 20, sections: [5, 5, 0, 0], ..RopeParams::default() };
    assert!(Graph::new().rope(&x, &pt, None, &d, bad).is_err());
    let bad = RopeParams { mode: ROPE_MODE_MROPE, n_dims: 40, sections: [0; 4], ..RopeParams::default() };
    assert!(Graph::new().rope(&x, &pt, None, &d, bad).is_err());
    let bad = RopeParams { mode: 4, n_dims: 40, ..RopeParams::default() };
    assert!(Graph::new().rope(&x, &pt, None, &d, bad).is_err());
    assert_no_validation_errors();
}

#[test]
fn bad_graphs_are_rejected_with_clear_errors() {
    let be = backend();
    let a = upload(&be, GgmlType::Q4_0, [64, 4, 1, 1], &[0u8; 2 * 4 * 18]);
    let b = upload(&be, GgmlType::F32, [32, 1, 1, 1], &[0u8; 128]);
    let d = output(&be, [4, 1, 1, 1]);
    let mut g = Graph::new();
    assert!(matches!(g.mul_mat(&a, &b, &d), Err(Error::InvalidArgument(_))), "K mismatch");
    let b64 = upload(&be, GgmlType::F32, [64, 1, 1, 1], &[0u8; 256]);
    let d_wrong = output(&be, [5, 1, 1, 1]);
    assert!(matches!(g.mul_mat(&a, &b64, &d_wrong), Err(Error::InvalidArgument(_))), "dst shape");
    assert!(matches!(g.mul_mat(&b64, &a, &d), Err(Error::Unsupported(_))), "Q4_0 as src1");
    assert!(g.is_empty());
    // A view past the end of its buffer is refused when it is made.
    assert!(matches!(
        Tensor::contiguous(a.buffer.clone(), 100, GgmlType::Q4_0, [64, 4, 1, 1]),
        Err(Error::OutOfBounds(_))
    ));
    assert!(matches!(
        Tensor::contiguous(a.buffer.clone(), 0, GgmlType::Q4_0, [33, 1, 1, 1]),
        Err(Error::InvalidArgument(_))
    ));
    assert_no_validation_errors();
}

#[test]
fn buffer_larger_than_storage_window() {
    let be = backend();
    let caps = be.device().caps().clone();
    let range = caps.max_storage_buffer_range;
    if range > (512 << 20) || caps.max_memory_allocation_size < range + (64 << 20) {
        eprintln!("skipped: maxStorageBufferRange {range} is too large to exceed cheaply on this device");
        return;
    }
    let size = range + (32 << 20);
    let buf = be.alloc(size).unwrap();
    let mut rng = Rng::new(8);
    let (k, m) = (256i64, 64i64);
    let a_vals = rng.vec((k * m) as usize);
    let a_bytes = to_type(GgmlType::Q4_0, &a_vals);
    // Weights sit beyond the first window.
    let a = Tensor::contiguous(buf.clone(), range + 1000, GgmlType::Q4_0, [k, m, 1, 1]).unwrap();
    a.write(0, &a_bytes).unwrap();
    let x_vals = rng.vec(k as usize);
    let x = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&x_vals));
    let d = output(&be, [m, 1, 1, 1]);
    let mut g = Graph::new();
    g.mul_mat(&a, &x, &d).unwrap();
    be.compute(&g).unwrap();
    let a_deq = quant::dequantize_to_f32(GgmlType::Q4_0, &a_bytes, a_vals.len()).unwrap();
    let (want, mag) = ref_mul_mat(&a_deq, [k, m, 1, 1], &x_vals, [k, 1, 1, 1]);
    let got = download(&d);
    let q_bound = ggvk::ops::matmul::uses_int_dot(be.device(), &a, &x)
        .then(|| int_dot_bound(&a_deq, [k, m, 1, 1], &x_vals, [k, 1, 1, 1]));
    for i in 0..m as usize {
        let allowed = 1e-5 * (mag[i] + 1e-6) + q_bound.as_ref().map_or(0.0, |qb| 1.01 * qb[i]);
        assert!((f64::from(got[i] - want[i])).abs() <= allowed, "row {i}: {} vs {}", got[i], want[i]);
    }
    // A batched product with a tensor larger than the window (not cut into pieces) is a clear error, not a
    // wrong result.
    let rows = (range / 18 / 8) as i64 / 2 + 1;
    let huge = Tensor::contiguous(buf.clone(), 0, GgmlType::Q4_0, [256, rows, 2, 1]).unwrap();
    let x2 = output(&be, [k, 1, 2, 1]);
    let dh = output(&be, [rows, 1, 2, 1]);
    let mut g2 = Graph::new();
    g2.mul_mat(&huge, &x2, &dh).unwrap();
    match be.compute(&g2) {
        Err(Error::Unsupported(msg)) => assert!(msg.contains("maxStorageBufferRange"), "{msg}"),
        other => panic!("expected Unsupported, got {:?}", other.map(|_| ())),
    }
    // The backend still works after the refused graph.
    be.compute(&g).unwrap();
    assert_no_validation_errors();
}

#[test]
fn mul_mat_pieces_when_tensors_exceed_the_window() {
    // Run with a small window (scripts/test.sh: GGVK_MAX_STORAGE_RANGE=1048576) so that weights, activations and
    // results larger than one window are cut into pieces of rows and columns.
    let be = backend();
    let range = be.device().caps().max_storage_buffer_range;
    if range > (4 << 20) {
        eprintln!("skipped: maxStorageBufferRange {range}; set GGVK_MAX_STORAGE_RANGE=1048576 to run");
        return;
    }
    let mut rng = Rng::new(21);
    for ty in TYPES {
        // A of 3000 rows x 1024 (f32: 12 MB, q4_0: 1.7 MB): pieces of rows; mat-vec and tiled.
        mul_mat_case(&be, &mut rng, ty, [1024, 3000, 1, 1], [1024, 1, 1, 1]);
        mul_mat_case(&be, &mut rng, ty, [1024, 1000, 1, 1], [1024, 70, 1, 1]);
    }
    // B larger than a window (3.2 MB): pieces of columns; dst larger than a window (1.4 MB): rows and columns.
    mul_mat_case(&be, &mut rng, GgmlType::Q8_0, [8192, 300, 1, 1], [8192, 100, 1, 1]);
    mul_mat_case(&be, &mut rng, GgmlType::Q4_0, [256, 1200, 1, 1], [256, 300, 1, 1]);
    assert_no_validation_errors();
}

#[test]
fn profiling_reports_time_per_dispatch() {
    let be = backend();
    if !be.device().caps().timestamps {
        eprintln!("skipped: no timestamps on this queue");
        return;
    }
    let mut rng = Rng::new(9);
    let a = upload(&be, GgmlType::Q4_0, [256, 64, 1, 1], &to_type(GgmlType::Q4_0, &rng.vec(256 * 64)));
    let x = upload(&be, GgmlType::F32, [256, 1, 1, 1], &f32_bytes(&rng.vec(256)));
    let d1 = output(&be, [64, 1, 1, 1]);
    let d2 = output(&be, [64, 1, 1, 1]);
    let mut g = Graph::new();
    g.mul_mat(&a, &x, &d1).unwrap();
    g.mul_mat(&a, &x, &d2).unwrap();
    be.set_profiling(true);
    let stats = be.compute(&g).unwrap();
    let times = be.last_times();
    // One timing per dispatch (a mat-vec on the integer-dot path is two: quantize x, then multiply).
    assert!(stats.dispatches >= 2);
    assert_eq!(times.len(), stats.dispatches as usize);
    assert!(times.iter().all(|t| t.micros >= 0.0 && t.label.contains("MUL_MAT")), "{times:?}");
    be.set_profiling(false);
    assert_no_validation_errors();
}

#[test]
fn long_dependent_chain_across_submissions() {
    // 70 dependent nodes: the executor submits them in several command buffers (8, then 32 per submission by
    // default); every result must see the one before it.
    let be = backend();
    let mut rng = Rng::new(10);
    let n = 1000usize;
    let xv = rng.vec(n);
    let buf = be.alloc((n * 4 * 2) as u64).unwrap();
    let a = Tensor::contiguous(buf.clone(), 0, GgmlType::F32, [n as i64, 1, 1, 1]).unwrap();
    let b = Tensor::contiguous(buf.clone(), (n * 4) as u64, GgmlType::F32, [n as i64, 1, 1, 1]).unwrap();
    a.write(0, &f32_bytes(&xv)).unwrap();
    let mut g = Graph::new();
    for i in 0..70 {
        let (src, dst) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        g.push(ggvk::Node { op: ggvk::Op::Scale { s: 1.01, b: 0.5 }, src: vec![Some(src.clone())], dst: dst.clone() })
            .unwrap();
    }
    let stats = be.compute(&g).unwrap();
    assert_eq!(stats.dispatches, 70);
    let mut want = xv.clone();
    for _ in 0..70 {
        for v in want.iter_mut() {
            *v = v.mul_add(1.01, 0.5);
        }
    }
    let got = download(&a);
    for i in 0..n {
        assert!((got[i] - want[i]).abs() <= 1e-4 * (1.0 + want[i].abs()), "{i}: {} vs {}", got[i], want[i]);
    }
    eprintln!("70 dependent nodes in {} submission(s), {} barrier(s)", stats.submissions, stats.barriers);
    assert_no_validation_errors();
}

#[test]
fn quantized_activation_reused_until_overwritten() {
    // y1 = W1 x and y2 = W2 x share one quantized copy of x; then x is scaled in place and y3 = W1 x must see
    // the new x (the cached copy is dropped when x is written).
    let be = backend();
    let mut rng = Rng::new(11);
    let (k, m) = (256i64, 48i64);
    let w1v = rng.vec((k * m) as usize);
    let w2v = rng.vec((k * m) as usize);
    let (w1b, w2b) = (to_type(GgmlType::Q4_0, &w1v), to_type(GgmlType::Q4_0, &w2v));
    let w1 = upload(&be, GgmlType::Q4_0, [k, m, 1, 1], &w1b);
    let w2 = upload(&be, GgmlType::Q4_0, [k, m, 1, 1], &w2b);
    let xv = rng.vec(k as usize);
    let x = upload(&be, GgmlType::F32, [k, 1, 1, 1], &f32_bytes(&xv));
    let (y1, y2, y3) = (output(&be, [m, 1, 1, 1]), output(&be, [m, 1, 1, 1]), output(&be, [m, 1, 1, 1]));
    let mut g = Graph::new();
    g.mul_mat(&w1, &x, &y1).unwrap();
    g.mul_mat(&w2, &x, &y2).unwrap();
    g.push(ggvk::Node { op: ggvk::Op::Scale { s: -2.0, b: 0.25 }, src: vec![Some(x.clone())], dst: x.clone() })
        .unwrap();
    g.mul_mat(&w1, &x, &y3).unwrap();
    let stats = be.compute(&g).unwrap();
    if ggvk::ops::matmul::quantizes_activations(&w1) && stats.submissions == 1 {
        // quantize x, y1, y2 (reusing it), scale, quantize the new x, y3.
        assert_eq!(stats.dispatches, 6);
    }
    let x2: Vec<f32> = xv.iter().map(|v| v.mul_add(-2.0, 0.25)).collect();
    for (y, wb, xs) in [(&y1, &w1b, &xv), (&y2, &w2b, &xv), (&y3, &w1b, &x2)] {
        let a = quant::dequantize_to_f32(GgmlType::Q4_0, wb, (k * m) as usize).unwrap();
        let (want, mag) = ref_mul_mat(&a, [k, m, 1, 1], xs, [k, 1, 1, 1]);
        let bound = int_dot_bound(&a, [k, m, 1, 1], xs, [k, 1, 1, 1]);
        let got = download(y);
        for i in 0..m as usize {
            let allowed = 1e-5 * (mag[i] + 1e-6) + 1.01 * bound[i];
            assert!((f64::from(got[i] - want[i])).abs() <= allowed, "row {i}: {} vs {}", got[i], want[i]);
        }
    }
    assert_no_validation_errors();
}
