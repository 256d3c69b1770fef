//! Argument checking at the C boundary, without a device (these also run under Miri: no Vulkan call is reached).

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use super::api::*;
use super::ggvk_status::{self, *};
use super::guard;
use super::node::*;

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
    assert_eq!(ggvk_buffer_get_async(null_mut(), null_mut(), 0, null_mut(), 4), GGVK_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("backend is NULL"), "{}", last_error());
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
    assert!(last_error().contains("src[0] (weights a) is NULL"), "{}", last_error());
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

// ---- ggvk_graph_node: the descriptor checks, none of which needs a device ----

/// A descriptor for `op` at ggvk_node_desc_init's defaults.
fn desc(op: i32) -> ggvk_node_desc {
    let mut d = ggvk_node_desc::default();
    assert_eq!(ggvk_node_desc_init(&mut d, op), GGVK_STATUS_OK);
    d
}

/// A tensor description whose buffer is NULL: it is never reached by the checks below unless they pass, where it
/// is refused without a device.
fn no_buffer() -> ggvk_tensor {
    ggvk_tensor { r#type: GGVK_TYPE_F32, ne: [4, 1, 1, 1], nb: [4, 16, 16, 16], buffer: null_mut(), offset: 0 }
}

/// Append `d` to a fresh graph; the status and the message.
fn append(d: &ggvk_node_desc) -> (ggvk_status, String) {
    let mut g = null_mut();
    assert_eq!(ggvk_graph_new(&mut g), GGVK_STATUS_OK);
    let s = ggvk_graph_node(g, d);
    let msg = last_error();
    // SAFETY: `g` came from ggvk_graph_new and is freed once.
    unsafe { ggvk_graph_free(g) };
    (s, msg)
}

#[track_caller]
fn refused(d: &ggvk_node_desc, status: ggvk_status, needle: &str) {
    let (s, msg) = append(d);
    assert_eq!(s, status, "{msg}");
    assert!(msg.starts_with("ggvk_graph_node: "), "{msg}");
    assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
}

#[test]
fn node_call_needs_a_graph_and_a_descriptor() {
    let d = desc(ggvk_op::GGVK_OP_ADD as i32);
    assert_eq!(ggvk_graph_node(null_mut(), &d), GGVK_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("graph is NULL"), "{}", last_error());
    let mut g = null_mut();
    assert_eq!(ggvk_graph_new(&mut g), GGVK_STATUS_OK);
    assert_eq!(ggvk_graph_node(g, null()), GGVK_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("desc is NULL"), "{}", last_error());
    // SAFETY: `g` came from ggvk_graph_new and is freed once.
    unsafe { ggvk_graph_free(g) };
    assert_eq!(ggvk_node_desc_init(null_mut(), 1), GGVK_STATUS_INVALID_ARGUMENT);
}

#[test]
fn unknown_ops_are_invalid_arguments() {
    for bad in [-1, 29, 1000, i32::MAX, i32::MIN] {
        refused(&desc(bad), GGVK_STATUS_INVALID_ARGUMENT, &format!("unknown op {bad}"));
    }
    // A zeroed descriptor names no op.
    refused(&ggvk_node_desc::default(), GGVK_STATUS_INVALID_ARGUMENT, "GGVK_OP_NONE");
}

#[test]
fn every_op_decodes_to_the_engine_op_of_its_name() {
    let x = no_buffer();
    for raw in 1..=28 {
        let mut d = desc(raw);
        d.params.unary.kind = 1;
        d.params.glu.kind = 1;
        d.params.rope.n_dims = 2;
        // Every source slot set would be too many for most ops: set them one by one until the count fits.
        let mut ok = None;
        for n in 0..=GGVK_MAX_SRC {
            for (i, s) in d.src.iter_mut().enumerate() {
                *s = if i < n { &x } else { null() };
            }
            d.dst = &x;
            if let Ok(s) = super::node::decode_for_test(&d) {
                ok = Some((n, s));
                break;
            }
        }
        let (n, s) = ok.unwrap_or_else(|| panic!("op {raw} never decodes"));
        let (c_name, engine) = s.split_once(' ').unwrap();
        // SAFETY: ggvk_op_name returns a static NUL-terminated string.
        let named = unsafe { CStr::from_ptr(ggvk_op_name(raw)) }.to_str().unwrap();
        assert_eq!(named, c_name);
        let engine_name = match engine.split(['(', ' ', '{']).next().unwrap() {
            "MulMat" => "MUL_MAT",
            "MulMatId" => "MUL_MAT_ID",
            "Rope" => "ROPE",
            "Add" => "ADD",
            "Mul" => "MUL",
            "Sub" => "SUB",
            "Div" => "DIV",
            "Scale" => "SCALE",
            "Unary" => "UNARY",
            "Clamp" => "CLAMP",
            "LeakyRelu" => "LEAKY_RELU",
            "Glu" => "GLU",
            "Cpy" => "CPY",
            "RmsNorm" => "RMS_NORM",
            "Norm" => "NORM",
            "L2Norm" => "L2_NORM",
            "GroupNorm" => "GROUP_NORM",
            "SoftMax" => "SOFT_MAX",
            "GetRows" => "GET_ROWS",
            "SetRows" => "SET_ROWS",
            "SumRows" => "SUM_ROWS",
            "Mean" => "MEAN",
            "Sum" => "SUM",
            "ArgMax" => "ARGMAX",
            "AddId" => "ADD_ID",
            "ArgSort" => "ARGSORT",
            "TopK" => "TOP_K",
            "FlashAttnExt" => "FLASH_ATTN_EXT",
            other => panic!("engine op {other}"),
        };
        assert_eq!(c_name, format!("GGVK_OP_{engine_name}"), "op {raw}");
        // The required sources are the leading ones: one fewer is refused, naming the missing source.
        if n > 0 {
            d.src[n - 1] = null();
            refused(&d, GGVK_STATUS_INVALID_ARGUMENT, &format!("src[{}]", n - 1));
            refused(&d, GGVK_STATUS_INVALID_ARGUMENT, "is NULL but required");
        }
    }
    // SAFETY: static strings.
    assert_eq!(unsafe { CStr::from_ptr(ggvk_op_name(0)) }.to_str().unwrap(), "GGVK_OP_NONE");
    for bad in [-1, 29, i32::MAX] {
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(ggvk_op_name(bad)) }.to_str().unwrap(), "GGVK_OP_UNKNOWN");
    }
}

