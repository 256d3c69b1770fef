//! Every `GGVK_*` environment variable the library reads, with what it accepts. [`validate`] runs when a device is
//! opened: a malformed value of a known knob is an error (a typo must not silently mean the default, least of all
//! in a safety limit such as `GGVK_MEMORY_BUDGET`), and a `GGVK_*` name nobody reads is reported as a warning (it is
//! most likely a misspelt knob). The knobs are read where they act, always through this module's strict readers
//! ([`switch`], [`either`], [`number`], [`size`]; nothing else in the library reads the environment): a value that
//! is read before a device opens (the Vulkan instance's `GGVK_VALIDATION`, `GGVK_VK_DEBUG`,
//! `GGVK_MAX_STORAGE_RANGE`) and is malformed gets a warning saying what is accepted and counts as unset; the
//! opening of the device then fails with that message.

use crate::error::{Error, Result};

/// What a knob's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `0` or `1`.
    Switch,
    /// A power of two in the range.
    Pow2(u32, u32),
    /// An integer in the range.
    Range(u64, u64),
    /// A byte count ([`parse_size`]).
    Size,
}

/// The library's knobs (README "Profiling and knobs").
const KNOBS: &[(&str, Kind)] = &[
    ("GGVK_DEBUG_SUPPORT", Kind::Switch),
    ("GGVK_VK_DEBUG", Kind::Switch),
    ("GGVK_VALIDATION", Kind::Switch),
    ("GGVK_PROFILE", Kind::Switch),
    ("GGVK_PIPELINE_STATS", Kind::Switch),
    ("GGVK_TIMELINE", Kind::Switch),
    ("GGVK_WAIT_POLL_US", Kind::Range(0, 1_000_000)),
    ("GGVK_REPLAY", Kind::Switch),
    ("GGVK_DIRECT_MAPPING", Kind::Switch),
    ("GGVK_BATCH_UPLOADS", Kind::Switch),
    ("GGVK_ASYNC_READS", Kind::Switch),
    ("GGVK_FUSION", Kind::Switch),
    ("GGVK_FUSE_QUANTIZE", Kind::Switch),
    ("GGVK_SOFTMAX_EMIT", Kind::Switch),
    ("GGVK_SOFTMAX_VEC4", Kind::Switch),
    ("GGVK_SOFTMAX_WG", Kind::Pow2(32, 1024)),
    ("GGVK_FUSE_ROPE_SET_ROWS", Kind::Switch),
    ("GGVK_FUSE_ROPE_SCALE", Kind::Switch),
    ("GGVK_FUSE_NORM_ADD", Kind::Switch),
    ("GGVK_FUSE_MATVEC_ROPE", Kind::Switch),
    ("GGVK_SCHEDULE", Kind::Switch),
    ("GGVK_INT_DOT", Kind::Switch),
    ("GGVK_KQUANT_MATVEC", Kind::Switch),
    ("GGVK_COOPMAT", Kind::Switch),
    ("GGVK_COOPMAT_INT8", Kind::Switch),
    ("GGVK_COOPMAT2", Kind::Switch),
    ("GGVK_CM_VEC_Q4K", Kind::Switch),
    ("GGVK_MATVEC_WIDE_K", Kind::Switch),
    ("GGVK_MATVEC_WIDE_F16", Kind::Switch),
    ("GGVK_MATVEC_WORDS32", Kind::Switch),
    ("GGVK_MATVEC_STAGED", Kind::Switch),
    ("GGVK_MATVEC_DQ_SPAN16", Kind::Switch),
    ("GGVK_INT_DOT_BLOCK32", Kind::Switch),
    ("GGVK_INT_DOT_KQUANT_MORE", Kind::Switch),
    ("GGVK_DEQUANT_F16", Kind::Switch),
    ("GGVK_CPY_TILED", Kind::Switch),
    ("GGVK_SET_ROWS_PERIOD", Kind::Range(0, u32::MAX as u64)),
    ("GGVK_DEQUANT_F16_MIN_N", Kind::Range(1, u32::MAX as u64)),
    ("GGVK_CM2_TM", Kind::Range(16, 1024)),
    ("GGVK_CM2_TN", Kind::Range(16, 1024)),
    ("GGVK_CM2_TK", Kind::Range(16, 1024)),
    ("GGVK_FA_DECODE", Kind::Switch),
    ("GGVK_FA_COOPMAT", Kind::Switch),
    ("GGVK_FA_COOPMAT2", Kind::Switch),
    ("GGVK_FA_CM2_MASK", Kind::Range(0, 2)),
    ("GGVK_FA_CM2_DESCEND", Kind::Switch),
    ("GGVK_CM2_ADD", Kind::Switch),
    ("GGVK_CM16_MIN_COLS", Kind::Range(0, 1 << 24)),
    ("GGVK_CM16_COLS_FIRST", Kind::Switch),
    ("GGVK_COOPMAT_ID", Kind::Switch),
    ("GGVK_CM_ID_BN", Kind::Range(64, 128)),
    ("GGVK_CM2_GLU", Kind::Range(0, 2)),
    ("GGVK_CM2_GLU_TM", Kind::Range(16, 1024)),
    ("GGVK_CM2_GLU_TN", Kind::Range(16, 1024)),
    ("GGVK_FA_CM2_GQA", Kind::Range(0, 2)),
    ("GGVK_FA_CM2_SPLIT", Kind::Range(0, 2)),
    ("GGVK_FA_CM2_SPLIT_KEYS", Kind::Pow2(32, 128)),
    ("GGVK_FA_CM2_SPLIT_GROUPS", Kind::Range(1, 65535)),
    ("GGVK_ROUND_ACTIVATIONS", Kind::Switch),
    ("GGVK_SHARED_REDUCTION", Kind::Switch),
    ("GGVK_ROBUST_BUFFER_ACCESS", Kind::Switch),
    ("GGVK_MATVEC_WG", Kind::Pow2(4, 1024)),
    ("GGVK_NORM_SLICES", Kind::Pow2(1, 64)),
    ("GGVK_FA_DECODE_GROUPS", Kind::Range(1, 65535)),
    ("GGVK_FA_DECODE_MIN_KEYS", Kind::Range(1, 1 << 20)),
    ("GGVK_FA_REDUCE_UNROLL", Kind::Range(1, 32)),
    ("GGVK_MATVEC_ROWS", Kind::Range(1, 8)),
    ("GGVK_MATVEC_UNROLL", Kind::Range(1, 8)),
    ("GGVK_SUBMIT_NODES", Kind::Range(0, u32::MAX as u64)),
    ("GGVK_MAX_STORAGE_RANGE", Kind::Range(4096, u64::MAX)),
    ("GGVK_MEMORY_BUDGET", Kind::Size),
    ("GGVK_SCRATCH_RING", Kind::Size),
    ("GGVK_KEEP_F16_WEIGHTS", Kind::Size),
    ("GGVK_ALLREDUCE", Kind::Switch),
    ("GGVK_ALLREDUCE_MAX", Kind::Size),
    ("GGVK_HOST_IMPORT", Kind::Switch),
];

