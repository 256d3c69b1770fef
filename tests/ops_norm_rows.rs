//! RMS_NORM, SOFT_MAX, GET_ROWS and SET_ROWS against CPU references (f64 math, or bit-exact where the op is a
//! copy or conversion), on the default Vulkan device with the validation layer on.
//! Run once more with `GGVK_SHARED_REDUCTION=1` to cover the shared-memory reductions of RMS_NORM and SOFT_MAX.

mod common;

use common::*;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Error, Graph, Node, Op, Tensor};
use half::f16;

// ---------------------------------------------------------------------------------------------------------
// Layout helpers: tensors whose rows sit anywhere in a buffer (padding filled with a marker byte), with data
// given in logical (contiguous) row order.

/// Byte offsets (from the tensor's first byte) of every row, in logical order (i1 fastest, then i2, i3).
fn row_offsets(ne: [i64; 4], nb: [u64; 4]) -> Vec<u64> {
    let mut v = Vec::new();
    for i3 in 0..ne[3] as u64 {
        for i2 in 0..ne[2] as u64 {
            for i1 in 0..ne[1] as u64 {
                v.push(i1 * nb[1] + i2 * nb[2] + i3 * nb[3]);
            }
        }
    }
    v
}

/// Strides with `pad` extra bytes after each row, each dim-1 run and each dim-2 run.
fn padded(ty: GgmlType, ne: [i64; 4], pad: [u64; 3]) -> [u64; 4] {
    let nb1 = ty.row_size(ne[0]).unwrap() as u64 + pad[0];
    let nb2 = nb1 * ne[1] as u64 + pad[1];
    let nb3 = nb2 * ne[2] as u64 + pad[2];
    [ty.type_size() as u64, nb1, nb2, nb3]
}

/// Strides of a view with dims 1 and 2 swapped (ggml_permute(.., 0, 2, 1, 3) of a contiguous tensor).
fn permuted12(ty: GgmlType, ne: [i64; 4]) -> [u64; 4] {
    let p = Tensor::contiguous_strides(ty, [ne[0], ne[2], ne[1], ne[3]]).unwrap();
    [p[0], p[2], p[1], p[3]]
}

/// A tensor of type `ty`, shape `ne`, strides `nb` at byte `offset` of a fresh buffer, holding `data` (rows in
/// logical order, packed). Every other byte of the buffer is `fill`.
fn strided(be: &Backend, ty: GgmlType, ne: [i64; 4], nb: [u64; 4], offset: u64, data: &[u8], fill: u8) -> Tensor {
    let row = ty.row_size(ne[0]).unwrap();
    let offs = row_offsets(ne, nb);
    assert_eq!(data.len(), row * offs.len(), "data size");
    let span = offs.iter().map(|o| o + row as u64).max().unwrap_or(0);
    let size = (offset + span + 16) as usize;
    let mut bytes = vec![fill; size];
    for (k, o) in offs.iter().enumerate() {
        let at = (offset + o) as usize;
        bytes[at..at + row].copy_from_slice(&data[k * row..(k + 1) * row]);
    }
    let buf = be.alloc(size as u64).unwrap();
    buf.write(0, &bytes).unwrap();
    Tensor::new(buf, offset, ty, ne, nb).unwrap()
}

fn contiguous(be: &Backend, ty: GgmlType, ne: [i64; 4], data: &[u8]) -> Tensor {
    strided(be, ty, ne, Tensor::contiguous_strides(ty, ne).unwrap(), 0, data, 0)
}

/// Every byte of the tensor's buffer.
fn buffer_bytes(t: &Tensor) -> Vec<u8> {
    let mut out = vec![0u8; t.buffer.size() as usize];
    t.buffer.read(0, &mut out).unwrap();
    out
}

/// The tensor's rows in logical order, packed.
fn gather(t: &Tensor) -> Vec<u8> {
    let all = buffer_bytes(t);
    let row = t.ty.row_size(t.ne[0]).unwrap();
    row_offsets(t.ne, t.nb)
        .iter()
        .flat_map(|o| {
            let at = (t.offset + o) as usize;
            all[at..at + row].to_vec()
        })
        .collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| f16::from_f32(*x).to_bits().to_ne_bytes()).collect()
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect()
}

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn run(be: &Backend, node: Node) {
    let mut g = Graph::new();
    g.push(node).unwrap();
    be.compute(&g).unwrap();
}

fn node(op: Op, src: Vec<Option<&Tensor>>, dst: &Tensor) -> Node {
    Node { op, src: src.into_iter().map(|s| s.cloned()).collect(), dst: dst.clone() }
}

fn nel(ne: [i64; 4]) -> usize {
    ne.iter().product::<i64>() as usize
}

// ---------------------------------------------------------------------------------------------------------
// RMS_NORM

