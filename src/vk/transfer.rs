//! The device's staging context: one command buffer, one fence and lazily grown staging buffers for
//! synchronous uploads, downloads, fills and copies. Lives behind the device's transfer mutex.

use ash::vk;
use gpu_allocator::vulkan::Allocation;
use gpu_allocator::MemoryLocation;

use super::command::{barrier_into_transfer, barrier_to_everything, create_single_submitter};
use super::device::Device;
use super::fault::{self, FaultKind};
use super::memory::{create_raw, destroy_raw};
use crate::error::{Error, Result, VkResultExt};

/// Largest staging buffer; bigger transfers go in chunks of this size.
pub(crate) const STAGING_CHUNK: u64 = 32 << 20;

struct Staging {
    raw: vk::Buffer,
    allocation: Allocation,
    size: u64,
}

/// Staging resources of one device.
pub struct Transfer {
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    upload: Option<Staging>,
    download: Option<Staging>,
}

impl Transfer {
    /// Create the command pool, command buffer and fence.
    pub fn new(device: &Device) -> Result<Self> {
        let (pool, cmd, fence) = create_single_submitter(device)?;
        Ok(Transfer { pool, cmd, fence, upload: None, download: None })
    }

    /// Destroy everything (the device waits idle before calling this).
    pub fn destroy(self, device: &Device) {
        for s in [self.upload, self.download].into_iter().flatten() {
            destroy_raw(device, s.raw, s.allocation);
        }
        // SAFETY: the device is idle; these objects are unused.
        unsafe {
            device.raw().destroy_fence(self.fence, None);
            device.raw().destroy_command_pool(self.pool, None);
        }
    }

    fn staging(slot: &mut Option<Staging>, device: &Device, want: u64, location: MemoryLocation) -> Result<()> {
        let want = want.clamp(1 << 16, STAGING_CHUNK);
        if slot.as_ref().is_some_and(|s| s.size >= want) {
            return Ok(());
        }
        if let Some(old) = slot.take() {
            destroy_raw(device, old.raw, old.allocation);
        }
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let (raw, allocation) = create_raw(device, want, usage, location, "ggvk staging")?;
        if allocation.mapped_ptr().is_none() {
            destroy_raw(device, raw, allocation);
            return Err(Error::Internal("staging memory is not host-visible".into()));
        }
        *slot = Some(Staging { raw, allocation, size: want });
        Ok(())
    }

