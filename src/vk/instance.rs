//! The Vulkan instance: loader, optional debug messenger, and enumeration of physical devices.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use super::caps::Capabilities;
use crate::error::{Error, Result, VkResultExt};

/// Number of validation-layer (or driver) messages of ERROR severity seen by this process.
static VALIDATION_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many ERROR-severity messages the Vulkan debug messenger has reported since the process started.
/// Tests assert this stays zero; any message is also printed to stderr with the prefix `GGVK VALIDATION ERROR`.
pub fn validation_error_count() -> u64 {
    VALIDATION_ERRORS.load(Ordering::SeqCst)
}

/// The Vulkan entry points and instance. Owns the debug messenger; destroyed when the last `Arc` drops.
///
/// `Send + Sync`: ash's `Entry`/`Instance` are tables of function pointers plus a dispatchable handle, and the
/// instance-level calls made after creation (property queries) are externally synchronised by the spec only
/// for `vkDestroyInstance`, which runs in `Drop` when no other reference exists.
pub struct Instance {
    entry: ash::Entry,
    instance: ash::Instance,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    api_version: u32,
    physical: Vec<PhysicalDevice>,
}

/// One physical device as the instance enumerated it, with its capability record.
#[derive(Clone)]
pub struct PhysicalDevice {
    /// Raw handle; valid as long as the owning [`Instance`] lives.
    pub handle: vk::PhysicalDevice,
    /// Everything ggvk needs to know to choose kernels for it.
    pub caps: Capabilities,
}

unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    let msg = if data.is_null() {
        String::from("(no message)")
    } else {
        // SAFETY: the loader passes a valid callback-data struct whose p_message, when non-null, is a
        // NUL-terminated string that lives for the duration of this call.
        unsafe {
            let p = (*data).p_message;
            if p.is_null() {
                String::from("(no message)")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    };
    if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        VALIDATION_ERRORS.fetch_add(1, Ordering::SeqCst);
        crate::diag::emit(crate::diag::Level::Error, &format!("GGVK VALIDATION ERROR [{types:?}]: {msg}"));
    } else if crate::knobs::switch("GGVK_VK_DEBUG", false) {
        let level = if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
            crate::diag::Level::Warn
        } else {
            crate::diag::Level::Report
        };
        crate::diag::emit(level, &format!("ggvk vulkan {severity:?} [{types:?}]: {msg}"));
    }
    vk::FALSE
}

fn has_extension(props: &[vk::ExtensionProperties], name: &CStr) -> bool {
    props.iter().any(|p| p.extension_name_as_c_str() == Ok(name))
}

