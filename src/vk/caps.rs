//! The capability record of a physical device: what ggvk needs to know to pick kernels and limits.

use std::ffi::CStr;

use ash::vk;

use super::instance::Instance;
use crate::error::{Result, VkResultExt};

/// One memory heap of the device.
#[derive(Clone, Copy, Debug)]
pub struct Heap {
    /// Heap size in bytes.
    pub size: u64,
    /// Whether the heap is DEVICE_LOCAL.
    pub device_local: bool,
}

/// What a physical device can do, queried once at enumeration.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// Driver-reported name.
    pub name: String,
    /// PCI vendor id.
    pub vendor_id: u32,
    /// PCI device id.
    pub device_id: u32,
    /// Discrete, integrated, virtual, CPU, other.
    pub device_type: vk::PhysicalDeviceType,
    /// Device API version (VK_MAKE_API_VERSION encoding), capped by nothing.
    pub api_version: u32,
    /// Driver version (vendor encoding).
    pub driver_version: u32,
    /// `shaderFloat16`.
    pub fp16: bool,
    /// `shaderInt8`.
    pub int8: bool,
    /// `shaderInt16` (core feature).
    pub int16: bool,
    /// `storageBuffer16BitAccess`.
    pub storage_16bit: bool,
    /// `storageBuffer8BitAccess`.
    pub storage_8bit: bool,
    /// Subgroup size the driver reports by default.
    pub subgroup_size: u32,
    /// Subgroup arithmetic (subgroupAdd etc.) in compute shaders.
    pub subgroup_arithmetic: bool,
    /// Subgroup shuffle in compute shaders.
    pub subgroup_shuffle: bool,
    /// `shaderIntegerDotProduct` (Vulkan 1.3 or the KHR extension).
    pub integer_dot_product: bool,
    /// Packed 4x8-bit signed dot product is hardware-accelerated.
    pub integer_dot_product_accelerated: bool,
    /// VK_KHR_cooperative_matrix is offered.
    pub coopmat_khr: bool,
    /// The `cooperativeMatrix` feature of VK_KHR_cooperative_matrix (enabled at device creation when true).
    pub coopmat_feature: bool,
    /// Subgroup-scope cooperative-matrix shapes the driver lists (VK_KHR_cooperative_matrix), see [`CoopmatShape`].
    pub coopmat_shapes: Vec<CoopmatShape>,
    /// `vulkanMemoryModel` (enabled with cooperative matrices: their SPIR-V may declare it).
    pub vulkan_memory_model: bool,
    /// `timelineSemaphore` (Vulkan 1.2; enabled: the device's progress counter behind ggml's events).
    pub timeline_semaphore: bool,
    /// VK_NV_cooperative_matrix2 is offered.
    pub coopmat2_nv: bool,
    /// What VK_NV_cooperative_matrix2 offers (features, limits, workgroup-scope shapes; enabled at device creation
    /// when [`super::coopmat2::Coopmat2Caps::usable`]).
    pub coopmat2: super::coopmat2::Coopmat2Caps,
    /// `bufferDeviceAddress` (enabled with the NV_cooperative_matrix2 kernels: their decode functions take
    /// buffer references).
    pub buffer_device_address: bool,
    /// VK_EXT_memory_budget is offered.
    pub memory_budget_ext: bool,
    /// VK_KHR_pipeline_executable_properties with `pipelineExecutableInfo`: the driver reports per-pipeline
    /// statistics of its compiled code (registers, spills, shared memory; `GGVK_PIPELINE_STATS`).
    pub pipeline_executable_info: bool,
    /// VK_EXT_external_memory_host's minImportedHostPointerAlignment (0: the device cannot import host memory).
    pub host_import_alignment: u64,
    /// `maxStorageBufferRange`: the largest window one storage-buffer descriptor can bind.
    pub max_storage_buffer_range: u64,
    /// `maxMemoryAllocationSize`: the largest single `vkAllocateMemory`.
    pub max_memory_allocation_size: u64,
    /// `maxComputeSharedMemorySize`.
    pub max_shared_memory: u32,
    /// `maxComputeWorkGroupCount`.
    pub max_workgroup_count: [u32; 3],
    /// `maxComputeWorkGroupInvocations`.
    pub max_workgroup_invocations: u32,
    /// `minStorageBufferOffsetAlignment`.
    pub min_storage_offset_alignment: u64,
    /// `maxPushConstantsSize`.
    pub max_push_constants: u32,
    /// Nanoseconds per timestamp tick.
    pub timestamp_period: f32,
    /// Queue family used for compute, and whether its timestamps are valid.
    pub compute_queue_family: Option<u32>,
    /// The compute queue family supports timestamps.
    pub timestamps: bool,
    /// Memory heaps.
    pub heaps: Vec<Heap>,
    /// PCI domain, bus, device and function (VK_EXT_pci_bus_info; `None` where the device does not offer it).
    pub pci_bus: Option<[u32; 4]>,
    /// `deviceUUID` (Vulkan 1.1).
    pub uuid: [u8; 16],
}