#[test]
fn unary_and_glu_kinds_follow_the_c_numbering() {
    use ggvk_glu_op::*;
    use ggvk_unary_op::*;
    let unary = [
        GGVK_UNARY_SILU,
        GGVK_UNARY_ABS,
        GGVK_UNARY_SGN,
        GGVK_UNARY_NEG,
        GGVK_UNARY_STEP,
        GGVK_UNARY_TANH,
        GGVK_UNARY_ELU,
        GGVK_UNARY_RELU,
        GGVK_UNARY_SIGMOID,
        GGVK_UNARY_GELU,
        GGVK_UNARY_GELU_QUICK,
        GGVK_UNARY_HARDSWISH,
        GGVK_UNARY_HARDSIGMOID,
        GGVK_UNARY_EXP,
        GGVK_UNARY_EXPM1,
        GGVK_UNARY_SOFTPLUS,
        GGVK_UNARY_GELU_ERF,
        GGVK_UNARY_FLOOR,
        GGVK_UNARY_CEIL,
        GGVK_UNARY_ROUND,
        GGVK_UNARY_TRUNC,
        GGVK_UNARY_SQR,
        GGVK_UNARY_SQRT,
        GGVK_UNARY_SIN,
        GGVK_UNARY_COS,
        GGVK_UNARY_LOG,
    ];
    let x = no_buffer();
    let squash = |s: &str| s.replace('_', "").to_uppercase();
    for k in unary {
        let mut d = desc(ggvk_op::GGVK_OP_UNARY as i32);
        d.src[0] = &x;
        d.dst = &x;
        d.params.unary.kind = k as i32;
        let s = super::node::decode_for_test(&d).unwrap();
        let c = format!("{k:?}");
        assert_eq!(squash(&s), squash(&format!("GGVK_OP_UNARY Unary({})", &c["GGVK_UNARY_".len()..])), "{s}");
    }
    for k in [GGVK_GLU_SWIGLU, GGVK_GLU_REGLU, GGVK_GLU_GEGLU, GGVK_GLU_GEGLU_ERF, GGVK_GLU_GEGLU_QUICK] {
        let mut d = desc(ggvk_op::GGVK_OP_GLU as i32);
        d.src[0] = &x;
        d.dst = &x;
        d.params.glu.kind = k as i32;
        let s = super::node::decode_for_test(&d).unwrap();
        let c = format!("{k:?}");
        assert!(squash(&s).contains(&squash(&format!("Glu {{ op: {}", &c["GGVK_GLU_".len()..]))), "{s} vs {c}");
    }
}

