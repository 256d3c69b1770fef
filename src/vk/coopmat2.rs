//! VK_NV_cooperative_matrix2 (workgroup-scope cooperative matrices with tensor-addressed loads and stores): its
//! feature and property structures and the flexible-dimension query, which ash 0.38's registry predates. The
//! structures mirror `vulkan_core.h` (1.4.309) field for field; only this module builds them.

use ash::vk;

use super::Instance;

/// `VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_FEATURES_NV`.
const FEATURES_STYPE: vk::StructureType = vk::StructureType::from_raw(1_000_593_000);
/// `VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_FLEXIBLE_DIMENSIONS_PROPERTIES_NV`.
const FLEX_STYPE: vk::StructureType = vk::StructureType::from_raw(1_000_593_001);
/// `VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_2_PROPERTIES_NV`.
const PROPERTIES_STYPE: vk::StructureType = vk::StructureType::from_raw(1_000_593_002);

/// `VkPhysicalDeviceCooperativeMatrix2FeaturesNV`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Features {
    s_type: vk::StructureType,
    p_next: *mut std::ffi::c_void,
    /// `cooperativeMatrixWorkgroupScope`.
    pub workgroup_scope: vk::Bool32,
    /// `cooperativeMatrixFlexibleDimensions`.
    pub flexible_dimensions: vk::Bool32,
    /// `cooperativeMatrixReductions`.
    pub reductions: vk::Bool32,
    /// `cooperativeMatrixConversions`.
    pub conversions: vk::Bool32,
    /// `cooperativeMatrixPerElementOperations`.
    pub per_element_operations: vk::Bool32,
    /// `cooperativeMatrixTensorAddressing`.
    pub tensor_addressing: vk::Bool32,
    /// `cooperativeMatrixBlockLoads`.
    pub block_loads: vk::Bool32,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            s_type: FEATURES_STYPE,
            p_next: std::ptr::null_mut(),
            workgroup_scope: 0,
            flexible_dimensions: 0,
            reductions: 0,
            conversions: 0,
            per_element_operations: 0,
            tensor_addressing: 0,
            block_loads: 0,
        }
    }
}

// SAFETY: `Features` is laid out as VkPhysicalDeviceCooperativeMatrix2FeaturesNV (sType, pNext first), which the
// specification lets extend VkPhysicalDeviceFeatures2 and VkDeviceCreateInfo.
unsafe impl vk::ExtendsPhysicalDeviceFeatures2 for Features {}
// SAFETY: the same layout, which the specification also lets extend VkDeviceCreateInfo.
unsafe impl vk::ExtendsDeviceCreateInfo for Features {}

/// `VkPhysicalDeviceCooperativeMatrix2PropertiesNV`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Properties {
    s_type: vk::StructureType,
    p_next: *mut std::ffi::c_void,
    /// `cooperativeMatrixWorkgroupScopeMaxWorkgroupSize`.
    pub workgroup_scope_max_workgroup_size: u32,
    /// `cooperativeMatrixFlexibleDimensionsMaxDimension`.
    pub flexible_dimensions_max_dimension: u32,
    /// `cooperativeMatrixWorkgroupScopeReservedSharedMemory`.
    pub workgroup_scope_reserved_shared_memory: u32,
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            s_type: PROPERTIES_STYPE,
            p_next: std::ptr::null_mut(),
            workgroup_scope_max_workgroup_size: 0,
            flexible_dimensions_max_dimension: 0,
            workgroup_scope_reserved_shared_memory: 0,
        }
    }
}

// SAFETY: laid out as VkPhysicalDeviceCooperativeMatrix2PropertiesNV, which extends VkPhysicalDeviceProperties2.
unsafe impl vk::ExtendsPhysicalDeviceProperties2 for Properties {}

/// `VkCooperativeMatrixFlexibleDimensionsPropertiesNV`.
#[repr(C)]
#[derive(Clone, Copy)]
struct FlexRaw {
    s_type: vk::StructureType,
    p_next: *mut std::ffi::c_void,
    m_granularity: u32,
    n_granularity: u32,
    k_granularity: u32,
    a_type: vk::ComponentTypeKHR,
    b_type: vk::ComponentTypeKHR,
    c_type: vk::ComponentTypeKHR,
    result_type: vk::ComponentTypeKHR,
    saturating_accumulation: vk::Bool32,
    scope: vk::ScopeKHR,
    workgroup_invocations: u32,
}

// SAFETY: (a type, no code) vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV's signature.
type FlexQuery = unsafe extern "system" fn(vk::PhysicalDevice, *mut u32, *mut FlexRaw) -> vk::Result;