fn ref_rms_norm(x: &[f32], ne0: usize, eps: f32) -> Vec<f64> {
    x.chunks(ne0)
        .flat_map(|row| {
            let mean = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / ne0 as f64;
            let scale = 1.0 / (mean + f64::from(eps)).sqrt();
            row.iter().map(move |&v| f64::from(v) * scale).collect::<Vec<_>>()
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(err <= rel * w.abs() + abs, "{what}: element {i}: got {g}, want {w} (err {err:e})");
    }
}

/// ggml_norm in f64: (x - mean) / sqrt(variance + eps) per row.
fn ref_norm(x: &[f32], ne0: usize, eps: f32) -> Vec<f64> {
    x.chunks(ne0)
        .flat_map(|row| {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / ne0 as f64;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / ne0 as f64;
            let scale = 1.0 / (var + f64::from(eps)).sqrt();
            row.iter().map(move |&v| (f64::from(v) - mean) * scale).collect::<Vec<_>>()
        })
        .collect()
}

/// ggml_l2_norm in f64: x / max(sqrt(sum(x^2)), eps) per row.
fn ref_l2_norm(x: &[f32], ne0: usize, eps: f32) -> Vec<f64> {
    x.chunks(ne0)
        .flat_map(|row| {
            let norm = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
            let scale = 1.0 / norm.max(f64::from(eps));
            row.iter().map(move |&v| f64::from(v) * scale).collect::<Vec<_>>()
        })
        .collect()
}

/// RMS_NORM of `xv` laid out as (`nb`, `offset`) into dst laid out as (`dnb`, `doff`); checks values and that
/// dst's padding is untouched.
#[allow(clippy::too_many_arguments)]
fn rms_case(be: &Backend, ne: [i64; 4], nb: [u64; 4], off: u64, dnb: [u64; 4], doff: u64, eps: f32, xv: &[f32]) {
    norm_case(be, Op::RmsNorm { eps }, ne, nb, off, dnb, doff, xv);
}

/// [`rms_case`] for any of RMS_NORM, NORM, L2_NORM.
#[allow(clippy::too_many_arguments)]
fn norm_case(be: &Backend, op: Op, ne: [i64; 4], nb: [u64; 4], off: u64, dnb: [u64; 4], doff: u64, xv: &[f32]) {
    let x = strided(be, GgmlType::F32, ne, nb, off, &f32_bytes(xv), 0x11);
    let d = strided(be, GgmlType::F32, ne, dnb, doff, &vec![0xEE; nel(ne) * 4], 0x5A);
    let before = buffer_bytes(&d);
    run(be, node(op.clone(), vec![Some(&x)], &d));
    let got = bytes_f32(&gather(&d));
    let want = match op {
        Op::RmsNorm { eps } => ref_rms_norm(xv, ne[0] as usize, eps),
        Op::Norm { eps } => ref_norm(xv, ne[0] as usize, eps),
        Op::L2Norm { eps } => ref_l2_norm(xv, ne[0] as usize, eps),
        _ => unreachable!(),
    };
    // NORM of a row of equal values is 0 / sqrt(eps): absolute error relative to the row's scale.
    let abs = if matches!(op, Op::Norm { .. }) { 1e-5 } else { 1e-6 };
    assert_close(&got, &want, 1e-5, abs, &format!("{op:?} ne {ne:?} nb {nb:?} dnb {dnb:?}"));
    // Bytes outside dst's rows are untouched.
    let after = buffer_bytes(&d);
    let offs = row_offsets(ne, dnb);
    let mut inside = vec![false; after.len()];
    for o in offs {
        for b in 0..ne[0] as usize * 4 {
            inside[(doff + o) as usize + b] = true;
        }
    }
    for (i, ((a, b), ins)) in after.iter().zip(&before).zip(&inside).enumerate() {
        assert!(*ins || a == b, "norm wrote byte {i} outside dst");
    }
}

/// Byte offsets of every element of `ne` with strides `nb`, in logical order.
fn elem_offsets(ne: [i64; 4], nb: [u64; 4]) -> Vec<u64> {
    row_offsets(ne, nb).into_iter().flat_map(|r| (0..ne[0] as u64).map(move |i| r + i * nb[0])).collect()
}

/// A norm over F32 tensors with any element strides (`nb[0]` too): src `nb_x`, dst `nb_d`, each in its own
/// buffer prefilled with a pattern that must survive outside dst's elements.
fn norm_elem_case(be: &Backend, op: Op, ne: [i64; 4], nb_x: [u64; 4], nb_d: [u64; 4], xv: &[f32]) {
    let make = |nb: [u64; 4], vals: Option<&[f32]>| {
        let offs = elem_offsets(ne, nb);
        let size = offs.iter().max().unwrap() + 4;
        let mut bytes = vec![0x5Au8; size as usize];
        if let Some(v) = vals {
            for (o, x) in offs.iter().zip(v) {
                bytes[*o as usize..*o as usize + 4].copy_from_slice(&x.to_ne_bytes());
            }
        }
        let buf = be.alloc(size).unwrap();
        buf.write(0, &bytes).unwrap();
        (Tensor::new(buf, 0, GgmlType::F32, ne, nb).unwrap(), bytes, offs)
    };
    let (x, _, _) = make(nb_x, Some(xv));
    let (d, before, offs) = make(nb_d, None);
    run(be, node(op.clone(), vec![Some(&x)], &d));
    let after = buffer_bytes(&d);
    let got: Vec<f32> =
        offs.iter().map(|&o| f32::from_ne_bytes(after[o as usize..o as usize + 4].try_into().unwrap())).collect();
    let want = match op {
        Op::RmsNorm { eps } => ref_rms_norm(xv, ne[0] as usize, eps),
        Op::Norm { eps } => ref_norm(xv, ne[0] as usize, eps),
        Op::L2Norm { eps } => ref_l2_norm(xv, ne[0] as usize, eps),
        _ => unreachable!(),
    };
    assert_close(&got, &want, 1e-5, 1e-5, &format!("{op:?} ne {ne:?} nb_x {nb_x:?} nb_d {nb_d:?}"));
    let mut inside = vec![false; after.len()];
    for o in offs {
        inside[o as usize..o as usize + 4].iter_mut().for_each(|b| *b = true);
    }
    for (i, ((a, b), ins)) in after.iter().zip(&before).zip(&inside).enumerate() {
        assert!(*ins || a == b, "{op:?} wrote byte {i} outside dst");
    }
}

#[test]
fn norm_and_l2_norm_sizes_views_in_place() {
    let be = backend();
    let mut rng = Rng::new(13);
    for ne0 in [1i64, 7, 64, 1025, 4097] {
        for eps in [0.0f32, 1e-6, 1e-1] {
            let ne = [ne0, 3, 2, 2];
            // An offset keeps NORM's mean away from 0.
            let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 10.0 + 3.0).collect();
            let nb = Tensor::contiguous_strides(GgmlType::F32, ne).unwrap();
            for op in [Op::Norm { eps }, Op::L2Norm { eps }] {
                if ne0 == 1 && eps == 0.0 && matches!(op, Op::Norm { .. }) {
                    continue; // 0 / 0
                }
                norm_case(&be, op, ne, nb, 0, nb, 0, &xv);
            }
        }
    }
    for ne0 in [7i64, 260] {
        let ne = [ne0, 5, 4, 3];
        let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 10.0).collect();
        let cont = Tensor::contiguous_strides(GgmlType::F32, ne).unwrap();
        let parent = Tensor::contiguous_strides(GgmlType::F32, [2 * ne0, 10, 8, 6]).unwrap();
        // test-backend-ops' noncontig_rows: dims 0 and 1 swapped (element stride of a whole row).
        let t = Tensor::contiguous_strides(GgmlType::F32, [ne[1], ne[0], ne[2], ne[3]]).unwrap();
        let swapped = [t[1], t[0], t[2], t[3]];
        for op in [Op::Norm { eps: 1e-5 }, Op::L2Norm { eps: 1e-12 }, Op::RmsNorm { eps: 1e-6 }] {
            norm_case(&be, op.clone(), ne, parent, 0, cont, 0, &xv);
            norm_case(
                &be,
                op.clone(),
                ne,
                permuted12(GgmlType::F32, ne),
                64,
                padded(GgmlType::F32, ne, [12, 8, 4]),
                36,
                &xv,
            );
            norm_elem_case(&be, op.clone(), ne, swapped, cont, &xv);
            norm_elem_case(&be, op, ne, cont, swapped, &xv);
        }
    }
    // In place.
    let ne = [100i64, 5, 4, 3];
    let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 10.0).collect();
    for op in [Op::Norm { eps: 1e-5 }, Op::L2Norm { eps: 1e-12 }] {
        let x = contiguous(&be, GgmlType::F32, ne, &f32_bytes(&xv));
        run(&be, node(op.clone(), vec![Some(&x)], &x));
        let want = match op {
            Op::Norm { eps } => ref_norm(&xv, 100, eps),
            Op::L2Norm { eps } => ref_l2_norm(&xv, 100, eps),
            _ => unreachable!(),
        };
        assert_close(&download(&x), &want, 1e-5, 1e-5, &format!("{op:?} in place"));
    }
    assert_no_validation_errors();
}

