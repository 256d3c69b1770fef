//! The executor: records a graph into command buffers (barriers only where a node touches bytes an earlier node
//! wrote, or writes bytes an earlier node read), submitted in chunks so the GPU starts while the rest is recorded;
//! a graph that keeps coming back is recorded once and replayed (see [`super::replay`]). Nodes are recorded in the
//! order [`super::schedule`] plans (independent nodes between the same barriers).

use std::sync::{Arc, Mutex, MutexGuard};

use super::fusion::MatVecRopeGroup;
use super::replay::{self, GraphKey, Plan, ReplayCache};
use super::{fusion, schedule, Graph, Node};
use crate::error::{Error, Result};
use crate::ops;
use crate::ops::q8_emit::Planned;
use crate::vk::{CommandStream, Device, DispatchTime, Recorder, Recording};

/// What one recorded graph cost, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Kernels dispatched.
    pub dispatches: u32,
    /// Barriers inserted between them (not counting the one that starts each submission).
    pub barriers: u32,
    /// Command buffers submitted.
    pub submissions: u32,
    /// Whether the graph's earlier recording was submitted again (nothing recorded).
    pub replayed: bool,
    /// Whether a recording of the graph is kept for replay (recorded for it this time, or replayed).
    pub kept: bool,
}

/// Nodes per submission after the first (`GGVK_SUBMIT_NODES`, default 32; 0 records a graph as one submission).
fn submit_chunk() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| crate::knobs::number("GGVK_SUBMIT_NODES").map_or(32, |n| n as usize))
}

/// Runs graphs on one device through its own command stream. `Send + Sync`: the stream is behind a mutex,
/// so concurrent calls on one executor serialise; separate executors on one device run independently.
pub struct Executor {
    device: Arc<Device>,
    stream: Mutex<Streams>,
    profile: Mutex<bool>,
    /// Host time spent recording the last graph (checks, recording, submission), for the profile report.
    record_micros: Mutex<f64>,
}

/// The executor's command stream and its kept recordings (one lock: both submit to the same queue, in call order).
struct Streams {
    stream: CommandStream,
    replay: ReplayCache<RecordStats>,
}

/// Scratch one node's recording takes: what its kernels derive ([`ops::scratch_bytes`]) and the 8-bit copy of its
/// result it writes for later products (`quantize`), each rounded up to the offset alignment; a GLU after its gate
/// and up products also the f16 copy of its output that the fused kernel of the three writes where it takes them
/// ([`ops::matmul::takes_pair_glu`]).
fn scratch_needs(device: &Device, nodes: &[Node], quantize: &[Option<Planned>]) -> Vec<u64> {
    let align = device.caps().min_storage_offset_alignment.max(256);
    let taken = |f: &fusion::PairGlu<'_>| match (f.gate.src(0), f.gate.src(1)) {
        (Ok(a), Ok(b)) => ops::matmul::takes_pair_glu(device, f.op, a, b),
        _ => false,
    };
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let copy =
                quantize.get(i).and_then(Option::as_ref).map_or(0, |p| p.layout.bytes(&p.view).div_ceil(align) * align);
            let glu_copy = match i.checked_sub(2).and_then(|g| pair_glu(&nodes[g], nodes.get(g + 1), Some(n))) {
                Some(f) if taken(&f) => {
                    let cols = (f.out.ne[1] * f.out.ne[2] * f.out.ne[3]).max(0) as u64;
                    (f.out.ne[0].max(0) as u64 * 2 * cols).div_ceil(align) * align
                }
                _ => 0,
            };
            ops::scratch_bytes(device, n) + copy + glu_copy
        })
        .collect()
}

/// The scratch ring a graph records into ([`Recorder::reserve_scratch`]): what all its nodes take together when
/// that is at most `ring`, else `ring` or the most two neighbouring nodes take (a node reserves its own and its
/// successor's, which it may fuse with), whichever is larger.
fn scratch_size(needs: &[u64], ring: u64) -> u64 {
    let total: u64 = needs.iter().sum();
    let pair = needs.windows(2).map(|w| w[0] + w[1]).chain(needs.iter().copied()).max().unwrap_or(0);
    total.min(ring.max(pair))
}

