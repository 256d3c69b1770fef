//! Command recording for graphs: a ring of command buffers (one per submission in flight), descriptor
//! arenas, barrier placement from read/write hazards, and optional GPU timestamps per dispatch.

use std::sync::Arc;

use ash::vk;

use super::device::Device;
use super::kept::{KeptCopies, KeptKey};
use super::memory::Buffer;
use super::pace::Pace;
use super::pipeline::Pipeline;
use crate::error::{Error, Result, VkResultExt};

/// Submissions that may be in flight at once per stream.
const RING: usize = 3;
/// Most storage-buffer bindings a kernel has.
const MAX_BINDINGS: usize = 8;
/// Descriptor sets per pool; pools are added as a graph needs them.
const SETS_PER_POOL: u32 = 512;
/// Storage-buffer descriptors per pool.
const DESCRIPTORS_PER_POOL: u32 = SETS_PER_POOL * 4;

/// Barrier at the start of transfer work: wait for everything earlier on the queue (shader and transfer
/// writes), make it visible to the copy.
///
/// # Safety
/// `cmd` must be in the recording state.
pub(crate) unsafe fn barrier_into_transfer(device: &ash::Device, cmd: vk::CommandBuffer) {
    let mb = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE)];
    // SAFETY: forwarded to the caller.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &mb,
            &[],
            &[],
        )
    }
}

/// Barrier at the end of any submission: make its writes visible to later compute, transfer and host reads.
///
/// # Safety
/// `cmd` must be in the recording state.
pub(crate) unsafe fn barrier_to_everything(device: &ash::Device, cmd: vk::CommandBuffer) {
    let mb = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(
            vk::AccessFlags::HOST_READ
                | vk::AccessFlags::SHADER_READ
                | vk::AccessFlags::SHADER_WRITE
                | vk::AccessFlags::TRANSFER_READ
                | vk::AccessFlags::TRANSFER_WRITE,
        )];
    // SAFETY: forwarded to the caller.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST | vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &mb,
            &[],
            &[],
        )
    }
}

/// A command pool of the device's compute queue family whose buffers may be reset one by one.
pub(crate) fn create_command_pool(device: &Device) -> Result<vk::CommandPool> {
    let info = vk::CommandPoolCreateInfo::default()
        .queue_family_index(device.queue_family())
        .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
    // SAFETY: valid device and create info.
    unsafe { device.raw().create_command_pool(&info, None) }.vk_context("vkCreateCommandPool")
}

/// A command pool with one primary command buffer and an unsignalled fence (for one submission at a time). On
/// error nothing is left behind.
pub(crate) fn create_single_submitter(device: &Device) -> Result<(vk::CommandPool, vk::CommandBuffer, vk::Fence)> {
    let raw = device.raw();
    let pool = create_command_pool(device)?;
    let alloc = vk::CommandBufferAllocateInfo::default()
        .command_pool(pool)
        .level(vk::CommandBufferLevel::PRIMARY)
        .command_buffer_count(1);
    let made = (|| {
        // SAFETY: `pool` was just created.
        let cmd = unsafe { raw.allocate_command_buffers(&alloc) }.vk_context("vkAllocateCommandBuffers")?[0];
        // SAFETY: valid device.
        let fence = unsafe { raw.create_fence(&vk::FenceCreateInfo::default(), None) }.vk_context("vkCreateFence")?;
        Ok::<_, Error>((cmd, fence))
    })();
    match made {
        Ok((cmd, fence)) => Ok((pool, cmd, fence)),
        Err(e) => {
            // SAFETY: nothing allocated from the pool is in use (destroying it frees its command buffer).
            unsafe { raw.destroy_command_pool(pool, None) };
            Err(e)
        }
    }
}

/// One buffer range a dispatch binds, and whether the kernel writes it.
#[derive(Clone)]
pub struct Binding {
    /// The buffer.
    pub buffer: Arc<Buffer>,
    /// Descriptor offset (a multiple of `minStorageBufferOffsetAlignment`).
    pub offset: u64,
    /// Descriptor range (at most `maxStorageBufferRange`).
    pub range: u64,
    /// Bytes the kernel may actually touch, for hazard tracking: `[start, end)` in buffer bytes.
    pub touched: (u64, u64),
    /// The kernel writes through this binding.
    pub write: bool,
}

#[derive(Default)]
struct Hazards {
    /// (buffer id, start, end, written) of every range touched since the last barrier.
    ranges: Vec<(u64, u64, u64, bool)>,
}

