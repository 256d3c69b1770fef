//! The exported functions. Each one: NULL checks, conversion of C values into checked Rust values, the
//! engine call, and a status (with the message kept for `ggvk_last_error`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::{ggvk_status, guard, guard_void, last_error_ptr};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::{Graph, Tensor};
use crate::ops::rope::RopeParams;
use crate::quant::{self, GgmlType};
use crate::vk::{Buffer, Instance};

/// `ggml_type` F32.
pub const GGVK_TYPE_F32: i32 = 0;
/// `ggml_type` F16.
pub const GGVK_TYPE_F16: i32 = 1;
/// `ggml_type` Q4_0 (blocks of 32, 18 bytes).
pub const GGVK_TYPE_Q4_0: i32 = 2;
/// `ggml_type` Q8_0 (blocks of 32, 34 bytes).
pub const GGVK_TYPE_Q8_0: i32 = 8;
/// `ggml_type` I32.
pub const GGVK_TYPE_I32: i32 = 26;

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

/// A graph under construction. Create with `ggvk_graph_new`, free with `ggvk_graph_free`.
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

/// Parameters of `ggvk_graph_rope` (ggml_rope_ext).
#[repr(C)]
pub struct ggvk_rope_params {
    /// Rotated dims of each row (even, <= ne[0]).
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

fn out_ref<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: the C caller promises a non-NULL `p` points to a writable T; NULL is rejected here.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

fn in_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
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
fn tensor(t: *const ggvk_tensor, what: &str) -> Result<Tensor> {
    let t = in_ref(t, what)?;
    let ty = ty_of(t.r#type)?;
    let buf = in_ref(t.buffer.cast_const(), &format!("{what}->buffer"))?;
    let nb = t.nb.map(|x| x as u64);
    Tensor::new(buf.inner.clone(), t.offset as u64, ty, t.ne, nb)
}

fn tensor_opt(t: *const ggvk_tensor, what: &str) -> Result<Option<Tensor>> {
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

/// Wait for everything submitted on `backend`.
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

/// Free a buffer handle. Graphs already submitted keep the memory alive until they finish. NULL is a no-op.
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

/// Append `dst = a x b^T` (ggml_mul_mat): a `[K, M, a2, a3]` F32/F16/Q4_0/Q8_0, b `[K, N, b2, b3]` F32,
/// dst `[M, N, b2, b3]` F32, with `b2 % a2 == 0` and `b3 % a3 == 0` (broadcast). With Q4_0/Q8_0 weights, b is
/// first rounded to 8 bits per 32-value block (scale kept as f16), as ggml's CPU backend does; set
/// `GGVK_INT_DOT=0` in the environment to keep b in f32.
#[no_mangle]
pub extern "C" fn ggvk_graph_mul_mat(
    graph: *mut ggvk_graph,
    a: *const ggvk_tensor,
    b: *const ggvk_tensor,
    dst: *const ggvk_tensor,
) -> ggvk_status {
    guard("ggvk_graph_mul_mat", || {
        let g = out_ref(graph, "graph")?;
        g.inner.mul_mat(&tensor(a, "a")?, &tensor(b, "b")?, &tensor(dst, "dst")?)
    })
}

/// Append ggml_rope_ext: x F32 `[ne0, heads, tokens, ne3]`, pos I32 `[tokens]`, freq_factors F32
/// `[n_dims/2]` or NULL, dst F32 shaped like x (may be x itself).
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
        let g = out_ref(graph, "graph")?;
        let p = in_ref(params, "params")?;
        let params = RopeParams {
            n_dims: p.n_dims,
            mode: p.mode,
            n_ctx_orig: p.n_ctx_orig,
            freq_base: p.freq_base,
            freq_scale: p.freq_scale,
            ext_factor: p.ext_factor,
            attn_factor: p.attn_factor,
            beta_fast: p.beta_fast,
            beta_slow: p.beta_slow,
            n_offs: 0,
        };
        let ff = tensor_opt(freq_factors, "freq_factors")?;
        g.inner.rope(&tensor(x, "x")?, &tensor(pos, "pos")?, ff.as_ref(), &tensor(dst, "dst")?, params)
    })
}

/// Run `graph` on `backend` and wait for it.
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