/// `GGVK_*` variables of the build, test and benchmark scripts and of the tests (not read by the library).
const TOOL_VARS: &[&str] = &[
    "GGVK_ROOT",
    "GGVK_CACHE",
    "GGVK_LIB",
    "GGVK_PYTHON",
    "GGVK_SETUP_TESTS",
    "GGVK_FUZZ_SECONDS",
    "GGVK_E2E_DIR",
    "GGVK_E2E_KV",
    "GGVK_E2E_KV_NOFA",
    "GGVK_ACT_XCHECK_DIR",
    "GGVK_CACHE_XCHECK_DIR",
    "GGVK_SPIRV_DIR",
    "GGVK_SUITE_PATTERN",
    "GGVK_DEVICE",
    "GGVK_SOAK",
    "GGVK_INSTALL_NO_BUILD",
];

/// A byte count: a number (decimals allowed) with an optional unit, case-insensitive: none or B (bytes), K / KB /
/// KiB, M / MB / MiB, G / GB / GiB, T / TB / TiB (all powers of 1024, as GPU memory is counted); spaces around
/// the number and unit are allowed. `1.5M` is 1572864. Anything else is an error saying what is accepted.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("unknown unit {unit:?} (use a byte count with K, M, G or T, e.g. 512M or 1.5G)")),
    };
    let valid_number = !num.is_empty() && num.matches('.').count() <= 1 && num != ".";
    if !valid_number {
        return Err("not a size (use a byte count with K, M, G or T, e.g. 512M or 1.5G)".into());
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| "the number is too large".to_string())? };
    let whole = int.checked_mul(1u64 << shift).ok_or_else(|| "the size overflows 64 bits".to_string())?;
    // The fraction in units of 2^shift bytes, exactly (at most 19 digits are kept; the rest cannot matter).
    let digits = &frac[..frac.len().min(19)];
    let part = if digits.is_empty() {
        0
    } else {
        let f: u128 = digits.parse().map_err(|_| "not a size".to_string())?;
        ((f << shift) / 10u128.pow(digits.len() as u32)) as u64
    };
    whole.checked_add(part).ok_or_else(|| "the size overflows 64 bits".to_string())
}

