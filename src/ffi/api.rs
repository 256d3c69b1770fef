//! The exported functions. Each one: NULL checks, conversion of C values into checked Rust values, the
//! engine call, and a status (with the message kept for `ggvk_last_error`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::node::{self, ggvk_node_desc, ggvk_op};
use super::{ggvk_status, guard, guard_void, last_error_ptr};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::{Graph, Tensor};
use crate::quant::{self, GgmlType};
use crate::vk::{Buffer, Instance};

// Tensor types: ggml's `ggml_type` numbers, every one ggvk knows. "Weight" types are the ones MUL_MAT and
// MUL_MAT_ID take as src[0] (`ggvk_graph_node`, `ggvk_graph_mul_mat`); a row of a blocked type holds whole blocks.
// `ggvk_quantize` / `ggvk_dequantize` are bit-exact with ggml for F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
// IQ4_NL, Q1_0, Q2_0 and NVFP4; the K-quants, the other IQ types, TQ1_0/TQ2_0 and MXFP4 are dequantize only (MXFP4
// weight rows: a multiple of 64 values, a pair of its 17-byte blocks).

/// `ggml_type` F32 (4 bytes). Weight type.
pub const GGVK_TYPE_F32: i32 = 0;
/// `ggml_type` F16 (IEEE half, 2 bytes). Weight type.
pub const GGVK_TYPE_F16: i32 = 1;
/// `ggml_type` Q4_0 (blocks of 32, 18 bytes: f16 scale, 4-bit values). Weight type.
pub const GGVK_TYPE_Q4_0: i32 = 2;
/// `ggml_type` Q4_1 (blocks of 32, 20 bytes: f16 scale and minimum, 4-bit values). Weight type.
pub const GGVK_TYPE_Q4_1: i32 = 3;
/// `ggml_type` Q5_0 (blocks of 32, 22 bytes). Weight type.
pub const GGVK_TYPE_Q5_0: i32 = 6;
/// `ggml_type` Q5_1 (blocks of 32, 24 bytes). Weight type.
pub const GGVK_TYPE_Q5_1: i32 = 7;
/// `ggml_type` Q8_0 (blocks of 32, 34 bytes: f16 scale, 8-bit values). Weight type.
pub const GGVK_TYPE_Q8_0: i32 = 8;
/// `ggml_type` Q2_K (super-blocks of 256, 84 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_Q2_K: i32 = 10;
/// `ggml_type` Q3_K (super-blocks of 256, 110 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_Q3_K: i32 = 11;
/// `ggml_type` Q4_K (super-blocks of 256, 144 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_Q4_K: i32 = 12;
/// `ggml_type` Q5_K (super-blocks of 256, 176 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_Q5_K: i32 = 13;
/// `ggml_type` Q6_K (super-blocks of 256, 210 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_Q6_K: i32 = 14;
/// `ggml_type` IQ2_XXS (super-blocks of 256, 66 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ2_XXS: i32 = 16;
/// `ggml_type` IQ2_XS (super-blocks of 256, 74 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ2_XS: i32 = 17;
/// `ggml_type` IQ3_XXS (super-blocks of 256, 98 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ3_XXS: i32 = 18;
/// `ggml_type` IQ1_S (super-blocks of 256, 50 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ1_S: i32 = 19;
/// `ggml_type` IQ4_NL (blocks of 32, 18 bytes: f16 scale, 4-bit indices into a fixed table). Weight type.
pub const GGVK_TYPE_IQ4_NL: i32 = 20;
/// `ggml_type` IQ3_S (super-blocks of 256, 110 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ3_S: i32 = 21;
/// `ggml_type` IQ2_S (super-blocks of 256, 82 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ2_S: i32 = 22;
/// `ggml_type` IQ4_XS (super-blocks of 256, 136 bytes: IQ4_NL's table with 6-bit scales per 32 values). Weight type
/// (dequantize only).
pub const GGVK_TYPE_IQ4_XS: i32 = 23;
/// `ggml_type` I8 (8-bit integers, moved as bits: CONCAT, REPEAT, DIAG, on devices with 8-bit storage).
pub const GGVK_TYPE_I8: i32 = 24;
/// `ggml_type` I16 (16-bit integers, moved as bits: CONCAT, REPEAT, DIAG, CPY to I16).
pub const GGVK_TYPE_I16: i32 = 25;
/// `ggml_type` I32 (indices, positions, argsort/argmax results).
pub const GGVK_TYPE_I32: i32 = 26;
/// `ggml_type` I64 (SET_ROWS indices).
pub const GGVK_TYPE_I64: i32 = 27;
/// `ggml_type` IQ1_M (super-blocks of 256, 56 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_IQ1_M: i32 = 29;
/// `ggml_type` BF16 (bfloat16, 2 bytes). Weight type (rows of a multiple of 4 values).
pub const GGVK_TYPE_BF16: i32 = 30;
/// `ggml_type` TQ1_0 (ternary, super-blocks of 256, 54 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_TQ1_0: i32 = 34;
/// `ggml_type` TQ2_0 (ternary, super-blocks of 256, 66 bytes). Weight type (dequantize only).
pub const GGVK_TYPE_TQ2_0: i32 = 35;
/// `ggml_type` MXFP4 (blocks of 32, 17 bytes: E8M0 scale, 4-bit E2M1 values). Weight type (dequantize only; rows of
/// a multiple of 64 values).
pub const GGVK_TYPE_MXFP4: i32 = 39;
/// `ggml_type` NVFP4 (blocks of 64, 36 bytes: four UE4M3 scales, one per 16 values, 4-bit E2M1 values). Weight type.
pub const GGVK_TYPE_NVFP4: i32 = 40;
/// `ggml_type` Q1_0 (blocks of 128, 18 bytes: f16 magnitude, one sign bit per value). Weight type.
pub const GGVK_TYPE_Q1_0: i32 = 41;
/// `ggml_type` Q2_0 (blocks of 64, 18 bytes: f16 scale, 2-bit codes for -d, 0, d, 2d). Weight type.
pub const GGVK_TYPE_Q2_0: i32 = 42;

