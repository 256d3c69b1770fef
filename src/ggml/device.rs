//! The GGVK registry and its devices (`GGVK0..n`, one per usable Vulkan device), as ggml sees them.
//! Everything here is created once and lives for the process: ggml keeps raw pointers to it.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

use super::backend;
use super::buffer::{guarded, BUFT_IFACE};
use super::host_buffer::HOST_BUFT_IFACE;
use super::sys;
use super::translate::{self, Memory};
use crate::error::Result;
use crate::vk::{Buffer, Capabilities, Device, Instance};

/// One GGVK device: ggml's device and buffer-type structs plus what they point to.
pub struct DeviceEntry {
    /// ggml's view of the device (context points back here).
    pub dev: sys::ggml_backend_device,
    /// The device's buffer type (context points back here).
    pub buft: sys::ggml_backend_buffer_type,
    /// The device's pinned host buffer type (context points back here).
    pub host_buft: sys::ggml_backend_buffer_type,
    /// `GGVK<i>_Host`.
    pub host_name: CString,
    /// `GGVK<i>`.
    pub name: CString,
    /// The driver's device name.
    pub description: CString,
    /// The PCI bus id (`0000:01:00.0`) or device UUID ([`crate::vk::caps::format_device_id`]); ggml's props point
    /// into it for the process's lifetime.
    pub device_id: Option<CString>,
    /// Index of the Vulkan physical device.
    pub index: usize,
    caps: Capabilities,
    device: Mutex<Option<Arc<Device>>>,
    placeholder: Mutex<Option<Arc<Buffer>>>,
}

impl DeviceEntry {
    /// The capability record.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// The open device (opened on first use and kept for the process; reopened after a device loss).
    pub fn device(&self) -> Result<Arc<Device>> {
        let mut d = self.device.lock().unwrap_or_else(|p| p.into_inner());
        match d.as_ref() {
            Some(dev) if !dev.is_lost() => Ok(dev.clone()),
            _ => {
                let dev = Device::open(Some(self.index))?;
                *d = Some(dev.clone());
                Ok(dev)
            }
        }
    }

    fn placeholder(&self) -> Result<Arc<Buffer>> {
        let device = self.device()?;
        let mut p = self.placeholder.lock().unwrap_or_else(|p| p.into_inner());
        match p.as_ref() {
            Some(b) if Arc::ptr_eq(b.device(), &device) => Ok(b.clone()),
            _ => {
                let b = Buffer::placeholder(&device);
                *p = Some(b.clone());
                Ok(b)
            }
        }
    }
}

/// The registry: ggml's struct plus the devices.
pub struct Registry {
    reg: sys::ggml_backend_reg,
    devices: Vec<&'static mut DeviceEntry>,
}

// SAFETY: the registry and its entries are built once and never mutated afterwards except through their
// mutexes; the raw pointers inside the ggml structs point into this same leaked, immutable data.
unsafe impl Sync for Registry {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for Registry {}

/// The process-wide registry (no devices if Vulkan is unavailable).
pub fn registry() -> &'static Registry {
    static REG: OnceLock<&'static Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let reg: &'static mut Registry = Box::leak(Box::new(Registry {
            reg: sys::ggml_backend_reg {
                api_version: sys::GGML_BACKEND_API_VERSION,
                iface: REG_IFACE,
                context: std::ptr::null_mut(),
            },
            devices: Vec::new(),
        }));
        let reg_ptr: *mut sys::ggml_backend_reg = &mut reg.reg;
        reg.reg.context = reg_ptr.cast();
        let physical = match Instance::global() {
            Ok(inst) => inst.physical_devices().to_vec(),
            Err(e) => {
                super::host::log(sys::GGML_LOG_LEVEL_WARN, &format!("no Vulkan: {e}"));
                Vec::new()
            }
        };
        let names = super::device_names(physical.iter().map(|p| p.caps.usable()));
        for ((index, pd), name) in physical.iter().enumerate().zip(names) {
            let Some(name) = name else { continue };
            let entry: &'static mut DeviceEntry = Box::leak(Box::new(DeviceEntry {
                dev: sys::ggml_backend_device { iface: DEVICE_IFACE, reg: reg_ptr, context: std::ptr::null_mut() },
                buft: sys::ggml_backend_buffer_type {
                    iface: BUFT_IFACE,
                    device: std::ptr::null_mut(),
                    context: std::ptr::null_mut(),
                },
                host_buft: sys::ggml_backend_buffer_type {
                    iface: HOST_BUFT_IFACE,
                    device: std::ptr::null_mut(),
                    context: std::ptr::null_mut(),
                },
                host_name: CString::new(format!("{name}_Host")).expect("no NUL"),
                name: CString::new(name).expect("no NUL"),
                description: CString::new(pd.caps.name.replace('\0', " ")).expect("no NUL"),
                device_id: pd.caps.ggml_device_id().map(|id| CString::new(id).expect("hex digits only")),
                index,
                caps: pd.caps.clone(),
                device: Mutex::new(None),
                placeholder: Mutex::new(None),
            }));
            let entry_ptr: *mut DeviceEntry = entry;
            entry.dev.context = entry_ptr.cast();
            entry.buft.context = entry_ptr.cast();
            entry.buft.device = &mut entry.dev;
            entry.host_buft.context = entry_ptr.cast();
            entry.host_buft.device = &mut entry.dev;
            reg.devices.push(entry);
        }
        reg
    })
}