/// Scratch past which a graph's nodes reuse it: 256 MiB, or `GGVK_SCRATCH_RING` bytes (read once per process). A
/// 7B prompt of 2048 tokens without flash attention derives ~300 MiB per layer, ~10 GiB over its 32 layers.
fn scratch_ring() -> u64 {
    static RING: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *RING.get_or_init(|| crate::knobs::size("GGVK_SCRATCH_RING").ok().filter(|&v| v > 0).unwrap_or(256 << 20))
}

/// Record the nodes `order` lists (graph indices into `all`) into `rec`, naming the node in any error.
/// Neighbours that [`fusion`] allows are recorded as one kernel.
/// `quantize[i]`: the quantized copy node i also writes of its output ([`fusion::plan_quantize`]).
/// `needs[i]`: node i's scratch ([`scratch_needs`]), reserved before it is recorded.
/// `groups[i]`: the nodes recorded with product i ([`fusion::plan_groups`]; they follow it in `order`).
fn record_nodes(
    rec: &mut Recorder<'_>,
    all: &[Node],
    order: &[usize],
    (quantize, needs, groups): (&[Option<Planned>], &[u64], &[Option<MatVecRopeGroup>]),
) -> Result<()> {
    let mut at = 0;
    while let Some(&i) = order.get(at) {
        let node = &all[i];
        at += 1;
        let _d = tracing::trace_span!("dispatch", i, op = node.op.name()).entered();
        // This node and the next (which it may fuse with) take their scratch without wrapping onto each other;
        // a producer writing a copy for later products, with every node up to the last of them and the one after
        // it where the ring holds that much (so the ring wraps before the copy is made, not between it and a
        // reader, which would have to derive it again).
        let next = order.get(at).copied();
        // Less what they will not take after all (weights whose kept f16 copy serves them).
        let need = |rec: &mut Recorder<'_>, j: usize| {
            needs.get(j).copied().unwrap_or(0).saturating_sub(ops::scratch_not_taken(rec, &all[j]))
        };
        let pair = need(rec, i) + next.map_or(0, |j| need(rec, j));
        // (The producer is this node or the next: a fused norm's copy is planned for its MUL.)
        let plans = |p: &usize| order.get(*p).is_some_and(|&j| quantize.get(j).is_some_and(Option::is_some));
        let span = match [at - 1, at].iter().find(|p| plans(p)).and_then(|&p| last_reader(all, order, p)) {
            Some(last) => order[at - 1..(last + 2).min(order.len())].iter().map(|&j| need(rec, j)).sum(),
            None => 0,
        };
        rec.reserve_scratch(if span > pair && span <= rec.scratch_limit() { span } else { pair })?;
        // The neighbours it may fuse with (fusion on).
        let partner = next.map(|j| &all[j]).filter(|_| fusion::enabled());
        let third = order.get(at + 1).map(|&j| &all[j]).filter(|_| fusion::enabled());
        let label = |rec: &mut Recorder<'_>, what: &str| {
            if rec.timed() {
                rec.set_label(format!("#{i} {what} {:?}", node.dst.ne));
            }
        };
        if let Some(g) = groups.get(i).copied().flatten() {
            record_group(rec, all, &g, label)?;
            at += g.later().count();
            continue;
        }
        if let Some(f) = pair_glu(node, partner, third) {
            label(rec, "MUL_MAT x2+GLU");
            if ops::matmul::record_pair_glu(rec, &f).map_err(|e| name_error(e, i, "MUL_MAT"))? {
                at += 2;
                continue;
            }
        }
        if let Some(f) = partner.and_then(|n| fusion::rms_norm_mul(node, n)) {
            let emit = next.and_then(|j| quantize.get(j)).and_then(Option::as_ref).map(|p| p.layout);
            at += 1;
            // The ADD of the product that the schedule put right after it, where the product is not also
            // quantized for a later product.
            let with_add = order.get(at).filter(|_| emit.is_none()).and_then(|&j| fusion::rms_norm_mul_add(f, &all[j]));
            let f = match with_add {
                Some(fa) => {
                    at += 1;
                    label(rec, "RMS_NORM+MUL+ADD");
                    fa
                }
                None => {
                    label(rec, "RMS_NORM+MUL");
                    f
                }
            };
            ops::norm::record_rms_norm_mul(rec, &f, emit).map_err(|e| name_error(e, i, "RMS_NORM+MUL"))?;
            continue;
        }
        if let Some(f) = partner.and_then(|n| fusion::mul_mat_add(node, n)) {
            label(rec, "MUL_MAT(+ADD)");
            if ops::matmul::record_with_add(rec, &f).map_err(|e| name_error(e, i, "MUL_MAT"))? {
                at += 1;
            }
            continue;
        }
        if let Some(f) = partner.and_then(|n| fusion::rope_set_rows(node, n)) {
            label(rec, "ROPE+SET_ROWS");
            ops::rope::record_with_cache(rec, &f).map_err(|e| name_error(e, i, "ROPE+SET_ROWS"))?;
            at += 1;
            continue;
        }
        if let Some(f) = partner.and_then(|n| fusion::rope_scale(node, n)) {
            label(rec, "ROPE+SCALE");
            ops::rope::record_with_scale(rec, &f).map_err(|e| name_error(e, i, "ROPE+SCALE"))?;
            at += 1;
            continue;
        }
        if rec.timed() {
            rec.set_label(format!("#{i} {} {:?}", node.op.name(), node.dst.ne));
        }
        match quantize.get(i).and_then(Option::as_ref) {
            Some(p) if matches!(node.op, crate::graph::Op::Glu { .. }) => {
                ops::glu::record_emitting(rec, node, p.layout)
            }
            Some(p) if matches!(node.op, crate::graph::Op::FlashAttnExt { .. }) => {
                ops::flash_attn::record_emitting(rec, node, Some(p))
            }
            Some(p) if matches!(node.op, crate::graph::Op::SoftMax { .. }) => {
                ops::softmax::record_emitting(rec, node, Some(p))
            }
            None if matches!(node.op, crate::graph::Op::SetRows) => {
                ops::rows::record_set_rows_of(rec, node, fusion::rows_period(all, order, at - 1))
            }
            _ => ops::record(rec, node),
        }
        .map_err(|e| name_error(e, i, node.op.name()))?;
    }
    Ok(())
}