// Each GGVK_TYPE_* is the engine's number for that type, and every type the engine knows has one.
const _: () = {
    let c = [
        (GGVK_TYPE_F32, GgmlType::F32),
        (GGVK_TYPE_F16, GgmlType::F16),
        (GGVK_TYPE_Q4_0, GgmlType::Q4_0),
        (GGVK_TYPE_Q4_1, GgmlType::Q4_1),
        (GGVK_TYPE_Q5_0, GgmlType::Q5_0),
        (GGVK_TYPE_Q5_1, GgmlType::Q5_1),
        (GGVK_TYPE_Q8_0, GgmlType::Q8_0),
        (GGVK_TYPE_Q2_K, GgmlType::Q2_K),
        (GGVK_TYPE_Q3_K, GgmlType::Q3_K),
        (GGVK_TYPE_Q4_K, GgmlType::Q4_K),
        (GGVK_TYPE_Q5_K, GgmlType::Q5_K),
        (GGVK_TYPE_Q6_K, GgmlType::Q6_K),
        (GGVK_TYPE_IQ2_XXS, GgmlType::IQ2_XXS),
        (GGVK_TYPE_IQ2_XS, GgmlType::IQ2_XS),
        (GGVK_TYPE_IQ3_XXS, GgmlType::IQ3_XXS),
        (GGVK_TYPE_IQ1_S, GgmlType::IQ1_S),
        (GGVK_TYPE_IQ4_NL, GgmlType::IQ4_NL),
        (GGVK_TYPE_IQ3_S, GgmlType::IQ3_S),
        (GGVK_TYPE_IQ2_S, GgmlType::IQ2_S),
        (GGVK_TYPE_IQ4_XS, GgmlType::IQ4_XS),
        (GGVK_TYPE_I8, GgmlType::I8),
        (GGVK_TYPE_I16, GgmlType::I16),
        (GGVK_TYPE_I32, GgmlType::I32),
        (GGVK_TYPE_I64, GgmlType::I64),
        (GGVK_TYPE_IQ1_M, GgmlType::IQ1_M),
        (GGVK_TYPE_BF16, GgmlType::BF16),
        (GGVK_TYPE_TQ1_0, GgmlType::TQ1_0),
        (GGVK_TYPE_TQ2_0, GgmlType::TQ2_0),
        (GGVK_TYPE_MXFP4, GgmlType::MXFP4),
        (GGVK_TYPE_NVFP4, GgmlType::NVFP4),
        (GGVK_TYPE_Q1_0, GgmlType::Q1_0),
        (GGVK_TYPE_Q2_0, GgmlType::Q2_0),
    ];
    assert!(c.len() == GgmlType::ALL.len());
    let mut i = 0;
    while i < c.len() {
        assert!(c[i].0 == c[i].1 as i32 && c[i].1 as i32 == GgmlType::ALL[i] as i32);
        i += 1;
    }
};

/// Device type: other.
pub const GGVK_DEVICE_TYPE_OTHER: i32 = 0;
/// Device type: integrated GPU.
pub const GGVK_DEVICE_TYPE_INTEGRATED_GPU: i32 = 1;
/// Device type: discrete GPU.
pub const GGVK_DEVICE_TYPE_DISCRETE_GPU: i32 = 2;
/// Device type: virtual GPU.
pub const GGVK_DEVICE_TYPE_VIRTUAL_GPU: i32 = 3;
/// Device type: CPU (e.g. Mesa lavapipe).
pub const GGVK_DEVICE_TYPE_CPU: i32 = 4;

/// Pass as the device index to `ggvk_init` to pick the default device.
pub const GGVK_DEFAULT_DEVICE: u32 = u32::MAX;

/// Rope mode: adjacent pairs.
pub const GGVK_ROPE_MODE_NORMAL: i32 = 0;
/// Rope mode: NeoX (halves).
pub const GGVK_ROPE_MODE_NEOX: i32 = 2;

/// A backend: a command stream on one device. Create with `ggvk_init`, free with `ggvk_free`.
pub struct ggvk_backend {
    inner: Backend,
}