#[test]
fn bad_parameters_are_refused_with_the_field_named() {
    use ggvk_op::*;
    let x = no_buffer();
    let with = |op: ggvk_op, f: &dyn Fn(&mut ggvk_node_desc)| {
        let mut d = desc(op as i32);
        d.src[0] = &x;
        d.dst = &x;
        if matches!(op, GGVK_OP_ROPE) {
            d.src[1] = &x;
            d.params.rope.n_dims = 2;
        }
        f(&mut d);
        d
    };
    let inv = GGVK_STATUS_INVALID_ARGUMENT;
    refused(&with(GGVK_OP_UNARY, &|_| {}), inv, "params.unary.kind = 0 is not a ggvk_unary_op");
    refused(&with(GGVK_OP_UNARY, &|d| d.params.unary.kind = 27), inv, "params.unary.kind = 27");
    refused(&with(GGVK_OP_UNARY, &|d| d.params.unary.kind = -3), inv, "params.unary.kind = -3");
    refused(&with(GGVK_OP_GLU, &|_| {}), inv, "params.glu.kind = 0");
    refused(&with(GGVK_OP_GLU, &|d| d.params.glu.kind = 6), inv, "params.glu.kind = 6");
    let swapped2 = |d: &mut ggvk_node_desc| {
        d.params.glu.kind = 1;
        d.params.glu.swapped = 2;
    };
    refused(&with(GGVK_OP_GLU, &swapped2), inv, "params.glu.swapped = 2 must be 0 or 1");
    let split_swapped = |d: &mut ggvk_node_desc| {
        d.params.glu.kind = 1;
        d.params.glu.swapped = 1;
        d.src[1] = d.src[0];
    };
    refused(&with(GGVK_OP_GLU, &split_swapped), inv, "split form");
    for op in [GGVK_OP_RMS_NORM, GGVK_OP_NORM, GGVK_OP_L2_NORM, GGVK_OP_GROUP_NORM] {
        refused(&with(op, &|d| d.params.norm.eps = -1e-6), inv, "params.norm.eps = -0.000001 must be finite and >= 0");
        refused(&with(op, &|d| d.params.norm.eps = f32::NAN), inv, "params.norm.eps = NaN");
        refused(&with(op, &|d| d.params.norm.eps = f32::INFINITY), inv, "params.norm.eps = inf");
    }
    refused(&with(GGVK_OP_GROUP_NORM, &|d| d.params.norm.groups = 0), inv, "params.norm.groups = 0 must be >= 1");
    refused(&with(GGVK_OP_SOFT_MAX, &|d| d.params.soft_max.max_bias = -1.0), inv, "params.soft_max.max_bias");
    refused(&with(GGVK_OP_SOFT_MAX, &|d| d.params.soft_max.scale = f32::INFINITY), inv, "params.soft_max.scale");
    refused(&with(GGVK_OP_SCALE, &|d| d.params.scale.s = f32::NAN), inv, "params.scale.s is NaN");
    refused(&with(GGVK_OP_SCALE, &|d| d.params.scale.b = f32::NAN), inv, "params.scale.b is NaN");
    refused(&with(GGVK_OP_CLAMP, &|d| d.params.clamp.max = f32::NAN), inv, "params.clamp.max is NaN");
    refused(&with(GGVK_OP_LEAKY_RELU, &|d| d.params.leaky_relu.slope = f32::NAN), inv, "slope is NaN");
    refused(&with(GGVK_OP_ARGSORT, &|d| d.params.argsort.order = 2), inv, "params.argsort.order = 2");
    refused(&with(GGVK_OP_FLASH_ATTN_EXT, &|d| d.params.flash_attn.prec = 1), inv, "params.flash_attn.prec = 1");
    refused(&with(GGVK_OP_FLASH_ATTN_EXT, &|d| d.params.flash_attn.softcap = -1.0), inv, "params.flash_attn.softcap");
    refused(&with(GGVK_OP_FLASH_ATTN_EXT, &|d| d.params.flash_attn.max_bias = f32::NAN), inv, "max_bias = NaN");
    refused(&with(GGVK_OP_FLASH_ATTN_EXT, &|d| d.params.flash_attn.scale = f32::NEG_INFINITY), inv, "scale = -inf");
    refused(&with(GGVK_OP_ROPE, &|d| d.params.rope.n_dims = 3), inv, "params.rope.n_dims = 3 must be even");
    refused(&with(GGVK_OP_ROPE, &|d| d.params.rope.n_dims = 0), inv, "params.rope.n_dims = 0");
    refused(&with(GGVK_OP_ROPE, &|d| d.params.rope.freq_base = 0.0), inv, "params.rope.freq_base = 0 must be > 0");
    refused(&with(GGVK_OP_ROPE, &|d| d.params.rope.ext_factor = f32::NAN), inv, "params.rope.ext_factor");
    refused(&with(GGVK_OP_ROPE, &|d| d.params.rope.mode = 1), GGVK_STATUS_UNSUPPORTED, "params.rope.mode = 1");
    refused(&with(GGVK_OP_ADD, &|d| d.params.reserved[3] = 7), inv, "params.reserved[3] = 7 must be 0");
    // The same parameters at their defaults pass the descriptor checks and reach the tensors, here refused for
    // their NULL buffer (the message names the tensor).
    refused(&with(GGVK_OP_RMS_NORM, &|_| {}), inv, "GGVK_OP_RMS_NORM: src[0] (x)->buffer is NULL");
    refused(&with(GGVK_OP_SOFT_MAX, &|_| {}), inv, "GGVK_OP_SOFT_MAX: src[0] (x)->buffer is NULL");
    refused(&with(GGVK_OP_ROPE, &|_| {}), inv, "GGVK_OP_ROPE: src[0] (x)->buffer is NULL");
    refused(&with(GGVK_OP_FLASH_ATTN_EXT, &|d| d.src[1..3].copy_from_slice(&[&x, &x])), inv, "(q)->buffer is NULL");
    // Unused members of params are not read: garbage there does not matter.
    let garbage = |d: &mut ggvk_node_desc| {
        d.params.unary.kind = -99;
        d.params.norm.eps = f32::NAN;
        d.params.rope.n_dims = 3;
    };
    refused(&with(GGVK_OP_SCALE, &garbage), inv, "GGVK_OP_SCALE: src[0] (x)->buffer is NULL");
}