impl Hazards {
    /// Whether a dispatch with these bindings must wait for earlier ones.
    fn conflicts(&self, bindings: &[Binding]) -> bool {
        bindings.iter().any(|b| {
            let (s, e) = b.touched;
            self.ranges.iter().any(|&(id, rs, re, w)| id == b.buffer.id() && rs < e && s < re && (w || b.write))
        })
    }

    fn add(&mut self, bindings: &[Binding]) {
        for b in bindings {
            self.ranges.push((b.buffer.id(), b.touched.0, b.touched.1, b.write));
        }
    }
}

struct DescriptorArena {
    pools: Vec<vk::DescriptorPool>,
    current: usize,
}

impl DescriptorArena {
    fn alloc(&mut self, device: &ash::Device, layout: vk::DescriptorSetLayout) -> Result<vk::DescriptorSet> {
        let layouts = [layout];
        loop {
            if self.current == self.pools.len() {
                let sizes = [vk::DescriptorPoolSize::default()
                    .ty(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(DESCRIPTORS_PER_POOL)];
                let info = vk::DescriptorPoolCreateInfo::default().max_sets(SETS_PER_POOL).pool_sizes(&sizes);
                // SAFETY: valid device and create info.
                let pool =
                    unsafe { device.create_descriptor_pool(&info, None) }.vk_context("vkCreateDescriptorPool")?;
                self.pools.push(pool);
            }
            let info = vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(self.pools[self.current])
                .set_layouts(&layouts);
            // SAFETY: the pool belongs to this device and is not used by another thread (the stream is &mut).
            match unsafe { device.allocate_descriptor_sets(&info) } {
                Ok(s) => return Ok(s[0]),
                Err(vk::Result::ERROR_OUT_OF_POOL_MEMORY) | Err(vk::Result::ERROR_FRAGMENTED_POOL) => {
                    self.current += 1;
                }
                Err(r) => return Err(Error::vk("vkAllocateDescriptorSets", r)),
            }
        }
    }

    fn reset(&mut self, device: &ash::Device) -> Result<()> {
        for &p in &self.pools {
            // SAFETY: the submission that used these sets has completed (its fence was waited on).
            unsafe { device.reset_descriptor_pool(p, vk::DescriptorPoolResetFlags::empty()) }
                .vk_context("vkResetDescriptorPool")?;
        }
        self.current = 0;
        Ok(())
    }

    fn destroy(&mut self, device: &ash::Device) {
        for p in self.pools.drain(..) {
            // SAFETY: the stream waited for its submissions before teardown.
            unsafe { device.destroy_descriptor_pool(p, None) };
        }
    }
}

struct Slot {
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    pending: bool,
    descriptors: DescriptorArena,
    /// Buffers (and pipelines) used by the submission, kept alive until its fence signals.
    keep: Vec<Arc<Buffer>>,
    keep_pipelines: Vec<Arc<Pipeline>>,
    queries: Option<(vk::QueryPool, u32)>,
    labels: Vec<String>,
    /// Ids of the buffers the commands write (a replay tells the device again, see [`super::kept`]).
    written: Vec<u64>,
    /// Where the commands read kept copies: their store and its epoch when they were submitted.
    kept_epoch: Option<(Arc<KeptCopies>, u64)>,
}

/// Per-dispatch GPU time, when timestamps were requested.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// The label the op gave the dispatch.
    pub label: String,
    /// Microseconds between the timestamps written before and after it.
    pub micros: f64,
}

/// A command stream: the per-backend recording context. Not shared between threads (the backend wraps it
/// in a mutex).
pub struct CommandStream {
    device: Arc<Device>,
    pool: vk::CommandPool,
    slots: Vec<Slot>,
    next: usize,
    last_times: Vec<DispatchTime>,
    /// Device memory for intermediate results of kernels (e.g. quantized activations), grown on demand.
    /// Submissions in flight keep older buffers alive through their bindings.
    scratch: Option<Arc<Buffer>>,
    /// Copies derived from buffers that this stream's submissions keep using ([`super::kept`]).
    kept: Arc<KeptCopies>,
}

impl Slot {
    /// A slot for a fresh command buffer and its (unsignalled) fence, nothing pending.
    fn new(cmd: vk::CommandBuffer, fence: vk::Fence) -> Self {
        Slot {
            cmd,
            fence,
            pending: false,
            descriptors: DescriptorArena { pools: Vec::new(), current: 0 },
            keep: Vec::new(),
            keep_pipelines: Vec::new(),
            written: Vec::new(),
            kept_epoch: None,
            queries: None,
            labels: Vec::new(),
        }
    }
}

