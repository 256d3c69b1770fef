//! Shared test helpers: a backend on the chosen device, a seeded generator, CPU references.
#![allow(dead_code)]

use std::sync::Arc;

use ggvk::graph::{Graph, Node, Op};
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Tensor};

/// A backend on `GGVK_DEVICE` (an index) or the default device.
pub fn backend() -> Backend {
    let index = std::env::var("GGVK_DEVICE").ok().map(|s| s.parse::<usize>().expect("GGVK_DEVICE is an index"));
    Backend::new(index).expect("creating a backend (is a Vulkan driver such as lavapipe installed?)")
}

/// Fails the test if the validation layer (or driver) reported an error anywhere in this process.
pub fn assert_no_validation_errors() {
    assert_eq!(ggvk::vk::validation_error_count(), 0, "Vulkan validation errors were reported (see stderr)");
}

/// xorshift64* generator: reproducible, no dependencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

pub fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Allocate a buffer and a contiguous tensor filling it, then upload `data`.
pub fn upload(be: &Backend, ty: GgmlType, ne: [i64; 4], data: &[u8]) -> Tensor {
    let buf = be.alloc(data.len().max(1) as u64).expect("alloc");
    let t = Tensor::contiguous(buf, 0, ty, ne).expect("tensor");
    t.write(0, data).expect("upload");
    t
}

/// A zero-filled output tensor of F32.
pub fn output(be: &Backend, ne: [i64; 4]) -> Tensor {
    let n = ne.iter().product::<i64>() as usize * 4;
    let buf = be.alloc(n.max(4) as u64).expect("alloc");
    buf.fill(0, buf.size(), 0xFF).expect("poison");
    Tensor::contiguous(buf, 0, GgmlType::F32, ne).expect("tensor")
}

pub fn download(t: &Tensor) -> Vec<f32> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).expect("download");
    bytes_f32(&out)
}

/// Quantize `vals` (rows of `k`) to `ty` bytes.
pub fn to_type(ty: GgmlType, vals: &[f32]) -> Vec<u8> {
    quant::quantize_to_vec(ty, vals).expect("quantize")
}

/// Reference ggml_mul_mat in f64 over dequantized weights; returns dst (contiguous) and the per-element
/// magnitude sum |a||b| used to scale the tolerance.
pub fn ref_mul_mat(a: &[f32], ane: [i64; 4], b: &[f32], bne: [i64; 4]) -> (Vec<f32>, Vec<f64>) {
    let (k, m, n) = (ane[0] as usize, ane[1] as usize, bne[1] as usize);
    let (r2, r3) = (bne[2] / ane[2], bne[3] / ane[3]);
    let mut out = Vec::new();
    let mut mag = Vec::new();
    for i13 in 0..bne[3] {
        for i12 in 0..bne[2] {
            let ab = ((i13 / r3) * ane[2] + i12 / r2) as usize * m * k;
            let bb = (i13 * bne[2] + i12) as usize * n * k;
            for col in 0..n {
                for row in 0..m {
                    let mut s = 0f64;
                    let mut g = 0f64;
                    for kk in 0..k {
                        let p = f64::from(a[ab + row * k + kk]) * f64::from(b[bb + col * k + kk]);
                        s += p;
                        g += p.abs();
                    }
                    out.push(s as f32);
                    mag.push(g);
                }
            }
        }
    }
    (out, mag)
}

pub fn keep<T>(_: &Arc<T>) {}

/// Relative error bound (of sum |a||b|) that the cooperative-matrix kernel adds where `a x b` takes it: both operands
/// rounded to f16 (2^-11 each) before an exact product and f32 accumulation; 0 elsewhere (lavapipe has no
/// cooperative matrices).
#[allow(dead_code)]
pub fn coopmat_rel(be: &Backend, a: &Tensor, b: &Tensor) -> f64 {
    if ggvk::ops::coopmat::uses_coopmat(be.device(), a, b) {
        1.0 / 1024.0
    } else {
        0.0
    }
}