#[test]
fn sources_are_counted_and_dst_is_required() {
    use ggvk_op::*;
    let x = no_buffer();
    let inv = GGVK_STATUS_INVALID_ARGUMENT;
    let mut d = desc(GGVK_OP_ADD as i32);
    d.src = [&x, &x, &x, null(), null()];
    d.dst = &x;
    refused(&d, inv, "GGVK_OP_ADD takes 2 source(s) (a, b); src[2] must be NULL");
    d.src[2] = null();
    d.src[4] = &x;
    refused(&d, inv, "src[4] must be NULL");
    d.src[4] = null();
    d.src[1] = null();
    refused(&d, inv, "GGVK_OP_ADD: src[1] (b) is NULL but required");
    d.src[1] = &x;
    d.dst = null();
    refused(&d, inv, "GGVK_OP_ADD: dst is NULL");
    // Optional sources may be left out anywhere: sinks without a mask.
    let mut d = desc(GGVK_OP_SOFT_MAX as i32);
    d.src = [&x, null(), &x, null(), null()];
    d.dst = &x;
    refused(&d, inv, "src[0] (x)->buffer is NULL");
    d.src[3] = &x;
    refused(&d, inv, "GGVK_OP_SOFT_MAX takes 3 source(s) (x, mask, sinks); src[3] must be NULL");
    // The wrappers go through the same checks.
    let mut g = null_mut();
    assert_eq!(ggvk_graph_new(&mut g), GGVK_STATUS_OK);
    assert_eq!(ggvk_graph_mul_mat(g, &x, null(), &x), inv);
    assert!(
        last_error().starts_with("ggvk_graph_mul_mat: invalid argument: GGVK_OP_MUL_MAT: src[1] (b) is NULL"),
        "{}",
        last_error()
    );
    let mut rp = desc(GGVK_OP_ROPE as i32).params.rope;
    assert_eq!(ggvk_graph_rope(g, &x, &x, null(), &x, &rp), inv);
    assert!(last_error().contains("params.rope.n_dims = 0"), "{}", last_error());
    rp.n_dims = 2;
    assert_eq!(ggvk_graph_rope(g, &x, &x, null(), &x, null()), inv);
    assert!(last_error().contains("params is NULL"), "{}", last_error());
    assert_eq!(ggvk_graph_rope(g, &x, &x, null(), &x, &rp), inv);
    assert!(last_error().contains("GGVK_OP_ROPE: src[0] (x)->buffer is NULL"), "{}", last_error());
    // SAFETY: `g` came from ggvk_graph_new and is freed once.
    unsafe { ggvk_graph_free(g) };
}

