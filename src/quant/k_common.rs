//! Shared pieces of the K-quant ("super-block") formats: ggml's `QK_K`, `K_SCALE_SIZE` and the 6-bit
//! scale/min unpacking used by Q4_K and Q5_K.

/// Elements per K-quant super-block (ggml's `QK_K`).
pub const QK_K: usize = 256;

/// Bytes of packed 6-bit scales and mins in Q4_K / Q5_K blocks (ggml's `K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// Scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block, as ggml's `get_scale_min_k4` unpacks them.
///
/// Sub-blocks 0..4 keep their 6-bit scale in the low bits of `q[j]` and their min in the low bits of
/// `q[j + 4]`; sub-blocks 4..8 take the low 4 bits from the nibbles of `q[j + 4]` and the top 2 bits from the
/// top bits of `q[j - 4]` (scale) and `q[j]` (min).
pub fn get_scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (sc, m)
    }
}

/// Checks the lengths of a K-quant row routine, panicking with the routine's name like the other row routines.
pub(crate) fn check_row(name: &str, blocks: usize, values: usize) {
    assert_eq!(values, blocks * QK_K, "{name}: {blocks} blocks of {QK_K} do not fill {values} values");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_unpacking() {
        // Scales 0..8 = 1, 2, .., 8 and mins 0..8 = 40, 41, .., 47, packed by hand following ggml's layout.
        let sc: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
        let mn: [u8; 8] = [40, 41, 42, 43, 44, 45, 46, 47];
        let mut q = [0u8; K_SCALE_SIZE];
        for j in 0..4 {
            q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            q[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            q[j + 8] = (sc[j + 4] & 0x0F) | ((mn[j + 4] & 0x0F) << 4);
        }
        for j in 0..8 {
            assert_eq!(get_scale_min_k4(j, &q), (sc[j], mn[j]), "sub-block {j}");
        }
    }
}
