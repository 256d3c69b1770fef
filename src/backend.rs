//! The engine's front object: a device, an executor, and buffer allocation. Both front doors (the C API and
//! the ggml adapter) wrap this.

use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::graph::exec::{Executor, RecordStats};
use crate::graph::Graph;
use crate::vk::{Buffer, Device, DispatchTime, Readback};

/// One backend: its own command stream on a (possibly shared) device.
pub struct Backend {
    device: Arc<Device>,
    exec: Executor,
    /// Reads started by [`Backend::read_async`], completed by [`Backend::synchronize`].
    reads: Mutex<Reads>,
}

/// Where a started read's bytes go when it completes (the front door's destination).
pub type Deliver = Box<dyn FnOnce(&[u8]) + Send>;

/// A backend's started reads, and idle readbacks kept for the next ones.
#[derive(Default)]
struct Reads {
    idle: Vec<Readback>,
    pending: Vec<(Readback, Deliver)>,
}

/// Idle readbacks kept per backend (a generated token reads its logits, sometimes embeddings too).
const IDLE_READBACKS: usize = 4;

impl Backend {
    /// A backend on device `index` (`None`: the default device: discrete > integrated > virtual > CPU).
    pub fn new(index: Option<usize>) -> Result<Self> {
        let device = Device::open(index)?;
        let exec = Executor::new(&device)?;
        Ok(Backend { device, exec, reads: Mutex::default() })
    }

    /// A backend (its own command stream) on an already open device.
    pub fn on(device: &Arc<Device>) -> Result<Self> {
        Ok(Backend { device: device.clone(), exec: Executor::new(device)?, reads: Mutex::default() })
    }

    /// The device.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Allocate a device buffer.
    pub fn alloc(&self, size: u64) -> Result<Arc<Buffer>> {
        Buffer::new(&self.device, size, "ggvk buffer")
    }

    /// Run `graph` and wait for it.
    pub fn compute(&self, graph: &Graph) -> Result<RecordStats> {
        self.exec.compute(graph)
    }

    /// Submit `graph` without waiting.
    pub fn compute_async(&self, graph: &Graph) -> Result<RecordStats> {
        self.exec.compute_async(graph)
    }

    /// Submit the kept recording of the graph with `key` again (see [`crate::graph::exec::Executor::replay_key`]).
    pub fn replay_key(&self, key: &crate::graph::replay::GraphKey) -> Result<Option<RecordStats>> {
        self.exec.replay_key(key)
    }

    /// Wait for everything this backend submitted, and complete the reads it started.
    pub fn synchronize(&self) -> Result<()> {
        self.exec.synchronize()?;
        self.finish_reads()
    }

    /// Start reading `len` bytes at `offset` of `buf`: the copy is queued behind everything submitted to the
    /// device so far, and its bytes go to `deliver` at the next [`Backend::synchronize`] (or
    /// [`Backend::finish_reads`]). `Ok(false)`: nothing started, the read cannot go this way
    /// ([`Readback::takes`]); read with [`Buffer::read`] after synchronizing instead.
    pub fn read_async(&self, buf: &Arc<Buffer>, offset: u64, len: u64, deliver: Deliver) -> Result<bool> {
        if !Readback::takes(&self.device, buf, len) {
            return Ok(false);
        }
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        let mut rb = match reads.idle.pop() {
            Some(rb) => rb,
            None => Readback::new(&self.device)?,
        };
        match crate::timeline::host(crate::timeline::Host::Transfer, || rb.start(buf, offset, len)) {
            Ok(()) => {
                reads.pending.push((rb, deliver));
                Ok(true)
            }
            Err(e) => {
                reads.idle.push(rb);
                Err(e)
            }
        }
    }

    /// Wait for each started read and deliver its bytes (without waiting for the rest of the stream). Every read
    /// is finished, its readback kept for reuse, even after one fails; the first error is returned.
    pub fn finish_reads(&self) -> Result<()> {
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        let mut first = None;
        for (mut rb, deliver) in std::mem::take(&mut reads.pending) {
            if let Err(e) = crate::timeline::host(crate::timeline::Host::Transfer, || rb.finish(deliver)) {
                first.get_or_insert(e);
            }
            if reads.idle.len() < IDLE_READBACKS {
                reads.idle.push(rb);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Turn per-node GPU timing on or off.
    pub fn set_profiling(&self, on: bool) {
        self.exec.set_profiling(on)
    }

    /// GPU time per dispatch of the last profiled graph.
    pub fn last_times(&self) -> Vec<DispatchTime> {
        self.exec.last_times()
    }
}
