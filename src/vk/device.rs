//! The logical device: one compute queue, the memory allocator, the pipeline cache, and the
//! staging context used for host <-> device transfers. Shared by every backend and buffer on it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ash::vk;
use gpu_allocator::vulkan::{Allocator, AllocatorCreateDesc};
use gpu_allocator::{AllocationSizes, AllocatorDebugSettings};

use super::caps::Capabilities;
use super::fault::{self, FaultKind};
use super::instance::Instance;
use super::kept::KeptCopies;
use super::pace::{self, Pace, Woke};
use super::pipeline::PipelineCache;
use super::transfer::Transfer;
use super::uploads::Uploads;
use crate::error::{Error, Result, VkResultExt};

/// A logical device opened on one physical device.
///
/// `Send + Sync`: ash's `Device` is a function table plus a handle; every Vulkan object that the spec says must
/// be externally synchronised (the queue, the allocator's memory, the pipeline map, the staging context) sits
/// behind its own `Mutex`. Buffers and backends hold an `Arc<Device>`, so the device outlives them all.
pub struct Device {
    instance: Arc<Instance>,
    index: usize,
    physical: vk::PhysicalDevice,
    caps: Capabilities,
    raw: ash::Device,
    queue_family: u32,
    queue: Mutex<vk::Queue>,
    allocator: Mutex<Option<Allocator>>,
    pipelines: PipelineCache,
    transfer: Mutex<Option<Transfer>>,
    /// Small writes waiting for the next submission ([`super::uploads`]).
    uploads: Mutex<Uploads>,
    lost: AtomicBool,
    next_id: AtomicU64,
    /// Bytes of device memory ggvk's buffers hold now (gpu-allocator allocation sizes, every memory type).
    allocated: AtomicU64,
    /// Most bytes `allocated` may reach (`GGVK_MEMORY_BUDGET`, or [`Device::set_memory_budget`]); 0: no limit.
    budget: AtomicU64,
    /// VK_NV_cooperative_matrix2 was enabled at creation (its kernels may run).
    coopmat2: bool,
    /// A timeline semaphore every queue submission signals with the next value ([`Device::progress`]); null where
    /// the device has no timeline semaphores.
    progress: vk::Semaphore,
    /// The value the last submission signals (changed under the queue lock).
    submitted: AtomicU64,
    /// The stores of kept copies derived from this device's buffers ([`super::kept`]), and their entries in all.
    kept_stores: Mutex<Vec<Weak<KeptCopies>>>,
    kept_live: Arc<AtomicUsize>,
    /// VK_EXT_external_memory_host was enabled at creation ([`super::host_import`]).
    host_import_ext: bool,
    /// VK_KHR_pipeline_executable_properties, enabled at creation with `GGVK_PIPELINE_STATS=1` where offered: every
    /// pipeline is created capturing its statistics, which [`super::pipeline`] reports.
    pipeline_stats: Option<ash::khr::pipeline_executable_properties::Device>,
    /// This device's import of the shared host block: not tried yet, made, or not possible.
    host_import: Mutex<HostImport>,
}

/// State of a device's import of the shared host block ([`super::host_import`]).
enum HostImport {
    Untried,
    Ready(super::host_import::Import),
    Unavailable,
}

