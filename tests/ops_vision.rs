//! The ops of vision and audio encoders (REPEAT, CONCAT, PAD, PAD_REFLECT_1D, ROLL, ARANGE, CUMSUM, IM2COL, IM2COL_3D, POOL_1D,
//! POOL_2D, UPSCALE, CONV_TRANSPOSE_1D, COL2IM_1D) and the other movement ops (DIAG, REPEAT_BACK) against CPU
//! references written from ggml's CPU semantics, on the default Vulkan device (lavapipe in CI), validation on. Data movement and im2col are compared bit for bit; arithmetic
//! ops within a small tolerance (or bit for bit where the order of operations is ggml's).

mod common;

use common::*;
use ggvk::graph::{PoolOp, ScaleMode};
use ggvk::quant::GgmlType;
use ggvk::{Backend, Op, Tensor};
use half::f16;

fn strides(es: u64, ne: [i64; 4]) -> [u64; 4] {
    let mut nb = [es, 0, 0, 0];
    for d in 1..4 {
        nb[d] = nb[d - 1] * ne[d - 1] as u64;
    }
    nb
}

/// Linear index of `i` in a contiguous tensor of shape `ne`.
fn lin(ne: [i64; 4], i: [i64; 4]) -> usize {
    (((i[3] * ne[2] + i[2]) * ne[1] + i[1]) * ne[0] + i[0]) as usize
}

/// Every index of shape `ne` in logical order.
fn indices(ne: [i64; 4]) -> impl Iterator<Item = [i64; 4]> {
    let n: i64 = ne.iter().product();
    (0..n).map(move |mut k| {
        ne.map(|d| {
            let i = k % d;
            k /= d;
            i
        })
    })
}

/// A tensor of 32-bit elements with the given bits, contiguous.
fn upload_bits32(be: &Backend, ty: GgmlType, ne: [i64; 4], bits: &[u32]) -> Tensor {
    let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_ne_bytes()).collect();
    upload(be, ty, ne, &bytes)
}

/// A tensor of 16-bit elements with the given bits, contiguous.
fn upload_bits16(be: &Backend, ty: GgmlType, ne: [i64; 4], bits: &[u16]) -> Tensor {
    let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_ne_bytes()).collect();
    upload(be, ty, ne, &bytes)
}

/// A poisoned contiguous output tensor of `ty`.
fn out_tensor(be: &Backend, ty: GgmlType, ne: [i64; 4]) -> Tensor {
    let n = ne.iter().product::<i64>() as u64 * ty.type_size() as u64;
    let buf = be.alloc(n.max(4)).unwrap();
    buf.fill(0, buf.size(), 0xFF).unwrap();
    Tensor::contiguous(buf, 0, ty, ne).unwrap()
}

fn read_u16(t: &Tensor) -> Vec<u16> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).unwrap();
    out.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect()
}

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: got {g}, want {w}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Data movement

#[test]
fn repeat_f32_permuted_f16_bf16() {
    let be = backend();
    let mut rng = Rng::new(1);
    // F32 source stored [5, 3, 2, 1] and viewed transposed as [3, 5, 2, 1].
    let store = [5i64, 3, 2, 1];
    let vals = rng.vec(30);
    let base = upload(&be, GgmlType::F32, store, &f32_bytes(&vals));
    let nb = strides(4, store);
    let ne_a = [3i64, 5, 2, 1];
    let a = Tensor::new(base.buffer.clone(), 0, GgmlType::F32, ne_a, [nb[1], nb[0], nb[2], nb[3]]).unwrap();
    let ne = [6i64, 5, 4, 3];
    let d = output(&be, ne);
    run(&be, Op::Repeat, &[&a], &d);
    let want: Vec<f32> = indices(ne)
        .map(|i| {
            let k = [i[0] % 3, i[1] % 5, i[2] % 2, 0];
            vals[(k[1] + 5 * (k[0] + 3 * k[2])) as usize]
        })
        .collect();
    assert_bits("repeat f32", &download(&d), &want);

    for ty in [GgmlType::F16, GgmlType::BF16] {
        let ne_a = [7i64, 2, 1, 3];
        let bits: Vec<u16> = (0..42).map(|_| rng.next_u64() as u16).collect();
        let a = upload_bits16(&be, ty, ne_a, &bits);
        let ne = [14i64, 4, 3, 3];
        let d = out_tensor(&be, ty, ne);
        run(&be, Op::Repeat, &[&a], &d);
        let want: Vec<u16> = indices(ne).map(|i| bits[lin(ne_a, [i[0] % 7, i[1] % 2, 0, i[3] % 3])]).collect();
        assert_eq!(read_u16(&d), want, "repeat {}", ty.name());
    }
    // dst dims must be multiples of src0's.
    let bad = output(&be, [7, 5, 4, 3]);
    assert!(refused(Op::Repeat, &[&a], &bad));
    assert_no_validation_errors();
}