/// A device buffer. Create with `ggvk_buffer_alloc`, free with `ggvk_buffer_free`.
pub struct ggvk_buffer {
    inner: Arc<Buffer>,
}

/// A list of nodes, run in the order they were appended (a node reading bytes an earlier one writes waits for
/// it). Create with `ggvk_graph_new`, append with `ggvk_graph_node` (or `ggvk_graph_mul_mat` /
/// `ggvk_graph_rope`), run with `ggvk_graph_compute`, free with `ggvk_graph_free`.
///
/// Ownership and reuse: a node copies the `ggvk_tensor` descriptions it is given (the structs may be reused or
/// freed after the call) and holds a reference to each buffer they name, so `ggvk_buffer_free` may be called while
/// a graph uses the buffer: the handle goes, the memory stays until the graph is freed (and until submitted work
/// using it has finished). A graph can be computed any number of times, on any backend of the device its buffers
/// belong to (another device's backend: `GGVK_STATUS_INVALID_ARGUMENT`); each compute reads the buffers' bytes
/// as they are then. Nodes can be appended after a compute. Freeing a graph right after
/// `ggvk_graph_compute_async` is fine (the submitted work keeps what it needs). A graph is plain host data: don't
/// append to one graph from two threads at once.
pub struct ggvk_graph {
    inner: Graph,
}

/// What a device is and can do.
#[repr(C)]
pub struct ggvk_device_info {
    /// NUL-terminated driver name.
    pub name: [c_char; 256],
    /// PCI vendor id.
    pub vendor_id: u32,
    /// PCI device id.
    pub device_id: u32,
    /// `GGVK_DEVICE_TYPE_*`.
    pub device_type: i32,
    /// Vulkan API version (VK_MAKE_API_VERSION encoding).
    pub api_version: u32,
    /// Default subgroup size.
    pub subgroup_size: u32,
    /// shaderFloat16.
    pub fp16: bool,
    /// shaderInt8.
    pub int8: bool,
    /// storageBuffer16BitAccess.
    pub storage_16bit: bool,
    /// storageBuffer8BitAccess.
    pub storage_8bit: bool,
    /// Subgroup arithmetic in compute shaders.
    pub subgroup_arithmetic: bool,
    /// Integer dot product.
    pub integer_dot_product: bool,
    /// VK_KHR_cooperative_matrix.
    pub coopmat_khr: bool,
    /// VK_NV_cooperative_matrix2.
    pub coopmat2_nv: bool,
    /// maxStorageBufferRange in bytes.
    pub max_storage_buffer_range: u64,
    /// maxMemoryAllocationSize in bytes.
    pub max_memory_allocation_size: u64,
    /// maxComputeSharedMemorySize in bytes.
    pub max_shared_memory: u64,
    /// Sum of DEVICE_LOCAL heaps in bytes.
    pub device_local_bytes: u64,
    /// DEVICE_LOCAL budget (VK_EXT_memory_budget where present, else heap sizes).
    pub device_local_budget: u64,
    /// Whether ggvk can run on this device.
    pub usable: bool,
}

/// A view of bytes in a ggvk buffer, laid out as ggml lays out tensors: `ne[i]` elements along dim `i`
/// (dim 0 innermost; for quantized types a row of `ne[0]` elements is `ne[0]/32` blocks), `nb[i]` bytes between
/// neighbours along dim `i` (`nb[0]` = bytes of one element or block).
#[repr(C)]
pub struct ggvk_tensor {
    /// `GGVK_TYPE_*`.
    pub r#type: i32,
    /// Elements per dimension.
    pub ne: [i64; 4],
    /// Byte strides per dimension.
    pub nb: [usize; 4],
    /// The buffer holding the bytes.
    pub buffer: *mut ggvk_buffer,
    /// Byte offset of element `[0,0,0,0]` in the buffer.
    pub offset: usize,
}

/// Parameters of ggml_rope_ext (`ggvk_graph_rope`, `params.rope` of `ggvk_graph_node`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ggvk_rope_params {
    /// Rotated dims of each row (even, <= `ne[0]`).
    pub n_dims: i32,
    /// `GGVK_ROPE_MODE_NORMAL` or `GGVK_ROPE_MODE_NEOX`.
    pub mode: i32,
    /// Training context length (YaRN).
    pub n_ctx_orig: i32,
    /// Frequency base.
    pub freq_base: f32,
    /// Position interpolation factor.
    pub freq_scale: f32,
    /// YaRN extrapolation mix (0 disables YaRN).
    pub ext_factor: f32,
    /// Magnitude scale.
    pub attn_factor: f32,
    /// YaRN beta_fast.
    pub beta_fast: f32,
    /// YaRN beta_slow.
    pub beta_slow: f32,
}

// ---- pointer helpers (the only place raw pointers become references) ----

pub(crate) fn out_ref<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: the C caller promises a non-NULL `p` points to a writable T; NULL is rejected here.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

pub(crate) fn in_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: the C caller promises a non-NULL `p` points to a live T; NULL is rejected here.
    unsafe { p.as_ref() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

fn in_bytes<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL but size is {len}")));
    }
    // SAFETY: the caller promises `p` points to `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

