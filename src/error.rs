//! The crate's error type. Every fallible path returns [`Result`]; the C boundary maps each variant to a
//! `ggvk_status` code and keeps the message for `ggvk_last_error()`.

use ash::vk;

/// What went wrong, with enough context for a user to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller passed something malformed: a NULL handle, a bad size, offset, shape, stride or type.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A byte range falls outside the buffer or tensor it names.
    #[error("out of bounds: {0}")]
    OutOfBounds(String),
    /// A well-formed request that this device or this build does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// No Vulkan loader, no device, or a device index past the end.
    #[error("no device: {0}")]
    NoDevice(String),
    /// Device memory ran out (allocation or a Vulkan call returned OUT_OF_DEVICE_MEMORY).
    #[error("out of device memory: {0}")]
    OutOfDeviceMemory(String),
    /// Host memory ran out.
    #[error("out of host memory: {0}")]
    OutOfHostMemory(String),
    /// The device was lost; the backend refuses further work and can only be freed.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// Any other Vulkan failure, with the call that returned it.
    #[error("vulkan error in {call}: {result}")]
    Vulkan {
        /// The Vulkan entry point (or step) that failed.
        call: &'static str,
        /// The `VkResult` it returned.
        result: vk::Result,
    },
    /// A bug in ggvk (including a caught panic).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Classify a `VkResult` from `call` into the matching variant.
    pub fn vk(call: &'static str, result: vk::Result) -> Self {
        match result {
            vk::Result::ERROR_OUT_OF_DEVICE_MEMORY => Error::OutOfDeviceMemory(format!("{call} returned {result}")),
            vk::Result::ERROR_OUT_OF_HOST_MEMORY => Error::OutOfHostMemory(format!("{call} returned {result}")),
            vk::Result::ERROR_DEVICE_LOST => Error::DeviceLost(format!("{call} returned {result}")),
            _ => Error::Vulkan { call, result },
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(msg.into())
    }
}

/// Extension to turn `Result<T, vk::Result>` into the crate's [`Result`], naming the call.
pub trait VkResultExt<T> {
    /// Attach the name of the Vulkan call that produced the error.
    fn vk_context(self, call: &'static str) -> Result<T>;
}

impl<T> VkResultExt<T> for std::result::Result<T, vk::Result> {
    fn vk_context(self, call: &'static str) -> Result<T> {
        self.map_err(|r| Error::vk(call, r))
    }
}
