//! The decode kernel's plan (`flash_attn_decode.comp`): token generation and small batches over F16, Q8_0 and
//! Q4_0 caches, the rows of a KV head in one or two workgroups, keys split over workgroups.

use super::{Plan, DECODE_MAX_KV_ROWS, DECODE_MAX_ROWS, MAX_HEAD, WG};
use crate::ir::{Node, Tensor};
use crate::quant::GgmlType;
use crate::vk::Device;

/// The decode kernel's plan (`flash_attn_decode.comp`: one tile of WG keys per step, the rows of a KV head in
/// [`row_blocks`] workgroups of at most [`DECODE_MAX_ROWS`]) when it applies: K and V each F16, Q8_0 or Q4_0 (the
/// quantized ones with head sizes a multiple of 32), at most [`DECODE_MAX_KV_ROWS`] rows per KV head, every head
/// size the op takes ([`MAX_HEAD`]) with DK a multiple of 8, F16 K rows on 16-byte boundaries, a device with subgroup
/// arithmetic and the shared memory a block's Q rows take; `GGVK_FA_DECODE=0` keeps the general kernel (read once
/// per process). Keys are split over workgroups as the general plan does, in whole tiles.
pub(super) fn decode_plan(device: &Device, node: &Node) -> Option<Plan> {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*KNOB.get_or_init(|| crate::knobs::switch("GGVK_FA_DECODE", true)) {
        return None;
    }
    let (q, k, v) = (node.src(0).ok()?, node.src(1).ok()?, node.src(2).ok()?);
    let caps = device.caps();
    let rows = q.ne[1] * (q.ne[2] / k.ne[2]);
    // F16 K rows are read as 16-byte vectors; Q8_0 / Q4_0 rows (K or V) block by block in 16-bit words.
    let kv_ok = |t: &Tensor, dim: i64| match t.ty {
        GgmlType::F16 => true,
        GgmlType::Q8_0 | GgmlType::Q4_0 => dim % 32 == 0,
        _ => false,
    };
    let k_rows_ok = k.ty != GgmlType::F16 || (k.offset % 16 == 0 && k.nb[1..].iter().all(|s| s % 16 == 0));
    let fits = caps.subgroup_arithmetic
        && kv_ok(k, q.ne[0])
        && kv_ok(v, v.ne[0])
        && (1..=i64::from(DECODE_MAX_KV_ROWS)).contains(&rows)
        && q.ne[0] % 8 == 0
        && q.ne[0] <= MAX_HEAD
        && v.ne[0] <= MAX_HEAD
        && k_rows_ok;
    if !fits {
        return None;
    }
    let rows = rows as u32;
    let (blocks, br) = row_blocks(rows);
    // Q rows as vec4, then probabilities and two reduction slots per row and thread, and the vector V path's
    // partial outputs (8 per thread).
    let shared = 4 * (br * q.ne[0] as u32 + 3 * br * WG + 8 * WG);
    if shared > caps.max_shared_memory {
        return None;
    }
    let n_kv = k.ne[1] as u32;
    let groups = u64::from(blocks) * (k.ne[2] * q.ne[3]) as u64;
    let (target, min_keys) = decode_split_shape(br, n_kv);
    let mut splits = 1;
    if n_kv >= 2 * WG && groups < 512 {
        splits = (target.div_ceil(groups) as u32).min(n_kv / min_keys).max(1);
    }
    let chunk = n_kv.div_ceil(splits).div_ceil(WG) * WG;
    let splits = n_kv.div_ceil(chunk);
    Some(Plan { br, bc: WG, splits, chunk: if splits == 1 { n_kv } else { chunk } })
}

/// How the decode kernel spreads `rows` rows of one KV head over workgroups: (workgroups, rows per workgroup), as
/// few workgroups as take at most [`DECODE_MAX_ROWS`] rows each (every one reads all of the head's keys and
/// values), the rows balanced between them.
pub(super) fn row_blocks(rows: u32) -> (u32, u32) {
    let blocks = rows.div_ceil(DECODE_MAX_ROWS).max(1);
    (blocks, rows.div_ceil(blocks))
}