/// Element types of a cooperative-matrix shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoopmatType {
    /// 16-bit float.
    F16,
    /// bfloat16 (component type 1000141000 of VK_KHR_shader_bfloat16).
    Bf16,
    /// 32-bit float.
    F32,
    /// Signed 8-bit integer.
    S8,
    /// Signed 32-bit integer.
    S32,
    /// Anything else.
    Other,
}

impl CoopmatType {
    pub(super) fn from_vk(t: vk::ComponentTypeKHR) -> Self {
        match t {
            vk::ComponentTypeKHR::FLOAT16 => Self::F16,
            vk::ComponentTypeKHR::FLOAT32 => Self::F32,
            vk::ComponentTypeKHR::SINT8 => Self::S8,
            vk::ComponentTypeKHR::SINT32 => Self::S32,
            t if t.as_raw() == 1_000_141_000 => Self::Bf16,
            _ => Self::Other,
        }
    }
}

/// One subgroup-scope multiply-add shape `A (m x k) x B (k x n) + C` the device runs on cooperative matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopmatShape {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of B and C.
    pub n: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Element type of A and B.
    pub ab: CoopmatType,
    /// Element type of C and the result.
    pub c: CoopmatType,
}

fn has_ext(exts: &[vk::ExtensionProperties], name: &CStr) -> bool {
    exts.iter().any(|e| e.extension_name_as_c_str() == Ok(name))
}

/// Name of VK_NV_cooperative_matrix2 (newer than ash 0.38's registry).
pub const NV_COOPERATIVE_MATRIX2: &CStr = c"VK_NV_cooperative_matrix2";

