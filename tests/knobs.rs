//! Malformed `GGVK_*` settings are errors that say what is accepted (each case in its own `ggvk bench` process, so
//! the environment of other tests is untouched): the opening of the device fails, and a setting read earlier (the
//! Vulkan instance's `GGVK_VALIDATION`) is also reported as a warning.

use std::process::Command;

fn bench_with(name: &str, value: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ggvk"))
        .args(["bench", "--m", "64", "--k", "256", "--resident", "--seconds", "0"])
        .env(name, value)
        .output()
        .expect("ggvk runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn malformed_settings_fail_with_what_is_accepted() {
    for (name, value, says) in [
        ("GGVK_REPLAY", "off", "use 0 or 1"),
        ("GGVK_DEBUG_SUPPORT", "yes", "use 0 or 1"),
        ("GGVK_MATVEC_WG", "96", "use a power of two from 4 to 1024"),
        ("GGVK_SUBMIT_NODES", "many", "use a whole number from 0"),
        ("GGVK_MAX_STORAGE_RANGE", "100", "use a whole number from 4096"),
        ("GGVK_MEMORY_BUDGET", "1MBX", "unknown unit"),
    ] {
        let (code, err) = bench_with(name, value);
        assert_eq!(code, Some(1), "{name}={value}: {err}");
        assert!(err.contains(&format!("{name}={value:?}: {says}")), "{name}={value}: {err}");
    }
    let (code, err) = bench_with("GGVK_VALIDATION", "on");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("warning: ") && err.contains("GGVK_VALIDATION=\"on\": use 0 or 1; taken as unset"), "{err}");
    // ... and then the error of the device's opening.
    assert!(err.matches("GGVK_VALIDATION=\"on\": use 0 or 1").count() >= 2, "{err}");
}

#[test]
fn well_formed_settings_run() {
    let (code, err) = bench_with("GGVK_REPLAY", "0");
    assert_eq!(code, Some(0), "{err}");
}
