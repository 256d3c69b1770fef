//! Copies between two devices through one block of host memory that both have imported
//! (VK_EXT_external_memory_host): the source device's copy engine writes the bytes into the block, the
//! destination's reads them from it, and the host copies nothing (the path through staging buffers and a host
//! vector copies every byte twice on the CPU). Two VkDevices share no other memory. Used for transfers larger than
//! a batched upload (prompt activations between the devices of a layer or row split); `GGVK_HOST_IMPORT=0` turns
//! it off.
//!
//! The block (32 MiB, aligned for every device's `minImportedHostPointerAlignment`) is allocated once and lives
//! for the process; each device imports it on first use and releases its import when it is destroyed. One copy
//! goes through the block at a time.

use std::sync::{Mutex, OnceLock};

use ash::vk;

use super::device::Device;
use crate::error::{Error, Result, VkResultExt};

/// Bytes of the shared block (copies go through it in pieces of this size).
pub const BLOCK_BYTES: u64 = 32 << 20;
/// Alignment of the block's address and size (covers every known minImportedHostPointerAlignment).
const BLOCK_ALIGN: u64 = 1 << 16;

/// The shared host block: its address (kept as an integer; only the drivers touch it).
struct Block {
    addr: usize,
}

/// The block, allocated on first use (`None`: allocation failed).
fn block() -> Option<&'static Block> {
    static BLOCK: OnceLock<Option<Block>> = OnceLock::new();
    BLOCK
        .get_or_init(|| {
            let mut ptr: *mut libc::c_void = std::ptr::null_mut();
            // SAFETY: posix_memalign writes an aligned allocation of BLOCK_BYTES to `ptr` or returns an error; the
            // memory is never freed (devices may hold imports of it until the process ends).
            let rc = unsafe { libc::posix_memalign(&mut ptr, BLOCK_ALIGN as usize, BLOCK_BYTES as usize) };
            (rc == 0 && !ptr.is_null()).then_some(Block { addr: ptr as usize })
        })
        .as_ref()
}

/// Whether copies between devices may go through imported host memory (`GGVK_HOST_IMPORT`, default on).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_HOST_IMPORT", true))
}

/// One device's import of the block: a transfer buffer over it.
pub struct Import {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
}

impl Import {
    /// The transfer buffer over the block.
    pub fn buffer(&self) -> vk::Buffer {
        self.buffer
    }

    /// Import the block into `device` (which enabled VK_EXT_external_memory_host).
    pub(super) fn new(device: &Device) -> Result<Self> {
        let block = block().ok_or_else(|| Error::OutOfHostMemory("the shared host block".into()))?;
        let align = device.caps().host_import_alignment;
        if align == 0 || BLOCK_ALIGN % align != 0 {
            return Err(Error::unsupported(format!("host memory import with alignment {align}")));
        }
        let raw = device.raw();
        let ext = ash::ext::external_memory_host::Device::new(device.instance().raw(), raw);
        let handle = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
        let mut host_props = vk::MemoryHostPointerPropertiesEXT::default();
        // SAFETY: the extension is enabled on `raw` (so its function was loaded); the pointer is the live, aligned
        // block; the properties struct outlives the call.
        unsafe {
            (ext.fp().get_memory_host_pointer_properties_ext)(
                raw.handle(),
                handle,
                block.addr as *const libc::c_void,
                &mut host_props,
            )
        }
        .result()
        .vk_context("vkGetMemoryHostPointerPropertiesEXT")?;
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle);
        let info = vk::BufferCreateInfo::default()
            .size(BLOCK_BYTES)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .push_next(&mut external);
        // SAFETY: `info` is valid and outlives the call.
        let buffer = unsafe { raw.create_buffer(&info, None) }.vk_context("vkCreateBuffer (host import)")?;
        // SAFETY: `buffer` was just created on `raw`.
        let req = unsafe { raw.get_buffer_memory_requirements(buffer) };
        let types = req.memory_type_bits & host_props.memory_type_bits;
        let destroy_buffer = || {
            // SAFETY: the buffer is unused and bound to nothing we keep.
            unsafe { raw.destroy_buffer(buffer, None) }
        };
        if types == 0 || req.size > BLOCK_BYTES {
            destroy_buffer();
            return Err(Error::unsupported("no memory type imports host memory for a transfer buffer"));
        }
        let mut import = vk::ImportMemoryHostPointerInfoEXT::default()
            .handle_type(handle)
            .host_pointer(block.addr as *mut libc::c_void);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(BLOCK_BYTES)
            .memory_type_index(types.trailing_zeros())
            .push_next(&mut import);
        // SAFETY: the memory type was reported for this host pointer; the block is aligned and a multiple of the
        // device's alignment, and stays allocated for the process.
        let memory = match unsafe { raw.allocate_memory(&alloc, None) } {
            Ok(m) => m,
            Err(r) => {
                destroy_buffer();
                return Err(Error::vk("vkAllocateMemory (host import)", r));
            }
        };
        // SAFETY: both were made above on `raw`; the memory covers the buffer's requirements.
        if let Err(r) = unsafe { raw.bind_buffer_memory(buffer, memory, 0) } {
            // SAFETY: neither is in use.
            unsafe {
                raw.destroy_buffer(buffer, None);
                raw.free_memory(memory, None);
            }
            return Err(Error::vk("vkBindBufferMemory (host import)", r));
        }
        Ok(Import { buffer, memory })
    }

    /// Release the import (the device is idle).
    pub(super) fn destroy(self, device: &Device) {
        // SAFETY: the device is idle; nothing uses the buffer or the memory any more.
        unsafe {
            device.raw().destroy_buffer(self.buffer, None);
            device.raw().free_memory(self.memory, None);
        }
    }
}

/// One copy through the block at a time.
pub(super) fn lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
