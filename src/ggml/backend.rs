//! The GGVK backend (stream) as ggml sees it: graph compute through the engine, synchronisation, and
//! tensor transfers ordered after the work already submitted.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use super::buffer::{buffer_of, ggml_nbytes, guarded, offset_of, BUFFER_IFACE};
use super::device::DeviceEntry;
use super::known_graphs::{Description, KnownGraphs};
use super::split;
use super::sys;
use super::translate::{self, Memory};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::replay::GraphKey;
use crate::graph::Graph;
use crate::split::SplitRunner;
use crate::timeline::{self, Host};
use crate::vk::Device;

/// What a ggml backend's `context` points to.
struct BackendCtx {
    inner: Backend,
    entry: &'static DeviceEntry,
    /// Graphs seen before, replayed without translating them again.
    known: KnownGraphs,
    /// Products over row-split weights: the other devices' streams and scratch.
    split: SplitRunner,
}

static GUID: sys::ggml_guid = *b"ggvk-vulkan-rs01";

/// Create a ggml backend on `entry`'s device.
pub fn create(entry: &'static DeviceEntry, dev: sys::ggml_backend_dev_t) -> Result<sys::ggml_backend_t> {
    let device = entry.device()?;
    let inner = Backend::on(&device)?;
    let ctx = Box::into_raw(Box::new(BackendCtx {
        inner,
        entry,
        known: KnownGraphs::default(),
        split: SplitRunner::default(),
    }));
    let be = Box::new(sys::ggml_backend {
        guid: &GUID as *const sys::ggml_guid as sys::ggml_guid_t,
        iface: BACKEND_IFACE,
        device: dev,
        context: ctx as *mut c_void,
    });
    Ok(Box::into_raw(be))
}

/// The engine behind a ggml backend, if it is one of ours (its guid is ggvk's).
///
/// # Safety
/// `b` must be NULL or a live ggml backend.
pub(super) unsafe fn engine_of<'a>(b: sys::ggml_backend_t) -> Option<&'a Backend> {
    // SAFETY: the caller guarantees `b` is NULL or live; a live backend's guid points to 16 bytes.
    let be = unsafe { b.as_ref() }?;
    // SAFETY: as above.
    if be.guid.is_null() || unsafe { *be.guid } != GUID || be.context.is_null() {
        return None;
    }
    // SAFETY: a backend with our guid was made by create, its context a live Box<BackendCtx>.
    Some(&unsafe { ctx(b) }.inner)
}

/// The context of one of our backends.
///
/// # Safety
/// `b` must be a live backend made by [`create`].
unsafe fn ctx<'a>(b: sys::ggml_backend_t) -> &'a BackendCtx {
    // SAFETY: our backends' context is the Box<BackendCtx> made in create, alive until free.
    unsafe { &*((*b).context as *const BackendCtx) }
}

unsafe extern "C" fn get_name(b: sys::ggml_backend_t) -> *const c_char {
    // SAFETY: ggml passes one of our live backends.
    unsafe { ctx(b) }.entry.name.as_ptr()
}

unsafe extern "C" fn free(b: sys::ggml_backend_t) {
    // SAFETY: ggml frees each backend once; both boxes were made in create.
    let (be, ctx) = unsafe {
        let be = Box::from_raw(b);
        let ctx = Box::from_raw(be.context as *mut BackendCtx);
        (be, ctx)
    };
    guarded("free backend", (), || {
        ctx.inner.synchronize()?;
        drop(ctx);
        drop(be);
        Ok(())
    })
}

unsafe extern "C" fn synchronize(b: sys::ggml_backend_t) {
    // SAFETY: ggml passes one of our live backends.
    let c = unsafe { ctx(b) };
    guarded("synchronize", (), || timeline::host(Host::Wait, || c.inner.synchronize()))
}

unsafe extern "C" fn set_tensor_async(
    b: sys::ggml_backend_t,
    t: *mut sys::ggml_tensor,
    data: *const c_void,
    offset: usize,
    size: usize,
) {
    // SAFETY: ggml passes one of our live backends and a tensor in one of our buffers.
    let c = unsafe { ctx(b) };
    // Transfers are synchronous: finish what this stream submitted first so they stay in order.
    guarded("set_tensor_async", (), || timeline::host(Host::Wait, || c.inner.synchronize()));
    // SAFETY: as above; the buffer methods check the rest.
    unsafe {
        if let Some(f) = BUFFER_IFACE.set_tensor {
            f((*t).buffer, t, data, offset, size)
        }
    }
}

