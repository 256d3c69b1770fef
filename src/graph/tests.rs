//! Engine reports that need no device (also run under Miri).

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