/// Nodes looked at past a producer for the readers of its output ([`last_reader`]).
const READER_WINDOW: usize = 24;

/// The position in `order` of the last node within [`READER_WINDOW`] after position `p` that reads the output of
/// the node at `p`, before any node writes over it; `None` if none does.
fn last_reader(all: &[Node], order: &[usize], p: usize) -> Option<usize> {
    let out = &all[*order.get(p)?].dst;
    let mut last = None;
    for (q, &j) in order.iter().enumerate().skip(p + 1).take(READER_WINDOW) {
        let node = &all[j];
        if node.src.iter().flatten().any(|t| fusion::overlaps(t, out)) {
            last = Some(q);
        }
        if fusion::overlaps(&node.dst, out) {
            break;
        }
    }
    last
}

/// The gate and up products and their GLU starting at `node` ([`fusion::mul_mat_pair_glu`]), where that fusion
/// takes the GLU ([`fusion::pair_glu_takes`]).
fn pair_glu<'g>(node: &'g Node, second: Option<&'g Node>, third: Option<&'g Node>) -> Option<fusion::PairGlu<'g>> {
    let (second, third) = (second?, third?);
    fusion::mul_mat_pair_glu(node, second, third).filter(|f| fusion::pair_glu_takes(f.op))
}

/// Whether a chunk that would end before `order[end]` cuts a gate / up / GLU triple ([`pair_glu`]) apart.
fn cuts_pair_glu(all: &[Node], order: &[usize], end: usize) -> bool {
    let triple = |s: usize| {
        let at = |k: usize| order.get(k).map(|&j| &all[j]);
        at(s).is_some_and(|n| pair_glu(n, at(s + 1), at(s + 2)).is_some())
    };
    (end >= 1 && triple(end - 1)) || (end >= 2 && triple(end - 2))
}