unsafe extern "C" fn get_tensor_async(
    b: sys::ggml_backend_t,
    t: *const sys::ggml_tensor,
    data: *mut c_void,
    offset: usize,
    size: usize,
) {
    // SAFETY: ggml passes one of our live backends and a tensor in one of our buffers.
    let c = unsafe { ctx(b) };
    if size == 0 {
        return;
    }
    // A staged device buffer of this device: the copy is queued behind the graph now and its bytes delivered at
    // synchronize (no wait here, no submit-and-wait of its own after the graph).
    let started = guarded("get_tensor_async", false, || {
        // SAFETY: a live tensor; its buffer is live (buffer_of: None where it is not one of ours).
        let (tensor, buf) = unsafe { (&*t, buffer_of((*t).buffer)) };
        let Some(buf) = buf else { return Ok(false) };
        let dst = crate::ffi::HostDst::new(data as *mut u8, size);
        c.inner.read_async(&buf, offset_of(tensor)? + offset as u64, size as u64, Box::new(move |b| dst.put(b)))
    });
    if started {
        return;
    }
    // Anything else is read at once, after this stream's work.
    guarded("get_tensor_async", (), || timeline::host(Host::Wait, || c.inner.synchronize()));
    // SAFETY: as above.
    unsafe {
        if let Some(f) = BUFFER_IFACE.get_tensor {
            f((*t).buffer, t, data, offset, size)
        }
    }
}

/// Translate and submit a ggml graph.
fn compute(c: &BackendCtx, cgraph: *mut sys::ggml_cgraph) -> Result<()> {
    let device = c.inner.device().clone();
    // SAFETY: ggml passes a live graph; its nodes array holds n_nodes live tensors.
    let (nodes, uid) = unsafe {
        let g = cgraph.as_ref().ok_or_else(|| Error::invalid("NULL graph"))?;
        let nodes = if g.n_nodes <= 0 || g.nodes.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(g.nodes, g.n_nodes as usize)
        };
        (nodes, g.uid)
    };
    // Products over row-split weights (`-sm row`) cut the graph into parts computed in turn.
    // SAFETY: as above, live nodes with live sources.
    if unsafe { split::has_products(nodes) } {
        // SAFETY: as above.
        return unsafe { split::compute(&c.inner, &c.split, nodes) };
    }
    // The graph ggml computed last time, handed over again unchanged (same uid: ggml's scheduler did not split it
    // again; same nodes): replay it as it was.
    if let Some(key) = c.known.same_as_last(uid, nodes) {
        if timeline::host(Host::Replay, || c.inner.replay_key(&key))?.is_some() {
            return Ok(());
        }
    }
    // A graph seen before: replay its recording without translating it.
    // SAFETY: as above, live nodes with live sources.
    let description = unsafe { Description::of(nodes) };
    if let Some(key) = c.known.find(&description) {
        if timeline::host(Host::Replay, || c.inner.replay_key(&key))?.is_some() {
            c.known.note_last(uid, nodes, &key);
            return Ok(());
        }
        c.known.forget(&description);
    }
    let mut graph = Graph::new();
    for (i, &n) in nodes.iter().enumerate() {
        // SAFETY: each node is a live tensor.
        let t = unsafe { &*n };
        if t.flags & sys::GGML_TENSOR_FLAG_COMPUTE == 0 {
            continue;
        }
        // SAFETY: as above; sources of live nodes are live.
        let node = unsafe { translate::node(n, Memory::Real(&device)) }.map_err(|e| at_node(i, e))?;
        if let Some(node) = node {
            graph.push(node)?;
        }
    }
    let stats = c.inner.compute_async(&graph)?;
    // Kept for replay (recorded this time, or replayed through the engine's own key): remember its description.
    if stats.kept {
        let key = std::sync::Arc::new(GraphKey::of(&graph));
        c.known.note_last(uid, nodes, &key);
        c.known.remember(description, key);
    }
    Ok(())
}

