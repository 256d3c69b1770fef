//! Small uploads batched into the next submission. A synchronous write into device-local memory that the host cannot
//! map takes a staging copy, a submission and a wait: tens of microseconds on a discrete GPU, for every input a
//! generating model sets per token (positions, mask, row indices, embeddings). Writes up to [`SMALL`] bytes instead
//! copy the data into host-visible staging memory and record the GPU copy into an open batch; the batch is submitted
//! just before the next submission of anything on the device ([`super::Device::submit`]), so queue order puts the
//! copy before every later use (each submission starts with a barrier from transfer writes). The caller's memory is
//! free as soon as the write returns. A batch is waited for before its staging memory is reused, and before a buffer
//! it writes is destroyed.

use ash::vk;
use gpu_allocator::vulkan::Allocation;
use gpu_allocator::MemoryLocation;

use super::command::{barrier_into_transfer, barrier_to_everything, create_single_submitter};
use super::device::Device;
use super::memory::{create_raw, destroy_raw};
use crate::error::{Result, VkResultExt};

/// Largest write that is batched.
pub const SMALL: u64 = 256 << 10;

/// Staging bytes per batch.
const STAGE: u64 = 1 << 20;

struct Batch {
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    stage: vk::Buffer,
    memory: Option<Allocation>,
    used: u64,
    /// Recording (copies added since it began).
    open: bool,
    /// Submitted and maybe not finished.
    in_flight: bool,
    /// Buffers its copies write.
    targets: Vec<vk::Buffer>,
}

impl Batch {
    fn new(device: &Device) -> Result<Self> {
        let (pool, cmd, fence) = create_single_submitter(device)?;
        let usage = vk::BufferUsageFlags::TRANSFER_SRC;
        let (stage, memory) = match create_raw(device, STAGE, usage, MemoryLocation::CpuToGpu, "ggvk upload batch") {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: nothing from the pool was submitted; the fence is unused.
                unsafe {
                    device.raw().destroy_fence(fence, None);
                    device.raw().destroy_command_pool(pool, None);
                }
                return Err(e);
            }
        };
        let batch = Batch {
            pool,
            cmd,
            fence,
            stage,
            memory: Some(memory),
            used: 0,
            open: false,
            in_flight: false,
            targets: vec![],
        };
        if batch.memory.as_ref().and_then(Allocation::mapped_ptr).is_none() {
            batch.destroy(device);
            return Err(crate::error::Error::Internal("upload staging memory is not host-visible".into()));
        }
        Ok(batch)
    }

    /// Wait for the last submission of this batch.
    fn settle(&mut self, device: &Device) -> Result<()> {
        if self.in_flight {
            self.in_flight = false;
            device.wait_fence(self.fence)?;
        }
        Ok(())
    }

    fn destroy(mut self, device: &Device) {
        if let Some(m) = self.memory.take() {
            destroy_raw(device, self.stage, m);
        }
        // SAFETY: the device is idle or the batch never ran; its objects are unused.
        unsafe {
            device.raw().destroy_fence(self.fence, None);
            device.raw().destroy_command_pool(self.pool, None);
        }
    }
}

/// Two batches: one filling while the other may still run.
pub struct Uploads {
    batches: Vec<Batch>,
    cur: usize,
}

impl Uploads {
    /// Empty; batches are created on first use.
    pub fn new() -> Self {
        Uploads { batches: Vec::new(), cur: 0 }
    }

    /// Copy `data` into `dst` at `offset` with the next submission. The range is checked by the caller.
    pub fn write(&mut self, device: &Device, dst: vk::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        while self.batches.len() < 2 {
            self.batches.push(Batch::new(device)?);
        }
        if self.batches[self.cur].open && self.batches[self.cur].used + len > STAGE {
            self.submit(device)?;
        }
        let b = &mut self.batches[self.cur];
        if !b.open {
            b.settle(device)?;
            let raw = device.raw();
            let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
            // SAFETY: the batch's command buffer is not pending (settled above); its pool allows resets.
            unsafe {
                raw.reset_command_buffer(b.cmd, vk::CommandBufferResetFlags::empty())
                    .vk_context("vkResetCommandBuffer")?;
                raw.begin_command_buffer(b.cmd, &begin).vk_context("vkBeginCommandBuffer")?;
                barrier_into_transfer(raw, b.cmd);
            }
            b.open = true;
            b.used = 0;
            b.targets.clear();
        }
        let at = b.used;
        let map = b.memory.as_mut().and_then(Allocation::mapped_slice_mut).expect("checked host-visible");
        map[at as usize..(at + len) as usize].copy_from_slice(data);
        let region = [vk::BufferCopy::default().src_offset(at).dst_offset(offset).size(len)];
        // SAFETY: recording state; both buffers are live and the regions lie inside them.
        unsafe { device.raw().cmd_copy_buffer(b.cmd, b.stage, dst, &region) };
        b.used = (at + len).div_ceil(16) * 16;
        if !b.targets.contains(&dst) {
            b.targets.push(dst);
        }
        Ok(())
    }

    /// Submit the open batch, if any (the caller holds no queue lock: this takes it).
    pub fn submit(&mut self, device: &Device) -> Result<()> {
        let Some(b) = self.batches.get_mut(self.cur).filter(|b| b.open) else { return Ok(()) };
        b.open = false;
        let raw = device.raw();
        // SAFETY: recording state; the fence is not in use (the batch was settled before it was opened).
        unsafe {
            barrier_to_everything(raw, b.cmd);
            raw.end_command_buffer(b.cmd).vk_context("vkEndCommandBuffer")?;
            raw.reset_fences(&[b.fence]).vk_context("vkResetFences")?;
        }
        device.submit_raw(&[b.cmd], b.fence)?;
        b.in_flight = true;
        self.cur = (self.cur + 1) % self.batches.len();
        Ok(())
    }

    /// Make sure no batch still writes `dst` (before it is destroyed).
    pub fn settle_for(&mut self, device: &Device, dst: vk::Buffer) -> Result<()> {
        if self.batches.iter().any(|b| b.open && b.targets.contains(&dst)) {
            self.submit(device)?;
        }
        for b in &mut self.batches {
            if b.targets.contains(&dst) {
                b.settle(device)?;
            }
        }
        Ok(())
    }

    /// Destroy the batches (the device is idle).
    pub fn destroy(self, device: &Device) {
        for b in self.batches {
            b.destroy(device);
        }
    }
}

impl Default for Uploads {
    fn default() -> Self {
        Self::new()
    }
}