impl CommandStream {
    /// Create the command pool and the ring of command buffers and fences.
    pub fn new(device: &Arc<Device>) -> Result<Self> {
        let raw = device.raw();
        let pool = create_command_pool(device)?;
        let mut stream = CommandStream {
            device: device.clone(),
            pool,
            slots: Vec::new(),
            next: 0,
            last_times: Vec::new(),
            scratch: None,
            kept: device.new_kept_store(),
        };
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(RING as u32);
        // SAFETY: `pool` was just created; on error `stream`'s Drop destroys the pool.
        let cmds = unsafe { raw.allocate_command_buffers(&alloc) }.vk_context("vkAllocateCommandBuffers")?;
        for cmd in cmds {
            // SAFETY: valid device.
            let fence =
                unsafe { raw.create_fence(&vk::FenceCreateInfo::default(), None) }.vk_context("vkCreateFence")?;
            stream.slots.push(Slot::new(cmd, fence));
        }
        Ok(stream)
    }

    /// The device.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    fn retire(&mut self, i: usize) -> Result<()> {
        let device = self.device.clone();
        let slot = &mut self.slots[i];
        let was_pending = slot.pending;
        if was_pending {
            device.wait_fence(slot.fence)?;
            slot.pending = false;
        }
        // A recording abandoned on an error leaves no pending work but may hold buffers and descriptor sets.
        // A slot keeps its query pool after a timed submission; an untimed one since has no labels and no queries.
        if let (true, false, Some((qp, _))) = (was_pending, slot.labels.is_empty(), slot.queries) {
            // Only the queries written (two per timed dispatch) ever become available.
            let mut ticks = vec![0u64; 2 * slot.labels.len()];
            // SAFETY: the submission that wrote these queries has completed.
            let got = unsafe { device.raw().get_query_pool_results(qp, 0, &mut ticks, vk::QueryResultFlags::TYPE_64) };
            if got.is_ok() && !ticks.is_empty() {
                let period = f64::from(device.caps().timestamp_period);
                self.last_times = slot
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(k, l)| DispatchTime {
                        label: l.clone(),
                        micros: ticks[2 * k + 1].wrapping_sub(ticks[2 * k]) as f64 * period / 1000.0,
                    })
                    .collect();
            }
        }
        slot.keep.clear();
        slot.keep_pipelines.clear();
        slot.descriptors.reset(device.raw())
    }

    /// Wait for every submission of this stream.
    pub fn synchronize(&mut self) -> Result<()> {
        for i in 0..self.slots.len() {
            self.retire(i)?;
        }
        Ok(())
    }

    /// GPU times of the dispatches of the last completed timed submission.
    pub fn last_times(&self) -> &[DispatchTime] {
        &self.last_times
    }

    /// Start recording a submission. With `timestamps = Some(n)`, up to `n` dispatches are timed;
    /// `scratch_bytes` of scratch memory are made available through [`Recorder::scratch`], handed out from
    /// `scratch_start` on (a graph recorded in several submissions continues where the previous one stopped).
    pub fn begin(&mut self, timestamps: Option<u32>, scratch_bytes: u64, scratch_start: u64) -> Result<Recorder<'_>> {
        self.device.check_alive()?;
        self.ensure_scratch(scratch_bytes)?;
        let scratch = self.scratch.clone();
        let i = self.next;
        self.retire(i)?;
        self.next = (self.next + 1) % self.slots.len();
        let device = self.device.clone();
        let timestamps = timestamps.filter(|_| device.caps().timestamps);
        let kept = self.kept.clone();
        Recorder::start(
            device,
            &mut self.slots[i],
            timestamps,
            true,
            (scratch, scratch_bytes, scratch_start),
            None,
            kept,
        )
    }

    /// Start recording a whole graph into `recording`, to be submitted now and replayed later
    /// ([`Recording::replay`]); `scratch_bytes` as for [`Self::begin`] (from offset 0). Queue order and the
    /// barrier each submission starts with order it after everything this stream submitted before.
    pub fn begin_recording<'r>(&mut self, recording: &'r mut Recording, scratch_bytes: u64) -> Result<Recorder<'r>> {
        self.device.check_alive()?;
        if !Arc::ptr_eq(&recording.device, &self.device) {
            return Err(Error::Internal("a recording of another device".into()));
        }
        self.ensure_scratch(scratch_bytes)?;
        recording.retire()?;
        recording.buffers.clear();
        recording.slot.descriptors.reset(self.device.raw())?;
        recording.slot.keep_pipelines.clear();
        let scratch = self.scratch.clone();
        if recording.span.is_none() && crate::timeline::enabled() && self.device.caps().timestamps {
            let info = vk::QueryPoolCreateInfo::default().query_type(vk::QueryType::TIMESTAMP).query_count(2);
            // SAFETY: valid device and create info.
            recording.span =
                Some(unsafe { self.device.raw().create_query_pool(&info, None) }.vk_context("vkCreateQueryPool")?);
        }
        let span = recording.span;
        let kept = self.kept.clone();
        Recorder::start(self.device.clone(), &mut recording.slot, None, false, (scratch, scratch_bytes, 0), span, kept)
    }

    /// Grow the scratch buffer to at least `scratch_bytes` (geometrically, so a slowly growing graph does not
    /// reallocate every time). Submissions in flight and recordings keep the older buffer alive as they need it.
    fn ensure_scratch(&mut self, scratch_bytes: u64) -> Result<()> {
        if scratch_bytes > 0 && self.scratch.as_ref().is_none_or(|s| s.size() < scratch_bytes) {
            let size = scratch_bytes.max(self.scratch.as_ref().map_or(0, |s| s.size() * 2));
            self.scratch = Some(Buffer::new(&self.device, size, "ggvk scratch")?);
        }
        Ok(())
    }
}