#[test]
fn concat_every_dim_f32_i32_f16() {
    let be = backend();
    let mut rng = Rng::new(2);
    for dim in 0..4usize {
        let ne_a = [4i64, 3, 2, 2];
        let mut ne_b = ne_a;
        ne_b[dim] = 3;
        let mut ne = ne_a;
        ne[dim] += 3;
        // src1 is a padded sub-block of a larger tensor.
        let big = [ne_b[0] + 2, ne_b[1] + 1, ne_b[2], ne_b[3]];
        let av: Vec<u32> = (0..ne_a.iter().product::<i64>()).map(|_| rng.next_u64() as u32).collect();
        let bv: Vec<u32> = (0..big.iter().product::<i64>()).map(|_| rng.next_u64() as u32).collect();
        for ty in [GgmlType::F32, GgmlType::I32] {
            let a = upload_bits32(&be, ty, ne_a, &av);
            let bb = upload_bits32(&be, ty, big, &bv);
            let b = Tensor::new(bb.buffer.clone(), 0, ty, ne_b, bb.nb).unwrap();
            let d = out_tensor(&be, ty, ne);
            run(&be, Op::Concat { dim: dim as i32 }, &[&a, &b], &d);
            let mut got = vec![0u8; d.nbytes() as usize];
            d.read(0, &mut got).unwrap();
            let got: Vec<u32> = got.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
            let want: Vec<u32> = indices(ne)
                .map(|i| {
                    if i[dim] < ne_a[dim] {
                        av[lin(ne_a, i)]
                    } else {
                        let mut j = i;
                        j[dim] -= ne_a[dim];
                        bv[lin(big, j)]
                    }
                })
                .collect();
            assert_eq!(got, want, "concat {} dim {dim}", ty.name());
        }
        let a16: Vec<u16> = av.iter().map(|&x| x as u16).collect();
        let b16: Vec<u16> = (0..ne_b.iter().product::<i64>()).map(|_| rng.next_u64() as u16).collect();
        let a = upload_bits16(&be, GgmlType::F16, ne_a, &a16);
        let b = upload_bits16(&be, GgmlType::F16, ne_b, &b16);
        let d = out_tensor(&be, GgmlType::F16, ne);
        run(&be, Op::Concat { dim: dim as i32 }, &[&a, &b], &d);
        let want: Vec<u16> = indices(ne)
            .map(|i| {
                if i[dim] < ne_a[dim] {
                    a16[lin(ne_a, i)]
                } else {
                    let mut j = i;
                    j[dim] -= ne_a[dim];
                    b16[lin(ne_b, j)]
                }
            })
            .collect();
        assert_eq!(read_u16(&d), want, "concat f16 dim {dim}");
        // Shapes that do not join, an out-of-range dim, mixed types: refused.
        let wrong = out_tensor(&be, GgmlType::F16, ne_a);
        assert!(refused(Op::Concat { dim: dim as i32 }, &[&a, &b], &wrong));
        assert!(refused(Op::Concat { dim: 4 }, &[&a, &b], &d));
        let b32 = output(&be, ne_b);
        assert!(refused(Op::Concat { dim: dim as i32 }, &[&a, &b32], &d));
    }
    assert_no_validation_errors();
}

#[test]
fn pad_zero_and_circular() {
    let be = backend();
    let mut rng = Rng::new(3);
    let ne_a = [5i64, 4, 3, 2];
    let vals = rng.vec(120);
    let a = upload(&be, GgmlType::F32, ne_a, &f32_bytes(&vals));
    for circular in [false, true] {
        let lp = [2, 0, 3, 1];
        let rp = [1, 4, 0, 2];
        let ne: [i64; 4] = std::array::from_fn(|d| ne_a[d] + i64::from(lp[d] + rp[d]));
        let d = output(&be, ne);
        run(&be, Op::Pad { lp, rp, circular }, &[&a], &d);
        let want: Vec<f32> = indices(ne)
            .map(|i| {
                let j: [i64; 4] = std::array::from_fn(|x| i[x] - i64::from(lp[x]));
                if circular {
                    let w: [i64; 4] = std::array::from_fn(|x| (j[x] + ne_a[x]) % ne_a[x]);
                    vals[lin(ne_a, w)]
                } else if (0..4).all(|x| j[x] >= 0 && j[x] < ne_a[x]) {
                    vals[lin(ne_a, j)]
                } else {
                    0.0
                }
            })
            .collect();
        assert_bits(&format!("pad circular={circular}"), &download(&d), &want);
    }
    // A circular left padding wider than the source has no ggml value; negative padding: refused.
    let d = output(&be, [12, 4, 3, 2]);
    assert!(refused(Op::Pad { lp: [6, 0, 0, 0], rp: [1, 0, 0, 0], circular: true }, &[&a], &d));
    let d = output(&be, [4, 4, 3, 2]);
    assert!(refused(Op::Pad { lp: [-1, 0, 0, 0], rp: [0, 0, 0, 0], circular: false }, &[&a], &d));
    assert_no_validation_errors();
}

#[test]
fn pad_reflect_1d_and_roll() {
    let be = backend();
    let mut rng = Rng::new(9);
    let ne_a = [7i64, 3, 2, 2];
    let vals = rng.vec(84);
    let a = upload(&be, GgmlType::F32, ne_a, &f32_bytes(&vals));
    for (p0, p1) in [(0i32, 0i32), (3, 2), (6, 6)] {
        let ne = [7 + i64::from(p0 + p1), 3, 2, 2];
        let d = output(&be, ne);
        run(&be, Op::PadReflect1d { p0, p1 }, &[&a], &d);
        let want: Vec<f32> = indices(ne)
            .map(|i| {
                let j = i[0] - i64::from(p0);
                let j = if j < 0 {
                    -j
                } else if j > 6 {
                    12 - j
                } else {
                    j
                };
                vals[lin(ne_a, [j, i[1], i[2], i[3]])]
            })
            .collect();
        assert_bits(&format!("pad_reflect_1d {p0} {p1}"), &download(&d), &want);
    }
    let d = output(&be, [14, 3, 2, 2]);
    assert!(refused(Op::PadReflect1d { p0: 7, p1: 0 }, &[&a], &d));

    for shift in [[3, -2, 1, -1], [0, 0, 0, 0], [-6, 2, -1, 1]] {
        let d = output(&be, ne_a);
        run(&be, Op::Roll { shift }, &[&a], &d);
        let want: Vec<f32> = indices(ne_a)
            .map(|i| {
                let j: [i64; 4] = std::array::from_fn(|x| (i[x] - i64::from(shift[x])).rem_euclid(ne_a[x]));
                vals[lin(ne_a, j)]
            })
            .collect();
        assert_bits(&format!("roll {shift:?}"), &download(&d), &want);
    }
    let d = output(&be, ne_a);
    assert!(refused(Op::Roll { shift: [7, 0, 0, 0] }, &[&a], &d));
    assert_no_validation_errors();
}

