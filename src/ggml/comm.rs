//! Tensor parallelism between GGVK devices: the allreduce that ggml's meta backend (llama.cpp's `-sm tensor`) asks
//! a backend registration for (`ggml_backend_comm_init` / `_allreduce_tensor` / `_free` through
//! `get_proc_address`).
//!
//! With `-sm tensor` every device holds a slice of each weight matrix; after each part of the graph (the attention
//! block, the feed-forward block) each device holds a partial sum of the same F32 tensor, and every device must
//! continue with the full sum. Without a backend allreduce the meta backend runs its generic one: per pair of
//! devices two tensor copies, each synchronising both devices, then an ADD graph submitted on each device. Here one
//! call does it: each device's partial is read (a copy queued after its work; every device's copy submitted before
//! the host waits), the sum is formed on the host in device order (for two devices the very same f32 additions as
//! the generic path: x0 + x1 on both) and written back to every device, riding with that device's next submission
//! when small. Two VkDevices share no memory ggvk could copy through on the GPU, so the host is the meeting point
//! either way.
//!
//! Larger tensors (prompt batches; above `GGVK_ALLREDUCE_MAX`, default 1 MiB) are left to the generic path, whose
//! ADD runs on the devices; `GGVK_ALLREDUCE=0` leaves every call to it.

use std::ffi::{c_void, CStr};
use std::sync::Arc;

use super::backend::engine_of;
use super::buffer::{buffer_of, guarded, offset_of};
use super::sys;
use crate::error::{Error, Result};
use crate::vk::Buffer;

/// The backends of one meta backend, in its device order.
struct Comm {
    backends: Vec<sys::ggml_backend_t>,
    /// Largest tensor (bytes) reduced here.
    max_bytes: u64,
}

const DEFAULT_MAX_BYTES: u64 = 1 << 20;

/// The `get_proc_address` names this module answers, with their functions.
pub(super) fn proc_address(name: &CStr) -> Option<*mut c_void> {
    Some(match name.to_bytes() {
        b"ggml_backend_comm_init" => comm_init as *mut c_void,
        b"ggml_backend_comm_free" => comm_free as *mut c_void,
        b"ggml_backend_comm_allreduce_tensor" => comm_allreduce_tensor as *mut c_void,
        _ => return None,
    })
}

/// A communication context for `n` backends, or NULL (ggml then uses its generic allreduce): fewer than two
/// backends, one that is not a GGVK backend, or `GGVK_ALLREDUCE=0`.
///
/// # Safety
/// `backends` points to `n` live ggml backends, which outlive the context (ggml frees it first).
unsafe extern "C" fn comm_init(backends: *mut sys::ggml_backend_t, n: usize) -> *mut c_void {
    guarded("comm_init", std::ptr::null_mut(), || {
        if n < 2 || backends.is_null() || !crate::knobs::switch("GGVK_ALLREDUCE", true) {
            return Ok(std::ptr::null_mut());
        }
        // SAFETY: the caller passes n backend pointers.
        let list = unsafe { std::slice::from_raw_parts(backends, n) }.to_vec();
        // SAFETY: each is a live backend (ours or not: engine_of checks).
        if list.iter().any(|&b| unsafe { engine_of(b) }.is_none()) {
            return Ok(std::ptr::null_mut());
        }
        let max_bytes = crate::knobs::size("GGVK_ALLREDUCE_MAX")?;
        let max_bytes = if max_bytes == 0 { DEFAULT_MAX_BYTES } else { max_bytes };
        Ok(Box::into_raw(Box::new(Comm { backends: list, max_bytes })) as *mut c_void)
    })
}

/// Free a context made by [`comm_init`].
///
/// # Safety
/// `ctx` is NULL or came from [`comm_init`] and is freed once.
unsafe extern "C" fn comm_free(ctx: *mut c_void) {
    if !ctx.is_null() {
        // SAFETY: made by comm_init with Box::into_raw; ggml frees it once.
        drop(unsafe { Box::from_raw(ctx as *mut Comm) });
    }
}

/// Replace each of the tensors (one per backend, in the context's order) by their sum. `false` (nothing written):
/// the meta backend's generic allreduce handles this call.
///
/// # Safety
/// `ctx` came from [`comm_init`]; `tensors` points to one live tensor per backend, each in that backend's memory,
/// with all work writing them submitted.
unsafe extern "C" fn comm_allreduce_tensor(ctx: *mut c_void, tensors: *mut *mut sys::ggml_tensor) -> bool {
    if ctx.is_null() || tensors.is_null() {
        return false;
    }
    // SAFETY: made by comm_init, alive until comm_free.
    let comm = unsafe { &*(ctx as *const Comm) };
    // SAFETY: one tensor pointer per backend.
    let tensors = unsafe { std::slice::from_raw_parts(tensors, comm.backends.len()) };
    guarded("comm_allreduce_tensor", false, || {
        // SAFETY: the caller passes live backends and tensors.
        let Some(parts) = (unsafe { parts(comm, tensors) })? else { return Ok(false) };
        crate::timeline::host(crate::timeline::Host::Allreduce, || allreduce(&parts))?;
        Ok(true)
    })
}

