//! Layout arithmetic of the IR that needs no device (also run under Miri).

use super::Tensor;
use crate::quant::GgmlType;

#[test]
fn contiguous_strides_follow_ggml() {
    assert_eq!(Tensor::contiguous_strides(GgmlType::F32, [4, 3, 2, 1]).unwrap(), [4, 16, 48, 96]);
    assert_eq!(Tensor::contiguous_strides(GgmlType::Q4_0, [64, 3, 1, 1]).unwrap(), [18, 36, 108, 108]);
    assert_eq!(Tensor::contiguous_strides(GgmlType::Q8_0, [32, 1, 1, 1]).unwrap(), [34, 34, 34, 34]);
    assert_eq!(Tensor::contiguous_strides(GgmlType::F16, [0, 5, 1, 1]).unwrap(), [2, 0, 0, 0]);
}

#[test]
fn malformed_shapes_are_errors_not_panics() {
    assert!(Tensor::contiguous_strides(GgmlType::F32, [-1, 1, 1, 1]).is_err());
    assert!(Tensor::contiguous_strides(GgmlType::F32, [1, 1, -3, 1]).is_err());
    assert!(Tensor::contiguous_strides(GgmlType::Q4_0, [33, 1, 1, 1]).is_err());
    assert!(Tensor::contiguous_strides(GgmlType::F32, [i64::MAX, 2, 1, 1]).is_err());
    assert!(Tensor::contiguous_strides(GgmlType::F32, [1 << 20, 1 << 20, 1 << 20, 1 << 20]).is_err());
}

#[test]
fn source_precision_levels_follow_ggml() {
    use super::SrcPrec;
    for level in [SrcPrec::Any, SrcPrec::F32, SrcPrec::Bf16, SrcPrec::F16, SrcPrec::Q8, SrcPrec::Q4] {
        assert_eq!(SrcPrec::from_ggml(level.ggml()), Some(level));
    }
    assert_eq!(SrcPrec::from_ggml(0), Some(SrcPrec::Any));
    assert_eq!(SrcPrec::from_ggml(10), Some(SrcPrec::F32));
    assert_eq!(SrcPrec::from_ggml(7), None);
    // Each level allows itself and every finer form: F32 and BF16 no f16 copy, nothing above Q8 its 8-bit blocks.
    let allows = |p: SrcPrec| (p.allows_f16(), p.allows_q8());
    assert_eq!(allows(SrcPrec::Any), (true, true));
    assert_eq!(allows(SrcPrec::F32), (false, false));
    assert_eq!(allows(SrcPrec::Bf16), (false, false));
    assert_eq!(allows(SrcPrec::F16), (true, false));
    assert_eq!(allows(SrcPrec::Q8), (true, true));
    assert_eq!(allows(SrcPrec::Q4), (true, true));
}
