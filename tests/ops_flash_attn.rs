//! FLASH_ATTN_EXT against a straightforward f64 CPU attention (scores, mask, ALiBi, softcap, sinks, softmax,
//! weighted sum of V), on the default Vulkan device with the validation layer on. K and V are dequantized with
//! the crate's bit-exact CPU reference; Q is rounded first as the kernel (and ggml's CPU backend) does: to 8-bit
//! blocks for Q4_0/Q8_0 K, to f16 for F16 K unless the CPU would take its f32 tiled path.
//! Also SET_ROWS into every quantized K/V cache type (the cache writes), bit-exact with ggml's CPU quantizers.

mod common;

use common::*;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Graph, Node, Op, Tensor};
use half::f16;

/// Byte offsets of every row (i1 fastest, then i2, i3).
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

/// A tensor with strides `nb` in a fresh buffer holding `data` (packed rows in logical order); other bytes 0xFF.
fn strided(be: &Backend, ty: GgmlType, ne: [i64; 4], nb: [u64; 4], data: &[u8]) -> Tensor {
    strided_at(be, ty, ne, nb, data, 0)
}

/// [`strided`] with the tensor's first byte `offset` bytes into its buffer.
fn strided_at(be: &Backend, ty: GgmlType, ne: [i64; 4], nb: [u64; 4], data: &[u8], offset: u64) -> Tensor {
    let row = ty.row_size(ne[0]).unwrap();
    let offs: Vec<u64> = row_offsets(ne, nb).iter().map(|o| o + offset).collect();
    assert_eq!(data.len(), row * offs.len());
    let size = offs.iter().map(|o| o + row as u64).max().unwrap() as usize + 16;
    let mut bytes = vec![0xFFu8; size];
    for (i, o) in offs.iter().enumerate() {
        bytes[*o as usize..*o as usize + row].copy_from_slice(&data[i * row..(i + 1) * row]);
    }
    let buf = be.alloc(size as u64).unwrap();
    buf.write(0, &bytes).unwrap();
    Tensor::new(buf, offset, ty, ne, nb).unwrap()
}

fn contiguous(be: &Backend, ty: GgmlType, ne: [i64; 4], data: &[u8]) -> Tensor {
    strided(be, ty, ne, Tensor::contiguous_strides(ty, ne).unwrap(), data)
}

#[derive(Clone)]
struct Case {
    dk: i64,
    dv: i64,
    n_q: i64,
    n_kv: i64,
    n_head: i64,
    n_head_kv: i64,
    ne3: i64,
    kt: GgmlType,
    vt: GgmlType,
    /// Mask batch dims (None: no mask).
    mask: Option<(i64, i64)>,
    /// Fraction of mask entries set to -inf (plus row 0 of each batch fully -inf when `dead_row`).
    masked: f64,
    dead_row: bool,
    sinks: bool,
    max_bias: f32,
    softcap: f32,
    /// q with dims 1 and 2 swapped in memory (as llama.cpp's permuted views).
    permute_q: bool,
    /// K/V rows in a cache of this many rows per head (>= n_kv).
    cache: i64,
    /// Bytes before K's and V's first element in their buffers.
    kv_offset: u64,
}

impl Case {
    fn new(dk: i64, dv: i64, n_q: i64, n_kv: i64) -> Self {
        Case {
            dk,
            dv,
            n_q,
            n_kv,
            n_head: 4,
            n_head_kv: 2,
            ne3: 1,
            kt: GgmlType::F16,
            vt: GgmlType::F16,
            mask: Some((1, 1)),
            masked: 0.2,
            dead_row: false,
            sinks: false,
            max_bias: 0.0,
            softcap: 0.0,
            permute_q: false,
            cache: n_kv,
            kv_offset: 0,
        }
    }
}

