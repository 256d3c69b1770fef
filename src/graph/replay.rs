//! Graph replay: llama.cpp computes the same graph for every generated token (same ops, shapes, buffers and
//! offsets; only the bytes in the buffers change: the new token, its position, the mask), so its commands can be
//! recorded once and submitted again. What a recording depends on is exactly what [`GraphKey`] holds: each node's
//! op and parameters (floats by their bits) and each tensor's buffer, offset, type, shape and strides. Values that
//! change per token live in device memory (positions, indices, masks are tensors), never in push constants.
//!
//! Policy ([`ReplayCache`]): a graph seen for the first time is recorded as usual (in chunks, so the GPU starts
//! while the host records); seen again (among the last [`RECENT`] graphs, not necessarily the one before), it is
//! recorded once more into a [`Recording`] kept for replay; from then on, while it keeps coming back, it is
//! replayed. Up to [`KEEP`] recordings are kept, because graphs alternate: ggml's meta backend (tensor
//! parallelism, `-sm tensor`) hands each device one graph per block of the model between allreduces (65 per token
//! for a 32-layer model), the splits of a model spread over devices alternate too. The least recently used
//! recording goes first. A recording whose buffers were freed is dropped and the graph recorded again.
//! `GGVK_REPLAY=0` turns replay off.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use super::{Graph, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::Recording;

/// Recordings kept per executor. A kept recording holds its command buffer and descriptor sets (for a 7B
/// model's one-token graph about 1,000 dispatches: well under a megabyte of host memory), not device memory.
///
/// cbindgen:ignore
pub const KEEP: usize = 128;

/// Graphs remembered (by a hash of their key) as seen, so that the second time one comes is recorded for replay.
///
/// cbindgen:ignore
pub const RECENT: usize = 256;

/// Whether replay is on (`GGVK_REPLAY`, default on; read once per process).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_REPLAY", true))
}

/// A tensor as a recording sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TensorKey {
    buffer: u64,
    offset: u64,
    ty: GgmlType,
    ne: [i64; 4],
    nb: [u64; 4],
}

impl TensorKey {
    fn of(t: &Tensor) -> Self {
        TensorKey { buffer: t.buffer.id(), offset: t.offset, ty: t.ty, ne: t.ne, nb: t.nb }
    }
}

/// Everything recording a graph depends on, compared exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GraphKey {
    /// Per node: its word count, the op's name, its parameters as 32-bit words (floats by their bits, so -0.0
    /// and 0.0 differ), its number of sources.
    ops: Vec<u32>,
    /// Per node: dst, then each source (`None` for an absent optional one).
    tensors: Vec<Option<TensorKey>>,
}