/// One backend's share of an allreduce.
struct Part {
    buf: Arc<Buffer>,
    offset: u64,
    bytes: usize,
    /// Whether the backend computed its partial (ggml leaves a zero-sized slice's node uncomputed: it counts as 0).
    computed: bool,
}

/// The shares of a call this module takes: F32, the same element count everywhere, contiguous, each in its
/// backend's device memory (the backend's own device), at most `max_bytes`. `None` for anything else.
///
/// # Safety
/// Live backends (the context's) and live tensors.
unsafe fn parts(comm: &Comm, tensors: &[*mut sys::ggml_tensor]) -> Result<Option<Vec<Part>>> {
    let mut out = Vec::with_capacity(tensors.len());
    let mut elements = None;
    for (&b, &t) in comm.backends.iter().zip(tensors) {
        // SAFETY: the caller guarantees live tensors (a NULL one is not ours to reduce).
        let Some(t) = (unsafe { t.as_ref() }) else { return Ok(None) };
        // SAFETY: a live backend from comm_init.
        let Some(engine) = (unsafe { engine_of(b) }) else { return Ok(None) };
        if t.r#type != sys::GGML_TYPE_F32 || t.ne.iter().any(|&n| n < 0) {
            return Ok(None);
        }
        let n: i64 = t.ne.iter().product();
        if *elements.get_or_insert(n) != n || !contiguous_f32(t) {
            return Ok(None);
        }
        let bytes = n as u64 * 4;
        if bytes > comm.max_bytes {
            return Ok(None);
        }
        // SAFETY: a live tensor's buffer is live.
        let Some(buf) = (unsafe { buffer_of(t.buffer) }) else { return Ok(None) };
        if !Arc::ptr_eq(buf.device(), engine.device()) {
            return Ok(None);
        }
        let offset = offset_of(t)?;
        let bytes = usize::try_from(bytes).map_err(|_| Error::invalid("allreduce tensor too large for this host"))?;
        out.push(Part { buf, offset, bytes, computed: t.flags & sys::GGML_TENSOR_FLAG_COMPUTE != 0 });
    }
    Ok(Some(out))
}

/// Whether `t`'s F32 elements are packed in order (nb[0] = 4, each stride the product of the lower dimensions).
fn contiguous_f32(t: &sys::ggml_tensor) -> bool {
    let mut want = 4u64;
    for d in 0..4 {
        if t.ne[d] > 1 && t.nb[d] as u64 != want {
            return false;
        }
        want *= t.ne[d].max(1) as u64;
    }
    true
}

/// Read every device's partial, sum them in device order, write the sum to every device (small writes ride with
/// the device's next submission, so the work after this call reads them).
fn allreduce(parts: &[Part]) -> Result<()> {
    let Some(bytes) = parts.first().map(|p| p.bytes) else { return Ok(()) };
    if bytes == 0 {
        return Ok(());
    }
    // No wait for the streams first: a read is a copy submitted after them on the same queue, which starts with a
    // barrier from every earlier compute write; every device's copy is submitted before any is waited for
    // (`Buffer::read_each`), so the host waits once for the slowest device, not once per device.
    let mut partials = vec![vec![0u8; bytes]; parts.len()];
    let mut reads: Vec<(&Buffer, u64, &mut [u8])> = parts
        .iter()
        .zip(partials.iter_mut())
        .filter(|(p, _)| p.computed)
        .map(|(p, out)| (&*p.buf, p.offset, out.as_mut_slice()))
        .collect();
    Buffer::read_each(&mut reads)?;
    let mut sum: Vec<f32> = Vec::new();
    for (i, partial) in partials.iter().enumerate() {
        let values = partial.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if i == 0 {
            sum.extend(values);
        } else {
            sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
        }
    }
    let out: Vec<u8> = sum.iter().flat_map(|v| v.to_le_bytes()).collect();
    // Everything that can fail on good input happened above (nothing written yet, so ggml's generic allreduce can
    // still take the call). A write fails only with the device (lost, out of memory), which fails what follows too.
    for p in parts {
        p.buf.write(p.offset, &out)?;
    }
    Ok(())
}
