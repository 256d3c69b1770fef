//! The C API as a C program would call it: random sequences of alloc / free / set / get / memset / copy /
//! tensor descriptions / graph building / compute / synchronize, with random sizes, offsets, types, shapes and
//! strides, NULL handles and freed slots. Every call must return a status (never crash); no call may report an
//! internal error or lose the device. Handles are only ever live ones or NULL (a dangling handle is undefined
//! behaviour by the API's contract, not something to fuzz).
#![no_main]

#[path = "input.rs"]
mod input;

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::{Mutex, OnceLock};

use ggvk::ffi::api::*;
use ggvk::ffi::ggvk_status::{self, *};
use input::Input;
use libfuzzer_sys::fuzz_target;

struct Backend(*mut ggvk_backend);
// SAFETY: the C API documents backends as usable from any thread; the fuzzer uses it from one at a time.
unsafe impl Send for Backend {}

fn backend() -> Option<&'static Mutex<Backend>> {
    static B: OnceLock<Option<Mutex<Backend>>> = OnceLock::new();
    B.get_or_init(|| {
        let mut b = null_mut();
        (ggvk_init(GGVK_DEFAULT_DEVICE, &mut b) == GGVK_STATUS_OK).then(|| Mutex::new(Backend(b)))
    })
    .as_ref()
}

fn ok(s: ggvk_status, what: &str) -> bool {
    assert!(
        !matches!(s, GGVK_STATUS_INTERNAL_ERROR | GGVK_STATUS_DEVICE_LOST | GGVK_STATUS_VULKAN_ERROR),
        "{what}: {s:?}: {}",
        // SAFETY: ggvk_last_error returns a NUL-terminated string owned by this thread.
        unsafe { std::ffi::CStr::from_ptr(ggvk_last_error()) }.to_string_lossy()
    );
    s == GGVK_STATUS_OK
}

const SLOTS: usize = 6;
static HOST: [u8; 1 << 16] = [0x3c; 1 << 16];

struct Desc {
    t: ggvk_tensor,
    slot: usize,
}