    /// Record with `f` into the command buffer, submit, and wait.
    fn run(&mut self, device: &Device, f: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<()> {
        self.submit(device, f)?;
        device.wait_fence(self.fence)
    }

    /// Record with `f` into the command buffer and submit; the caller waits for the fence before the next use.
    fn submit(&mut self, device: &Device, f: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<()> {
        let raw = device.raw();
        let cmd = self.cmd;
        let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the command buffer is not pending (every run waits for its fence before returning) and the
        // pool allows resetting single buffers.
        unsafe {
            raw.reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty()).vk_context("vkResetCommandBuffer")?;
            raw.begin_command_buffer(cmd, &begin).vk_context("vkBeginCommandBuffer")?;
            barrier_into_transfer(raw, cmd);
        }
        f(raw, cmd);
        // SAFETY: recording state, as above.
        unsafe {
            barrier_to_everything(raw, cmd);
            raw.end_command_buffer(cmd).vk_context("vkEndCommandBuffer")?;
            raw.reset_fences(&[self.fence]).vk_context("vkResetFences")?;
        }
        device.submit(&[cmd], self.fence)
    }

    /// Upload `data` to `dst[offset..]`.
    pub fn upload(&mut self, device: &Device, dst: vk::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        Self::staging(&mut self.upload, device, data.len() as u64, MemoryLocation::CpuToGpu)?;
        let chunk = self.upload.as_ref().map(|s| s.size).unwrap_or(1) as usize;
        for (i, part) in data.chunks(chunk).enumerate() {
            fault::point(FaultKind::Map)?;
            let st = self.upload.as_mut().expect("created above");
            let map = st.allocation.mapped_slice_mut().expect("checked host-visible");
            map[..part.len()].copy_from_slice(part);
            let src = st.raw;
            let region = [vk::BufferCopy::default()
                .src_offset(0)
                .dst_offset(offset + (i * chunk) as u64)
                .size(part.len() as u64)];
            // SAFETY: both buffers are live, the region is inside both (checked by the caller and sized above).
            self.run(device, |raw, cmd| unsafe { raw.cmd_copy_buffer(cmd, src, dst, &region) })?;
        }
        Ok(())
    }

    /// Download `src[offset..offset + out.len()]` into `out`.
    pub fn download(&mut self, device: &Device, src: vk::Buffer, offset: u64, out: &mut [u8]) -> Result<()> {
        let chunk = STAGING_CHUNK as usize;
        for (i, part) in out.chunks_mut(chunk).enumerate() {
            self.start_download(device, src, offset + (i * chunk) as u64, part.len() as u64)?;
            self.finish_download(device, part)?;
        }
        Ok(())
    }

    /// Start downloading `src[offset..offset + len]` (at most one staging chunk): the copy is submitted, not
    /// waited for. [`Transfer::finish_download`] must follow before this staging context is used again.
    pub fn start_download(&mut self, device: &Device, src: vk::Buffer, offset: u64, len: u64) -> Result<()> {
        if len > STAGING_CHUNK {
            return Err(Error::Internal(format!("a started download of {len} bytes exceeds one staging chunk")));
        }
        Self::staging(&mut self.download, device, len, MemoryLocation::GpuToCpu)?;
        let dst = self.download.as_ref().expect("created above").raw;
        let region = [vk::BufferCopy::default().src_offset(offset).dst_offset(0).size(len)];
        // SAFETY: both buffers are live, the region is inside both (the source range checked by the caller).
        self.submit(device, |raw, cmd| unsafe { raw.cmd_copy_buffer(cmd, src, dst, &region) })
    }

    /// Wait for the last submission (a started download) to complete.
    pub fn wait(&self, device: &Device) -> Result<()> {
        device.wait_fence(self.fence)
    }

    /// Wait for the download [`Transfer::start_download`] submitted and copy its bytes into `out`.
    pub fn finish_download(&mut self, device: &Device, out: &mut [u8]) -> Result<()> {
        let len = out.len();
        self.finish_download_with(device, len, |bytes| out.copy_from_slice(bytes))
    }

    /// Wait for the download [`Transfer::start_download`] submitted and hand its first `len` bytes (at most what
    /// was started) to `take`, straight from the staging memory.
    pub fn finish_download_with(&mut self, device: &Device, len: usize, take: impl FnOnce(&[u8])) -> Result<()> {
        self.wait(device)?;
        fault::point(FaultKind::Map)?;
        let st = self.download.as_mut().ok_or_else(|| Error::Internal("no download was started".into()))?;
        let map = st.allocation.mapped_slice().expect("checked host-visible");
        take(&map[..len]);
        Ok(())
    }

    /// Fill a 4-byte aligned range with a repeated byte.
    pub fn fill(&mut self, device: &Device, dst: vk::Buffer, offset: u64, len: u64, value: u8) -> Result<()> {
        let word = u32::from_ne_bytes([value; 4]);
        // SAFETY: offset and len are multiples of 4 inside the buffer (checked by the caller).
        self.run(device, |raw, cmd| unsafe { raw.cmd_fill_buffer(cmd, dst, offset, len, word) })
    }

    /// Copy between two device buffers.
    pub fn copy(
        &mut self,
        device: &Device,
        src: vk::Buffer,
        src_offset: u64,
        dst: vk::Buffer,
        dst_offset: u64,
        len: u64,
    ) -> Result<()> {
        let region = [vk::BufferCopy::default().src_offset(src_offset).dst_offset(dst_offset).size(len)];
        // SAFETY: both ranges are inside their buffers and do not overlap (checked by the caller).
        self.run(device, |raw, cmd| unsafe { raw.cmd_copy_buffer(cmd, src, dst, &region) })
    }
}
