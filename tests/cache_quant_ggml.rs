//! The K/V cache quantizers and those of Q1_0, Q2_0, NVFP4 (SET_ROWS into Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q1_0, Q2_0,
//! NVFP4 on the GPU, and ggvk's CPU references) against ggml's own reference quantizers, byte for byte; and the
//! dequantizers of Q1_0, Q2_0, NVFP4 (GET_ROWS on the GPU, ggvk's CPU references) against ggml's `dequantize_row_*`,
//! bit for bit. Needs ggml's outputs, written by `scripts/cache_quant_crosscheck.sh` (ctypes on the pinned build's
//! libggml-base), so it is ignored by default.

mod common;

use common::*;
use ggvk::quant::{self, GgmlType};
use ggvk::{Graph, Node, Op};

#[test]
#[ignore = "needs ggml's outputs: run scripts/cache_quant_crosscheck.sh"]
fn cache_quantizers_match_ggml() {
    let dir = std::path::PathBuf::from(std::env::var("GGVK_CACHE_XCHECK_DIR").expect("GGVK_CACHE_XCHECK_DIR"));
    let raw = std::fs::read(dir.join("in.bin")).unwrap();
    let x: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let be = backend();
    let ne0 = 1024i64;
    let rows = x.len() as i64 / ne0;
    let src = upload(&be, GgmlType::F32, [ne0, rows, 1, 1], &f32_bytes(&x));
    let idx: Vec<u8> = (0..rows).flat_map(|i| i.to_ne_bytes()).collect();
    let it = upload(&be, GgmlType::I64, [rows, 1, 1, 1], &idx);
    for (ty, name) in [
        (GgmlType::Q4_0, "q4_0"),
        (GgmlType::Q4_1, "q4_1"),
        (GgmlType::Q5_0, "q5_0"),
        (GgmlType::Q5_1, "q5_1"),
        (GgmlType::IQ4_NL, "iq4_nl"),
        (GgmlType::Q1_0, "q1_0"),
        (GgmlType::Q2_0, "q2_0"),
        (GgmlType::NVFP4, "nvfp4"),
    ] {
        let want = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
        let cpu = quant::quantize_to_vec(ty, &x).unwrap();
        let d = upload(&be, ty, [ne0, rows, 1, 1], &vec![0u8; want.len()]);
        let mut g = Graph::new();
        g.push(Node { op: Op::SetRows, src: vec![Some(src.clone()), Some(it.clone())], dst: d.clone() }).unwrap();
        be.compute(&g).unwrap();
        let mut gpu = vec![0u8; want.len()];
        d.read(0, &mut gpu).unwrap();
        let bs = ty.type_size();
        // ggml leaves the codes of an IQ4_NL block with scale 0 unset (whatever its scratch held): such blocks
        // match when both scales are 0.
        let same = |g: &[u8], w: &[u8]| g == w || (ty == GgmlType::IQ4_NL && g[..2] == [0, 0] && w[..2] == [0, 0]);
        let diff = |got: &[u8]| {
            (0..want.len() / bs).filter(|&b| !same(&got[b * bs..(b + 1) * bs], &want[b * bs..(b + 1) * bs])).count()
        };
        let (c, g) = (diff(&cpu), diff(&gpu));
        eprintln!("{name}: {} blocks, CPU reference differs in {c}, GPU SET_ROWS in {g}", want.len() / bs);
        assert_eq!((c, g), (0, 0), "{name}: blocks that differ from ggml's (CPU reference, GPU)");
    }
    for (ty, name) in [(GgmlType::Q1_0, "q1_0"), (GgmlType::Q2_0, "q2_0"), (GgmlType::NVFP4, "nvfp4")] {
        let blocks = std::fs::read(dir.join(format!("dq_{name}.blocks"))).unwrap();
        let raw = std::fs::read(dir.join(format!("dq_{name}.f32"))).unwrap();
        let want: Vec<u32> = raw.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let nb = blocks.len() / ty.type_size();
        let qk = ty.block_size();
        let cpu = quant::dequantize_to_f32(ty, &blocks, nb * qk).unwrap();
        // GET_ROWS of every block as one row each.
        let a = upload(&be, ty, [qk as i64, nb as i64, 1, 1], &blocks);
        let idx: Vec<u8> = (0..nb as i32).flat_map(|i| i.to_ne_bytes()).collect();
        let it = upload(&be, GgmlType::I32, [nb as i64, 1, 1, 1], &idx);
        let d = output(&be, [qk as i64, nb as i64, 1, 1]);
        let mut g = Graph::new();
        g.push(Node { op: Op::GetRows, src: vec![Some(a), Some(it)], dst: d.clone() }).unwrap();
        be.compute(&g).unwrap();
        let gpu = download(&d);
        let diff = |got: &[f32]| got.iter().zip(&want).filter(|(g, w)| g.to_bits() != **w).count();
        let (c, g) = (diff(&cpu), diff(&gpu));
        eprintln!("{name}: {nb} blocks dequantized, CPU reference differs in {c} values, GPU GET_ROWS in {g}");
        assert_eq!((c, g), (0, 0), "{name}: values that differ from ggml's dequantize_row (CPU reference, GPU)");
    }
    assert_no_validation_errors();
}