impl Registry {
    /// ggml's handle of the registry.
    pub fn handle(&'static self) -> sys::ggml_backend_reg_t {
        &self.reg as *const sys::ggml_backend_reg as sys::ggml_backend_reg_t
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The devices in registry order.
    pub fn entries(&self) -> impl Iterator<Item = &DeviceEntry> {
        self.devices.iter().map(|e| &**e)
    }

    /// Registry index of `e`.
    pub fn position(&self, e: &DeviceEntry) -> Option<usize> {
        self.devices.iter().position(|d| std::ptr::eq(&**d, e))
    }
}

/// Whether `buft` is one of the registry's buffer types.
pub fn is_ours(buft: sys::ggml_backend_buffer_type_t) -> bool {
    registry().devices.iter().any(|e| std::ptr::eq(&e.buft, buft))
}

/// The entry behind one of our devices.
///
/// # Safety
/// `dev` must be one of the registry's devices.
pub unsafe fn entry<'a>(dev: sys::ggml_backend_dev_t) -> &'a DeviceEntry {
    // SAFETY: our devices' context is their 'static DeviceEntry.
    unsafe { &*((*dev).context as *const DeviceEntry) }
}

// ---- registry interface ----

unsafe extern "C" fn reg_get_name(_reg: sys::ggml_backend_reg_t) -> *const c_char {
    c"GGVK".as_ptr()
}

unsafe extern "C" fn reg_get_device_count(_reg: sys::ggml_backend_reg_t) -> usize {
    registry().len()
}

unsafe extern "C" fn reg_get_device(_reg: sys::ggml_backend_reg_t, index: usize) -> sys::ggml_backend_dev_t {
    match registry().devices.get(index) {
        Some(e) => &e.dev as *const sys::ggml_backend_device as sys::ggml_backend_dev_t,
        None => std::ptr::null_mut(),
    }
}

/// Extra functions of the registry (ggml's `get_proc_address`): the split buffer type and the allreduce.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe extern "C" fn reg_get_proc_address(_reg: sys::ggml_backend_reg_t, name: *const c_char) -> *mut c_void {
    if name.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name) };
    if name.to_bytes() == b"ggml_backend_split_buffer_type" {
        return super::split::split_buffer_type as *mut c_void;
    }
    super::comm::proc_address(name).unwrap_or(std::ptr::null_mut())
}

const REG_IFACE: sys::ggml_backend_reg_i = sys::ggml_backend_reg_i {
    get_name: Some(reg_get_name),
    get_device_count: Some(reg_get_device_count),
    get_device: Some(reg_get_device),
    get_proc_address: Some(reg_get_proc_address),
};

// ---- device interface ----

unsafe extern "C" fn dev_get_name(dev: sys::ggml_backend_dev_t) -> *const c_char {
    // SAFETY: ggml passes one of our devices.
    unsafe { entry(dev) }.name.as_ptr()
}

unsafe extern "C" fn dev_get_description(dev: sys::ggml_backend_dev_t) -> *const c_char {
    // SAFETY: ggml passes one of our devices.
    unsafe { entry(dev) }.description.as_ptr()
}

