//! Compute pipelines: created on first use from embedded SPIR-V, specialised by constants (workgroup
//! size first), kept for the device's lifetime, and backed by a `VkPipelineCache`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ash::vk;

use super::device::Device;
use crate::error::{Error, Result, VkResultExt};

/// A compiled shader embedded in the library, with the interface every ggvk kernel follows:
/// `bindings` storage buffers at set 0, bindings `0..bindings`, and `push_size` bytes of push constants.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    /// Unique name (the SPIR-V file it came from).
    pub name: &'static str,
    /// SPIR-V words as bytes (little-endian), as produced by build.rs.
    pub spirv: &'static [u8],
    /// Number of storage-buffer bindings.
    pub bindings: u32,
    /// Size of the push-constant block in bytes.
    pub push_size: u32,
}

/// A ready pipeline. Raw handles only: the [`PipelineCache`] of its device destroys them.
pub struct Pipeline {
    /// The compute pipeline.
    pub raw: vk::Pipeline,
    /// Its layout (one descriptor set + push constants).
    pub layout: vk::PipelineLayout,
    /// The layout of its descriptor set.
    pub set_layout: vk::DescriptorSetLayout,
    /// The shader it was built from.
    pub shader: Shader,
    /// The specialisation constants it was built with (ids 0.. in order).
    pub spec: Vec<u32>,
}

/// Most specialisation constants a pipeline takes.
pub(crate) const MAX_SPEC: usize = 16;

/// Pipelines are keyed by shader name and specialisation constants (zero-padded; no allocation per lookup).
type PipelineKey = (&'static str, [u32; MAX_SPEC], usize);

/// The device's pipelines, keyed by shader name and specialisation constants.
pub struct PipelineCache {
    cache: vk::PipelineCache,
    map: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
}

impl PipelineCache {
    /// Create the (empty) Vulkan pipeline cache.
    pub fn new(device: &ash::Device) -> Result<Self> {
        // SAFETY: valid device; empty initial data.
        let cache = unsafe { device.create_pipeline_cache(&vk::PipelineCacheCreateInfo::default(), None) }
            .vk_context("vkCreatePipelineCache")?;
        Ok(PipelineCache { cache, map: Mutex::new(HashMap::new()) })
    }

    /// Get or create the pipeline for `shader` specialised with `spec` (constant ids 0.. in order;
    /// by convention ids 0..3 are the workgroup size).
    pub fn get(&self, device: &Device, shader: &Shader, spec: &[u32]) -> Result<Arc<Pipeline>> {
        if spec.len() > MAX_SPEC {
            return Err(Error::Internal(format!("{}: {} specialisation constants", shader.name, spec.len())));
        }
        let mut padded = [0u32; MAX_SPEC];
        padded[..spec.len()].copy_from_slice(spec);
        let key = (shader.name, padded, spec.len());
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&key) {
            return Ok(p.clone());
        }
        let _span = tracing::debug_span!("create_pipeline", shader = shader.name).entered();
        let p = Arc::new(self.create(device, shader, spec)?);
        map.insert(key, p.clone());
        Ok(p)
    }

    fn create(&self, device: &Device, shader: &Shader, spec: &[u32]) -> Result<Pipeline> {
        device.check_alive()?;
        super::fault::point(super::fault::FaultKind::Pipeline).map_err(|e| device.note(e))?;
        if shader.spirv.is_empty() {
            return Err(Error::unsupported(format!(
                "{}: this build embeds no SPIR-V (built without the `shaders` feature)",
                shader.name
            )));
        }
        let raw = device.raw();
        let words = ash::util::read_spv(&mut std::io::Cursor::new(shader.spirv))
            .map_err(|e| Error::Internal(format!("embedded SPIR-V of {} is malformed: {e}", shader.name)))?;
        let bindings: Vec<_> = (0..shader.bindings)
            .map(|b| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(b)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let push = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .offset(0)
            .size(shader.push_size)];
        let entries: Vec<_> = (0..spec.len())
            .map(|i| vk::SpecializationMapEntry::default().constant_id(i as u32).offset(4 * i as u32).size(4))
            .collect();
        let spec_bytes: &[u8] = bytemuck::cast_slice(spec);
        let spec_info = vk::SpecializationInfo::default().map_entries(&entries).data(spec_bytes);

        // Create in order, unwinding what exists on failure.
        // SAFETY: valid device and create infos; every handle created here is destroyed on the error paths.
        unsafe {
            let module = raw
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
                .vk_context("vkCreateShaderModule")?;
            let set_layout = match raw
                .create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings), None)
            {
                Ok(l) => l,
                Err(r) => {
                    raw.destroy_shader_module(module, None);
                    return Err(Error::vk("vkCreateDescriptorSetLayout", r));
                }
            };
            let set_layouts = [set_layout];
            let mut layout_info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts);
            if shader.push_size > 0 {
                layout_info = layout_info.push_constant_ranges(&push);
            }
            let layout = match raw.create_pipeline_layout(&layout_info, None) {
                Ok(l) => l,
                Err(r) => {
                    raw.destroy_descriptor_set_layout(set_layout, None);
                    raw.destroy_shader_module(module, None);
                    return Err(Error::vk("vkCreatePipelineLayout", r));
                }
            };
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(module)
                .name(c"main")
                .specialization_info(&spec_info);
            let flags = if device.pipeline_stats().is_some() {
                vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR
            } else {
                vk::PipelineCreateFlags::empty()
            };
            let info = [vk::ComputePipelineCreateInfo::default().flags(flags).stage(stage).layout(layout)];
            let result = raw.create_compute_pipelines(self.cache, &info, None);
            raw.destroy_shader_module(module, None);
            match result {
                Ok(p) => {
                    if let Some(stats) = device.pipeline_stats() {
                        report_stats(stats, p[0], shader, spec);
                    }
                    Ok(Pipeline { raw: p[0], layout, set_layout, shader: *shader, spec: spec.to_vec() })
                }
                Err((_, r)) => {
                    raw.destroy_pipeline_layout(layout, None);
                    raw.destroy_descriptor_set_layout(set_layout, None);
                    Err(device.note(Error::vk("vkCreateComputePipelines", r)))
                }
            }
        }
    }

    /// Number of pipelines created so far.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no pipeline was created yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Destroy every pipeline and the cache (device teardown only).
    pub(crate) fn destroy(&self, device: &ash::Device) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: called from Device::drop after vkDeviceWaitIdle; no command buffer uses these any more.
        unsafe {
            for (_, p) in map.drain() {
                device.destroy_pipeline(p.raw, None);
                device.destroy_pipeline_layout(p.layout, None);
                device.destroy_descriptor_set_layout(p.set_layout, None);
            }
            device.destroy_pipeline_cache(self.cache, None);
        }
    }
}

