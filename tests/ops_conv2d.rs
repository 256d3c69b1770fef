//! CONV_2D, CONV_2D_DW, CONV_3D, CONV_TRANSPOSE_2D and TIMESTEP_EMBEDDING against CPU references written from
//! ggml's CPU semantics, on the default Vulkan device (lavapipe in CI), validation on.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Backend, Op, Tensor};
use half::f16;

fn n(ne: [i64; 4]) -> usize {
    ne.iter().product::<i64>() as usize
}

fn out_size(ins: i64, ks: i64, s: i32, p: i32, d: i32) -> i64 {
    (ins + 2 * i64::from(p) - i64::from(d) * (ks - 1) - 1) / i64::from(s) + 1
}

/// A kernel of `ty` (values rounded to it) and the values it holds.
fn kernel(be: &Backend, rng: &mut Rng, ty: GgmlType, ne: [i64; 4]) -> (Tensor, Vec<f32>) {
    let mut v = rng.vec(n(ne));
    if ty == GgmlType::F16 {
        v = v.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
    }
    let bytes = if ty == GgmlType::F16 {
        v.iter().flat_map(|&x| f16::from_f32(x).to_bits().to_ne_bytes()).collect()
    } else {
        f32_bytes(&v)
    };
    (upload(be, ty, ne, &bytes), v)
}

fn round16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

#[test]
fn conv_2d_and_depthwise_f32_f16() {
    let be = backend();
    let mut rng = Rng::new(21);
    // (input [W, H, C, N], KW, KH, OC, s, p, d)
    type Case = ([i64; 4], i64, i64, i64, [i32; 2], [i32; 2], [i32; 2]);
    let cases: [Case; 3] = [
        ([9, 7, 3, 2], 3, 3, 5, [1, 1], [1, 1], [1, 1]),
        ([13, 11, 4, 1], 2, 3, 3, [2, 3], [0, 2], [2, 1]),
        ([6, 5, 1300, 1], 3, 3, 2, [1, 1], [1, 1], [1, 1]), // input channels over several dispatches
    ];
    for (ine, kw, kh, oc, s, p, d) in cases {
        for ty in [GgmlType::F32, GgmlType::F16] {
            let xv = rng.vec(n(ine));
            let x = upload(&be, GgmlType::F32, ine, &f32_bytes(&xv));
            let (ow, oh) = (out_size(ine[0], kw, s[0], p[0], d[0]), out_size(ine[1], kh, s[1], p[1], d[1]));
            // CONV_2D
            let (k, kv) = kernel(&be, &mut rng, ty, [kw, kh, ine[2], oc]);
            let dne = [ow, oh, oc, ine[3]];
            let dst = output(&be, dne);
            run(&be, Op::Conv2d { s, p, d }, &[&k, &x], &dst);
            let mut want = vec![0f32; n(dne)];
            for b in 0..ine[3] {
                for o in 0..oc {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let mut acc = 0f32;
                            for c in 0..ine[2] {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = y * i64::from(s[1]) + ky * i64::from(d[1]) - i64::from(p[1]);
                                        let ix = xx * i64::from(s[0]) + kx * i64::from(d[0]) - i64::from(p[0]);
                                        if iy < 0 || iy >= ine[1] || ix < 0 || ix >= ine[0] {
                                            continue;
                                        }
                                        let v = xv[(((b * ine[2] + c) * ine[1] + iy) * ine[0] + ix) as usize];
                                        let w = kv[(((o * ine[2] + c) * kh + ky) * kw + kx) as usize];
                                        acc += if ty == GgmlType::F16 { round16(v) } else { v } * w;
                                    }
                                }
                            }
                            want[(((b * oc + o) * oh + y) * ow + xx) as usize] = acc;
                        }
                    }
                }
            }
            assert_close(&format!("conv_2d {} {ine:?}", ty.name()), &download(&dst), &want, 2e-4);
            // CONV_2D_DW: one kernel plane per channel, no rounding of the input.
            let (kd, kdv) = kernel(&be, &mut rng, ty, [kw, kh, 1, ine[2]]);
            let ddne = [ow, oh, ine[2], ine[3]];
            let ddst = output(&be, ddne);
            run(&be, Op::Conv2dDw { s, p, d }, &[&kd, &x], &ddst);
            let mut dwant = vec![0f32; n(ddne)];
            for b in 0..ine[3] {
                for c in 0..ine[2] {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let mut acc = 0f32;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = y * i64::from(s[1]) + ky * i64::from(d[1]) - i64::from(p[1]);
                                    let ix = xx * i64::from(s[0]) + kx * i64::from(d[0]) - i64::from(p[0]);
                                    if iy < 0 || iy >= ine[1] || ix < 0 || ix >= ine[0] {
                                        continue;
                                    }
                                    acc += kdv[((c * kh + ky) * kw + kx) as usize]
                                        * xv[(((b * ine[2] + c) * ine[1] + iy) * ine[0] + ix) as usize];
                                }
                            }
                            dwant[(((b * ine[2] + c) * oh + y) * ow + xx) as usize] = acc;
                        }
                    }
                }
            }
            assert_close(&format!("conv_2d_dw {} {ine:?}", ty.name()), &download(&ddst), &dwant, 1e-5);
            // A dst of the wrong shape is refused.
            let wrong = output(&be, [ow + 1, oh, oc, ine[3]]);
            assert!(refused(Op::Conv2d { s, p, d }, &[&k, &x], &wrong));
        }
    }
    assert_no_validation_errors();
}

