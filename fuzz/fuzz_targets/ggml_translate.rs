//! ggml graph translation and support checks (what ggml's `supports_op` runs) over random ggml-like tensors:
//! known and unknown ops and types, any shapes, strides and op parameters, inconsistent sources. No device memory
//! is touched: tensors sit in a placeholder buffer. Must never panic, hang or read out of bounds.
#![no_main]

#[path = "input.rs"]
mod input;

use std::sync::{Arc, OnceLock};

use ggvk::ggml::sys;
use ggvk::vk::{Buffer, Device};
use input::Input;
use libfuzzer_sys::fuzz_target;

fn placeholder() -> Option<&'static Arc<Buffer>> {
    static P: OnceLock<Option<Arc<Buffer>>> = OnceLock::new();
    P.get_or_init(|| Device::open(None).ok().map(|d| Buffer::placeholder(&d))).as_ref()
}

/// Ops the adapter translates, and a few it does not.
const OPS: &[sys::ggml_op] = &[
    sys::GGML_OP_NONE,
    sys::GGML_OP_DUP,
    sys::GGML_OP_ADD,
    sys::GGML_OP_MUL,
    sys::GGML_OP_SCALE,
    sys::GGML_OP_RMS_NORM,
    sys::GGML_OP_SOFT_MAX,
    sys::GGML_OP_CPY,
    sys::GGML_OP_CONT,
    sys::GGML_OP_GET_ROWS,
    sys::GGML_OP_SET_ROWS,
    sys::GGML_OP_ROPE,
    sys::GGML_OP_MUL_MAT,
    sys::GGML_OP_UNARY,
    sys::GGML_OP_GLU,
    sys::GGML_OP_VIEW,
    sys::GGML_OP_RESHAPE,
    sys::GGML_OP_PERMUTE,
    sys::GGML_OP_TRANSPOSE,
    sys::GGML_OP_NORM,
    sys::GGML_OP_MUL_MAT_ID,
];

fn blank() -> sys::ggml_tensor {
    // SAFETY: ggml_tensor is plain C data (integers, arrays, raw pointers): all-zero is a valid value (NULL
    // pointers, GGML_TYPE_F32, GGML_OP_NONE).
    unsafe { std::mem::zeroed() }
}

fn tensor(inp: &mut Input) -> sys::ggml_tensor {
    let mut t = blank();
    t.r#type = inp.ty();
    for d in 0..4 {
        t.ne[d] = if inp.u8() % 3 == 0 { 1 } else { inp.dim() };
    }
    let size = ggvk::quant::GgmlType::from_raw(t.r#type).map_or(4, |ty| ty.type_size());
    let block = ggvk::quant::GgmlType::from_raw(t.r#type).map_or(1, |ty| ty.block_size() as i64);
    match inp.u8() % 4 {
        0 | 1 => {
            // Contiguous (wrapping: huge shapes give nonsense strides, which is fine).
            t.nb[0] = size;
            t.nb[1] = size.wrapping_mul((t.ne[0] / block.max(1)) as usize);
            t.nb[2] = t.nb[1].wrapping_mul(t.ne[1] as usize);
            t.nb[3] = t.nb[2].wrapping_mul(t.ne[2] as usize);
        }
        2 => {
            // Contiguous, then two dims swapped (a permuted view).
            t.nb[0] = size;
            t.nb[1] = size.wrapping_mul((t.ne[0] / block.max(1)) as usize);
            t.nb[2] = t.nb[1].wrapping_mul(t.ne[1] as usize);
            t.nb[3] = t.nb[2].wrapping_mul(t.ne[2] as usize);
            let (a, b) = (inp.u8() as usize % 4, inp.u8() as usize % 4);
            t.nb.swap(a, b);
        }
        _ => {
            for d in 0..4 {
                t.nb[d] = match inp.u8() % 4 {
                    0 => inp.u8() as usize,
                    1 => inp.u16() as usize,
                    2 => inp.u64() as usize,
                    _ => size << (inp.u8() % 20),
                };
            }
        }
    }
    t.op = if inp.u8() % 4 == 0 { inp.u32() as i32 } else { inp.pick(OPS) };
    for p in t.op_params.iter_mut().take(16) {
        *p = match inp.u8() % 4 {
            0 => 0,
            1 => inp.f32().to_bits() as i32,
            2 => i32::from(inp.u8()),
            _ => inp.u32() as i32,
        };
    }
    t.flags = sys::GGML_TENSOR_FLAG_COMPUTE;
    t
}

fuzz_target!(|data: &[u8]| {
    let Some(ph) = placeholder() else { return };
    let mut inp = Input(data);
    let n = 1 + inp.u8() as usize % 4;
    let mut ts: Vec<sys::ggml_tensor> = (0..n).map(|_| tensor(&mut inp)).collect();
    let base = ts.as_mut_ptr();
    let node = &mut ts[n - 1];
    for s in 0..sys::GGML_MAX_SRC.min(4) {
        let k = inp.u8() as usize % (n + 1);
        // SAFETY: `k < n - 1` indexes an earlier element of `ts`, which is not moved while the pointer is used.
        node.src[s] = if k + 1 < n { unsafe { base.add(k) } } else { std::ptr::null_mut() };
    }
    // SAFETY: every tensor is readable plain data; sources point into `ts`; no buffer pointers are set.
    let r = unsafe { ggvk::ggml::check_node(&ts[n - 1], ph) };
    if let Ok(Some(node)) = r {
        // What the check accepted lies inside the placeholder's window, one slot per tensor.
        for t in node.src.iter().flatten().chain(std::iter::once(&node.dst)) {
            let (s, e) = t.byte_range();
            assert!(s <= e && e <= ph.size(), "accepted tensor {t:?} outside its buffer");
        }
    }
});
