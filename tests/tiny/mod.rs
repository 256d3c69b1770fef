//! A small llama-like layer step built through the engine API, for the hardening tests (fault injection, soak,
//! concurrency, memory budget): token embedding (GET_ROWS of Q4_0), RMS_NORM x weight (MUL), Q/K/V products
//! (Q4_0, F16, F32 weights), ROPE, the K cache written as F16 (CPY), causal SOFT_MAX with a mask, the attention
//! products, the output projection (Q8_0), residual ADDs, a SwiGLU feed-forward (Q4_0 gate/up, F16 down), SCALE,
//! and the output head (Q4_0). Every tensor is placed in one of two buffers (weights, activations) as ggml-alloc
//! would place them. Everything returns `Result`, so a failure anywhere reaches the caller.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use ggvk::graph::GluOp;
use ggvk::ops::rope::RopeParams;
use ggvk::quant::{self, GgmlType};
use ggvk::vk::Buffer;
use ggvk::{Backend, Graph, Node, Op, Result, Tensor};

pub const N_EMBD: i64 = 64;
pub const N_FF: i64 = 128;
pub const N_VOCAB: i64 = 96;
pub const N_TOK: i64 = 8;

/// Places tensors one after the other in a buffer (256-byte aligned), as ggml-alloc does.
struct Arena {
    buf: Arc<Buffer>,
    used: u64,
}

impl Arena {
    fn place(&mut self, ty: GgmlType, ne: [i64; 4]) -> Result<Tensor> {
        let t = Tensor::contiguous(self.buf.clone(), self.used, ty, ne)?;
        self.used += t.nbytes().div_ceil(256) * 256;
        Ok(t)
    }
}

/// Bytes one arena needs for the tensors `shapes` (upper bound, 256-byte aligned each).
fn arena_bytes(shapes: &[(GgmlType, [i64; 4])]) -> u64 {
    shapes
        .iter()
        .map(|(ty, ne)| {
            let nb = Tensor::contiguous_strides(*ty, *ne).expect("shape");
            (nb[3] * ne[3] as u64).div_ceil(256) * 256
        })
        .sum()
}

/// xorshift64* (reproducible weights).
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
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const WEIGHTS: [(&str, GgmlType, [i64; 4]); 11] = [
    ("tok_embd", GgmlType::Q4_0, [N_EMBD, N_VOCAB, 1, 1]),
    ("attn_norm", GgmlType::F32, [N_EMBD, 1, 1, 1]),
    ("wq", GgmlType::Q4_0, [N_EMBD, N_EMBD, 1, 1]),
    ("wk", GgmlType::F16, [N_EMBD, N_EMBD, 1, 1]),
    ("wv", GgmlType::F32, [N_EMBD, N_EMBD, 1, 1]),
    ("wo", GgmlType::Q8_0, [N_EMBD, N_EMBD, 1, 1]),
    ("ffn_norm", GgmlType::F32, [N_EMBD, 1, 1, 1]),
    ("w_gate", GgmlType::Q4_0, [N_EMBD, N_FF, 1, 1]),
    ("w_up", GgmlType::Q4_0, [N_EMBD, N_FF, 1, 1]),
    ("w_down", GgmlType::F16, [N_FF, N_EMBD, 1, 1]),
    ("output", GgmlType::Q4_0, [N_EMBD, N_VOCAB, 1, 1]),
];