fn out_bytes<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL but size is {len}")));
    }
    // SAFETY: the caller promises `p` points to `len` writable bytes not aliased elsewhere during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

fn ty_of(raw: i32) -> Result<GgmlType> {
    GgmlType::from_raw(raw).ok_or_else(|| Error::invalid(format!("unknown tensor type {raw}")))
}

fn n_usize(n: i64, what: &str) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::invalid(format!("{what} = {n} is negative")))
}

/// Turn a C tensor description into a checked engine tensor.
pub(crate) fn tensor(t: *const ggvk_tensor, what: &str) -> Result<Tensor> {
    let t = in_ref(t, what)?;
    let ty = ty_of(t.r#type)?;
    let buf = in_ref(t.buffer.cast_const(), &format!("{what}->buffer"))?;
    let nb = t.nb.map(|x| x as u64);
    Tensor::new(buf.inner.clone(), t.offset as u64, ty, t.ne, nb)
}

pub(crate) fn tensor_opt(t: *const ggvk_tensor, what: &str) -> Result<Option<Tensor>> {
    if t.is_null() {
        Ok(None)
    } else {
        tensor(t, what).map(Some)
    }
}

// ---- version ----

/// Major version of the ggvk this header belongs to (the `N` of the soname `libggvk.so.N`).
pub const GGVK_VERSION_MAJOR: u32 = 0;
/// Minor version of the ggvk this header belongs to.
pub const GGVK_VERSION_MINOR: u32 = 1;
/// Patch version of the ggvk this header belongs to.
pub const GGVK_VERSION_PATCH: u32 = 0;

/// The decimal number `s` (a version component of Cargo.toml), at compile time.
const fn decimal(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version component is not a decimal number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's version macros are literals (cbindgen copies them); they must be Cargo.toml's version.
const _: () = assert!(GGVK_VERSION_MAJOR == decimal(env!("CARGO_PKG_VERSION_MAJOR")));
const _: () = assert!(GGVK_VERSION_MINOR == decimal(env!("CARGO_PKG_VERSION_MINOR")));
const _: () = assert!(GGVK_VERSION_PATCH == decimal(env!("CARGO_PKG_VERSION_PATCH")));

/// The library's version as a static, NUL-terminated string "MAJOR.MINOR.PATCH" (e.g. "0.1.0"): the version of
/// the `libggvk.so` loaded at run time, where `GGVK_VERSION_*` are those of the header compiled against. Never
/// NULL; the pointer stays valid for the life of the process.
#[no_mangle]
pub extern "C" fn ggvk_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(
            env!("CARGO_PKG_VERSION_MAJOR"),
            ".",
            env!("CARGO_PKG_VERSION_MINOR"),
            ".",
            env!("CARGO_PKG_VERSION_PATCH"),
            "\0"
        )
        .as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => panic!("the version has no interior NUL"),
    };
    VERSION.as_ptr()
}

// ---- errors ----

/// This thread's last error message ("" if none yet). Valid until the next failing ggvk call on this thread.
#[no_mangle]
pub extern "C" fn ggvk_last_error() -> *const c_char {
    last_error_ptr()
}

/// A static, NUL-terminated name for `status` (unknown codes get "GGVK_STATUS_UNKNOWN").
#[no_mangle]
pub extern "C" fn ggvk_status_string(status: i32) -> *const c_char {
    let s: &'static std::ffi::CStr = match status {
        0 => c"GGVK_STATUS_OK",
        1 => c"GGVK_STATUS_INVALID_ARGUMENT",
        2 => c"GGVK_STATUS_OUT_OF_BOUNDS",
        3 => c"GGVK_STATUS_UNSUPPORTED",
        4 => c"GGVK_STATUS_NO_DEVICE",
        5 => c"GGVK_STATUS_OUT_OF_DEVICE_MEMORY",
        6 => c"GGVK_STATUS_OUT_OF_HOST_MEMORY",
        7 => c"GGVK_STATUS_DEVICE_LOST",
        8 => c"GGVK_STATUS_VULKAN_ERROR",
        9 => c"GGVK_STATUS_INTERNAL_ERROR",
        _ => c"GGVK_STATUS_UNKNOWN",
    };
    s.as_ptr()
}

/// Number of Vulkan validation/driver messages of ERROR severity seen so far by this process.
#[no_mangle]
pub extern "C" fn ggvk_validation_error_count() -> u64 {
    crate::vk::validation_error_count()
}

// ---- devices ----

/// Number of Vulkan physical devices (usable or not).
#[no_mangle]
pub extern "C" fn ggvk_device_count(out_count: *mut u32) -> ggvk_status {
    guard("ggvk_device_count", || {
        let out = out_ref(out_count, "out_count")?;
        *out = Instance::global()?.physical_devices().len() as u32;
        Ok(())
    })
}

