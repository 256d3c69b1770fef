//! Handoffs: a dispatch that passes its results to the dispatches after it through a flag in device memory
//! instead of a pipeline barrier.
//!
//! Between two dependent dispatches a barrier drains the GPU and launches the next kernel from idle: about 5 us on
//! an NVIDIA H200 whatever the kernels' sizes (NOTES.md, 2026-12-04), which is half of a generated token's time
//! with its ~300 dependent steps. A handoff replaces one such barrier: the producer's workgroups count themselves
//! in a slot of a small buffer of the command stream when done (the last one to arrive sets the slot's flag), and the
//! consumer, recorded without a barrier before it, starts at once and waits in the shader until the flag is set.
//! Its launch overlaps the producer.
//!
//! Ordering: the recorder lets a waiting dispatch skip its barrier only where its sole conflict since the last
//! barrier is the producer (see `Hazards` in [`super::command`]); the producer started after that barrier, so once
//! it is done everything before is too. Visibility: the producer's invocations fence their stores before the count
//! (`memoryBarrierBuffer`), the consumer fences after seeing the flag and reads the producer's output through
//! `coherent` declarations (`shaders/handoff.glsl`).
//!
//! Forward progress: a waiting workgroup only ever waits for workgroups of an earlier dispatch. Vulkan does not
//! promise that those run while later ones spin; GPUs that start dispatches in submission order (a later dispatch's
//! workgroups launch after all of an earlier one's have, as NVIDIA's do) keep it, and CPU implementations such as
//! lavapipe run one dispatch to its end before the next. Handoffs are on by default only on CPU devices, where the
//! test suites run them; on GPUs `GGVK_HANDOFF=1` turns them on (not yet measured or run on one), `=0` off
//! everywhere. A wait also gives up after 2^22 polls (`HANDOFF_MAX_SPINS`, about a second), so a broken
//! assumption costs wrong values of one graph, never a hung queue.
//!
//! The slots are zeroed by a fill recorded after a submission's last dispatch (every submission opens with a barrier
//! that orders it before its kernels, so the stream's submissions and recordings share one buffer), and once when
//! the buffer is made.

use super::caps::Capabilities;

/// Bytes of the handoff buffer a slot takes at least (its words: workgroups done, flag).
const SLOT_MIN_BYTES: u64 = 16;

/// Slots per submission; producers beyond them keep their barriers.
pub(crate) const SLOTS: u64 = 1024;

/// Whether a device with `caps` (the Vulkan memory model enabled at creation or not) takes handoffs: device-scope
/// atomics must be allowed (with the memory model on, its `vulkanMemoryModelDeviceScope` too), and the device is a
/// CPU one or `GGVK_HANDOFF=1` asks for them (see the module docs).
pub(crate) fn usable(caps: &Capabilities, memory_model: bool) -> bool {
    let by_default = caps.device_type == ash::vk::PhysicalDeviceType::CPU;
    let atomics = !memory_model || caps.memory_model_device_scope;
    atomics && crate::knobs::switch("GGVK_HANDOFF", by_default)
}

/// Bytes between slots: descriptor offsets must be multiples of `minStorageBufferOffsetAlignment`.
pub(crate) fn slot_stride(caps: &Capabilities) -> u64 {
    caps.min_storage_offset_alignment.max(SLOT_MIN_BYTES)
}

/// Bytes of a submission's handoff buffer.
pub(crate) fn buffer_bytes(caps: &Capabilities) -> u64 {
    SLOTS * slot_stride(caps)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shader_gives_up_after_as_many_polls_as_the_host_says() {
        let glsl = include_str!("../../shaders/handoff.glsl");
        assert!(glsl.contains(&format!("#define HANDOFF_MAX_SPINS {}u", 1u32 << 22)), "the module docs say 2^22");
    }
}