/// `GGVK_MEMORY_BUDGET` in bytes ([`crate::knobs::parse_size`]); 0 or unset: no limit. Every device opened afterwards starts with
/// this budget. A value that is not a size is an error (a typo in a safety limit must not mean "no limit").
pub fn env_memory_budget() -> Result<u64> {
    crate::knobs::size("GGVK_MEMORY_BUDGET")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going rather than poison forever.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Device {
    /// Open (or share the already open) device `index` of the global instance; `None` picks the default.
    pub fn open(index: Option<usize>) -> Result<Arc<Self>> {
        static OPEN: Mutex<Vec<(usize, Weak<Device>)>> = Mutex::new(Vec::new());
        let instance = Instance::global()?;
        let n = instance.physical_devices().len();
        let index = match index {
            Some(i) if i < n => i,
            Some(i) => return Err(Error::NoDevice(format!("device index {i} is out of range: {n} Vulkan device(s)"))),
            None => instance
                .default_device_index()
                .ok_or_else(|| Error::NoDevice(format!("none of the {n} Vulkan device(s) is usable by ggvk")))?,
        };
        let mut open = lock(&OPEN);
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(d) = open.iter().find(|(i, _)| *i == index).and_then(|(_, w)| w.upgrade()) {
            if !d.is_lost() {
                return Ok(d);
            }
        }
        let d = Arc::new(Device::create(instance, index)?);
        open.push((index, Arc::downgrade(&d)));
        Ok(d)
    }

    /// Open device `index` as a logical device of its own, shared with no other opener: for exercising paths
    /// between two devices (which share no memory) where the machine has one.
    pub fn open_unshared(index: usize) -> Result<Arc<Self>> {
        let instance = Instance::global()?;
        let n = instance.physical_devices().len();
        if index >= n {
            return Err(Error::NoDevice(format!("device index {index} is out of range: {n} Vulkan device(s)")));
        }
        Ok(Arc::new(Device::create(instance, index)?))
    }

    fn create(instance: Arc<Instance>, index: usize) -> Result<Self> {
        crate::knobs::validate()?;
        let budget = env_memory_budget()?;
        let pd = &instance.physical_devices()[index];
        let caps = pd.caps.clone();
        if let Some(m) = caps.missing() {
            return Err(Error::unsupported(format!("device {index} ({}) lacks {m}", caps.name)));
        }
        let queue_family = caps.compute_queue_family.expect("checked by missing()");
        let prio = [1.0f32];
        let qinfo = [vk::DeviceQueueCreateInfo::default().queue_family_index(queue_family).queue_priorities(&prio)];
        let mut exts: Vec<*const i8> = Vec::new();
        if caps.memory_budget_ext {
            exts.push(ash::ext::memory_budget::NAME.as_ptr());
        }
        // Host memory import: copies to and from other devices through one host block ([`super::host_import`]).
        let host_import_ext = caps.host_import_alignment > 0 && super::host_import::enabled();
        if host_import_ext {
            exts.push(ash::ext::external_memory_host::NAME.as_ptr());
        }
        // Cooperative matrices (the tensor-core matmul path) where the driver offers the feature.
        let coopmat = caps.coopmat_feature && caps.vulkan_memory_model;
        if coopmat {
            exts.push(ash::khr::cooperative_matrix::NAME.as_ptr());
        }
        // NV_cooperative_matrix2 (workgroup-scope kernels) on top, with buffer device addresses for their decode
        // functions, where the driver offers it (`GGVK_COOPMAT2=0` keeps the KHR kernels).
        let coopmat2 = coopmat && caps.coopmat2.usable && crate::knobs::switch("GGVK_COOPMAT2", true);
        let bda = coopmat2 && caps.buffer_device_address;
        if coopmat2 {
            exts.push(super::caps::NV_COOPERATIVE_MATRIX2.as_ptr());
        }
        // The driver's statistics of each compiled pipeline (registers, spills), asked for with GGVK_PIPELINE_STATS.
        let pipeline_stats = caps.pipeline_executable_info && crate::knobs::switch("GGVK_PIPELINE_STATS", false);
        if pipeline_stats {
            exts.push(ash::khr::pipeline_executable_properties::NAME.as_ptr());
        }
        // robustBufferAccess (out-of-range shader accesses read 0 / are dropped instead of touching other memory):
        // on in debug builds and with GGVK_ROBUST_BUFFER_ACCESS=1, where the device offers it.
        let want_robust = cfg!(debug_assertions) || crate::knobs::switch("GGVK_ROBUST_BUFFER_ACCESS", false);
        // SAFETY: `pd.handle` is a physical device of `instance`.
        let offered = unsafe { instance.raw().get_physical_device_features(pd.handle) };
        let robust = want_robust && offered.robust_buffer_access == vk::TRUE;
        if robust {
            tracing::info!(index, "robustBufferAccess enabled");
        }
        let features = vk::PhysicalDeviceFeatures::default().shader_int16(true).robust_buffer_access(robust);
        let mut f11 = vk::PhysicalDeviceVulkan11Features::default().storage_buffer16_bit_access(true);
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default()
            .shader_float16(caps.fp16)
            .shader_int8(caps.int8)
            .storage_buffer8_bit_access(caps.storage_8bit)
            .vulkan_memory_model(coopmat)
            .buffer_device_address(bda)
            .timeline_semaphore(caps.timeline_semaphore);
        let mut fcm = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default().cooperative_matrix(true);
        let mut fdot = vk::PhysicalDeviceShaderIntegerDotProductFeatures::default()
            .shader_integer_dot_product(caps.integer_dot_product);
        let mut info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&qinfo)
            .enabled_extension_names(&exts)
            .enabled_features(&features)
            .push_next(&mut f11)
            .push_next(&mut f12);
        if caps.integer_dot_product {
            info = info.push_next(&mut fdot);
        }
        if coopmat {
            info = info.push_next(&mut fcm);
        }
        let mut fcm2 = super::coopmat2::Features::default();
        fcm2.workgroup_scope = vk::TRUE;
        fcm2.flexible_dimensions = vk::TRUE;
        fcm2.tensor_addressing = vk::TRUE;
        fcm2.block_loads = u32::from(caps.coopmat2.block_loads);
        let softmax_ops = u32::from(caps.coopmat2.softmax_ops);
        fcm2.reductions = softmax_ops;
        fcm2.conversions = softmax_ops;
        fcm2.per_element_operations = softmax_ops;
        if coopmat2 {
            info = info.push_next(&mut fcm2);
        }
        let mut fpexec =
            vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default().pipeline_executable_info(true);
        if pipeline_stats {
            info = info.push_next(&mut fpexec);
        }
        // SAFETY: `pd.handle` belongs to `instance`; every feature enabled was reported as supported by it, and
        // every pointer in `info` refers to locals that outlive the call.
        let raw = unsafe { instance.raw().create_device(pd.handle, &info, None) }.vk_context("vkCreateDevice")?;
        // SAFETY: queue family/index 0 were requested in `qinfo`.
        let queue = unsafe { raw.get_device_queue(queue_family, 0) };
        let allocator = Allocator::new(&AllocatorCreateDesc {
            instance: instance.raw().clone(),
            device: raw.clone(),
            physical_device: pd.handle,
            debug_settings: AllocatorDebugSettings { log_leaks_on_shutdown: true, ..Default::default() },
            buffer_device_address: false,
            allocation_sizes: AllocationSizes::default(),
        });
        let allocator = match allocator {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: nothing was created on the device yet.
                unsafe { raw.destroy_device(None) };
                return Err(Error::Internal(format!("gpu-allocator: {e}")));
            }
        };
        let pipelines = match PipelineCache::new(&raw) {
            Ok(p) => p,
            Err(e) => {
                drop(allocator);
                // SAFETY: the allocator (the only child) is gone.
                unsafe { raw.destroy_device(None) };
                return Err(e);
            }
        };
        let progress = if caps.timeline_semaphore {
            let mut kind = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
            let info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
            // SAFETY: the timelineSemaphore feature was enabled above; `info` outlives the call.
            match unsafe { raw.create_semaphore(&info, None) } {
                Ok(s) => s,
                Err(r) => {
                    pipelines.destroy(&raw);
                    drop(allocator);
                    // SAFETY: the pipeline cache and the allocator (the only children) are gone.
                    unsafe { raw.destroy_device(None) };
                    return Err(Error::vk("vkCreateSemaphore", r));
                }
            }
        } else {
            vk::Semaphore::null()
        };
        let pipeline_stats =
            pipeline_stats.then(|| ash::khr::pipeline_executable_properties::Device::new(instance.raw(), &raw));
        tracing::info!(index, name = %caps.name, "ggvk device opened");
        fault::device_opened();
        Ok(Device {
            physical: pd.handle,
            instance,
            index,
            caps,
            raw,
            queue_family,
            queue: Mutex::new(queue),
            allocator: Mutex::new(Some(allocator)),
            pipelines,
            transfer: Mutex::new(None),
            uploads: Mutex::new(Uploads::new()),
            lost: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            allocated: AtomicU64::new(0),
            budget: AtomicU64::new(budget),
            coopmat2,
            progress,
            submitted: AtomicU64::new(0),
            kept_stores: Mutex::new(Vec::new()),
            kept_live: Arc::new(AtomicUsize::new(0)),
            host_import_ext,
            host_import: Mutex::new(HostImport::Untried),
            pipeline_stats,
        })
    }

    /// The transfer buffer over the shared host block ([`super::host_import`]), imported on first use; `None`
    /// where this device cannot import it (the reason is logged once).
    pub(crate) fn host_import_buffer(&self) -> Option<vk::Buffer> {
        if !self.host_import_ext {
            return None;
        }
        let mut state = lock(&self.host_import);
        if matches!(*state, HostImport::Untried) {
            *state = match super::host_import::Import::new(self) {
                Ok(i) => HostImport::Ready(i),
                Err(e) => {
                    tracing::warn!(index = self.index, "no host memory import: {e}");
                    HostImport::Unavailable
                }
            };
        }
        match &*state {
            HostImport::Ready(i) => Some(i.buffer()),
            _ => None,
        }
    }

    /// A new store of kept copies of this device's buffers, told of every write to them ([`super::kept`]).
    pub fn new_kept_store(&self) -> Arc<KeptCopies> {
        let store = Arc::new(KeptCopies::new(self.kept_live.clone()));
        let mut stores = lock(&self.kept_stores);
        stores.retain(|w| w.strong_count() > 0);
        stores.push(Arc::downgrade(&store));
        store
    }

    /// Buffers `ids` are being written (or freed): drop every kept copy derived from them.
    pub fn invalidate_kept(&self, ids: &[u64]) {
        if self.kept_live.load(Ordering::Acquire) == 0 || ids.is_empty() {
            return;
        }
        for s in self.kept_stores() {
            s.invalidate_all(ids);
        }
    }

    /// The live stores of kept copies (taken out of the lock: dropping copies re-enters it).
    fn kept_stores(&self) -> Vec<Arc<KeptCopies>> {
        lock(&self.kept_stores).iter().filter_map(|w| w.upgrade()).collect()
    }

    /// Drop every kept copy of every store (memory pressure); whether anything was kept.
    pub fn clear_kept(&self) -> bool {
        if self.kept_live.load(Ordering::Acquire) == 0 {
            return false;
        }
        for s in self.kept_stores() {
            s.clear();
        }
        true
    }

    /// Whether VK_NV_cooperative_matrix2 was enabled on this device (its kernels may be recorded).
    pub fn coopmat2_enabled(&self) -> bool {
        self.coopmat2
    }

    /// ash's device table.
    pub fn raw(&self) -> &ash::Device {
        &self.raw
    }

    /// The owning instance.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Index of the physical device in the instance's enumeration.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The physical device handle.
    pub fn physical(&self) -> vk::PhysicalDevice {
        self.physical
    }

    /// The capability record.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// Queue family of the compute queue.
    pub fn queue_family(&self) -> u32 {
        self.queue_family
    }

    /// The pipeline-statistics entry points where `GGVK_PIPELINE_STATS=1` enabled them.
    pub(super) fn pipeline_stats(&self) -> Option<&ash::khr::pipeline_executable_properties::Device> {
        self.pipeline_stats.as_ref()
    }

    /// The pipeline cache and the map of created pipelines.
    pub fn pipelines(&self) -> &PipelineCache {
        &self.pipelines
    }

    /// A process-unique id (buffers use it for hazard tracking).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Lock the allocator. `None` only during `Drop`.
    pub(crate) fn allocator(&self) -> MutexGuard<'_, Option<Allocator>> {
        lock(&self.allocator)
    }

    /// Lock the staging context, creating it on first use.
    pub(crate) fn transfer(&self) -> MutexGuard<'_, Option<Transfer>> {
        lock(&self.transfer)
    }

    /// Whether the device has been lost; every later operation fails with [`Error::DeviceLost`].
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Fail fast once the device is lost.
    pub fn check_alive(&self) -> Result<()> {
        if self.is_lost() {
            Err(Error::DeviceLost(format!("device {} ({}) was lost earlier", self.index, self.caps.name)))
        } else {
            Ok(())
        }
    }

    /// Record that `e` happened; a device-lost error marks the device lost for good.
    pub fn note(&self, e: Error) -> Error {
        if matches!(e, Error::DeviceLost(_)) {
            self.lost.store(true, Ordering::SeqCst);
        }
        e
    }

    /// Bytes of device memory held by ggvk's buffers on this device (scratch, staging and host buffers included).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated.load(Ordering::SeqCst)
    }

    /// The memory budget in bytes (0: none). Allocations that would take `allocated_bytes` past it fail with
    /// [`Error::OutOfDeviceMemory`].
    pub fn memory_budget_limit(&self) -> u64 {
        self.budget.load(Ordering::SeqCst)
    }

    /// Set the memory budget in bytes (0: none); starts as `GGVK_MEMORY_BUDGET`.
    pub fn set_memory_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    /// Account for `bytes` about to be allocated; fails past the budget.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<()> {
        let budget = self.budget.load(Ordering::SeqCst);
        let mut cur = self.allocated.load(Ordering::SeqCst);
        loop {
            let next = cur.saturating_add(bytes);
            if budget > 0 && next > budget {
                return Err(Error::OutOfDeviceMemory(format!(
                    "allocating {bytes} bytes would exceed the memory budget of {budget} bytes ({cur} in use)"
                )));
            }
            match self.allocated.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// Undo [`Device::reserve`] (allocation failed or freed).
    pub(crate) fn unreserve(&self, bytes: u64) {
        let _ = self.allocated.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| Some(c.saturating_sub(bytes)));
    }

    /// Submit command buffers to the compute queue, signalling `fence`; batched small uploads go first.
    pub fn submit(&self, cmds: &[vk::CommandBuffer], fence: vk::Fence) -> Result<()> {
        self.check_alive()?;
        fault::point(FaultKind::Submit).map_err(|e| self.note(e))?;
        lock(&self.uploads).submit(self).map_err(|e| self.note(e))?;
        self.submit_raw(cmds, fence)
    }

    /// Copy a small `data` (at most [`super::uploads::SMALL`] bytes) into `dst` at `offset` with the next submission
    /// (the range is checked by the caller).
    pub(crate) fn upload_small(&self, dst: vk::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        self.check_alive()?;
        lock(&self.uploads).write(self, dst, offset, data).map_err(|e| self.note(e))
    }

    /// Before `dst` is destroyed: no batched upload may still write it.
    pub(crate) fn settle_uploads_for(&self, dst: vk::Buffer) -> Result<()> {
        lock(&self.uploads).settle_for(self, dst)
    }

    /// Submit without the batched uploads (they submit themselves through this). Every submission also signals
    /// the next value of the progress semaphore.
    pub(crate) fn submit_raw(&self, cmds: &[vk::CommandBuffer], fence: vk::Fence) -> Result<()> {
        let q = lock(&self.queue);
        let value = [self.submitted.load(Ordering::SeqCst) + 1];
        let signal = [self.progress];
        let mut timeline = vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&value);
        let mut info = vk::SubmitInfo::default().command_buffers(cmds);
        if self.progress != vk::Semaphore::null() {
            info = info.signal_semaphores(&signal).push_next(&mut timeline);
        }
        // SAFETY: the queue is externally synchronised by the mutex; the command buffers are fully recorded and
        // not pending (their owners wait on their fences before re-recording); the fence is unsignalled; the
        // timeline value is larger than every value signalled before (they are counted under the same lock).
        unsafe { self.raw.queue_submit(*q, &[info], fence) }.map_err(|r| self.note(Error::vk("vkQueueSubmit", r)))?;
        self.submitted.store(value[0], Ordering::SeqCst);
        Ok(())
    }

    /// How far this device's queue has been given work: a value that [`Device::wait_progress`] waits for (every
    /// submission up to now, batched uploads that are still open first submitted). `None` without timeline
    /// semaphores.
    pub fn progress(&self) -> Result<Option<u64>> {
        if self.progress == vk::Semaphore::null() {
            return Ok(None);
        }
        self.check_alive()?;
        lock(&self.uploads).submit(self).map_err(|e| self.note(e))?;
        Ok(Some(self.submitted.load(Ordering::SeqCst)))
    }

    /// Wait until the queue has finished every submission up to `value` (from [`Device::progress`]).
    pub fn wait_progress(&self, value: u64) -> Result<()> {
        if self.progress == vk::Semaphore::null() || value == 0 {
            return Ok(());
        }
        self.check_alive()?;
        let sems = [self.progress];
        let values = [value];
        let info = vk::SemaphoreWaitInfo::default().semaphores(&sems).values(&values);
        // SAFETY: the semaphore belongs to this device; `info` outlives the call.
        unsafe { self.raw.wait_semaphores(&info, u64::MAX) }.map_err(|r| self.note(Error::vk("vkWaitSemaphores", r)))
    }

    /// Wait for `fence` (no timeout: a graph may legitimately run long on a slow device).
    pub fn wait_fence(&self, fence: vk::Fence) -> Result<()> {
        self.wait_fence_for(fence, u64::MAX).map(|_| ())
    }

    /// Wait for `fence` at most `timeout_ns` nanoseconds: whether it signalled.
    fn wait_fence_for(&self, fence: vk::Fence, timeout_ns: u64) -> Result<bool> {
        // SAFETY: the fence belongs to this device.
        match unsafe { self.raw.wait_for_fences(&[fence], true, timeout_ns) } {
            Ok(()) => Ok(true),
            Err(vk::Result::TIMEOUT) => Ok(false),
            Err(r) => Err(self.note(Error::vk("vkWaitForFences", r))),
        }
    }

    /// Wait for `fence`, submitted at `since`, as [`super::pace`] plans it from `pace` (asleep until near the
    /// expected end, then polling), and teach `pace` how long it took.
    pub fn wait_fence_paced(&self, fence: vk::Fence, since: std::time::Instant, pace: &mut Pace) -> Result<()> {
        let lead = pace::lead(self.caps().cpu_device());
        let woke = match pace.plan(lead) {
            None => {
                self.wait_fence(fence)?;
                Woke::Slept
            }
            Some(plan) => self.wait_planned(fence, since, plan)?,
        };
        pace.learn(since.elapsed(), woke, lead);
        Ok(())
    }

    fn wait_planned(&self, fence: vk::Fence, since: std::time::Instant, plan: pace::Plan) -> Result<Woke> {
        let asleep = pace::timeout_ns(since, plan.poll_from);
        if asleep > 0 && self.wait_fence_for(fence, asleep)? {
            return Ok(Woke::Slept);
        }
        while pace::timeout_ns(since, plan.poll_until) > 0 {
            // SAFETY: the fence belongs to this device.
            match unsafe { self.raw.get_fence_status(fence) } {
                Ok(true) => return Ok(Woke::Polled),
                Ok(false) => (0..64).for_each(|_| std::hint::spin_loop()),
                Err(r) => return Err(self.note(Error::vk("vkGetFenceStatus", r))),
            }
        }
        self.wait_fence(fence)?;
        Ok(Woke::Slept)
    }

    /// Wait until the queue is idle.
    pub fn queue_wait_idle(&self) -> Result<()> {
        self.check_alive()?;
        lock(&self.uploads).submit(self).map_err(|e| self.note(e))?;
        let q = lock(&self.queue);
        // SAFETY: the queue is externally synchronised by the mutex.
        unsafe { self.raw.queue_wait_idle(*q) }.map_err(|r| self.note(Error::vk("vkQueueWaitIdle", r)))
    }

    /// Current (usage, budget) of DEVICE_LOCAL heaps: VK_EXT_memory_budget where present, else heap sizes.
    pub fn memory_budget(&self) -> (u64, u64) {
        self.instance.memory_budget(self.physical, &self.caps)
    }

    /// Human-readable summary of the device for logs and `ggvk info`.
    pub fn describe(&self) -> String {
        describe_caps(self.index, &self.caps)
    }
}

