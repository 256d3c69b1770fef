//! Reads from device memory that complete later (ggml's `get_tensor_async`): the copy into host-visible staging
//! is submitted behind the work already queued on the device and waited for only when the bytes are wanted (the
//! backend's synchronize), so a generated token's logits cost no submit-and-wait of their own after its graph.
//!
//! A [`Readback`] is one such read at a time: its own command buffer, fence and staging buffer (the device's
//! shared staging context serves synchronous transfers and may be used by other streams meanwhile). Its holder
//! keeps idle ones for reuse.

use std::sync::Arc;

use super::device::Device;
use super::memory::Buffer;
use super::transfer::{Transfer, STAGING_CHUNK};
use crate::error::{Error, Result};

/// Whether reads may complete later (`GGVK_ASYNC_READS`, default on; off: every read waits and copies at once).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_ASYNC_READS", true))
}

/// One read from device memory, started now and finished later.
pub struct Readback {
    device: Arc<Device>,
    /// Command buffer, fence and download staging; `None` only while dropping.
    transfer: Option<Transfer>,
    /// While a read is in flight: its source (kept alive until the copy is done) and length.
    pending: Option<(Arc<Buffer>, u64)>,
}

impl Readback {
    /// An idle readback on `device`.
    pub fn new(device: &Arc<Device>) -> Result<Self> {
        device.check_alive()?;
        Ok(Readback { device: device.clone(), transfer: Some(Transfer::new(device)?), pending: None })
    }

    /// Whether a readback on `device` takes a read of `len` bytes from `buf`: a staged buffer of that device, at
    /// most one staging chunk, while [`enabled`]. Buffers read through a mapping (host-memory devices),
    /// placeholders and longer reads take [`Buffer::read`].
    pub fn takes(device: &Arc<Device>, buf: &Buffer, len: u64) -> bool {
        enabled()
            && Arc::ptr_eq(buf.device(), device)
            && !buf.is_direct()
            && !buf.is_placeholder()
            && len <= STAGING_CHUNK
    }

    /// Start copying `buf[offset..offset + len]` to staging, behind everything submitted to the device before.
    /// The readback must be idle and take the read ([`Readback::takes`]).
    pub fn start(&mut self, buf: &Arc<Buffer>, offset: u64, len: u64) -> Result<()> {
        if self.pending.is_some() {
            return Err(Error::Internal("a readback was started twice".into()));
        }
        if !Self::takes(&self.device, buf, len) {
            return Err(Error::Internal("a read this readback cannot take was started".into()));
        }
        buf.check_range(offset, len)?;
        self.device.check_alive()?;
        let t = self.transfer.as_mut().expect("present until drop");
        t.start_download(&self.device, buf.raw(), offset, len).map_err(|e| self.device.note(e))?;
        self.pending = Some((buf.clone(), len));
        Ok(())
    }

    /// Wait for the started copy and hand its bytes to `take`, straight from the staging memory. The readback is
    /// idle again afterwards, also when this fails (`take` is then not called).
    pub fn finish(&mut self, take: impl FnOnce(&[u8])) -> Result<()> {
        let Some((_source, len)) = self.pending.take() else {
            return Err(Error::Internal("no read was started".into()));
        };
        let t = self.transfer.as_mut().expect("present until drop");
        t.finish_download_with(&self.device, len as usize, take).map_err(|e| self.device.note(e))
    }

    /// Whether a read is in flight.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

impl Drop for Readback {
    fn drop(&mut self) {
        if let Some(t) = self.transfer.take() {
            if self.pending.take().is_some() {
                // Nothing can be reported from here; a lost device has nothing left to wait for.
                let _ = t.wait(&self.device);
            }
            t.destroy(&self.device);
        }
    }
}