/// Describe device `index`.
#[no_mangle]
pub extern "C" fn ggvk_device_get_info(index: u32, out: *mut ggvk_device_info) -> ggvk_status {
    guard("ggvk_device_get_info", || {
        let out = out_ref(out, "out")?;
        let inst = Instance::global()?;
        let pd = inst.physical_devices().get(index as usize).ok_or_else(|| {
            Error::NoDevice(format!(
                "device index {index} is out of range: {} device(s)",
                inst.physical_devices().len()
            ))
        })?;
        let c = &pd.caps;
        let mut name = [0 as c_char; 256];
        for (d, s) in name.iter_mut().zip(c.name.bytes().take(255)) {
            *d = s as c_char;
        }
        let device_type = match c.device_type {
            ash::vk::PhysicalDeviceType::INTEGRATED_GPU => GGVK_DEVICE_TYPE_INTEGRATED_GPU,
            ash::vk::PhysicalDeviceType::DISCRETE_GPU => GGVK_DEVICE_TYPE_DISCRETE_GPU,
            ash::vk::PhysicalDeviceType::VIRTUAL_GPU => GGVK_DEVICE_TYPE_VIRTUAL_GPU,
            ash::vk::PhysicalDeviceType::CPU => GGVK_DEVICE_TYPE_CPU,
            _ => GGVK_DEVICE_TYPE_OTHER,
        };
        *out = ggvk_device_info {
            name,
            vendor_id: c.vendor_id,
            device_id: c.device_id,
            device_type,
            api_version: c.api_version,
            subgroup_size: c.subgroup_size,
            fp16: c.fp16,
            int8: c.int8,
            storage_16bit: c.storage_16bit,
            storage_8bit: c.storage_8bit,
            subgroup_arithmetic: c.subgroup_arithmetic,
            integer_dot_product: c.integer_dot_product,
            coopmat_khr: c.coopmat_khr,
            coopmat2_nv: c.coopmat2_nv,
            max_storage_buffer_range: c.max_storage_buffer_range,
            max_memory_allocation_size: c.max_memory_allocation_size,
            max_shared_memory: u64::from(c.max_shared_memory),
            device_local_bytes: c.device_local_bytes(),
            device_local_budget: inst.memory_budget(pd.handle, c).1,
            usable: c.usable(),
        };
        Ok(())
    })
}

/// Index of the default device: discrete > integrated > virtual > CPU.
#[no_mangle]
pub extern "C" fn ggvk_default_device(out_index: *mut u32) -> ggvk_status {
    guard("ggvk_default_device", || {
        let out = out_ref(out_index, "out_index")?;
        let inst = Instance::global()?;
        *out = inst.default_device_index().ok_or_else(|| Error::NoDevice("no usable Vulkan device".into()))? as u32;
        Ok(())
    })
}

/// Create a backend on `device_index` (`GGVK_DEFAULT_DEVICE` for the default). Free with `ggvk_free`.
#[no_mangle]
pub extern "C" fn ggvk_init(device_index: u32, out: *mut *mut ggvk_backend) -> ggvk_status {
    guard("ggvk_init", || {
        let out = out_ref(out, "out")?;
        *out = std::ptr::null_mut();
        let index = (device_index != GGVK_DEFAULT_DEVICE).then_some(device_index as usize);
        let backend = Backend::new(index)?;
        *out = Box::into_raw(Box::new(ggvk_backend { inner: backend }));
        Ok(())
    })
}

/// Free a backend (waits for its work). NULL is a no-op.
///
/// # Safety
/// `backend` is NULL or a handle from this library not yet freed; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn ggvk_free(backend: *mut ggvk_backend) {
    if backend.is_null() {
        return;
    }
    guard_void(|| {
        // SAFETY: `backend` came from `ggvk_init` (Box::into_raw) and the caller frees it once.
        drop(unsafe { Box::from_raw(backend) });
    })
}

/// Wait for everything submitted on `backend`, and complete its `ggvk_buffer_get_async` reads.
#[no_mangle]
pub extern "C" fn ggvk_synchronize(backend: *mut ggvk_backend) -> ggvk_status {
    guard("ggvk_synchronize", || in_ref(backend.cast_const(), "backend")?.inner.synchronize())
}

// ---- buffers ----

/// Allocate `size` bytes of device memory.
#[no_mangle]
pub extern "C" fn ggvk_buffer_alloc(
    backend: *mut ggvk_backend,
    size: usize,
    out: *mut *mut ggvk_buffer,
) -> ggvk_status {
    guard("ggvk_buffer_alloc", || {
        let out = out_ref(out, "out")?;
        *out = std::ptr::null_mut();
        let b = in_ref(backend.cast_const(), "backend")?;
        let buf = b.inner.alloc(size as u64)?;
        *out = Box::into_raw(Box::new(ggvk_buffer { inner: buf }));
        Ok(())
    })
}

/// Free a buffer handle. Graphs that use the buffer keep its memory alive until they are freed, and submitted
/// work until it finishes (see `ggvk_graph`); `ggvk_tensor` structs naming the handle must not be used after this.
/// NULL is a no-op.
///
/// # Safety
/// `buffer` is NULL or a handle from this library not yet freed; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn ggvk_buffer_free(buffer: *mut ggvk_buffer) {
    if buffer.is_null() {
        return;
    }
    guard_void(|| {
        // SAFETY: `buffer` came from `ggvk_buffer_alloc` (Box::into_raw) and the caller frees it once.
        drop(unsafe { Box::from_raw(buffer) });
    })
}

