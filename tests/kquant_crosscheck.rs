//! Cross-checks ggvk's K-quant dequantizers (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) against an independent
//! implementation: the numpy dequantizers of the PyPI package `gguf` 0.19.0, which reproduce ggml's
//! `dequantize_row_q*_K` bit-exactly.
//!
//! `scripts/kquant_crosscheck.py` writes > 4,000 random blocks per type (random bytes with finite random f16
//! scales, plus edge blocks) and gguf's dequantized values; every value must match bit for bit, through the
//! byte-level [`dequantize`] and through the typed `dequantize_row_q*_k` routines. The Python interpreter is
//! `$GGVK_PYTHON` (default `python3`); a missing interpreter or package fails the test.

use std::path::PathBuf;
use std::process::Command;

use ggvk::quant::{
    dequantize, dequantize_row_q2_k, dequantize_row_q3_k, dequantize_row_q4_k, dequantize_row_q5_k,
    dequantize_row_q6_k, GgmlType, QK_K,
};

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
    let script = manifest.join("scripts").join("kquant_crosscheck.py");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kquant_crosscheck_{}.bin", std::process::id()));
    let python = std::env::var("GGVK_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python).arg(&script).arg("--out").arg(&out).output().unwrap_or_else(|e| {
        panic!("cannot run the Python interpreter {python:?} ({e}); this test needs gguf and numpy: {INSTALL_HINT}")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let _ = std::fs::remove_file(&out);
        panic!("{} failed ({}): {INSTALL_HINT}\n{stdout}\n{stderr}", script.display(), output.status);
    }
    print!("{stdout}");
    eprint!("{stderr}");
    let buf = std::fs::read(&out).unwrap_or_else(|e| panic!("cannot read {}: {e}", out.display()));
    let _ = std::fs::remove_file(&out);
    buf
}

/// Dequantizes `bytes` (whole blocks of `ty`) with the typed row routine, from an aligned copy of the blocks.
fn typed_row(ty: GgmlType, bytes: &[u8], y: &mut [f32]) {
    fn run<B: bytemuck::Pod>(bytes: &[u8], y: &mut [f32], f: fn(&[B], &mut [f32])) {
        let blocks: Vec<B> =
            bytes.chunks_exact(std::mem::size_of::<B>()).map(bytemuck::pod_read_unaligned::<B>).collect();
        f(&blocks, y);
    }
    match ty {
        GgmlType::Q2_K => run(bytes, y, dequantize_row_q2_k),
        GgmlType::Q3_K => run(bytes, y, dequantize_row_q3_k),
        GgmlType::Q4_K => run(bytes, y, dequantize_row_q4_k),
        GgmlType::Q5_K => run(bytes, y, dequantize_row_q5_k),
        GgmlType::Q6_K => run(bytes, y, dequantize_row_q6_k),
        other => panic!("not a K-quant: {other}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn kquant_dequantizers_match_gguf_numpy_reference() {
    let buf = generate_vectors();
    let mut r = Reader { buf: &buf, pos: 0 };
    assert_eq!(r.take(8), b"GGVKKQ01", "bad magic in vectors file");
    let n_types = r.u32() as usize;
    let mut seen = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for _ in 0..n_types {
        let raw = r.u32();
        let ty = GgmlType::from_raw(raw as i32).unwrap_or_else(|| panic!("unknown ggml type {raw}"));
        let n_blocks = r.u32() as usize;
        let ts = r.u32() as usize;
        assert_eq!(ts, ty.type_size(), "{ty}: block size in file disagrees with GgmlType::type_size");
        assert_eq!(ty.block_size(), QK_K, "{ty}");
        assert!(n_blocks >= 4000, "{ty}: expected at least 4000 blocks, got {n_blocks}");
        let blocks = r.take(n_blocks * ts);
        let want: Vec<f32> =
            r.take(n_blocks * QK_K * 4).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();

        // Byte level, from an odd offset so no alignment is assumed.
        let mut shifted = vec![0u8; blocks.len() + 1];
        shifted[1..].copy_from_slice(blocks);
        let mut got = vec![0f32; n_blocks * QK_K];
        dequantize(ty, &shifted[1..], &mut got).unwrap();
        let mut typed = vec![0f32; n_blocks * QK_K];
        typed_row(ty, blocks, &mut typed);

        let mut mismatched = 0usize;
        for (i, ((g, t), w)) in got.iter().zip(&typed).zip(&want).enumerate() {
            if g.to_bits() != w.to_bits() || t.to_bits() != w.to_bits() {
                mismatched += 1;
                if failures.len() < 20 {
                    let b = i / QK_K;
                    failures.push(format!(
                        "{ty}: block {b} element {}: dequantize {g:e} ({:#010x}), row routine {t:e} ({:#010x}), \
                         gguf {w:e} ({:#010x}); block {}",
                        i % QK_K,
                        g.to_bits(),
                        t.to_bits(),
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
    assert_eq!(seen, [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K]);
    assert!(failures.is_empty(), "mismatches against gguf:\n{}", failures.join("\n"));
}
