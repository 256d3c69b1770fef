//! Proves `ggvk::ggml::sys` against the pinned ggml headers (the llama.cpp vendored in llama-cpp-python 0.3.36):
//!
//! 1. Layout: `tests/ggml_layout/layout.c`, compiled against the headers, prints the size of every mirrored type,
//!    the offset and size of every field, and the value of every mirrored constant and enumerator. Each line must
//!    equal the Rust value, and the C and Rust sets of lines must be the same.
//! 2. Coverage: the headers' own definitions are parsed; every mirrored struct must list exactly the header's
//!    fields in order, and every mirrored enum exactly the header's enumerators. Exhaustive destructuring proves
//!    at compile time that the Rust table names every field of the Rust structs.
//! 3. Signatures: every function-pointer type in `src/ggml/sys.rs` (struct members, `*_fn` aliases of ggml
//!    functions, typedef mirrors) is translated to C and checked against the headers with
//!    `__builtin_types_compatible_p`, in a generated C file that must compile.
//!
//! Sources: `$GGVK_LLAMA_SRC`, else the last line of `bash scripts/reference-llama.sh --source-only`. Without
//! sources or without `cc` the test fails; it never passes vacuously.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use ggvk::ggml::sys::*;

/// The headers that define what `sys.rs` mirrors, relative to the llama.cpp source root.
const HEADERS: [&str; 4] =
    ["ggml/include/ggml.h", "ggml/include/ggml-backend.h", "ggml/src/ggml-backend-impl.h", "ggml/src/ggml-impl.h"];

/// Expected counts: a change to the mirrors must change these on purpose.
const N_STRUCTS: usize = 18; // plus the `ggml_guid` array typedef
const N_FIELDS: usize = 116;
const N_DEFINES: usize = 11;
const N_ENUMS: usize = 17;
const N_ENUMERATORS: usize = 219;
const N_FN_MEMBERS: usize = 53;
const N_FN_ALIASES: usize = 35;

/// Expected `kind NAME value` lines, keyed by `kind NAME`.
type Table = BTreeMap<String, i64>;

fn put(t: &mut Table, key: String, v: i64) {
    assert!(t.insert(key.clone(), v).is_none(), "duplicate table entry {key}");
}

fn field_size<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// The C spelling of a Rust field name (`r#type` -> `type`).
fn c_name(rust: &str) -> &str {
    rust.strip_prefix("r#").unwrap_or(rust)
}

/// Adds a struct's size and every field's offset and size; records its field list in `$m`.
macro_rules! mirror {
    ($t:ident, $m:ident, $s:ident { $($f:ident),+ $(,)? }) => {{
        // No `..`: this fails to compile unless the list names every field of the Rust struct.
        #[allow(dead_code)]
        fn exhaustive(v: $s) {
            let $s { $($f: _),+ } = v;
        }
        let name = stringify!($s);
        put(&mut $t, format!("size {name}"), size_of::<$s>() as i64);
        let mut fields = Vec::new();
        $(
            let f = c_name(stringify!($f));
            put(&mut $t, format!("offset {name}.{f}"), offset_of!($s, $f) as i64);
            put(&mut $t, format!("fsize {name}.{f}"), field_size(|s: &$s| &s.$f) as i64);
            fields.push(f);
        )+
        $m.push((name, fields));
    }};
}

/// Adds `#define` constants.
macro_rules! value {
    ($t:ident, $($c:ident),+ $(,)?) => {{
        $( put(&mut $t, format!("value {}", stringify!($c)), $c as i64); )+
        [$(stringify!($c)),+].len()
    }};
}

/// Adds the enumerators of one enum (each must have the enum's alias type); records them in `$e`.
macro_rules! enumeration {
    ($t:ident, $e:ident, $enum:ident: $($v:ident),+ $(,)?) => {{
        $( let v: $enum = $v; put(&mut $t, format!("value {}", stringify!($v)), v as i64); )+
        $e.push((stringify!($enum), vec![$(stringify!($v)),+]));
    }};
}