impl Instance {
    /// Load the Vulkan loader and create an instance (Vulkan 1.3 where the loader has it, else its version).
    pub fn new() -> Result<Arc<Self>> {
        // SAFETY: loading libvulkan runs its initialisers; we rely on the system loader being a conforming one.
        let entry = unsafe { ash::Entry::load() }
            .map_err(|e| Error::NoDevice(format!("cannot load the Vulkan loader (libvulkan.so.1): {e}")))?;
        // SAFETY: plain query through a valid entry table.
        let loader_version = match unsafe { entry.try_enumerate_instance_version() } {
            Ok(Some(v)) => v,
            Ok(None) => vk::API_VERSION_1_0,
            Err(e) => return Err(Error::vk("vkEnumerateInstanceVersion", e)),
        };
        let api_version = loader_version.min(vk::API_VERSION_1_3);
        if api_version < vk::API_VERSION_1_2 {
            return Err(Error::NoDevice(format!(
                "the Vulkan loader only offers version {}.{}; ggvk needs 1.2",
                vk::api_version_major(api_version),
                vk::api_version_minor(api_version)
            )));
        }
        // SAFETY: plain query through a valid entry table.
        let exts = unsafe { entry.enumerate_instance_extension_properties(None) }
            .vk_context("vkEnumerateInstanceExtensionProperties")?;
        let mut enabled: Vec<*const i8> = Vec::new();
        let want_debug = has_extension(&exts, ash::ext::debug_utils::NAME);
        if want_debug {
            enabled.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let mut flags = vk::InstanceCreateFlags::empty();
        if has_extension(&exts, ash::khr::portability_enumeration::NAME) {
            enabled.push(ash::khr::portability_enumeration::NAME.as_ptr());
            flags |= vk::InstanceCreateFlags::ENUMERATE_PORTABILITY_KHR;
        }
        let mut layers: Vec<*const i8> = Vec::new();
        const VALIDATION: &CStr = c"VK_LAYER_KHRONOS_validation";
        if crate::knobs::switch("GGVK_VALIDATION", false) {
            // SAFETY: plain query through a valid entry table.
            let avail = unsafe { entry.enumerate_instance_layer_properties() }
                .vk_context("vkEnumerateInstanceLayerProperties")?;
            if avail.iter().any(|l| l.layer_name_as_c_str() == Ok(VALIDATION)) {
                layers.push(VALIDATION.as_ptr());
            }
        }
        let app =
            vk::ApplicationInfo::default().application_name(c"ggvk").engine_name(c"ggvk").api_version(api_version);
        let mut debug_info = vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(
                vk::DebugUtilsMessageSeverityFlagsEXT::ERROR | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
            )
            .message_type(
                vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                    | vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                    | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
            )
            .pfn_user_callback(Some(debug_callback));
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_extension_names(&enabled)
            .enabled_layer_names(&layers)
            .flags(flags);
        if want_debug {
            // Also catch messages from vkCreateInstance/vkDestroyInstance themselves.
            info = info.push_next(&mut debug_info);
        }
        // SAFETY: every pointer in `info` refers to locals that outlive the call.
        let instance = unsafe { entry.create_instance(&info, None) }.map_err(|e| match e {
            vk::Result::ERROR_INCOMPATIBLE_DRIVER => {
                Error::NoDevice("no Vulkan driver is installed (vkCreateInstance: ERROR_INCOMPATIBLE_DRIVER)".into())
            }
            e => Error::vk("vkCreateInstance", e),
        })?;
        let debug = if want_debug {
            let loader = ash::ext::debug_utils::Instance::new(&entry, &instance);
            // SAFETY: valid instance with the extension enabled; create info is fully initialised.
            match unsafe { loader.create_debug_utils_messenger(&debug_info, None) } {
                Ok(m) => Some((loader, m)),
                Err(_) => None,
            }
        } else {
            None
        };
        let mut this = Instance { entry, instance, debug, api_version, physical: Vec::new() };
        this.physical = this.enumerate()?;
        Ok(Arc::new(this))
    }

    fn enumerate(&self) -> Result<Vec<PhysicalDevice>> {
        // SAFETY: valid instance.
        let handles = unsafe { self.instance.enumerate_physical_devices() }.vk_context("vkEnumeratePhysicalDevices")?;
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            let caps = Capabilities::query(self, handle)?;
            out.push(PhysicalDevice { handle, caps });
        }
        Ok(out)
    }

    /// The process-wide instance, created on first use. Failure is not cached: a later call tries again.
    pub fn global() -> Result<Arc<Self>> {
        static GLOBAL: Mutex<Option<Arc<Instance>>> = Mutex::new(None);
        let mut g = GLOBAL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = g.as_ref() {
            return Ok(i.clone());
        }
        let i = Instance::new()?;
        *g = Some(i.clone());
        Ok(i)
    }

    /// ash's entry table.
    pub fn entry(&self) -> &ash::Entry {
        &self.entry
    }

    /// ash's instance table.
    pub fn raw(&self) -> &ash::Instance {
        &self.instance
    }

    /// The API version the instance was created with.
    pub fn api_version(&self) -> u32 {
        self.api_version
    }

    /// Every physical device, in the driver's order.
    pub fn physical_devices(&self) -> &[PhysicalDevice] {
        &self.physical
    }