#[test]
fn rms_norm_odd_sizes_and_eps() {
    let be = backend();
    let mut rng = Rng::new(11);
    for ne0 in [1i64, 7, 33, 64, 1025, 4097] {
        for eps in [0.0f32, 1e-6, 1e-1, 10.0] {
            let ne = [ne0, 3, 2, 2];
            let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 10.0).collect();
            let nb = Tensor::contiguous_strides(GgmlType::F32, ne).unwrap();
            rms_case(&be, ne, nb, 0, nb, 0, eps, &xv);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn rms_norm_non_contiguous_rows_and_in_place() {
    let be = backend();
    let mut rng = Rng::new(12);
    let eps = 1e-6f32;
    for ne0 in [7i64, 64, 260] {
        // test-backend-ops' `v`: half of each dim of a contiguous parent, keeping the parent's strides.
        let ne = [ne0, 5, 4, 3];
        let parent = Tensor::contiguous_strides(GgmlType::F32, [2 * ne0, 10, 8, 6]).unwrap();
        let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 10.0).collect();
        let cont = Tensor::contiguous_strides(GgmlType::F32, ne).unwrap();
        rms_case(&be, ne, parent, 0, cont, 0, eps, &xv);
        // Permuted rows (dims 1 and 2 swapped) at an offset, into a padded dst at an offset.
        let perm = permuted12(GgmlType::F32, ne);
        rms_case(&be, ne, perm, 64, padded(GgmlType::F32, ne, [12, 8, 4]), 36, eps, &xv);
        // Rows of a larger row (a view of the first ne0 columns), a single row, a column of rows.
        rms_case(
            &be,
            [ne0, 9, 1, 1],
            padded(GgmlType::F32, [ne0, 9, 1, 1], [20, 0, 0]),
            4,
            cont,
            0,
            eps,
            &xv[..9 * ne0 as usize],
        );
        rms_case(&be, [ne0, 1, 1, 1], cont, 0, cont, 0, eps, &xv[..ne0 as usize]);
    }
    // In place: dst is src.
    let ne = [100i64, 5, 4, 3];
    let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 10.0).collect();
    let x = contiguous(&be, GgmlType::F32, ne, &f32_bytes(&xv));
    run(&be, node(Op::RmsNorm { eps }, vec![Some(&x)], &x));
    assert_close(&download(&x), &ref_rms_norm(&xv, 100, eps), 1e-5, 1e-6, "rms_norm in place");
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// SOFT_MAX

/// Largest power of two <= n (ggml's n_head_log2).
fn pow2_floor(n: u32) -> u32 {
    1u32 << (31 - n.leading_zeros())
}

/// ggml's ALiBi slope of head `h` (f32 math as ggml's CPU code).
fn alibi_slope(max_bias: f32, n_head: u32, h: u32) -> f32 {
    if max_bias <= 0.0 {
        return 1.0;
    }
    let n2 = pow2_floor(n_head);
    let m0 = 2f32.powf(-max_bias / n2 as f32);
    let m1 = 2f32.powf(-(max_bias / 2.0) / n2 as f32);
    if h < n2 {
        m0.powf((h + 1) as f32)
    } else {
        m1.powf((2 * (h - n2) + 1) as f32)
    }
}

/// Reference softmax in f64; `mask` holds the mask values (already f16-rounded for an f16 mask) with its shape.
fn ref_soft_max(
    x: &[f32],
    ne: [i64; 4],
    scale: f32,
    max_bias: f32,
    mask: Option<(&[f32], [i64; 4])>,
    sinks: Option<&[f32]>,
) -> Vec<f64> {
    let n0 = ne[0] as usize;
    let mut out = Vec::with_capacity(x.len());
    for i3 in 0..ne[3] as usize {
        for i2 in 0..ne[2] as usize {
            let slope = f64::from(alibi_slope(max_bias, ne[2] as u32, i2 as u32));
            for i1 in 0..ne[1] as usize {
                let base = ((i3 * ne[2] as usize + i2) * ne[1] as usize + i1) * n0;
                let w: Vec<f64> = (0..n0)
                    .map(|i0| {
                        let mut v = f64::from(x[base + i0]) * f64::from(scale);
                        if let Some((m, mne)) = mask {
                            let (m1, m2, m3) = (mne[1] as usize, mne[2] as usize, mne[3] as usize);
                            let mi = (((i3 % m3) * m2 + i2 % m2) * m1 + i1) * n0 + i0;
                            v += slope * f64::from(m[mi]);
                        }
                        v
                    })
                    .collect();
                let mut mx = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if let Some(s) = sinks {
                    mx = mx.max(f64::from(s[i2]));
                }
                let e: Vec<f64> =
                    w.iter().map(|&v| if v == f64::NEG_INFINITY { 0.0 } else { (v - mx).exp() }).collect();
                let mut sum: f64 = e.iter().sum();
                if let Some(s) = sinks {
                    sum += (f64::from(s[i2]) - mx).exp();
                }
                out.extend(e.iter().map(|v| v / sum));
            }
        }
    }
    out
}

struct SoftMaxCase {
    ne: [i64; 4],
    scale: f32,
    max_bias: f32,
    /// Mask type and the mask's dims 2, 3 (dividing ne2, ne3) and extra rows beyond ne1.
    mask: Option<(GgmlType, i64, i64, i64)>,
    /// Fraction (per 16) of mask entries set to -inf.
    neg_inf: u64,
    sinks: bool,
    /// Lay src0 and dst out with padded rows at offsets.
    strided: bool,
    in_place: bool,
}

fn soft_max_case(be: &Backend, rng: &mut Rng, c: &SoftMaxCase) {
    let ne = c.ne;
    let what = format!(
        "soft_max ne {ne:?} scale {} max_bias {} mask {:?} sinks {} strided {} in_place {}",
        c.scale, c.max_bias, c.mask, c.sinks, c.strided, c.in_place
    );
    let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 4.0).collect();
    let (xnb, xoff, dnb, doff) = if c.strided {
        (padded(GgmlType::F32, ne, [8, 4, 0]), 20, padded(GgmlType::F32, ne, [4, 12, 8]), 8)
    } else {
        let nb = Tensor::contiguous_strides(GgmlType::F32, ne).unwrap();
        (nb, 0, nb, 0)
    };
    let x = strided(be, GgmlType::F32, ne, xnb, xoff, &f32_bytes(&xv), 0x33);
    let d =
        if c.in_place { x.clone() } else { strided(be, GgmlType::F32, ne, dnb, doff, &vec![0xEE; nel(ne) * 4], 0x5A) };
    let mut mask_vals = Vec::new();
    let mut mne = [0i64; 4];
    let mask = c.mask.map(|(ty, m2, m3, extra)| {
        mne = [ne[0], ne[1] + extra, m2, m3];
        mask_vals = (0..nel(mne))
            .map(|_| if rng.below(16) < c.neg_inf { f32::NEG_INFINITY } else { rng.f32() * 2.0 })
            .collect();
        // Keep one finite entry per mask row, so no row is masked out entirely (ggml gives NaN there).
        for row in mask_vals.chunks_mut(ne[0] as usize) {
            row[rng.below(ne[0] as u64) as usize] = rng.f32();
        }
        let bytes = if ty == GgmlType::F16 {
            mask_vals = mask_vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
            f16_bytes(&mask_vals)
        } else {
            f32_bytes(&mask_vals)
        };
        contiguous(be, ty, mne, &bytes)
    });
    let sink_vals: Vec<f32> = (0..ne[2]).map(|_| rng.f32() * 3.0).collect();
    let sinks = c.sinks.then(|| contiguous(be, GgmlType::F32, [ne[2], 1, 1, 1], &f32_bytes(&sink_vals)));
    run(
        be,
        node(Op::SoftMax { scale: c.scale, max_bias: c.max_bias }, vec![Some(&x), mask.as_ref(), sinks.as_ref()], &d),
    );
    let got = bytes_f32(&gather(&d));
    let want = ref_soft_max(
        &xv,
        ne,
        c.scale,
        c.max_bias,
        c.mask.map(|_| (&mask_vals[..], mne)),
        c.sinks.then_some(&sink_vals[..]),
    );
    assert_close(&got, &want, 2e-5, 1e-9, &what);
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        if w == 0.0 {
            assert_eq!(g.to_bits(), 0, "{what}: element {i} (a -inf logit) must be exactly 0, got {g}");
        }
    }
}

