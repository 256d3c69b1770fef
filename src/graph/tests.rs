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
fn profile_report_groups_dispatches_by_op_family() {
    use crate::vk::DispatchTime;
    let t = |label: &str, micros| DispatchTime { label: label.into(), micros };
    let times = [
        t("#0 MUL_MAT [4096, 1, 1, 1] quantize_q8_1", 5.0),
        t("#0 MUL_MAT [4096, 1, 1, 1] mul_mat_vec_idot", 12.0),
        t("#1 MUL_MAT [4096, 1, 1, 1] mul_mat_vec_idot", 14.0),
        t("#2 ADD [4096, 1, 1, 1] add", 4.0),
    ];
    let r = super::exec::profile_report(&times, 100.0);
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines[0], "ggvk profile: 4 dispatches, 35.0 us GPU time (summed), 100.0 us host recording");
    // Heaviest family first: count, summed and mean GPU time.
    let fam = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
    assert_eq!(fam(2), ["2", "26.0", "13.00", "MUL_MAT", "mul_mat_vec_idot"]);
    assert_eq!(fam(3), ["1", "5.0", "5.00", "MUL_MAT", "quantize_q8_1"]);
    assert_eq!(fam(4), ["1", "4.0", "4.00", "ADD", "add"]);
    // Then every dispatch.
    assert_eq!(lines.len(), 5 + times.len());
}