impl<'a> Recorder<'a> {
    /// Begin `slot`'s command buffer (retired by the caller) and open a recorder on it.
    fn start(
        device: Arc<Device>,
        slot: &'a mut Slot,
        timestamps: Option<u32>,
        one_time: bool,
        (scratch, scratch_bytes, scratch_start): (Option<Arc<Buffer>>, u64, u64),
        span: Option<vk::QueryPool>,
        kept: Arc<KeptCopies>,
    ) -> Result<Self> {
        let raw = device.raw();
        if let Some(n) = timestamps {
            let want = 2 * n.max(1);
            if slot.queries.is_none_or(|(_, have)| have < want) {
                if let Some((qp, _)) = slot.queries.take() {
                    // SAFETY: the slot is retired, so its query pool is unused.
                    unsafe { raw.destroy_query_pool(qp, None) };
                }
                let info = vk::QueryPoolCreateInfo::default().query_type(vk::QueryType::TIMESTAMP).query_count(want);
                // SAFETY: valid device and create info.
                let qp = unsafe { raw.create_query_pool(&info, None) }.vk_context("vkCreateQueryPool")?;
                slot.queries = Some((qp, want));
            }
        }
        slot.labels.clear();
        slot.written.clear();
        slot.kept_epoch = None;
        let flags =
            if one_time { vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT } else { vk::CommandBufferUsageFlags::empty() };
        let begin = vk::CommandBufferBeginInfo::default().flags(flags);
        // SAFETY: the slot is retired (not pending); the pool allows per-buffer reset.
        unsafe {
            raw.reset_command_buffer(slot.cmd, vk::CommandBufferResetFlags::empty())
                .vk_context("vkResetCommandBuffer")?;
            raw.begin_command_buffer(slot.cmd, &begin).vk_context("vkBeginCommandBuffer")?;
            if let (Some((qp, n)), Some(_)) = (slot.queries, timestamps) {
                raw.cmd_reset_query_pool(slot.cmd, qp, 0, n);
            }
            // The graph's span (`GGVK_TIMELINE`): a timestamp before everything, one after (in `submit`).
            if let Some(qp) = span {
                raw.cmd_reset_query_pool(slot.cmd, qp, 0, 2);
                raw.cmd_write_timestamp(slot.cmd, vk::PipelineStageFlags::TOP_OF_PIPE, qp, 0);
            }
            // Earlier submissions (other streams, transfers) may have written what we read.
            let mb = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE)];
            raw.cmd_pipeline_barrier(
                slot.cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::DependencyFlags::empty(),
                &mb,
                &[],
                &[],
            );
        }
        Ok(Recorder {
            device,
            slot,
            derived: Vec::new(),
            scratch,
            scratch_used: scratch_start,
            scratch_limit: scratch_bytes,
            hazards: Hazards::default(),
            timed: timestamps.is_some(),
            span,
            dispatches: 0,
            barriers: 0,
            node_label: String::new(),
            kept,
            kept_pending: Vec::new(),
            kept_sources: Vec::new(),
        })
    }
}

