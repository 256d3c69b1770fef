//! `GGVK_TIMELINE=1`: where a repeated graph's wall time goes, as numbers. The GPU side comes from two timestamps
//! around each replayed graph (no per-dispatch timestamps, which serialise the dispatches and inflate small
//! ones): how long the GPU was busy with the graph and how long it sat idle since the previous one ended. The host
//! side comes from the ggml adapter's entry points: time inside graph_compute (translation, replay lookup,
//! submission), waiting for the GPU (synchronize), synchronous transfers (set / get tensor) and tensor
//! parallelism's allreduces. Every
//! [`WINDOW`] replayed graphs one report goes to the diagnostics (see [`crate::diag`]): per graph, the wall time
//! between reports, GPU busy and idle, and the host times. For a generating model one graph is one token, so
//! "GPU idle" is the time the token spends waiting for the host.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Graphs per report.
pub const WINDOW: u32 = 64;

/// Host-side activities measured in the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Inside graph_compute: translating the ggml graph, finding or recording its commands, submitting.
    Compute,
    /// Waiting for submitted work (synchronize, and the wait that starts each transfer).
    Wait,
    /// Synchronous transfers (set / get / copy tensor).
    Transfer,
    /// Tensor parallelism's allreduces between devices (`src/ggml/comm.rs`).
    Allreduce,
    /// Part of [`Host::Compute`]: submitting a kept recording again (the wait for its previous run, the batched
    /// uploads' submission, the queue submission).
    Replay,
}

/// Host activities, as the report's arrays index them.
const HOSTS: usize = 5;

#[derive(Default)]
struct State {
    graphs: u32,
    busy_us: f64,
    idle_us: f64,
    idle_n: u32,
    /// End of the last graph on the GPU clock (ns).
    last_end_ns: Option<f64>,
    host_us: [f64; HOSTS],
    host_n: [u32; HOSTS],
    /// Bytes of the synchronous transfers ([`Host::Transfer`]).
    transfer_bytes: u64,
    since: Option<Instant>,
}

fn state() -> &'static Mutex<State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(State::default()))
}

/// Whether the timeline is on (`GGVK_TIMELINE`, default off; read once per process).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_TIMELINE", false))
}

/// Time `f` as host activity `what` (when the timeline is on).
pub fn host<R>(what: Host, f: impl FnOnce() -> R) -> R {
    if !enabled() {
        return f();
    }
    let t = Instant::now();
    let r = f();
    let us = t.elapsed().as_secs_f64() * 1e6;
    let mut s = state().lock().unwrap_or_else(|p| p.into_inner());
    s.host_us[what as usize] += us;
    s.host_n[what as usize] += 1;
    r
}

/// Count `bytes` moved by a synchronous transfer (when the timeline is on).
pub fn transfer_bytes(bytes: u64) {
    if enabled() {
        state().lock().unwrap_or_else(|p| p.into_inner()).transfer_bytes += bytes;
    }
}

/// A replayed graph ran on the GPU from `start_ns` to `end_ns` (device timestamps, in nanoseconds).
pub fn gpu_graph(start_ns: f64, end_ns: f64) {
    let mut s = state().lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let since = *s.since.get_or_insert(now);
    s.graphs += 1;
    s.busy_us += (end_ns - start_ns).max(0.0) / 1e3;
    if let Some(prev) = s.last_end_ns {
        if start_ns >= prev {
            s.idle_us += (start_ns - prev) / 1e3;
            s.idle_n += 1;
        }
    }
    s.last_end_ns = Some(end_ns);
    if s.graphs >= WINDOW {
        let n = f64::from(s.graphs);
        let wall = now.duration_since(since).as_secs_f64() * 1e6 / n;
        let per = |k: usize| s.host_us[k] / n;
        let msg = format!(
            "ggvk timeline, {} replayed graphs: wall {wall:.0} us per graph; GPU busy {:.0} us, idle before it {:.0} us; \
             host: in graph_compute {:.0} us (replay submission {:.0} us), waiting for the GPU {:.0} us, transfers \
             {:.0} us ({:.1} per graph, {:.0} KiB), allreduces {:.0} us ({:.1} per graph)",
            s.graphs,
            s.busy_us / n,
            if s.idle_n > 0 { s.idle_us / f64::from(s.idle_n) } else { 0.0 },
            per(Host::Compute as usize),
            per(Host::Replay as usize),
            per(Host::Wait as usize),
            per(Host::Transfer as usize),
            f64::from(s.host_n[Host::Transfer as usize]) / n,
            s.transfer_bytes as f64 / 1024.0 / n,
            per(Host::Allreduce as usize),
            f64::from(s.host_n[Host::Allreduce as usize]) / n,
        );
        *s = State { last_end_ns: s.last_end_ns, since: Some(now), ..State::default() };
        drop(s);
        crate::diag::emit(crate::diag::Level::Report, &msg);
    }
}
