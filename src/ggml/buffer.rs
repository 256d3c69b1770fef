//! The GGVK buffer type and buffers as ggml sees them. A buffer's base is a fixed fake address ([`BASE`]):
//! ggml computes `tensor->data = base + offset`, and the adapter turns `data - BASE` back into an offset in
//! the device buffer (device memory has no host address).

use crate::timeline::{self, Host};
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::device::DeviceEntry;
use super::host::{error, host};
use super::sys;
use crate::vk::Buffer;

/// The address ggml sees as every GGVK buffer's base (non-null and aligned, never dereferenced).
///
/// cbindgen:ignore
pub const BASE: usize = 0x1000;

/// What a ggml buffer's `context` points to.
pub struct BufferCtx {
    /// The device memory.
    pub buf: Arc<Buffer>,
}

/// The engine buffer behind a ggml buffer, if it is a GGVK buffer.
///
/// # Safety
/// `b` must be NULL or a live ggml buffer.
pub unsafe fn buffer_of(b: sys::ggml_backend_buffer_t) -> Option<Arc<Buffer>> {
    // SAFETY: the caller guarantees `b` is NULL or live.
    let b = unsafe { b.as_ref() }?;
    // Ours exactly when its buffer type is one of the registry's (function addresses are no identity).
    if !super::device::is_ours(b.buft) || b.context.is_null() {
        return None;
    }
    // SAFETY: GGVK buffers' context is the Box<BufferCtx> made in alloc_buffer, alive until free_buffer.
    Some(unsafe { &*(b.context as *const BufferCtx) }.buf.clone())
}

/// Run `f`, logging (never unwinding past the C boundary) on error or panic.
pub(super) fn guarded<T>(what: &str, fallback: T, f: impl FnOnce() -> crate::Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            error(&format!("{what}: {e}"));
            fallback
        }
        Err(_) => {
            error(&format!("{what}: internal error (panic)"));
            fallback
        }
    }
}

/// Hand a buffer context to ggml (`ggml_backend_buffer_init`), which keeps it until the interface's
/// `free_buffer`; on failure the context is dropped here.
pub(super) fn hand_to_ggml<C>(
    buft: sys::ggml_backend_buffer_type_t,
    iface: sys::ggml_backend_buffer_i,
    ctx: C,
    size: usize,
) -> crate::Result<sys::ggml_backend_buffer_t> {
    let host = host();
    let init = host.buffer_init.ok_or_else(|| {
        crate::Error::Internal(format!("ggml_backend_buffer_init not found: looked in {}", host.source))
    })?;
    let ctx = Box::into_raw(Box::new(ctx));
    // SAFETY: ggml copies the interface and keeps `ctx` until free_buffer, which frees it as a Box<C>.
    let b = unsafe { init(buft, iface, ctx as *mut c_void, size) };
    if b.is_null() {
        // SAFETY: ggml did not take ownership.
        drop(unsafe { Box::from_raw(ctx) });
        return Err(crate::Error::Internal("ggml_backend_buffer_init returned NULL".into()));
    }
    Ok(b)
}

/// Whether `t` lives in a host buffer (its data pointer is CPU memory ggml may read directly).
///
/// # Safety
/// `t`'s buffer, if non-null, and that buffer's type must be live ggml objects.
pub(super) unsafe fn in_host_buffer(t: &sys::ggml_tensor) -> bool {
    // SAFETY: forwarded to the caller; is_host is a plain query.
    unsafe {
        !t.data.is_null()
            && t.buffer
                .as_ref()
                .is_some_and(|b| b.buft.as_ref().is_some_and(|bt| bt.iface.is_host.is_some_and(|f| f(b.buft))))
    }
}

/// The tensor's byte offset in its buffer.
pub(super) fn offset_of(t: &sys::ggml_tensor) -> crate::Result<u64> {
    (t.data as usize)
        .checked_sub(BASE)
        .map(|o| o as u64)
        .ok_or_else(|| crate::Error::invalid("tensor data pointer below the buffer base"))
}

/// Context of a ggml buffer known to be ours.
///
/// # Safety
/// `b` must be a live GGVK ggml buffer.
unsafe fn ctx<'a>(b: sys::ggml_backend_buffer_t) -> &'a BufferCtx {
    // SAFETY: forwarded to the caller: our buffers' context is a live Box<BufferCtx>.
    unsafe { &*((*b).context as *const BufferCtx) }
}

unsafe extern "C" fn free_buffer(b: sys::ggml_backend_buffer_t) {
    // SAFETY: ggml calls this once per buffer; the context is the Box made in alloc_buffer.
    let ctx = unsafe { Box::from_raw((*b).context as *mut BufferCtx) };
    guarded("free_buffer", (), || {
        drop(ctx);
        Ok(())
    })
}