fn size(inp: &mut Input) -> usize {
    match inp.u8() % 8 {
        0 => 0,
        1 => usize::MAX,
        2 => inp.u16() as usize,
        3 => 1 << 40,
        _ => inp.u8() as usize * 4,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(b) = backend() else { return };
    let be = b.lock().unwrap_or_else(|p| p.into_inner()).0;
    let mut inp = Input(data);
    let mut bufs: [*mut ggvk_buffer; SLOTS] = [null_mut(); SLOTS];
    let mut descs: Vec<Desc> = Vec::new();
    let mut graphs: [*mut ggvk_graph; 2] = [null_mut(); 2];
    let mut scratch = vec![0u8; 1 << 16];
    let mut steps = 0;
    while !inp.done() && steps < 64 {
        steps += 1;
        let slot = inp.u8() as usize % (SLOTS + 1); // SLOTS: a NULL handle
        let buf = bufs.get(slot).copied().unwrap_or(null_mut());
        match inp.u8() % 15 {
            0 => {
                let mut out = null_mut();
                let n = size(&mut inp).min(1 << 20);
                if ok(ggvk_buffer_alloc(be, n, &mut out), "alloc") && slot < SLOTS {
                    // SAFETY: the slot's old handle (if any) is live and freed once.
                    unsafe { ggvk_buffer_free(bufs[slot]) };
                    bufs[slot] = out;
                } else if !out.is_null() {
                    // SAFETY: a fresh handle with nowhere to go.
                    unsafe { ggvk_buffer_free(out) };
                }
            }
            1 => {
                if slot < SLOTS {
                    // SAFETY: live or NULL; the slot forgets it.
                    unsafe { ggvk_buffer_free(bufs[slot]) };
                    bufs[slot] = null_mut();
                }
            }
            2 => {
                let (off, n) = (size(&mut inp), size(&mut inp).min(HOST.len()));
                ok(ggvk_buffer_set(buf, off, HOST.as_ptr().cast(), n), "set");
            }
            3 => {
                let (off, n) = (size(&mut inp), size(&mut inp).min(scratch.len()));
                ok(ggvk_buffer_get(buf, off, scratch.as_mut_ptr().cast(), n), "get");
            }
            4 => {
                let (off, v, n) = (size(&mut inp), inp.u8(), size(&mut inp));
                ok(ggvk_buffer_memset(buf, off, v, n), "memset");
            }
            5 => {
                let dst = bufs.get(inp.u8() as usize % (SLOTS + 1)).copied().unwrap_or(null_mut());
                let (so, d_o, n) = (size(&mut inp), size(&mut inp), size(&mut inp));
                ok(ggvk_buffer_copy(buf, so, dst, d_o, n), "copy");
            }
            6 => {
                // SAFETY: ggvk_tensor is plain C data; all-zero is a valid value.
                let mut t: ggvk_tensor = unsafe { std::mem::zeroed() };
                let ne = [inp.dim(), inp.dim(), inp.dim(), inp.dim()];
                let ty = inp.ty();
                let off = size(&mut inp);
                if ok(ggvk_tensor_init(&mut t, ty, ne.as_ptr(), buf, off), "tensor_init") && descs.len() < 8 {
                    descs.push(Desc { t, slot });
                }
            }
            7 => {
                // A raw description with arbitrary strides and offset (validated when used).
                let t = ggvk_tensor {
                    r#type: inp.ty(),
                    ne: [inp.dim(), inp.dim(), inp.dim(), inp.dim()],
                    nb: [inp.u8() as usize, inp.u16() as usize, inp.u16() as usize, inp.u64() as usize],
                    buffer: buf,
                    offset: size(&mut inp),
                };
                if descs.len() < 8 {
                    descs.push(Desc { t, slot });
                }
            }
            8 => {
                let k = inp.u8() as usize % 2;
                if graphs[k].is_null() {
                    ok(ggvk_graph_new(&mut graphs[k]), "graph_new");
                } else {
                    // SAFETY: live handle, freed once.
                    unsafe { ggvk_graph_free(graphs[k]) };
                    graphs[k] = null_mut();
                }
            }
            9 | 10 => {
                let g = graphs[inp.u8() as usize % 2];
                // Refresh buffer pointers: a freed slot turns into NULL, never a dangling handle.
                for d in descs.iter_mut() {
                    d.t.buffer = bufs.get(d.slot).copied().unwrap_or(null_mut());
                }
                let pick = |inp: &mut Input| -> *const ggvk_tensor {
                    if descs.is_empty() || inp.u8() % 8 == 0 {
                        null()
                    } else {
                        &descs[inp.u8() as usize % descs.len()].t
                    }
                };
                let (a, bb, c) = (pick(&mut inp), pick(&mut inp), pick(&mut inp));
                if inp.u8() % 2 == 0 {
                    ok(ggvk_graph_mul_mat(g, a, bb, c), "mul_mat");
                } else {
                    let ff = pick(&mut inp);
                    let p = ggvk_rope_params {
                        n_dims: i32::from(inp.u8() % 70) - 2,
                        mode: inp.pick(&[0, 2, 1]),
                        n_ctx_orig: i32::from(inp.u16()),
                        freq_base: inp.f32(),
                        freq_scale: inp.f32(),
                        ext_factor: inp.f32(),
                        attn_factor: inp.f32(),
                        beta_fast: inp.f32(),
                        beta_slow: inp.f32(),
                    };
                    ok(ggvk_graph_rope(g, a, bb, ff, c, &p), "rope");
                }
            }
            11 => {
                let g = graphs[inp.u8() as usize % 2];
                let s = match inp.u8() % 3 {
                    0 => ggvk_graph_compute(be, g),
                    1 => ggvk_graph_compute_async(be, g),
                    _ => ggvk_synchronize(be),
                };
                ok(s, "compute");
            }
            12 => {
                if !descs.is_empty() {
                    let k = inp.u8() as usize % descs.len();
                    let d = &mut descs[k];
                    d.t.buffer = bufs.get(d.slot).copied().unwrap_or(null_mut());
                    let (off, n) = (size(&mut inp), size(&mut inp).min(scratch.len()));
                    if inp.u8() % 2 == 0 {
                        ok(ggvk_tensor_set(&d.t, HOST.as_ptr().cast::<c_void>(), off, n), "tensor_set");
                    } else {
                        ok(ggvk_tensor_get(&d.t, scratch.as_mut_ptr().cast(), off, n), "tensor_get");
                    }
                }
            }
            13 => {
                let mut n = 0usize;
                if ok(ggvk_buffer_size(buf, &mut n), "size") {
                    assert!(n > 0);
                }
            }
            _ => {
                let mut n = 0usize;
                if !descs.is_empty() {
                    let k = inp.u8() as usize % descs.len();
                    let d = &mut descs[k];
                    d.t.buffer = bufs.get(d.slot).copied().unwrap_or(null_mut());
                    ok(ggvk_tensor_nbytes(&d.t, &mut n), "nbytes");
                }
            }
        }
    }
    ok(ggvk_synchronize(be), "final synchronize");
    // SAFETY: every handle left is live and freed once.
    unsafe {
        for g in graphs {
            ggvk_graph_free(g);
        }
        for b in bufs {
            ggvk_buffer_free(b);
        }
    }
});