fn round_q(c: &Case, q: &[f32]) -> Vec<f32> {
    match c.kt {
        GgmlType::Q4_0 | GgmlType::Q8_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL => q
            .chunks(32)
            .flat_map(|b| {
                let amax = b.iter().fold(0f32, |m, x| m.max(x.abs()));
                let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
                let d = f16::from_f32(amax / 127.0).to_f32();
                b.iter().map(move |x| d * (x * id).round_ties_even().clamp(-127.0, 127.0)).collect::<Vec<_>>()
            })
            .collect(),
        GgmlType::BF16 => q.iter().map(|x| quant::bf16_bits_to_f32(quant::f32_to_bf16_bits(*x))).collect(),
        GgmlType::F16 if !(c.n_q >= 64 && c.vt == GgmlType::F16) => {
            q.iter().map(|x| f16::from_f32(*x).to_f32()).collect()
        }
        _ => q.to_vec(),
    }
}

fn slope(max_bias: f32, n_head: u32, h: u32) -> f64 {
    if max_bias <= 0.0 {
        return 1.0;
    }
    let n2 = 1u32 << (31 - n_head.leading_zeros());
    let m0 = 2f32.powf(-max_bias / n2 as f32);
    let m1 = 2f32.powf(-(max_bias / 2.0) / n2 as f32);
    if h < n2 {
        f64::from(m0).powi(h as i32 + 1)
    } else {
        f64::from(m1).powi(2 * (h - n2) as i32 + 1)
    }
}