/// `e` with the graph node it concerns named in its message.
pub(super) fn at_node(i: usize, e: Error) -> Error {
    match e {
        Error::Unsupported(m) => Error::Unsupported(format!("graph node {i}: {m}")),
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("graph node {i}: {m}")),
        other => other,
    }
}

unsafe extern "C" fn graph_compute(b: sys::ggml_backend_t, cgraph: *mut sys::ggml_cgraph) -> sys::ggml_status {
    // SAFETY: ggml passes one of our live backends.
    let c = unsafe { ctx(b) };
    // Out of memory (device or host, or past GGVK_MEMORY_BUDGET) is ALLOC_FAILED, anything else FAILED; the error
    // is logged either way and the backend stays usable (after a device loss every later call fails).
    guarded("graph_compute", sys::GGML_STATUS_FAILED, || match timeline::host(Host::Compute, || compute(c, cgraph)) {
        Ok(()) => Ok(sys::GGML_STATUS_SUCCESS),
        Err(e @ (Error::OutOfDeviceMemory(_) | Error::OutOfHostMemory(_))) => {
            super::host::error(&format!("graph_compute: {e}"));
            Ok(sys::GGML_STATUS_ALLOC_FAILED)
        }
        Err(e) => Err(e),
    })
}

/// Copy `src` (in a GGVK buffer of `backend_src`'s device) into `dst` (in a GGVK buffer of `backend_dst`'s device,
/// another device) without waiting for either stream first: the read is a copy queued after the source device's
/// work (behind a barrier from its writes) and waited for, and the bytes go to the destination with its next
/// submission (small ones) or at once. ggml's fallback waits for both streams before a blocking copy through host
/// memory; its scheduler makes the destination wait for its readers of `dst` (an event) before calling this.
/// `false` (nothing done) for anything else: ggml then copies as before.
unsafe extern "C" fn cpy_tensor_async(
    backend_src: sys::ggml_backend_t,
    backend_dst: sys::ggml_backend_t,
    src: *const sys::ggml_tensor,
    dst: *mut sys::ggml_tensor,
) -> bool {
    guarded("cpy_tensor_async", false, || {
        // SAFETY: ggml passes live backends (ours or not: engine_of checks) and live tensors.
        let (Some(from), Some(to), Some(s), Some(d)) =
            (unsafe { (engine_of(backend_src), engine_of(backend_dst), src.as_ref(), dst.as_ref()) })
        else {
            return Ok(false);
        };
        // SAFETY: a live tensor's buffer is live.
        let (Some(sb), Some(db)) = (unsafe { (buffer_of(s.buffer), buffer_of(d.buffer)) }) else { return Ok(false) };
        let len = ggml_nbytes(s);
        if !Arc::ptr_eq(sb.device(), from.device())
            || !Arc::ptr_eq(db.device(), to.device())
            || Arc::ptr_eq(from.device(), to.device())
            || len != ggml_nbytes(d)
        {
            return Ok(false);
        }
        // Large copies (prompt activations) through host memory both devices imported, where they can.
        if timeline::host(Host::Transfer, || sb.copy_across(offset_of(s)?, &db, offset_of(d)?, len))? {
            return Ok(true);
        }
        let len = usize::try_from(len).map_err(|_| Error::invalid("tensor too large for this host"))?;
        let mut bytes = vec![0u8; len];
        timeline::host(Host::Transfer, || {
            sb.read(offset_of(s)?, &mut bytes)?;
            db.write(offset_of(d)?, &bytes)
        })?;
        Ok(true)
    })
}

const BACKEND_IFACE: sys::ggml_backend_i = sys::ggml_backend_i {
    get_name: Some(get_name),
    free: Some(free),
    set_tensor_async: Some(set_tensor_async),
    get_tensor_async: Some(get_tensor_async),
    set_tensor_2d_async: None,
    get_tensor_2d_async: None,
    cpy_tensor_async: Some(cpy_tensor_async),
    synchronize: Some(synchronize),
    graph_plan_create: None,
    graph_plan_free: None,
    graph_plan_update: None,
    graph_plan_compute: None,
    graph_compute: Some(graph_compute),
    event_record: Some(event_record),
    event_wait: Some(event_wait),
    graph_optimize: None,
};