unsafe extern "C" fn get_base(_b: sys::ggml_backend_buffer_t) -> *mut c_void {
    BASE as *mut c_void
}

unsafe extern "C" fn init_tensor(_b: sys::ggml_backend_buffer_t, _t: *mut sys::ggml_tensor) -> sys::ggml_status {
    sys::GGML_STATUS_SUCCESS
}

unsafe extern "C" fn memset_tensor(
    b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    value: u8,
    offset: usize,
    size: usize,
) {
    // SAFETY: ggml passes our live buffer and a live tensor in it.
    let (c, t) = unsafe { (ctx(b), &*t) };
    guarded("memset_tensor", (), || c.buf.fill(offset_of(t)? + offset as u64, size as u64, value))
}

/// Write `bytes` into `buf` at `offset`: where they lie in a pinned host buffer of the same device (llama.cpp's
/// inputs: token embeddings, mask, positions), one transfer straight from there; otherwise through
/// [`Buffer::write`] (a staging copy, or a batched upload for small writes).
fn write_bytes(buf: &Buffer, offset: u64, bytes: &[u8]) -> crate::Result<()> {
    if let Some((hb, src)) = super::host_buffer::containing(bytes) {
        if Arc::ptr_eq(hb.device(), buf.device()) && hb.copy_to(src, buf, offset, bytes.len() as u64)? {
            return Ok(());
        }
    }
    buf.write(offset, bytes)
}

unsafe extern "C" fn set_tensor(
    b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    data: *const c_void,
    offset: usize,
    size: usize,
) {
    if size == 0 {
        return;
    }
    // SAFETY: ggml passes our live buffer, a live tensor in it, and `size` readable bytes at `data`.
    let (c, t, src) = unsafe { (ctx(b), &*t, std::slice::from_raw_parts(data as *const u8, size)) };
    guarded("set_tensor", (), || {
        timeline::transfer_bytes(size as u64);
        timeline::host(Host::Transfer, || write_bytes(&c.buf, offset_of(t)? + offset as u64, src))
    })
}