/// Check `value` of knob `kind`; the error says what is accepted.
fn check(kind: Kind, value: &str) -> std::result::Result<(), String> {
    let int = |v: &str| v.trim().parse::<u64>().map_err(|_| "not a whole number".to_string());
    match kind {
        Kind::Switch if matches!(value.trim(), "0" | "1") => Ok(()),
        Kind::Switch => Err("use 0 or 1".into()),
        Kind::Pow2(lo, hi) => match int(value) {
            Ok(v) if v.is_power_of_two() && (u64::from(lo)..=u64::from(hi)).contains(&v) => Ok(()),
            _ => Err(format!("use a power of two from {lo} to {hi}")),
        },
        Kind::Range(lo, hi) => match int(value) {
            Ok(v) if (lo..=hi).contains(&v) => Ok(()),
            _ => Err(format!("use a whole number from {lo} to {hi}")),
        },
        Kind::Size => parse_size(value).map(|_| ()),
    }
}

/// The value of knob `name` (one of [`KNOBS`]) from the environment, checked: `None` when unset; an error naming
/// the variable and saying what is accepted when malformed.
fn read(name: &str) -> Result<Option<String>> {
    checked(name, std::env::var(name))
}

/// [`read`] of the variable's state `var`.
fn checked(name: &str, var: std::result::Result<String, std::env::VarError>) -> Result<Option<String>> {
    let Some(&(_, kind)) = KNOBS.iter().find(|(k, _)| *k == name) else {
        return Err(Error::Internal(format!("{name} is not in knobs::KNOBS")));
    };
    match var {
        Ok(v) => check(kind, &v)
            .map(|()| Some(v.trim().to_string()))
            .map_err(|e| Error::invalid(format!("{name}={v:?}: {e}"))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::invalid(format!("{name}={v:?}: not text"))),
    }
}

/// [`read`], a malformed value reported as a warning (once per knob) and taken as unset. Device opening runs
/// [`validate`] first, which fails on it, so only reads before that (or after the environment changed) get here.
fn read_or_warn(name: &'static str) -> Option<String> {
    match read(name) {
        Ok(v) => v,
        Err(e) => {
            static WARNED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
            let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
            if !warned.contains(&name) {
                warned.push(name);
                crate::diag::emit(crate::diag::Level::Warn, &format!("ggvk: warning: {e}; taken as unset"));
            }
            None
        }
    }
}

/// A `0`/`1` knob: `Some(false)` / `Some(true)`, `None` when unset (or malformed, with a warning).
pub fn either(name: &'static str) -> Option<bool> {
    read_or_warn(name).map(|v| v == "1")
}

