//! Every `GGVK_*` environment variable the library reads, with what it accepts. [`validate`] runs when a device is
//! opened: a malformed value of a known knob is an error (a typo must not silently mean the default, least of all
//! in a safety limit such as `GGVK_MEMORY_BUDGET`), and a `GGVK_*` name nobody reads is reported as a warning (it is
//! most likely a misspelt knob). The knobs themselves are read where they act.

use crate::error::{Error, Result};

/// What a knob's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `0` or `1`.
    Switch,
    /// Anything (set means on).
    Flag,
    /// A power of two in the range.
    Pow2(u32, u32),
    /// An integer in the range.
    Range(u64, u64),
    /// A byte count ([`parse_size`]).
    Size,
}

/// The library's knobs (README "Profiling and knobs").
const KNOBS: &[(&str, Kind)] = &[
    ("GGVK_DEBUG_SUPPORT", Kind::Flag),
    ("GGVK_VK_DEBUG", Kind::Flag),
    ("GGVK_VALIDATION", Kind::Switch),
    ("GGVK_PROFILE", Kind::Switch),
    ("GGVK_REPLAY", Kind::Switch),
    ("GGVK_FUSION", Kind::Switch),
    ("GGVK_INT_DOT", Kind::Switch),
    ("GGVK_KQUANT_MATVEC", Kind::Switch),
    ("GGVK_COOPMAT", Kind::Switch),
    ("GGVK_COOPMAT_INT8", Kind::Switch),
    ("GGVK_FA_DECODE", Kind::Switch),
    ("GGVK_ROUND_ACTIVATIONS", Kind::Switch),
    ("GGVK_SHARED_REDUCTION", Kind::Switch),
    ("GGVK_ROBUST_BUFFER_ACCESS", Kind::Switch),
    ("GGVK_MATVEC_WG", Kind::Pow2(4, 1024)),
    ("GGVK_MATVEC_ROWS", Kind::Range(1, 8)),
    ("GGVK_MATVEC_UNROLL", Kind::Range(1, 8)),
    ("GGVK_SUBMIT_NODES", Kind::Range(0, u32::MAX as u64)),
    ("GGVK_MAX_STORAGE_RANGE", Kind::Range(1, u64::MAX)),
    ("GGVK_MEMORY_BUDGET", Kind::Size),
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
        Kind::Flag => Ok(()),
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
    use super::{check_vars, parse_size};

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
            ("GGVK_DEBUG_SUPPORT", "yes"),
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