#[test]
fn arange_values() {
    let be = backend();
    for (start, stop, step) in [(0.0f32, 10.0f32, 1.0f32), (-3.5, 7.25, 0.3), (1.0, 40000.0, 0.7)] {
        let n = ((stop - start) / step).ceil() as i64;
        let d = output(&be, [n, 1, 1, 1]);
        run(&be, Op::Arange { start, stop, step }, &[], &d);
        let want: Vec<f32> = (0..n).map(|i| start + step * i as f32).collect();
        assert_bits(&format!("arange({start}, {stop}, {step})"), &download(&d), &want);
    }
    // The element count must be ggml's.
    let d = output(&be, [11, 1, 1, 1]);
    assert!(refused(Op::Arange { start: 0.0, stop: 10.0, step: 1.0 }, &[], &d));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// CUMSUM

#[test]
fn cumsum_rows() {
    let be = backend();
    let mut rng = Rng::new(4);
    for ne in [[1i64, 3, 1, 1], [5, 4, 3, 2], [513, 3, 1, 1], [3000, 2, 1, 2], [20481, 1, 1, 1]] {
        let n: i64 = ne.iter().product();
        let vals = rng.vec(n as usize);
        let a = upload(&be, GgmlType::F32, ne, &f32_bytes(&vals));
        let d = output(&be, ne);
        run(&be, Op::Cumsum, &[&a], &d);
        let mut want = vec![0f32; n as usize];
        for (row, w) in vals.chunks(ne[0] as usize).zip(want.chunks_mut(ne[0] as usize)) {
            let mut acc = 0f64;
            for (x, y) in row.iter().zip(w.iter_mut()) {
                acc += f64::from(*x);
                *y = acc as f32;
            }
        }
        // f32 sums in a different order than the exact one: a bound that grows with the row length.
        let tol = 1e-6 * (ne[0] as f32).sqrt();
        assert_close(&format!("cumsum {ne:?}"), &download(&d), &want, tol);
    }
    // Packed rows only.
    let a = upload(&be, GgmlType::F32, [4, 2, 1, 1], &f32_bytes(&[0.0; 8]));
    let v = Tensor::new(a.buffer.clone(), 0, GgmlType::F32, [2, 2, 1, 1], [8, 16, 32, 32]).unwrap();
    let d = output(&be, [2, 2, 1, 1]);
    assert!(refused(Op::Cumsum, &[&v], &d));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// IM2COL, IM2COL_3D

/// ggml_calc_conv_output_size.
fn conv_out(ins: i64, ks: i64, s: i64, p: i64, d: i64) -> i64 {
    (ins + 2 * p - d * (ks - 1) - 1) / s + 1
}

/// The 3-D unfolding (1-D and 2-D with unit extents): dst [IC*KD*KH*KW, OW, OH, OD*N] contiguous.
#[allow(clippy::too_many_arguments)]
fn im2col_ref(
    img: impl Fn(i64, i64, i64, i64, i64) -> f32,
    k: [i64; 4],
    o: [i64; 4],
    i: [i64; 3],
    s: [i64; 3],
    p: [i64; 3],
    d: [i64; 3],
) -> Vec<f32> {
    let mut out = Vec::new();
    for n in 0..o[3] {
        for od in 0..o[2] {
            for oh in 0..o[1] {
                for ow in 0..o[0] {
                    for ic in 0..k[3] {
                        for kd in 0..k[2] {
                            for kh in 0..k[1] {
                                for kw in 0..k[0] {
                                    let x = ow * s[0] + kw * d[0] - p[0];
                                    let y = oh * s[1] + kh * d[1] - p[1];
                                    let z = od * s[2] + kd * d[2] - p[2];
                                    let inside =
                                        (0..i[0]).contains(&x) && (0..i[1]).contains(&y) && (0..i[2]).contains(&z);
                                    out.push(if inside { img(x, y, z, ic, n) } else { 0.0 });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn im2col_2d_1d_3d() {
    let be = backend();
    let mut rng = Rng::new(5);
    // 2-D: image [9, 7, 3, 2], kernel [3, 2, 3, 4], strides (2, 1), padding (1, 2), dilation (1, 2).
    let ne_b = [9i64, 7, 3, 2];
    let img = rng.vec(ne_b.iter().product::<i64>() as usize);
    let b = upload(&be, GgmlType::F32, ne_b, &f32_bytes(&img));
    let kern = upload(&be, GgmlType::F16, [3, 2, 3, 4], &[0u8; 3 * 2 * 3 * 4 * 2]);
    let (s, p, d) = ([2i32, 1], [1i32, 2], [1i32, 2]);
    let ow = conv_out(9, 3, 2, 1, 1);
    let oh = conv_out(7, 2, 1, 2, 2);
    let want = im2col_ref(
        |x, y, _, c, n| img[lin(ne_b, [x, y, c, n])],
        [3, 2, 1, 3],
        [ow, oh, 1, 2],
        [9, 7, 1],
        [2, 1, 1],
        [1, 2, 0],
        [1, 2, 1],
    );
    let ne = [18, ow, oh, 2];
    let dst = output(&be, ne);
    run(&be, Op::Im2Col { s, p, d, is_2d: true }, &[&kern, &b], &dst);
    assert_bits("im2col 2-D f32", &download(&dst), &want);
    let dst16 = out_tensor(&be, GgmlType::F16, ne);
    run(&be, Op::Im2Col { s, p, d, is_2d: true }, &[&kern, &b], &dst16);
    let want16: Vec<u16> = want.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
    assert_eq!(read_u16(&dst16), want16, "im2col 2-D f32 -> f16");

    // 1-D (as ggml_conv_1d): input [20, 4, 3] (length, channels, batch), kernel [5, 4, 6], s 2, p 3, d 2; the
    // height's parameters are zeros.
    let ne_b = [20i64, 4, 3, 1];
    let sig = rng.vec(240);
    let b = upload(&be, GgmlType::F32, ne_b, &f32_bytes(&sig));
    let kern = upload(&be, GgmlType::F32, [5, 4, 6, 1], &[0u8; 5 * 4 * 6 * 4]);
    let ow = conv_out(20, 5, 2, 3, 2);
    let want = im2col_ref(
        |x, _, _, c, n| sig[lin(ne_b, [x, c, n, 0])],
        [5, 1, 1, 4],
        [ow, 1, 1, 3],
        [20, 1, 1],
        [2, 1, 1],
        [3, 0, 0],
        [2, 1, 1],
    );
    let dst = output(&be, [20, ow, 3, 1]);
    run(&be, Op::Im2Col { s: [2, 0], p: [3, 0], d: [2, 0], is_2d: false }, &[&kern, &b], &dst);
    assert_bits("im2col 1-D", &download(&dst), &want);

    // 3-D: volume [6, 5, 4, N * IC] with IC 2, N 2; kernel [2, 3, 2, OC * IC].
    let ne_b = [6i64, 5, 4, 4];
    let vol = rng.vec(ne_b.iter().product::<i64>() as usize);
    let b = upload(&be, GgmlType::F32, ne_b, &f32_bytes(&vol));
    let kern = upload(&be, GgmlType::F32, [2, 3, 2, 6], &[0u8; 2 * 3 * 2 * 6 * 4]);
    let (s, p, d) = ([1, 2, 1], [1, 0, 1], [2, 1, 1]);
    let o = [conv_out(6, 2, 1, 1, 2), conv_out(5, 3, 2, 0, 1), conv_out(4, 2, 1, 1, 1), 2];
    let want = im2col_ref(
        |x, y, z, c, n| vol[lin(ne_b, [x, y, z, n * 2 + c])],
        [2, 3, 2, 2],
        o,
        [6, 5, 4],
        [1, 2, 1],
        [1, 0, 1],
        [2, 1, 1],
    );
    let ne = [24, o[0], o[1], o[2] * 2];
    let dst16 = out_tensor(&be, GgmlType::F16, ne);
    run(&be, Op::Im2Col3d { s, p, d, ic: 2 }, &[&kern, &b], &dst16);
    let want16: Vec<u16> = want.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
    assert_eq!(read_u16(&dst16), want16, "im2col 3-D f32 -> f16");
    let dst = output(&be, ne);
    run(&be, Op::Im2Col3d { s, p, d, ic: 2 }, &[&kern, &b], &dst);
    assert_bits("im2col 3-D", &download(&dst), &want);
    // A dst of the wrong shape, a zero stride: refused.
    let bad = output(&be, [24, o[0], o[1], 3]);
    assert!(refused(Op::Im2Col3d { s, p, d, ic: 2 }, &[&kern, &b], &bad));
    assert!(refused(Op::Im2Col3d { s: [0, 2, 1], p, d, ic: 2 }, &[&kern, &b], &dst));
    assert!(refused(Op::Im2Col3d { s: [1, 2, 0], p, d, ic: 2 }, &[&kern, &b], &dst));
    assert!(refused(Op::Im2Col3d { s, p, d: [1, 1, i32::MAX], ic: 2 }, &[&kern, &b], &dst));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// POOL_1D, POOL_2D

#[test]
fn pool_1d_2d_max_avg() {
    let be = backend();
    let mut rng = Rng::new(6);
    let ne_a = [11i64, 9, 3, 2];
    let vals = rng.vec(ne_a.iter().product::<i64>() as usize);
    let a = upload(&be, GgmlType::F32, ne_a, &f32_bytes(&vals));
    for op in [PoolOp::Max, PoolOp::Avg] {
        for (k, s, p) in [(3i32, 2i32, 1i32), (2, 3, 0), (1, 1, 1)] {
            // 1-D along dim 0 of each row; the average over the values inside the input.
            let ow = (11 + 2 * i64::from(p) - i64::from(k)) / i64::from(s) + 1;
            let ne = [ow, 9, 3, 2];
            let d = output(&be, ne);
            run(&be, Op::Pool1d { op, k, s, p }, &[&a], &d);
            let want: Vec<f32> = indices(ne)
                .map(|i| {
                    let (mut res, mut count) = (if op == PoolOp::Max { -f32::MAX } else { 0.0 }, 0);
                    for kk in 0..i64::from(k) {
                        let x = i[0] * i64::from(s) - i64::from(p) + kk;
                        if (0..11).contains(&x) {
                            let v = vals[lin(ne_a, [x, i[1], i[2], i[3]])];
                            res = if op == PoolOp::Max {
                                if v < res {
                                    res
                                } else {
                                    v
                                }
                            } else {
                                res + v
                            };
                            count += 1;
                        }
                    }
                    if op == PoolOp::Avg {
                        res = if count > 0 { res / count as f32 } else { 0.0 };
                    }
                    res
                })
                .collect();
            assert_bits(&format!("pool_1d {op:?} k{k} s{s} p{p}"), &download(&d), &want);

            // 2-D over dims 0 and 1; the average over the whole window.
            let (k2, s2, p2) = ([k, k.max(2)], [s, 1], [p, p.min(1)]);
            let oh = (9 + 2 * i64::from(p2[1]) - i64::from(k2[1])) / i64::from(s2[1]) + 1;
            let ne = [ow, oh, 3, 2];
            let d = output(&be, ne);
            run(&be, Op::Pool2d { op, k: k2, s: s2, p: p2 }, &[&a], &d);
            let want: Vec<f32> = indices(ne)
                .map(|i| {
                    let mut res = if op == PoolOp::Max { -f32::MAX } else { 0.0 };
                    for ky in 0..i64::from(k2[1]) {
                        let y = i[1] * i64::from(s2[1]) - i64::from(p2[1]) + ky;
                        if !(0..9).contains(&y) {
                            continue;
                        }
                        for kx in 0..i64::from(k2[0]) {
                            let x = i[0] * i64::from(s2[0]) - i64::from(p2[0]) + kx;
                            if (0..11).contains(&x) {
                                let v = vals[lin(ne_a, [x, y, i[2], i[3]])];
                                res = if op == PoolOp::Max {
                                    if v < res {
                                        res
                                    } else {
                                        v
                                    }
                                } else {
                                    res + v
                                };
                            }
                        }
                    }
                    if op == PoolOp::Avg {
                        res /= (k2[0] * k2[1]) as f32;
                    }
                    res
                })
                .collect();
            assert_bits(&format!("pool_2d {op:?} k{k2:?} s{s2:?} p{p2:?}"), &download(&d), &want);
        }
    }
    // A dst that is not the pooled shape; a zero stride: refused.
    let d = output(&be, [5, 9, 3, 2]);
    assert!(refused(Op::Pool1d { op: PoolOp::Max, k: 3, s: 3, p: 0 }, &[&a], &d));
    assert!(refused(Op::Pool1d { op: PoolOp::Max, k: 3, s: 0, p: 0 }, &[&a], &d));
    assert!(refused(Op::Pool2d { op: PoolOp::Avg, k: [3, 3], s: [1, 0], p: [i32::MAX, 0] }, &[&a], &d));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// UPSCALE

/// ggml's CPU upscale of a contiguous F32 tensor.
fn upscale_ref(src: &[f32], ne_a: [i64; 4], ne: [i64; 4], mode: ScaleMode, align: bool, aa: bool) -> Vec<f32> {
    let mut sf: [f32; 4] = std::array::from_fn(|i| ne[i] as f32 / ne_a[i] as f32);
    let mut po = 0.5f32;
    if align {
        po = 0.0;
        for i in 0..2 {
            if ne[i] > 1 && ne_a[i] > 1 {
                sf[i] = (ne[i] - 1) as f32 / (ne_a[i] - 1) as f32;
            }
        }
    }
    let at = |x: i64, y: i64, z: i64, w: i64| src[lin(ne_a, [x, y, z, w])];
    indices(ne)
        .map(|i| {
            let i2 = ((i[2] as f32 / sf[2]) as i64).min(ne_a[2] - 1);
            let i3 = ((i[3] as f32 / sf[3]) as i64).min(ne_a[3] - 1);
            let px = |x: i64, y: i64| at(x, y, i2, i3);
            match (mode, aa) {
                (ScaleMode::Nearest, _) => px((i[0] as f32 / sf[0]) as i64, (i[1] as f32 / sf[1]) as i64),
                (ScaleMode::Bilinear, false) => {
                    let y = (i[1] as f32 + po) / sf[1] - po;
                    let y0 = (y.floor() as i64).clamp(0, ne_a[1] - 1);
                    let y1 = (y.floor() as i64 + 1).clamp(0, ne_a[1] - 1);
                    let dy = (y - y0 as f32).clamp(0.0, 1.0);
                    let x = (i[0] as f32 + po) / sf[0] - po;
                    let x0 = (x.floor() as i64).clamp(0, ne_a[0] - 1);
                    let x1 = (x.floor() as i64 + 1).clamp(0, ne_a[0] - 1);
                    let dx = (x - x0 as f32).clamp(0.0, 1.0);
                    px(x0, y0) * (1.0 - dx) * (1.0 - dy)
                        + px(x1, y0) * dx * (1.0 - dy)
                        + px(x0, y1) * (1.0 - dx) * dy
                        + px(x1, y1) * dx * dy
                }
                (ScaleMode::Bicubic, _) => {
                    let a = -0.75f32;
                    let w1 = |x: f32| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
                    let w2 = |x: f32| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
                    let cubic = |p: [f32; 4], x: f32| {
                        p[0] * w2(x + 1.0) + p[1] * w1(x) + p[2] * w1(1.0 - x) + p[3] * w2(2.0 - x)
                    };
                    let y = (i[1] as f32 + po) / sf[1] - po;
                    let y0 = y.floor() as i64;
                    let x = (i[0] as f32 + po) / sf[0] - po;
                    let x0 = x.floor() as i64;
                    let tap = |xo: i64, yo: i64| px((x0 + xo).clamp(0, ne_a[0] - 1), (y0 + yo).clamp(0, ne_a[1] - 1));
                    let rows: [f32; 4] = std::array::from_fn(|j| {
                        let yo = j as i64 - 1;
                        cubic([tap(-1, yo), tap(0, yo), tap(1, yo), tap(2, yo)], x - x0 as f32)
                    });
                    cubic(rows, y - y0 as f32)
                }
                (ScaleMode::Bilinear, true) => {
                    let sup = |s: f32| (1.0f32 / s).max(1.0);
                    let (s0, s1) = (sup(sf[0]), sup(sf[1]));
                    let y = (i[1] as f32 + po) / sf[1];
                    let x = (i[0] as f32 + po) / sf[0];
                    let x_min = ((x - s0 + po) as i64).max(0);
                    let x_max = ((x + s0 + po) as i64).min(ne_a[0]);
                    let y_min = ((y - s1 + po) as i64).max(0);
                    let y_max = ((y + s1 + po) as i64).min(ne_a[1]);
                    let tri = |v: f32| (1.0 - v.abs()).max(0.0);
                    let (mut val, mut total) = (0f32, 0f32);
                    for sy in y_min..y_max {
                        let wy = tri((sy as f32 - y + po) * (1.0 / s1));
                        for sx in x_min..x_max {
                            let w = tri((sx as f32 - x + po) * (1.0 / s0)) * wy;
                            if w > 0.0 {
                                val += px(sx, sy) * w;
                                total += w;
                            }
                        }
                    }
                    if total > 0.0 {
                        val / total
                    } else {
                        val
                    }
                }
            }
        })
        .collect()
}

#[test]
fn upscale_modes() {
    let be = backend();
    let mut rng = Rng::new(7);
    let cases: [([i64; 4], [i64; 4]); 4] = [
        ([4, 3, 2, 1], [8, 6, 2, 1]),
        ([2, 5, 7, 3], [5, 7, 11, 4]),
        ([5, 7, 4, 2], [2, 5, 3, 2]),
        ([1, 4, 3, 2], [2, 8, 3, 2]),
    ];
    for (ne_a, ne) in cases {
        let vals = rng.vec(ne_a.iter().product::<i64>() as usize);
        let a = upload(&be, GgmlType::F32, ne_a, &f32_bytes(&vals));
        for (mode, align, aa) in [
            (ScaleMode::Nearest, false, false),
            (ScaleMode::Bilinear, false, false),
            (ScaleMode::Bilinear, true, false),
            (ScaleMode::Bicubic, false, false),
            (ScaleMode::Bicubic, true, false),
            (ScaleMode::Bilinear, false, true),
        ] {
            let d = output(&be, ne);
            run(&be, Op::Upscale { mode, align_corners: align, antialias: aa }, &[&a], &d);
            let want = upscale_ref(&vals, ne_a, ne, mode, align, aa);
            let what = format!("upscale {ne_a:?} -> {ne:?} {mode:?} align={align} antialias={aa}");
            if mode == ScaleMode::Nearest {
                assert_bits(&what, &download(&d), &want);
            } else {
                assert_close(&what, &download(&d), &want, 2e-6);
            }
        }
    }
    // Antialiasing is bilinear only.
    let a = upload(&be, GgmlType::F32, [2, 2, 1, 1], &f32_bytes(&[0.0; 4]));
    let d = output(&be, [4, 4, 1, 1]);
    assert!(refused(Op::Upscale { mode: ScaleMode::Bicubic, align_corners: false, antialias: true }, &[&a], &d));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// CONV_TRANSPOSE_1D

#[test]
fn conv_transpose_1d_strides() {
    let be = backend();
    let mut rng = Rng::new(8);
    for (l, cin, k, cout, s0) in
        [(7i64, 3i64, 4i64, 5i64, 1i32), (13, 8, 3, 2, 2), (5, 1, 2, 3, 3), (197, 32, 16, 4, 1)]
    {
        let kv = rng.vec((k * cout * cin) as usize);
        let xv = rng.vec((l * cin) as usize);
        let kt = upload(&be, GgmlType::F32, [k, cout, cin, 1], &f32_bytes(&kv));
        let xt = upload(&be, GgmlType::F32, [l, cin, 1, 1], &f32_bytes(&xv));
        let ol = (l - 1) * i64::from(s0) + k;
        let d = output(&be, [ol, cout, 1, 1]);
        run(&be, Op::ConvTranspose1d { s0, p0: 0, d0: 1 }, &[&kt, &xt], &d);
        let mut want = vec![0f32; (ol * cout) as usize];
        for o in 0..cout {
            for li in 0..l {
                for kk in 0..k {
                    let mut v = 0f32;
                    for c in 0..cin {
                        v += xv[(c * l + li) as usize] * kv[((c * cout + o) * k + kk) as usize];
                    }
                    want[(o * ol + li * i64::from(s0) + kk) as usize] += v;
                }
            }
        }
        assert_close(&format!("conv_transpose_1d L{l} Cin{cin} K{k} Cout{cout} s{s0}"), &download(&d), &want, 1e-5);
    }
    // ggml allows no padding or dilation.
    let kt = upload(&be, GgmlType::F32, [2, 1, 1, 1], &f32_bytes(&[0.0; 2]));
    let xt = upload(&be, GgmlType::F32, [3, 1, 1, 1], &f32_bytes(&[0.0; 3]));
    let d = output(&be, [4, 1, 1, 1]);
    assert!(refused(Op::ConvTranspose1d { s0: 1, p0: 1, d0: 1 }, &[&kt, &xt], &d));
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// CONCAT and REPEAT of other element sizes, DIAG, REPEAT_BACK

/// Contiguous bytes of a tensor of `ty` and shape `ne` (`ne[0]` in values), element (block) `e` of row `r` at
/// `(r * per_row + e) * type_size`.
fn tensor_bytes(rng: &mut Rng, ty: GgmlType, ne: [i64; 4]) -> Vec<u8> {
    let n = ne.iter().product::<i64>() as usize / ty.block_size() * ty.type_size();
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn read_bytes(t: &Tensor) -> Vec<u8> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).unwrap();
    out
}

/// Whether the device moves 1-byte elements (8-bit storage and integers).
fn moves_bytes(be: &Backend) -> bool {
    let caps = be.device().caps();
    caps.storage_8bit && caps.int8
}

#[test]
fn concat_i8_i16_i64_and_blocks_every_dim() {
    let be = backend();
    let mut rng = Rng::new(21);
    let types =
        [GgmlType::I8, GgmlType::I16, GgmlType::I64, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q5_1, GgmlType::Q4_K];
    for ty in types {
        if ty == GgmlType::I8 && !moves_bytes(&be) {
            continue;
        }
        let (bs, es) = (ty.block_size() as i64, ty.type_size());
        for dim in 0..4usize {
            let ne_a = [2 * bs, 3, 2, 2];
            let mut ne_b = ne_a;
            ne_b[dim] = if dim == 0 { bs } else { 3 };
            let mut ne = ne_a;
            ne[dim] += ne_b[dim];
            // Element-granular shapes (blocks along dim 0).
            let el = |n: [i64; 4]| [n[0] / bs, n[1], n[2], n[3]];
            let (ea, ed) = (el(ne_a), el(ne));
            let av = tensor_bytes(&mut rng, ty, ne_a);
            // src1 a sub-block of a tensor with one more element per row and one more row.
            let big = [ne_b[0] + bs, ne_b[1] + 1, ne_b[2], ne_b[3]];
            let bv = tensor_bytes(&mut rng, ty, big);
            let a = upload(&be, ty, ne_a, &av);
            let bb = upload(&be, ty, big, &bv);
            let b = Tensor::new(bb.buffer.clone(), 0, ty, ne_b, bb.nb).unwrap();
            let d = Tensor::contiguous(be.alloc((ed.iter().product::<i64>() as usize * es) as u64).unwrap(), 0, ty, ne)
                .unwrap();
            run(&be, Op::Concat { dim: dim as i32 }, &[&a, &b], &d);
            let want: Vec<u8> = indices(ed)
                .flat_map(|i| {
                    let at = if i[dim] < ea[dim] {
                        lin(ea, i)
                    } else {
                        let mut j = i;
                        j[dim] -= ea[dim];
                        lin(el(big), j)
                    };
                    let src = if i[dim] < ea[dim] { &av } else { &bv };
                    src[at * es..(at + 1) * es].to_vec()
                })
                .collect();
            assert!(read_bytes(&d) == want, "concat {} dim {dim}", ty.name());
        }
    }
    assert_no_validation_errors();
}

#[test]
fn repeat_and_diag_other_element_sizes() {
    let be = backend();
    let mut rng = Rng::new(22);
    for ty in [GgmlType::I8, GgmlType::I16, GgmlType::I64, GgmlType::F32, GgmlType::F16] {
        if ty == GgmlType::I8 && !moves_bytes(&be) {
            continue;
        }
        let es = ty.type_size();
        // REPEAT [5, 2, 1, 3] -> [10, 4, 3, 3].
        let ne_a = [5i64, 2, 1, 3];
        let av = tensor_bytes(&mut rng, ty, ne_a);
        let a = upload(&be, ty, ne_a, &av);
        let ne = [10i64, 4, 3, 3];
        let d = Tensor::contiguous(be.alloc((ne.iter().product::<i64>() as usize * es) as u64).unwrap(), 0, ty, ne)
            .unwrap();
        run(&be, Op::Repeat, &[&a], &d);
        let want: Vec<u8> = indices(ne)
            .flat_map(|i| {
                let at = lin(ne_a, [i[0] % 5, i[1] % 2, 0, i[3] % 3]);
                av[at * es..(at + 1) * es].to_vec()
            })
            .collect();
        assert!(read_bytes(&d) == want, "repeat {}", ty.name());
        // DIAG [7, 1, 2, 3] -> [7, 7, 2, 3]: src0 a row-strided view.
        let big = [9i64, 2, 2, 3];
        let bv = tensor_bytes(&mut rng, ty, big);
        let bt = upload(&be, ty, big, &bv);
        let s = Tensor::new(bt.buffer.clone(), 0, ty, [7, 1, 2, 3], bt.nb).unwrap();
        let ne = [7i64, 7, 2, 3];
        let d = Tensor::contiguous(be.alloc((ne.iter().product::<i64>() as usize * es) as u64).unwrap(), 0, ty, ne)
            .unwrap();
        d.buffer.fill(0, d.buffer.size(), 0xEE).unwrap();
        run(&be, Op::Diag, &[&s], &d);
        let want: Vec<u8> = indices(ne)
            .flat_map(|i| {
                if i[0] == i[1] {
                    let at = lin(big, [i[0], 0, i[2], i[3]]);
                    bv[at * es..(at + 1) * es].to_vec()
                } else {
                    vec![0u8; es]
                }
            })
            .collect();
        assert!(read_bytes(&d) == want, "diag {}", ty.name());
        // DIAG needs a one-row source and a square dst.
        assert!(refused(Op::Diag, &[&a], &d));
    }
    // No DIAG of blocks.
    let q = upload(&be, GgmlType::Q8_0, [32, 1, 1, 1], &[0u8; 34]);
    let dq = upload(&be, GgmlType::Q8_0, [32, 32, 1, 1], &[0u8; 34 * 32]);
    assert!(refused(Op::Diag, &[&q], &dq));
    assert_no_validation_errors();
}

#[test]
fn repeat_back_sums_tiles_in_ggml_order() {
    let be = backend();
    let mut rng = Rng::new(23);
    for (ne, nr, strided) in [
        ([8i64, 6, 4, 2], [1i64, 1, 1, 1], false),
        ([8, 6, 4, 2], [2, 1, 1, 1], false),
        ([8, 6, 4, 2], [1, 2, 2, 1], true),
        ([8, 6, 4, 2], [2, 2, 2, 2], true),
        ([3, 1, 5, 1], [7, 3, 1, 4], false),
    ] {
        let ne_a = [ne[0] * nr[0], ne[1] * nr[1], ne[2] * nr[2], ne[3] * nr[3]];
        // Large and small magnitudes so the order of the additions shows in the result's bits.
        let store = if strided { [ne_a[0] + 3, ne_a[1] + 1, ne_a[2], ne_a[3]] } else { ne_a };
        let vals: Vec<f32> =
            (0..store.iter().product::<i64>()).map(|k| rng.f32() * if k % 3 == 0 { 1e4 } else { 1.0 }).collect();
        let st = upload(&be, GgmlType::F32, store, &f32_bytes(&vals));
        let a = Tensor::new(st.buffer.clone(), 0, GgmlType::F32, ne_a, st.nb).unwrap();
        let d = output(&be, ne);
        run(&be, Op::RepeatBack, &[&a], &d);
        // ggml's CPU order: dst zeroed, then the tiles added with r3 outermost and r0 innermost.
        let want: Vec<f32> = indices(ne)
            .map(|i| {
                let mut s = 0f32;
                for r3 in 0..nr[3] {
                    for r2 in 0..nr[2] {
                        for r1 in 0..nr[1] {
                            for r0 in 0..nr[0] {
                                let j = [i[0] + r0 * ne[0], i[1] + r1 * ne[1], i[2] + r2 * ne[2], i[3] + r3 * ne[3]];
                                s += vals[lin(store, j)];
                            }
                        }
                    }
                }
                s
            })
            .collect();
        assert_bits(&format!("repeat_back {ne:?} x {nr:?}"), &download(&d), &want);
        // dst must tile src0.
        let bad = output(&be, [ne[0] + 1, ne[1], ne[2], ne[3]]);
        assert!(refused(Op::RepeatBack, &[&a], &bad));
    }
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// COL2IM_1D

/// ggml's CPU gather for COL2IM_1D: `dst[t, c]` the f32 sum, positions ascending, of the columns' values that land
/// on `t + p0`.
fn col2im_ref(cols: &[f32], k: i64, oc: i64, t_in: i64, s0: i64, p0: i64) -> Vec<f32> {
    let t_out = (t_in - 1) * s0 + k - 2 * p0;
    let mut out = Vec::new();
    for c in 0..oc {
        for t in 0..t_out {
            let ta = t + p0;
            let mut s = 0f32;
            for ti in 0..t_in {
                let kk = ta - ti * s0;
                if (0..k).contains(&kk) {
                    s += cols[(c * k + kk + ti * k * oc) as usize];
                }
            }
            out.push(s);
        }
    }
    out
}

#[test]
fn col2im_1d_f32_f16_bf16() {
    use ggvk::quant::{bf16_bits_to_f32, f32_to_bf16_bits};
    let be = backend();
    let mut rng = Rng::new(24);
    // test-backend-ops' cases.
    let cases = [
        (16i64, 32i64, 197i64, 8i32, 0i32),
        (4, 3, 7, 2, 0),
        (1, 5, 13, 1, 0),
        (6, 4, 11, 3, 1),
        (2, 3, 9, 3, 0),
        (5, 4, 11, 2, 0),
        (8, 4, 13, 4, 2),
        (4, 3, 1, 2, 0),
        (16, 1, 197, 8, 0),
        (1, 5, 13, 3, 0),
        (8, 2, 3, 2, 5),
    ];
    for (k, oc, t_in, s0, p0) in cases {
        let t_out = (t_in - 1) * i64::from(s0) + k - 2 * i64::from(p0);
        let n = (k * oc * t_in) as usize;
        let vals = rng.vec(n);
        let op = Op::Col2Im1d { s0, oc: oc as i32, p0 };
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            // The values as the type stores them, and the type's bytes.
            let (stored, bytes): (Vec<f32>, Vec<u8>) = match ty {
                GgmlType::F32 => (vals.clone(), f32_bytes(&vals)),
                GgmlType::F16 => (
                    vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
                    vals.iter().flat_map(|&v| f16::from_f32(v).to_ne_bytes()).collect(),
                ),
                _ => (
                    vals.iter().map(|&v| bf16_bits_to_f32(f32_to_bf16_bits(v))).collect(),
                    vals.iter().flat_map(|&v| f32_to_bf16_bits(v).to_ne_bytes()).collect(),
                ),
            };
            let a = upload(&be, ty, [k * oc, t_in, 1, 1], &bytes);
            let ne = [t_out, oc, 1, 1];
            let d = out_tensor(&be, ty, ne);
            run(&be, op.clone(), &[&a], &d);
            let sums = col2im_ref(&stored, k, oc, t_in, i64::from(s0), i64::from(p0));
            let what = format!("col2im_1d {} K{k} OC{oc} T{t_in} s{s0} p{p0}", ty.name());
            match ty {
                GgmlType::F32 => assert_bits(&what, &download(&d), &sums),
                GgmlType::F16 => {
                    let want: Vec<u16> = sums.iter().map(|&s| f16::from_f32(s).to_bits()).collect();
                    assert_eq!(read_u16(&d), want, "{what}");
                }
                _ => {
                    let want: Vec<u16> = sums.iter().map(|&s| f32_to_bf16_bits(s)).collect();
                    assert_eq!(read_u16(&d), want, "{what}");
                }
            }
        }
    }
    // Shapes that do not match, mixed types, a stride of 0: refused.
    let a = upload(&be, GgmlType::F32, [12, 7, 1, 1], &f32_bytes(&[0.0; 84]));
    let d = output(&be, [16, 3, 1, 1]);
    assert!(!refused(Op::Col2Im1d { s0: 2, oc: 3, p0: 0 }, &[&a], &d));
    assert!(refused(Op::Col2Im1d { s0: 2, oc: 3, p0: 1 }, &[&a], &d));
    assert!(refused(Op::Col2Im1d { s0: 0, oc: 3, p0: 0 }, &[&a], &d));
    assert!(refused(Op::Col2Im1d { s0: 2, oc: 5, p0: 0 }, &[&a], &d));
    let d16 = out_tensor(&be, GgmlType::F16, [16, 3, 1, 1]);
    assert!(refused(Op::Col2Im1d { s0: 2, oc: 3, p0: 0 }, &[&a], &d16));
    assert_no_validation_errors();
}