/// ggml-style op parameters as words.
fn op_words(op: &Op, out: &mut Vec<u32>) {
    let f = |v: f32| v.to_bits();
    match *op {
        Op::Rope(p) => out.extend([
            p.n_dims as u32,
            p.mode as u32,
            p.n_ctx_orig as u32,
            f(p.freq_base),
            f(p.freq_scale),
            f(p.ext_factor),
            f(p.attn_factor),
            f(p.beta_fast),
            f(p.beta_slow),
            p.n_offs as u32,
            p.sections[0] as u32,
            p.sections[1] as u32,
            p.sections[2] as u32,
            p.sections[3] as u32,
            u32::from(p.back),
        ]),
        Op::Scale { s, b } => out.extend([f(s), f(b)]),
        Op::Unary(u) => out.push(u as u32),
        Op::Clamp { min, max } => out.extend([f(min), f(max)]),
        Op::LeakyRelu { slope } => out.push(f(slope)),
        Op::Glu { op, swapped } => out.extend([op as u32, u32::from(swapped)]),
        Op::RmsNorm { eps } | Op::Norm { eps } | Op::L2Norm { eps } => out.push(f(eps)),
        Op::GroupNorm { groups, eps } => out.extend([groups as u32, f(eps)]),
        Op::SoftMax { scale, max_bias } => out.extend([f(scale), f(max_bias)]),
        Op::ArgSort { desc } => out.push(u32::from(desc)),
        Op::FlashAttnExt { scale, max_bias, softcap, prec } => {
            out.extend([f(scale), f(max_bias), f(softcap), prec as u32])
        }
        Op::MulMatId { b_prec } => out.push(b_prec.ggml() as u32),
        Op::Concat { dim } => out.push(dim as u32),
        Op::Pad { lp, rp, circular } => {
            out.extend(lp.map(|v| v as u32));
            out.extend(rp.map(|v| v as u32));
            out.push(u32::from(circular));
        }
        Op::Arange { start, stop, step } => out.extend([f(start), f(stop), f(step)]),
        Op::PadReflect1d { p0, p1 } => out.extend([p0 as u32, p1 as u32]),
        Op::Roll { shift } => out.extend(shift.map(|v| v as u32)),
        Op::Im2Col { s, p, d, is_2d } => {
            out.extend(s.into_iter().chain(p).chain(d).map(|v| v as u32));
            out.push(u32::from(is_2d));
        }
        Op::Im2Col3d { s, p, d, ic } => {
            out.extend(s.into_iter().chain(p).chain(d).map(|v| v as u32));
            out.push(ic as u32);
        }
        Op::Pool1d { op, k, s, p } => out.extend([op as u32, k as u32, s as u32, p as u32]),
        Op::Pool2d { op, k, s, p } => {
            out.push(op as u32);
            out.extend(k.into_iter().chain(s).chain(p).map(|v| v as u32));
        }
        Op::Upscale { mode, align_corners, antialias } => {
            out.extend([mode as u32, u32::from(align_corners), u32::from(antialias)])
        }
        Op::ConvTranspose1d { s0, p0, d0 } => out.extend([s0 as u32, p0 as u32, d0 as u32]),
        Op::Col2Im1d { s0, oc, p0 } => out.extend([s0 as u32, oc as u32, p0 as u32]),
        Op::SsmScan { k } | Op::GatedDeltaNet { k } => out.push(k as u32),
        Op::Fill { c } => out.push(f(c)),
        Op::RmsNormBack { eps } => out.push(f(eps)),
        Op::SoftMaxBack { scale, max_bias } => out.extend([f(scale), f(max_bias)]),
        Op::Xielu { alpha_n, alpha_p, beta, eps } => out.extend([f(alpha_n), f(alpha_p), f(beta), f(eps)]),
        Op::SwigluOai { swapped, alpha, limit } => out.extend([u32::from(swapped), f(alpha), f(limit)]),
        Op::SwigluClamp { swapped, limit } => out.extend([u32::from(swapped), f(limit)]),
        Op::Tri { ty } => out.push(ty as u32),
        Op::DiagMaskInf { n_past } => out.push(n_past as u32),
        Op::Acc { nb, offset } | Op::Set { nb, offset } => {
            out.extend([nb[0] as u32, nb[1] as u32, nb[2] as u32, offset as u32])
        }
        Op::Conv2d { s, p, d } | Op::Conv2dDw { s, p, d } => {
            out.extend([s[0], s[1], p[0], p[1], d[0], d[1]].map(|v| v as u32))
        }
        Op::Conv3d { s, p, d, ic, n, oc } => {
            out.extend(s.iter().chain(&p).chain(&d).chain(&[ic, n, oc]).map(|&v| v as u32))
        }
        Op::ConvTranspose2d { stride } => out.push(stride as u32),
        Op::TimestepEmbedding { dim, max_period } => out.extend([dim as u32, max_period as u32]),
        Op::GatedLinearAttn { scale } => out.push(f(scale)),
        Op::Dsv4HcComb { eps, n_iter } => out.extend([f(eps), n_iter as u32]),
        Op::Dsv4HcPre { scale, gated } => out.extend([f(scale), u32::from(gated)]),
        Op::SsmConv
        | Op::SiluBack
        | Op::OptStepAdamw
        | Op::OptStepSgd
        | Op::GetRowsBack
        | Op::CountEqual
        | Op::CrossEntropyLoss
        | Op::CrossEntropyLossBack
        | Op::RwkvWkv6
        | Op::RwkvWkv7
        | Op::SolveTri
        | Op::LightningIndexer
        | Op::Dsv4HcPost
        | Op::MulMat
        | Op::OutProd
        | Op::Add
        | Op::Mul
        | Op::Sub
        | Op::Div
        | Op::Cpy
        | Op::GetRows
        | Op::SetRows
        | Op::SumRows
        | Op::Mean
        | Op::Sum
        | Op::ArgMax
        | Op::AddId
        | Op::TopK
        | Op::Repeat
        | Op::RepeatBack
        | Op::Diag
        | Op::Cumsum => {}
    }
}

