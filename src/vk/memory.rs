//! Device buffers: one `VkBuffer` bound to memory from gpu-allocator, with synchronous host transfers
//! (staged, or direct through a mapping on devices whose memory is the host's).

use std::sync::{Arc, Mutex};

use ash::vk;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme};
use gpu_allocator::MemoryLocation;

use super::device::Device;
use super::fault::{self, FaultKind};
use super::transfer::Transfer;
use crate::error::{Error, Result, VkResultExt};

/// A device-local storage buffer. Freed when the last `Arc` drops (graphs in flight keep theirs alive).
///
/// `Send + Sync`: the handle is plain data; the allocation sits behind a `Mutex`; transfers lock the
/// device's staging context.
pub struct Buffer {
    device: Arc<Device>,
    raw: vk::Buffer,
    allocation: Mutex<Option<Allocation>>,
    size: u64,
    id: u64,
    direct: bool,
    /// A kernel has written the buffer (so it holds results, not weights: nothing is kept from it, see
    /// [`super::kept`]).
    kernel_written: std::sync::atomic::AtomicBool,
}

/// Map a gpu-allocator error onto ours.
pub(crate) fn alloc_error(e: gpu_allocator::AllocationError, what: &str, size: u64) -> Error {
    match e {
        gpu_allocator::AllocationError::OutOfMemory => {
            Error::OutOfDeviceMemory(format!("allocating {size} bytes for {what}"))
        }
        other => Error::Internal(format!("gpu-allocator, allocating {size} bytes for {what}: {other}")),
    }
}

/// Create a raw buffer and bind memory from `location` to it.
pub(crate) fn create_raw(
    device: &Device,
    size: u64,
    usage: vk::BufferUsageFlags,
    location: MemoryLocation,
    name: &str,
) -> Result<(vk::Buffer, Allocation)> {
    device.check_alive()?;
    let info = vk::BufferCreateInfo::default().size(size).usage(usage).sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: valid device and a fully initialised create info with size > 0.
    let raw = unsafe { device.raw().create_buffer(&info, None) }.vk_context("vkCreateBuffer")?;
    // SAFETY: `raw` was just created on this device.
    let requirements = unsafe { device.raw().get_buffer_memory_requirements(raw) };
    // The budget (GGVK_MEMORY_BUDGET) and the fault point come before gpu-allocator sees the request.
    if let Err(e) = device
        .reserve(requirements.size)
        .and_then(|()| fault::point(FaultKind::Alloc).inspect_err(|_| device.unreserve(requirements.size)))
    {
        // SAFETY: the buffer is unused and unbound.
        unsafe { device.raw().destroy_buffer(raw, None) };
        return Err(device.note(e));
    }
    let desc = AllocationCreateDesc {
        name,
        requirements,
        location,
        linear: true,
        allocation_scheme: AllocationScheme::GpuAllocatorManaged,
    };
    let allocation = {
        let mut guard = device.allocator();
        let Some(alloc) = guard.as_mut() else {
            device.unreserve(requirements.size);
            // SAFETY: the buffer is unused and unbound.
            unsafe { device.raw().destroy_buffer(raw, None) };
            return Err(Error::Internal("allocator already shut down".into()));
        };
        match alloc.allocate(&desc) {
            Ok(a) => a,
            Err(e) => {
                device.unreserve(requirements.size);
                // SAFETY: the buffer is unused and unbound.
                unsafe { device.raw().destroy_buffer(raw, None) };
                return Err(alloc_error(e, name, size));
            }
        }
    };
    // SAFETY: the allocation satisfies `requirements` (gpu-allocator guarantees offset alignment and size).
    let bound = unsafe { device.raw().bind_buffer_memory(raw, allocation.memory(), allocation.offset()) };
    if let Err(r) = bound {
        if let Some(a) = device.allocator().as_mut() {
            let _ = a.free(allocation);
        }
        device.unreserve(requirements.size);
        // SAFETY: unused buffer.
        unsafe { device.raw().destroy_buffer(raw, None) };
        return Err(Error::vk("vkBindBufferMemory", r));
    }
    fault::allocation_made();
    Ok((raw, allocation))
}

