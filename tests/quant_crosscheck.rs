//! Cross-checks ggvk's CPU quantizers against an independent implementation: the numpy quantizers of the
//! PyPI package `gguf` 0.19.0, which reproduce ggml's C reference bit-exactly.
//!
//! `scripts/quant_crosscheck.py` generates >= 10,000 rows (random distributions plus edge cases) and the
//! expected F16 / Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / BF16 bytes and dequantized floats; this test requires every byte and every float bit
//! to match. The Python interpreter is `$GGVK_PYTHON` (default `python3`); it needs
//! `pip install gguf==0.19.0 numpy`. A missing interpreter or package fails the test.

use std::path::PathBuf;
use std::process::Command;

use ggvk::quant::{dequantize, quantize, GgmlType};

const INSTALL_HINT: &str = "pip install gguf==0.19.0 numpy";

/// Reads little-endian fields out of the vectors file, failing the test on truncation.
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

    fn u16s(&mut self, n: usize) -> Vec<u16> {
        self.take(n * 2).chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()
    }

    fn f32s(&mut self, n: usize) -> Vec<f32> {
        self.take(n * 4).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }
}

struct TypeVectors {
    ty: GgmlType,
    row_bytes: usize,
    quantized: Vec<u8>,
    dequantized: Vec<f32>,
}

struct Vectors {
    n_rows: usize,
    row_len: usize,
    categories: Vec<String>,
    row_cat: Vec<u16>,
    input: Vec<f32>,
    types: Vec<TypeVectors>,
}

fn parse(buf: &[u8]) -> Vectors {
    let mut r = Reader { buf, pos: 0 };
    assert_eq!(r.take(8), b"GGVKQX01", "bad magic in vectors file");
    assert_eq!(r.u32(), 1, "unknown vectors file version");
    let n_rows = r.u32() as usize;
    let row_len = r.u32() as usize;
    assert!(row_len > 0 && row_len % 32 == 0, "bad row length {row_len}");
    let n_cats = r.u32() as usize;
    let categories = (0..n_cats)
        .map(|_| {
            let len = r.u32() as usize;
            String::from_utf8(r.take(len).to_vec()).expect("category name is not UTF-8")
        })
        .collect();
    let row_cat = r.u16s(n_rows);
    let input = r.f32s(n_rows * row_len);
    let n_types = r.u32() as usize;
    let types = (0..n_types)
        .map(|_| {
            let raw = r.u32();
            let ty =
                GgmlType::from_raw(raw as i32).unwrap_or_else(|| panic!("vectors file names unknown ggml type {raw}"));
            let row_bytes = r.u32() as usize;
            assert_eq!(
                row_bytes,
                ty.row_size(row_len as i64).unwrap(),
                "{ty}: row size in file disagrees with GgmlType::row_size"
            );
            let quantized = r.take(n_rows * row_bytes).to_vec();
            let dequantized = r.f32s(n_rows * row_len);
            TypeVectors { ty, row_bytes, quantized, dequantized }
        })
        .collect();
    assert_eq!(r.pos, buf.len(), "trailing bytes in vectors file");
    Vectors { n_rows, row_len, categories, row_cat, input, types }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn generate_vectors() -> Vec<u8> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("scripts").join("quant_crosscheck.py");
    assert!(script.is_file(), "missing {}", script.display());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("quant_crosscheck_{}.bin", std::process::id()));
    let python = std::env::var("GGVK_PYTHON").unwrap_or_else(|_| "python3".to_string());

    let output = Command::new(&python).arg(&script).arg("--out").arg(&out).output().unwrap_or_else(|e| {
        panic!(
            "cannot run the Python interpreter {python:?} ({e}). This test needs Python 3 with gguf \
                 0.19.0 and numpy: {INSTALL_HINT} (or point GGVK_PYTHON at a suitable interpreter)"
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let _ = std::fs::remove_file(&out);
        panic!(
            "{} failed ({}). If gguf or numpy is missing: {INSTALL_HINT}\n--- stdout ---\n{stdout}\n--- stderr \
             ---\n{stderr}",
            script.display(),
            output.status
        );
    }
    print!("{stdout}");
    eprint!("{stderr}");
    let buf = std::fs::read(&out).unwrap_or_else(|e| panic!("cannot read the vectors file {}: {e}", out.display()));
    let _ = std::fs::remove_file(&out);
    buf
}

#[test]
fn quantizers_match_gguf_numpy_reference() {
    let v = parse(&generate_vectors());
    let (n_rows, l) = (v.n_rows, v.row_len);
    assert!(n_rows >= 10_000, "expected at least 10,000 rows, got {n_rows}");
    let mut seen = v.types.iter().map(|t| t.ty).collect::<Vec<_>>();
    seen.sort_by_key(|t| t.raw());
    assert_eq!(
        seen,
        [GgmlType::F16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::BF16]
    );

    let cat = |row: usize| v.categories[v.row_cat[row] as usize].as_str();
    let mut failures: Vec<String> = Vec::new();
    const MAX_REPORTED: usize = 20;

    for t in &v.types {
        let ty = t.ty;
        let bs = ty.block_size();
        let ts = ty.type_size();
        let blocks_per_row = t.row_bytes / ts;
        let mut q_mismatch_blocks = 0usize;
        let mut dq_mismatch_values = 0usize;
        let mut got_q = vec![0u8; t.row_bytes];
        let mut got_y = vec![0f32; l];

        for row in 0..n_rows {
            let x = &v.input[row * l..(row + 1) * l];
            let want_q = &t.quantized[row * t.row_bytes..(row + 1) * t.row_bytes];
            let want_y = &t.dequantized[row * l..(row + 1) * l];

            quantize(ty, x, &mut got_q).unwrap();
            for b in 0..blocks_per_row {
                let (g, w) = (&got_q[b * ts..(b + 1) * ts], &want_q[b * ts..(b + 1) * ts]);
                if g != w {
                    q_mismatch_blocks += 1;
                    if failures.len() < MAX_REPORTED {
                        failures.push(format!(
                            "{ty} quantize: row {row} ({}) block {b}: got {} want {}; input {:?}",
                            cat(row),
                            hex(g),
                            hex(w),
                            &x[b * bs..(b + 1) * bs]
                        ));
                    }
                }
            }

            // Dequantize the expected bytes, so a quantize bug does not hide or cause a dequantize failure.
            dequantize(ty, want_q, &mut got_y).unwrap();
            for (i, (g, w)) in got_y.iter().zip(want_y).enumerate() {
                // Bitwise comparison: distinguishes -0.0 from 0.0, and NaN payloads.
                if g.to_bits() != w.to_bits() {
                    dq_mismatch_values += 1;
                    if failures.len() < MAX_REPORTED {
                        let b = i / bs;
                        failures.push(format!(
                            "{ty} dequantize: row {row} ({}) element {i}: got {g:e} ({:#010x}) want {w:e} \
                             ({:#010x}); block bytes {}",
                            cat(row),
                            g.to_bits(),
                            w.to_bits(),
                            hex(&want_q[b * ts..(b + 1) * ts])
                        ));
                    }
                }
            }
        }

        let total_blocks = n_rows * blocks_per_row;
        println!(
            "{ty}: {n_rows} rows x {l} values, {total_blocks} blocks quantized and compared ({q_mismatch_blocks} \
             mismatched), {} values dequantized and compared ({dq_mismatch_values} mismatched)",
            n_rows * l
        );
    }

    assert!(
        failures.is_empty(),
        "mismatches against the gguf reference (first {}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
