//! Everything that calls Vulkan (through ash) lives here: instance and device, capabilities, memory,
//! pipelines, command recording. The rest of the crate is safe Rust over these types.
//!
//! Thread-safety: [`Instance`], [`Device`] and [`Buffer`] are `Send + Sync` (Vulkan objects that need external
//! synchronisation sit behind mutexes); [`CommandStream`] is `Send` but used by one thread at a time (its backend
//! wraps it in a mutex).

pub mod caps;
pub mod command;
pub mod coopmat2;
pub mod device;
/// Fault injection and live-resource counters (not part of the C API).
///
/// cbindgen:ignore
pub mod fault;
pub mod host_import;
pub mod instance;
pub mod kept;
pub mod memory;
pub mod pace;
pub mod pipeline;
pub mod readback;
pub mod transfer;
pub mod uploads;

pub use caps::Capabilities;
pub use command::{Binding, CommandStream, Derived, DispatchTime, Recorder, Recording};
pub use device::Device;
pub use instance::{validation_error_count, Instance, PhysicalDevice};
pub use kept::{KeptCopies, KeptKey};
pub use memory::{Buffer, HostBuffer};
pub use pipeline::{Pipeline, PipelineCache, Shader};
pub use readback::Readback;