impl Capabilities {
    /// Query everything for `pd`.
    pub fn query(instance: &Instance, pd: vk::PhysicalDevice) -> Result<Self> {
        let raw = instance.raw();
        // SAFETY: `pd` was enumerated from this instance; the queries only write into our structs.
        let props = unsafe { raw.get_physical_device_properties(pd) };
        // SAFETY: as above.
        let exts = unsafe { raw.enumerate_device_extension_properties(pd) }
            .vk_context("vkEnumerateDeviceExtensionProperties")?;
        let api = props.api_version;
        let v12 = api >= vk::API_VERSION_1_2;
        let v13 = api >= vk::API_VERSION_1_3;

        let mut p11 = vk::PhysicalDeviceVulkan11Properties::default();
        let mut pdot = vk::PhysicalDeviceShaderIntegerDotProductProperties::default();
        let mut pci = vk::PhysicalDevicePCIBusInfoPropertiesEXT::default();
        let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut p11);
        let dot_ext = has_ext(&exts, ash::khr::shader_integer_dot_product::NAME);
        if v13 || dot_ext {
            props2 = props2.push_next(&mut pdot);
        }
        let pci_ext = has_ext(&exts, ash::ext::pci_bus_info::NAME);
        if pci_ext {
            props2 = props2.push_next(&mut pci);
        }
        let mut phost = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
        let host_ext = has_ext(&exts, ash::ext::external_memory_host::NAME);
        if host_ext {
            props2 = props2.push_next(&mut phost);
        }
        let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut fdot = vk::PhysicalDeviceShaderIntegerDotProductFeatures::default();
        let mut fcm = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default();
        let coopmat_khr = has_ext(&exts, ash::khr::cooperative_matrix::NAME);
        let coopmat2_ext = coopmat_khr && has_ext(&exts, NV_COOPERATIVE_MATRIX2);
        let mut fcm2 = super::coopmat2::Features::default();
        let pexec_ext = has_ext(&exts, ash::khr::pipeline_executable_properties::NAME);
        let mut fpexec = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
        let mut pcm2 = super::coopmat2::Properties::default();
        if v12 && coopmat2_ext {
            props2 = props2.push_next(&mut pcm2);
        }
        let mut feats2 = vk::PhysicalDeviceFeatures2::default();
        if v12 {
            feats2 = feats2.push_next(&mut f11).push_next(&mut f12);
            if v13 || dot_ext {
                feats2 = feats2.push_next(&mut fdot);
            }
            if coopmat_khr {
                feats2 = feats2.push_next(&mut fcm);
            }
            if coopmat2_ext {
                feats2 = feats2.push_next(&mut fcm2);
            }
            if pexec_ext {
                feats2 = feats2.push_next(&mut fpexec);
            }
            // SAFETY: the chain holds only structs known to a 1.2+ device (plus the dot-product, PCI bus,
            // cooperative-matrix and pipeline-executable ones when the device offers their extensions).
            unsafe {
                raw.get_physical_device_properties2(pd, &mut props2);
                raw.get_physical_device_features2(pd, &mut feats2);
            }
        }
        let features = feats2.features;
        let coopmat_feature = v12 && coopmat_khr && fcm.cooperative_matrix != 0;
        let coopmat_shapes = if coopmat_feature { coopmat_shapes(instance, pd) } else { Vec::new() };
        let coopmat2 = if v12 && coopmat2_ext && coopmat_feature {
            super::coopmat2::Coopmat2Caps {
                usable: fcm2.workgroup_scope != 0 && fcm2.flexible_dimensions != 0 && fcm2.tensor_addressing != 0,
                block_loads: fcm2.block_loads != 0,
                softmax_ops: fcm2.reductions != 0 && fcm2.conversions != 0 && fcm2.per_element_operations != 0,
                max_workgroup_size: pcm2.workgroup_scope_max_workgroup_size,
                max_dimension: pcm2.flexible_dimensions_max_dimension,
                reserved_shared_memory: pcm2.workgroup_scope_reserved_shared_memory,
                shapes: super::coopmat2::flexible_shapes(instance, pd),
            }
        } else {
            super::coopmat2::Coopmat2Caps::default()
        };
        // SAFETY: plain queries on an enumerated device.
        let mem = unsafe { raw.get_physical_device_memory_properties(pd) };
        // SAFETY: as above.
        let families = unsafe { raw.get_physical_device_queue_family_properties(pd) };
        let compute_family = families
            .iter()
            .enumerate()
            .filter(|(_, f)| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .min_by_key(|(_, f)| f.queue_flags.contains(vk::QueueFlags::GRAPHICS))
            .map(|(i, _)| i as u32);
        let timestamps = compute_family.map(|i| families[i as usize].timestamp_valid_bits > 0).unwrap_or(false);
        let heaps = mem.memory_heaps[..mem.memory_heap_count as usize]
            .iter()
            .map(|h| Heap { size: h.size, device_local: h.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL) })
            .collect();
        let sg_ops = p11.subgroup_supported_operations;
        let sg_compute = p11.subgroup_supported_stages.contains(vk::ShaderStageFlags::COMPUTE);
        let name = props
            .device_name_as_c_str()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_else(|_| String::from("(unnamed)"));
        Ok(Capabilities {
            name,
            vendor_id: props.vendor_id,
            device_id: props.device_id,
            device_type: props.device_type,
            api_version: api,
            driver_version: props.driver_version,
            fp16: f12.shader_float16 != 0,
            int8: f12.shader_int8 != 0,
            int16: features.shader_int16 != 0,
            storage_16bit: f11.storage_buffer16_bit_access != 0,
            storage_8bit: f12.storage_buffer8_bit_access != 0,
            subgroup_size: p11.subgroup_size.max(1),
            subgroup_arithmetic: sg_compute && sg_ops.contains(vk::SubgroupFeatureFlags::ARITHMETIC),
            subgroup_shuffle: sg_compute && sg_ops.contains(vk::SubgroupFeatureFlags::SHUFFLE),
            integer_dot_product: fdot.shader_integer_dot_product != 0,
            integer_dot_product_accelerated: pdot.integer_dot_product4x8_bit_packed_signed_accelerated != 0,
            coopmat_khr,
            coopmat_feature,
            coopmat_shapes,
            vulkan_memory_model: f12.vulkan_memory_model != 0,
            timeline_semaphore: f12.timeline_semaphore != 0,
            coopmat2_nv: has_ext(&exts, NV_COOPERATIVE_MATRIX2),
            coopmat2,
            buffer_device_address: f12.buffer_device_address != 0,
            memory_budget_ext: has_ext(&exts, ash::ext::memory_budget::NAME),
            pipeline_executable_info: v12 && pexec_ext && fpexec.pipeline_executable_info != 0,
            host_import_alignment: if host_ext { phost.min_imported_host_pointer_alignment.max(1) } else { 0 },
            max_storage_buffer_range: storage_range_cap(u64::from(props.limits.max_storage_buffer_range)),
            max_memory_allocation_size: p11.max_memory_allocation_size,
            max_shared_memory: props.limits.max_compute_shared_memory_size,
            max_workgroup_count: props.limits.max_compute_work_group_count,
            max_workgroup_invocations: props.limits.max_compute_work_group_invocations,
            min_storage_offset_alignment: props.limits.min_storage_buffer_offset_alignment.max(1),
            max_push_constants: props.limits.max_push_constants_size,
            timestamp_period: props.limits.timestamp_period,
            compute_queue_family: compute_family,
            timestamps,
            heaps,
            pci_bus: (v12 && pci_ext).then_some([pci.pci_domain, pci.pci_bus, pci.pci_device, pci.pci_function]),
            uuid: if v12 { p11.device_uuid } else { [0; 16] },
        })
    }

    /// The device's id as ggml's device properties carry it (`device_id`: [`format_device_id`]; not the PCI
    /// device id [`Capabilities::device_id`]).
    pub fn ggml_device_id(&self) -> Option<String> {
        format_device_id(self.pci_bus, self.uuid)
    }

    /// Whether ggvk can run on this device at all: Vulkan 1.2, a compute queue, 16-bit storage and int16.
    pub fn usable(&self) -> bool {
        self.missing().is_none()
    }

    /// The first requirement this device lacks, if any.
    pub fn missing(&self) -> Option<&'static str> {
        if self.api_version < vk::API_VERSION_1_2 {
            Some("Vulkan 1.2")
        } else if self.compute_queue_family.is_none() {
            Some("a compute queue")
        } else if !self.storage_16bit {
            Some("storageBuffer16BitAccess")
        } else if !self.int16 {
            Some("shaderInt16")
        } else if self.max_storage_buffer_range < (1 << 20) {
            Some("maxStorageBufferRange of at least 1 MiB")
        } else {
            None
        }
    }

    /// Total bytes of DEVICE_LOCAL heaps.
    pub fn device_local_bytes(&self) -> u64 {
        self.heaps.iter().filter(|h| h.device_local).map(|h| h.size).sum()
    }

    /// Whether the device is a CPU implementation (lavapipe): its invocations are SIMD lanes of the host's cores.
    pub fn cpu_device(&self) -> bool {
        self.device_type == vk::PhysicalDeviceType::CPU
    }

    /// Human-readable device type.
    pub fn type_name(&self) -> &'static str {
        match self.device_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => "discrete GPU",
            vk::PhysicalDeviceType::INTEGRATED_GPU => "integrated GPU",
            vk::PhysicalDeviceType::VIRTUAL_GPU => "virtual GPU",
            vk::PhysicalDeviceType::CPU => "CPU",
            _ => "other",
        }
    }
}

