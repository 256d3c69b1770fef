//! The GGVK split buffer type (`GGVK<main>_Split`, llama.cpp's `-sm row`): weight matrices cut by rows over every
//! GGVK device (in proportion to `--tensor-split`, or to the devices' memory), and graphs whose products read them.
//!
//! llama.cpp asks the registry for `ggml_backend_split_buffer_type(main_device, tensor_split)` and places in it the
//! weights whose product the main device supports with them ([`check_op`]: MUL_MAT with the weight as src0, 2-D).
//! Each tensor's rows go to the devices when ggml places it ([`crate::split::SplitWeight`]); set/get/memset reach
//! each row on its device. The main device's graph compute ([`compute`]) cuts its graph at those products and runs
//! them with [`crate::split::SplitRunner`].

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use super::buffer::{guarded, hand_to_ggml, offset_of, BASE};
use super::device::{registry, DeviceEntry};
use super::sys;
use super::translate::{self, Memory};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::quant::GgmlType;
use crate::split::{row_bounds, SplitProduct, SplitRunner, SplitWeight};

/// Rows per device part are a multiple of this (the tile of the prompt products).
const ROW_GRANULARITY: i64 = 64;

/// One split buffer type: the main device and the devices' shares.
pub struct SplitBuft {
    buft: sys::ggml_backend_buffer_type,
    /// Registry position of the main device.
    main: usize,
    /// Share of rows per registry device.
    shares: Vec<f32>,
    name: CString,
}

// SAFETY: built once, leaked, never mutated; its raw pointers point to other 'static registry data.
unsafe impl Sync for SplitBuft {}
// SAFETY: as above.
unsafe impl Send for SplitBuft {}

/// Every split buffer type handed out (leaked: ggml keeps pointers to them for the process).
static BUFTS: Mutex<Vec<&'static SplitBuft>> = Mutex::new(Vec::new());

fn bufts() -> std::sync::MutexGuard<'static, Vec<&'static SplitBuft>> {
    BUFTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The split buffer type behind `buft`, if it is one.
pub(super) fn split_buft(buft: sys::ggml_backend_buffer_type_t) -> Option<&'static SplitBuft> {
    bufts().iter().copied().find(|s| std::ptr::eq(&s.buft, buft))
}

impl SplitBuft {
    /// Whether the split's main device is `e`.
    pub(super) fn main_is(&self, e: &DeviceEntry) -> bool {
        registry().position(e) == Some(self.main)
    }
}

/// The devices' shares: `tensor_split` (one value per registry device) when any is positive, else each device's
/// memory.
fn shares(tensor_split: &[f32]) -> Vec<f32> {
    if tensor_split.iter().any(|&s| s.is_finite() && s > 0.0) {
        return tensor_split.to_vec();
    }
    registry().entries().map(|e| e.caps().device_local_bytes() as f32).collect()
}

/// `ggml_backend_split_buffer_type(main_device, tensor_split)` (through the registry's `get_proc_address`):
/// the split buffer type with `main_device` (a registry index) as the main device; `tensor_split` is NULL or
/// holds one share per registry device. NULL for a main device out of range.
///
/// # Safety
/// `tensor_split` is NULL or points to at least as many floats as the registry has devices.
pub(super) unsafe extern "C" fn split_buffer_type(
    main_device: c_int,
    tensor_split: *const f32,
) -> sys::ggml_backend_buffer_type_t {
    guarded("split_buffer_type", std::ptr::null_mut(), || {
        let n = registry().len();
        let main = usize::try_from(main_device)
            .ok()
            .filter(|&m| m < n)
            .ok_or_else(|| Error::invalid(format!("split buffer type: main device {main_device} of {n}")))?;
        let given = if tensor_split.is_null() {
            vec![0.0; n]
        } else {
            // SAFETY: the caller passes one float per registry device.
            unsafe { std::slice::from_raw_parts(tensor_split, n) }.to_vec()
        };
        let shares = shares(&given);
        let mut all = bufts();
        if let Some(s) = all.iter().find(|s| s.main == main && s.shares == shares) {
            return Ok(&s.buft as *const sys::ggml_backend_buffer_type as sys::ggml_backend_buffer_type_t);
        }
        let entry = registry().entries().nth(main).expect("checked above");
        let s: &'static mut SplitBuft = Box::leak(Box::new(SplitBuft {
            buft: sys::ggml_backend_buffer_type {
                iface: SPLIT_BUFT_IFACE,
                device: &entry.dev as *const sys::ggml_backend_device as sys::ggml_backend_dev_t,
                context: std::ptr::null_mut(),
            },
            main,
            shares,
            name: CString::new(format!("{}_Split", entry.name.to_string_lossy())).expect("no NUL"),
        }));
        let ptr: *mut SplitBuft = s;
        s.buft.context = ptr.cast();
        let total: f32 = s.shares.iter().filter(|x| x.is_finite() && **x > 0.0).sum();
        let parts: Vec<String> = registry()
            .entries()
            .zip(&s.shares)
            .map(|(e, &x)| {
                let pct = if x.is_finite() && x > 0.0 && total > 0.0 { 100.0 * x / total } else { 0.0 };
                format!("{} {pct:.0}%", e.name.to_string_lossy())
            })
            .collect();
        super::host::log(
            sys::GGML_LOG_LEVEL_INFO,
            &format!("{}: weight rows over {}", s.name.to_string_lossy(), parts.join(", ")),
        );
        all.push(s);
        Ok(&s.buft as *const sys::ggml_backend_buffer_type as sys::ggml_backend_buffer_type_t)
    })
}

