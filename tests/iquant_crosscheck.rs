//! Cross-checks ggvk's dequantizers of the IQ types beside IQ4_NL (IQ4_XS, IQ3_S, IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S,
//! IQ1_S, IQ1_M), the ternary TQ1_0 / TQ2_0, MXFP4 and NVFP4 against an independent implementation: the numpy
//! dequantizers of the PyPI package `gguf` 0.19.0, which reproduce ggml's `dequantize_row_*` bit-exactly and build
//! their grids from their own encoding (ggvk's come from ggml's tables, `scripts/gen_iq_grids.py`).
//!
//! `scripts/iquant_crosscheck.py` writes > 4,000 random blocks per type (random bytes with finite random scales,
//! plus edge blocks) and gguf's dequantized values; every value must match bit for bit through the byte-level
//! [`dequantize`] (from an odd offset, so no alignment is assumed). The Python interpreter is `$GGVK_PYTHON`
//! (default `python3`); a missing interpreter or package fails the test.

use std::path::PathBuf;
use std::process::Command;

use ggvk::quant::{dequantize, GgmlType};

const INSTALL_HINT: &str = "pip install gguf==0.19.0 numpy";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).unwrap_or_else(|| {
            panic!("vectors file truncated: need {n} bytes at offset {}, file has {}", self.pos, self.buf.len())
        });
        let s = &self.buf[self.pos..end];
        self.pos = end;
        s
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
}

fn generate_vectors() -> Vec<u8> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("scripts").join("iquant_crosscheck.py");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("iquant_crosscheck_{}.bin", std::process::id()));
    let python = std::env::var("GGVK_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python).arg(&script).arg("--out").arg(&out).output().unwrap_or_else(|e| {
        panic!("cannot run {python:?} ({e}); this test needs Python 3 with gguf 0.19.0 and numpy: {INSTALL_HINT}")
    });
    if !output.status.success() {
        let _ = std::fs::remove_file(&out);
        panic!(
            "{} failed ({}). If gguf or numpy is missing: {INSTALL_HINT}\n{}\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));
    let buf = std::fs::read(&out).unwrap_or_else(|e| panic!("cannot read the vectors file {}: {e}", out.display()));
    let _ = std::fs::remove_file(&out);
    buf
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn iquant_dequantizers_match_gguf_numpy_reference() {
    let buf = generate_vectors();
    let mut r = Reader { buf: &buf, pos: 0 };
    assert_eq!(r.take(8), b"GGVKIQ01", "bad magic in vectors file");
    let n_types = r.u32() as usize;
    let mut seen = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for _ in 0..n_types {
        let raw = r.u32();
        let ty = GgmlType::from_raw(raw as i32).unwrap_or_else(|| panic!("unknown ggml type {raw}"));
        let n_blocks = r.u32() as usize;
        let ts = r.u32() as usize;
        let bl = r.u32() as usize;
        assert_eq!(ts, ty.type_size(), "{ty}: block size in file disagrees with GgmlType::type_size");
        assert_eq!(bl, ty.block_size(), "{ty}: values per block in file disagree with GgmlType::block_size");
        assert!(n_blocks >= 4000, "{ty}: expected at least 4000 blocks, got {n_blocks}");
        let blocks = r.take(n_blocks * ts);
        let want: Vec<f32> =
            r.take(n_blocks * bl * 4).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();

        let mut shifted = vec![0u8; blocks.len() + 1];
        shifted[1..].copy_from_slice(blocks);
        let mut got = vec![0f32; n_blocks * bl];
        dequantize(ty, &shifted[1..], &mut got).unwrap();

        let mut mismatched = 0usize;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if g.to_bits() != w.to_bits() {
                mismatched += 1;
                if failures.len() < 20 {
                    let b = i / bl;
                    failures.push(format!(
                        "{ty}: block {b} element {}: ggvk {g:e} ({:#010x}), gguf {w:e} ({:#010x}); block {}",
                        i % bl,
                        g.to_bits(),
                        w.to_bits(),
                        hex(&blocks[b * ts..(b + 1) * ts])
                    ));
                }
            }
        }
        println!("{ty}: {n_blocks} blocks, {} values compared bitwise, {mismatched} mismatched", got.len());
        seen.push(ty);
    }
    assert_eq!(r.pos, buf.len(), "trailing bytes in vectors file");
    use GgmlType as T;
    let all = [T::IQ4_XS, T::MXFP4, T::IQ3_S, T::IQ3_XXS, T::IQ2_XXS, T::IQ2_XS, T::IQ2_S, T::IQ1_S, T::IQ1_M];
    assert_eq!(seen[..all.len()], all);
    assert_eq!(seen[all.len()..], [T::TQ1_0, T::TQ2_0, T::NVFP4]);
    assert!(failures.is_empty(), "mismatches against gguf:\n{}", failures.join("\n"));
}
