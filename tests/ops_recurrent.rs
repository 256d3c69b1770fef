//! The ops of recurrent models (SSM_CONV, SSM_SCAN, RWKV_WKV6, GATED_LINEAR_ATTN, RWKV_WKV7, GATED_DELTA_NET)
//! against CPU references written from ggml's CPU semantics, on the default Vulkan device (lavapipe in CI),
//! validation on.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Backend, Op, Tensor};

fn f32s(be: &Backend, ne: [i64; 4], v: &[f32]) -> Tensor {
    upload(be, GgmlType::F32, ne, &f32_bytes(v))
}

fn i32s(be: &Backend, v: &[i32]) -> Tensor {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_ne_bytes()).collect();
    upload(be, GgmlType::I32, [v.len() as i64, 1, 1, 1], &bytes)
}

fn n(ne: [i64; 4]) -> usize {
    ne.iter().product::<i64>() as usize
}

#[test]
fn ssm_conv_matches_reference() {
    let be = backend();
    let mut rng = Rng::new(3);
    for (nc, ni, nt, ns) in [(4i64, 24i64, 1i64, 1i64), (4, 40, 7, 3), (3, 5, 64, 2)] {
        let sne = [nc - 1 + nt, ni, ns, 1];
        let cne = [nc, ni, 1, 1];
        let sv = rng.vec(n(sne));
        let cv = rng.vec(n(cne));
        let (sx, c) = (f32s(&be, sne, &sv), f32s(&be, cne, &cv));
        let dne = [ni, nt, ns, 1];
        let d = output(&be, dne);
        run(&be, Op::SsmConv, &[&sx, &c], &d);
        let mut want = vec![0f32; n(dne)];
        for i3 in 0..ns {
            for i2 in 0..nt {
                for i1 in 0..ni {
                    let mut sum = 0f32;
                    for i0 in 0..nc {
                        sum +=
                            sv[(i3 * sne[1] * sne[0] + i1 * sne[0] + i2 + i0) as usize] * cv[(i1 * nc + i0) as usize];
                    }
                    want[(i1 + i2 * ni + i3 * ni * nt) as usize] = sum;
                }
            }
        }
        assert_close("ssm_conv", &download(&d), &want, 1e-6);
        let wrong = output(&be, [ni, nt + 1, ns, 1]);
        assert!(refused(Op::SsmConv, &[&sx, &c], &wrong));
    }
    assert_no_validation_errors();
}

/// ggml's SSM_SCAN on contiguous tensors: returns y then the K state sets.
#[allow(clippy::too_many_arguments)]
fn ref_ssm_scan(
    s: &[f32],
    sne: [i64; 4],
    x: &[f32],
    xne: [i64; 4],
    dt: &[f32],
    a: &[f32],
    a_ne0: usize,
    b: &[f32],
    c: &[f32],
    ng: usize,
    ids: &[i32],
    k: usize,
) -> Vec<f32> {
    let (nc, nr, nh, nt, ns) = (sne[0] as usize, xne[0] as usize, xne[1] as usize, xne[2] as usize, xne[3] as usize);
    let state_n = nc * nr * nh;
    let y_n = nr * nh * nt * ns;
    let mut out = vec![0f32; y_n + k * state_n * ns];
    for i3 in 0..ns {
        let mut st: Vec<f32> = s[ids[i3] as usize * state_n..][..state_n].to_vec();
        for i2 in 0..nt {
            for h in 0..nh {
                let dtv = dt[h + (i2 + i3 * nt) * nh];
                let dsp = if dtv > 20.0 { dtv } else { (1.0 + dtv.exp()).ln() };
                let g = h / (nh / ng);
                for i1 in 0..nr {
                    let ii = i1 + h * nr;
                    let x_dt = x[ii + (i2 + i3 * nt) * nr * nh] * dsp;
                    let mut sum = 0f32;
                    for i0 in 0..nc {
                        let da = (dsp * a[h * a_ne0 + if a_ne0 == 1 { 0 } else { i0 }]).exp();
                        let bc = i0 + g * nc + (i2 + i3 * nt) * nc * ng;
                        let v = st[ii * nc + i0] * da + b[bc] * x_dt;
                        sum += v * c[bc];
                        st[ii * nc + i0] = v;
                    }
                    out[ii + (i2 + i3 * nt) * nr * nh] = sum;
                }
            }
            let slot = nt - 1 - i2;
            if k > 1 && slot > 0 && slot < k {
                out[y_n + (slot * ns + i3) * state_n..][..state_n].copy_from_slice(&st);
            }
        }
        out[y_n + i3 * state_n..][..state_n].copy_from_slice(&st);
    }
    out
}