/// A graph's commands recorded once and submitted again as they are while the same graph comes back (same ops,
/// shapes, buffers and offsets: everything a recording depends on), so the host records nothing. It owns its
/// command buffer, fence and descriptor sets. Between submissions it holds the buffers it uses only weakly: a
/// buffer freed by its owner makes the recording stale ([`Recording::replay`] says so) instead of being kept
/// alive; while a submission is in flight they are held strongly.
pub struct Recording {
    device: Arc<Device>,
    pool: vk::CommandPool,
    slot: Slot,
    /// Every buffer the commands use, once each; empty until the recorded commands have been submitted.
    buffers: Vec<std::sync::Weak<Buffer>>,
    /// Two timestamps around the graph (`GGVK_TIMELINE`).
    span: Option<vk::QueryPool>,
    /// When the pending submission was made, and how long the recording's submissions take ([`super::pace`]).
    submitted_at: Option<std::time::Instant>,
    pace: Pace,
}

impl Recording {
    /// An empty recording on `device` (its own command pool, command buffer and fence).
    pub fn new(device: &Arc<Device>) -> Result<Self> {
        let (pool, cmd, fence) = create_single_submitter(device)?;
        Ok(Recording {
            device: device.clone(),
            pool,
            slot: Slot::new(cmd, fence),
            buffers: Vec::new(),
            span: None,
            submitted_at: None,
            pace: Pace::default(),
        })
    }

    /// Wait for the last submission; from then on hold the buffers weakly. A recording abandoned before its
    /// submission (an error while recording) keeps no buffers, so it never replays.
    fn retire(&mut self) -> Result<()> {
        let submitted = self.slot.pending;
        if submitted {
            match self.submitted_at.take() {
                Some(at) => self.device.wait_fence_paced(self.slot.fence, at, &mut self.pace)?,
                None => self.device.wait_fence(self.slot.fence)?,
            }
            self.slot.pending = false;
            if let Some(qp) = self.span {
                let mut ticks = [0u64; 2];
                // SAFETY: the submission that wrote both queries has completed.
                let got = unsafe {
                    self.device.raw().get_query_pool_results(qp, 0, &mut ticks, vk::QueryResultFlags::TYPE_64)
                };
                if got.is_ok() {
                    let period = f64::from(self.device.caps().timestamp_period);
                    crate::timeline::gpu_graph(ticks[0] as f64 * period, ticks[1] as f64 * period);
                }
            }
        }
        if submitted && self.buffers.is_empty() {
            // First retirement after recording: remember each buffer once.
            let mut seen = std::collections::HashSet::new();
            self.buffers = self.slot.keep.iter().filter(|b| seen.insert(b.id())).map(Arc::downgrade).collect();
        }
        self.slot.keep.clear();
        Ok(())
    }

    /// Wait for the last submission of this recording.
    pub fn synchronize(&mut self) -> Result<()> {
        self.retire()
    }

    /// Submit the recorded commands again. `Ok(false)`: nothing was submitted because the recording is stale (a
    /// buffer it uses was freed, e.g. the scratch buffer replaced by a larger one) or was never completed.
    pub fn replay(&mut self) -> Result<bool> {
        self.device.check_alive()?;
        self.retire()?;
        if self.buffers.is_empty() {
            return Ok(false);
        }
        let mut keep = Vec::with_capacity(self.buffers.len());
        for w in &self.buffers {
            match w.upgrade() {
                Some(b) => keep.push(b),
                None => return Ok(false),
            }
        }
        // What the commands write: copies kept from those buffers are stale once this runs. Commands that read
        // kept copies run again only while none was dropped since they were recorded.
        self.device.invalidate_kept(&self.slot.written);
        if self.slot.kept_epoch.as_ref().is_some_and(|(store, epoch)| store.epoch() != *epoch) {
            return Ok(false);
        }
        self.slot.keep = keep;
        let raw = self.device.raw();
        // SAFETY: the fence is not in use (retired above) and belongs to this device.
        unsafe { raw.reset_fences(&[self.slot.fence]) }.vk_context("vkResetFences")?;
        self.device.submit(&[self.slot.cmd], self.slot.fence)?;
        self.slot.pending = true;
        self.submitted_at = Some(std::time::Instant::now());
        Ok(true)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.slot.pending {
            let _ = self.device.wait_fence(self.slot.fence);
        }
        let raw = self.device.raw();
        self.slot.descriptors.destroy(raw);
        // SAFETY: the submission has completed (or the device is lost, where destruction is still allowed); the
        // pool's command buffer goes with it.
        unsafe {
            if let Some(qp) = self.span.take() {
                raw.destroy_query_pool(qp, None);
            }
            raw.destroy_fence(self.slot.fence, None);
            raw.destroy_command_pool(self.pool, None);
        }
    }
}