/// One line per executable of a new pipeline with the driver's statistics of its compiled code
/// (`GGVK_PIPELINE_STATS=1`): `ggvk pipeline <shader> spec [..] <executable>: <name> = <value>, ...`. A query that
/// fails is reported instead; nothing here fails the pipeline.
fn report_stats(
    stats: &ash::khr::pipeline_executable_properties::Device,
    pipeline: vk::Pipeline,
    shader: &Shader,
    spec: &[u32],
) {
    let c_str = |s: Result<&std::ffi::CStr, std::ffi::FromBytesUntilNulError>| {
        s.map(|c| c.to_string_lossy().into_owned()).unwrap_or_default()
    };
    let info = vk::PipelineInfoKHR::default().pipeline(pipeline);
    // SAFETY: `pipeline` was just created on this device with CAPTURE_STATISTICS; the call only fills the vector.
    let executables = match unsafe { stats.get_pipeline_executable_properties(&info) } {
        Ok(e) => e,
        Err(r) => {
            crate::diag::emit(
                crate::diag::Level::Report,
                &format!("ggvk pipeline {}: no executables ({r})", shader.name),
            );
            return;
        }
    };
    for (index, exe) in executables.iter().enumerate() {
        let exe_info = vk::PipelineExecutableInfoKHR::default().pipeline(pipeline).executable_index(index as u32);
        // SAFETY: as above; `index` is below the count the driver returned.
        let values = match unsafe { stats.get_pipeline_executable_statistics(&exe_info) } {
            Ok(v) => v
                .iter()
                .map(|s| {
                    // SAFETY: the driver wrote the union member that `format` names.
                    let value = unsafe {
                        match s.format {
                            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => (s.value.b32 != 0).to_string(),
                            vk::PipelineExecutableStatisticFormatKHR::INT64 => s.value.i64.to_string(),
                            vk::PipelineExecutableStatisticFormatKHR::UINT64 => s.value.u64.to_string(),
                            vk::PipelineExecutableStatisticFormatKHR::FLOAT64 => format!("{:.3}", s.value.f64),
                            _ => String::from("?"),
                        }
                    };
                    format!("{} = {value}", c_str(s.name_as_c_str()))
                })
                .collect::<Vec<_>>()
                .join(", "),
            Err(r) => format!("statistics not available ({r})"),
        };
        crate::diag::emit(
            crate::diag::Level::Report,
            &format!("ggvk pipeline {} spec {:?} {}: {values}", shader.name, spec, c_str(exe.name_as_c_str())),
        );
    }
}