/// A `0`/`1` knob with its default for when it is unset.
pub fn switch(name: &'static str, default: bool) -> bool {
    either(name).unwrap_or(default)
}

/// A whole-number knob (checked against its range), `None` when unset (or malformed, with a warning).
pub fn number(name: &'static str) -> Option<u64> {
    read_or_warn(name).and_then(|v| v.parse().ok())
}

/// A byte-count knob ([`parse_size`]): 0 when unset; malformed is an error (a size is a limit: it must not be
/// ignored).
pub fn size(name: &'static str) -> Result<u64> {
    match read(name)? {
        Some(v) => parse_size(&v).map_err(|e| Error::invalid(format!("{name}={v:?}: {e}"))),
        None => Ok(0),
    }
}

/// A byte-count knob ([`parse_size`]): `None` when unset; malformed is an error.
pub fn size_opt(name: &'static str) -> Result<Option<u64>> {
    match read(name)? {
        Some(v) => parse_size(&v).map(Some).map_err(|e| Error::invalid(format!("{name}={v:?}: {e}"))),
        None => Ok(None),
    }
}

/// Check `vars` (name, value) as [`validate`] does: the first malformed knob is an error; the unknown `GGVK_*`
/// names are returned.
fn check_vars(vars: impl Iterator<Item = (String, String)>) -> Result<Vec<String>> {
    let mut unknown = Vec::new();
    for (name, value) in vars.filter(|(n, _)| n.starts_with("GGVK_")) {
        match KNOBS.iter().find(|(k, _)| *k == name) {
            Some(&(_, kind)) => {
                check(kind, &value).map_err(|e| Error::invalid(format!("{name}={value:?}: {e}")))?;
            }
            None if TOOL_VARS.contains(&name.as_str()) => {}
            None => unknown.push(name),
        }
    }
    Ok(unknown)
}