impl Drop for CommandStream {
    fn drop(&mut self) {
        let _ = self.synchronize();
        let raw = self.device.raw();
        for s in &mut self.slots {
            s.descriptors.destroy(raw);
            // SAFETY: every submission has completed (or the device is lost, where destruction is still allowed).
            unsafe {
                if let Some((qp, _)) = s.queries.take() {
                    raw.destroy_query_pool(qp, None);
                }
                raw.destroy_fence(s.fence, None);
            }
        }
        // SAFETY: frees the command buffers with it; none is pending.
        unsafe { raw.destroy_command_pool(self.pool, None) };
    }
}

/// Data a dispatch of this submission derived from some bytes (e.g. an activation quantized into scratch), which a
/// later dispatch may reuse as long as nothing has written those bytes since.
#[derive(Clone)]
pub struct Derived {
    /// What it was made by, e.g. the kernel name.
    pub kind: &'static str,
    /// The source bytes: (buffer id, start, end).
    pub source: (u64, u64, u64),
    /// The source's layout (type, shape, strides), so only an identical view matches.
    pub layout: (i32, [i64; 4], [u64; 4]),
    /// Where the result is (read-only binding) and its first element in the binding's units.
    pub result: (Binding, u32),
}

/// Records one submission. Created by [`CommandStream::begin`], finished by [`Recorder::submit`].
pub struct Recorder<'a> {
    device: Arc<Device>,
    slot: &'a mut Slot,
    derived: Vec<Derived>,
    scratch: Option<Arc<Buffer>>,
    scratch_used: u64,
    scratch_limit: u64,
    hazards: Hazards,
    timed: bool,
    /// Query pool of the graph's span timestamps, if any.
    span: Option<vk::QueryPool>,
    dispatches: u32,
    barriers: u32,
    node_label: String,
    /// The stream's kept copies, and copies derived in this submission that join them once it is submitted.
    kept: Arc<KeptCopies>,
    kept_pending: Vec<(KeptKey, Arc<Buffer>)>,
    /// Source buffers of the kept copies this submission reads.
    kept_sources: Vec<u64>,
}

