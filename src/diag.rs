//! Where ggvk's own diagnostics go: the `GGVK_DEBUG_SUPPORT` lines, `GGVK_PROFILE` reports, Vulkan validation
//! messages and warnings.
//!
//! Loaded as a ggml backend (ggml called `ggml_backend_init`) in a process whose ggml-base logger was found, they go
//! through ggml's logger (`ggml_log_internal`), so the host's `ggml_log_set` / `llama_log_set` callback sees them
//! (llama.cpp's `--log-file` captures them); ggml's default callback prints to stderr. Otherwise (the C API, the
//! `ggvk` tool, Rust tests) they go to stderr. A process that uses both doors gets ggml's logger for both.

use std::sync::OnceLock;

/// Severity of a diagnostic (mapped to ggml's `GGML_LOG_LEVEL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A report asked for with a `GGVK_*` variable (`GGVK_DEBUG_SUPPORT`, `GGVK_PROFILE`, `GGVK_VK_DEBUG`). ggml's
    /// logger gets it as a warning: llama.cpp's tools show ggml's info messages only with `-v` (`-lv 4`), and a
    /// report that was asked for should show at the default verbosity.
    Report,
    /// Something the user should fix (a misspelt setting, a Vulkan warning).
    Warn,
    /// A validation error or a failure.
    Error,
}

/// A logger taking one complete message (no trailing newline).
pub type Sink = fn(Level, &str);

/// Where a diagnostic goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The process's stderr.
    Stderr,
    /// The host's ggml logger.
    Ggml,
}

/// The routing state: stderr until the ggml door installs ggml's logger (once; the first one stays).
pub struct Logger {
    ggml: OnceLock<Sink>,
}

impl Logger {
    /// Routing to stderr.
    pub const fn new() -> Self {
        Logger { ggml: OnceLock::new() }
    }

    /// Route to ggml's logger from now on. False if one was installed already (the first stays).
    pub fn install_ggml(&self, sink: Sink) -> bool {
        self.ggml.set(sink).is_ok()
    }

    /// Where diagnostics go now.
    pub fn route(&self) -> Route {
        if self.ggml.get().is_some() {
            Route::Ggml
        } else {
            Route::Stderr
        }
    }

    /// Emit one diagnostic.
    pub fn emit(&self, level: Level, msg: &str) {
        match self.ggml.get() {
            Some(sink) => sink(level, msg),
            None => eprintln!("{msg}"),
        }
    }
}

impl Default for Logger {
    fn default() -> Self {
        Self::new()
    }
}

static LOGGER: Logger = Logger::new();

/// The process's logger.
pub fn logger() -> &'static Logger {
    &LOGGER
}

/// Emit one diagnostic through the process's logger (`msg` without a trailing newline).
pub fn emit(level: Level, msg: &str) {
    LOGGER.emit(level, msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());
    fn capture(level: Level, msg: &str) {
        SEEN.lock().unwrap().push((level, msg.to_string()));
    }
    fn other(_: Level, _: &str) {
        panic!("the first installed sink stays");
    }

    #[test]
    fn stderr_until_the_ggml_door_installs_its_logger() {
        let l = Logger::new();
        assert_eq!(l.route(), Route::Stderr);
        l.emit(Level::Report, "ggvk: to stderr (test)");
        assert!(SEEN.lock().unwrap().is_empty());

        assert!(l.install_ggml(capture));
        assert_eq!(l.route(), Route::Ggml);
        assert!(!l.install_ggml(other));
        l.emit(Level::Warn, "ggvk: warning: through ggml");
        l.emit(Level::Error, "GGVK VALIDATION ERROR [x]: y");
        assert_eq!(
            *SEEN.lock().unwrap(),
            vec![
                (Level::Warn, "ggvk: warning: through ggml".to_string()),
                (Level::Error, "GGVK VALIDATION ERROR [x]: y".to_string())
            ]
        );
    }

    #[test]
    fn the_process_logger_is_stderr_without_ggml() {
        // Rust tests are the C API / tool situation: nothing calls ggml_backend_init.
        assert_eq!(logger().route(), Route::Stderr);
    }
}