/// Check every `GGVK_*` variable of the environment (see the module docs). Unknown names are logged as warnings.
pub fn validate() -> Result<()> {
    let vars = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())));
    for name in check_vars(vars)? {
        tracing::warn!("{name} is not a ggvk setting (misspelt?); it is ignored");
        crate::diag::emit(
            crate::diag::Level::Warn,
            &format!("ggvk: warning: {name} is not a ggvk setting (misspelt?); it is ignored"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_vars, checked, parse_size, Kind, KNOBS};
    use std::env::VarError;

    #[test]
    fn knobs_read_strictly() {
        let ok = |v: &str| Ok::<_, VarError>(v.to_string());
        assert_eq!(checked("GGVK_REPLAY", Err(VarError::NotPresent)).unwrap(), None);
        assert_eq!(checked("GGVK_REPLAY", ok(" 0 ")).unwrap().as_deref(), Some("0"));
        assert_eq!(checked("GGVK_MATVEC_WG", ok("128")).unwrap().as_deref(), Some("128"));
        assert_eq!(checked("GGVK_MEMORY_BUDGET", ok("1.5G")).unwrap().as_deref(), Some("1.5G"));
        for (name, value, says) in [
            ("GGVK_REPLAY", "off", "use 0 or 1"),
            ("GGVK_DEBUG_SUPPORT", "yes", "use 0 or 1"),
            ("GGVK_VK_DEBUG", "", "use 0 or 1"),
            ("GGVK_MATVEC_WG", "96", "power of two from 4 to 1024"),
            ("GGVK_MATVEC_ROWS", "9", "whole number from 1 to 8"),
            ("GGVK_SUBMIT_NODES", "32x", "whole number from 0"),
            ("GGVK_MAX_STORAGE_RANGE", "1000", "whole number from 4096"),
            ("GGVK_MEMORY_BUDGET", "1MBX", "unknown unit"),
        ] {
            let e = checked(name, ok(value)).expect_err(name).to_string();
            assert!(e.contains(&format!("{name}={value:?}")) && e.contains(says), "{name}={value}: {e}");
        }
        let not_text = std::ffi::OsString::from("x");
        assert!(checked("GGVK_FUSION", Err(VarError::NotUnicode(not_text))).is_err());
        assert!(checked("GGVK_NOT_A_KNOB", ok("1")).is_err());
    }

    /// Nothing in the library reads the environment but this module, and every knob its readers are asked for is
    /// in [`KNOBS`] with the kind the reader parses.
    #[test]
    fn every_knob_read_goes_through_the_strict_readers() {
        let mut files = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        let mut reads = 0;
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") || p.ends_with("src/knobs.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for bad in ["env::var", "env::vars", "getenv"] {
                assert!(!text.contains(bad), "{}: reads the environment itself ({bad}); use crate::knobs", p.display());
            }
            for (reader, kinds) in [
                ("knobs::switch(\"", &["Switch"][..]),
                ("knobs::either(\"", &["Switch"]),
                ("knobs::number(\"", &["Pow2", "Range"]),
                ("knobs::size(\"", &["Size"]),
            ] {
                for (at, _) in text.match_indices(reader) {
                    let name = text[at + reader.len()..].split('"').next().unwrap();
                    let kind = KNOBS.iter().find(|(k, _)| *k == name).map(|(_, k)| *k);
                    let kind_name = match kind {
                        Some(Kind::Switch) => "Switch",
                        Some(Kind::Pow2(..)) => "Pow2",
                        Some(Kind::Range(..)) => "Range",
                        Some(Kind::Size) => "Size",
                        None => panic!("{}: {name} is not in knobs::KNOBS", p.display()),
                    };
                    assert!(kinds.contains(&kind_name), "{}: {reader}{name}: {name} is a {kind_name}", p.display());
                    reads += 1;
                }
            }
        }
        assert!(reads >= 19, "{reads} knob reads found");
    }

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn knobs_are_checked_and_unknown_names_reported() {
        let ok = vars(&[
            ("GGVK_REPLAY", "0"),
            ("GGVK_MATVEC_WG", "128"),
            ("GGVK_MATVEC_ROWS", "4"),
            ("GGVK_SUBMIT_NODES", "0"),
            ("GGVK_MEMORY_BUDGET", "1.5G"),
            ("GGVK_DEBUG_SUPPORT", "1"),
            ("GGVK_CACHE", "/tmp/x"),
            ("PATH", "/bin"),
            ("GGVK_MEMORY_BUGDET", "1G"),
        ]);
        assert_eq!(check_vars(ok).unwrap(), ["GGVK_MEMORY_BUGDET"]);
        for (name, value) in [
            ("GGVK_REPLAY", "off"),
            ("GGVK_MATVEC_WG", "300"),
            ("GGVK_MATVEC_WG", "2048"),
            ("GGVK_MATVEC_ROWS", "0"),
            ("GGVK_SUBMIT_NODES", "-1"),
            ("GGVK_MEMORY_BUDGET", "1MBX"),
            ("GGVK_MAX_STORAGE_RANGE", "big"),
        ] {
            let e = check_vars(vars(&[(name, value)])).expect_err(name).to_string();
            assert!(e.contains(name) && e.contains("use"), "{name}={value}: {e}");
        }
    }

    #[test]
    fn sizes_parse_with_units_and_typos_are_errors() {
        for (text, want) in [
            ("0", 0),
            ("4096", 4096),
            ("200K", 200 << 10),
            ("1MB", 1 << 20),
            ("1MiB", 1 << 20),
            ("1.5M", 3 << 19),
            (" 2 gib ", 2 << 30),
            ("1t", 1 << 40),
            ("0.5K", 512),
            (".25k", 256),
            ("7b", 7),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
        for bad in
            ["", " ", "abc", "1MBB", "1.2.3M", "-5M", "12 parsecs", ".", "1e9", "99999999999999999999", "20000000T"]
        {
            let e = parse_size(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad:?}");
        }
    }
}