/// Record a product and the rope / cache writes of its group ([`fusion::plan_groups`]): as one kernel where the
/// mat-vec kernel takes them, else each apart (the rope and its cache write still as one where they fuse).
fn record_group(
    rec: &mut Recorder<'_>,
    all: &[Node],
    g: &MatVecRopeGroup,
    label: impl Fn(&mut Recorder<'_>, &str),
) -> Result<()> {
    let f =
        g.view(all).ok_or_else(|| Error::Internal(format!("node {}: a fusion group that no longer matches", g.mm)))?;
    label(rec, "MUL_MAT(+ROPE/SET_ROWS)");
    // The product is recorded either way; the rest where the kernel did not take it.
    if ops::matmul::record_with_rope(rec, &f).map_err(|e| name_error(e, g.mm, "MUL_MAT"))? {
        return Ok(());
    }
    if let (Some(r), Some(s)) = (g.rope, g.set) {
        if let Some(rs) = fusion::rope_set_rows(&all[r], &all[s]) {
            return ops::rope::record_with_cache(rec, &rs).map_err(|e| name_error(e, r, "ROPE+SET_ROWS"));
        }
    }
    for m in g.later() {
        ops::record(rec, &all[m]).map_err(|e| name_error(e, m, all[m].op.name()))?;
    }
    Ok(())
}

/// `e` with the node's index and op in its message.
fn name_error(e: Error, i: usize, op: &str) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("node {i} ({op}): {m}")),
        Error::Unsupported(m) => Error::Unsupported(format!("node {i} ({op}): {m}")),
        other => other,
    }
}

impl Executor {
    /// An executor on `device`. `GGVK_PROFILE=1` turns on per-node GPU timing from the start.
    pub fn new(device: &Arc<Device>) -> Result<Self> {
        let profile = crate::knobs::switch("GGVK_PROFILE", false);
        Ok(Executor {
            device: device.clone(),
            stream: Mutex::new(Streams { stream: CommandStream::new(device)?, replay: ReplayCache::default() }),
            profile: Mutex::new(profile),
            record_micros: Mutex::new(0.0),
        })
    }

    fn stream(&self) -> MutexGuard<'_, Streams> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turn per-node GPU timestamps on or off. Timings of the last completed graph come from [`Self::last_times`]
    /// and, with `GGVK_PROFILE=1`, are printed to stderr.
    pub fn set_profiling(&self, on: bool) {
        *self.profile.lock().unwrap_or_else(|p| p.into_inner()) = on;
    }