fn memory(e: &DeviceEntry) -> (usize, usize) {
    let total = e.caps.device_local_bytes();
    // With a budget (GGVK_MEMORY_BUDGET), report it: total = budget, free = budget less every byte ggvk holds on
    // the device (ggml's buffers, and scratch and staging memory, which ggml-alloc does not size).
    let open = e.device.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // (A malformed GGVK_MEMORY_BUDGET fails the device's opening with that error; here it counts as none.)
    let limit =
        open.as_ref().map_or_else(|| crate::vk::device::env_memory_budget().unwrap_or(0), |d| d.memory_budget_limit());
    if limit > 0 {
        let used = open.map_or(0, |d| d.allocated_bytes());
        return (limit.saturating_sub(used) as usize, limit as usize);
    }
    let (used, budget) = match Instance::global() {
        Ok(inst) => match inst.physical_devices().get(e.index) {
            Some(pd) => inst.memory_budget(pd.handle, &e.caps),
            None => (0, total),
        },
        Err(_) => (0, total),
    };
    (budget.saturating_sub(used) as usize, total as usize)
}

unsafe extern "C" fn dev_get_memory(dev: sys::ggml_backend_dev_t, free: *mut usize, total: *mut usize) {
    // SAFETY: ggml passes one of our devices and two writable size_t.
    let e = unsafe { entry(dev) };
    let (f, t) = memory(e);
    // SAFETY: as above.
    unsafe {
        if !free.is_null() {
            *free = f;
        }
        if !total.is_null() {
            *total = t;
        }
    }
}

fn dev_type(e: &DeviceEntry) -> sys::ggml_backend_dev_type {
    if e.caps.device_type == ash::vk::PhysicalDeviceType::INTEGRATED_GPU {
        sys::GGML_BACKEND_DEVICE_TYPE_IGPU
    } else {
        sys::GGML_BACKEND_DEVICE_TYPE_GPU
    }
}

unsafe extern "C" fn dev_get_type(dev: sys::ggml_backend_dev_t) -> sys::ggml_backend_dev_type {
    // SAFETY: ggml passes one of our devices.
    dev_type(unsafe { entry(dev) })
}

unsafe extern "C" fn dev_get_props(dev: sys::ggml_backend_dev_t, props: *mut sys::ggml_backend_dev_props) {
    // SAFETY: ggml passes one of our devices and a writable props struct.
    let (e, props) = unsafe { (entry(dev), &mut *props) };
    let (free, total) = memory(e);
    *props = sys::ggml_backend_dev_props {
        name: e.name.as_ptr(),
        description: e.description.as_ptr(),
        memory_free: free,
        memory_total: total,
        r#type: dev_type(e),
        device_id: e.device_id.as_ref().map_or(std::ptr::null(), |id| id.as_ptr()),
        caps: sys::ggml_backend_dev_caps {
            r#async: true,
            host_buffer: true,
            buffer_from_host_ptr: false,
            events: true,
            mmap_support: false,
        },
    };
}

unsafe extern "C" fn dev_init_backend(dev: sys::ggml_backend_dev_t, _params: *const c_char) -> sys::ggml_backend_t {
    // SAFETY: ggml passes one of our devices.
    let e = unsafe { entry(dev) };
    guarded("init_backend", std::ptr::null_mut(), || backend::create(e, dev))
}

unsafe extern "C" fn dev_get_buffer_type(dev: sys::ggml_backend_dev_t) -> sys::ggml_backend_buffer_type_t {
    // SAFETY: ggml passes one of our devices.
    let e = unsafe { entry(dev) };
    &e.buft as *const sys::ggml_backend_buffer_type as sys::ggml_backend_buffer_type_t
}

unsafe extern "C" fn dev_get_host_buffer_type(dev: sys::ggml_backend_dev_t) -> sys::ggml_backend_buffer_type_t {
    // SAFETY: ggml passes one of our devices.
    let e = unsafe { entry(dev) };
    &e.host_buft as *const sys::ggml_backend_buffer_type as sys::ggml_backend_buffer_type_t
}

/// Whether the engine supports `op` on this device: products over row-split weights as their main device
/// ([`super::split::check_op`]), everything else as [`supports_here`] says.
pub fn supports(e: &DeviceEntry, op: *const sys::ggml_tensor) -> Result<()> {
    // SAFETY: ggml passes a live tensor whose sources and their buffers are live.
    let t = unsafe { op.as_ref() }.ok_or_else(|| crate::Error::invalid("NULL tensor"))?;
    // SAFETY: as above.
    match unsafe { super::split::check_op(e, t) }? {
        Some(()) => Ok(()),
        None => supports_here(e, op),
    }
}