impl GraphKey {
    /// The key of `graph`.
    pub fn of(graph: &Graph) -> Self {
        let mut ops = Vec::with_capacity(graph.len() * 3);
        let mut tensors = Vec::with_capacity(graph.len() * 4);
        for node in graph.nodes() {
            // The op's name tells the variant; the word count keeps one node's words from running into the next's,
            // and the source count splits `tensors` into nodes.
            let before = ops.len();
            ops.push(0);
            ops.extend(node.op.name().bytes().map(u32::from));
            op_words(&node.op, &mut ops);
            ops.push(node.src.len() as u32);
            ops[before] = (ops.len() - before) as u32;
            tensors.push(Some(TensorKey::of(&node.dst)));
            tensors.extend(node.src.iter().map(|s| s.as_ref().map(TensorKey::of)));
        }
        GraphKey { ops, tensors }
    }

    /// A hash of the key (for remembering graphs seen; equal keys hash equal).
    fn digest(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// What to do with a graph, decided by [`ReplayCache::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Submit kept recording `i` again ([`ReplayCache::entry`]).
    Replay(usize),
    /// Record the graph into a new recording (then [`ReplayCache::insert`] it).
    Record,
    /// Record and submit as usual.
    Normal,
}

/// A kept recording: the key of its graph, the recording, what recording it cost.
pub struct Entry<S> {
    /// The graph's key.
    pub key: GraphKey,
    /// Its commands.
    pub recording: Recording,
    /// Stats of the recording (dispatches, barriers), reported again for each replay.
    pub stats: S,
}

/// The recordings of one executor and the graphs it saw recently (hashes of their keys, oldest first).
pub struct ReplayCache<S> {
    seen: VecDeque<u64>,
    kept: VecDeque<Entry<S>>,
}

impl<S> Default for ReplayCache<S> {
    fn default() -> Self {
        ReplayCache { seen: VecDeque::new(), kept: VecDeque::new() }
    }
}

impl<S> ReplayCache<S> {
    /// The plan for a graph with key `key`.
    pub fn lookup(&mut self, key: &GraphKey) -> Plan {
        if let Some(i) = self.kept.iter().position(|e| e.key == *key) {
            // Most recently used last, so eviction takes the least recently used.
            let entry = self.kept.remove(i).expect("index from position");
            self.kept.push_back(entry);
            return Plan::Replay(self.kept.len() - 1);
        }
        let digest = key.digest();
        if let Some(i) = self.seen.iter().position(|&d| d == digest) {
            // (A hash collision records a graph for replay one time early; replay itself compares whole keys.)
            self.seen.remove(i);
            return Plan::Record;
        }
        if self.seen.len() == RECENT {
            self.seen.pop_front();
        }
        self.seen.push_back(digest);
        Plan::Normal
    }

    /// The index of the kept recording of `key`, marked most recently used.
    pub fn kept_index(&mut self, key: &GraphKey) -> Option<usize> {
        let i = self.kept.iter().position(|e| e.key == *key)?;
        let entry = self.kept.remove(i).expect("index from position");
        self.kept.push_back(entry);
        Some(self.kept.len() - 1)
    }

    /// Kept entry `i` (from [`Plan::Replay`]).
    pub fn entry(&mut self, i: usize) -> Option<&mut Entry<S>> {
        self.kept.get_mut(i)
    }

    /// Keep `recording` of the graph with key `key`.
    pub fn insert(&mut self, key: GraphKey, recording: Recording, stats: S) {
        self.kept.retain(|e| e.key != key);
        if self.kept.len() == KEEP {
            self.kept.pop_front();
        }
        self.kept.push_back(Entry { key, recording, stats });
    }

    /// Drop the recording of `key` (stale, or its submission failed); the graph starts over as new.
    pub fn forget(&mut self, key: &GraphKey) {
        self.kept.retain(|e| e.key != *key);
        let digest = key.digest();
        self.seen.retain(|&d| d != digest);
    }

    /// Every recording, to wait for their submissions.
    pub fn recordings(&mut self) -> impl Iterator<Item = &mut Recording> {
        self.kept.iter_mut().map(|e| &mut e.recording)
    }

    /// Recordings kept now.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}