/// The Rust side: expected lines, mirrored structs with their fields, mirrored enums with their enumerators,
/// and the number of `#define` constants.
#[allow(clippy::type_complexity)]
fn rust_table() -> (Table, Vec<(&'static str, Vec<&'static str>)>, Vec<(&'static str, Vec<&'static str>)>, usize) {
    let mut t = Table::new();
    let mut m = Vec::new();
    let mut e = Vec::new();
    put(&mut t, "size ggml_guid".into(), size_of::<ggml_guid>() as i64);

    // Every mirrored struct with every field, in declaration order.
    mirror!(
        t,
        m,
        ggml_tensor {
            r#type,
            buffer,
            ne,
            nb,
            op,
            op_params,
            flags,
            src,
            view_src,
            view_offs,
            data,
            name,
            extra,
            padding
        }
    );
    mirror!(t, m, ggml_hash_set { size, used, keys });
    mirror!(
        t,
        m,
        ggml_cgraph {
            size,
            n_nodes,
            n_leafs,
            nodes,
            grads,
            grad_accs,
            leafs,
            use_counts,
            visited_hash_set,
            order,
            uid
        }
    );
    mirror!(
        t,
        m,
        ggml_backend_buffer_type_i { get_name, alloc_buffer, get_alignment, get_max_size, get_alloc_size, is_host }
    );
    mirror!(t, m, ggml_backend_buffer_type { iface, device, context });
    mirror!(
        t,
        m,
        ggml_backend_buffer_i {
            free_buffer,
            get_base,
            init_tensor,
            memset_tensor,
            set_tensor,
            get_tensor,
            set_tensor_2d,
            get_tensor_2d,
            cpy_tensor,
            clear,
            reset
        }
    );
    mirror!(t, m, ggml_backend_buffer { iface, buft, context, size, usage });
    mirror!(t, m, ggml_backend_graph_optimize_params { add_alloc_dep, user_data });
    mirror!(
        t,
        m,
        ggml_backend_i {
            get_name,
            free,
            set_tensor_async,
            get_tensor_async,
            set_tensor_2d_async,
            get_tensor_2d_async,
            cpy_tensor_async,
            synchronize,
            graph_plan_create,
            graph_plan_free,
            graph_plan_update,
            graph_plan_compute,
            graph_compute,
            event_record,
            event_wait,
            graph_optimize
        }
    );
    mirror!(t, m, ggml_backend { guid, iface, device, context });
    mirror!(t, m, ggml_backend_event { device, context });
    mirror!(t, m, ggml_backend_dev_caps { r#async, host_buffer, buffer_from_host_ptr, events, mmap_support });
    mirror!(t, m, ggml_backend_dev_props { name, description, memory_free, memory_total, r#type, device_id, caps });
    mirror!(
        t,
        m,
        ggml_backend_device_i {
            get_name,
            get_description,
            get_memory,
            get_type,
            get_props,
            init_backend,
            get_buffer_type,
            get_host_buffer_type,
            buffer_from_host_ptr,
            supports_op,
            supports_buft,
            offload_op,
            event_new,
            event_free,
            event_synchronize
        }
    );
    mirror!(t, m, ggml_backend_device { iface, reg, context });
    mirror!(t, m, ggml_backend_reg_i { get_name, get_device_count, get_device, get_proc_address });
    mirror!(t, m, ggml_backend_reg { api_version, iface, context });
    mirror!(t, m, ggml_backend_feature { name, value });

    // The #define constants.
    let n_defines = value!(
        t,
        GGML_MAX_DIMS,
        GGML_MAX_OP_PARAMS,
        GGML_MAX_SRC,
        GGML_MAX_NAME,
        GGML_BACKEND_API_VERSION,
        GGML_ROPE_TYPE_NORMAL,
        GGML_ROPE_TYPE_NEOX,
        GGML_ROPE_TYPE_MROPE,
        GGML_ROPE_TYPE_VISION,
        GGML_ROPE_TYPE_IMROPE,
        GGML_MROPE_SECTIONS
    );

    // Every mirrored enum with every enumerator.
    enumeration!(t, e, ggml_status: GGML_STATUS_ALLOC_FAILED, GGML_STATUS_FAILED, GGML_STATUS_SUCCESS, GGML_STATUS_ABORTED);
    enumeration!(t, e, ggml_type: GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q8_1, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_K, GGML_TYPE_IQ2_XXS, GGML_TYPE_IQ2_XS, GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ1_S, GGML_TYPE_IQ4_NL, GGML_TYPE_IQ3_S, GGML_TYPE_IQ2_S, GGML_TYPE_IQ4_XS, GGML_TYPE_I8, GGML_TYPE_I16, GGML_TYPE_I32, GGML_TYPE_I64, GGML_TYPE_F64, GGML_TYPE_IQ1_M, GGML_TYPE_BF16, GGML_TYPE_TQ1_0, GGML_TYPE_TQ2_0, GGML_TYPE_MXFP4, GGML_TYPE_NVFP4, GGML_TYPE_Q1_0, GGML_TYPE_Q2_0, GGML_TYPE_COUNT);
    enumeration!(t, e, ggml_prec: GGML_PREC_UNDEFINED, GGML_PREC_DEFAULT, GGML_PREC_F32, GGML_PREC_BF16, GGML_PREC_F16, GGML_PREC_Q8, GGML_PREC_Q4);
    enumeration!(t, e, ggml_op_hint: GGML_HINT_NONE, GGML_HINT_SRC0_IS_HADAMARD);
    enumeration!(t, e, ggml_op: GGML_OP_NONE, GGML_OP_DUP, GGML_OP_ADD, GGML_OP_ADD_ID, GGML_OP_ADD1, GGML_OP_ACC, GGML_OP_SUB, GGML_OP_MUL, GGML_OP_DIV, GGML_OP_SQR, GGML_OP_SQRT, GGML_OP_LOG, GGML_OP_SIN, GGML_OP_COS, GGML_OP_SUM, GGML_OP_SUM_ROWS, GGML_OP_CUMSUM, GGML_OP_MEAN, GGML_OP_ARGMAX, GGML_OP_COUNT_EQUAL, GGML_OP_REPEAT, GGML_OP_REPEAT_BACK, GGML_OP_CONCAT, GGML_OP_SILU_BACK, GGML_OP_NORM, GGML_OP_RMS_NORM, GGML_OP_RMS_NORM_BACK, GGML_OP_GROUP_NORM, GGML_OP_L2_NORM, GGML_OP_MUL_MAT, GGML_OP_MUL_MAT_ID, GGML_OP_OUT_PROD, GGML_OP_SCALE, GGML_OP_SET, GGML_OP_CPY, GGML_OP_CONT, GGML_OP_RESHAPE, GGML_OP_VIEW, GGML_OP_PERMUTE, GGML_OP_TRANSPOSE, GGML_OP_GET_ROWS, GGML_OP_GET_ROWS_BACK, GGML_OP_SET_ROWS, GGML_OP_DIAG, GGML_OP_DIAG_MASK_INF, GGML_OP_DIAG_MASK_ZERO, GGML_OP_SOFT_MAX, GGML_OP_SOFT_MAX_BACK, GGML_OP_ROPE, GGML_OP_ROPE_BACK, GGML_OP_CLAMP, GGML_OP_CONV_TRANSPOSE_1D, GGML_OP_IM2COL, GGML_OP_IM2COL_BACK, GGML_OP_IM2COL_3D, GGML_OP_COL2IM_1D, GGML_OP_CONV_2D, GGML_OP_CONV_3D, GGML_OP_CONV_2D_DW, GGML_OP_CONV_TRANSPOSE_2D, GGML_OP_POOL_1D, GGML_OP_POOL_2D, GGML_OP_POOL_2D_BACK, GGML_OP_UPSCALE, GGML_OP_PAD, GGML_OP_PAD_REFLECT_1D, GGML_OP_ROLL, GGML_OP_ARANGE, GGML_OP_TIMESTEP_EMBEDDING, GGML_OP_ARGSORT, GGML_OP_TOP_K, GGML_OP_LEAKY_RELU, GGML_OP_TRI, GGML_OP_FILL, GGML_OP_FLASH_ATTN_EXT, GGML_OP_FLASH_ATTN_BACK, GGML_OP_SSM_CONV, GGML_OP_SSM_SCAN, GGML_OP_WIN_PART, GGML_OP_WIN_UNPART, GGML_OP_GET_REL_POS, GGML_OP_ADD_REL_POS, GGML_OP_RWKV_WKV6, GGML_OP_GATED_LINEAR_ATTN, GGML_OP_RWKV_WKV7, GGML_OP_SOLVE_TRI, GGML_OP_GATED_DELTA_NET, GGML_OP_LIGHTNING_INDEXER, GGML_OP_DSV4_HC_COMB, GGML_OP_DSV4_HC_PRE, GGML_OP_DSV4_HC_POST, GGML_OP_UNARY, GGML_OP_MAP_CUSTOM1, GGML_OP_MAP_CUSTOM2, GGML_OP_MAP_CUSTOM3, GGML_OP_CUSTOM, GGML_OP_CROSS_ENTROPY_LOSS, GGML_OP_CROSS_ENTROPY_LOSS_BACK, GGML_OP_OPT_STEP_ADAMW, GGML_OP_OPT_STEP_SGD, GGML_OP_GLU, GGML_OP_COUNT);
    enumeration!(t, e, ggml_unary_op: GGML_UNARY_OP_ABS, GGML_UNARY_OP_SGN, GGML_UNARY_OP_NEG, GGML_UNARY_OP_STEP, GGML_UNARY_OP_TANH, GGML_UNARY_OP_ELU, GGML_UNARY_OP_RELU, GGML_UNARY_OP_SIGMOID, GGML_UNARY_OP_GELU, GGML_UNARY_OP_GELU_QUICK, GGML_UNARY_OP_SILU, GGML_UNARY_OP_HARDSWISH, GGML_UNARY_OP_HARDSIGMOID, GGML_UNARY_OP_EXP, GGML_UNARY_OP_EXPM1, GGML_UNARY_OP_SOFTPLUS, GGML_UNARY_OP_GELU_ERF, GGML_UNARY_OP_XIELU, GGML_UNARY_OP_FLOOR, GGML_UNARY_OP_CEIL, GGML_UNARY_OP_ROUND, GGML_UNARY_OP_TRUNC, GGML_UNARY_OP_COUNT);
    enumeration!(t, e, ggml_glu_op: GGML_GLU_OP_REGLU, GGML_GLU_OP_GEGLU, GGML_GLU_OP_SWIGLU, GGML_GLU_OP_SWIGLU_OAI, GGML_GLU_OP_GEGLU_ERF, GGML_GLU_OP_GEGLU_QUICK, GGML_GLU_OP_SWIGLU_CLAMP, GGML_GLU_OP_COUNT);
    enumeration!(t, e, ggml_tensor_flag: GGML_TENSOR_FLAG_INPUT, GGML_TENSOR_FLAG_OUTPUT, GGML_TENSOR_FLAG_PARAM, GGML_TENSOR_FLAG_LOSS, GGML_TENSOR_FLAG_COMPUTE);
    enumeration!(t, e, ggml_tri_type: GGML_TRI_TYPE_UPPER_DIAG, GGML_TRI_TYPE_UPPER, GGML_TRI_TYPE_LOWER_DIAG, GGML_TRI_TYPE_LOWER);
    enumeration!(t, e, ggml_op_pool: GGML_OP_POOL_MAX, GGML_OP_POOL_AVG, GGML_OP_POOL_COUNT);
    enumeration!(t, e, ggml_scale_mode: GGML_SCALE_MODE_NEAREST, GGML_SCALE_MODE_BILINEAR, GGML_SCALE_MODE_BICUBIC, GGML_SCALE_MODE_COUNT);
    enumeration!(t, e, ggml_scale_flag: GGML_SCALE_FLAG_ALIGN_CORNERS, GGML_SCALE_FLAG_ANTIALIAS);
    enumeration!(t, e, ggml_sort_order: GGML_SORT_ORDER_ASC, GGML_SORT_ORDER_DESC);
    enumeration!(t, e, ggml_log_level: GGML_LOG_LEVEL_NONE, GGML_LOG_LEVEL_DEBUG, GGML_LOG_LEVEL_INFO, GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR, GGML_LOG_LEVEL_CONT);
    enumeration!(t, e, ggml_backend_buffer_usage: GGML_BACKEND_BUFFER_USAGE_ANY, GGML_BACKEND_BUFFER_USAGE_WEIGHTS, GGML_BACKEND_BUFFER_USAGE_COMPUTE);
    enumeration!(t, e, ggml_backend_dev_type: GGML_BACKEND_DEVICE_TYPE_CPU, GGML_BACKEND_DEVICE_TYPE_GPU, GGML_BACKEND_DEVICE_TYPE_IGPU, GGML_BACKEND_DEVICE_TYPE_ACCEL, GGML_BACKEND_DEVICE_TYPE_META);
    enumeration!(t, e, ggml_cgraph_eval_order: GGML_CGRAPH_EVAL_ORDER_LEFT_TO_RIGHT, GGML_CGRAPH_EVAL_ORDER_RIGHT_TO_LEFT, GGML_CGRAPH_EVAL_ORDER_COUNT);
    (t, m, e, n_defines)
}

// ---------------------------------------------------------------------------------------------------------
// Environment

fn llama_src() -> PathBuf {
    let dir = match std::env::var_os("GGVK_LLAMA_SRC") {
        Some(d) => PathBuf::from(d),
        None => {
            let out = Command::new("bash")
                .args(["scripts/reference-llama.sh", "--source-only"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap_or_else(|e| {
                    panic!("ggml layout: cannot run `bash scripts/reference-llama.sh --source-only`: {e}")
                });
            assert!(
                out.status.success(),
                "ggml layout: `bash scripts/reference-llama.sh --source-only` failed ({}); set GGVK_LLAMA_SRC to the \
                 llama.cpp 0.3.36 sources instead.\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let last = stdout.lines().map(str::trim).rfind(|l| !l.is_empty());
            PathBuf::from(last.expect("ggml layout: reference-llama.sh --source-only printed no path"))
        }
    };
    for h in HEADERS {
        assert!(dir.join(h).is_file(), "ggml layout: {} not found under the llama.cpp sources {}", h, dir.display());
    }
    dir
}

/// Runs `cc` with `args`; panics with its output if it cannot start or fails.
fn cc(args: &[&std::ffi::OsStr], what: &str) {
    let out = Command::new("cc").args(args).output().unwrap_or_else(|e| {
        panic!("ggml layout: cannot run `cc` ({e}); this test needs a C compiler (gcc or clang) on PATH")
    });
    assert!(
        out.status.success(),
        "ggml layout: `cc` failed on {what} ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cc_include_args(src: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["-std=c11".into(), "-Wall".into(), "-Wno-unused-function".into()];
    for d in ["ggml/include", "ggml/src"] {
        let mut a = std::ffi::OsString::from("-I");
        a.push(src.join(d));
        v.push(a);
    }
    v
}

// ---------------------------------------------------------------------------------------------------------
// Small parsers for the C headers and for sys.rs

/// Removes C comments, leaving string and character literals alone.
fn strip_c_comments(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                out.push(' ');
            }
            q @ (b'"' | b'\'') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str(&s[start..i.min(b.len())]);
            }
            _ => {
                let ch = s[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// Collapses runs of whitespace into one space.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits at commas outside (), [] and, for Rust text (`angles`), <> (`->` is no bracket); drops empty pieces
/// (trailing commas).
fn split_top(s: &str, angles: bool) -> Vec<String> {
    let b = s.as_bytes();
    let (mut depth, mut out, mut cur) = (0i32, Vec::new(), String::new());
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            '<' if angles => depth += 1,
            ')' | ']' => depth -= 1,
            '>' if angles && (i == 0 || b[i - 1] != b'-') => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur.trim().to_string());
    out.retain(|p| !p.is_empty());
    out
}

/// The text between the `{` after `head` and its `}` (no nesting), in the one definition `head` starts.
fn body_of<'a>(text: &'a str, head: &str) -> Result<&'a str, String> {
    let starts: Vec<usize> = [format!("{head} {{"), format!("{head}{{")]
        .iter()
        .flat_map(|h| text.match_indices(h.as_str()))
        .map(|(i, _)| i)
        .collect();
    if starts.len() != 1 {
        return Err(format!("`{head} {{` found {} times in the headers (expected once)", starts.len()));
    }
    let open = starts[0] + text[starts[0]..].find('{').unwrap() + 1;
    let close = open + text[open..].find('}').ok_or_else(|| format!("`{head}`: no closing brace"))?;
    Ok(&text[open..close])
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Field names of `struct name` in the headers, in order (one declarator per declaration is required).
fn c_struct_fields(text: &str, name: &str) -> Result<Vec<String>, String> {
    let body = body_of(text, &format!("struct {name}"))?;
    let mut fields = Vec::new();
    for decl in body.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        if split_top(decl, false).len() != 1 {
            return Err(format!("struct {name}: `{decl}` declares several fields; teach the parser"));
        }
        let field = if let Some(p) = decl.find("(*") {
            decl[p + 2..].trim_start().chars().take_while(|&c| is_ident_char(c)).collect::<String>()
        } else {
            let d = decl.split('[').next().unwrap().trim_end();
            let rev: String = d.chars().rev().take_while(|&c| is_ident_char(c)).collect();
            rev.chars().rev().collect()
        };
        if field.is_empty() {
            return Err(format!("struct {name}: no field name in `{decl}`"));
        }
        fields.push(field);
    }
    Ok(fields)
}

/// Enumerator names of `enum name` in the headers, in order.
fn c_enumerators(text: &str, name: &str) -> Result<Vec<String>, String> {
    let body = body_of(text, &format!("enum {name}"))?;
    Ok(split_top(body, false).iter().map(|item| item.split('=').next().unwrap().trim().to_string()).collect())
}

/// Describes how the header's list of names differs from the mirrored one.
fn list_diff(what: &str, header: &[String], mirrored: &[&str]) -> String {
    let missing: Vec<&String> = header.iter().filter(|h| !mirrored.contains(&h.as_str())).collect();
    let extra: Vec<&&str> = mirrored.iter().filter(|m| !header.iter().any(|h| h == *m)).collect();
    if missing.is_empty() && extra.is_empty() {
        format!("same {what}s in a different order: header {header:?}")
    } else {
        format!("{what}s in the header but not mirrored: {missing:?}; mirrored but not in the header: {extra:?}")
    }
}

/// Function-pointer types declared in sys.rs, as C `_Static_assert`s against the headers.
struct SigChecks {
    asserts: Vec<String>,
    members: usize,
    aliases: usize,
}

/// Normalised sys.rs text: no `//` comments, single spaces, no spaces inside brackets, no trailing commas.
fn normalise_rust(src: &str) -> String {
    let no_comments: String =
        src.lines().map(|l| l.split_once("//").map_or(l, |(code, _)| code)).collect::<Vec<_>>().join("\n");
    let mut s = squash(&no_comments);
    loop {
        let before = s.len();
        for (from, to) in [("( ", "("), ("< ", "<"), (" )", ")"), (" >", ">"), (",)", ")"), (",>", ">")] {
            s = s.replace(from, to);
        }
        if s.len() == before {
            return s;
        }
    }
}

/// Names declared as `pub <kind> NAME` in normalised sys.rs text.
fn rust_names(s: &str, kind: &str) -> BTreeSet<String> {
    s.match_indices(&format!("pub {kind} "))
        .map(|(i, m)| s[i + m.len()..].chars().take_while(|&c| is_ident_char(c)).collect())
        .collect()
}

/// C spelling of a Rust type from sys.rs.
fn c_type(t: &str, structs: &BTreeSet<String>, enums: &BTreeSet<String>, typedefs: &BTreeSet<String>) -> String {
    if let Some(r) = t.strip_prefix("*mut ") {
        return format!("{} *", c_type(r, structs, enums, typedefs));
    }
    if let Some(r) = t.strip_prefix("*const ") {
        return format!("{} const *", c_type(r, structs, enums, typedefs));
    }
    let prim = match t {
        "c_char" => "char",
        "c_int" => "int",
        "c_void" => "void",
        "usize" => "size_t",
        "u8" => "uint8_t",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "i32" => "int32_t",
        "i64" => "int64_t",
        "bool" => "bool",
        _ if structs.contains(t) => return format!("struct {t}"),
        _ if enums.contains(t) => return format!("enum {t}"),
        _ if typedefs.contains(t) => return t.to_string(),
        _ => panic!("ggml layout: no C spelling for Rust type `{t}` used in a sys.rs signature; extend c_type"),
    };
    prim.to_string()
}

/// C pointer-to-function type for `unsafe extern "C" fn(..) -> R`.
fn c_fn_type(f: &str, structs: &BTreeSet<String>, enums: &BTreeSet<String>, typedefs: &BTreeSet<String>) -> String {
    let rest = f.strip_prefix("unsafe extern \"C\" fn(").unwrap_or_else(|| panic!("not an extern \"C\" fn type: {f}"));
    let mut depth = 1;
    let close = rest
        .char_indices()
        .find(|&(_, c)| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth == 0
        })
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("unbalanced parameters: {f}"));
    let params: Vec<String> = split_top(&rest[..close], true)
        .iter()
        .map(|p| match p.as_str() {
            "..." => "...".to_string(),
            p => {
                let ty = p.split_once(':').unwrap_or_else(|| panic!("unnamed parameter `{p}` in {f}")).1;
                c_type(ty.trim(), structs, enums, typedefs)
            }
        })
        .collect();
    let after = rest[close + 1..].trim();
    let ret = match after.strip_prefix("->") {
        Some(r) => c_type(r.trim(), structs, enums, typedefs),
        None if after.is_empty() => "void".to_string(),
        None => panic!("cannot read the return type of {f}"),
    };
    let params = if params.is_empty() { "void".to_string() } else { params.join(", ") };
    format!("{ret} (*)({params})")
}

fn sig_checks(sys_rs: &str) -> SigChecks {
    const FN: &str = "unsafe extern \"C\" fn";
    let s = normalise_rust(sys_rs);
    let structs = rust_names(&s, "struct");
    let enums: BTreeSet<String> =
        s.match_indices(" = c_int;").map(|(i, _)| s[..i].rsplit(' ').next().unwrap().to_string()).collect();
    let typedefs: BTreeSet<String> = rust_names(&s, "type").difference(&enums).cloned().collect();
    let mut out = SigChecks { asserts: Vec::new(), members: 0, aliases: 0 };
    let mut push = |expr: String, ty: String, what: String| {
        out.asserts.push(format!("_Static_assert(__builtin_types_compatible_p({expr}, {ty}), \"{what}\");"));
    };
    let mut members = 0;
    for name in &structs {
        let head = format!("pub struct {name} {{");
        let start = s.find(&head).unwrap() + head.len();
        let body = &s[start..start + s[start..].find('}').unwrap()];
        for field in split_top(body, true) {
            let (fname, ty) = field.strip_prefix("pub ").and_then(|f| f.split_once(": ")).unwrap();
            let fname = c_name(fname);
            if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
                assert!(inner.starts_with(FN), "{name}.{fname}: Option of a non-fn type");
                let cty = c_fn_type(inner, &structs, &enums, &typedefs);
                push(format!("__typeof__(((struct {name} *) 0)->{fname})"), cty, format!("{name}.{fname}"));
                members += 1;
            } else {
                assert!(!ty.contains(FN), "{name}.{fname}: fn pointer not wrapped in Option");
            }
        }
    }
    let mut aliases = 0;
    for (i, m) in s.match_indices("pub type ") {
        let decl = &s[i + m.len()..];
        let decl = &decl[..decl.find(';').unwrap()];
        let (name, ty) = decl.split_once(" = ").unwrap();
        let f = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')).unwrap_or(ty);
        if !f.starts_with(FN) {
            continue;
        }
        let cty = c_fn_type(f, &structs, &enums, &typedefs);
        let expr = match name.strip_suffix("_fn") {
            Some(func) => format!("__typeof__(&{func})"),
            None => name.to_string(),
        };
        push(expr, cty, name.to_string());
        aliases += 1;
    }
    out.members = members;
    out.aliases = aliases;
    out
}

// ---------------------------------------------------------------------------------------------------------

#[test]
fn ggml_mirrors_match_pinned_headers() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = llama_src();
    // Per process (the target dir is shared); removed on success, kept for inspection on failure.
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ggml_layout-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let inc = cc_include_args(&src);
    let mut errors: Vec<String> = Vec::new();

    // Rust side and its counts.
    let (table, structs, enums, n_defines) = rust_table();
    let n_fields: usize = structs.iter().map(|(_, f)| f.len()).sum();
    let n_enumerators: usize = enums.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(structs.len(), N_STRUCTS, "mirrored structs");
    assert_eq!(n_fields, N_FIELDS, "mirrored fields");
    assert_eq!(n_defines, N_DEFINES, "mirrored #define constants");
    assert_eq!(enums.len(), N_ENUMS, "mirrored enums");
    assert_eq!(n_enumerators, N_ENUMERATORS, "mirrored enumerators");
    assert_eq!(table.len(), 1 + N_STRUCTS + 2 * N_FIELDS + N_DEFINES + N_ENUMERATORS);

    // 1. Layout: compile and run layout.c, compare line sets.
    let exe = work.join("layout");
    let c_file = manifest.join("tests/ggml_layout/layout.c");
    let mut args: Vec<&std::ffi::OsStr> = inc.iter().map(|a| a.as_os_str()).collect();
    args.extend([c_file.as_os_str(), "-o".as_ref(), exe.as_os_str()]);
    cc(&args, "tests/ggml_layout/layout.c");
    let out = Command::new(&exe).output().unwrap_or_else(|e| panic!("ggml layout: cannot run {}: {e}", exe.display()));
    assert!(out.status.success(), "ggml layout: {} failed: {}", exe.display(), out.status);
    let mut c_table = Table::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (key, v) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line from layout.c: {line}"));
        let v: i64 = v.parse().unwrap_or_else(|_| panic!("bad value in line from layout.c: {line}"));
        if c_table.insert(key.to_string(), v).is_some() {
            errors.push(format!("layout.c prints `{key}` twice"));
        }
    }
    for (key, rust) in &table {
        match c_table.get(key) {
            None => errors.push(format!("`{key}`: in the Rust table, not printed by layout.c")),
            Some(c) if c != rust => errors.push(format!("`{key}`: C {c}, Rust {rust}")),
            Some(_) => {}
        }
    }
    for key in c_table.keys().filter(|k| !table.contains_key(*k)) {
        errors.push(format!("`{key}`: printed by layout.c, not in the Rust table"));
    }

    // 2. Coverage against the headers' own definitions.
    let headers: String = HEADERS
        .iter()
        .map(|h| std::fs::read_to_string(src.join(h)).unwrap_or_else(|e| panic!("reading {h}: {e}")))
        .collect::<Vec<_>>()
        .join("\n");
    let headers = squash(&strip_c_comments(&headers));
    for (name, fields) in &structs {
        match c_struct_fields(&headers, name) {
            Ok(c) if c == *fields => {}
            Ok(c) => errors.push(format!("struct {name}: {}", list_diff("field", &c, fields))),
            Err(e) => errors.push(e),
        }
    }
    for (name, values) in &enums {
        match c_enumerators(&headers, name) {
            Ok(c) if c == *values => {}
            Ok(c) => errors.push(format!("enum {name}: {}", list_diff("enumerator", &c, values))),
            Err(e) => errors.push(e),
        }
    }

    // 3. Function-pointer signatures.
    let sys_rs = std::fs::read_to_string(manifest.join("src/ggml/sys.rs")).unwrap();
    let sigs = sig_checks(&sys_rs);
    assert_eq!(sigs.members, N_FN_MEMBERS, "function-pointer members found in sys.rs");
    assert_eq!(sigs.aliases, N_FN_ALIASES, "function-pointer aliases found in sys.rs");
    let sig_c = work.join("signatures.c");
    let mut text = String::from("/* Generated by tests/ggml_layout.rs from src/ggml/sys.rs. */\n");
    for h in HEADERS {
        text += &format!("#include \"{}\"\n", Path::new(h).file_name().unwrap().to_str().unwrap());
    }
    text += &sigs.asserts.join("\n");
    text += "\n";
    std::fs::write(&sig_c, text).unwrap();
    let mut args: Vec<&std::ffi::OsStr> = inc.iter().map(|a| a.as_os_str()).collect();
    args.extend(["-fsyntax-only".as_ref(), sig_c.as_os_str()]);
    cc(&args, &format!("{} (a failed _Static_assert names the mismatching member or function)", sig_c.display()));

    assert!(errors.is_empty(), "ggml layout: {} mismatches:\n{}", errors.len(), errors.join("\n"));
    std::fs::remove_dir_all(&work).unwrap();
    println!(
        "ggml layout: {} types ({} structs + ggml_guid), {} fields, {} constants ({} enums, {} enumerators, {} \
         defines), {} fn signatures ({} members, {} aliases) match {}",
        N_STRUCTS + 1,
        N_STRUCTS,
        N_FIELDS,
        N_ENUMERATORS + N_DEFINES,
        N_ENUMS,
        N_ENUMERATORS,
        N_DEFINES,
        sigs.members + sigs.aliases,
        sigs.members,
        sigs.aliases,
        src.display()
    );
}