/// Whether the engine supports `op` on this device, its tensors wherever they are (checked with placeholder
/// memory).
pub(super) fn supports_here(e: &DeviceEntry, op: *const sys::ggml_tensor) -> Result<()> {
    let placeholder = e.placeholder()?;
    // SAFETY: ggml passes a live tensor whose sources are live.
    match unsafe { translate::node(op, Memory::Check(&placeholder)) }? {
        Some(node) => crate::ops::check_on(placeholder.device(), &node),
        None => Ok(()),
    }
}

unsafe extern "C" fn dev_supports_op(dev: sys::ggml_backend_dev_t, op: *const sys::ggml_tensor) -> bool {
    // SAFETY: ggml passes one of our devices.
    let e = unsafe { entry(dev) };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match supports(e, op) {
        Ok(()) => true,
        Err(err) => {
            // GGVK_DEBUG_SUPPORT=1 says why each rejected op was rejected.
            if crate::knobs::switch("GGVK_DEBUG_SUPPORT", false) {
                // SAFETY: ggml passes a live tensor; its name is NUL-terminated within GGML_MAX_NAME.
                let name = unsafe { std::ffi::CStr::from_ptr((*op).name.as_ptr()) };
                crate::diag::emit(crate::diag::Level::Report, &format!("ggvk: not supported: {name:?}: {err}"));
            }
            false
        }
    }))
    .unwrap_or(false)
}

unsafe extern "C" fn dev_supports_buft(dev: sys::ggml_backend_dev_t, buft: sys::ggml_backend_buffer_type_t) -> bool {
    // SAFETY: ggml passes one of our devices.
    let e = unsafe { entry(dev) };
    std::ptr::eq(buft as *const sys::ggml_backend_buffer_type, &e.buft)
        || super::split::split_buft(buft).is_some_and(|s| s.main_is(e))
}

unsafe extern "C" fn dev_offload_op(_dev: sys::ggml_backend_dev_t, op: *const sys::ggml_tensor) -> bool {
    // Worth moving weights' work here even when they live in host memory: large batches.
    // SAFETY: ggml passes a live tensor.
    let t = unsafe { &*op };
    t.ne[1] >= 32 && t.op != sys::GGML_OP_GET_ROWS
}

const DEVICE_IFACE: sys::ggml_backend_device_i = sys::ggml_backend_device_i {
    get_name: Some(dev_get_name),
    get_description: Some(dev_get_description),
    get_memory: Some(dev_get_memory),
    get_type: Some(dev_get_type),
    get_props: Some(dev_get_props),
    init_backend: Some(dev_init_backend),
    get_buffer_type: Some(dev_get_buffer_type),
    get_host_buffer_type: Some(dev_get_host_buffer_type),
    buffer_from_host_ptr: None,
    supports_op: Some(dev_supports_op),
    supports_buft: Some(dev_supports_buft),
    offload_op: Some(dev_offload_op),
    event_new: Some(backend::event_new),
    event_free: Some(backend::event_free),
    event_synchronize: Some(backend::event_synchronize),
};

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::{dev_get_props, registry, sys};

    #[test]
    fn props_carry_a_lasting_device_id() {
        assert!(!registry().is_empty(), "no usable Vulkan device (lavapipe counts)");
        for e in &registry().devices {
            let dev = &e.dev as *const sys::ggml_backend_device as sys::ggml_backend_dev_t;
            let get = || {
                let mut props = std::mem::MaybeUninit::<sys::ggml_backend_dev_props>::zeroed();
                // SAFETY: `dev` is one of the registry's devices; `props` is writable.
                unsafe { dev_get_props(dev, props.as_mut_ptr()) };
                // SAFETY: dev_get_props wrote every field.
                unsafe { props.assume_init() }
            };
            let (a, b) = (get(), get());
            let want = e.caps().ggml_device_id();
            assert_eq!(a.device_id.is_null(), want.is_none(), "{:?}", e.name);
            if let Some(want) = want {
                // The same string, kept by the registry, every time.
                assert_eq!(a.device_id, b.device_id);
                // SAFETY: a non-NULL device_id points to the entry's NUL-terminated string.
                let id = unsafe { CStr::from_ptr(a.device_id) }.to_str().expect("ASCII");
                assert_eq!(id, want);
                let pci = id.len() == 12 && id.as_bytes()[4] == b':' && id.as_bytes()[7] == b':';
                let uuid = id.len() == 36 && id.split('-').map(str::len).eq([8, 4, 4, 4, 12]);
                assert!(pci || uuid, "{id}");
                assert!(id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f' | ':' | '.' | '-')), "{id}");
            }
        }
    }
}