/// Runs the case against the reference; returns the dispatches it took.
fn run_case(be: &Backend, rng: &mut Rng, c: &Case) -> u32 {
    let scale = 1.0 / (c.dk as f32).sqrt();
    let qne = [c.dk, c.n_q, c.n_head, c.ne3];
    let kne = [c.dk, c.n_kv, c.n_head_kv, c.ne3];
    let vne = [c.dv, c.n_kv, c.n_head_kv, c.ne3];
    let qv = rng.vec(qne.iter().product::<i64>() as usize);
    let kv = rng.vec(kne.iter().product::<i64>() as usize);
    let vv = rng.vec(vne.iter().product::<i64>() as usize);
    let kb = quant::quantize_to_vec(c.kt, &kv).unwrap();
    let vb = quant::quantize_to_vec(c.vt, &vv).unwrap();
    let kd = quant::dequantize_to_f32(c.kt, &kb, kv.len()).unwrap();
    let vd = quant::dequantize_to_f32(c.vt, &vb, vv.len()).unwrap();

    let qnb = if c.permute_q {
        let p = Tensor::contiguous_strides(GgmlType::F32, [c.dk, c.n_head, c.n_q, c.ne3]).unwrap();
        [p[0], p[2], p[1], p[3]]
    } else {
        Tensor::contiguous_strides(GgmlType::F32, qne).unwrap()
    };
    let q = strided(be, GgmlType::F32, qne, qnb, &f32_bytes(&qv));
    let cache_nb = |ty: GgmlType, ne: [i64; 4]| {
        let row = ty.row_size(ne[0]).unwrap() as u64;
        [ty.type_size() as u64, row, row * c.cache as u64, row * (c.cache * ne[2]) as u64]
    };
    let k = strided_at(be, c.kt, kne, cache_nb(c.kt, kne), &kb, c.kv_offset);
    let v = strided_at(be, c.vt, vne, cache_nb(c.vt, vne), &vb, c.kv_offset);

    // Mask rows padded past n_kv and n_q, as llama.cpp pads them.
    let (mne, mvals) = match c.mask {
        Some((m2, m3)) => {
            let mne = [c.n_kv + 5, c.n_q + 2, m2, m3];
            let mut m = Vec::new();
            for _ in 0..(m2 * m3) {
                for i1 in 0..mne[1] {
                    for _ in 0..mne[0] {
                        let dead = (c.dead_row && i1 == 0) || (rng.below(1000) as f64) < c.masked * 1000.0;
                        m.push(if dead { f32::NEG_INFINITY } else { rng.f32() });
                    }
                }
            }
            let m: Vec<f32> = m.iter().map(|x| f16::from_f32(*x).to_f32()).collect();
            (mne, m)
        }
        None => ([0; 4], Vec::new()),
    };
    let mask = c.mask.map(|_| {
        let b: Vec<u8> = mvals.iter().flat_map(|x| f16::from_f32(*x).to_bits().to_ne_bytes()).collect();
        contiguous(be, GgmlType::F16, mne, &b)
    });
    let sv: Vec<f32> = (0..c.n_head).map(|_| rng.f32() * 4.0).collect();
    let sinks = c.sinks.then(|| contiguous(be, GgmlType::F32, [c.n_head, 1, 1, 1], &f32_bytes(&sv)));
    let dne = [c.dv, c.n_head, c.n_q, c.ne3];
    let d = output(be, dne);

    let node = Node {
        op: Op::FlashAttnExt { scale, max_bias: c.max_bias, softcap: c.softcap, prec: 0 },
        src: vec![Some(q.clone()), Some(k), Some(v), mask, sinks],
        dst: d.clone(),
    };
    // The cooperative-matrix prompt kernel rounds Q and the probabilities to f16 for its products.
    let (tol_abs, tol_rel) =
        if ggvk::ops::flash_attn::uses_coopmat(be.device(), &node) { (3e-3, 3e-3) } else { (2e-5, 2e-4) };
    let mut g = Graph::new();
    g.push(node).unwrap();
    let stats = be.compute(&g).unwrap();
    let got = download(&d);

    // Reference.
    let qr = round_q(c, &qv);
    // K types with a minimum (Q4_1, Q5_1): the CPU's q8_1 dot product adds m_k * s_q per block, s_q =
    // f16(d_q * sum(codes)) with the unrounded d_q, where the dequantized dot has m_k * d16_q * sum(codes): the
    // reference adds the difference.
    let min_fix = |qo: usize, ko: usize| -> f64 {
        if !matches!(c.kt, GgmlType::Q4_1 | GgmlType::Q5_1) {
            return 0.0;
        }
        let bs = c.kt.type_size();
        (0..c.dk as usize / 32)
            .map(|b| {
                let x = &qv[qo + 32 * b..qo + 32 * b + 32];
                let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
                let d = amax / 127.0;
                let sum: i32 = x.iter().map(|v| (v * id).round_ties_even().clamp(-127.0, 127.0) as i32).sum();
                let s = f16::from_f32(d * sum as f32).to_f32();
                let d16 = f16::from_f32(d).to_f32();
                let blk = (ko / 32 + b) * bs;
                let m = f16::from_le_bytes([kb[blk + 2], kb[blk + 3]]).to_f32();
                f64::from(m) * (f64::from(s) - f64::from(d16) * f64::from(sum))
            })
            .sum()
    };
    let ratio = c.n_head / c.n_head_kv;
    let (dk, dv, n_kv) = (c.dk as usize, c.dv as usize, c.n_kv as usize);
    let mut max_err = 0f64;
    for i3 in 0..c.ne3 {
        for h in 0..c.n_head {
            let hk = h / ratio;
            let sl = slope(c.max_bias, c.n_head as u32, h as u32);
            for i1 in 0..c.n_q {
                let qo = (((i3 * c.n_head + h) * c.n_q + i1) as usize) * dk;
                let mut s = vec![f64::NEG_INFINITY; n_kv];
                for (j, sj) in s.iter_mut().enumerate() {
                    let mut mv = 0f64;
                    if let Some((m2, m3)) = c.mask {
                        let mi = (((i3 % m3) * m2 + h % m2) * mne[1] + i1) * mne[0] + j as i64;
                        mv = sl * f64::from(mvals[mi as usize]);
                        if mv == f64::NEG_INFINITY {
                            continue;
                        }
                    }
                    let ko = (((i3 * c.n_head_kv + hk) * c.n_kv) as usize + j) * dk;
                    let dot: f64 =
                        (0..dk).map(|t| f64::from(qr[qo + t]) * f64::from(kd[ko + t])).sum::<f64>() + min_fix(qo, ko);
                    let mut x = dot * f64::from(scale);
                    if c.softcap != 0.0 {
                        x = f64::from(c.softcap) * (x / f64::from(c.softcap)).tanh();
                    }
                    *sj = x + mv;
                }
                let mut mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if c.sinks {
                    mx = mx.max(f64::from(sv[h as usize]));
                }
                let mut sum = 0f64;
                let mut out = vec![0f64; dv];
                for (j, &sj) in s.iter().enumerate() {
                    if sj == f64::NEG_INFINITY {
                        continue;
                    }
                    let p = (sj - mx).exp();
                    sum += p;
                    let vo = (((i3 * c.n_head_kv + hk) * c.n_kv) as usize + j) * dv;
                    for (t, o) in out.iter_mut().enumerate() {
                        *o += p * f64::from(vd[vo + t]);
                    }
                }
                if c.sinks {
                    sum += (f64::from(sv[h as usize]) - mx).exp();
                }
                let go = (((i3 * c.n_q + i1) * c.n_head + h) as usize) * dv;
                if std::env::var_os("FA_DUMP").is_some() && i3 == 0 && h < 2 && (i1 < 2 || i1 == c.n_q - 1) {
                    let w: Vec<f64> = (0..4).map(|t| if sum == 0.0 { 0.0 } else { out[t] / sum }).collect();
                    eprintln!(
                        "dk {} n_q {} n_kv {} h {h} row {i1}: got {:?} want {w:?}",
                        c.dk,
                        c.n_q,
                        c.n_kv,
                        &got[go..go + 4]
                    );
                }
                for t in 0..dv {
                    let want = if sum == 0.0 { 0.0 } else { out[t] / sum };
                    let e = (f64::from(got[go + t]) - want).abs();
                    assert!(
                        e <= tol_abs + tol_rel * want.abs(),
                        "dk {} dv {} {:?}/{:?}: out[{t}] of head {h} row {i1} seq {i3}: got {}, want {want}",
                        c.dk,
                        c.dv,
                        c.kt,
                        c.vt,
                        got[go + t]
                    );
                    max_err = max_err.max(e);
                }
            }
        }
    }
    if std::env::var_os("FA_DUMP").is_some() {
        eprintln!("dk {} n_q {} n_kv {} mask {:?}: max err {max_err}", c.dk, c.n_q, c.n_kv, c.mask);
    }
    assert!(max_err.is_finite());
    stats.dispatches
}