const ACTS: [(&str, GgmlType, [i64; 4]); 22] = [
    ("ids", GgmlType::I32, [N_TOK, 1, 1, 1]),
    ("pos", GgmlType::I32, [N_TOK, 1, 1, 1]),
    ("mask", GgmlType::F32, [N_TOK, N_TOK, 1, 1]),
    ("x", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("xn", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("xw", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("q", GgmlType::F32, [N_EMBD, 1, N_TOK, 1]),
    ("k", GgmlType::F32, [N_EMBD, 1, N_TOK, 1]),
    ("qr", GgmlType::F32, [N_EMBD, 1, N_TOK, 1]),
    ("kr", GgmlType::F32, [N_EMBD, 1, N_TOK, 1]),
    ("kcache", GgmlType::F16, [N_EMBD, N_TOK, 1, 1]),
    ("vt", GgmlType::F32, [N_TOK, N_EMBD, 1, 1]),
    ("kq", GgmlType::F32, [N_TOK, N_TOK, 1, 1]),
    ("kqs", GgmlType::F32, [N_TOK, N_TOK, 1, 1]),
    ("kqv", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("attn", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("h", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("gate", GgmlType::F32, [N_FF, N_TOK, 1, 1]),
    ("up", GgmlType::F32, [N_FF, N_TOK, 1, 1]),
    ("ffn", GgmlType::F32, [N_FF, N_TOK, 1, 1]),
    ("down", GgmlType::F32, [N_EMBD, N_TOK, 1, 1]),
    ("logits", GgmlType::F32, [N_VOCAB, N_TOK, 1, 1]),
];

/// Bytes of the two buffers the model allocates (weights, activations).
pub fn buffer_bytes() -> (u64, u64) {
    let w: Vec<_> = WEIGHTS.iter().map(|(_, t, n)| (*t, *n)).collect();
    let a: Vec<_> = ACTS.iter().map(|(_, t, n)| (*t, *n)).collect();
    (arena_bytes(&w), arena_bytes(&a) + arena_bytes(&[(GgmlType::F32, [N_EMBD, N_TOK, 1, 1])]))
}

/// The model: its buffers, graph and the tensors a step writes and reads.
pub struct Model {
    pub graph: Graph,
    ids: Tensor,
    pos: Tensor,
    mask: Tensor,
    logits: Tensor,
    pub weights: Arc<Buffer>,
    pub acts: Arc<Buffer>,
}

fn find<'a>(names: &[&str], ts: &'a [Tensor], name: &str) -> &'a Tensor {
    &ts[names.iter().position(|n| *n == name).expect("known tensor")]
}

fn node(op: Op, src: &[&Tensor], dst: &Tensor) -> Node {
    Node { op, src: src.iter().map(|t| Some((*t).clone())).collect(), dst: dst.clone() }
}

impl Model {
    /// Allocate, upload weights (seeded) and build the graph.
    pub fn new(be: &Backend, seed: u64) -> Result<Model> {
        let (wb, ab) = buffer_bytes();
        let mut w = Arena { buf: be.alloc(wb)?, used: 0 };
        let mut a = Arena { buf: be.alloc(ab)?, used: 0 };
        let mut rng = Rng::new(seed);
        let mut wt = Vec::new();
        for (name, ty, ne) in WEIGHTS {
            let t = w.place(ty, ne)?;
            let n = (ne[0] * ne[1] * ne[2] * ne[3]) as usize;
            let vals: Vec<f32> =
                (0..n).map(|_| if name.ends_with("norm") { 1.0 + 0.1 * rng.f32() } else { 0.25 * rng.f32() }).collect();
            t.write(0, &quant::quantize_to_vec(ty, &vals)?)?;
            wt.push(t);
        }
        let mut at = Vec::new();
        for (_, ty, ne) in ACTS {
            at.push(a.place(ty, ne)?);
        }
        let wn: Vec<&str> = WEIGHTS.iter().map(|w| w.0).collect();
        let an: Vec<&str> = ACTS.iter().map(|a| a.0).collect();
        let w_ = |n: &str| find(&wn, &wt, n).clone();
        let a_ = |n: &str| find(&an, &at, n).clone();
        // 2-D views of the [N_EMBD, 1, N_TOK] per-head tensors (one head of N_EMBD).
        let flat = |t: &Tensor| Tensor::contiguous(t.buffer.clone(), t.offset, t.ty, [N_EMBD, N_TOK, 1, 1]);
        let x2 = a.place(GgmlType::F32, [N_EMBD, N_TOK, 1, 1])?;

        let rope = RopeParams { n_dims: N_EMBD as i32, n_ctx_orig: 4096, freq_base: 10000.0, ..Default::default() };
        let mut g = Graph::new();
        g.push(node(Op::GetRows, &[&w_("tok_embd"), &a_("ids")], &a_("x")))?;
        g.push(node(Op::RmsNorm { eps: 1e-5 }, &[&a_("x")], &a_("xn")))?;
        g.push(node(Op::Mul, &[&a_("xn"), &w_("attn_norm")], &a_("xw")))?;
        g.mul_mat(&w_("wq"), &a_("xw"), &flat(&a_("q"))?)?;
        g.mul_mat(&w_("wk"), &a_("xw"), &flat(&a_("k"))?)?;
        g.mul_mat(&a_("xw"), &w_("wv"), &a_("vt"))?;
        g.rope(&a_("q"), &a_("pos"), None, &a_("qr"), rope)?;
        g.rope(&a_("k"), &a_("pos"), None, &a_("kr"), rope)?;
        g.push(node(Op::Cpy, &[&a_("kr")], &a_("kcache")))?;
        g.mul_mat(&a_("kcache"), &flat(&a_("qr"))?, &a_("kq"))?;
        let scale = 1.0 / (N_EMBD as f32).sqrt();
        g.push(node(Op::SoftMax { scale, max_bias: 0.0 }, &[&a_("kq"), &a_("mask")], &a_("kqs")))?;
        g.mul_mat(&a_("vt"), &a_("kqs"), &a_("kqv"))?;
        g.mul_mat(&w_("wo"), &a_("kqv"), &a_("attn"))?;
        g.push(node(Op::Add, &[&a_("attn"), &a_("x")], &a_("h")))?;
        g.push(node(Op::RmsNorm { eps: 1e-5 }, &[&a_("h")], &a_("xn")))?;
        g.push(node(Op::Mul, &[&a_("xn"), &w_("ffn_norm")], &a_("xw")))?;
        g.mul_mat(&w_("w_gate"), &a_("xw"), &a_("gate"))?;
        g.mul_mat(&w_("w_up"), &a_("xw"), &a_("up"))?;
        g.push(node(Op::Glu { op: GluOp::SwiGlu, swapped: false }, &[&a_("gate"), &a_("up")], &a_("ffn")))?;
        g.mul_mat(&w_("w_down"), &a_("ffn"), &a_("down"))?;
        g.push(node(Op::Add, &[&a_("down"), &a_("h")], &x2))?;
        g.push(node(Op::Scale { s: 0.5, b: 0.0 }, &[&x2], &a_("xw")))?;
        g.mul_mat(&w_("output"), &a_("xw"), &a_("logits"))?;

        Ok(Model {
            graph: g,
            ids: a_("ids"),
            pos: a_("pos"),
            mask: a_("mask"),
            logits: a_("logits"),
            weights: w.buf,
            acts: a.buf,
        })
    }

    /// One step: upload token ids (from `tokens_seed`), positions and the causal mask, compute, read the logits
    /// as llama.cpp does: the graph submitted, the logits' read queued behind it, both completed by one
    /// synchronize (where the read cannot be queued, e.g. a mapped buffer, it is read after the synchronize).
    pub fn step(&self, be: &Backend, tokens_seed: u64) -> Result<Vec<f32>> {
        let mut rng = Rng::new(tokens_seed);
        let ids: Vec<u8> = (0..N_TOK).flat_map(|_| (rng.below(N_VOCAB as u64) as i32).to_ne_bytes()).collect();
        let pos: Vec<u8> = (0..N_TOK as i32).flat_map(|p| p.to_ne_bytes()).collect();
        let mask: Vec<u8> = (0..N_TOK)
            .flat_map(|q| (0..N_TOK).map(move |k| if k <= q { 0.0f32 } else { f32::NEG_INFINITY }))
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        self.ids.write(0, &ids)?;
        self.pos.write(0, &pos)?;
        self.mask.write(0, &mask)?;
        be.compute_async(&self.graph)?;
        let got: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = got.clone();
        let deliver = Box::new(move |b: &[u8]| sink.lock().unwrap().extend_from_slice(b));
        let queued = be.read_async(&self.logits.buffer, self.logits.offset, self.logits.nbytes(), deliver)?;
        be.synchronize()?;
        let mut out = std::mem::take(&mut *got.lock().unwrap());
        if !queued {
            out = vec![0u8; self.logits.nbytes() as usize];
            self.logits.read(0, &mut out)?;
        }
        Ok(out.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// Sanity of a logits vector: all finite, not all equal.
pub fn plausible(logits: &[f32]) -> bool {
    logits.len() == (N_VOCAB * N_TOK) as usize
        && logits.iter().all(|v| v.is_finite())
        && logits.iter().any(|v| (v - logits[0]).abs() > 1e-6)
}