#[test]
fn conv_3d_f32_f16() {
    let be = backend();
    let mut rng = Rng::new(22);
    // (W, H, D, IC, N, KW, KH, KD, OC, s, p, d)
    for (w, h, dd, ic, nb, kw, kh, kd, oc, s, p, d) in [
        (7i64, 6i64, 5i64, 2i64, 2i64, 3i64, 2i64, 3i64, 3i64, [1, 2, 1], [1, 0, 1], [1, 1, 2]),
        (5, 4, 6, 3, 1, 1, 3, 2, 2, [2, 1, 3], [0, 1, 2], [1, 2, 1]),
    ] {
        for ty in [GgmlType::F32, GgmlType::F16] {
            let ine = [w, h, dd, ic * nb];
            let xv = rng.vec(n(ine));
            let x = upload(&be, GgmlType::F32, ine, &f32_bytes(&xv));
            let (k, kv) = kernel(&be, &mut rng, ty, [kw, kh, kd, ic * oc]);
            let o = [
                out_size(w, kw, s[0], p[0], d[0]),
                out_size(h, kh, s[1], p[1], d[1]),
                out_size(dd, kd, s[2], p[2], d[2]),
            ];
            let dne = [o[0], o[1], o[2], oc * nb];
            let dst = output(&be, dne);
            let op = Op::Conv3d { s, p, d, ic: ic as i32, n: nb as i32, oc: oc as i32 };
            run(&be, op, &[&k, &x], &dst);
            let mut want = vec![0f32; n(dne)];
            for b in 0..nb {
                for q in 0..oc {
                    for z in 0..o[2] {
                        for y in 0..o[1] {
                            for xx in 0..o[0] {
                                let mut acc = 0f32;
                                for c in 0..ic {
                                    for kz in 0..kd {
                                        for ky in 0..kh {
                                            for kx in 0..kw {
                                                let iz = z * i64::from(s[2]) + kz * i64::from(d[2]) - i64::from(p[2]);
                                                let iy = y * i64::from(s[1]) + ky * i64::from(d[1]) - i64::from(p[1]);
                                                let ix = xx * i64::from(s[0]) + kx * i64::from(d[0]) - i64::from(p[0]);
                                                if iz < 0 || iz >= dd || iy < 0 || iy >= h || ix < 0 || ix >= w {
                                                    continue;
                                                }
                                                let v = xv[((((b * ic + c) * dd + iz) * h + iy) * w + ix) as usize];
                                                let wt = kv[((((q * ic + c) * kd + kz) * kh + ky) * kw + kx) as usize];
                                                acc += if ty == GgmlType::F16 { round16(v) } else { v } * wt;
                                            }
                                        }
                                    }
                                }
                                want[((((b * oc + q) * o[2] + z) * o[1] + y) * o[0] + xx) as usize] = acc;
                            }
                        }
                    }
                }
            }
            assert_close(&format!("conv_3d {}", ty.name()), &download(&dst), &want, 2e-4);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn conv_transpose_2d_f32_f16() {
    let be = backend();
    let mut rng = Rng::new(23);
    for (ine, kne, stride) in [([5i64, 4, 3, 1], [3i64, 2, 4, 3], 1i32), ([6, 5, 2, 2], [3, 3, 3, 2], 2)] {
        for ty in [GgmlType::F32, GgmlType::F16] {
            let xv = rng.vec(n(ine));
            let x = upload(&be, GgmlType::F32, ine, &f32_bytes(&xv));
            let (k, kv) = kernel(&be, &mut rng, ty, kne);
            let s = i64::from(stride);
            let dne = [(ine[0] - 1) * s + kne[0], (ine[1] - 1) * s + kne[1], kne[2], ine[3]];
            let dst = output(&be, dne);
            run(&be, Op::ConvTranspose2d { stride }, &[&k, &x], &dst);
            let mut want = vec![0f32; n(dne)];
            for b in 0..ine[3] {
                for co in 0..kne[2] {
                    for i11 in 0..ine[1] {
                        for i10 in 0..ine[0] {
                            for i01 in 0..kne[1] {
                                for i00 in 0..kne[0] {
                                    let mut v = 0f32;
                                    for ci in 0..ine[2] {
                                        let xin = xv[(((b * ine[2] + ci) * ine[1] + i11) * ine[0] + i10) as usize];
                                        let xin = if ty == GgmlType::F16 { round16(xin) } else { xin };
                                        v += xin * kv[(((ci * kne[2] + co) * kne[1] + i01) * kne[0] + i00) as usize];
                                    }
                                    let (y, xx) = (i11 * s + i01, i10 * s + i00);
                                    want[(((b * dne[2] + co) * dne[1] + y) * dne[0] + xx) as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
            assert_close(&format!("conv_transpose_2d {}", ty.name()), &download(&dst), &want, 2e-4);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn timestep_embedding_even_and_odd_dims() {
    let be = backend();
    let ts = [0.0f32, 1.0, 17.5, 999.0];
    let t = upload(&be, GgmlType::F32, [4, 1, 1, 1], &f32_bytes(&ts));
    for (dim, max_period) in [(320i32, 10000i32), (33, 100)] {
        let dst = output(&be, [i64::from(dim), 4, 1, 1]);
        run(&be, Op::TimestepEmbedding { dim, max_period }, &[&t], &dst);
        let half = dim / 2;
        let mut want = Vec::new();
        for &tv in &ts {
            let mut row = vec![0f32; dim as usize];
            for j in 0..half {
                let freq = (-(max_period as f32).ln() * j as f32 / half as f32).exp();
                row[j as usize] = (tv * freq).cos();
                row[(j + half) as usize] = (tv * freq).sin();
            }
            want.extend(row);
        }
        // Large arguments (t * freq up to 999) lose digits in any f32 cos/sin: compare absolutely.
        for (i, (g, w)) in download(&dst).iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 2e-3, "timestep_embedding dim {dim}: element {i}: got {g}, want {w}");
        }
        let wrong = output(&be, [i64::from(dim) + 1, 4, 1, 1]);
        assert!(refused(Op::TimestepEmbedding { dim, max_period }, &[&t], &wrong));
    }
    assert_no_validation_errors();
}

/// Values of a contiguous `[n0, n1, n2, n3]` tensor `v` stored in the order of `perm` (innermost first): the
/// storage and the byte strides that view it back with the original shape.
fn permuted(v: &[f32], ne: [i64; 4], perm: [usize; 4]) -> (Vec<f32>, [u64; 4]) {
    let mut nb = [0u64; 4];
    let mut step = 4u64;
    for &d in &perm {
        nb[d] = step;
        step *= ne[d] as u64;
    }
    let mut out = vec![0f32; v.len()];
    for i3 in 0..ne[3] {
        for i2 in 0..ne[2] {
            for i1 in 0..ne[1] {
                for i0 in 0..ne[0] {
                    let src = (((i3 * ne[2] + i2) * ne[1] + i1) * ne[0] + i0) as usize;
                    let at = [i0, i1, i2, i3].iter().zip(&nb).map(|(&i, &b)| i as u64 * b / 4).sum::<u64>();
                    out[at as usize] = v[src];
                }
            }
        }
    }
    (out, nb)
}

#[test]
fn conv_2d_cwhn_layouts_match_whcn() {
    let be = backend();
    let mut rng = Rng::new(24);
    let (ine, kne) = ([9i64, 8, 5, 2], [3i64, 3, 5, 4]);
    let (s, p, d) = ([1, 2], [1, 0], [1, 1]);
    let (xv, kv) = (rng.vec(ine.iter().product::<i64>() as usize), rng.vec(kne.iter().product::<i64>() as usize));
    let x = upload(&be, GgmlType::F32, ine, &f32_bytes(&xv));
    let k = upload(&be, GgmlType::F32, kne, &f32_bytes(&kv));
    let dne = [out_size(9, 3, s[0], p[0], d[0]), out_size(8, 3, s[1], p[1], d[1]), 4, 2];
    let want = output(&be, dne);
    run(&be, Op::Conv2d { s, p, d }, &[&k, &x], &want);
    // Channels innermost for the input (C, W, H, N) and the kernel (OC, IC, KW, KH), as ggml's CWHN tests lay them.
    let (xs, xnb) = permuted(&xv, ine, [2, 0, 1, 3]);
    let (ks, knb) = permuted(&kv, kne, [3, 2, 0, 1]);
    let xb = upload(&be, GgmlType::F32, [xs.len() as i64, 1, 1, 1], &f32_bytes(&xs));
    let kb = upload(&be, GgmlType::F32, [ks.len() as i64, 1, 1, 1], &f32_bytes(&ks));
    let xt = Tensor::new(xb.buffer.clone(), 0, GgmlType::F32, ine, xnb).unwrap();
    let kt = Tensor::new(kb.buffer.clone(), 0, GgmlType::F32, kne, knb).unwrap();
    let got = output(&be, dne);
    run(&be, Op::Conv2d { s, p, d }, &[&kt, &xt], &got);
    let (g, w) = (download(&got), download(&want));
    assert!(g.iter().zip(&w).all(|(a, b)| a.to_bits() == b.to_bits()), "CWHN result differs from WHCN");
    // Depthwise in CWHN: input, kernel and dst with channels innermost, as ggml_conv_2d_dw_direct makes them.
    let kdne = [3i64, 3, 1, 5];
    let kdv = rng.vec(45);
    let kd = upload(&be, GgmlType::F32, kdne, &f32_bytes(&kdv));
    let ddne = [out_size(9, 3, s[0], p[0], d[0]), out_size(8, 3, s[1], p[1], d[1]), 5, 2];
    let dwant = output(&be, ddne);
    run(&be, Op::Conv2dDw { s, p, d }, &[&kd, &x], &dwant);
    let (kds, kdnb) = permuted(&kdv, kdne, [3, 0, 1, 2]);
    let kdb = upload(&be, GgmlType::F32, [45, 1, 1, 1], &f32_bytes(&kds));
    let kdt = Tensor::new(kdb.buffer.clone(), 0, GgmlType::F32, kdne, kdnb).unwrap();
    let n_out = ddne.iter().product::<i64>();
    let dbuf = output(&be, [n_out, 1, 1, 1]);
    let (_, dnb) = permuted(&vec![0.0; n_out as usize], ddne, [2, 0, 1, 3]);
    let dt = Tensor::new(dbuf.buffer.clone(), 0, GgmlType::F32, ddne, dnb).unwrap();
    run(&be, Op::Conv2dDw { s, p, d }, &[&kdt, &xt], &dt);
    let (cw, _) = permuted(&download(&dwant), ddne, [2, 0, 1, 3]);
    let got = download(&dbuf);
    assert!(got.iter().zip(&cw).all(|(a, b)| a.to_bits() == b.to_bits()), "CWHN depthwise differs from WHCN");
    // Mixed layouts (a CWHN input with a WHCN kernel) have no meaning in ggml's CPU backend: declined.
    let mixed = output(&be, ddne);
    assert!(refused(Op::Conv2dDw { s, p, d }, &[&kd, &xt], &mixed));
    assert_no_validation_errors();
}