unsafe extern "C" fn get_tensor(
    b: sys::ggml_backend_buffer_t,
    t: *const sys::ggml_tensor,
    data: *mut c_void,
    offset: usize,
    size: usize,
) {
    if size == 0 {
        return;
    }
    // SAFETY: ggml passes our live buffer, a live tensor in it, and `size` writable bytes at `data`.
    let (c, t, dst) = unsafe { (ctx(b), &*t, std::slice::from_raw_parts_mut(data as *mut u8, size)) };
    guarded("get_tensor", (), || {
        timeline::transfer_bytes(size as u64);
        timeline::host(Host::Transfer, || c.buf.read(offset_of(t)? + offset as u64, dst))
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn set_tensor_2d(
    b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    data: *const c_void,
    offset: usize,
    size: usize,
    n_copies: usize,
    stride_tensor: usize,
    stride_data: usize,
) {
    for i in 0..n_copies {
        // SAFETY: ggml guarantees `data` covers n_copies rows of `size` bytes `stride_data` apart.
        unsafe {
            set_tensor(
                b,
                t,
                (data as *const u8).add(i * stride_data) as *const c_void,
                offset + i * stride_tensor,
                size,
            )
        };
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn get_tensor_2d(
    b: sys::ggml_backend_buffer_t,
    t: *const sys::ggml_tensor,
    data: *mut c_void,
    offset: usize,
    size: usize,
    n_copies: usize,
    stride_tensor: usize,
    stride_data: usize,
) {
    for i in 0..n_copies {
        // SAFETY: ggml guarantees `data` covers n_copies rows of `size` bytes `stride_data` apart.
        unsafe {
            get_tensor(b, t, (data as *mut u8).add(i * stride_data) as *mut c_void, offset + i * stride_tensor, size)
        };
    }
}

unsafe extern "C" fn cpy_tensor(
    b: sys::ggml_backend_buffer_t,
    src: *const sys::ggml_tensor,
    dst: *mut sys::ggml_tensor,
) -> bool {
    // SAFETY: ggml passes our live buffer (dst's) and two live tensors.
    let (c, s, d) = unsafe { (ctx(b), &*src, &*dst) };
    guarded("cpy_tensor", false, || {
        // SAFETY: the source's buffer is live while ggml copies from it.
        if let Some(sb) = unsafe { buffer_of(s.buffer) } {
            if Arc::ptr_eq(sb.device(), c.buf.device()) {
                let len = ggml_nbytes(s);
                sb.copy_to(offset_of(s)?, &c.buf, offset_of(d)?, len)?;
                return Ok(true);
            }
        }
        // SAFETY: the source's buffer and its buffer type are live ggml objects.
        if unsafe { in_host_buffer(s) } {
            let len = ggml_nbytes(s) as usize;
            // SAFETY: a host buffer's tensor data is `len` readable bytes at `data`.
            let bytes = unsafe { std::slice::from_raw_parts(s.data as *const u8, len) };
            write_bytes(&c.buf, offset_of(d)?, bytes)?;
            return Ok(true);
        }
        Ok(false)
    })
}

unsafe extern "C" fn clear(b: sys::ggml_backend_buffer_t, value: u8) {
    // SAFETY: ggml passes our live buffer.
    let c = unsafe { ctx(b) };
    guarded("clear", (), || c.buf.fill(0, c.buf.size(), value))
}

/// ggml_nbytes for a ggml tensor (one row or element plus the strides to the last one).
pub fn ggml_nbytes(t: &sys::ggml_tensor) -> u64 {
    if t.ne.iter().any(|&n| n <= 0) {
        return 0;
    }
    let Some(ty) = crate::quant::GgmlType::from_raw(t.r#type) else { return 0 };
    let (mut n, first) =
        if ty.block_size() == 1 { (ty.type_size() as u64, 0) } else { (ty.row_size(t.ne[0]).unwrap_or(0) as u64, 1) };
    for i in first..4 {
        n += (t.ne[i] as u64 - 1) * t.nb[i] as u64;
    }
    n
}

/// The methods of every GGVK buffer.
pub const BUFFER_IFACE: sys::ggml_backend_buffer_i = sys::ggml_backend_buffer_i {
    free_buffer: Some(free_buffer),
    get_base: Some(get_base),
    init_tensor: Some(init_tensor),
    memset_tensor: Some(memset_tensor),
    set_tensor: Some(set_tensor),
    get_tensor: Some(get_tensor),
    set_tensor_2d: Some(set_tensor_2d),
    get_tensor_2d: Some(get_tensor_2d),
    cpy_tensor: Some(cpy_tensor),
    clear: Some(clear),
    reset: None,
};

// ---- buffer type ----

/// The device entry behind one of our buffer types (device or pinned host: both point their context at it).
///
/// # Safety
/// `buft` must be one of the buffer types made by [`DeviceEntry`].
pub(super) unsafe fn entry_of<'a>(buft: sys::ggml_backend_buffer_type_t) -> &'a DeviceEntry {
    // SAFETY: our buffer types' context is their 'static DeviceEntry.
    unsafe { &*((*buft).context as *const DeviceEntry) }
}

unsafe extern "C" fn buft_get_name(buft: sys::ggml_backend_buffer_type_t) -> *const c_char {
    // SAFETY: ggml passes one of our buffer types.
    unsafe { entry_of(buft) }.name.as_ptr()
}

unsafe extern "C" fn buft_alloc_buffer(
    buft: sys::ggml_backend_buffer_type_t,
    size: usize,
) -> sys::ggml_backend_buffer_t {
    // SAFETY: ggml passes one of our buffer types.
    let entry = unsafe { entry_of(buft) };
    guarded("alloc_buffer", std::ptr::null_mut(), || {
        let buf = Buffer::new(&entry.device()?, size.max(1) as u64, "ggml buffer")?;
        hand_to_ggml(buft, BUFFER_IFACE, BufferCtx { buf }, size)
    })
}

unsafe extern "C" fn buft_get_alignment(buft: sys::ggml_backend_buffer_type_t) -> usize {
    // SAFETY: ggml passes one of our buffer types.
    let entry = unsafe { entry_of(buft) };
    entry.caps().min_storage_offset_alignment.max(32) as usize
}

/// Largest buffer of one of our buffer types: the device's maxMemoryAllocationSize (device and host types alike).
pub(super) unsafe extern "C" fn buft_get_max_size(buft: sys::ggml_backend_buffer_type_t) -> usize {
    // SAFETY: ggml passes one of our buffer types.
    let entry = unsafe { entry_of(buft) };
    entry.caps().max_memory_allocation_size as usize
}

unsafe extern "C" fn buft_is_host(_buft: sys::ggml_backend_buffer_type_t) -> bool {
    false
}

/// The methods of every GGVK buffer type.
pub const BUFT_IFACE: sys::ggml_backend_buffer_type_i = sys::ggml_backend_buffer_type_i {
    get_name: Some(buft_get_name),
    alloc_buffer: Some(buft_alloc_buffer),
    get_alignment: Some(buft_get_alignment),
    get_max_size: Some(buft_get_max_size),
    get_alloc_size: None,
    is_host: Some(buft_is_host),
};
