//! The ggml-base functions the adapter calls, resolved at run time from the host process, so `libggvk.so` has no
//! link-time dependency on ggml and the C API works without it.
//!
//! Lookup: first the process's global scope (`dlsym(RTLD_DEFAULT)`: llama.cpp's programs link ggml-base). Where
//! ggml-base was opened `RTLD_LOCAL` (Python's ctypes default, so llama-cpp-python), its symbols are not there;
//! then the already-loaded object whose file name contains `libggml-base` (found with `dl_iterate_phdr`) is
//! opened again with `RTLD_NOLOAD` (no second copy, only a handle to the loaded one) and searched (`dlsym`). The
//! handle is kept for the life of the process, so ggml-base is not unloaded under ggvk's resolved pointers.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use super::sys;

/// The resolved functions (each `None` where the host does not export it).
pub struct Host {
    /// `ggml_backend_buffer_init`: required to hand buffers to ggml.
    pub buffer_init: Option<sys::ggml_backend_buffer_init_fn>,
    /// `ggml_log_internal`: ggml's logger (honours the host's log callback).
    pub log: Option<sys::ggml_log_internal_fn>,
    /// Where they were found, for messages.
    pub source: Source,
}

/// Where the host's ggml-base functions were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The process's global scope (ggml-base linked or opened `RTLD_GLOBAL`).
    Global,
    /// A ggml-base opened `RTLD_LOCAL`, at this path.
    Local(String),
    /// Neither: no ggml-base in the process (the C API door), or a loaded one without the symbols.
    NotFound,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Global => write!(f, "the process's global symbols"),
            Source::Local(path) => write!(f, "{path} (loaded RTLD_LOCAL)"),
            Source::NotFound => write!(
                f,
                "neither the process's global symbols nor a loaded libggml-base (ggvk must be loaded by ggml's \
                 ggml_backend_load into a process that has ggml-base)"
            ),
        }
    }
}

/// The first of `names` (paths of the loaded objects) whose file name contains `libggml-base`.
fn pick_ggml_base<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names.into_iter().find(|n| n.rsplit('/').next().is_some_and(|file| file.contains("libggml-base")))
}

/// Paths of the objects loaded in this process.
fn loaded_objects() -> Vec<CString> {
    unsafe extern "C" fn collect(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `Vec<CString>` that loaded_objects passes, borrowed only during dl_iterate_phdr;
        // the loader passes a valid `info` whose `dlpi_name` is NULL or a NUL-terminated string for the call.
        unsafe {
            let names = &mut *(data as *mut Vec<CString>);
            let name: *const c_char = (*info).dlpi_name;
            if !name.is_null() {
                names.push(CStr::from_ptr(name).to_owned());
            }
        }
        0
    }
    let mut names: Vec<CString> = Vec::new();
    // SAFETY: the callback only appends to `names`, which outlives the call and is not otherwise touched meanwhile.
    unsafe { libc::dl_iterate_phdr(Some(collect), &mut names as *mut Vec<CString> as *mut c_void) };
    names
}

/// A handle to the loaded, `RTLD_LOCAL` ggml-base and its path (never closed), if the process has one.
fn local_ggml_base() -> Option<(usize, String)> {
    let names = loaded_objects();
    let path = pick_ggml_base(names.iter().filter_map(|n| n.to_str().ok()))?;
    let c = CString::new(path).ok()?;
    // SAFETY: RTLD_NOLOAD only returns a handle to an object that is already loaded (no constructors run); the
    // path is NUL-terminated.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
    (!h.is_null()).then(|| (h as usize, path.to_string()))
}

/// Resolve `names` in the global scope, else in a local ggml-base; `None`s where absent.
fn resolve<const N: usize>(names: [&CStr; N]) -> ([*mut c_void; N], Source) {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only searches the loaded objects.
    let global = names.map(|n| unsafe { libc::dlsym(libc::RTLD_DEFAULT, n.as_ptr()) });
    if global.iter().all(|p| !p.is_null()) {
        return (global, Source::Global);
    }
    if let Some((handle, path)) = local_ggml_base() {
        // SAFETY: `handle` came from dlopen and is never closed; the names are NUL-terminated.
        let local = names.map(|n| unsafe { libc::dlsym(handle as *mut c_void, n.as_ptr()) });
        if local.iter().any(|p| !p.is_null()) {
            return (local, Source::Local(path));
        }
    }
    let source = if global.iter().any(|p| !p.is_null()) { Source::Global } else { Source::NotFound };
    (global, source)
}

/// The host's functions, looked up once.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let ([init, log], source) = resolve([c"ggml_backend_buffer_init", c"ggml_log_internal"]);
        Host {
            // SAFETY: a non-null symbol named ggml_backend_buffer_init in a ggml host has this signature (pinned
            // ggml-backend-impl.h); transmuting a data pointer to a fn pointer of the same size is how dlsym is used.
            buffer_init: (!init.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut c_void, sys::ggml_backend_buffer_init_fn>(init) }),
            // SAFETY: as above, for ggml_log_internal (ggml-impl.h).
            log: (!log.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut c_void, sys::ggml_log_internal_fn>(log) }),
            source,
        }
    })
}

/// Log through ggml's logger where present (so llama.cpp's log callback sees it), else to stderr.
pub fn log(level: sys::ggml_log_level, msg: &str) {
    write(level, &format!("ggvk: {msg}"));
}

/// ggvk's diagnostics ([`crate::diag`]) through ggml's logger: installed by `ggml_backend_init` when the host's
/// `ggml_log_internal` was found.
pub fn ggml_sink(level: crate::diag::Level, msg: &str) {
    let level = match level {
        // shown at llama.cpp's default verbosity (see Level::Report)
        crate::diag::Level::Report | crate::diag::Level::Warn => sys::GGML_LOG_LEVEL_WARN,
        crate::diag::Level::Error => sys::GGML_LOG_LEVEL_ERROR,
    };
    write(level, msg);
}

/// One line (`text` without its newline) to ggml's logger, or stderr without one.
fn write(level: sys::ggml_log_level, text: &str) {
    let line = CString::new(format!("{text}\n").replace('\0', " ")).unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_base_is_matched_by_file_name() {
        let loaded = ["", "linux-vdso.so.1", "/usr/lib/libc.so.6", "/x/lib/libggml-base.so.0", "/x/lib/libggml.so"];
        assert_eq!(pick_ggml_base(loaded), Some("/x/lib/libggml-base.so.0"));
        // only the file name counts, not a directory that happens to contain the word
        assert_eq!(pick_ggml_base(["/opt/libggml-base/libggml.so", "/opt/libggml-base/libc.so"]), None);
        assert_eq!(pick_ggml_base(["/a/libggml-base.so", "/b/libggml-base.so"]), Some("/a/libggml-base.so"));
        assert_eq!(pick_ggml_base([]), None);
    }

    #[test]
    fn the_loaded_objects_include_this_process_libc() {
        let names = loaded_objects();
        assert!(names.iter().any(|n| n.to_string_lossy().contains("libc.so")), "{names:?}");
    }

    #[test]
    fn without_ggml_the_host_functions_are_absent_and_say_why() {
        // The test binary links no ggml: the C API door's situation.
        let (found, source) = resolve([c"ggml_backend_buffer_init"]);
        assert!(found[0].is_null());
        assert_eq!(source, Source::NotFound);
        assert!(source.to_string().contains("libggml-base"), "{source}");
    }
}