#[test]
fn desc_init_sets_ggml_defaults() {
    let d = desc(ggvk_op::GGVK_OP_ROPE as i32);
    assert_eq!(d.op, 26);
    assert!(d.src.iter().all(|s| s.is_null()) && d.dst.is_null());
    let p = d.params;
    assert_eq!((p.scale.s, p.scale.b), (1.0, 0.0));
    assert_eq!((p.clamp.min, p.clamp.max), (f32::NEG_INFINITY, f32::INFINITY));
    assert_eq!((p.norm.eps, p.norm.groups), (1e-6, 1));
    assert_eq!((p.soft_max.scale, p.soft_max.max_bias), (1.0, 0.0));
    let r = p.rope;
    assert_eq!((r.n_dims, r.mode, r.freq_base, r.freq_scale), (0, GGVK_ROPE_MODE_NORMAL, 10000.0, 1.0));
    assert_eq!((r.ext_factor, r.attn_factor, r.beta_fast, r.beta_slow), (0.0, 1.0, 32.0, 1.0));
    let f = p.flash_attn;
    assert_eq!((f.scale, f.max_bias, f.softcap, f.prec), (1.0, 0.0, 0.0, GGVK_PREC_DEFAULT));
    assert_eq!((p.unary.kind, p.glu.kind, p.glu.swapped, p.argsort.order), (0, 0, 0, GGVK_SORT_ORDER_ASC));
    assert_eq!(p.reserved, [0; 8]);
    // Any op value is stored as given (ggvk_graph_node refuses the unknown ones).
    assert_eq!(desc(-5).op, -5);
}