#[test]
fn soft_max_plain_scale_and_odd_rows() {
    let be = backend();
    let mut rng = Rng::new(21);
    for ne0 in [1i64, 7, 33, 1024, 4097] {
        for scale in [1.0f32, 0.1] {
            for sinks in [false, true] {
                let c = SoftMaxCase {
                    ne: [ne0, 3, 2, 2],
                    scale,
                    max_bias: 0.0,
                    mask: None,
                    neg_inf: 0,
                    sinks,
                    strided: false,
                    in_place: false,
                };
                soft_max_case(&be, &mut rng, &c);
            }
        }
    }
    // Many one-element and four-element rows (a row of one is exactly 1 without sinks).
    for ne0 in [1i64, 4] {
        let c = SoftMaxCase {
            ne: [ne0, 1023, 1, 1],
            scale: 1.0,
            max_bias: 0.0,
            mask: None,
            neg_inf: 0,
            sinks: false,
            strided: false,
            in_place: false,
        };
        soft_max_case(&be, &mut rng, &c);
    }
    assert_no_validation_errors();
}

#[test]
fn soft_max_masks_broadcast_alibi_and_neg_inf() {
    let be = backend();
    let mut rng = Rng::new(22);
    for mty in [GgmlType::F32, GgmlType::F16] {
        for max_bias in [0.0f32, 8.0] {
            // (ne, mask ne2, mask ne3, extra mask rows): plain, heads broadcast (nr23 = 3, 1 / 2, 3), 6 heads
            // (n_head_log2 = 4: heads 4 and 5 take the m1 slopes), a longer mask than ne1.
            let shapes: [([i64; 4], i64, i64, i64); 5] = [
                ([16, 16, 1, 1], 1, 1, 0),
                ([15, 15, 3, 3], 1, 3, 0),
                ([31, 7, 2, 3], 1, 1, 2),
                ([33, 4, 6, 2], 3, 1, 5),
                ([1024, 3, 12, 1], 12, 1, 0),
            ];
            for (ne, m2, m3, extra) in shapes {
                for neg_inf in [0u64, 5] {
                    for sinks in [false, true] {
                        let c = SoftMaxCase {
                            ne,
                            scale: 0.1,
                            max_bias,
                            mask: Some((mty, m2, m3, extra)),
                            neg_inf,
                            sinks,
                            strided: false,
                            in_place: false,
                        };
                        soft_max_case(&be, &mut rng, &c);
                    }
                }
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn soft_max_strided_rows_and_in_place() {
    let be = backend();
    let mut rng = Rng::new(23);
    for mask in [None, Some((GgmlType::F16, 1, 1, 0)), Some((GgmlType::F32, 2, 1, 3))] {
        for sinks in [false, true] {
            for (strided, in_place) in [(true, false), (false, true), (true, true)] {
                let c = SoftMaxCase {
                    ne: [37, 2, 4, 2],
                    scale: 0.5,
                    max_bias: if mask.is_some() { 8.0 } else { 0.0 },
                    mask,
                    neg_inf: 3,
                    sinks,
                    strided,
                    in_place,
                };
                soft_max_case(&be, &mut rng, &c);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn soft_max_long_rows() {
    let be = backend();
    let mut rng = Rng::new(24);
    let c = SoftMaxCase {
        ne: [200_001, 2, 3, 1],
        scale: 0.1,
        max_bias: 8.0,
        mask: Some((GgmlType::F16, 3, 1, 0)),
        neg_inf: 1,
        sinks: true,
        strided: false,
        in_place: false,
    };
    soft_max_case(&be, &mut rng, &c);
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// GET_ROWS

/// Values for a source of type `ty`: packed rows of `ne` (quantized from random values).
fn typed_rows(rng: &mut Rng, ty: GgmlType, ne: [i64; 4]) -> Vec<u8> {
    let n = nel(ne);
    match ty {
        GgmlType::I32 => i32_bytes(&(0..n).map(|_| rng.next_u64() as i32).collect::<Vec<_>>()),
        _ => to_type(ty, &rng.vec(n).iter().map(|v| v * 3.0).collect::<Vec<_>>()),
    }
}

/// The f32 (or i32) bit patterns of row `r` of packed `data`, as ggml's CPU get_rows produces them.
fn expected_row(ty: GgmlType, data: &[u8], ne0: usize, r: usize) -> Vec<u32> {
    let rs = ty.row_size(ne0 as i64).unwrap();
    let bytes = &data[r * rs..(r + 1) * rs];
    match ty {
        GgmlType::I32 | GgmlType::F32 => u32s(bytes),
        _ => quant::dequantize_to_f32(ty, bytes, ne0).unwrap().iter().map(|v| v.to_bits()).collect(),
    }
}

/// One GET_ROWS case: src0 `[n, m, be1, be2]` of `ty` (padded rows at an offset when `view_src`), indices
/// `[r, be1, be2]` (a strided view when `view_idx`, with some out of range when `oob`).
#[allow(clippy::too_many_arguments)]
fn get_rows_case(
    be: &Backend,
    rng: &mut Rng,
    ty: GgmlType,
    n: i64,
    m: i64,
    r: i64,
    be1: i64,
    be2: i64,
    view_src: bool,
    view_idx: bool,
    oob: bool,
) {
    let what = format!("get_rows {} n {n} m {m} r {r} be {be1}x{be2} views {view_src}/{view_idx} oob {oob}", ty.name());
    let ane = [n, m, be1, be2];
    let data = typed_rows(rng, ty, ane);
    let a = if view_src {
        let off = if ty.is_quantized() { 3 * 18 * 2 } else { 3 * 4 + 7 * 4 };
        strided(be, ty, ane, padded(ty, ane, [if ty.is_quantized() { 34 * 2 } else { 12 }, 36, 4]), off, &data, 0x77)
    } else {
        contiguous(be, ty, ane, &data)
    };
    let ine = [r, be1, be2, 1];
    let idx: Vec<i32> = (0..nel(ine))
        .map(|_| {
            if oob && rng.below(4) == 0 {
                [-1, m as i32, i32::MIN, i32::MAX][rng.below(4) as usize]
            } else {
                rng.below(m as u64) as i32
            }
        })
        .collect();
    let inb = if view_idx {
        // Every other element, rows padded, at an offset of one element.
        let nb0 = 8u64;
        let nb1 = nb0 * r as u64 + 12;
        [nb0, nb1, nb1 * be1 as u64 + 4, nb1 * be1 as u64 * be2 as u64 + 8]
    } else {
        Tensor::contiguous_strides(GgmlType::I32, ine).unwrap()
    };
    // Lay the indices out element by element (the helper places rows, so treat each element as a row).
    let it = {
        let rows_ne = [1, r, be1, be2];
        let t = strided(
            be,
            GgmlType::I32,
            rows_ne,
            [4, inb[0], inb[1], inb[2]],
            if view_idx { 4 } else { 0 },
            &i32_bytes(&idx),
            0x99,
        );
        Tensor::new(t.buffer.clone(), t.offset, GgmlType::I32, ine, inb).unwrap()
    };
    let dty = if ty == GgmlType::I32 { GgmlType::I32 } else { GgmlType::F32 };
    let dne = [n, r, be1, be2];
    let d = strided(be, dty, dne, padded(dty, dne, [4, 0, 8]), 12, &vec![0xEE; nel(dne) * 4], 0x5A);
    run(be, node(Op::GetRows, vec![Some(&a), Some(&it)], &d));
    let got = u32s(&gather(&d));
    for i12 in 0..be2 as usize {
        for i11 in 0..be1 as usize {
            for i10 in 0..r as usize {
                let k = (i12 * be1 as usize + i11) * r as usize + i10;
                let row = &got[k * n as usize..(k + 1) * n as usize];
                let ix = idx[k];
                if ix < 0 || ix >= m as i32 {
                    assert!(row.iter().all(|&b| b == 0), "{what}: out-of-range index {ix} must give zeros");
                } else {
                    let src_row = (i12 * be1 as usize + i11) * m as usize + ix as usize;
                    let want = expected_row(ty, &data, n as usize, src_row);
                    assert!(row == &want[..], "{what}: dst row ({i10}, {i11}, {i12}) <- src row {ix} differs");
                }
            }
        }
    }
}

#[test]
fn get_rows_all_types_batched_and_views() {
    let be = backend();
    let mut rng = Rng::new(31);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::I32] {
        let ns: &[i64] = if ty.is_quantized() { &[32, 256] } else { &[1, 7, 256] };
        for &n in ns {
            for (be1, be2) in [(1, 1), (7, 1), (3, 2)] {
                for view_src in [false, true] {
                    for view_idx in [false, true] {
                        get_rows_case(&be, &mut rng, ty, n, 5, 4, be1, be2, view_src, view_idx, false);
                    }
                }
            }
        }
        // More indices than rows (repeats), out of order.
        get_rows_case(&be, &mut rng, ty, 64, 3, 17, 2, 1, false, false, false);
    }
    assert_no_validation_errors();
}

#[test]
fn get_rows_out_of_range_large_and_wide() {
    let be = backend();
    let mut rng = Rng::new(32);
    for ty in [GgmlType::F32, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::F16] {
        get_rows_case(&be, &mut rng, ty, 64, 9, 40, 2, 2, true, true, true);
    }
    // 70000 rows: more than one dispatch dimension holds on some devices.
    get_rows_case(&be, &mut rng, GgmlType::F32, 8, 80_000, 70_000, 1, 1, false, false, false);
    get_rows_case(&be, &mut rng, GgmlType::Q4_0, 32, 1000, 70_000, 1, 1, false, false, false);
    // Wide rows (300 * 256 columns) and many batches.
    get_rows_case(&be, &mut rng, GgmlType::F32, 300 * 256, 5, 4, 1, 2, false, false, false);
    get_rows_case(&be, &mut rng, GgmlType::Q4_0, 256, 5, 4, 70, 10, false, false, false);
    assert_no_validation_errors();
}

#[test]
fn get_rows_f16_every_bit_pattern_and_special_scales() {
    let be = backend();
    // Every f16 bit pattern (subnormals, infinities, NaNs) as one row: exact f32 conversion.
    let all: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_ne_bytes()).collect();
    let a = contiguous(&be, GgmlType::F16, [65536, 1, 1, 1], &all);
    let it = contiguous(&be, GgmlType::I32, [1, 1, 1, 1], &i32_bytes(&[0]));
    let d = output(&be, [65536, 1, 1, 1]);
    run(&be, node(Op::GetRows, vec![Some(&a), Some(&it)], &d));
    let got = u32s(&gather(&d));
    for (h, g) in (0..=u16::MAX).zip(&got) {
        assert_eq!(*g, f16::from_bits(h).to_f32().to_bits(), "f16 {h:#06x}");
    }
    // Quantized blocks with random quants and scales that are subnormal, tiny, negative or large halves.
    let mut rng = Rng::new(33);
    let scales: [u16; 8] = [0x0001, 0x03FF, 0x0400, 0x8001, 0x3C00, 0xBC00, 0x7BFF, 0x1234];
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0] {
        let blocks = 64usize;
        let bs = ty.type_size();
        let mut data = vec![0u8; blocks * bs];
        for (b, blk) in data.chunks_exact_mut(bs).enumerate() {
            blk[..2].copy_from_slice(&scales[b % scales.len()].to_ne_bytes());
            for q in &mut blk[2..] {
                *q = rng.next_u64() as u8;
            }
        }
        let ne = [256i64, 8, 1, 1];
        let a = contiguous(&be, ty, ne, &data);
        let idx: Vec<i32> = (0..8).rev().collect();
        let it = contiguous(&be, GgmlType::I32, [8, 1, 1, 1], &i32_bytes(&idx));
        let d = output(&be, [256, 8, 1, 1]);
        run(&be, node(Op::GetRows, vec![Some(&a), Some(&it)], &d));
        let got = u32s(&gather(&d));
        for (k, &r) in idx.iter().enumerate() {
            let want = expected_row(ty, &data, 256, r as usize);
            assert!(got[k * 256..(k + 1) * 256] == want[..], "{} row {r}", ty.name());
        }
    }
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// SET_ROWS

/// Bits of one element converted from `sty` (bytes `s`) to `dty`, as ggml's CPU set_rows converts.
fn convert(sty: GgmlType, dty: GgmlType, s: &[u8]) -> Vec<u8> {
    let v = match sty {
        GgmlType::F32 => f32::from_ne_bytes([s[0], s[1], s[2], s[3]]),
        _ => {
            let h = u16::from_ne_bytes([s[0], s[1]]);
            if dty == GgmlType::F16 {
                return h.to_ne_bytes().to_vec();
            }
            // (F16 -> BF16 goes through f32, exactly, as ggml's CPU set_rows converts.)
            f16::from_bits(h).to_f32()
        }
    };
    match dty {
        GgmlType::F32 => v.to_bits().to_ne_bytes().to_vec(),
        GgmlType::BF16 => ggvk::quant::f32_to_bf16_bits(v).to_ne_bytes().to_vec(),
        _ => f16::from_f32(v).to_bits().to_ne_bytes().to_vec(),
    }
}

/// Indices for set_rows: per (i1, i2) of `ine`, a shuffled subset of `0..nrows` (as test-backend-ops makes
/// them), some replaced by out-of-range values when `oob`.
fn set_rows_indices(rng: &mut Rng, ine: [i64; 4], nrows: i64, oob: bool, i64_idx: bool) -> Vec<i64> {
    let mut out = Vec::new();
    for _ in 0..ine[1] * ine[2] {
        let mut p: Vec<i64> = (0..nrows).collect();
        for i in (1..p.len()).rev() {
            p.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &v in &p[..ine[0] as usize] {
            let bad: &[i64] = if i64_idx {
                &[-1, nrows, (1i64 << 32) | 1, i64::MIN, 1i64 << 32, -(1i64 << 32)]
            } else {
                &[-1, nrows, i64::from(i32::MIN), i64::from(i32::MAX)]
            };
            out.push(if oob && rng.below(3) == 0 { bad[rng.below(bad.len() as u64) as usize] } else { v });
        }
    }
    out
}

/// One SET_ROWS case as test-backend-ops builds it: dst `[ne0, ne1, ne2 * nr2, ne3 * nr3]`, src
/// `[ne0, r, ne2 * nr2, ne3 * nr3]`, indices `[r, ne2, ne3]`; `view` takes the first r/2 source rows and
/// indices (strided views); `oob` puts some out-of-range indices in.
#[allow(clippy::too_many_arguments)]
fn set_rows_case(
    be: &Backend,
    rng: &mut Rng,
    sty: GgmlType,
    dty: GgmlType,
    ity: GgmlType,
    ne: [i64; 4],
    nr23: [i64; 2],
    r: i64,
    view: bool,
    oob: bool,
) {
    let what = format!(
        "set_rows {} -> {} idx {} ne {ne:?} nr23 {nr23:?} r {r} view {view} oob {oob}",
        sty.name(),
        dty.name(),
        ity.name()
    );
    let dne = [ne[0], ne[1], ne[2] * nr23[0], ne[3] * nr23[1]];
    let rr = if view { r / 2 } else { r };
    let sne = [ne[0], rr, dne[2], dne[3]];
    let ine = [rr, ne[2], ne[3], 1];
    let svals: Vec<f32> = rng.vec(nel(sne));
    let sdata = if sty == GgmlType::F16 { f16_bytes(&svals) } else { f32_bytes(&svals) };
    // A view of the first rr rows keeps the parent's strides (r rows per batch).
    let snb = if view {
        Tensor::contiguous_strides(sty, [ne[0], r, dne[2], dne[3]]).unwrap()
    } else {
        Tensor::contiguous_strides(sty, sne).unwrap()
    };
    let src = strided(be, sty, sne, snb, 0, &sdata, 0x44);
    let idx = set_rows_indices(rng, ine, ne[1], oob, ity == GgmlType::I64);
    let esz = ity.type_size() as u64;
    let inb = if view {
        Tensor::contiguous_strides(ity, [r, ne[2], ne[3], 1]).unwrap()
    } else {
        Tensor::contiguous_strides(ity, ine).unwrap()
    };
    let ibytes = if ity == GgmlType::I64 {
        i64_bytes(&idx)
    } else {
        i32_bytes(&idx.iter().map(|&v| v as i32).collect::<Vec<_>>())
    };
    let it = {
        let t = strided(be, ity, [rr, ine[1], ine[2], 1], inb, 0, &ibytes, 0x99);
        assert_eq!(t.nb[0], esz);
        t
    };
    // dst: padded rows at an offset, prefilled with a pattern that must survive where nothing is written.
    let dnb = padded(dty, dne, [8, 4, 0]);
    let drow = dty.row_size(ne[0]).unwrap();
    let dfill: Vec<u8> = (0..nel(dne) / ne[0].max(1) as usize * drow).map(|i| (i * 7 + 3) as u8).collect();
    let d = strided(be, dty, dne, dnb, 16, &dfill, 0x5A);
    let before = buffer_bytes(&d);
    run(be, node(Op::SetRows, vec![Some(&src), Some(&it)], &d));
    let after = buffer_bytes(&d);

    let mut want = before.clone();
    let (ssz, dsz) = (sty.type_size(), dty.type_size());
    for i03 in 0..sne[3] {
        for i02 in 0..sne[2] {
            for i in 0..sne[1] {
                let k = (((i03 % ine[2]) * ine[1] + i02 % ine[1]) * ine[0] + i) as usize;
                let row = idx[k];
                if row < 0 || row >= dne[1] {
                    continue;
                }
                let sk = ((i03 * sne[2] + i02) * sne[1] + i) as usize;
                let dat = (16 + row as u64 * dnb[1] + i02 as u64 * dnb[2] + i03 as u64 * dnb[3]) as usize;
                if dty.is_quantized() {
                    // ggml's CPU-backend quantizer on the source row (F16 sources widened exactly).
                    let vals: Vec<f32> = (0..ne[0] as usize)
                        .map(|c| {
                            let s = &sdata[(sk * ne[0] as usize + c) * ssz..][..ssz];
                            match sty {
                                GgmlType::F16 => f16::from_ne_bytes([s[0], s[1]]).to_f32(),
                                _ => f32::from_ne_bytes([s[0], s[1], s[2], s[3]]),
                            }
                        })
                        .collect();
                    want[dat..dat + drow].copy_from_slice(&cpu_backend_quantize(dty, &vals));
                    continue;
                }
                for c in 0..ne[0] as usize {
                    let s = &sdata[(sk * ne[0] as usize + c) * ssz..][..ssz];
                    want[dat + c * dsz..dat + (c + 1) * dsz].copy_from_slice(&convert(sty, dty, s));
                }
            }
        }
    }
    if let Some(i) = (0..want.len()).find(|&i| want[i] != after[i]) {
        panic!("{what}: byte {i} of dst's buffer is {:#04x}, want {:#04x}", after[i], want[i]);
    }
}

/// The quantized K/V cache types llama.cpp offers (`-ctk`/`-ctv`).
const QUANT_CACHE_TYPES: [GgmlType; 6] =
    [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL];

#[test]
fn set_rows_types_indices_broadcast_and_views() {
    let be = backend();
    let mut rng = Rng::new(41);
    for sty in [GgmlType::F32, GgmlType::F16] {
        for dty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            for ity in [GgmlType::I64, GgmlType::I32] {
                for b in [1i64, 7] {
                    for view in [false, true] {
                        set_rows_case(&be, &mut rng, sty, dty, ity, [256, 5, b, 3], [1, 1], 1, view, false);
                        set_rows_case(&be, &mut rng, sty, dty, ity, [256, 11, 1, b], [2, 3], 7, view, false);
                        set_rows_case(&be, &mut rng, sty, dty, ity, [31, 3, b, 1], [2, 3], 2, view, false);
                        set_rows_case(&be, &mut rng, sty, dty, ity, [33, 5, 1, b], [2, 3], 1, view, false);
                    }
                }
                set_rows_case(&be, &mut rng, sty, dty, ity, [1, 8, 1, 3], [1, 1], 2, false, false);
                set_rows_case(&be, &mut rng, sty, dty, ity, [1, 8, 1, 3], [1, 1], 2, true, false);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn set_rows_into_quantized_caches_bit_exact() {
    // KV caches quantized on the GPU (-ctk/-ctv q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl): every byte equal to ggml's
    // CPU backend's quantizers.
    let be = backend();
    let mut rng = Rng::new(44);
    for dty in QUANT_CACHE_TYPES {
        for sty in [GgmlType::F32, GgmlType::F16] {
            for ity in [GgmlType::I64, GgmlType::I32] {
                for view in [false, true] {
                    set_rows_case(&be, &mut rng, sty, dty, ity, [256, 5, 7, 3], [1, 1], 1, view, false);
                    set_rows_case(&be, &mut rng, sty, dty, ity, [256, 11, 1, 7], [2, 3], 7, view, false);
                    set_rows_case(&be, &mut rng, sty, dty, ity, [96, 3, 7, 1], [2, 3], 2, view, false);
                }
                set_rows_case(&be, &mut rng, sty, dty, ity, [64, 50, 2, 2], [1, 2], 30, false, true);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn set_rows_into_q1_0_q2_0_nvfp4_bit_exact() {
    // Every byte equal to ggml's CPU backend's quantizers (quantize_row_<type>_ref): rows of several blocks from
    // F32 and F16, broadcast indices, a view, out-of-range indices; then blocks with ties, zeros, -0, huge and tiny
    // values.
    let be = backend();
    let mut rng = Rng::new(45);
    for dty in [GgmlType::Q1_0, GgmlType::Q2_0, GgmlType::NVFP4] {
        for sty in [GgmlType::F32, GgmlType::F16] {
            set_rows_case(&be, &mut rng, sty, dty, GgmlType::I64, [256, 11, 1, 7], [2, 3], 7, true, false);
            set_rows_case(&be, &mut rng, sty, dty, GgmlType::I32, [384, 3, 7, 1], [2, 3], 2, false, false);
        }
        set_rows_case(&be, &mut rng, GgmlType::F32, dty, GgmlType::I64, [128, 50, 2, 2], [1, 2], 30, false, true);
    }
    let mut vals: Vec<f32> = Vec::new();
    vals.extend((0..64).map(|i| (i as f32 - 32.0) / 8.0)); // x / max |x| on exact halves
    vals.extend([0.0f32; 64]);
    vals.extend((0..64).map(|i| if i % 3 == 0 { -0.0 } else { 0.25 * (i % 5) as f32 }));
    vals.extend((0..64).map(|i| (i as f32 - 31.5) * 1e30));
    vals.extend((0..64).map(|i| (i as f32 - 31.5) * 1e-30));
    vals.extend((0..64).map(|i| if i % 2 == 0 { 3.0 } else { -3.0 }));
    let ne0 = vals.len() as i64;
    for dty in [GgmlType::Q1_0, GgmlType::Q2_0, GgmlType::NVFP4] {
        let src = contiguous(&be, GgmlType::F32, [ne0, 1, 1, 1], &f32_bytes(&vals));
        let idx = contiguous(&be, GgmlType::I32, [1, 1, 1, 1], &i32_bytes(&[1]));
        let row = dty.row_size(ne0).unwrap();
        let d = contiguous(&be, dty, [ne0, 2, 1, 1], &vec![0x33; 2 * row]);
        run(&be, node(Op::SetRows, vec![Some(&src), Some(&idx)], &d));
        let got = buffer_bytes(&d);
        assert!(got[..row].iter().all(|&b| b == 0x33), "{}: row 0 was written", dty.name());
        let want = cpu_backend_quantize(dty, &vals);
        for (k, (g, w)) in got[row..2 * row].chunks(dty.type_size()).zip(want.chunks(dty.type_size())).enumerate() {
            assert_eq!(g, w, "{}: block {k}", dty.name());
        }
    }
    assert_no_validation_errors();
}

#[test]
fn set_rows_out_of_range_indices_write_nothing() {
    let be = backend();
    let mut rng = Rng::new(42);
    for ity in [GgmlType::I64, GgmlType::I32] {
        for dty in [GgmlType::F32, GgmlType::F16] {
            set_rows_case(&be, &mut rng, GgmlType::F32, dty, ity, [40, 50, 2, 2], [1, 2], 30, false, true);
            set_rows_case(&be, &mut rng, GgmlType::F32, dty, ity, [3, 9, 1, 1], [3, 1], 9, true, true);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn set_rows_f32_to_f16_rounds_like_half() {
    let be = backend();
    let mut rng = Rng::new(43);
    let mut vals: Vec<u32> = Vec::new();
    let specials = [
        0.0f32,
        -0.0,
        1.0,
        -2.0,
        65504.0,
        65519.99,
        65520.0,
        65536.0,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1e-45,
        1e-40,
        6.1e-5,
        2f32.powi(-14),
        2f32.powi(-14) - 2f32.powi(-25),
        2f32.powi(-24),
        2f32.powi(-25),
        2f32.powi(-25) * 1.0001,
        3.0 * 2f32.powi(-25),
        5.0 * 2f32.powi(-26),
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        1.0 + 2f32.powi(-11) + 2f32.powi(-23),
    ];
    vals.extend(specials.iter().flat_map(|v| [v.to_bits(), (-v).to_bits()]));
    vals.extend([0x7FC0_0000, 0x7F80_0001, 0xFFFF_FFFF, 0x7FA1_2345, 0xFF80_2000, 0x7F80_1FFF]);
    // Random bit patterns over the whole f32 range.
    vals.extend((0..(1 << 19)).map(|_| rng.next_u64() as u32));
    // Values in and around the f16 range whose 13 dropped mantissa bits sit at or next to the halfway point.
    for _ in 0..(1 << 19) {
        let exp = 127 - 26 + rng.below(46) as u32; // 2^-26 .. 2^19
        let top = (rng.next_u64() as u32) & 0x3FF;
        let low = [0x1000u32, 0x0FFF, 0x1001, 0, 0x1FFF][rng.below(5) as usize];
        let sign = (rng.below(2) as u32) << 31;
        vals.push(sign | (exp << 23) | (top << 13) | low);
    }
    vals.resize(vals.len().div_ceil(1024) * 1024, 0);
    let rows = (vals.len() / 1024) as i64;
    let ne = [1024i64, rows, 1, 1];
    let src = contiguous(&be, GgmlType::F32, ne, &vals.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<_>>());
    let idx: Vec<i64> = (0..rows).rev().collect();
    let it = contiguous(&be, GgmlType::I64, [rows, 1, 1, 1], &i64_bytes(&idx));
    let d = contiguous(&be, GgmlType::F16, ne, &vec![0u8; nel(ne) * 2]);
    run(&be, node(Op::SetRows, vec![Some(&src), Some(&it)], &d));
    let got = u16s(&gather(&d));
    let mut bad = 0;
    for (i, &v) in vals.iter().enumerate() {
        let (row, col) = (i / 1024, i % 1024);
        let dst_row = idx[row] as usize;
        let want = f16::from_f32(f32::from_bits(v)).to_bits();
        let g = got[dst_row * 1024 + col];
        if g != want {
            bad += 1;
            if bad < 10 {
                eprintln!("f32 {v:#010x}: got f16 {g:#06x}, want {want:#06x}");
            }
        }
    }
    assert_eq!(bad, 0, "{bad} of {} conversions differ from half::f16::from_f32", vals.len());
    assert_no_validation_errors();
}

// ---------------------------------------------------------------------------------------------------------
// Refusals

#[test]
fn unsupported_and_malformed_nodes_are_refused() {
    let be = backend();
    let f32t = |ne: [i64; 4]| contiguous(&be, GgmlType::F32, ne, &vec![0u8; nel(ne) * 4]);
    let typed = |ty: GgmlType, ne: [i64; 4]| {
        contiguous(&be, ty, ne, &vec![0u8; ty.row_size(ne[0]).unwrap() * nel(ne) / ne[0] as usize])
    };
    let unsupported = |n: Node| {
        let mut g = Graph::new();
        match g.push(n) {
            Err(Error::Unsupported(_)) => {}
            other => panic!("expected Unsupported, got {other:?}"),
        }
    };
    let invalid = |n: Node| {
        let mut g = Graph::new();
        match g.push(n) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    };
    let x = f32t([8, 4, 2, 1]);
    let h = typed(GgmlType::F16, [8, 4, 2, 1]);
    // RMS_NORM.
    unsupported(node(Op::RmsNorm { eps: 1e-6 }, vec![Some(&h)], &h));
    invalid(node(Op::RmsNorm { eps: 1e-6 }, vec![Some(&x)], &f32t([8, 4, 1, 1])));
    invalid(node(Op::RmsNorm { eps: -1.0 }, vec![Some(&x)], &x));
    let odd = Tensor::new(x.buffer.clone(), 0, GgmlType::F32, [4, 4, 1, 1], [4, 18, 72, 72]).unwrap();
    unsupported(node(Op::RmsNorm { eps: 1e-6 }, vec![Some(&odd)], &f32t([4, 4, 1, 1])));
    // SOFT_MAX.
    let sm = |max_bias| Op::SoftMax { scale: 1.0, max_bias };
    unsupported(node(sm(0.0), vec![Some(&h)], &h));
    invalid(node(sm(0.0), vec![Some(&x), Some(&f32t([7, 4, 1, 1]))], &x));
    invalid(node(sm(0.0), vec![Some(&x), Some(&f32t([8, 3, 1, 1]))], &x));
    invalid(node(sm(0.0), vec![Some(&x), Some(&f32t([8, 4, 3, 1]))], &x));
    invalid(node(sm(0.0), vec![Some(&x), Some(&typed(GgmlType::I32, [8, 4, 1, 1]))], &x));
    invalid(node(sm(8.0), vec![Some(&x)], &x));
    invalid(node(sm(0.0), vec![Some(&x), None, Some(&f32t([3, 1, 1, 1]))], &x));
    // GET_ROWS.
    let q = typed(GgmlType::Q8_0, [32, 5, 1, 1]);
    let i32s = typed(GgmlType::I32, [3, 1, 1, 1]);
    let i64s = typed(GgmlType::I64, [3, 1, 1, 1]);
    invalid(node(Op::GetRows, vec![Some(&q), Some(&i64s)], &f32t([32, 3, 1, 1])));
    invalid(node(Op::GetRows, vec![Some(&q), Some(&i32s)], &f32t([32, 4, 1, 1])));
    unsupported(node(Op::GetRows, vec![Some(&q), Some(&i32s)], &typed(GgmlType::F16, [32, 3, 1, 1])));
    unsupported(node(Op::GetRows, vec![Some(&i64s), Some(&i32s)], &typed(GgmlType::I64, [3, 3, 1, 1])));
    // SET_ROWS.
    let rows = f32t([32, 3, 1, 1]);
    unsupported(node(Op::SetRows, vec![Some(&rows), Some(&i64s)], &typed(GgmlType::I32, [32, 6, 1, 1])));
    invalid(node(Op::SetRows, vec![Some(&rows), Some(&f32t([3, 1, 1, 1]))], &f32t([32, 6, 1, 1])));
    invalid(node(Op::SetRows, vec![Some(&rows), Some(&typed(GgmlType::I64, [2, 1, 1, 1]))], &f32t([32, 6, 1, 1])));
    invalid(node(Op::SetRows, vec![Some(&rows), Some(&i64s)], &f32t([31, 6, 1, 1])));
    invalid(node(Op::SetRows, vec![Some(&q), Some(&i64s)], &f32t([32, 6, 1, 1])));
    assert_no_validation_errors();
}

#[test]
fn group_norm_as_rows_and_refusals() {
    let be = backend();
    let mut rng = Rng::new(14);
    for (ne, groups) in [([9i64, 9, 64, 1], 32), ([8, 4, 6, 2], 3), ([5, 3, 4, 1], 4), ([16, 1, 2, 3], 1)] {
        let xv: Vec<f32> = rng.vec(nel(ne)).iter().map(|v| v * 4.0 + 1.0).collect();
        let x = contiguous(&be, GgmlType::F32, ne, &f32_bytes(&xv));
        let d = contiguous(&be, GgmlType::F32, ne, &vec![0u8; nel(ne) * 4]);
        run(&be, node(Op::GroupNorm { groups, eps: 1e-6 }, vec![Some(&x)], &d));
        // ggml: each group is ne0 * ne1 * (ne2 / groups) consecutive floats of one dim-3 batch.
        let len = (ne[0] * ne[1] * (ne[2] / i64::from(groups))) as usize;
        let want = ref_norm(&xv, len, 1e-6);
        assert_close(&download(&d), &want, 1e-5, 1e-5, &format!("group_norm {ne:?} groups {groups}"));
    }
    let x = contiguous(&be, GgmlType::F32, [4, 4, 6, 1], &vec![0u8; 384]);
    for groups in [4, 0, -1] {
        let e = Graph::new().push(node(Op::GroupNorm { groups, eps: 1e-6 }, vec![Some(&x)], &x)).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
    }
    let t = Tensor::new(x.buffer.clone(), 0, GgmlType::F32, [4, 4, 3, 1], [4, 32, 128, 384]).unwrap();
    let e = Graph::new().push(node(Op::GroupNorm { groups: 3, eps: 1e-6 }, vec![Some(&t)], &t)).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert_no_validation_errors();
}

#[test]
fn set_rows_quantization_ties_and_edge_blocks() {
    // Blocks where x / d lands exactly on halves (Q8_0: ggml's x86 path rounds them to even), all-zero blocks,
    // a block whose largest magnitude is negative (Q4_0 keeps its sign), and huge / tiny scales; compared with
    // ggml's CPU-backend quantizers byte for byte.
    let be = backend();
    let mut blocks: Vec<[f32; 32]> = Vec::new();
    let mut b = [0f32; 32];
    b[0] = 127.0;
    for (i, v) in [0.5f32, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 3.499_999_8, 0.0, -0.0].iter().enumerate() {
        b[i + 1] = *v;
    }
    blocks.push(b);
    blocks.push([0.0; 32]);
    blocks.push(std::array::from_fn(|i| -8.0 + i as f32 * 0.25 - if i == 5 { 9.0 } else { 0.0 }));
    blocks.push(std::array::from_fn(|i| (i as f32 - 15.5) * 1e30));
    blocks.push(std::array::from_fn(|i| (i as f32 - 15.5) * 1e-30));
    blocks.push(std::array::from_fn(|i| if i % 2 == 0 { 8.0 } else { -8.0 }));
    let vals: Vec<f32> = blocks.iter().flatten().copied().collect();
    let ne0 = vals.len() as i64;
    for dty in QUANT_CACHE_TYPES {
        let src = contiguous(&be, GgmlType::F32, [ne0, 1, 1, 1], &f32_bytes(&vals));
        let idx = contiguous(&be, GgmlType::I32, [1, 1, 1, 1], &i32_bytes(&[1]));
        let row = dty.row_size(ne0).unwrap();
        let d = contiguous(&be, dty, [ne0, 2, 1, 1], &vec![0x33; 2 * row]);
        run(&be, node(Op::SetRows, vec![Some(&src), Some(&idx)], &d));
        let got = buffer_bytes(&d);
        assert!(got[..row].iter().all(|&b| b == 0x33), "{}: row 0 was written", dty.name());
        let want = cpu_backend_quantize(dty, &vals);
        for (k, (g, w)) in got[row..2 * row].chunks(dty.type_size()).zip(want.chunks(dty.type_size())).enumerate() {
            // IQ4_NL's least-squares scale of the 1e30 block is NaN (x * x overflows): any NaN matches (NaN bits
            // are not portable: x86 makes its negative default NaN, GPUs their own), the codes must match.
            let nan = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).is_nan();
            if dty == GgmlType::IQ4_NL && nan(g) && nan(w) {
                assert_eq!(g[2..], w[2..], "{}: block {k} codes", dty.name());
                continue;
            }
            assert_eq!(g, w, "{}: block {k}", dty.name());
        }
    }
    assert_no_validation_errors();
}