/// Byte offsets of the f16 scale fields (d, dmin) inside one block of K-quant type `ty` (ggml's layouts).
pub fn kquant_scale_offsets(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ2_S
        | GgmlType::IQ3_XXS
        | GgmlType::IQ3_S
        | GgmlType::IQ1_S
        | GgmlType::IQ4_XS => &[0],
        GgmlType::TQ1_0 => &[52],
        GgmlType::TQ2_0 => &[64],
        // IQ1_M spreads its scale over four nibbles, MXFP4 has an E8M0 byte: random_kquant sets those.
        GgmlType::IQ1_M | GgmlType::MXFP4 => &[],
        other => panic!("{other} is not a K-quant"),
    }
}

/// `n` values (a multiple of 256) of K-quant type `ty` as random blocks: random code, scale and mask bytes,
/// with every f16 super-block scale set to a random value of magnitude 2^-7..2^-5 (1 in 8 an f16 subnormal, 1 in
/// 16 a zero), either sign, so the dequantized weights stay around 1 in size. (ggvk has no K-quant quantizer; this
/// exercises every bit pattern of the packed fields.)
pub fn random_kquant(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let ts = ty.type_size();
    let mut out: Vec<u8> = (0..n / ty.block_size() * ts).map(|_| rng.next_u64() as u8).collect();
    for block in out.chunks_exact_mut(ts) {
        for &off in kquant_scale_offsets(ty) {
            let sign = if rng.below(2) == 0 { 0u16 } else { 0x8000 };
            let bits = match rng.below(16) {
                // f16 subnormals (GPU conversions must not flush them) and signed zeros now and then.
                0 | 1 => sign | (1 + rng.below(0x3FF) as u16),
                2 => sign,
                _ => sign | half::f16::from_f32(2f32.powf(-7.0 + 2.0 * (rng.f32() + 1.0) / 2.0)).to_bits(),
            };
            block[off..off + 2].copy_from_slice(&bits.to_le_bytes());
        }
        if ty == GgmlType::IQ1_M {
            // The f16 scale's nibble k in the top nibble of scale word k (bytes 48..56).
            let d = half::f16::from_f32(2f32.powf(-7.0 + rng.f32())).to_bits();
            for k in 0..4 {
                let w = u16::from_le_bytes([block[48 + 2 * k], block[49 + 2 * k]]);
                let w = (w & 0x0FFF) | (((d >> (4 * k)) & 0xF) << 12);
                block[48 + 2 * k..50 + 2 * k].copy_from_slice(&w.to_le_bytes());
            }
        }
        if ty == GgmlType::MXFP4 {
            block[0] = 120 + rng.below(6) as u8; // scales 2^-8 .. 2^-3
        }
    }
    out
}

/// `vals` quantized as ggml's CPU backend quantizes for SET_ROWS / CPY on x86 (its `from_float`): Q8_0 through
/// the AVX path of `quantize_row_q8_0` (codes round-half-even(x * 127 / amax), saturated; d = amax / 127
/// stored as f16), other types through the reference quantizers.
pub fn cpu_backend_quantize(ty: GgmlType, vals: &[f32]) -> Vec<u8> {
    if ty != GgmlType::Q8_0 {
        return to_type(ty, vals);
    }
    let mut out = Vec::with_capacity(vals.len() / 32 * 34);
    for b in vals.chunks_exact(32) {
        let amax = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_ne_bytes());
        out.extend(b.iter().map(|&x| ((x * id).round_ties_even() as i32).clamp(-128, 127) as i8 as u8));
    }
    out
}