/// Size of a buffer in bytes.
#[no_mangle]
pub extern "C" fn ggvk_buffer_size(buffer: *const ggvk_buffer, out_size: *mut usize) -> ggvk_status {
    guard("ggvk_buffer_size", || {
        let out = out_ref(out_size, "out_size")?;
        *out = in_ref(buffer, "buffer")?.inner.size() as usize;
        Ok(())
    })
}

/// Copy `size` bytes from host `data` to `buffer` at `offset` (synchronous).
#[no_mangle]
pub extern "C" fn ggvk_buffer_set(
    buffer: *mut ggvk_buffer,
    offset: usize,
    data: *const c_void,
    size: usize,
) -> ggvk_status {
    guard("ggvk_buffer_set", || {
        let b = in_ref(buffer.cast_const(), "buffer")?;
        let src = in_bytes(data, size, "data")?;
        b.inner.write(offset as u64, src)
    })
}

/// Copy `size` bytes at `offset` of `buffer` to host `data` (synchronous).
#[no_mangle]
pub extern "C" fn ggvk_buffer_get(
    buffer: *mut ggvk_buffer,
    offset: usize,
    data: *mut c_void,
    size: usize,
) -> ggvk_status {
    guard("ggvk_buffer_get", || {
        let b = in_ref(buffer.cast_const(), "buffer")?;
        let dst = out_bytes(data, size, "data")?;
        b.inner.read(offset as u64, dst)
    })
}

/// Start copying `size` bytes at `offset` of `buffer` to host `data`, ordered after everything submitted to the
/// buffer's device so far (a graph computed with `ggvk_graph_compute_async` included): the bytes are in `data`
/// once `ggvk_synchronize(backend)` returns successfully. `data` must stay valid and untouched until then; a
/// backend freed before that leaves it unwritten. Range errors are reported here. Where a read cannot be queued
/// (buffers the host reads through a mapping, reads over 32 MiB, `GGVK_ASYNC_READS=0`) this waits for `backend`
/// and copies at once.
#[no_mangle]
pub extern "C" fn ggvk_buffer_get_async(
    backend: *mut ggvk_backend,
    buffer: *mut ggvk_buffer,
    offset: usize,
    data: *mut c_void,
    size: usize,
) -> ggvk_status {
    guard("ggvk_buffer_get_async", || {
        let be = in_ref(backend.cast_const(), "backend")?;
        let b = in_ref(buffer.cast_const(), "buffer")?;
        let dst = out_bytes(data, size, "data")?;
        b.inner.check_range(offset as u64, size as u64)?;
        if size == 0 {
            return Ok(());
        }
        let later = super::HostDst::new(data.cast::<u8>(), size);
        if be.inner.read_async(&b.inner, offset as u64, size as u64, Box::new(move |bytes| later.put(bytes)))? {
            return Ok(());
        }
        be.inner.synchronize()?;
        b.inner.read(offset as u64, dst)
    })
}

/// Set `size` bytes at `offset` to `value` (synchronous).
#[no_mangle]
pub extern "C" fn ggvk_buffer_memset(buffer: *mut ggvk_buffer, offset: usize, value: u8, size: usize) -> ggvk_status {
    guard("ggvk_buffer_memset", || in_ref(buffer.cast_const(), "buffer")?.inner.fill(offset as u64, size as u64, value))
}

/// Copy `size` bytes between two buffers of one device (synchronous; ranges must not overlap).
#[no_mangle]
pub extern "C" fn ggvk_buffer_copy(
    src: *mut ggvk_buffer,
    src_offset: usize,
    dst: *mut ggvk_buffer,
    dst_offset: usize,
    size: usize,
) -> ggvk_status {
    guard("ggvk_buffer_copy", || {
        let s = in_ref(src.cast_const(), "src")?;
        let d = in_ref(dst.cast_const(), "dst")?;
        s.inner.copy_to(src_offset as u64, &d.inner, dst_offset as u64, size as u64)
    })
}

// ---- tensors and types ----