// ---- events ----
// An event is a point in one device's queue: the progress value of the last submission when it was recorded
// (`Device::progress`, a timeline semaphore every submission signals). Recording submits nothing and does not
// wait, so ggml's scheduler can give one device the next batch while another still works (pipeline parallelism
// over devices split by layers). Waiting for an event, on the host or from a backend, waits on the host for that
// point; two Vulkan devices share no semaphore, and on one device later submissions already follow earlier ones.
// Without timeline semaphores recording an event waits for the stream instead (the event is then complete).

/// What a ggml event's `context` points to: the point it recorded, if any.
struct EventCtx {
    point: Mutex<Option<(Arc<Device>, u64)>>,
}

impl EventCtx {
    fn wait(&self) -> Result<()> {
        let point = self.point.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match point {
            Some((device, value)) => timeline::host(Host::Wait, || device.wait_progress(value)),
            None => Ok(()),
        }
    }
}

/// The context of one of our events.
///
/// # Safety
/// `event` must be NULL or an event made by [`event_new`].
unsafe fn event_ctx<'a>(event: sys::ggml_backend_event_t) -> Option<&'a EventCtx> {
    // SAFETY: the caller guarantees `event` is NULL or ours (context: a live Box<EventCtx>, possibly NULL).
    unsafe { event.as_ref().and_then(|e| (e.context as *const EventCtx).as_ref()) }
}

/// A new event of `dev` (never NULL unless out of memory).
///
/// # Safety
/// ggml passes one of our devices.
pub unsafe extern "C" fn event_new(dev: sys::ggml_backend_dev_t) -> sys::ggml_backend_event_t {
    let ctx = Box::into_raw(Box::new(EventCtx { point: Mutex::new(None) }));
    Box::into_raw(Box::new(sys::ggml_backend_event { device: dev, context: ctx as *mut c_void }))
}

/// Free an event made by [`event_new`].
///
/// # Safety
/// `event` came from [`event_new`] and is freed once.
pub unsafe extern "C" fn event_free(_dev: sys::ggml_backend_dev_t, event: sys::ggml_backend_event_t) {
    if !event.is_null() {
        // SAFETY: made by event_new with Box::into_raw (its context too); ggml frees it once.
        unsafe {
            let e = Box::from_raw(event);
            if !e.context.is_null() {
                drop(Box::from_raw(e.context as *mut EventCtx));
            }
        }
    }
}

/// Wait on the host until the work recorded by `event` is complete.
///
/// # Safety
/// `event` is NULL or one of our events.
pub unsafe extern "C" fn event_synchronize(_dev: sys::ggml_backend_dev_t, event: sys::ggml_backend_event_t) {
    // SAFETY: forwarded to the caller.
    if let Some(e) = unsafe { event_ctx(event) } {
        guarded("event_synchronize", (), || e.wait())
    }
}

/// Record in `event` the point the backend's device has been given work up to.
unsafe extern "C" fn event_record(b: sys::ggml_backend_t, event: sys::ggml_backend_event_t) {
    // SAFETY: ggml passes one of our live backends and one of our events.
    let (c, e) = unsafe { (ctx(b), event_ctx(event)) };
    guarded("event_record", (), || {
        let device = c.inner.device();
        let point = match device.progress()? {
            Some(value) => Some((device.clone(), value)),
            None => {
                timeline::host(Host::Wait, || c.inner.synchronize())?;
                None
            }
        };
        // A host waiting for the event expects the reads started before it in their destinations.
        c.inner.finish_reads()?;
        if let Some(e) = e {
            *e.point.lock().unwrap_or_else(|p| p.into_inner()) = point;
        }
        Ok(())
    })
}

/// Make the backend's later work wait for `event`: on the host (see above).
unsafe extern "C" fn event_wait(_b: sys::ggml_backend_t, event: sys::ggml_backend_event_t) {
    // SAFETY: ggml passes one of our events.
    if let Some(e) = unsafe { event_ctx(event) } {
        guarded("event_wait", (), || e.wait())
    }
}
