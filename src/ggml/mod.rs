//! The ggml-backend adapter: what lets an unmodified llama.cpp load `libggvk.so` as a ggml backend
//! (`GGML_BACKEND_PATH`, exported `ggml_backend_init`, backend API version 2).
//!
//! [`sys`] mirrors the ggml types and function signatures the adapter exchanges with the host process.

/// `#[repr(C)]` mirrors of the pinned ggml headers.
///
/// cbindgen:ignore
pub mod sys;

mod backend;
mod buffer;
mod comm;
mod device;
mod host;
mod host_buffer;
mod known_graphs;
mod split;
mod translate;

use std::ffi::c_int;
use std::panic::catch_unwind;

/// Entry point ggml's loader calls (`GGML_BACKEND_PATH=/path/libggvk.so`): the GGVK registry, with one device
/// `GGVK<i>` per usable Vulkan device (none when Vulkan is unavailable).
///
/// cbindgen:ignore
#[no_mangle]
pub extern "C" fn ggml_backend_init() -> sys::ggml_backend_reg_t {
    catch_unwind(|| {
        ggml_door();
        device::registry().handle()
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Loaded as a ggml backend: ggvk's diagnostics go through the host's ggml logger from now on (called before the
/// registry is built, since its setup may warn).
fn ggml_door() {
    if host::host().log.is_some() {
        crate::diag::logger().install_ggml(host::ggml_sink);
    }
}

/// ggml's loader asks this first: 0 means "not supported on this system" (no usable Vulkan device).
///
/// cbindgen:ignore
#[no_mangle]
pub extern "C" fn ggml_backend_score() -> c_int {
    catch_unwind(|| {
        ggml_door();
        if device::registry().is_empty() {
            0
        } else {
            1
        }
    })
    .unwrap_or(0)
}

/// The ggml device name of each Vulkan device, in Vulkan's order, given whether each is usable: the usable ones are
/// `GGVK0`, `GGVK1`, ... in that order (the registry's devices), the others have none.
pub fn device_names(usable: impl IntoIterator<Item = bool>) -> Vec<Option<String>> {
    let mut n = 0;
    usable
        .into_iter()
        .map(|ok| {
            ok.then(|| {
                n += 1;
                format!("GGVK{}", n - 1)
            })
        })
        .collect()
}

/// The support check ggml's `supports_op` runs (translation of the ggml node, then the op's checks against the
/// device's limits), with tensors placed in `placeholder` (a [`crate::vk::Buffer::placeholder`]). For fuzzing
/// the translation with arbitrary ggml-like tensors.
///
/// # Safety
/// `op` and its non-NULL sources must point to readable ggml tensors; their `buffer` pointers must be NULL.
#[doc(hidden)]
pub unsafe fn check_node(
    op: *const sys::ggml_tensor,
    placeholder: &std::sync::Arc<crate::vk::Buffer>,
) -> crate::Result<Option<crate::Node>> {
    // SAFETY: forwarded to the caller.
    let node = unsafe { translate::node(op, translate::Memory::Check(placeholder)) }?;
    if let Some(n) = &node {
        crate::ops::check_on(placeholder.device(), n)?;
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_usable_devices_are_numbered() {
        let names = super::device_names([false, true, false, true, true]);
        let want = [None, Some("GGVK0"), None, Some("GGVK1"), Some("GGVK2")];
        assert_eq!(names.iter().map(Option::as_deref).collect::<Vec<_>>(), want);
        assert!(super::device_names([]).is_empty());
    }
}