impl Recorder<'_> {
    /// Whether dispatches are being timed (callers skip building labels otherwise).
    pub fn timed(&self) -> bool {
        self.timed
    }

    /// Take `bytes` of this submission's scratch memory (regions never overlap within a submission, so
    /// kernels using different regions need no barrier between them). The executor reserves the total up front.
    pub fn scratch(&mut self, bytes: u64) -> Result<(Arc<Buffer>, u64)> {
        let align = self.device.caps().min_storage_offset_alignment.max(256);
        let offset = self.scratch_used;
        let end = offset + bytes.div_ceil(align) * align;
        match &self.scratch {
            Some(buf) if end <= self.scratch_limit => {
                self.scratch_used = end;
                Ok((buf.clone(), offset))
            }
            _ => Err(Error::Internal(format!("scratch overflow: {end} bytes needed, {} reserved", self.scratch_limit))),
        }
    }

    /// Make room for the `bytes` of scratch the next node takes through [`Self::scratch`]. Scratch is a ring: when
    /// they do not fit behind what was handed out so far, hand-outs start again at the beginning of the buffer
    /// after a barrier that finishes every command recorded before it (so their regions are free), and derived
    /// data kept in scratch is forgotten (a later reader derives it again). Reserved per node, so one node's regions
    /// never wrap onto each other; a graph takes the ring's size however many nodes it has.
    pub fn reserve_scratch(&mut self, bytes: u64) -> Result<()> {
        let align = self.device.caps().min_storage_offset_alignment.max(256);
        let need = bytes.div_ceil(align) * align;
        if need == 0 || self.scratch_used + need <= self.scratch_limit {
            return Ok(());
        }
        let Some(buf) = self.scratch.clone().filter(|_| need <= self.scratch_limit) else {
            return Err(Error::Internal(format!(
                "scratch overflow: {need} bytes needed, {} reserved",
                self.scratch_limit
            )));
        };
        // SAFETY: the command buffer is recording.
        unsafe { barrier_to_everything(self.device.raw(), self.slot.cmd) };
        self.hazards = Hazards::default();
        self.barriers += 1;
        self.derived.retain(|d| d.result.0.buffer.id() != buf.id());
        self.scratch_used = 0;
        Ok(())
    }

    /// An earlier result of `kind` derived from exactly these source bytes and layout, if still valid.
    pub fn find_derived(
        &self,
        kind: &'static str,
        source: (u64, u64, u64),
        layout: (i32, [i64; 4], [u64; 4]),
    ) -> Option<(Binding, u32)> {
        self.derived
            .iter()
            .find(|d| d.kind == kind && d.source == source && d.layout == layout)
            .map(|d| d.result.clone())
    }

    /// Remember a derived result (call after the dispatch that produced it).
    pub fn add_derived(&mut self, d: Derived) {
        self.derived.push(d);
    }

    /// The copy kept under `key` ([`super::kept`]): one derived earlier in this submission, or by an earlier
    /// submission of this stream.
    pub fn kept(&mut self, key: &KeptKey) -> Option<Arc<Buffer>> {
        let found =
            self.kept_pending.iter().find(|(k, _)| k == key).map(|(_, b)| b.clone()).or_else(|| self.kept.get(key));
        if found.is_some() && !self.kept_sources.contains(&key.source) {
            self.kept_sources.push(key.source);
        }
        found
    }

    /// Keep `buffer` (written by commands recorded before this call) under `key` once this submission is
    /// submitted, unless something recorded later writes its source.
    pub fn keep_after_submit(&mut self, key: KeptKey, buffer: Arc<Buffer>) {
        if !self.kept_sources.contains(&key.source) {
            self.kept_sources.push(key.source);
        }
        self.kept_pending.push((key, buffer));
    }

    /// How often copies kept from buffer `source` were dropped because it was written.
    pub fn kept_drops(&self, source: u64) -> u32 {
        self.kept.drops(source)
    }

    /// Bytes of kept copies: the stream's and those waiting for this submission.
    pub fn kept_bytes(&self) -> u64 {
        self.kept.bytes() + self.kept_pending.iter().map(|(_, b)| b.size()).sum::<u64>()
    }

    /// Label the following dispatches (shown in timing reports as `label kernel`).
    pub fn set_label(&mut self, label: String) {
        self.node_label = label;
    }

    /// The device being recorded for.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// Record one dispatch of `pipeline` over `groups` workgroups. A barrier goes in first only when the
    /// dispatch reads or writes a range that an earlier dispatch since the last barrier wrote (or writes a
    /// range one read).
    pub fn dispatch(
        &mut self,
        label: &str,
        pipeline: &Arc<Pipeline>,
        bindings: &[Binding],
        push: &[u8],
        groups: [u32; 3],
    ) -> Result<()> {
        let caps = self.device.caps();
        if bindings.len() != pipeline.shader.bindings as usize || bindings.len() > MAX_BINDINGS {
            return Err(Error::Internal(format!(
                "{}: {} bindings given, shader has {}",
                pipeline.shader.name,
                bindings.len(),
                pipeline.shader.bindings
            )));
        }
        if push.len() != pipeline.shader.push_size as usize || push.len() as u32 > caps.max_push_constants {
            return Err(Error::Internal(format!(
                "{}: {} push-constant bytes given, shader takes {}",
                pipeline.shader.name,
                push.len(),
                pipeline.shader.push_size
            )));
        }
        for (k, g) in groups.iter().enumerate() {
            if *g > caps.max_workgroup_count[k] {
                return Err(Error::unsupported(format!(
                    "{label}: {g} workgroups in dimension {k} exceed the device limit {}",
                    caps.max_workgroup_count[k]
                )));
            }
        }
        if groups.contains(&0) {
            return Ok(());
        }
        for b in bindings {
            if b.range > caps.max_storage_buffer_range || b.offset % caps.min_storage_offset_alignment != 0 {
                return Err(Error::Internal(format!("{label}: binding window {}+{} is invalid", b.offset, b.range)));
            }
        }
        let raw = self.device.raw();
        let cmd = self.slot.cmd;
        let set = self.slot.descriptors.alloc(raw, pipeline.set_layout)?;
        // Fixed-size arrays: no allocation per dispatch.
        let mut infos = [[vk::DescriptorBufferInfo::default()]; MAX_BINDINGS];
        for (info, b) in infos.iter_mut().zip(bindings) {
            info[0] = vk::DescriptorBufferInfo::default().buffer(b.buffer.raw()).offset(b.offset).range(b.range);
        }
        let mut writes = [vk::WriteDescriptorSet::default(); MAX_BINDINGS];
        for (i, (w, info)) in writes.iter_mut().zip(infos.iter()).take(bindings.len()).enumerate() {
            *w = vk::WriteDescriptorSet::default()
                .dst_set(set)
                .dst_binding(i as u32)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(info);
        }
        let writes = &writes[..bindings.len()];
        let barrier = self.hazards.conflicts(bindings);
        // SAFETY: the set was just allocated from this slot's arena and is not in use; the command buffer is
        // recording; the pipeline, layout and buffers are kept alive until the submission completes.
        unsafe {
            raw.update_descriptor_sets(writes, &[]);
            if barrier {
                let mb = [vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::SHADER_READ)
                    .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE)];
                raw.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::COMPUTE_SHADER,
                    vk::PipelineStageFlags::COMPUTE_SHADER,
                    vk::DependencyFlags::empty(),
                    &mb,
                    &[],
                    &[],
                );
            }
            let timed = self.timed.then_some(self.slot.queries).flatten().filter(|(_, n)| 2 * self.dispatches + 1 < *n);
            if let Some((qp, _)) = timed {
                raw.cmd_write_timestamp(cmd, vk::PipelineStageFlags::COMPUTE_SHADER, qp, 2 * self.dispatches);
            }
            raw.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, pipeline.raw);
            raw.cmd_bind_descriptor_sets(cmd, vk::PipelineBindPoint::COMPUTE, pipeline.layout, 0, &[set], &[]);
            if !push.is_empty() {
                raw.cmd_push_constants(cmd, pipeline.layout, vk::ShaderStageFlags::COMPUTE, 0, push);
            }
            raw.cmd_dispatch(cmd, groups[0], groups[1], groups[2]);
            if let Some((qp, _)) = timed {
                raw.cmd_write_timestamp(cmd, vk::PipelineStageFlags::BOTTOM_OF_PIPE, qp, 2 * self.dispatches + 1);
                self.slot.labels.push(format!("{} {label}", self.node_label));
            }
        }
        if barrier {
            self.hazards = Hazards::default();
            self.barriers += 1;
        }
        self.hazards.add(bindings);
        // Derived data whose source bytes this dispatch writes is stale from now on (kept copies too: the
        // recording's replays say so again).
        for b in bindings.iter().filter(|b| b.write) {
            let (s, e) = b.touched;
            let id = b.buffer.id();
            self.derived.retain(|d| !(d.source.0 == id && d.source.1 < e && s < d.source.2));
            self.kept_pending.retain(|(k, _)| k.source != id);
            if !self.slot.written.contains(&id) {
                self.slot.written.push(id);
                b.buffer.mark_kernel_written();
                self.device.invalidate_kept(&[id]);
            }
        }
        self.dispatches += 1;
        self.slot.keep.extend(bindings.iter().map(|b| b.buffer.clone()));
        self.slot.keep_pipelines.push(pipeline.clone());
        Ok(())
    }

    /// Scratch bytes handed out so far (including what earlier submissions of the same graph took).
    pub fn scratch_used(&self) -> u64 {
        self.scratch_used
    }

    /// The scratch ring's size: the most one [`Self::reserve_scratch`] can make room for.
    pub fn scratch_limit(&self) -> u64 {
        self.scratch_limit
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> u32 {
        self.dispatches
    }

    /// Barriers inserted so far (not counting the one at the start).
    pub fn barriers(&self) -> u32 {
        self.barriers
    }

    /// End recording and submit (does not wait).
    pub fn submit(self) -> Result<()> {
        let raw = self.device.raw();
        let cmd = self.slot.cmd;
        // SAFETY: recording state; the fence is unsignalled after reset and not in use (slot retired).
        unsafe {
            barrier_to_everything(raw, cmd);
            if let Some(qp) = self.span {
                raw.cmd_write_timestamp(cmd, vk::PipelineStageFlags::BOTTOM_OF_PIPE, qp, 1);
            }
            raw.end_command_buffer(cmd).vk_context("vkEndCommandBuffer")?;
            raw.reset_fences(&[self.slot.fence]).vk_context("vkResetFences")?;
        }
        self.device.submit(&[cmd], self.slot.fence)?;
        self.slot.pending = true;
        for (key, buffer) in self.kept_pending {
            self.kept.insert(key, buffer);
        }
        if !self.kept_sources.is_empty() {
            let writes_one = self.kept_sources.iter().any(|s| self.slot.written.contains(s));
            let epoch = if writes_one { super::kept::NEVER } else { self.kept.epoch() };
            self.slot.kept_epoch = Some((self.kept, epoch));
        }
        Ok(())
    }
}