#[test]
fn ssm_scan_mamba1_mamba2_snapshots() {
    let be = backend();
    let mut rng = Rng::new(5);
    // (d_state, head_dim, n_head, n_group, tokens, seqs, K)
    for (nc, nr, nh, ng, nt, ns, k) in [
        (16usize, 1usize, 24usize, 1usize, 5usize, 3usize, 1usize),
        (32, 8, 4, 2, 9, 2, 1),
        (32, 8, 4, 2, 6, 2, 3),
        (8, 80, 16, 1, 512, 1, 1),
        // More loop iterations than lavapipe runs in one shader: the tokens go in several dispatches.
        (16, 4, 2, 1, 5000, 1, 2),
    ] {
        let mamba1 = nr == 1;
        let a_ne0 = if mamba1 { nc } else { 1 };
        let sne = [nc as i64, nr as i64, nh as i64, ns as i64];
        let xne = [nr as i64, nh as i64, nt as i64, ns as i64];
        let bne = [nc as i64, ng as i64, nt as i64, ns as i64];
        let sv = rng.vec(n(sne));
        let xv = rng.vec(n(xne));
        let dtv = rng.vec(nh * nt * ns);
        let av: Vec<f32> = (0..a_ne0 * nh).map(|_| -0.5 - 0.5 * rng.f32().abs()).collect();
        let bv = rng.vec(n(bne));
        let cv = rng.vec(n(bne));
        let ids: Vec<i32> = (0..ns as i32).rev().collect();
        let s = f32s(&be, sne, &sv);
        let x = f32s(&be, xne, &xv);
        let dt = f32s(&be, [nh as i64, nt as i64, ns as i64, 1], &dtv);
        let a = f32s(&be, [a_ne0 as i64, nh as i64, 1, 1], &av);
        let b = f32s(&be, bne, &bv);
        let c = f32s(&be, bne, &cv);
        let it = i32s(&be, &ids);
        let want = ref_ssm_scan(&sv, sne, &xv, xne, &dtv, &av, a_ne0, &bv, &cv, ng, &ids, k);
        let d = output(&be, [want.len() as i64, 1, 1, 1]);
        let op = Op::SsmScan { k: k as i32 };
        run(&be, op.clone(), &[&s, &x, &dt, &a, &b, &c, &it], &d);
        assert_close(&format!("ssm_scan nc {nc} nr {nr} nt {nt} K {k}"), &download(&d), &want, 1e-4);
        if mamba1 {
            // ggml has no rollback snapshots for per-state decay.
            let d3 = output(&be, [(want.len() + 2 * nc * nr * nh * ns) as i64, 1, 1, 1]);
            assert!(refused(Op::SsmScan { k: 3 }, &[&s, &x, &dt, &a, &b, &c, &it], &d3));
        }
    }
    assert_no_validation_errors();
}

/// ggml's RWKV_WKV6 (`gla` false: srcs k, v, r, u, w) or GATED_LINEAR_ATTN (`gla` true: k, v, q, g; `u` unused).
#[allow(clippy::too_many_arguments)]
fn ref_wkv(
    gla: bool,
    sz: usize,
    h: usize,
    t: usize,
    n_seqs: usize,
    k: &[f32],
    v: &[f32],
    r: &[f32],
    u: &[f32],
    w: &[f32],
    s0: &[f32],
    scale: f32,
) -> Vec<f32> {
    let c = sz * h;
    let mut out = vec![0f32; c * t + sz * c * n_seqs];
    let per = t / n_seqs;
    let (y, st) = out.split_at_mut(c * t);
    for tok in 0..t {
        let seq = tok / per;
        if tok % per == 0 {
            st[seq * sz * c..][..sz * c].copy_from_slice(&s0[seq * sz * c..][..sz * c]);
        }
        for hh in 0..h {
            for i in 0..sz {
                let ti = tok * c + hh * sz + i;
                for j in 0..sz {
                    let tj = tok * c + hh * sz + j;
                    let si = seq * sz * c + hh * sz * sz + i * sz + j;
                    let kv = v[tj] * k[ti];
                    let prev = st[si];
                    if gla {
                        let temp = prev * w[ti] + kv;
                        y[tj] += temp * (r[ti] * scale);
                        st[si] = temp;
                    } else {
                        y[tj] += (kv * u[hh * sz + i] + prev) * r[ti];
                        st[si] = prev * w[ti] + kv;
                    }
                }
            }
        }
    }
    out
}

