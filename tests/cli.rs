//! The `ggvk` command line: `--help` (also after a command) and `--version` answer on stdout with status 0; an
//! unknown command or argument prints the usage on stderr with status 2.

use std::process::Command;

fn run(arg: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ggvk")).arg(arg).output().expect("ggvk runs")
}

#[test]
fn help_and_version_succeed() {
    for arg in ["--help", "-h", "help"] {
        let out = run(arg);
        assert_eq!(out.status.code(), Some(0), "{arg}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: ggvk info"), "{arg}");
    }
    let out = run("--version");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ggvk {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn subcommand_help_and_stray_arguments() {
    for args in [["info", "--help"], ["bench", "-h"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ggvk")).args(args).output().expect("ggvk runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: ggvk info"), "{args:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ggvk")).args(["info", "extra"]).output().expect("ggvk runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument extra"));
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = run("frobnicate");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("usage: ggvk info"));
}

#[test]
fn info_names_devices_as_llama_cpp_does() {
    let out = run("info");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // CI's lavapipe is usable: it is GGVK0, as llama.cpp's --list-devices shows it.
    assert!(text.lines().any(|l| l.starts_with("GGVK0 (Vulkan device ")), "{text}");
    let usable: usize = text
        .lines()
        .next()
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("first line: N Vulkan device(s), M usable ...");
    assert_eq!(text.lines().filter(|l| l.starts_with("GGVK")).count(), usable, "{text}");
    // Every Vulkan device is in exactly one of the driver's device groups.
    let line = text.lines().find(|l| l.starts_with("device groups (")).expect("a device groups line");
    let groups = line.split("): ").nth(1).expect("groups after the colon");
    let listed: usize = groups.matches('[').count() + groups.matches(", ").count();
    let devices: usize = text.split(' ').next().and_then(|n| n.parse().ok()).expect("first word: device count");
    assert_eq!(listed, devices, "{text}");
}

#[test]
fn peak_measures_or_says_why_not() {
    let out = run("peak");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // A device with 16x16x16 f16 cooperative matrices for subgroups of 32 prints a rate per kernel; any other (CI's
    // lavapipe) says there is nothing to measure.
    let rates = text.lines().filter(|l| l.starts_with("peak_") && l.ends_with("T(FL)OPS")).count();
    assert!(rates >= 2 || text.contains("nothing to measure"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_ggvk")).args(["peak", "--device", "x"]).output().expect("ggvk runs");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_ggvk")).args(["peak", "extra"]).output().expect("ggvk runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected arguments"));
}

#[test]
fn stream_checks_every_configuration() {
    // Rows whose length is no multiple of a trip (4176 bytes: 261 16-byte units, 232 Q4_0 blocks) so every width and
    // both Q4_0 layouts end mid-trip; 1 MiB of copies (29), so results land at offsets past the first.
    let out = Command::new(env!("CARGO_BIN_EXE_ggvk"))
        .args(["stream", "--m", "9", "--row-bytes", "4176", "--rotate-mib", "1", "--dispatches", "2", "--wg", "32"])
        .output()
        .expect("ggvk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    // One row per configuration (reads: 4 widths x 4 load counts x 2 row counts, 3 copies; each Q4_0 layout: 3 load
    // counts x 3 row counts), each with two positive rates (a wrong sum or product exits with status 1).
    let rows: Vec<&str> =
        text.lines().filter(|l| l.contains(" | ") && l.split_whitespace().next().is_some_and(|w| w == "32")).collect();
    assert_eq!(rows.len(), 53, "{text}");
    for r in &rows {
        let rates: Vec<f64> = r.split('|').skip(1).filter_map(|c| c.split_whitespace().nth(1)?.parse().ok()).collect();
        assert!(rates.len() == 2 && rates.iter().all(|&v| v > 0.0), "{r}");
    }
    for bad in [["--row-bytes", "10"], ["--wg", "96"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ggvk")).arg("stream").args(bad).output().expect("ggvk runs");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