    /// Current (usage, budget) of the DEVICE_LOCAL heaps of `pd`: VK_EXT_memory_budget where the device offers
    /// it, else (0, heap sizes).
    pub fn memory_budget(&self, pd: vk::PhysicalDevice, caps: &Capabilities) -> (u64, u64) {
        let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
        let mut props = vk::PhysicalDeviceMemoryProperties2::default();
        if caps.memory_budget_ext {
            props = props.push_next(&mut budget);
        }
        // SAFETY: plain query on a device of this instance; the chain holds the budget struct only when the
        // device offers VK_EXT_memory_budget.
        unsafe { self.instance.get_physical_device_memory_properties2(pd, &mut props) };
        let mp = props.memory_properties;
        let mut used = 0;
        let mut total = 0;
        for (i, h) in mp.memory_heaps[..mp.memory_heap_count as usize].iter().enumerate() {
            if h.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL) {
                if caps.memory_budget_ext {
                    used += budget.heap_usage[i];
                    total += budget.heap_budget[i];
                } else {
                    total += h.size;
                }
            }
        }
        (used, total)
    }

    /// The driver's physical device groups (Vulkan 1.1): sets of devices one logical device could span, with memory
    /// one of them can read from another (peer memory), as indices into [`Self::physical_devices`], and whether a
    /// group's allocations can be placed on a subset of its devices. ggvk opens one logical device per physical
    /// device; a group of two or more is where a device-to-device path between GPUs would come from.
    pub fn device_groups(&self) -> Result<Vec<(Vec<usize>, bool)>> {
        // SAFETY: plain queries on this instance; `groups` has the length the first call reported.
        let groups = unsafe {
            let n =
                self.instance.enumerate_physical_device_groups_len().vk_context("vkEnumeratePhysicalDeviceGroups")?;
            let mut groups = vec![vk::PhysicalDeviceGroupProperties::default(); n];
            self.instance
                .enumerate_physical_device_groups(&mut groups)
                .vk_context("vkEnumeratePhysicalDeviceGroups")?;
            groups
        };
        Ok(groups
            .iter()
            .map(|g| {
                let members = g.physical_devices[..g.physical_device_count as usize]
                    .iter()
                    .filter_map(|h| self.physical.iter().position(|p| p.handle == *h))
                    .collect();
                (members, g.subset_allocation == vk::TRUE)
            })
            .collect())
    }

    /// What device `index` offers for sharing memory and synchronisation with another device (the ways work could
    /// pass between two GPUs without the host copying bytes or waiting): for `ggvk info`.
    pub fn interop(&self, index: usize) -> Result<String> {
        let pd = self.physical.get(index).ok_or_else(|| Error::NoDevice(format!("no Vulkan device {index}")))?;
        // SAFETY: plain queries on a device of this instance.
        let exts = unsafe { self.instance.enumerate_device_extension_properties(pd.handle) }
            .vk_context("vkEnumerateDeviceExtensionProperties")?;
        let has = |name: &CStr| has_extension(&exts, name);
        let align = pd.caps.host_import_alignment;
        let semaphore = |handle: vk::ExternalSemaphoreHandleTypeFlags, timeline: bool| {
            let mut ty = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
            let mut info = vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(handle);
            if timeline {
                info = info.push_next(&mut ty);
            }
            let mut out = vk::ExternalSemaphoreProperties::default();
            // SAFETY: plain query (Vulkan 1.1) on a device of this instance.
            unsafe { self.instance.get_physical_device_external_semaphore_properties(pd.handle, &info, &mut out) };
            let f = out.external_semaphore_features;
            let yes = |b: vk::ExternalSemaphoreFeatureFlags| if f.contains(b) { "yes" } else { "no" };
            format!(
                "export {} import {}",
                yes(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE),
                yes(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE)
            )
        };
        Ok(format!(
            "  between devices: host memory import {} (pointer alignment {}), dma-buf memory {}, opaque fd memory {}; \
             semaphores: sync fd (binary) {}, opaque fd (binary) {}, opaque fd (timeline) {}",
            if align > 0 { "yes" } else { "no" },
            align,
            if has(ash::ext::external_memory_dma_buf::NAME) { "yes" } else { "no" },
            if has(ash::khr::external_memory_fd::NAME) { "yes" } else { "no" },
            semaphore(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD, false),
            semaphore(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD, false),
            semaphore(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD, true),
        ))
    }

    /// The default device: discrete GPU > integrated GPU > virtual GPU > CPU > other; first of the best kind.
    pub fn default_device_index(&self) -> Option<usize> {
        let rank = |t: vk::PhysicalDeviceType| match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => 0,
            vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
            vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
            vk::PhysicalDeviceType::CPU => 3,
            _ => 4,
        };
        self.physical
            .iter()
            .enumerate()
            .filter(|(_, p)| p.caps.usable())
            .min_by_key(|(i, p)| (rank(p.caps.device_type), *i))
            .map(|(i, _)| i)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: we are the last owner (Drop of the final Arc); all devices hold an Arc<Instance> and are gone.
        unsafe {
            if let Some((loader, m)) = self.debug.take() {
                loader.destroy_debug_utils_messenger(m, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}
