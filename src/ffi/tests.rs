//! Argument checking at the C boundary, without a device (these also run under Miri: no Vulkan call is reached).

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use super::api::*;
use super::ggvk_status::{self, *};
use super::guard;

fn last_error() -> String {
    // SAFETY: ggvk_last_error returns a valid NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(ggvk_last_error()) }.to_string_lossy().into_owned()
}

#[test]
fn status_strings_cover_every_code() {
    for (code, name) in [(0, "GGVK_STATUS_OK"), (7, "GGVK_STATUS_DEVICE_LOST"), (9, "GGVK_STATUS_INTERNAL_ERROR")] {
        // SAFETY: static NUL-terminated strings.
        assert_eq!(unsafe { CStr::from_ptr(ggvk_status_string(code)) }.to_str().unwrap(), name);
    }
    for bad in [-1, 10, i32::MAX, i32::MIN] {
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(ggvk_status_string(bad)) }.to_str().unwrap(), "GGVK_STATUS_UNKNOWN");
    }
}

#[test]
fn null_out_pointers_are_invalid_arguments() {
    assert_eq!(ggvk_type_info(GGVK_TYPE_Q4_0, null_mut(), null_mut()), GGVK_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("out_block_bytes is NULL"), "{}", last_error());
    assert_eq!(ggvk_row_size(GGVK_TYPE_F32, 4, null_mut()), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_graph_new(null_mut()), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_init(0, null_mut()), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_tensor_nbytes(null(), null_mut()), GGVK_STATUS_INVALID_ARGUMENT);
    let mut n = 0usize;
    assert_eq!(ggvk_tensor_nbytes(null(), &mut n), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_buffer_size(null(), &mut n), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_buffer_set(null_mut(), 0, null(), 0), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_buffer_get(null_mut(), 0, null_mut(), 4), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_buffer_copy(null_mut(), 0, null_mut(), 0, 4), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_synchronize(null_mut()), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_graph_compute(null_mut(), null()), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_graph_mul_mat(null_mut(), null(), null(), null()), GGVK_STATUS_INVALID_ARGUMENT);
    // SAFETY: NULL is a no-op for every free function.
    unsafe {
        ggvk_free(null_mut());
        ggvk_buffer_free(null_mut());
        ggvk_graph_free(null_mut());
    }
}

#[test]
fn types_and_sizes_are_checked() {
    let (mut bytes, mut elems) = (0usize, 0i64);
    assert_eq!(ggvk_type_info(GGVK_TYPE_Q4_0, &mut bytes, &mut elems), GGVK_STATUS_OK);
    assert_eq!((bytes, elems), (18, 32));
    assert_eq!(ggvk_type_info(12345, &mut bytes, &mut elems), GGVK_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("unknown tensor type 12345"));
    let mut row = 0usize;
    assert_eq!(ggvk_row_size(GGVK_TYPE_Q8_0, 64, &mut row), GGVK_STATUS_OK);
    assert_eq!(row, 68);
    assert_ne!(ggvk_row_size(GGVK_TYPE_Q8_0, 33, &mut row), GGVK_STATUS_OK);
    assert_ne!(ggvk_row_size(GGVK_TYPE_F32, -1, &mut row), GGVK_STATUS_OK);
    assert_ne!(ggvk_row_size(GGVK_TYPE_F32, i64::MAX, &mut row), GGVK_STATUS_OK);
}

#[test]
fn quantize_checks_its_arguments_and_round_trips() {
    let src: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 8.0).collect();
    let mut q = vec![0u8; 36];
    assert_eq!(ggvk_quantize(GGVK_TYPE_Q4_0, src.as_ptr(), q.as_mut_ptr().cast(), 64), GGVK_STATUS_OK);
    let mut back = vec![0f32; 64];
    assert_eq!(ggvk_dequantize(GGVK_TYPE_Q4_0, q.as_ptr().cast(), back.as_mut_ptr(), 64), GGVK_STATUS_OK);
    for (a, b) in src.iter().zip(&back) {
        assert!((a - b).abs() <= 4.0 / 16.0 + 1e-6, "{a} vs {b}");
    }
    assert_eq!(ggvk_quantize(GGVK_TYPE_Q4_0, null(), q.as_mut_ptr().cast(), 64), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_quantize(GGVK_TYPE_Q4_0, src.as_ptr(), null_mut(), 64), GGVK_STATUS_INVALID_ARGUMENT);
    assert_eq!(ggvk_quantize(GGVK_TYPE_Q4_0, src.as_ptr(), q.as_mut_ptr().cast(), -32), GGVK_STATUS_INVALID_ARGUMENT);
    assert_ne!(ggvk_quantize(GGVK_TYPE_Q4_0, src.as_ptr(), q.as_mut_ptr().cast(), 40), GGVK_STATUS_OK);
    assert_eq!(ggvk_dequantize(99, q.as_ptr().cast(), back.as_mut_ptr(), 64), GGVK_STATUS_INVALID_ARGUMENT);
    // Zero elements: nothing is read or written, NULL is fine.
    assert_eq!(ggvk_quantize(GGVK_TYPE_Q8_0, null(), null_mut(), 0), GGVK_STATUS_OK);
}

#[test]
fn graphs_are_created_and_freed() {
    let mut g = null_mut();
    assert_eq!(ggvk_graph_new(&mut g), GGVK_STATUS_OK);
    assert!(!g.is_null());
    // A node whose tensors are NULL is refused; the graph stays usable and is freed once.
    assert_eq!(ggvk_graph_mul_mat(g, null(), null(), null()), GGVK_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("a is NULL"), "{}", last_error());
    // SAFETY: `g` came from ggvk_graph_new and is freed once.
    unsafe { ggvk_graph_free(g) };
}

#[test]
fn panics_become_internal_errors() {
    let s = guard("test", || panic!("boom"));
    assert_eq!(s, ggvk_status::GGVK_STATUS_INTERNAL_ERROR);
    assert!(last_error().contains("boom"), "{}", last_error());
    let s = guard("test", || Err(crate::Error::DeviceLost("gone".into())));
    assert_eq!(s, GGVK_STATUS_DEVICE_LOST);
    assert_eq!(guard("test", || Ok(())), GGVK_STATUS_OK);
    // The last error is per thread.
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
}

#[test]
fn version_string_matches_the_header_constants() {
    // SAFETY: ggvk_version returns a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(ggvk_version()) }.to_str().unwrap();
    assert_eq!(v, format!("{GGVK_VERSION_MAJOR}.{GGVK_VERSION_MINOR}.{GGVK_VERSION_PATCH}"));
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(ggvk_version(), ggvk_version(), "one static string, not a fresh allocation per call");
}