/// Prompt-sized blocks (at least 64 rows per KV head): the cooperative-matrix kernel where the device has one,
/// the general kernel elsewhere; one and several key tiles, partial row blocks, GQA, masks, sinks.
#[test]
fn flash_attn_prompt_blocks() {
    let be = backend();
    let mut rng = Rng::new(5);
    let mut c = Case::new(64, 64, 64, 64);
    c.mask = None;
    c.n_head = 1;
    c.n_head_kv = 1;
    run_case(&be, &mut rng, &c);
    let mut c = Case::new(64, 64, 64, 128);
    c.mask = None;
    c.n_head = 1;
    c.n_head_kv = 1;
    run_case(&be, &mut rng, &c);
    let mut c = Case::new(128, 128, 75, 113);
    c.sinks = true;
    run_case(&be, &mut rng, &c);
    let mut c = Case::new(80, 80, 40, 200);
    c.n_head = 8;
    c.mask = Some((4, 1));
    run_case(&be, &mut rng, &c);
    assert_no_validation_errors();
}

/// Attentions of one graph reading the same causal mask (a prompt's layers): each writes the bytes it writes in a
/// graph of its own, and where the NV_cooperative_matrix2 prompt kernel reads the mask's tile flags, the second
/// attention reads the first one's flags (one dispatch fewer than the two graphs apart).
#[test]
fn attentions_sharing_a_mask_write_what_they_write_alone() {
    let be = backend();
    let mut rng = Rng::new(11);
    let (dk, n_q, n_kv, heads) = (128i64, 192i64, 320i64, 2i64);
    let f16s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| f16::from_f32(*x).to_bits().to_ne_bytes()).collect() };
    // Causal over the last n_q positions, padded by 8 rows as llama.cpp pads its mask; every tile flag occurs
    // (keys nobody sees, keys everybody sees, the diagonal's tiles).
    let mne = [n_kv, n_q + 8, 1, 1];
    let mvals: Vec<f32> = (0..mne[1])
        .flat_map(|i| (0..n_kv).map(move |j| if j <= i + n_kv - n_q { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    let mask = contiguous(&be, GgmlType::F16, mne, &f16s(&mvals));
    let layer = |rng: &mut Rng| {
        let mask = mask.clone();
        let q = contiguous(&be, GgmlType::F32, [dk, n_q, heads, 1], &f32_bytes(&rng.vec((dk * n_q * heads) as usize)));
        let kv = |rng: &mut Rng| {
            let vals = rng.vec((dk * n_kv * heads) as usize);
            contiguous(&be, GgmlType::F16, [dk, n_kv, heads, 1], &f16s(&vals))
        };
        let (k, v) = (kv(rng), kv(rng));
        let scale = 1.0 / (dk as f32).sqrt();
        move |d: &Tensor| Node {
            op: Op::FlashAttnExt { scale, max_bias: 0.0, softcap: 0.0, prec: 0 },
            src: vec![Some(q.clone()), Some(k.clone()), Some(v.clone()), Some(mask.clone()), None],
            dst: d.clone(),
        }
    };
    let (first, second) = (layer(&mut rng), layer(&mut rng));
    let out = || output(&be, [dk, heads, n_q, 1]);
    let (d1, d2, e1, e2) = (out(), out(), out(), out());
    let mut both = Graph::new();
    both.push(first(&d1)).unwrap();
    both.push(second(&d2)).unwrap();
    let together = be.compute(&both).unwrap().dispatches;
    let alone = |node: Node| {
        let mut g = Graph::new();
        g.push(node).unwrap();
        be.compute(&g).unwrap().dispatches
    };
    let apart = alone(first(&e1)) + alone(second(&e2));
    let bits = |t: &Tensor| download(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&d1), bits(&e1), "first attention");
    assert_eq!(bits(&d2), bits(&e2), "second attention");
    assert!(download(&d1).iter().all(|x| x.is_finite()));
    let shared = u32::from(ggvk::ops::flash_attn::reads_mask_flags(be.device(), &first(&d1)));
    assert_eq!(together + shared, apart, "dispatches together / apart");
    assert_no_validation_errors();
}

#[test]
fn flash_attn_head_sizes() {
    let be = backend();
    let mut rng = Rng::new(1);
    for (dk, dv) in [(64, 64), (80, 80), (96, 96), (112, 112), (128, 128), (256, 256), (192, 128), (576, 512)] {
        let mut c = Case::new(dk, dv, 5, 77);
        c.dead_row = true;
        run_case(&be, &mut rng, &c);
    }
    assert_no_validation_errors();
}

#[test]
fn flash_attn_kv_types_sinks_alibi_batches() {
    let be = backend();
    let mut rng = Rng::new(2);
    use GgmlType::*;
    for (kt, vt) in [
        (F32, F32),
        (F16, F16),
        (Q8_0, Q8_0),
        (Q4_0, Q4_0),
        (Q8_0, Q4_0),
        (Q4_0, F16),
        (F16, F32),
        (BF16, BF16),
        (Q4_1, Q4_1),
        (Q5_0, Q5_0),
        (Q5_1, Q5_1),
        (IQ4_NL, IQ4_NL),
        (Q5_1, Q4_1),
        (BF16, Q5_0),
    ] {
        let mut c = Case::new(64, 64, 3, 50);
        c.kt = kt;
        c.vt = vt;
        c.ne3 = 2;
        c.mask = Some((1, 2));
        c.sinks = true;
        c.max_bias = 8.0;
        c.n_head = 8;
        c.n_head_kv = 8;
        c.dead_row = true;
        run_case(&be, &mut rng, &c);
        // No mask, GQA 4:1, K/V views of a longer cache.
        let mut c = Case::new(128, 128, 2, 33);
        c.kt = kt;
        c.vt = vt;
        c.mask = None;
        c.cache = 40;
        run_case(&be, &mut rng, &c);
    }
    assert_no_validation_errors();
}

#[test]
fn flash_attn_prompt_softcap_permuted() {
    let be = backend();
    let mut rng = Rng::new(3);
    // n_q >= 64 with F16 K/V: f32 Q (the CPU's tiled path); several row blocks and key tiles.
    let mut c = Case::new(128, 128, 70, 100);
    c.softcap = 10.0;
    c.permute_q = true;
    c.cache = 128;
    run_case(&be, &mut rng, &c);
    let mut c = Case::new(64, 64, 70, 100);
    c.kt = GgmlType::Q4_0;
    c.vt = GgmlType::Q8_0;
    c.sinks = true;
    c.mask = Some((4, 1));
    run_case(&be, &mut rng, &c);
    assert_no_validation_errors();
}

#[test]
fn flash_attn_decode_split_kv() {
    let be = backend();
    let mut rng = Rng::new(4);
    // One token over a long context: the keys are split over workgroups and reduced in a second pass (two
    // dispatches; F16, Q8_0 and Q4_0 K/V in any mix take the decode kernel).
    let split_dispatches = 2;
    use GgmlType::{F16, Q4_0, Q8_0};
    for (kt, vt) in [(F16, F16), (Q8_0, Q8_0), (Q4_0, Q4_0), (Q8_0, F16), (F16, Q4_0), (Q4_0, Q8_0)] {
        let mut c = Case::new(128, 128, 1, 1000);
        c.n_head = 8;
        c.kt = kt;
        c.vt = vt;
        c.sinks = kt == GgmlType::F16;
        c.cache = 1024;
        let n = run_case(&be, &mut rng, &c);
        if kt == GgmlType::F16 {
            assert_eq!(n, split_dispatches, "{kt:?}: dispatches");
            assert_eq!(run_case(&be, &mut rng, &c), split_dispatches, "{kt:?}: again");
        }
    }
    // GQA: four Q heads per KV head share a workgroup's rows (F16, and Q8_0 K with Q4_0 V).
    let mut c = Case::new(128, 128, 1, 900);
    c.n_head = 8;
    c.n_head_kv = 2;
    assert_eq!(run_case(&be, &mut rng, &c), split_dispatches, "GQA");
    c.kt = Q8_0;
    c.vt = Q4_0;
    assert_eq!(run_case(&be, &mut rng, &c), split_dispatches, "GQA, Q8_0 K, Q4_0 V");
    // Quantized caches a few blocks into their buffers, off the device's offset alignment (bound so that the first
    // block is whole blocks into the binding, as the cooperative-matrix kernels address them): one token with GQA
    // (split) and a prompt block.
    for (ty, blocks) in [(Q8_0, 5u64), (Q4_0, 7), (Q8_0, 1)] {
        for n_q in [1, 70] {
            let mut c = Case::new(128, 128, n_q, 900);
            c.n_head = 8;
            c.kt = ty;
            c.vt = ty;
            c.kv_offset = blocks * ty.type_size() as u64;
            run_case(&be, &mut rng, &c);
        }
    }
    // Every key masked: zero output without sinks, also split.
    let mut c = Case::new(64, 64, 1, 700);
    c.masked = 1.0;
    run_case(&be, &mut rng, &c);
    c.sinks = true;
    run_case(&be, &mut rng, &c);
    assert_no_validation_errors();
}

#[test]
fn flash_attn_declines() {
    let be = backend();
    let q = output(&be, [64, 2, 4, 1]);
    let k = output(&be, [64, 10, 3, 1]);
    let v = output(&be, [64, 10, 3, 1]);
    let d = output(&be, [64, 4, 2, 1]);
    let node = |k: &Tensor, prec| Node {
        op: Op::FlashAttnExt { scale: 1.0, max_bias: 0.0, softcap: 0.0, prec },
        src: vec![Some(q.clone()), Some(k.clone()), Some(v.clone()), None, None],
        dst: d.clone(),
    };
    // 4 heads over 3 KV heads.
    assert!(Graph::new().push(node(&k, 0)).is_err());
    let k2 = output(&be, [64, 10, 2, 1]);
    let v2 = output(&be, [64, 10, 2, 1]);
    let ok = Node {
        op: Op::FlashAttnExt { scale: 1.0, max_bias: 0.0, softcap: 0.0, prec: 0 },
        src: vec![Some(q.clone()), Some(k2.clone()), Some(v2.clone()), None, None],
        dst: d.clone(),
    };
    assert!(Graph::new().push(ok.clone()).is_ok());
    // Precision other than DEFAULT / F32, and ALiBi without a mask.
    let mut bad = ok.clone();
    bad.op = Op::FlashAttnExt { scale: 1.0, max_bias: 0.0, softcap: 0.0, prec: 20 };
    assert!(Graph::new().push(bad).is_err());
    let mut bad = ok;
    bad.op = Op::FlashAttnExt { scale: 1.0, max_bias: 8.0, softcap: 0.0, prec: 0 };
    assert!(Graph::new().push(bad).is_err());
}

/// ggml's x86 `quantize_row_q8_0` (the CPU backend's from_float for Q8_0, used for the K/V cache): per block,
/// codes round(x * (127 / max|x|)) to nearest even, d = max|x| / 127 stored as f16.
fn q8_0_x86(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks(32) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(amax / 127.0).to_bits().to_le_bytes());
        out.extend(b.iter().map(|v| (v * id).round_ties_even() as i8 as u8));
    }
    out
}