#[test]
fn rwkv_wkv6_and_gated_linear_attn() {
    let be = backend();
    let mut rng = Rng::new(9);
    for (sz, h, per, n_seqs) in [(16usize, 3usize, 1usize, 1usize), (32, 2, 5, 3), (16, 1, 4500, 1)] {
        let t = per * n_seqs;
        let tne = [sz as i64, h as i64, t as i64, 1];
        let (kv, vv, rv) = (rng.vec(sz * h * t), rng.vec(sz * h * t), rng.vec(sz * h * t));
        let uv = rng.vec(sz * h);
        let wv: Vec<f32> = (0..sz * h * t).map(|_| rng.f32().abs()).collect();
        let s0v = rng.vec(sz * sz * h * n_seqs);
        let (k, v, r) = (f32s(&be, tne, &kv), f32s(&be, tne, &vv), f32s(&be, tne, &rv));
        let u = f32s(&be, [sz as i64, h as i64, 1, 1], &uv);
        let w = f32s(&be, tne, &wv);
        let s0 = f32s(&be, [(sz * sz * h) as i64, n_seqs as i64, 1, 1], &s0v);
        let dne = [(sz * h) as i64, (t + sz * n_seqs) as i64, 1, 1];
        let d = output(&be, dne);
        run(&be, Op::RwkvWkv6, &[&k, &v, &r, &u, &w, &s0], &d);
        let want = ref_wkv(false, sz, h, t, n_seqs, &kv, &vv, &rv, &uv, &wv, &s0v, 1.0);
        assert_close("rwkv_wkv6", &download(&d), &want, 1e-4);
        let d = output(&be, dne);
        run(&be, Op::GatedLinearAttn { scale: 0.37 }, &[&k, &v, &r, &w, &s0], &d);
        let want = ref_wkv(true, sz, h, t, n_seqs, &kv, &vv, &rv, &uv, &wv, &s0v, 0.37);
        assert_close("gated_linear_attn", &download(&d), &want, 1e-4);
    }
    assert_no_validation_errors();
}

#[test]
fn rwkv_wkv7_matches_reference() {
    let be = backend();
    let mut rng = Rng::new(11);
    for (sz, h, per, n_seqs) in [(16usize, 2usize, 1usize, 1usize), (32, 3, 4, 2), (16, 1, 2500, 1)] {
        let t = per * n_seqs;
        let c = sz * h;
        let tne = [sz as i64, h as i64, t as i64, 1];
        // a and b small and the decay below 1, so that long sequences stay finite.
        let vals: Vec<Vec<f32>> =
            (0..6).map(|i| rng.vec(c * t).iter().map(|x| if i >= 4 { x * 0.05 } else { *x }).collect()).collect();
        let wv: Vec<f32> = vals[1].iter().map(|x| x.abs() * 0.9).collect();
        let s0v = rng.vec(sz * c * n_seqs);
        let ins: Vec<Tensor> = (0..6).map(|i| f32s(&be, tne, if i == 1 { &wv } else { &vals[i] })).collect();
        let s0 = f32s(&be, [(sz * c) as i64, n_seqs as i64, 1, 1], &s0v);
        let d = output(&be, [c as i64, (t + sz * n_seqs) as i64, 1, 1]);
        let srcs: Vec<&Tensor> = ins.iter().chain(std::iter::once(&s0)).collect();
        run(&be, Op::RwkvWkv7, &srcs, &d);
        let (r, k, v, a, b) = (&vals[0], &vals[2], &vals[3], &vals[4], &vals[5]);
        let mut want = vec![0f32; c * t + sz * c * n_seqs];
        let (y, st) = want.split_at_mut(c * t);
        for tok in 0..t {
            let seq = tok / per;
            if tok % per == 0 {
                st[seq * sz * c..][..sz * c].copy_from_slice(&s0v[seq * sz * c..][..sz * c]);
            }
            for hh in 0..h {
                let th = tok * c + hh * sz;
                for i in 0..sz {
                    let row = seq * sz * c + hh * sz * sz + i * sz;
                    let sa: f32 = (0..sz).fold(0.0, |acc, j| acc + a[th + j] * st[row + j]);
                    let mut res = 0f32;
                    for j in 0..sz {
                        let s = st[row + j] * wv[th + j] + v[th + i] * k[th + j] + sa * b[th + j];
                        st[row + j] = s;
                        res += s * r[th + j];
                    }
                    y[th + i] = res;
                }
            }
        }
        assert_close("rwkv_wkv7", &download(&d), &want, 1e-4);
    }
    assert_no_validation_errors();
}

