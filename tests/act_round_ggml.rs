//! ggvk's CPU reference of activation rounding (`ggvk::quant::round_activations`) against ggml's CPU backend
//! itself (its `from_float` for Q8_0, Q8_1, Q8_K, BF16, run by `tests/e2e/act_round_ref.c`), bit for bit. Needs the
//! reference llama.cpp build, so it is ignored by default; `scripts/act_round_crosscheck.sh` writes the inputs and
//! ggml's outputs to `$GGVK_ACT_XCHECK_DIR` and runs it.

use ggvk::quant::{round_activations_to_vec, ActRounding};

fn read(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
#[ignore = "needs ggml's outputs: run scripts/act_round_crosscheck.sh"]
fn rounding_matches_ggml_cpu_backend() {
    let dir = std::path::PathBuf::from(std::env::var("GGVK_ACT_XCHECK_DIR").expect("GGVK_ACT_XCHECK_DIR"));
    let x = read(&dir.join("in.bin"));
    assert!(x.len() >= 256 * 64, "too few inputs: {}", x.len());
    for (r, file) in [
        (ActRounding::Q8_0, "q8_0"),
        (ActRounding::Q8_0, "q8_1"),
        (ActRounding::Q8K, "q8_k"),
        (ActRounding::Bf16, "bf16"),
    ] {
        let want = read(&dir.join(format!("{file}.bin")));
        assert_eq!(want.len(), x.len(), "{file}");
        let got = round_activations_to_vec(r, &x);
        let changed = want.iter().zip(&x).filter(|(w, x)| w.to_bits() != x.to_bits()).count();
        println!("{file}: {} values, {changed} changed by ggml's rounding", x.len());
        assert!(changed > x.len() / 2, "{file}: ggml changed only {changed} values");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{file}: value {i} (input {:e}): ggvk {g:e}, ggml {w:e}", x[i]);
        }
    }
}