/// The id of a device as ggml wants it in `ggml_backend_dev_props::device_id`: the lower-case PCI bus id
/// `domain:bus:device.function` formatted as ggml-cuda and ggml-vulkan do (`0000:01:00.0`) where the PCI bus is
/// known, else the device UUID as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower-case hex), else (an all-zero UUID)
/// none. llama.cpp uses it to skip a GPU that two backends both list.
pub fn format_device_id(pci_bus: Option<[u32; 4]>, uuid: [u8; 16]) -> Option<String> {
    if let Some([domain, bus, device, function]) = pci_bus {
        return Some(format!("{domain:04x}:{bus:02x}:{device:02x}.{:x}", function & 0xff));
    }
    if uuid == [0; 16] {
        return None;
    }
    let hex = |r: std::ops::Range<usize>| uuid[r].iter().map(|b| format!("{b:02x}")).collect::<String>();
    Some(format!("{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16)))
}

/// The subgroup-scope shapes of VK_KHR_cooperative_matrix on `pd` (empty when the query fails: the cooperative
/// paths are then simply not taken).
fn coopmat_shapes(instance: &Instance, pd: vk::PhysicalDevice) -> Vec<CoopmatShape> {
    let ext = ash::khr::cooperative_matrix::Instance::new(instance.entry(), instance.raw());
    // SAFETY: the device offers VK_KHR_cooperative_matrix (checked by the caller); the query only fills a vector.
    let props = match unsafe { ext.get_physical_device_cooperative_matrix_properties(pd) } {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR failed: {e}");
            return Vec::new();
        }
    };
    props
        .iter()
        .filter(|p| p.scope == vk::ScopeKHR::SUBGROUP && p.a_type == p.b_type && p.c_type == p.result_type)
        .filter(|p| p.saturating_accumulation == vk::FALSE)
        .map(|p| CoopmatShape {
            m: p.m_size,
            n: p.n_size,
            k: p.k_size,
            ab: CoopmatType::from_vk(p.a_type),
            c: CoopmatType::from_vk(p.c_type),
        })
        .collect()
}

/// `maxStorageBufferRange`, lowered to `GGVK_MAX_STORAGE_RANGE` bytes when that is set and smaller (tests use it to
/// exercise the paths for tensors larger than one storage window with small tensors; never raised).
fn storage_range_cap(device_limit: u64) -> u64 {
    // At least 4096 (knobs checks it).
    match crate::knobs::number("GGVK_MAX_STORAGE_RANGE") {
        Some(cap) => device_limit.min(cap),
        None => device_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::format_device_id;

    #[test]
    fn device_ids_as_ggml_cuda_formats_them() {
        assert_eq!(format_device_id(Some([0, 1, 0, 0]), [7; 16]).as_deref(), Some("0000:01:00.0"));
        assert_eq!(format_device_id(Some([0x1a, 0xc1, 0x1f, 3]), [0; 16]).as_deref(), Some("001a:c1:1f.3"));
        let uuid = [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 0xa, 0xb, 0xc, 0xd, 0xe, 0xff];
        assert_eq!(format_device_id(None, uuid).as_deref(), Some("deadbeef-0001-0203-0405-0a0b0c0d0eff"));
        assert_eq!(format_device_id(None, [0; 16]), None);
    }
}