/// How the decode kernel splits the keys: (workgroups aimed at over all KV heads, fewest keys per split). With four
/// or more query rows per KV head (GQA) and more than 4,096 keys: about 512 workgroups of at least 256 keys; with
/// fewer rows and more than 8,192 keys: about 512 of at least 128; else about 1,024 of at least 128. Measured on an
/// H200 (NOTES.md, 2026-12-05): with 4 rows per KV head (hs 128, 8 KV heads, F16) the first took 34.2 / 59.0 / 93.2
/// us at 8k / 16k / 32k keys against 39.5 / 67.4 / 113.8 with the last, with 8 rows (hs 64, 7,680 keys) 31.3 against
/// 43.1; but at 4k keys 24.7 against 18.6, and a 7B model without GQA generated 278.5 / 194.9 t/s (depth 0 / 8192)
/// against 297.2 / 201.4. With one row per KV head (H100, same shape) 512 workgroups took 35.0 / 62.4 us at 16k /
/// 32k keys against 45.6 / 87.3, and 16.1 against 16.0 at 8k. `GGVK_FA_DECODE_GROUPS` and
/// `GGVK_FA_DECODE_MIN_KEYS` override both (read once per process).
fn decode_split_shape(rows: u32, n_kv: u32) -> (u64, u32) {
    static KNOBS: std::sync::OnceLock<(Option<u64>, Option<u32>)> = std::sync::OnceLock::new();
    let (target, min_keys) = *KNOBS.get_or_init(|| {
        (
            crate::knobs::number("GGVK_FA_DECODE_GROUPS"),
            crate::knobs::number("GGVK_FA_DECODE_MIN_KEYS").map(|v| v as u32),
        )
    });
    let (t, k) = if rows >= 4 && n_kv > 4096 {
        (512, 256)
    } else if n_kv > 8192 {
        (512, WG)
    } else {
        (1024, WG)
    };
    (target.unwrap_or(t), min_keys.unwrap_or(k).max(WG))
}

/// Whether the decode kernel reads V rows as 16-byte vectors (`VEC_V`): head size `dv` a multiple of 8 whose
/// 16-byte pieces (one per thread of a key group) fit the workgroup, V's offset and strides (16-bit words) multiples
/// of 8.
pub(super) fn vector_v(dv: i64, v_words: &[u32]) -> bool {
    dv % 8 == 0 && dv / 8 <= i64::from(WG) && v_words.iter().all(|w| w % 8 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_splits_are_wider_for_gqa_past_4096_keys_and_past_8192_keys() {
        // (No GGVK_FA_DECODE_* knobs in the unit tests' environment.)
        assert_eq!(decode_split_shape(1, 8192), (1024, 128));
        assert_eq!(decode_split_shape(4, 4096), (1024, 128));
        assert_eq!(decode_split_shape(3, 8192), (1024, 128));
        assert_eq!(decode_split_shape(1, 8193), (512, 128));
        assert_eq!(decode_split_shape(3, 32768), (512, 128));
        assert_eq!(decode_split_shape(4, 4097), (512, 256));
        assert_eq!(decode_split_shape(8, 7680), (512, 256));
    }

    #[test]
    fn decode_reads_v_as_vectors_only_where_rows_sit_on_16_bytes() {
        assert!(vector_v(128, &[0, 128, 128 * 256, 0]));
        assert!(vector_v(64, &[8, 64, 64 * 512, 64 * 512 * 32]));
        assert!(!vector_v(128, &[4, 128, 128 * 256, 0]), "offset");
        assert!(!vector_v(128, &[0, 132, 132 * 256, 0]), "row stride");
        assert!(!vector_v(68, &[0, 72, 72 * 256, 0]), "head size not a multiple of 8");
        assert!(vector_v(256, &[0, 256, 256 * 256, 0]), "Gemma's heads: 32 threads a row, 4 key groups");
        assert!(vector_v(512, &[0, 576, 576 * 4096, 0]), "DeepSeek's V: 64 threads a row, 2 key groups");
        assert!(!vector_v(1032, &[0, 1032, 1032 * 256, 0]), "more 16-byte pieces than threads");
    }

    #[test]
    fn decode_rows_go_to_as_few_workgroups_of_at_most_8_rows_as_hold_them() {
        assert_eq!(row_blocks(1), (1, 1));
        assert_eq!(row_blocks(8), (1, 8));
        assert_eq!(row_blocks(12), (2, 6));
        assert_eq!(row_blocks(16), (2, 8));
        assert_eq!(row_blocks(17), (3, 6));
        assert!((1..=DECODE_MAX_KV_ROWS).all(|r| {
            let (b, br) = row_blocks(r);
            br <= DECODE_MAX_ROWS && b * br >= r && (b - 1) * br < r
        }));
    }
}