/// One family of workgroup-scope shapes: any M, N, K that are multiples of the granularities (up to the maximum
/// dimension), for workgroups of exactly `invocations` invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlexShape {
    /// M must be a multiple of this.
    pub m_granularity: u32,
    /// N must be a multiple of this.
    pub n_granularity: u32,
    /// K must be a multiple of this.
    pub k_granularity: u32,
    /// A and B element type.
    pub ab: super::caps::CoopmatType,
    /// Accumulator and result type.
    pub c: super::caps::CoopmatType,
    /// Workgroup size the shapes need.
    pub invocations: u32,
}

/// What ggvk uses of VK_NV_cooperative_matrix2 on a device that offers it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Coopmat2Caps {
    /// Workgroup scope, flexible dimensions and tensor addressing are all offered (what the kernels need).
    pub usable: bool,
    /// `cooperativeMatrixBlockLoads` (decode functions over block-quantized tensors).
    pub block_loads: bool,
    /// `cooperativeMatrixReductions`, `cooperativeMatrixConversions` and `cooperativeMatrixPerElementOperations`
    /// are all offered (what the flash-attention kernel needs on top of [`Coopmat2Caps::usable`]).
    pub softmax_ops: bool,
    /// `cooperativeMatrixWorkgroupScopeMaxWorkgroupSize`.
    pub max_workgroup_size: u32,
    /// `cooperativeMatrixFlexibleDimensionsMaxDimension`.
    pub max_dimension: u32,
    /// `cooperativeMatrixWorkgroupScopeReservedSharedMemory`.
    pub reserved_shared_memory: u32,
    /// Workgroup-scope shape families without saturation whose A and B types match.
    pub shapes: Vec<FlexShape>,
}

impl Coopmat2Caps {
    /// Whether a workgroup of `invocations` may multiply `m x k` by `k x n` matrices of `ab` into `c`.
    pub fn allows(
        &self,
        (m, n, k): (u32, u32, u32),
        ab: super::caps::CoopmatType,
        c: super::caps::CoopmatType,
        invocations: u32,
    ) -> bool {
        self.usable
            && invocations <= self.max_workgroup_size
            && m.max(n).max(k) <= self.max_dimension
            && self.shapes.iter().any(|s| {
                s.ab == ab
                    && s.c == c
                    && s.invocations == invocations
                    && m % s.m_granularity.max(1) == 0
                    && n % s.n_granularity.max(1) == 0
                    && k % s.k_granularity.max(1) == 0
            })
    }
}

/// The flexible-dimension shape families of `pd` (empty when the entry point is missing or the query fails).
pub fn flexible_shapes(instance: &Instance, pd: vk::PhysicalDevice) -> Vec<FlexShape> {
    let name = c"vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV";
    // SAFETY: a plain entry-point lookup on a live instance.
    let Some(f) = (unsafe { instance.entry().get_instance_proc_addr(instance.raw().handle(), name.as_ptr()) }) else {
        return Vec::new();
    };
    // SAFETY: the loader returned this entry point for exactly this name, whose signature FlexQuery spells out.
    let query: FlexQuery = unsafe { std::mem::transmute::<unsafe extern "system" fn(), FlexQuery>(f) };
    let mut count = 0u32;
    // SAFETY: count query (null array) on an enumerated device.
    if unsafe { query(pd, &mut count, std::ptr::null_mut()) } != vk::Result::SUCCESS || count == 0 {
        return Vec::new();
    }
    let blank = FlexRaw {
        s_type: FLEX_STYPE,
        p_next: std::ptr::null_mut(),
        m_granularity: 0,
        n_granularity: 0,
        k_granularity: 0,
        a_type: vk::ComponentTypeKHR::FLOAT16,
        b_type: vk::ComponentTypeKHR::FLOAT16,
        c_type: vk::ComponentTypeKHR::FLOAT16,
        result_type: vk::ComponentTypeKHR::FLOAT16,
        saturating_accumulation: 0,
        scope: vk::ScopeKHR::WORKGROUP,
        workgroup_invocations: 0,
    };
    let mut raw = vec![blank; count as usize];
    // SAFETY: `raw` holds `count` initialised structures with their sType set, as the query requires.
    let r = unsafe { query(pd, &mut count, raw.as_mut_ptr()) };
    if r != vk::Result::SUCCESS && r != vk::Result::INCOMPLETE {
        return Vec::new();
    }
    raw.truncate(count as usize);
    raw.iter()
        .filter(|p| p.scope == vk::ScopeKHR::WORKGROUP && p.saturating_accumulation == 0)
        .filter(|p| p.a_type == p.b_type && p.c_type == p.result_type)
        .map(|p| FlexShape {
            m_granularity: p.m_granularity,
            n_granularity: p.n_granularity,
            k_granularity: p.k_granularity,
            ab: super::caps::CoopmatType::from_vk(p.a_type),
            c: super::caps::CoopmatType::from_vk(p.c_type),
            invocations: p.workgroup_invocations,
        })
        .collect()
}