#[test]
fn gated_delta_net_scalar_and_vector_gate_snapshots() {
    let be = backend();
    let mut rng = Rng::new(13);
    // (S, H, q/k heads, tokens, seqs, vector gate, K)
    for (sv, h, hq, nt, ns, kda, snaps) in [
        (16usize, 4usize, 4usize, 1usize, 1usize, false, 1usize),
        (16, 4, 2, 5, 2, true, 1),
        (8, 2, 2, 4, 2, false, 3),
        (8, 2, 1, 6, 2, true, 2),
        (16, 1, 1, 2000, 1, true, 2),
    ] {
        let vne = [sv as i64, h as i64, nt as i64, ns as i64];
        let qne = [sv as i64, hq as i64, nt as i64, ns as i64];
        let gne0 = if kda { sv } else { 1 };
        let (qv, kv, vv) = (rng.vec(n(qne)), rng.vec(n(qne)), rng.vec(n(vne)));
        let gv: Vec<f32> = (0..gne0 * h * nt * ns).map(|_| -rng.f32().abs()).collect();
        let bv: Vec<f32> = (0..h * nt * ns).map(|_| rng.f32().abs()).collect();
        let s0v = rng.vec(sv * sv * h * ns);
        let q = f32s(&be, qne, &qv);
        let k = f32s(&be, qne, &kv);
        let v = f32s(&be, vne, &vv);
        let g = f32s(&be, [gne0 as i64, h as i64, nt as i64, ns as i64], &gv);
        let beta = f32s(&be, [1, h as i64, nt as i64, ns as i64], &bv);
        let s0 = f32s(&be, [sv as i64, sv as i64, h as i64, ns as i64], &s0v);
        let attn_n = sv * h * nt * ns;
        let ss = sv * sv;
        let mut want = vec![0f32; attn_n + snaps * ss * h * ns];
        let scale = 1.0 / (sv as f32).sqrt();
        for s in 0..ns {
            for hh in 0..h {
                // m[j * S + i] = S[i][j]
                let mut m: Vec<f32> = s0v[(s * h + hh) * ss..][..ss].to_vec();
                for t in 0..nt {
                    let qb = ((s * nt + t) * hq + hh % hq) * sv;
                    let vb = ((s * nt + t) * h + hh) * sv;
                    let gi = (s * nt + t) * h + hh;
                    for j in 0..sv {
                        for i in 0..sv {
                            m[j * sv + i] *= gv[gi * gne0 + if kda { i } else { 0 }].exp();
                        }
                    }
                    let delta: Vec<f32> = (0..sv)
                        .map(|j| (vv[vb + j] - (0..sv).fold(0.0, |acc, i| acc + m[j * sv + i] * kv[qb + i])) * bv[gi])
                        .collect();
                    for j in 0..sv {
                        for i in 0..sv {
                            m[j * sv + i] += kv[qb + i] * delta[j];
                        }
                        let o = (0..sv).fold(0.0, |acc, i| acc + m[j * sv + i] * qv[qb + i]);
                        want[vb + j] = o * scale;
                    }
                    let slot = nt - 1 - t;
                    if slot < snaps {
                        want[attn_n + slot * ss * h * ns + (s * h + hh) * ss..][..ss].copy_from_slice(&m);
                    }
                }
            }
        }
        let d = output(&be, [(sv * h) as i64, (nt * ns + snaps * sv * ns) as i64, 1, 1]);
        run(&be, Op::GatedDeltaNet { k: snaps as i32 }, &[&q, &k, &v, &g, &beta, &s0], &d);
        assert_close(&format!("gated_delta_net kda {kda} K {snaps}"), &download(&d), &want, 1e-4);
    }
    assert_no_validation_errors();
}
