//! The ggml-base functions the adapter calls, resolved at run time from the host process (`dlsym` with
//! `RTLD_DEFAULT`), so `libggvk.so` has no link-time dependency on ggml and the C API works without it.

use std::ffi::{c_void, CStr, CString};
use std::sync::OnceLock;

use super::sys;

/// The resolved functions (each `None` where the host does not export it).
pub struct Host {
    /// `ggml_backend_buffer_init`: required to hand buffers to ggml.
    pub buffer_init: Option<sys::ggml_backend_buffer_init_fn>,
    /// `ggml_log_internal`: ggml's logger (honours the host's log callback).
    pub log: Option<sys::ggml_log_internal_fn>,
}

fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only searches the loaded objects.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// The host's functions, looked up once.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let init = lookup(c"ggml_backend_buffer_init");
        let log = lookup(c"ggml_log_internal");
        Host {
            // SAFETY: a non-null symbol named ggml_backend_buffer_init in a ggml host has this signature (pinned
            // ggml-backend-impl.h); transmuting a data pointer to a fn pointer of the same size is how dlsym is used.
            buffer_init: (!init.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut c_void, sys::ggml_backend_buffer_init_fn>(init) }),
            // SAFETY: as above, for ggml_log_internal (ggml-impl.h).
            log: (!log.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut c_void, sys::ggml_log_internal_fn>(log) }),
        }
    })
}

/// Log through ggml's logger where present (so llama.cpp's log callback sees it), else to stderr.
pub fn log(level: sys::ggml_log_level, msg: &str) {
    let line = CString::new(format!("ggvk: {msg}\n").replace('\0', " ")).unwrap_or_default();
    match host().log {
        // SAFETY: "%s" with one NUL-terminated string argument matches the variadic contract.
        Some(f) => unsafe { f(level, c"%s".as_ptr(), line.as_ptr()) },
        None => eprint!("{}", line.to_string_lossy()),
    }
}

/// Log an error.
pub fn error(msg: &str) {
    log(sys::GGML_LOG_LEVEL_ERROR, msg);
}