    fn profiling(&self) -> bool {
        *self.profile.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record and submit `graph`; returns before the GPU finishes. Buffers it uses stay alive until it does.
    pub fn compute_async(&self, graph: &Graph) -> Result<RecordStats> {
        let _span = tracing::info_span!("graph_compute", nodes = graph.len()).entered();
        let started = std::time::Instant::now();
        for node in graph.nodes() {
            self.check_device(node)?;
        }
        let profile = self.profiling();
        let mut guard = self.stream();
        let Streams { stream, replay } = &mut *guard;
        // Producer-side quantization and the scratch the graph takes (neither needed to replay it).
        let plan = || fusion::plan_quantize(&self.device, graph.nodes());
        let needs = |plan: &[Option<Planned>]| scratch_needs(&self.device, graph.nodes(), plan);
        // Scratch taken in recording order (neighbours there reserve together).
        let ring_size = |order: &[usize], needs: &[u64]| {
            let ordered: Vec<u64> = order.iter().map(|&i| needs[i]).collect();
            scratch_size(&ordered, scratch_ring())
        };
        if replay::enabled() && !profile && !graph.is_empty() {
            let key = GraphKey::of(graph);
            match replay.lookup(&key) {
                Plan::Replay(i) => {
                    if let Some(stats) = Self::submit_kept(replay, i, &key)? {
                        self.note_record_time(started);
                        return Ok(stats);
                    }
                }
                Plan::Record => {
                    let mut recording = Recording::new(&self.device)?;
                    let plan = plan();
                    let needs = needs(&plan);
                    let groups = fusion::plan_groups(graph.nodes());
                    let order = schedule::order(graph.nodes(), &groups);
                    let mut rec = stream.begin_recording(&mut recording, ring_size(&order, &needs))?;
                    let _rec_span = tracing::debug_span!("record_for_replay").entered();
                    record_nodes(&mut rec, graph.nodes(), &order, (&plan, &needs, &groups))?;
                    let stats = RecordStats {
                        dispatches: rec.dispatches(),
                        barriers: rec.barriers(),
                        submissions: 1,
                        replayed: false,
                        kept: true,
                    };
                    rec.submit()?;
                    replay.insert(key, recording, stats);
                    self.note_record_time(started);
                    return Ok(stats);
                }
                Plan::Normal => {}
            }
        }
        let timestamps = profile.then(|| u32::try_from(graph.len() * 2).unwrap_or(u32::MAX));
        let plan = plan();
        let needs = needs(&plan);
        let groups = fusion::plan_groups(graph.nodes());
        let order = schedule::order(graph.nodes(), &groups);
        let scratch = ring_size(&order, &needs);
        // Submit in chunks so the GPU starts while the rest is recorded: a small first chunk, then larger ones
        // (one chunk when timing, so every dispatch's timestamps land in one query pool).
        let (first, steady) = match submit_chunk() {
            _ if profile => (usize::MAX, usize::MAX),
            0 => (usize::MAX, usize::MAX),
            n => (n.min(8), n),
        };
        let mut stats = RecordStats::default();
        let mut scratch_used = 0;
        // A chunk ends after `limit` nodes, moved on past the members of a group (they go with their product).
        let mut member = vec![false; graph.len()];
        groups.iter().flatten().flat_map(|g| g.later()).for_each(|m| member[m] = true);
        let mut start = 0usize;
        let mut limit = first;
        loop {
            let mut end = start.saturating_add(limit).min(order.len());
            while end < order.len() && (member[order[end]] || cuts_pair_glu(graph.nodes(), &order, end)) {
                end += 1;
            }
            let mut rec = stream.begin(timestamps, scratch, scratch_used)?;
            let _rec_span = tracing::debug_span!("record").entered();
            record_nodes(&mut rec, graph.nodes(), &order[start..end], (&plan, &needs, &groups))?;
            stats.dispatches += rec.dispatches();
            stats.barriers += rec.barriers();
            stats.submissions += 1;
            scratch_used = rec.scratch_used();
            rec.submit()?;
            limit = steady;
            start = end;
            if start >= order.len() {
                break;
            }
        }
        self.note_record_time(started);
        Ok(stats)
    }

    /// Submit kept recording `i` (of `key`) again; `None` when it is stale (a buffer it used is gone: forgotten,
    /// the graph records again as a new one).
    fn submit_kept(replay: &mut ReplayCache<RecordStats>, i: usize, key: &GraphKey) -> Result<Option<RecordStats>> {
        let entry = replay.entry(i).ok_or_else(|| Error::Internal("replay entry vanished".into()))?;
        match entry.recording.replay() {
            Ok(true) => Ok(Some(RecordStats { replayed: true, ..entry.stats })),
            Ok(false) => {
                replay.forget(key);
                Ok(None)
            }
            Err(e) => {
                replay.forget(key);
                Err(e)
            }
        }
    }

    /// Submit the kept recording of the graph whose key is `key` again, without the graph at hand (a front door
    /// that knows its graph is unchanged, e.g. by comparing its own description of it). `None`: nothing kept
    /// under that key (or it went stale, or replay is off or profiling is on); compute the graph instead.
    pub fn replay_key(&self, key: &GraphKey) -> Result<Option<RecordStats>> {
        if !replay::enabled() || self.profiling() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let mut guard = self.stream();
        let replay = &mut guard.replay;
        let Some(i) = replay.kept_index(key) else { return Ok(None) };
        let stats = Self::submit_kept(replay, i, key)?;
        if stats.is_some() {
            self.note_record_time(started);
        }
        Ok(stats)
    }

    fn note_record_time(&self, started: std::time::Instant) {
        *self.record_micros.lock().unwrap_or_else(|p| p.into_inner()) = started.elapsed().as_secs_f64() * 1e6;
    }

    /// Wait for every graph submitted by this executor.
    pub fn synchronize(&self) -> Result<()> {
        let _span = tracing::debug_span!("synchronize").entered();
        let mut guard = self.stream();
        let Streams { stream, replay } = &mut *guard;
        stream.synchronize()?;
        for r in replay.recordings() {
            r.synchronize()?;
        }
        if self.profiling() && crate::knobs::switch("GGVK_PROFILE", false) {
            let times = stream.last_times();
            let record = *self.record_micros.lock().unwrap_or_else(|p| p.into_inner());
            crate::diag::emit(crate::diag::Level::Report, profile_report(times, record).trim_end_matches('\n'));
        }
        Ok(())
    }

    /// Record, submit and wait.
    pub fn compute(&self, graph: &Graph) -> Result<RecordStats> {
        let stats = self.compute_async(graph)?;
        self.synchronize()?;
        Ok(stats)
    }

    /// GPU time per dispatch of the last completed graph recorded with profiling on.
    pub fn last_times(&self) -> Vec<DispatchTime> {
        self.stream().stream.last_times().to_vec()
    }

    fn check_device(&self, node: &Node) -> Result<()> {
        let foreign = node
            .src
            .iter()
            .flatten()
            .chain(std::iter::once(&node.dst))
            .any(|t| !Arc::ptr_eq(t.buffer.device(), &self.device));
        if foreign {
            return Err(Error::invalid(format!(
                "{} node uses a buffer of another device than this backend's ({})",
                node.op.name(),
                self.device.caps().name
            )));
        }
        Ok(())
    }
}

/// The `GGVK_PROFILE=1` report of one graph: totals (dispatches, summed GPU time, host recording time), then
/// dispatch count and GPU time per op family (op and kernel, heaviest first), then every dispatch.
/// Timestamps serialise the dispatches, so the GPU sum is an upper bound of the graph's GPU time.
pub fn profile_report(times: &[DispatchTime], record_micros: f64) -> String {
    use std::collections::HashMap;
    use std::fmt::Write;
    let total: f64 = times.iter().map(|t| t.micros).sum();
    let mut fam: HashMap<String, (u32, f64)> = HashMap::new();
    for t in times {
        // Labels read "#<node> <OP> [<shape>] <kernel>".
        let mut words = t.label.split_whitespace();
        let op = words.nth(1).unwrap_or("?");
        let kernel = t.label.rsplit(' ').next().unwrap_or("?");
        let e = fam.entry(format!("{op} {kernel}")).or_default();
        e.0 += 1;
        e.1 += t.micros;
    }
    let mut fam: Vec<_> = fam.into_iter().collect();
    fam.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1).then_with(|| a.0.cmp(&b.0)));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ggvk profile: {} dispatches, {total:.1} us GPU time (summed), {record_micros:.1} us host recording",
        times.len()
    );
    let _ = writeln!(out, "  per op family:    count     GPU us   mean us  family");
    for (name, (n, us)) in &fam {
        let _ = writeln!(out, "  {:>23} {:>10.1} {:>9.2}  {name}", n, us, us / f64::from(*n));
    }
    for t in times {
        let _ = writeln!(out, "  {:>10.1} us  {}", t.micros, t.label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scratch_size;

    #[test]
    fn scratch_is_a_ring_once_the_graph_takes_more_than_it() {
        let mib = 1u64 << 20;
        // Small graphs take exactly what their nodes need together.
        assert_eq!(scratch_size(&[4 * mib, 0, 16 * mib], 256 * mib), 20 * mib);
        assert_eq!(scratch_size(&[], 256 * mib), 0);
        // 32 layers of 300 MiB: the ring, but never less than two neighbouring nodes.
        let layers: Vec<u64> = (0..32).flat_map(|_| [16 * mib, 256 * mib, 28 * mib]).collect();
        assert_eq!(scratch_size(&layers, 256 * mib), 284 * mib);
        assert_eq!(scratch_size(&layers, 1), 284 * mib);
        assert_eq!(scratch_size(&layers, 1 << 40), 32 * 300 * mib);
    }
}
