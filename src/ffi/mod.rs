//! The C API: opaque handles, plain `#[repr(C)]` structs, `ggvk_status` codes and a thread-local last-error
//! message. Every export checks its pointers, converts C values into checked Rust ones, and runs inside a
//! panic boundary, so no panic and no Rust error crosses into C.
//!
//! Thread-safety at the C API: device queries, `ggvk_init`, allocation and buffer transfers may be called from
//! any thread. One `ggvk_backend` may be used from several threads (its calls serialise); several backends on one
//! device run independently and share pipelines. A `ggvk_graph` is plain data: don't mutate one graph from two
//! threads at once. Freeing a handle while another thread uses it is undefined behaviour, as in C generally;
//! freeing a buffer that a graph still uses is fine (the graph keeps its memory alive).
//!
//! One generic call (`ggvk_graph_node`, [`node`]) reaches every engine op; `ggvk_graph_mul_mat` and
//! `ggvk_graph_rope` are thin wrappers over it.
#![allow(non_camel_case_types)]

pub mod api;
pub mod node;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// Caller memory that a read started now fills later: the destination of `ggvk_buffer_get_async` and of ggml's
/// `get_tensor_async` (the ggml adapter uses this too), written when the read completes inside the backend's
/// synchronize.
pub(crate) struct HostDst {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the pointer is written through only when the read completes (inside the backend's synchronize, on
// whichever thread calls it); both callers' contracts keep that memory valid and otherwise untouched until then.
unsafe impl Send for HostDst {}

impl HostDst {
    /// `len` bytes at `ptr`, which the caller keeps writable until the backend's next synchronize.
    pub(crate) fn new(ptr: *mut u8, len: usize) -> Self {
        HostDst { ptr, len }
    }

    /// Copy a completed read's bytes (as many as were started, at most `len`) to the destination.
    pub(crate) fn put(self, bytes: &[u8]) {
        let n = bytes.len().min(self.len);
        // SAFETY: `ptr` holds `len` writable bytes until synchronize (see `new`); `bytes` is staging memory, apart.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr, n) }
    }
}

/// Result of every fallible C API call.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ggvk_status {
    /// Success.
    GGVK_STATUS_OK = 0,
    /// NULL handle or pointer, or a bad size, offset, shape, stride or type.
    GGVK_STATUS_INVALID_ARGUMENT = 1,
    /// A byte range outside a buffer or tensor.
    GGVK_STATUS_OUT_OF_BOUNDS = 2,
    /// A valid request this device or build does not support.
    GGVK_STATUS_UNSUPPORTED = 3,
    /// No Vulkan loader or driver, or a device index out of range.
    GGVK_STATUS_NO_DEVICE = 4,
    /// Device memory is exhausted.
    GGVK_STATUS_OUT_OF_DEVICE_MEMORY = 5,
    /// Host memory is exhausted.
    GGVK_STATUS_OUT_OF_HOST_MEMORY = 6,
    /// The device was lost; free the backend and its buffers, then create a new one.
    GGVK_STATUS_DEVICE_LOST = 7,
    /// Another Vulkan error.
    GGVK_STATUS_VULKAN_ERROR = 8,
    /// A bug in ggvk (including a caught panic).
    GGVK_STATUS_INTERNAL_ERROR = 9,
}

impl From<&Error> for ggvk_status {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => ggvk_status::GGVK_STATUS_INVALID_ARGUMENT,
            Error::OutOfBounds(_) => ggvk_status::GGVK_STATUS_OUT_OF_BOUNDS,
            Error::Unsupported(_) => ggvk_status::GGVK_STATUS_UNSUPPORTED,
            Error::NoDevice(_) => ggvk_status::GGVK_STATUS_NO_DEVICE,
            Error::OutOfDeviceMemory(_) => ggvk_status::GGVK_STATUS_OUT_OF_DEVICE_MEMORY,
            Error::OutOfHostMemory(_) => ggvk_status::GGVK_STATUS_OUT_OF_HOST_MEMORY,
            Error::DeviceLost(_) => ggvk_status::GGVK_STATUS_DEVICE_LOST,
            Error::Vulkan { .. } => ggvk_status::GGVK_STATUS_VULKAN_ERROR,
            Error::Internal(_) => ggvk_status::GGVK_STATUS_INTERNAL_ERROR,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Remember `msg` as this thread's last error.
pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// Pointer to this thread's last error message (valid until the next failing call on this thread).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

/// Run `f` behind a panic boundary; map its error to a status and remember the message.
pub(crate) fn guard(what: &str, f: impl FnOnce() -> Result<(), Error>) -> ggvk_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => ggvk_status::GGVK_STATUS_OK,
        Ok(Err(e)) => {
            set_last_error(&format!("{what}: {e}"));
            ggvk_status::from(&e)
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("{what}: internal error (panic): {msg}"));
            ggvk_status::GGVK_STATUS_INTERNAL_ERROR
        }
    }
}

/// Run a function returning nothing (the `*_free` family) behind a panic boundary.
pub(crate) fn guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}
