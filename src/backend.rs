//! The engine's front object: a device, an executor, and buffer allocation. Both front doors (the C API and
//! the ggml adapter) wrap this.

use std::sync::Arc;

use crate::error::Result;
use crate::graph::exec::{Executor, RecordStats};
use crate::graph::Graph;
use crate::vk::{Buffer, Device, DispatchTime};

/// One backend: its own command stream on a (possibly shared) device.
pub struct Backend {
    device: Arc<Device>,
    exec: Executor,
}

impl Backend {
    /// A backend on device `index` (`None`: the default device: discrete > integrated > virtual > CPU).
    pub fn new(index: Option<usize>) -> Result<Self> {
        let device = Device::open(index)?;
        let exec = Executor::new(&device)?;
        Ok(Backend { device, exec })
    }

    /// A backend (its own command stream) on an already open device.
    pub fn on(device: &Arc<Device>) -> Result<Self> {
        Ok(Backend { device: device.clone(), exec: Executor::new(device)? })
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

    /// Wait for everything this backend submitted.
    pub fn synchronize(&self) -> Result<()> {
        self.exec.synchronize()
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
