//! The executor: records a whole graph into one command buffer (barriers only where a node touches bytes an
//! earlier node wrote, or writes bytes an earlier node read) and submits it once.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Graph, Node};
use crate::error::{Error, Result};
use crate::ops;
use crate::vk::{CommandStream, Device, DispatchTime};

/// What one recorded graph cost, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Kernels dispatched.
    pub dispatches: u32,
    /// Barriers inserted between them (not counting the one that starts each submission).
    pub barriers: u32,
    /// Command buffers submitted.
    pub submissions: u32,
}

/// Nodes per submission after the first (`GGVK_SUBMIT_NODES`, default 32; 0 records a graph as one submission).
fn submit_chunk() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::env::var("GGVK_SUBMIT_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(32))
}

/// Runs graphs on one device through its own command stream. `Send + Sync`: the stream is behind a mutex,
/// so concurrent calls on one executor serialise; separate executors on one device run independently.
pub struct Executor {
    device: Arc<Device>,
    stream: Mutex<CommandStream>,
    profile: Mutex<bool>,
}

impl Executor {
    /// An executor on `device`. `GGVK_PROFILE=1` turns on per-node GPU timing from the start.
    pub fn new(device: &Arc<Device>) -> Result<Self> {
        let profile = std::env::var("GGVK_PROFILE").is_ok_and(|v| v == "1");
        Ok(Executor {
            device: device.clone(),
            stream: Mutex::new(CommandStream::new(device)?),
            profile: Mutex::new(profile),
        })
    }

    fn stream(&self) -> MutexGuard<'_, CommandStream> {
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
        for node in graph.nodes() {
            self.check_device(node)?;
        }
        let profile = self.profiling();
        let mut stream = self.stream();
        let timestamps = profile.then(|| u32::try_from(graph.len() * 2).unwrap_or(u32::MAX));
        let scratch = graph.nodes().iter().map(|n| ops::scratch_bytes(&self.device, n)).sum();
        // Submit in chunks so the GPU starts while the rest is recorded: a small first chunk, then larger ones
        // (one chunk when timing, so every dispatch's timestamps land in one query pool).
        let (first, steady) = match submit_chunk() {
            _ if profile => (usize::MAX, usize::MAX),
            0 => (usize::MAX, usize::MAX),
            n => (n.min(8), n),
        };
        let mut stats = RecordStats::default();
        let mut scratch_used = 0;
        let mut nodes = graph.nodes().iter().enumerate().peekable();
        let mut limit = first;
        loop {
            let mut rec = stream.begin(timestamps, scratch, scratch_used)?;
            let _rec_span = tracing::debug_span!("record").entered();
            let mut recorded = 0;
            while recorded < limit {
                let Some((i, node)) = nodes.next() else { break };
                let _d = tracing::trace_span!("dispatch", i, op = node.op.name()).entered();
                if rec.timed() {
                    rec.set_label(format!("#{i} {} {:?}", node.op.name(), node.dst.ne));
                }
                ops::record(&mut rec, node).map_err(|e| match e {
                    Error::InvalidArgument(m) => Error::InvalidArgument(format!("node {i} ({}): {m}", node.op.name())),
                    Error::Unsupported(m) => Error::Unsupported(format!("node {i} ({}): {m}", node.op.name())),
                    other => other,
                })?;
                recorded += 1;
            }
            stats.dispatches += rec.dispatches();
            stats.barriers += rec.barriers();
            stats.submissions += 1;
            scratch_used = rec.scratch_used();
            rec.submit()?;
            limit = steady;
            if nodes.peek().is_none() {
                break;
            }
        }
        Ok(stats)
    }

    /// Wait for every graph submitted by this executor.
    pub fn synchronize(&self) -> Result<()> {
        let _span = tracing::debug_span!("synchronize").entered();
        let mut stream = self.stream();
        stream.synchronize()?;
        if self.profiling() && std::env::var("GGVK_PROFILE").is_ok_and(|v| v == "1") {
            let times = stream.last_times();
            let total: f64 = times.iter().map(|t| t.micros).sum();
            eprintln!("ggvk profile: {} dispatches, {total:.1} us GPU time", times.len());
            for t in times {
                eprintln!("  {:>10.1} us  {}", t.micros, t.label);
            }
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
        self.stream().last_times().to_vec()
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