// ---- buffers ----

/// What a split buffer's `context` points to: its tensors by offset.
struct SplitBufferCtx {
    split: &'static SplitBuft,
    tensors: Mutex<HashMap<u64, Arc<SplitWeight>>>,
}

impl SplitBufferCtx {
    fn tensors(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<SplitWeight>>> {
        self.tensors.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn weight(&self, t: &sys::ggml_tensor) -> Result<Arc<SplitWeight>> {
        if !t.view_src.is_null() {
            return Err(Error::unsupported("views of row-split weights"));
        }
        let off = offset_of(t)?;
        self.tensors().get(&off).cloned().ok_or_else(|| Error::invalid("tensor not placed in this split buffer"))
    }
}

/// # Safety
/// `b` must be a live buffer made by [`buft_alloc_buffer`].
unsafe fn ctx<'a>(b: sys::ggml_backend_buffer_t) -> &'a SplitBufferCtx {
    // SAFETY: our split buffers' context is the Box<SplitBufferCtx> made in buft_alloc_buffer.
    unsafe { &*((*b).context as *const SplitBufferCtx) }
}

/// The split buffer context of `t`'s buffer, if `t` lives in a split buffer.
///
/// # Safety
/// `t.buffer` is NULL or a live ggml buffer.
unsafe fn split_ctx<'a>(t: &sys::ggml_tensor) -> Option<&'a SplitBufferCtx> {
    // SAFETY: forwarded to the caller.
    let b = unsafe { t.buffer.as_ref() }?;
    split_buft(b.buft)?;
    // SAFETY: a buffer of a split buffer type was made by buft_alloc_buffer.
    (!b.context.is_null()).then(|| unsafe { ctx(t.buffer) })
}

/// Whether `t` lives in a split buffer.
///
/// # Safety
/// `t.buffer` is NULL or a live ggml buffer.
pub(super) unsafe fn is_split(t: &sys::ggml_tensor) -> bool {
    // SAFETY: forwarded to the caller.
    unsafe { t.buffer.as_ref() }.is_some_and(|b| split_buft(b.buft).is_some())
}

unsafe extern "C" fn free_buffer(b: sys::ggml_backend_buffer_t) {
    // SAFETY: ggml calls this once per buffer; the context is the Box made in buft_alloc_buffer.
    let c = unsafe { Box::from_raw((*b).context as *mut SplitBufferCtx) };
    guarded("free_buffer", (), || {
        drop(c);
        Ok(())
    })
}

unsafe extern "C" fn get_base(_b: sys::ggml_backend_buffer_t) -> *mut c_void {
    BASE as *mut c_void
}

/// Place a tensor: its rows on the devices, in proportion to the split's shares.
fn place(c: &SplitBufferCtx, t: &sys::ggml_tensor) -> Result<()> {
    if !t.view_src.is_null() || t.ne.contains(&0) {
        return Ok(());
    }
    let ty = GgmlType::from_raw(t.r#type).ok_or_else(|| Error::unsupported(format!("ggml type {}", t.r#type)))?;
    let rows = t.ne[1..]
        .iter()
        .try_fold(1i64, |a, &n| a.checked_mul(n).filter(|&r| r >= 0))
        .ok_or_else(|| Error::invalid(format!("split tensor shape {:?}", t.ne)))?;
    let bounds = row_bounds(rows, &c.split.shares, ROW_GRANULARITY);
    let (mut devices, mut kept) = (Vec::new(), vec![0]);
    for (e, w) in registry().entries().zip(bounds.windows(2)) {
        if w[1] > w[0] {
            devices.push(e.device()?);
            kept.push(w[1]);
        }
    }
    let weight = SplitWeight::new(&devices, &kept, ty, t.ne)?;
    c.tensors().insert(offset_of(t)?, Arc::new(weight));
    Ok(())
}

unsafe extern "C" fn init_tensor(b: sys::ggml_backend_buffer_t, t: *mut sys::ggml_tensor) -> sys::ggml_status {
    // SAFETY: ggml passes our live buffer and a live tensor being placed in it.
    let (c, t) = unsafe { (ctx(b), &*t) };
    match catch_unwind(AssertUnwindSafe(|| place(c, t))) {
        Ok(Ok(())) => sys::GGML_STATUS_SUCCESS,
        Ok(Err(e)) => {
            super::host::error(&format!("init_tensor (split): {e}"));
            match e {
                Error::OutOfDeviceMemory(_) | Error::OutOfHostMemory(_) => sys::GGML_STATUS_ALLOC_FAILED,
                _ => sys::GGML_STATUS_FAILED,
            }
        }
        Err(_) => sys::GGML_STATUS_FAILED,
    }
}

unsafe extern "C" fn memset_tensor(
    b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    value: u8,
    offset: usize,
    size: usize,
) {
    // SAFETY: ggml passes our live buffer and a live tensor in it.
    let (c, t) = unsafe { (ctx(b), &*t) };
    guarded("memset_tensor (split)", (), || c.weight(t)?.fill(offset as u64, size as u64, value))
}

unsafe extern "C" fn set_tensor(
    b: sys::ggml_backend_buffer_t,
    t: *mut sys::ggml_tensor,
    data: *const c_void,
    offset: usize,
    size: usize,
) {
    if size == 0 {
        return;
    }
    // SAFETY: ggml passes our live buffer, a live tensor in it, and `size` readable bytes at `data`.
    let (c, t, src) = unsafe { (ctx(b), &*t, std::slice::from_raw_parts(data as *const u8, size)) };
    guarded("set_tensor (split)", (), || c.weight(t)?.write(offset as u64, src))
}

unsafe extern "C" fn get_tensor(
    b: sys::ggml_backend_buffer_t,
    t: *const sys::ggml_tensor,
    data: *mut c_void,
    offset: usize,
    size: usize,
) {
    if size == 0 {
        return;
    }
    // SAFETY: ggml passes our live buffer, a live tensor in it, and `size` writable bytes at `data`.
    let (c, t, dst) = unsafe { (ctx(b), &*t, std::slice::from_raw_parts_mut(data as *mut u8, size)) };
    guarded("get_tensor (split)", (), || c.weight(t)?.read(offset as u64, dst))
}

unsafe extern "C" fn clear(b: sys::ggml_backend_buffer_t, value: u8) {
    // SAFETY: ggml passes our live buffer.
    let c = unsafe { ctx(b) };
    guarded("clear (split)", (), || {
        let all: Vec<_> = c.tensors().values().cloned().collect();
        all.iter().try_for_each(|w| w.fill(0, w.nbytes(), value))
    })
}

unsafe extern "C" fn reset(b: sys::ggml_backend_buffer_t) {
    // SAFETY: ggml passes our live buffer.
    let c = unsafe { ctx(b) };
    guarded("reset (split)", (), || {
        c.tensors().clear();
        Ok(())
    })
}

const SPLIT_BUFFER_IFACE: sys::ggml_backend_buffer_i = sys::ggml_backend_buffer_i {
    free_buffer: Some(free_buffer),
    get_base: Some(get_base),
    init_tensor: Some(init_tensor),
    memset_tensor: Some(memset_tensor),
    set_tensor: Some(set_tensor),
    get_tensor: Some(get_tensor),
    set_tensor_2d: None,
    get_tensor_2d: None,
    cpy_tensor: None,
    clear: Some(clear),
    reset: Some(reset),
};

// ---- buffer type ----

/// # Safety
/// `buft` must be a split buffer type made by [`split_buffer_type`].
unsafe fn split_of<'a>(buft: sys::ggml_backend_buffer_type_t) -> &'a SplitBuft {
    // SAFETY: our split buffer types' context is their leaked SplitBuft.
    unsafe { &*((*buft).context as *const SplitBuft) }
}

unsafe extern "C" fn buft_get_name(buft: sys::ggml_backend_buffer_type_t) -> *const c_char {
    // SAFETY: ggml passes one of our split buffer types.
    unsafe { split_of(buft) }.name.as_ptr()
}

unsafe extern "C" fn buft_alloc_buffer(
    buft: sys::ggml_backend_buffer_type_t,
    size: usize,
) -> sys::ggml_backend_buffer_t {
    // SAFETY: ggml passes one of our split buffer types.
    let split = unsafe { split_of(buft) };
    guarded("alloc_buffer (split)", std::ptr::null_mut(), || {
        // Device memory is taken per tensor when ggml places it (init_tensor).
        let c = SplitBufferCtx { split, tensors: Mutex::new(HashMap::new()) };
        hand_to_ggml(buft, SPLIT_BUFFER_IFACE, c, size)
    })
}

unsafe extern "C" fn buft_get_alignment(_buft: sys::ggml_backend_buffer_type_t) -> usize {
    128
}

unsafe extern "C" fn buft_is_host(_buft: sys::ggml_backend_buffer_type_t) -> bool {
    false
}

const SPLIT_BUFT_IFACE: sys::ggml_backend_buffer_type_i = sys::ggml_backend_buffer_type_i {
    get_name: Some(buft_get_name),
    alloc_buffer: Some(buft_alloc_buffer),
    get_alignment: Some(buft_get_alignment),
    get_max_size: None,
    get_alloc_size: None,
    is_host: Some(buft_is_host),
};

// ---- support and compute ----

/// For `supports_op` on `e`: `Ok(None)` when no source of `op` is row-split (the usual check applies),
/// `Ok(Some(()))` when `op` is a product over a row-split weight that `e` runs as the split's main device (every
/// device holding rows supports the product), an error otherwise.
///
/// # Safety
/// `op` is a live tensor with live sources and buffers.
pub(super) unsafe fn check_op(e: &DeviceEntry, op: &sys::ggml_tensor) -> Result<Option<()>> {
    if bufts().is_empty() {
        return Ok(None);
    }
    let mut split = None;
    for (i, &s) in op.src.iter().enumerate() {
        // SAFETY: the caller guarantees live sources.
        let Some(s) = (unsafe { s.as_ref() }) else { continue };
        // SAFETY: as above, live buffers.
        let Some(b) = (unsafe { s.buffer.as_ref() }) else { continue };
        let Some(sb) = split_buft(b.buft) else { continue };
        if op.op != sys::GGML_OP_MUL_MAT || i != 0 {
            return Err(Error::unsupported("only MUL_MAT reads a row-split weight (as src0)"));
        }
        if !sb.main_is(e) {
            return Err(Error::unsupported("a row-split weight's products run on its main device"));
        }
        if !s.view_src.is_null() || s.ne[2] != 1 || s.ne[3] != 1 {
            return Err(Error::unsupported("MUL_MAT over a row-split weight needs the whole 2-D weight"));
        }
        split = Some(sb);
    }
    let Some(sb) = split else { return Ok(None) };
    let rows = op.src.first().map_or(0, |&s| {
        // SAFETY: src0 is live (seen above).
        let s = unsafe { &*s };
        s.ne[1]
    });
    let bounds = row_bounds(rows, &sb.shares, ROW_GRANULARITY);
    for (d, w) in registry().entries().zip(bounds.windows(2)) {
        if w[1] > w[0] || std::ptr::eq(d, e) {
            super::device::supports_here(d, op as *const sys::ggml_tensor)?;
        }
    }
    Ok(Some(()))
}

/// The product over a row-split weight that node `t` is, if it is one.
///
/// # Safety
/// `t` is a live node with live sources and buffers.
unsafe fn product(t: &sys::ggml_tensor, main: &Backend) -> Result<Option<SplitProduct>> {
    if t.op != sys::GGML_OP_MUL_MAT {
        return Ok(None);
    }
    // SAFETY: the caller guarantees live sources.
    let Some(w) = (unsafe { t.src[0].as_ref() }) else { return Ok(None) };
    // SAFETY: as above.
    let Some(c) = (unsafe { split_ctx(w) }) else { return Ok(None) };
    let weight = c.weight(w)?;
    if weight.ne() != w.ne {
        return Err(Error::invalid("row-split weight with another shape than ggml's tensor"));
    }
    let device = Memory::Real(main.device());
    // SAFETY: as above.
    let (src1, dst) = unsafe { (translate::tensor(t.src[1], device, 1)?, translate::tensor(t, device, 0)?) };
    Ok(Some(SplitProduct { weight, src1, dst }))
}

/// Whether a graph has products over row-split weights.
///
/// # Safety
/// `nodes` are live tensors with live sources and buffers.
pub(super) unsafe fn has_products(nodes: &[*mut sys::ggml_tensor]) -> bool {
    if bufts().is_empty() {
        return false;
    }
    nodes.iter().any(|&n| {
        // SAFETY: forwarded to the caller.
        let t = unsafe { &*n };
        // SAFETY: as above.
        t.op == sys::GGML_OP_MUL_MAT && unsafe { t.src[0].as_ref() }.is_some_and(|w| unsafe { is_split(w) })
    })
}

/// Compute a graph with products over row-split weights on `main`: the nodes between them as engine graphs, the
/// products (grouped where consecutive ones read the same src1) by `runner`.
///
/// # Safety
/// `nodes` are live tensors with live sources and buffers.
pub(super) unsafe fn compute(main: &Backend, runner: &SplitRunner, nodes: &[*mut sys::ggml_tensor]) -> Result<()> {
    let device = main.device().clone();
    let mut graph = Graph::new();
    let mut i = 0;
    while i < nodes.len() {
        // SAFETY: forwarded to the caller.
        let t = unsafe { &*nodes[i] };
        if t.flags & sys::GGML_TENSOR_FLAG_COMPUTE == 0 || translate::is_noop(t) {
            i += 1;
            continue;
        }
        // SAFETY: as above.
        let Some(first) = unsafe { product(t, main) }? else {
            // SAFETY: as above.
            let node = unsafe { translate::node(nodes[i], Memory::Real(&device)) }
                .map_err(|e| super::backend::at_node(i, e))?;
            if let Some(node) = node {
                graph.push(node)?;
            }
            i += 1;
            continue;
        };
        // Later products that read the same src1 with nothing computed in between go with it.
        let mut group = vec![first];
        let mut j = i + 1;
        while j < nodes.len() {
            // SAFETY: as above.
            let u = unsafe { &*nodes[j] };
            if u.flags & sys::GGML_TENSOR_FLAG_COMPUTE == 0 || translate::is_noop(u) {
                j += 1;
                continue;
            }
            // SAFETY: as above.
            match unsafe { product(u, main) }? {
                Some(p) if p.shares_src1(&group[0]) => {
                    group.push(p);
                    j += 1;
                }
                _ => break,
            }
        }
        if !graph.is_empty() {
            main.compute_async(&graph)?;
            graph = Graph::new();
        }
        runner.run(main, &group, &mut graph)?;
        i = j;
    }
    if !graph.is_empty() {
        main.compute_async(&graph)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::{registry, split_buffer_type, split_buft, sys, SPLIT_BUFT_IFACE};

    fn name(buft: sys::ggml_backend_buffer_type_t) -> String {
        let get = SPLIT_BUFT_IFACE.get_name.expect("has a name");
        // SAFETY: `buft` is a split buffer type; its name is a NUL-terminated string it keeps.
        unsafe { CStr::from_ptr(get(buft)) }.to_string_lossy().into_owned()
    }

    #[test]
    fn split_buffer_types_are_made_once_per_main_device_and_shares() {
        let n = registry().len();
        assert!(n > 0, "no usable Vulkan device (lavapipe counts)");
        // SAFETY: NULL shares are allowed; out-of-range main devices give NULL.
        unsafe {
            assert!(split_buffer_type(-1, std::ptr::null()).is_null());
            assert!(split_buffer_type(n as i32, std::ptr::null()).is_null());
        }
        let mut shares = vec![0.0f32; n];
        // SAFETY: `shares` holds one float per registry device.
        let (a, b) = unsafe { (split_buffer_type(0, std::ptr::null()), split_buffer_type(0, shares.as_ptr())) };
        assert!(!a.is_null());
        assert_eq!(a, b, "all-zero shares are no shares: the same type");
        assert_eq!(name(a), "GGVK0_Split");
        let first = registry().entries().next().expect("one device");
        assert!(split_buft(a).is_some_and(|s| s.main_is(first)));
        shares[0] = f32::NAN;
        // SAFETY: as above.
        let c = unsafe { split_buffer_type(0, shares.as_ptr()) };
        assert_eq!(c, a, "shares that are not positive numbers count as none");
        shares[0] = 2.0;
        // SAFETY: as above.
        let d = unsafe { split_buffer_type(0, shares.as_ptr()) };
        assert!(!d.is_null());
        if n > 1 {
            // SAFETY: as above.
            let e = unsafe { split_buffer_type(1, shares.as_ptr()) };
            assert_ne!(e, d);
            assert!(split_buft(e).is_some_and(|s| !s.main_is(first)));
        }
        // The device's own buffer type is no split type.
        let own = &first.buft as *const sys::ggml_backend_buffer_type as sys::ggml_backend_buffer_type_t;
        assert!(split_buft(own).is_none());
    }
}
