//! The GGVK pinned host buffer type (`GGVK<i>_Host`): host memory the device can reach, which ggml's CPU backend
//! uses in place (`is_host`), so inputs and outputs of offloaded graphs need no extra host copy.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use super::buffer::{buft_get_max_size, entry_of, guarded, hand_to_ggml, in_host_buffer};
use super::sys;
use crate::vk::HostBuffer;

struct HostCtx {
    buf: Arc<HostBuffer>,
}

/// Every live host buffer, so that bytes ggml hands over by pointer can be recognised as lying in one (llama.cpp's
/// inputs are written into these buffers and then copied to the device with `set_tensor`).
static LIVE: Mutex<Vec<Arc<HostBuffer>>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<Arc<HostBuffer>>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for HostCtx {
    fn drop(&mut self) {
        live().retain(|b| !Arc::ptr_eq(b, &self.buf));
    }
}

/// The live host buffer that holds all of `bytes`, with their offset in it.
pub(super) fn containing(bytes: &[u8]) -> Option<(Arc<HostBuffer>, u64)> {
    let start = bytes.as_ptr() as usize;
    let end = start.checked_add(bytes.len())?;
    live().iter().find_map(|b| {
        let base = b.as_ptr() as usize;
        let inside = start >= base && end <= base.saturating_add(b.size() as usize);
        inside.then(|| (b.clone(), (start - base) as u64))
    })
}

/// # Safety
/// `b` must be a live host buffer made by [`buft_alloc_buffer`].
unsafe fn ctx<'a>(b: sys::ggml_backend_buffer_t) -> &'a HostCtx {
    // SAFETY: our host buffers' context is the Box<HostCtx> made in buft_alloc_buffer, alive until free_buffer.
    unsafe { &*((*b).context as *const HostCtx) }
}

unsafe extern "C" fn free_buffer(b: sys::ggml_backend_buffer_t) {
    // SAFETY: ggml calls this once per buffer; the context is the Box made in buft_alloc_buffer.
    drop(unsafe { Box::from_raw((*b).context as *mut HostCtx) });
}

unsafe extern "C" fn get_base(b: sys::ggml_backend_buffer_t) -> *mut c_void {
    // SAFETY: ggml passes one of our live host buffers.
    unsafe { ctx(b) }.buf.as_ptr() as *mut c_void
}

unsafe extern "C" fn memset_tensor(
    _b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    value: u8,
    offset: usize,
    size: usize,
) {
    // SAFETY: ggml checked that [offset, offset + size) lies inside the tensor, whose data is in our mapping.
    unsafe { std::ptr::write_bytes(((*t).data as *mut u8).add(offset), value, size) }
}

unsafe extern "C" fn set_tensor(
    _b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    data: *const c_void,
    offset: usize,
    size: usize,
) {
    // SAFETY: as memset_tensor; `data` holds `size` readable bytes that do not overlap the tensor.
    unsafe { std::ptr::copy_nonoverlapping(data as *const u8, ((*t).data as *mut u8).add(offset), size) }
}

unsafe extern "C" fn get_tensor(
    _b: sys::ggml_backend_buffer_t,
    t: *const sys::ggml_tensor,
    data: *mut c_void,
    offset: usize,
    size: usize,
) {
    // SAFETY: as set_tensor, in the other direction.
    unsafe { std::ptr::copy_nonoverlapping(((*t).data as *const u8).add(offset), data as *mut u8, size) }
}

unsafe extern "C" fn cpy_tensor(
    _b: sys::ggml_backend_buffer_t,
    src: *const sys::ggml_tensor,
    dst: *mut sys::ggml_tensor,
) -> bool {
    // SAFETY: ggml passes live tensors; a host buffer's tensor data is addressable memory of ggml_nbytes bytes.
    unsafe {
        let s = &*src;
        if !in_host_buffer(s) {
            return false;
        }
        let n = super::buffer::ggml_nbytes(s) as usize;
        std::ptr::copy(s.data as *const u8, (*dst).data as *mut u8, n);
        true
    }
}

unsafe extern "C" fn clear(b: sys::ggml_backend_buffer_t, value: u8) {
    // SAFETY: ggml passes one of our live host buffers; the mapping covers its whole size.
    unsafe {
        let c = ctx(b);
        std::ptr::write_bytes(c.buf.as_ptr(), value, c.buf.size() as usize);
    }
}

const BUFFER_IFACE: sys::ggml_backend_buffer_i = sys::ggml_backend_buffer_i {
    free_buffer: Some(free_buffer),
    get_base: Some(get_base),
    init_tensor: None,
    memset_tensor: Some(memset_tensor),
    set_tensor: Some(set_tensor),
    get_tensor: Some(get_tensor),
    set_tensor_2d: None,
    get_tensor_2d: None,
    cpy_tensor: Some(cpy_tensor),
    clear: Some(clear),
    reset: None,
};

unsafe extern "C" fn buft_get_name(buft: sys::ggml_backend_buffer_type_t) -> *const c_char {
    // SAFETY: ggml passes one of our host buffer types.
    unsafe { entry_of(buft) }.host_name.as_ptr()
}

unsafe extern "C" fn buft_alloc_buffer(
    buft: sys::ggml_backend_buffer_type_t,
    size: usize,
) -> sys::ggml_backend_buffer_t {
    // SAFETY: ggml passes one of our host buffer types.
    let entry = unsafe { entry_of(buft) };
    guarded("alloc host buffer", std::ptr::null_mut(), || {
        let buf = HostBuffer::new(&entry.device()?, size.max(1) as u64)?;
        live().push(buf.clone());
        hand_to_ggml(buft, BUFFER_IFACE, HostCtx { buf }, size)
    })
}

unsafe extern "C" fn buft_get_alignment(_buft: sys::ggml_backend_buffer_type_t) -> usize {
    64
}

unsafe extern "C" fn buft_is_host(_buft: sys::ggml_backend_buffer_type_t) -> bool {
    true
}

/// The methods of every GGVK host buffer type.
pub const HOST_BUFT_IFACE: sys::ggml_backend_buffer_type_i = sys::ggml_backend_buffer_type_i {
    get_name: Some(buft_get_name),
    alloc_buffer: Some(buft_alloc_buffer),
    get_alignment: Some(buft_get_alignment),
    get_max_size: Some(buft_get_max_size),
    get_alloc_size: None,
    is_host: Some(buft_is_host),
};