/// Fill `*t` as a contiguous tensor of `type` and shape `ne[4]` at `buffer + offset`, and check it fits.
#[no_mangle]
pub extern "C" fn ggvk_tensor_init(
    t: *mut ggvk_tensor,
    r#type: i32,
    ne: *const i64,
    buffer: *mut ggvk_buffer,
    offset: usize,
) -> ggvk_status {
    guard("ggvk_tensor_init", || {
        let out = out_ref(t, "t")?;
        // SAFETY: `ne` points to 4 int64_t per the API contract; NULL is rejected by in_ref.
        let ne: [i64; 4] = *in_ref(ne.cast::<[i64; 4]>(), "ne")?;
        let ty = ty_of(r#type)?;
        let buf = in_ref(buffer.cast_const(), "buffer")?;
        let tensor = Tensor::contiguous(buf.inner.clone(), offset as u64, ty, ne)?;
        *out = ggvk_tensor { r#type, ne, nb: tensor.nb.map(|x| x as usize), buffer, offset };
        Ok(())
    })
}

/// Bytes spanned by a tensor (ggml_nbytes).
#[no_mangle]
pub extern "C" fn ggvk_tensor_nbytes(t: *const ggvk_tensor, out: *mut usize) -> ggvk_status {
    guard("ggvk_tensor_nbytes", || {
        let out = out_ref(out, "out")?;
        *out = tensor(t, "t")?.nbytes() as usize;
        Ok(())
    })
}

/// Copy `size` host bytes into the tensor's bytes starting `offset` bytes in (synchronous).
#[no_mangle]
pub extern "C" fn ggvk_tensor_set(
    t: *const ggvk_tensor,
    data: *const c_void,
    offset: usize,
    size: usize,
) -> ggvk_status {
    guard("ggvk_tensor_set", || tensor(t, "t")?.write(offset as u64, in_bytes(data, size, "data")?))
}

/// Copy `size` bytes of the tensor starting `offset` bytes in to host `data` (synchronous).
#[no_mangle]
pub extern "C" fn ggvk_tensor_get(t: *const ggvk_tensor, data: *mut c_void, offset: usize, size: usize) -> ggvk_status {
    guard("ggvk_tensor_get", || tensor(t, "t")?.read(offset as u64, out_bytes(data, size, "data")?))
}

/// Bytes per block and elements per block of `type`.
#[no_mangle]
pub extern "C" fn ggvk_type_info(r#type: i32, out_block_bytes: *mut usize, out_block_elems: *mut i64) -> ggvk_status {
    guard("ggvk_type_info", || {
        let ty = ty_of(r#type)?;
        *out_ref(out_block_bytes, "out_block_bytes")? = ty.type_size();
        *out_ref(out_block_elems, "out_block_elems")? = ty.block_size() as i64;
        Ok(())
    })
}

/// Bytes of a row of `n` elements of `type` (`n` a multiple of the block size).
#[no_mangle]
pub extern "C" fn ggvk_row_size(r#type: i32, n: i64, out_bytes: *mut usize) -> ggvk_status {
    guard("ggvk_row_size", || {
        let out = out_ref(out_bytes, "out_bytes")?;
        *out = ty_of(r#type)?.row_size(n)?;
        Ok(())
    })
}

/// CPU reference quantization, bit-exact with ggml: `n` floats to `ggvk_row_size(type, n)` bytes.
#[no_mangle]
pub extern "C" fn ggvk_quantize(r#type: i32, src: *const f32, dst: *mut c_void, n: i64) -> ggvk_status {
    guard("ggvk_quantize", || {
        let ty = ty_of(r#type)?;
        let n = n_usize(n, "n")?;
        let bytes = ty.row_size(n as i64)?;
        let s = in_bytes(src.cast(), n.checked_mul(4).ok_or_else(|| Error::invalid("n overflows"))?, "src")?;
        let floats: Vec<f32> = s.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
        quant::quantize(ty, &floats, out_bytes(dst, bytes, "dst")?)
    })
}

/// CPU reference dequantization, bit-exact with ggml: `ggvk_row_size(type, n)` bytes to `n` floats.
#[no_mangle]
pub extern "C" fn ggvk_dequantize(r#type: i32, src: *const c_void, dst: *mut f32, n: i64) -> ggvk_status {
    guard("ggvk_dequantize", || {
        let ty = ty_of(r#type)?;
        let n = n_usize(n, "n")?;
        let bytes = ty.row_size(n as i64)?;
        let s = in_bytes(src, bytes, "src")?;
        let mut floats = vec![0f32; n];
        quant::dequantize(ty, s, &mut floats)?;
        let d = out_bytes(dst.cast(), n * 4, "dst")?;
        for (o, f) in d.chunks_exact_mut(4).zip(&floats) {
            o.copy_from_slice(&f.to_ne_bytes());
        }
        Ok(())
    })
}

// ---- graphs ----

/// Create an empty graph.
#[no_mangle]
pub extern "C" fn ggvk_graph_new(out: *mut *mut ggvk_graph) -> ggvk_status {
    guard("ggvk_graph_new", || {
        let out = out_ref(out, "out")?;
        *out = Box::into_raw(Box::new(ggvk_graph { inner: Graph::new() }));
        Ok(())
    })
}

/// Free a graph. NULL is a no-op.
///
/// # Safety
/// `graph` is NULL or a handle from this library not yet freed; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn ggvk_graph_free(graph: *mut ggvk_graph) {
    if graph.is_null() {
        return;
    }
    guard_void(|| {
        // SAFETY: `graph` came from `ggvk_graph_new` (Box::into_raw) and the caller frees it once.
        drop(unsafe { Box::from_raw(graph) });
    })
}

/// The engine graph behind a C handle.
pub(crate) fn graph_mut<'a>(graph: *mut ggvk_graph) -> Result<&'a mut Graph> {
    Ok(&mut out_ref(graph, "graph")?.inner)
}

/// Append `dst = a x b^T` (ggml_mul_mat): `ggvk_graph_node` with `GGVK_OP_MUL_MAT`, `src[0] = a`, `src[1] = b`.
/// a `[K, M, a2, a3]` of any weight type (`GGVK_TYPE_*` marked "Weight type"), b `[K, N, b2, b3]` F32, dst
/// `[M, N, b2, b3]` F32, with `b2 % a2 == 0` and `b3 % a3 == 0` (broadcast).
///
/// Accuracy of mat-vec results (N <= 8 columns): with `w` the weights' exact values (what `ggvk_dequantize`
/// gives) and `x'` the activations b after the rounding listed below, each dst element `y` satisfies
/// `|y - sum_k w_k x'_k| <= (K + 2) * 2^-24 * sum_k |w_k x'_k|` (f32 products and sums; in practice far below;
/// a device that flushes f32 subnormals to zero may add up to `K * 2^-126`).
/// The rounding of b follows ggml's CPU backend (its `vec_dot_type`):
/// - F32 weights: none (`x' = x`).
/// - F16 weights: b rounded to f16, `|x - x'| <= 2^-11 |x|` (plus 2^-25 where x is below the f16 normal range).
/// - Q4_0, Q8_0, IQ4_NL, MXFP4, NVFP4, Q1_0 and Q2_0 weights: b rounded to 8 bits per 32-value block, scale
///   `d = max|x| / 127` kept as f16: `|x - x'| <= d * (1/2 + 127 * 2^-11)` within the block (plus f32 rounding,
///   about 2^-24 d, and 2^-18 where d is below f16's normal range). For Q4_0/Q8_0, `GGVK_INT_DOT=0` in the
///   environment keeps `x' = x`; for IQ4_NL/MXFP4/NVFP4/Q1_0/Q2_0, `GGVK_ROUND_ACTIVATIONS=0` does.
/// - Q4_K, Q5_K and Q6_K weights on a device with integer dot products: b on the CPU backend's Q8_K grid (8 bits per
///   256-value block, f32 scale `d = max|x| / 127`: `|x - x'| <= d / 2` plus f32 rounding); `GGVK_INT_DOT=0`
///   keeps `x' = x`.
/// - IQ4_XS, IQ3_S, IQ3_XXS, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0 weights: b on the Q8_K grid (as
///   above); `GGVK_ROUND_ACTIVATIONS=0` keeps `x' = x`.
/// - Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, BF16 weights (and the K-quants elsewhere): none by default;
///   `GGVK_ROUND_ACTIVATIONS=1` rounds b as ggml's CPU backend does for them (8-bit blocks of 32, of 256 for the
///   K-quants, or bf16).
///
/// Wider products (N > 8) use tiled kernels, on cooperative matrices where the device has them (f16 inputs).
#[no_mangle]
pub extern "C" fn ggvk_graph_mul_mat(
    graph: *mut ggvk_graph,
    a: *const ggvk_tensor,
    b: *const ggvk_tensor,
    dst: *const ggvk_tensor,
) -> ggvk_status {
    guard("ggvk_graph_mul_mat", || {
        let mut d = ggvk_node_desc { op: ggvk_op::GGVK_OP_MUL_MAT as i32, dst, ..Default::default() };
        d.src[0] = a;
        d.src[1] = b;
        node::append(graph, &d)
    })
}

/// Append ggml_rope_ext: `ggvk_graph_node` with `GGVK_OP_ROPE` and `params.rope = *params`. x F32
/// `[ne0, heads, tokens, ne3]`, pos I32 `[tokens]`, freq_factors F32 `[n_dims/2]` or NULL, dst F32 shaped like x
/// (may be x itself).
#[no_mangle]
pub extern "C" fn ggvk_graph_rope(
    graph: *mut ggvk_graph,
    x: *const ggvk_tensor,
    pos: *const ggvk_tensor,
    freq_factors: *const ggvk_tensor,
    dst: *const ggvk_tensor,
    params: *const ggvk_rope_params,
) -> ggvk_status {
    guard("ggvk_graph_rope", || {
        let p = in_ref(params, "params")?;
        let mut d = ggvk_node_desc { op: ggvk_op::GGVK_OP_ROPE as i32, dst, ..Default::default() };
        d.src[..3].copy_from_slice(&[x, pos, freq_factors]);
        d.params.rope = *p;
        node::append(graph, &d)
    })
}

/// Run `graph` on `backend` and wait for it. A graph may be computed again (see `ggvk_graph`); an empty graph
/// does nothing.
#[no_mangle]
pub extern "C" fn ggvk_graph_compute(backend: *mut ggvk_backend, graph: *const ggvk_graph) -> ggvk_status {
    guard("ggvk_graph_compute", || {
        let b = in_ref(backend.cast_const(), "backend")?;
        b.inner.compute(&in_ref(graph, "graph")?.inner).map(|_| ())
    })
}

/// Submit `graph` on `backend` without waiting; `ggvk_synchronize` waits.
#[no_mangle]
pub extern "C" fn ggvk_graph_compute_async(backend: *mut ggvk_backend, graph: *const ggvk_graph) -> ggvk_status {
    guard("ggvk_graph_compute_async", || {
        let b = in_ref(backend.cast_const(), "backend")?;
        b.inner.compute_async(&in_ref(graph, "graph")?.inner).map(|_| ())
    })
}