/// Free what [`create_raw`] made.
pub(crate) fn destroy_raw(device: &Device, raw: vk::Buffer, allocation: Allocation) {
    let size = allocation.size();
    if let Some(a) = device.allocator().as_mut() {
        let _ = a.free(allocation);
    }
    device.unreserve(size);
    fault::allocation_freed();
    // SAFETY: callers destroy only buffers no pending command buffer uses (they wait or hold Arcs).
    unsafe { device.raw().destroy_buffer(raw, None) };
}

impl Buffer {
    /// Allocate `size` bytes of device-local memory. Sizes above the device's `maxMemoryAllocationSize` fail
    /// with [`Error::Unsupported`]; a full heap fails with [`Error::OutOfDeviceMemory`].
    pub fn new(device: &Arc<Device>, size: u64, name: &str) -> Result<Arc<Self>> {
        device.check_alive()?;
        if size == 0 {
            return Err(Error::invalid("buffer size must be > 0"));
        }
        let max = device.caps().max_memory_allocation_size;
        if max > 0 && size > max {
            return Err(Error::unsupported(format!(
                "buffer of {size} bytes exceeds the device's maxMemoryAllocationSize of {max} bytes"
            )));
        }
        // Round to 4 so whole-buffer fills and u32 views never straddle the end.
        let alloc_size = size.checked_add(3).ok_or_else(|| Error::invalid("buffer size overflows"))? & !3;
        let usage = vk::BufferUsageFlags::STORAGE_BUFFER
            | vk::BufferUsageFlags::TRANSFER_SRC
            | vk::BufferUsageFlags::TRANSFER_DST;
        // Out of memory with copies kept for speed ([`super::kept`]): drop them and try once more.
        let (raw, allocation) = match create_raw(device, alloc_size, usage, MemoryLocation::GpuOnly, name) {
            Err(Error::OutOfDeviceMemory(_)) if device.clear_kept() => {
                device.queue_wait_idle()?;
                create_raw(device, alloc_size, usage, MemoryLocation::GpuOnly, name)?
            }
            other => other?,
        };
        let props = allocation.memory_properties();
        // `GGVK_DIRECT_MAPPING=0` takes the staging path a discrete GPU takes (for testing it on such devices).
        let host_mem =
            matches!(device.caps().device_type, vk::PhysicalDeviceType::CPU | vk::PhysicalDeviceType::INTEGRATED_GPU)
                && crate::knobs::switch("GGVK_DIRECT_MAPPING", true);
        let direct = host_mem
            && allocation.mapped_ptr().is_some()
            && props.contains(vk::MemoryPropertyFlags::HOST_COHERENT | vk::MemoryPropertyFlags::HOST_VISIBLE);
        Ok(Arc::new(Buffer {
            device: device.clone(),
            raw,
            allocation: Mutex::new(Some(allocation)),
            size,
            id: device.next_id(),
            direct,
            kernel_written: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// A stand-in with no memory, for checking whether a graph could run before any buffer exists (ggml's
    /// `supports_op`). Views of it validate like views of a very large buffer; binding it is an error.
    pub fn placeholder(device: &Arc<Device>) -> Arc<Self> {
        Arc::new(Buffer {
            device: device.clone(),
            raw: vk::Buffer::null(),
            allocation: Mutex::new(None),
            size: u64::MAX >> 2,
            id: device.next_id(),
            direct: false,
            kernel_written: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the host reads and writes this buffer through a mapping of its memory (devices whose memory is
    /// the host's) rather than through staging copies.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Whether this is a [`Buffer::placeholder`].
    pub fn is_placeholder(&self) -> bool {
        self.raw == vk::Buffer::null()
    }

    /// Usable size in bytes (as requested).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Note that a kernel writes the buffer (recorded; see [`Self::kernel_written`]).
    pub fn mark_kernel_written(&self) {
        self.kernel_written.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a kernel has ever been recorded writing the buffer.
    pub fn kernel_written(&self) -> bool {
        self.kernel_written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Process-unique id, for hazard tracking.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The raw handle.
    pub fn raw(&self) -> vk::Buffer {
        self.raw
    }

    /// The device the buffer lives on.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Check that `[offset, offset + len)` lies inside the buffer.
    pub fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::OutOfBounds(format!(
                "range [{offset}, {offset}+{len}) is outside the buffer of {} bytes",
                self.size
            ))),
        }
    }

    fn with_mapping<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        // Everything queued on the device may touch this buffer: let it finish first.
        self.device.queue_wait_idle()?;
        fault::point(FaultKind::Map).map_err(|e| self.device.note(e))?;
        let mut guard = self.allocation.lock().unwrap_or_else(|p| p.into_inner());
        let slice = guard
            .as_mut()
            .and_then(|a| a.mapped_slice_mut())
            .ok_or_else(|| Error::Internal("buffer mapping vanished".into()))?;
        Ok(f(&mut slice[..self.size as usize]))
    }

    fn transfer<R>(&self, f: impl FnOnce(&mut Transfer) -> Result<R>) -> Result<R> {
        self.device.check_alive()?;
        if self.is_placeholder() {
            return Err(Error::Internal("transfer on a placeholder buffer".into()));
        }
        let mut guard = self.device.transfer();
        if guard.is_none() {
            *guard = Some(Transfer::new(&self.device)?);
        }
        let t = guard.as_mut().expect("just created");
        f(t).map_err(|e| self.device.note(e))
    }

    /// Copy `data` into the buffer at `offset` (synchronous).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_range(offset, data.len() as u64)?;
        if data.is_empty() {
            return Ok(());
        }
        self.device.invalidate_kept(&[self.id]);
        if self.direct {
            return self.with_mapping(|m| {
                m[offset as usize..offset as usize + data.len()].copy_from_slice(data);
            });
        }
        if data.len() as u64 <= super::uploads::SMALL && batch_uploads() && !self.is_placeholder() {
            return self.device.upload_small(self.raw, offset, data);
        }
        self.transfer(|t| t.upload(&self.device, self.raw, offset, data))
    }

    /// Copy bytes at `offset` out of the buffer into `out` (synchronous).
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        self.check_range(offset, out.len() as u64)?;
        if out.is_empty() {
            return Ok(());
        }
        if self.direct {
            return self.with_mapping(|m| {
                out.copy_from_slice(&m[offset as usize..offset as usize + out.len()]);
            });
        }
        self.transfer(|t| t.download(&self.device, self.raw, offset, out))
    }

    /// Read from buffers of different devices at once: every copy is submitted before any is waited for, so the
    /// devices drain their queues in parallel and the reads cost one wait, not one per device (an allreduce reads
    /// each device's partial). Reads that cannot go together (two on one device, a mapped buffer, more than one
    /// staging chunk) run one after another as [`Buffer::read`].
    pub fn read_each(reads: &mut [(&Buffer, u64, &mut [u8])]) -> Result<()> {
        let bufs: Vec<&Buffer> = reads.iter().map(|r| r.0).collect();
        let together = reads.len() > 1
            && reads.iter().all(|(b, _, out)| {
                !b.direct
                    && !b.is_placeholder()
                    && !out.is_empty()
                    && out.len() as u64 <= super::transfer::STAGING_CHUNK
            })
            && bufs.iter().enumerate().all(|(i, a)| bufs[..i].iter().all(|b| !Arc::ptr_eq(&a.device, &b.device)));
        if !together {
            return reads.iter_mut().try_for_each(|(b, offset, out)| b.read(*offset, out));
        }
        for (b, offset, out) in reads.iter() {
            b.check_range(*offset, out.len() as u64)?;
            b.device.check_alive()?;
        }
        // Every device's staging context locked in one order (device index, then address): two callers never
        // wait for each other.
        let mut order: Vec<usize> = (0..bufs.len()).collect();
        order.sort_by_key(|&i| (bufs[i].device.index(), Arc::as_ptr(&bufs[i].device) as usize));
        let mut guards: Vec<_> = order.iter().map(|&i| (i, bufs[i].device.transfer())).collect();
        let mut started = Vec::new();
        let mut failed = None;
        for (i, guard) in guards.iter_mut() {
            let b = bufs[*i];
            if guard.is_none() {
                match Transfer::new(&b.device) {
                    Ok(t) => **guard = Some(t),
                    Err(e) => {
                        failed = Some(b.device.note(e));
                        break;
                    }
                }
            }
            let t = guard.as_mut().expect("made above");
            match t.start_download(&b.device, b.raw, reads[*i].1, reads[*i].2.len() as u64) {
                Ok(()) => started.push(*i),
                Err(e) => {
                    failed = Some(b.device.note(e));
                    break;
                }
            }
        }
        // Every started copy is waited for, even after a failure (its staging context is reused next).
        for (i, guard) in guards.iter_mut() {
            if started.contains(i) {
                let t = guard.as_mut().expect("started above");
                if let Err(e) = t.finish_download(&bufs[*i].device, reads[*i].2) {
                    failed.get_or_insert(bufs[*i].device.note(e));
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Set `len` bytes at `offset` to `value` (synchronous).
    pub fn fill(&self, offset: u64, len: u64, value: u8) -> Result<()> {
        self.check_range(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.device.invalidate_kept(&[self.id]);
        if self.direct {
            return self.with_mapping(|m| m[offset as usize..(offset + len) as usize].fill(value));
        }
        // vkCmdFillBuffer needs 4-byte aligned offset and size: fill the aligned middle on the GPU and
        // upload the (at most 3 + 3) edge bytes.
        let start = (offset + 3) & !3;
        let end = (offset + len) & !3;
        if end > start {
            self.transfer(|t| t.fill(&self.device, self.raw, start, end - start, value))?;
            if start > offset {
                self.write(offset, &vec![value; (start - offset) as usize])?;
            }
            if offset + len > end {
                self.write(end, &vec![value; (offset + len - end) as usize])?;
            }
            Ok(())
        } else {
            self.write(offset, &vec![value; len as usize])
        }
    }

    /// Copy `len` bytes from `self[src_offset..]` to `dst[dst_offset..]`, a buffer of another device, through host
    /// memory both devices imported ([`super::host_import`]): copied out after this device's work so far and
    /// waited for, then into `dst` after its device's work so far and waited for; the host touches no byte.
    /// `Ok(false)` (nothing done; the caller copies through the host) where both buffers are on one device, either
    /// device cannot import host memory, or `len` is at most [`super::uploads::SMALL`] (a read and a batched upload,
    /// which rides with the destination's next submission, cost less there than a second wait).
    pub fn copy_across(&self, src_offset: u64, dst: &Buffer, dst_offset: u64, len: u64) -> Result<bool> {
        if Arc::ptr_eq(&self.device, &dst.device) || self.is_placeholder() || dst.is_placeholder() {
            return Ok(false);
        }
        self.check_range(src_offset, len)?;
        dst.check_range(dst_offset, len)?;
        if len <= super::uploads::SMALL {
            return Ok(false);
        }
        let (Some(a), Some(b)) = (self.device.host_import_buffer(), dst.device.host_import_buffer()) else {
            return Ok(false);
        };
        let _one = super::host_import::lock();
        dst.device.invalidate_kept(&[dst.id]);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(super::host_import::BLOCK_BYTES);
            self.transfer(|t| t.copy(&self.device, self.raw, src_offset + done, a, 0, n))?;
            dst.transfer(|t| t.copy(&dst.device, b, 0, dst.raw, dst_offset + done, n))?;
            done += n;
        }
        Ok(true)
    }

    /// Copy `len` bytes from `self[src_offset..]` to `dst[dst_offset..]` on the device (synchronous).
    pub fn copy_to(&self, src_offset: u64, dst: &Buffer, dst_offset: u64, len: u64) -> Result<()> {
        self.check_range(src_offset, len)?;
        dst.check_range(dst_offset, len)?;
        if !Arc::ptr_eq(&self.device, &dst.device) {
            return Err(Error::unsupported("copy between buffers of different devices"));
        }
        if len == 0 {
            return Ok(());
        }
        if self.raw == dst.raw && src_offset < dst_offset + len && dst_offset < src_offset + len {
            return Err(Error::invalid("source and destination ranges of a buffer copy overlap"));
        }
        dst.device.invalidate_kept(&[dst.id]);
        self.transfer(|t| t.copy(&self.device, self.raw, src_offset, dst.raw, dst_offset, len))
    }
}

/// Whether small writes are batched into the next submission (`GGVK_BATCH_UPLOADS`, default on).
fn batch_uploads() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_BATCH_UPLOADS", true))
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let alloc = self.allocation.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(a) = alloc {
            self.device.invalidate_kept(&[self.id]);
            // A batched upload may still write it; after a device loss nothing runs any more.
            let _ = self.device.settle_uploads_for(self.raw);
            destroy_raw(&self.device, self.raw, a);
        }
    }
}

/// Host memory the device can also read and write (HOST_VISIBLE, preferably HOST_CACHED), mapped for the
/// lifetime of the buffer: ggml's "pinned host buffer" type. The CPU works on it in place; transfers to and from
/// device buffers can copy from it directly.
pub struct HostBuffer {
    device: Arc<Device>,
    raw: vk::Buffer,
    allocation: Mutex<Option<Allocation>>,
    size: u64,
    /// Address of the mapping (kept as an integer: the buffer hands out raw pointers only through `as_ptr`).
    addr: usize,
}

impl HostBuffer {
    /// Allocate `size` bytes of mapped host memory.
    pub fn new(device: &Arc<Device>, size: u64) -> Result<Arc<Self>> {
        device.check_alive()?;
        if size == 0 {
            return Err(Error::invalid("buffer size must be > 0"));
        }
        let max = device.caps().max_memory_allocation_size;
        if max > 0 && size > max {
            return Err(Error::unsupported(format!(
                "host buffer of {size} bytes exceeds the device's maxMemoryAllocationSize of {max} bytes"
            )));
        }
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let (raw, allocation) = create_raw(device, size, usage, MemoryLocation::GpuToCpu, "ggml host buffer")?;
        let Some(ptr) = allocation.mapped_ptr() else {
            destroy_raw(device, raw, allocation);
            return Err(Error::unsupported("no host-visible memory type for a host buffer"));
        };
        Ok(Arc::new(HostBuffer {
            device: device.clone(),
            raw,
            addr: ptr.as_ptr() as usize,
            allocation: Mutex::new(Some(allocation)),
            size,
        }))
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The device the buffer belongs to.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Copy `len` bytes at `src_offset` into `dst` at `dst_offset` on the device: one transfer from this memory,
    /// no copy through a staging buffer (synchronous). `Ok(false)`, with nothing done, where `dst` is mapped into
    /// the host (the CPU copies faster than a transfer there), a placeholder, or the copy small enough to ride with
    /// the next submission as a batched upload: the caller writes it with [`Buffer::write`] instead.
    pub fn copy_to(&self, src_offset: u64, dst: &Buffer, dst_offset: u64, len: u64) -> Result<bool> {
        if src_offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(Error::invalid(format!(
                "host buffer range {src_offset}+{len} outside its {} bytes",
                self.size
            )));
        }
        dst.check_range(dst_offset, len)?;
        if !Arc::ptr_eq(&self.device, &dst.device) {
            return Err(Error::unsupported("copy between buffers of different devices"));
        }
        if dst.direct || dst.is_placeholder() || (len <= super::uploads::SMALL && batch_uploads()) {
            return Ok(false);
        }
        if len == 0 {
            return Ok(true);
        }
        dst.device.invalidate_kept(&[dst.id]);
        // The transfer's submission carries any batched uploads first, so earlier writes to `dst` land before it.
        dst.transfer(|t| t.copy(&self.device, self.raw, src_offset, dst.raw, dst_offset, len))?;
        Ok(true)
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        let alloc = self.allocation.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(a) = alloc {
            // Nothing on the device uses this buffer without the host waiting for it first.
            destroy_raw(&self.device, self.raw, a);
        }
    }
}