#[test]
fn set_rows_into_quantized_kv_cache_is_bit_exact() {
    let be = backend();
    let mut rng = Rng::new(5);
    let (ne0, n, cache_rows) = (128i64, 7i64, 20i64);
    let mut x = rng.vec((ne0 * n) as usize);
    // A block of zeros, one with a single value, and ties of the 8.5 offset or of the q8_0 rounding.
    x[..32].iter_mut().for_each(|v| *v = 0.0);
    x[32..64].iter_mut().enumerate().for_each(|(i, v)| *v = if i == 5 { -3.0 } else { 0.0 });
    x[64..96].iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32 - 16.0) * 0.125);
    let idx: Vec<i64> = (0..n).map(|i| (i * 3 + 1) % cache_rows).collect();
    let a = contiguous(&be, GgmlType::F32, [ne0, n, 1, 1], &f32_bytes(&x));
    let ib =
        contiguous(&be, GgmlType::I64, [n, 1, 1, 1], &idx.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<_>>());
    use GgmlType::{IQ4_NL, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};
    for ty in [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL] {
        let row = ty.row_size(ne0).unwrap();
        let fill = vec![0xA5u8; row * cache_rows as usize];
        let d = contiguous(&be, ty, [ne0, cache_rows, 1, 1], &fill);
        let mut g = Graph::new();
        g.push(Node { op: Op::SetRows, src: vec![Some(a.clone()), Some(ib.clone())], dst: d.clone() }).unwrap();
        be.compute(&g).unwrap();
        let mut got = vec![0u8; row * cache_rows as usize];
        d.read(0, &mut got).unwrap();
        let mut want = fill.clone();
        for (i, &r) in idx.iter().enumerate() {
            let src = &x[i * ne0 as usize..(i + 1) * ne0 as usize];
            let q = match ty {
                GgmlType::Q8_0 => q8_0_x86(src),
                _ => quant::quantize_to_vec(ty, src).unwrap(),
            };
            want[r as usize * row..(r as usize + 1) * row].copy_from_slice(&q);
        }
        assert_eq!(got, want, "SET_ROWS into {ty:?}");
    }
    assert_no_validation_errors();
}