/// The activations `b` (contiguous columns) as the MUL_MAT kernels for weights `a` see them: rounded onto the CPU
/// backend's grid for `a`'s type when ggvk rounds them (`ggvk::ops::matmul::rounds_activations`), else as they are.
pub fn activations_seen(a: &Tensor, b: &[f32]) -> Vec<f32> {
    match ggvk::ops::matmul::rounds_activations(a) {
        Some(r) => ggvk::quant::round_activations_to_vec(r, b),
        None => b.to_vec(),
    }
}

/// The activations `b_vals` (the values of `b`, contiguous columns) as MUL_MAT of `a` by `b` on `be` sees them:
/// as [`activations_seen`], and on the CPU backend's Q8_K grid where the integer-dot K-quant mat-vec runs.
pub fn mul_mat_activations_seen(be: &Backend, a: &Tensor, b: &Tensor, b_vals: &[f32]) -> Vec<f32> {
    match ggvk::ops::matmul::activation_grid(be.device(), a, b) {
        Some(r) => ggvk::quant::round_activations_to_vec(r, b_vals),
        None => b_vals.to_vec(),
    }
}

/// Record `op` over `src` into `dst` as a one-node graph and compute it (panics on any error).
pub fn run(be: &Backend, op: Op, src: &[&Tensor], dst: &Tensor) {
    let mut g = Graph::new();
    g.push(Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }).unwrap();
    be.compute(&g).unwrap();
}

/// Whether a one-node graph of `op` over `src` into `dst` is declined when the node is pushed.
pub fn refused(op: Op, src: &[&Tensor], dst: &Tensor) -> bool {
    Graph::new().push(Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }).is_err()
}

/// Element-wise agreement within `tol`, relative to max(|want|, 1).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(err <= tol, "{what}: element {i}: got {g}, want {w}");
    }
}

/// Bytes of `n` values of type `ty`: ggml's reference quantization of random values where ggvk has it, else random
/// bytes whose 16-bit words are all small positive finite halves (blocks start at even offsets, so every f16 field
/// of any block layout is finite; the other bytes keep their full range).
pub fn random_typed(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let vals: Vec<f32> = rng.vec(n).iter().map(|v| v * 2.0).collect();
    quant::quantize_to_vec(ty, &vals).unwrap_or_else(|_| {
        let len = ty.row_size(n as i64).unwrap();
        let mut bytes: Vec<u8> =
            (0..len).map(|i| if i % 2 == 1 { rng.below(0x3C) as u8 } else { rng.next_u64() as u8 }).collect();
        if ty == GgmlType::MXFP4 {
            // The E8M0 exponent of each 17-byte block: scales 2^-8 .. 2^0 (random bytes reach 2^127 and infinities).
            for b in bytes.chunks_mut(17) {
                b[0] = 120 + rng.below(9) as u8;
            }
        }
        bytes
    })
}

/// Q4_1 / Q5_1 on the integer-dot mat-vec take each block's min against ggml Q8_1's s = f16(d * sum(q)), d before
/// its f16 rounding, as the CPU backend's dot products do, where a reference with activations `x` (one row's k
/// values) on the Q8_0 grid takes f16(d) * sum(q): per block |m| * 2^-10 * |sum of the block's activations| more
/// (the f16 roundings of s and of d). `row` indexes the weights' contiguous rows in `a_bytes`; 0 for other types.
pub fn q8_1_min_bound(ty: GgmlType, a_bytes: &[u8], row: usize, x: &[f32]) -> f64 {
    let block = match ty {
        GgmlType::Q4_1 => 20,
        GgmlType::Q5_1 => 24,
        _ => return 0.0,
    };
    let nb = x.len() / 32;
    (0..nb)
        .map(|blk| {
            let o = (row * nb + blk) * block + 2;
            let mn = f64::from(half::f16::from_le_bytes([a_bytes[o], a_bytes[o + 1]]).to_f32()).abs();
            let xs: f64 = x[32 * blk..][..32].iter().map(|&v| f64::from(v)).sum();
            mn * xs.abs() * 1.01 / 1024.0
        })
        .sum()
}