/// A multi-line report of one device's capabilities.
pub fn describe_caps(index: usize, c: &Capabilities) -> String {
    let v = c.api_version;
    format!(
        "device {index}: {} ({}, vendor 0x{:04x}, device 0x{:04x}, Vulkan {}.{}.{})\n  \
         fp16 {} int8 {} storage16 {} storage8 {} | subgroup {} (arith {}, shuffle {}) | int dot {} (accel {}) | \
         coopmat KHR {} (feature {}, {} subgroup shapes) NV2 {}\n  \
         maxStorageBufferRange {} MiB, maxMemoryAllocationSize {} MiB, shared memory {} KiB, device-local {} MiB, \
         memory budget ext {}, timestamps {}, pipeline statistics {}{}",
        c.name,
        c.type_name(),
        c.vendor_id,
        c.device_id,
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v),
        c.fp16,
        c.int8,
        c.storage_16bit,
        c.storage_8bit,
        c.subgroup_size,
        c.subgroup_arithmetic,
        c.subgroup_shuffle,
        c.integer_dot_product,
        c.integer_dot_product_accelerated,
        c.coopmat_khr,
        c.coopmat_feature,
        c.coopmat_shapes.len(),
        if c.coopmat2.usable {
            format!(
                "true (workgroup size {}, dimension {}, {} workgroup shapes, block loads {}, softmax operations {})",
                c.coopmat2.max_workgroup_size,
                c.coopmat2.max_dimension,
                c.coopmat2.shapes.len(),
                c.coopmat2.block_loads,
                c.coopmat2.softmax_ops
            )
        } else {
            c.coopmat2_nv.to_string()
        },
        c.max_storage_buffer_range >> 20,
        c.max_memory_allocation_size >> 20,
        c.max_shared_memory >> 10,
        c.device_local_bytes() >> 20,
        c.memory_budget_ext,
        c.timestamps,
        c.pipeline_executable_info,
        match c.missing() {
            Some(m) => format!("\n  NOT USABLE by ggvk: lacks {m}"),
            None => String::new(),
        }
    )
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: we are the last owner: no backend, buffer or pipeline user is left. Wait for the GPU, then
        // destroy children before the device. Errors here (device lost) cannot be reported; destruction proceeds.
        unsafe {
            let _ = self.raw.device_wait_idle();
        }
        if let Some(t) = lock(&self.transfer).take() {
            t.destroy(self);
        }
        if let HostImport::Ready(i) = std::mem::replace(&mut *lock(&self.host_import), HostImport::Unavailable) {
            i.destroy(self);
        }
        std::mem::take(&mut *lock(&self.uploads)).destroy(self);
        self.pipelines.destroy(&self.raw);
        if self.progress != vk::Semaphore::null() {
            // SAFETY: the device is idle: no submission signals the semaphore any more.
            unsafe { self.raw.destroy_semaphore(self.progress, None) };
        }
        let mut leaked = 0;
        if let Some(a) = lock(&self.allocator).take() {
            leaked = a.generate_report().allocations.len() as u64;
            if leaked > 0 {
                tracing::error!(leaked, "ggvk device closed with live allocations");
            }
            drop(a);
        }
        fault::device_closed(leaked);
        // SAFETY: all children are destroyed above.
        unsafe { self.raw.destroy_device(None) };
    }
}
