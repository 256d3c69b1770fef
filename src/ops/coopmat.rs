//! The cooperative-matrix (tensor-core) path of MUL_MAT for many columns (prompt processing): which devices,
//! weight types and shapes take it ([`plan`], pure and unit-tested without a GPU), its tile shape, and its
//! recording (`shaders/mul_mat_cm.comp`).
//!
//! The kernel multiplies f16 fragments into f32 accumulators (VK_KHR_cooperative_matrix, 16x16x16, subgroup
//! scope): weights are dequantized to f16 into shared memory, activations read from an f16 copy made once per
//! submission (`shaders/narrow_f16.comp`: rounded to nearest as ggml's CPU backend does; Q4_0/Q8_0 weights: first rounded to 8 bits per 32-value block, the CPU's
//! grid for them, when [`super::matmul::quantizes_activations`]). Devices without cooperative matrices, or with
//! another subgroup size, keep the scalar tiled kernel.

use std::sync::atomic::AtomicBool;

use super::matmul::{add_operands, MatMulPush, MATVEC_MAX_COLS};
use crate::error::Result;
use crate::ir::fused::MatVecAdd;
use crate::quant::GgmlType;
use crate::vk::caps::{Capabilities, CoopmatShape, CoopmatType};
use crate::vk::{Binding, Device, Recorder, Shader};

use super::spirv;

/// One tile configuration of `mul_mat_cm.comp` (its `#define`s; the host sizes the dispatch from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Output rows (of A) per workgroup.
    pub bm: u32,
    /// Output columns (of B) per workgroup.
    pub bn: u32,
    /// Workgroup size.
    pub wg: u32,
    /// Subgroup size the kernel's subgroup grid assumes.
    pub subgroup: u32,
    /// Shared memory the kernel declares, bytes.
    pub shared_bytes: u32,
    /// The kernel multiplies 8-bit codes (s8 16x16x32 fragments) rather than f16 values.
    pub int8: bool,
    /// The kernel reads the 8-bit copy of b (`quantize_q8_1.comp`) rather than its f16 copy (`narrow_f16.comp`).
    pub b_q8: bool,
    /// k step.
    pub bk: u32,
    /// An NV_cooperative_matrix2 kernel (`mul_mat_cm2.comp`: workgroup-scope matrices, no shared memory of its own).
    pub cm2: bool,
}

/// The tile `mul_mat_cm.comp` is compiled for: 128 x 128 outputs, 8 subgroups of 32 in a 2 x 4 grid (64 x 32
/// each), k steps of 64; shared memory: A and B tiles of 128 x 72 halves, 8 staging areas of 16 x 16 floats.
pub(crate) const TILE_128: Tile = Tile {
    bm: 128,
    bn: 128,
    wg: 256,
    subgroup: 32,
    shared_bytes: 2 * 128 * 72 * 2 + 8 * 256 * 4,
    int8: false,
    b_q8: false,
    bk: 64,
    cm2: false,
};

/// The tile `mul_mat_cmq.comp` (8-bit codes) is compiled for: 128 x 128 outputs, 8 subgroups of 32 (64 x 32
/// each), k steps of 64; shared memory: A and B code tiles of 128 x 80 bytes, two f16 scale matrices of 16 x 256,
/// 8 staging areas of 16 x 16 floats.
pub(crate) const TILE_I8: Tile = Tile {
    bm: 128,
    bn: 128,
    wg: 256,
    subgroup: 32,
    shared_bytes: 2 * 128 * 80 + 2 * 16 * 256 * 2 + 8 * 256 * 4,
    int8: true,
    b_q8: true,
    bk: 64,
    cm2: false,
};

/// The tile `mul_mat_cm2.comp` runs by default (spec constants): 128 rows x 128 columns per workgroup of 256
/// invocations, k steps of 64; the driver stages it through shared memory itself.
pub(crate) const TILE_CM2: Tile =
    Tile { bm: 128, bn: 128, wg: 256, subgroup: 32, shared_bytes: 0, int8: false, b_q8: false, bk: 64, cm2: true };

/// PCI vendor id of NVIDIA.
const NVIDIA_VENDOR_ID: u32 = 0x10de;

/// k step of `mul_mat_cm.comp`.
const BK: u32 = 64;

/// What the cooperative-matrix kernels need from a device, distilled from its [`Capabilities`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopmatDevice {
    /// f16 x f16 -> f32 16x16x16 at subgroup scope is listed (and the feature enabled).
    pub f16_16x16x16: bool,
    /// s8 x s8 -> s32 16x16x32 at subgroup scope is listed (and `shaderInt8`), on an NVIDIA driver: the integer
    /// kernel reads s32 accumulator elements as f32 accumulator elements of the same index (see
    /// `mul_mat_cmq.comp`), which the specification leaves to the implementation; NVIDIA's drivers lay the two out
    /// alike (checked by the conformance suite on the H200).
    pub s8_16x16x32: bool,
    /// `shaderFloat16` (f16 arithmetic and shared arrays).
    pub fp16: bool,
    /// `vulkanMemoryModel` (glslang declares the Vulkan memory model for cooperative-matrix shaders).
    pub memory_model: bool,
    /// Default subgroup size.
    pub subgroup_size: u32,
    /// `maxComputeSharedMemorySize`.
    pub max_shared_memory: u32,
    /// `maxComputeWorkGroupInvocations`.
    pub max_workgroup_invocations: u32,
    /// VK_NV_cooperative_matrix2 runs [`TILE_CM2`] (f16 x f16 -> f32 at workgroup scope in that shape; on a
    /// [`Device`] also enabled at its creation, see [`Device::coopmat2_enabled`]).
    pub cm2: bool,
    /// ... and decodes block-quantized weights in its loads (`cooperativeMatrixBlockLoads`).
    pub cm2_decode: bool,
    /// VK_NV_cooperative_matrix2 runs `flash_attn_cm2.comp`: its reductions, conversions and per-element operations
    /// are offered, and f16 x f16 -> f32 at workgroup scope for 128 invocations in the kernel's two product shapes
    /// (64 x 64 x D and 64 x D x 64) for every head size D it is compiled for.
    pub cm2_attention: bool,
    /// Block shapes `flash_attn_cm2.comp`'s split variant may take here: bit `i * 3 + j` for
    /// [`super::flash_attn::CM2S_ROWS`]`[i]` rows and [`super::flash_attn::CM2S_KEYS`]`[j]` keys, set where the
    /// driver offers both products of that block (rows x keys x D and rows x D x keys) for every head size at the
    /// kernel's 128 invocations, with the operations of `cm2_attention`.
    pub cm2_split: u16,
}

impl CoopmatDevice {
    /// The record for `caps`.
    pub fn from_caps(caps: &Capabilities) -> Self {
        let want = CoopmatShape { m: 16, n: 16, k: 16, ab: CoopmatType::F16, c: CoopmatType::F32 };
        let want_s8 = CoopmatShape { m: 16, n: 16, k: 32, ab: CoopmatType::S8, c: CoopmatType::S32 };
        CoopmatDevice {
            f16_16x16x16: caps.coopmat_feature && caps.coopmat_shapes.contains(&want),
            s8_16x16x32: caps.coopmat_feature
                && caps.int8
                && caps.vendor_id == NVIDIA_VENDOR_ID
                && caps.coopmat_shapes.contains(&want_s8),
            fp16: caps.fp16,
            memory_model: caps.vulkan_memory_model,
            subgroup_size: caps.subgroup_size,
            max_shared_memory: caps.max_shared_memory,
            max_workgroup_invocations: caps.max_workgroup_invocations,
            cm2: caps.coopmat2.allows(
                (TILE_CM2.bn, TILE_CM2.bm, TILE_CM2.bk),
                CoopmatType::F16,
                CoopmatType::F32,
                TILE_CM2.wg,
            ),
            cm2_decode: caps.coopmat2.block_loads,
            cm2_attention: caps.coopmat2.softmax_ops
                && super::flash_attn::CM2_HEADS.iter().all(|&d| {
                    use super::flash_attn::{CM2_KEYS, CM2_WG, CM_ROWS};
                    let allows = |mnk| caps.coopmat2.allows(mnk, CoopmatType::F16, CoopmatType::F32, CM2_WG);
                    allows((CM_ROWS, CM2_KEYS, d)) && allows((CM_ROWS, d, CM2_KEYS))
                }),
            cm2_split: super::flash_attn::cm2_split_shapes(caps.coopmat2.softmax_ops, |mnk| {
                caps.coopmat2.allows(mnk, CoopmatType::F16, CoopmatType::F32, super::flash_attn::CM2_WG)
            }),
        }
    }

    /// Whether `tile` runs on this device at all.
    pub fn runs(&self, tile: &Tile) -> bool {
        self.f16_16x16x16
            && self.fp16
            && self.memory_model
            && self.subgroup_size == tile.subgroup
            && self.max_shared_memory >= tile.shared_bytes
            && self.max_workgroup_invocations >= tile.wg
            && (!tile.int8 || self.s8_16x16x32)
    }
}

/// `GGVK_COOPMAT=0` keeps the scalar tiled kernel everywhere; otherwise the cooperative-matrix kernels run where
/// [`plan`] allows. `GGVK_COOPMAT_INT8=1` puts Q4_0 / Q8_0 weights with 8-bit activations on the integer kernel
/// (`mul_mat_cmq.comp`: the 8-bit codes multiplied exactly, both block scales applied in f32, as the CPU computes
/// them) where the device lists s8 16x16x32 fragments.
///
/// Why Q4_0 / Q8_0 take the f16 kernel with f16 activations by default (H200, 2026-12-03, tiny Q4_0/Q8_0
/// llama/qwen3, mean KLD against the CPU over 8 x 256 tokens, fa off): f16 kernel 0.000593 / 0.000580 / 0.000587 /
/// 0.000581, integer kernel 0.000632 / 0.000606 / 0.000628 / 0.000596, ggml-vulkan 0.000623 / 0.000607 / 0.000617 /
/// 0.000610; and m=4096 k=14336 n=512 q4_0 takes 434 us there against 781 us on the integer kernel. (Activations
/// rounded to 8 bits and then multiplied through f16 fragments, tried before, were worse than both.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knob {
    /// Whether products may take the cooperative kernels.
    pub mode: Mode,
    /// Q4_0 / Q8_0 with 8-bit activations take the integer kernel (`GGVK_COOPMAT_INT8=1`).
    pub int8: bool,
}

/// `GGVK_COOPMAT`'s settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never.
    Off,
    /// Where the device and shape allow.
    Auto,
}

impl Knob {
    /// The default: [`Mode::Auto`], Q4_0 / Q8_0 on the f16 kernel.
    pub const AUTO: Knob = Knob { mode: Mode::Auto, int8: false };
    /// [`Mode::Auto`] with the integer kernel for Q4_0 / Q8_0.
    pub const INT8: Knob = Knob { mode: Mode::Auto, int8: true };
    /// [`Mode::Off`].
    pub const OFF: Knob = Knob { mode: Mode::Off, int8: false };
}

fn knob() -> Knob {
    static KNOB: std::sync::OnceLock<Knob> = std::sync::OnceLock::new();
    *KNOB.get_or_init(|| Knob {
        mode: if crate::knobs::either("GGVK_COOPMAT") == Some(false) { Mode::Off } else { Mode::Auto },
        int8: crate::knobs::either("GGVK_COOPMAT_INT8") == Some(true),
    })
}

/// The f16 kernel variant for weights of type `ty` (it reads the f16 copy of b).
fn shader_for(ty: GgmlType) -> Option<Shader> {
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        GgmlType::F16 => ("mul_mat_cm_f16", spirv::MUL_MAT_CM_F16),
        GgmlType::Q4_0 => ("mul_mat_cm_q4_0", spirv::MUL_MAT_CM_Q4_0),
        GgmlType::Q8_0 => ("mul_mat_cm_q8_0", spirv::MUL_MAT_CM_Q8_0),
        GgmlType::Q4_K => ("mul_mat_cm_q4_k", spirv::MUL_MAT_CM_Q4_K),
        GgmlType::Q6_K => ("mul_mat_cm_q6_k", spirv::MUL_MAT_CM_Q6_K),
        GgmlType::F32 => return None,
        ty => spirv::dq_module("mul_mat_cm_dq", ty.name())?,
    };
    Some(Shader { name, spirv, bindings: 3, push_size: std::mem::size_of::<MatMulPush>() as u32 })
}

/// The cooperative-matrix kernel and tile for `a (ty) x b` with `n` columns on `dev`, or `None` for the other
/// kernels: the knob is on, the device runs the tile, the product has more columns than the mat-vec kernels take,
/// and the weights are F16 or a type with a dequantization include (F32 weights keep f32 math). The kernels read an
/// f16 copy of b, except the integer kernel, which Q4_0 / Q8_0 weights with 8-bit activations (`q8_b`) take with
/// [`Knob::int8`] where the device lists s8 16x16x32 fragments. NV_cooperative_matrix2 kernels where the device has
/// them enabled ([`CoopmatDevice::cm2`]).
pub fn plan(dev: &CoopmatDevice, knob: Knob, ty: GgmlType, q8_b: bool, n: u32) -> Option<(Shader, Tile)> {
    if knob.mode == Mode::Off || n <= MATVEC_MAX_COLS {
        return None;
    }
    let codes = matches!(ty, GgmlType::Q4_0 | GgmlType::Q8_0);
    let int8 = codes && q8_b && knob.int8 && dev.runs(&TILE_I8);
    if dev.cm2 && !int8 {
        if let Some(shader) = cm2_shader(ty).filter(|_| ty == GgmlType::F16 || dev.cm2_decode) {
            return Some((shader, TILE_CM2));
        }
    }
    if int8 {
        return Some((int8_shader(ty)?, TILE_I8));
    }
    // Grid tables of the IQ types' dequantization take shared memory beside the tile.
    let table = super::matmul::dq_table_bytes(ty);
    if !dev.runs(&TILE_128) || dev.max_shared_memory < TILE_128.shared_bytes + table {
        return None;
    }
    Some((shader_for(ty)?, TILE_128))
}

/// Whether `mul_mat_cm.comp` may read B (its f16 copy) and A 8 halves / 16 bytes at a time: whole k steps, and
/// offsets and strides (in 16-bit units) multiples of 8. Returns (B, A).
fn wide_loads(p: &MatMulPush) -> (bool, bool) {
    let whole_steps = p.k % BK == 0;
    let vec_b = whole_steps && [p.b_off, p.b_col, p.b_s2, p.b_s3].iter().all(|v| v % 8 == 0);
    let vec_a = whole_steps && [p.a_off, p.a_row, p.a_s2, p.a_s3].iter().all(|v| v % 8 == 0);
    (vec_b, vec_a)
}

/// The variant of `shader` (the f16 kernel for `ty`) that reads A in 16-byte loads where `wide_a` allows: Q4_K
/// (block header and code bytes in one load each; `GGVK_CM_VEC_Q4K=0` keeps the 2-byte loader). F16 A takes its
/// wide loads through a specialisation constant instead; other types keep `shader`.
fn wide_variant(shader: Shader, ty: GgmlType, wide_a: bool) -> Shader {
    match ty {
        GgmlType::Q4_K if wide_a => Shader { name: "mul_mat_cm_q4_k_vec", spirv: spirv::MUL_MAT_CM_Q4_K_VEC, ..shader },
        _ => shader,
    }
}

/// The NV_cooperative_matrix2 kernel for weights of type `ty`: F16, Q8_0, Q4_K, Q5_K and Q6_K, each faster there than
/// on the KHR kernel (H200, m=4096 k=14336 n=512, GPU timestamps, 2026-12-03: f16 257 vs 382 us, q8_0 405 vs 450,
/// q4_K 376 vs 481, q6_K 496 vs 693). Q4_0 keeps the KHR kernel: its 18-byte blocks decoded per element ran at
/// 1,331 us median (best 379) against 436. (f16 accumulators, ggml-vulkan's choice there, measured no faster: f16
/// 258 vs 257 us, q4_K 406 vs 375, with 22-34x the error against the CPU reference.)
fn cm2_shader(ty: GgmlType) -> Option<Shader> {
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        GgmlType::F16 => ("mul_mat_cm2_f16", spirv::MUL_MAT_CM2_F16),
        GgmlType::Q8_0 => ("mul_mat_cm2_q8_0", spirv::MUL_MAT_CM2_Q8_0),
        GgmlType::Q4_K => ("mul_mat_cm2_q4_k", spirv::MUL_MAT_CM2_Q4_K),
        GgmlType::Q5_K => ("mul_mat_cm2_q5_k", spirv::MUL_MAT_CM2_Q5_K),
        GgmlType::Q6_K => ("mul_mat_cm2_q6_k", spirv::MUL_MAT_CM2_Q6_K),
        _ => return None,
    };
    Some(Shader { name, spirv, bindings: 3, push_size: std::mem::size_of::<MatMulPush>() as u32 })
}

/// `mul_mat_cm2.comp`'s tensor loads and stores start 16-byte aligned for every batch: A's offset and batch strides
/// (in A's 2-byte units), B's (halves) and dst's (floats).
fn cm2_aligned(p: &MatMulPush) -> bool {
    [p.a_off, p.a_s2, p.a_s3, p.b_off, p.b_s2, p.b_s3].iter().all(|v| v % 8 == 0)
        && [p.d_off, p.d_s2, p.d_s3].iter().all(|v| v % 4 == 0)
}

/// Whether every row of A (F16: in halves), column of B (halves) and column of dst (floats) starts 16-byte aligned
/// when the batch offsets do ([`cm2_aligned`]): `mul_mat_cm2.comp`'s unclamped interior loop (its `ALIGNED`) then
/// lets the compiler see the alignment. Quantized rows are whole blocks, addressed per block.
fn cm2_aligned_rows(p: &MatMulPush, ty: GgmlType) -> bool {
    (ty != GgmlType::F16 || p.a_row % 8 == 0) && p.b_col % 8 == 0 && p.d_col % 4 == 0
}

/// Whether `mul_mat_cm2.comp` runs `tile` for weights of type `ty`: the K-quants' scale staging takes
/// 256 / rows invocations per row and whole k steps per 256-value block.
fn cm2_tile_fits(tile: &Tile, ty: GgmlType) -> bool {
    let kquant = matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K);
    !kquant || (tile.bm <= 256 && 256 % tile.bm == 0 && 256 % tile.bk == 0 && tile.wg == 256)
}

/// The integer kernel for Q4_0 / Q8_0 weights.
fn int8_shader(ty: GgmlType) -> Option<Shader> {
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        GgmlType::Q4_0 => ("mul_mat_cmq_q4_0", spirv::MUL_MAT_CMQ_Q4_0),
        GgmlType::Q8_0 => ("mul_mat_cmq_q8_0", spirv::MUL_MAT_CMQ_Q8_0),
        _ => return None,
    };
    Some(Shader { name, spirv, bindings: 3, push_size: std::mem::size_of::<MatMulPush>() as u32 })
}

/// The plan for `device` under the process's `GGVK_COOPMAT`.
pub(super) fn plan_on(device: &Device, ty: GgmlType, q8_b: bool, n: u32) -> Option<(Shader, Tile)> {
    plan(&plan_device(device, ty), knob(), ty, q8_b, n).map(|(s, t)| (s, if t.cm2 { cm2_tile() } else { t }))
}

/// `device` as the plans for weights of type `ty` see it: NV_cooperative_matrix2 where it is enabled and, with a
/// tile set through the knobs, where the driver lists that tile and its scale staging takes `ty`.
fn plan_device(device: &Device, ty: GgmlType) -> CoopmatDevice {
    let mut dev = CoopmatDevice::from_caps(device.caps());
    dev.cm2 &= device.coopmat2_enabled();
    let tile = cm2_tile();
    if tile != TILE_CM2 {
        dev.cm2 &=
            device.caps().coopmat2.allows((tile.bn, tile.bm, tile.bk), CoopmatType::F16, CoopmatType::F32, tile.wg)
                && cm2_tile_fits(&tile, ty);
    }
    dev
}

/// [`TILE_CM2`] with `GGVK_CM2_TM` / `GGVK_CM2_TN` / `GGVK_CM2_TK` (rows, columns, k step; for measurements) applied.
fn cm2_tile() -> Tile {
    static TILE: std::sync::OnceLock<Tile> = std::sync::OnceLock::new();
    *TILE.get_or_init(|| with_knobs(TILE_CM2, ["GGVK_CM2_TM", "GGVK_CM2_TN", "GGVK_CM2_TK"]))
}

/// `base` with the rows, columns and k step the knobs `names` set (where set).
fn with_knobs(base: Tile, names: [&'static str; 3]) -> Tile {
    let get = |name: &'static str, default: u32| crate::knobs::number(name).map_or(default, |v| v as u32);
    Tile { bm: get(names[0], base.bm), bn: get(names[1], base.bn), bk: get(names[2], base.bk), ..base }
}

/// Whether `a x b` on `device` runs a cooperative-matrix kernel that reads the f16 copy of b.
pub fn reads_f16_b(device: &Device, a: &crate::ir::Tensor, b: &crate::ir::Tensor) -> bool {
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    !super::matmul::bf16_scalar(a)
        && plan_on(device, a.ty, super::matmul::quantizes_activations(a), n).is_some_and(|(_, t)| !t.b_q8)
}

/// Whether `a x b` on `device` runs on the cooperative-matrix kernel (f16 operands: tests widen their error bound).
pub fn uses_coopmat(device: &Device, a: &crate::ir::Tensor, b: &crate::ir::Tensor) -> bool {
    let n = u32::try_from(b.ne[1]).unwrap_or(u32::MAX);
    !super::matmul::bf16_scalar(a) && plan_on(device, a.ty, super::matmul::quantizes_activations(a), n).is_some()
}

/// Record the product on the cooperative-matrix kernel (`bindings`: A, the f16 or 8-bit copy of B, dst; `p`
/// already redirected to the copy).
pub(super) fn record(
    rec: &mut Recorder<'_>,
    (shader, tile): (Shader, Tile),
    bindings: &[Binding; 3],
    p: &MatMulPush,
    (batches, ty): (u32, GgmlType),
    add: Option<&MatVecAdd<'_>>,
) -> Result<bool> {
    let device = rec.device().clone();
    if ty == GgmlType::F16 {
        if let Some(fused) = record_cm16(rec, bindings, p, batches, add)? {
            return Ok(fused);
        }
    }
    if tile.cm2 {
        if cm2_aligned(p) {
            let aligned = u32::from(cm2_aligned_rows(p, ty));
            // The ADD that follows, in the store (`FUSE_ADD`): F16 weights (every prompt product whose weights are
            // decoded to f16 first), one batch, the addend and the sum on d's 16-byte boundaries.
            let add = match add.filter(|_| cm2_add_enabled() && ty == GgmlType::F16 && batches == 1) {
                Some(f) => Some(add_operands(&device, f)?),
                None => None,
            }
            .filter(|(_, offs)| offs.iter().chain([&p.d_off, &p.d_col]).all(|o| o % 4 == 0));
            let (shader, push, all) = with_add((shader, CM2_F16_ADD), bindings, p, add.as_ref());
            match device.pipelines().get(&device, &shader, &[tile.bm, tile.bn, tile.bk, aligned]) {
                Ok(pipeline) => {
                    let groups = [p.m.div_ceil(tile.bm), p.n.div_ceil(tile.bn), batches];
                    rec.dispatch("mul_mat_cm2", &pipeline, &all, bytemuck::bytes_of(&push), groups)?;
                    return Ok(add.is_some());
                }
                // A driver that lists the extension but cannot build the kernel: the product still runs.
                Err(e) => {
                    static WARNED: AtomicBool = AtomicBool::new(false);
                    warn_once(&WARNED, || format!("{}: {e}; prompt products take the KHR kernel", shader.name));
                }
            }
        }
        // Unaligned views, or a kernel the driver could not build: the KHR kernel over the same f16 copy of b.
        let fallback = shader_for(ty)
            .ok_or_else(|| crate::error::Error::Internal(format!("no cooperative kernel for {}", ty.name())))?;
        return record(rec, (fallback, TILE_128), bindings, p, (batches, ty), None);
    }
    // Wide loads: B (its f16 copy; not the 8-bit copy) and F16 / Q4_K A 16 bytes at a time, when offsets, strides
    // and k allow.
    let (vec_b, vec_a) = wide_loads(p);
    let groups = [p.m.div_ceil(tile.bm), p.n.div_ceil(tile.bn), batches];
    if tile.int8 {
        let pipeline = device.pipelines().get(&device, &shader, &[])?;
        return rec.dispatch("mul_mat_cmq", &pipeline, bindings, bytemuck::bytes_of(p), groups).map(|_| false);
    }
    static WIDE_Q4K: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let shader =
        wide_variant(shader, ty, vec_a && *WIDE_Q4K.get_or_init(|| crate::knobs::switch("GGVK_CM_VEC_Q4K", true)));
    let pipeline = device.pipelines().get(&device, &shader, &[u32::from(vec_b), u32::from(vec_a)])?;
    rec.dispatch("mul_mat_cm", &pipeline, bindings, bytemuck::bytes_of(p), groups).map(|_| false)
}

/// The tile of `mul_mat_cm16.comp` (F16 weights in 16-byte chunks): [`TILE_128`]'s shape, grid and shared memory
/// (its tiles held as 16-byte chunks instead of 8-byte ones).
pub(crate) const TILE_CM16: Tile = TILE_128;

/// Fewest columns of an F16 product that `mul_mat_cm16.comp` takes by default (`GGVK_CM16_MIN_COLS=N`: from N
/// columns on, 0: never): the narrowest product measured. On an H100 (`ggvk bench --type f16 --resident`, GPU
/// timestamps, NOTES.md, 2026-12-06) it ran every product measured faster than the NV_cooperative_matrix2 kernel:
/// 4096 x 4096 with 16 columns 82.8 against 113.3 us, 128 64.4 / 72.3, 256 64.7 / 75.3, 512 66.6 / 77.9, 1,024
/// 127.1 / 151.3, 2,048 251.9 / 293.4; 4096 x 14336 x 512 214.5 / 254.5.
pub(crate) const CM16_MIN_COLS: u32 = 16;

fn cm16_min_cols() -> u32 {
    static COLS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *COLS.get_or_init(|| crate::knobs::number("GGVK_CM16_MIN_COLS").map_or(CM16_MIN_COLS, |v| v as u32))
}

/// Whether an F16 product of `n` columns takes `mul_mat_cm16.comp` on `dev` with the threshold `min_cols`.
pub(crate) fn cm16_takes(dev: &CoopmatDevice, min_cols: u32, n: u32) -> bool {
    min_cols != 0 && n >= min_cols && dev.runs(&TILE_CM16)
}

/// Whether an F16 product of `n` columns takes `mul_mat_cm16.comp` on `device` under `GGVK_CM16_MIN_COLS`. Off
/// (`=0`) costs one comparison, without the device's capabilities distilled.
fn cm16_on(device: &Device, n: u32) -> bool {
    let min_cols = cm16_min_cols();
    min_cols != 0 && cm16_takes(&CoopmatDevice::from_caps(device.caps()), min_cols, n)
}

/// Whether `mul_mat_cm16.comp` reads every row of A and column of B in 16-byte chunks: offsets, strides and k
/// multiples of 8 halves, and k not 0 (the kernel loads its first step before looking at k).
fn cm16_aligned(p: &MatMulPush) -> bool {
    p.k > 0 && [p.a_off, p.a_row, p.a_s2, p.a_s3, p.b_off, p.b_col, p.b_s2, p.b_s3, p.k].iter().all(|v| v % 8 == 0)
}

/// Record an F16 product on `mul_mat_cm16.comp` where [`cm16_takes`] and the views allow it; `Some(fused)` when
/// recorded (with the following ADD in its store where `add` allows, as the NV_cooperative_matrix2 kernel takes it).
fn record_cm16(
    rec: &mut Recorder<'_>,
    bindings: &[Binding; 3],
    p: &MatMulPush,
    batches: u32,
    add: Option<&MatVecAdd<'_>>,
) -> Result<Option<bool>> {
    let device = rec.device().clone();
    if !cm16_on(&device, p.n) || !cm16_aligned(p) {
        return Ok(None);
    }
    let add = match add.filter(|_| cm2_add_enabled() && batches == 1) {
        Some(f) => Some(add_operands(&device, f)?),
        None => None,
    };
    let (shader, push, all) = with_add((CM16, CM16_ADD), bindings, p, add.as_ref());
    let pipeline = device.pipelines().get(&device, &shader, &[0, u32::from(cm16_cols_first())])?;
    let groups = cm16_groups(p.m.div_ceil(TILE_CM16.bm), p.n.div_ceil(TILE_CM16.bn), batches);
    rec.dispatch("mul_mat_cm16", &pipeline, &all, bytemuck::bytes_of(&push), groups)?;
    Ok(Some(add.is_some()))
}

/// Whether `mul_mat_cm16.comp`'s grid runs over column tiles first (spec constant 1; `GGVK_CM16_COLS_FIRST=0`: row
/// tiles first). The workgroups resident together then share weight rows, which stream from memory about once,
/// where row tiles first streamed a feed-forward kernel's 180 MB of gate and up weights once per one or two column
/// tiles. H100, 7B, pp2048 with flash attention, processes alternated (NOTES.md, 2026-12-06): Q4_0 14,496 against
/// 13,305 t/s, Q4_K 14,394 / 14,245; single products within 2% either way.
fn cm16_cols_first() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_CM16_COLS_FIRST", true))
}

/// `mul_mat_cm16.comp`'s workgroup counts for `rows` x `cols` tiles and `batches` batches, in its grid's order.
fn cm16_groups(rows: u32, cols: u32, batches: u32) -> [u32; 3] {
    if cm16_cols_first() {
        [cols, rows, batches]
    } else {
        [rows, cols, batches]
    }
}

/// The kernel, push constants and bindings of a product: the `FUSE_ADD` kernel of `(plain, fused)` with the ADD's
/// addend and output bound after the product's and their offsets in the push constants' spare words where `add`
/// ([`add_operands`]) is taken, the plain kernel otherwise.
fn with_add(
    (plain, fused): (Shader, Shader),
    bindings: &[Binding; 3],
    p: &MatMulPush,
    add: Option<&([Binding; 2], [u32; 2])>,
) -> (Shader, MatMulPush, Vec<Binding>) {
    match add {
        Some((extra, offs)) => {
            (fused, MatMulPush { pad: *offs, ..*p }, bindings.iter().chain(extra).cloned().collect())
        }
        None => (plain, *p, bindings.to_vec()),
    }
}

/// A product kernel taking [`MatMulPush`] with `bindings` storage buffers.
const fn product_shader(name: &'static str, spirv: &'static [u8], bindings: u32) -> Shader {
    Shader { name, spirv, bindings, push_size: std::mem::size_of::<MatMulPush>() as u32 }
}

/// `mul_mat_cm16.comp`, plain and with the following ADD (`FUSE_ADD`).
const CM16: Shader = product_shader("mul_mat_cm16", spirv::MUL_MAT_CM16, 3);
const CM16_ADD: Shader = product_shader("mul_mat_cm16_add", spirv::MUL_MAT_CM16_ADD, 5);

/// Log `msg` as a warning the first time `warned` is passed (a kernel the driver could not build: once a process).
fn warn_once(warned: &AtomicBool, msg: impl FnOnce() -> String) {
    if !warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!("{}", msg());
    }
}

/// `mul_mat_cm2.comp` for F16 weights with the ADD that follows in its store (`FUSE_ADD`).
const CM2_F16_ADD: Shader = product_shader("mul_mat_cm2_f16_add", spirv::MUL_MAT_CM2_F16_ADD, 5);

/// A FUSE_GLU kernel (F16 weights): a prompt's gate and up products of the same activations and the GLU of the
/// two in their store ([`crate::ir::fused::PairGlu`]), taking [`PairGluPush`] and 7 storage buffers.
const fn glu_shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 7, push_size: std::mem::size_of::<PairGluPush>() as u32 }
}

/// `mul_mat_cm2.comp`'s and `mul_mat_cm16.comp`'s FUSE_GLU kernels.
const CM2_F16_GLU: Shader = glu_shader("mul_mat_cm2_f16_glu", spirv::MUL_MAT_CM2_F16_GLU);
const CM16_GLU: Shader = glu_shader("mul_mat_cm16_glu", spirv::MUL_MAT_CM16_GLU);

/// Push constants of the FUSE_GLU kernel: the gate product's, then the up weights' first half, the up product's,
/// the GLU output's first floats and its f16 copy's first half.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PairGluPush {
    pub mm: MatMulPush,
    pub a2_off: u32,
    pub d2_off: u32,
    pub g_off: u32,
    pub g16_off: u32,
}

/// The FUSE_GLU kernel's tile: rows of each of the two products, columns, k step; the plain kernel's, with two
/// accumulators of it, the activation tile loaded once for both weights. H100, 7B Q4_0, 2,048-token prompts (tile
/// rows x columns, pp2048 against 12,980 / 13,091 t/s without the fusion in the same call): 128 x 128 13,399, 64 x
/// 128 11,661 / 11,038 (the fused product 2.29 ms against 1.61 for the two apart), 128 x 64 11,437 (NOTES.md).
pub(crate) const TILE_CM2_GLU: Tile = TILE_CM2;

/// [`TILE_CM2_GLU`] with `GGVK_CM2_GLU_TM` / `GGVK_CM2_GLU_TN` (rows of each product, columns) and `GGVK_CM2_TK`
/// applied (for measurements).
fn cm2_glu_tile() -> Tile {
    static TILE: std::sync::OnceLock<Tile> = std::sync::OnceLock::new();
    *TILE.get_or_init(|| with_knobs(TILE_CM2_GLU, ["GGVK_CM2_GLU_TM", "GGVK_CM2_GLU_TN", "GGVK_CM2_TK"]))
}

/// The kernel that takes a prompt's gate and up products with their GLU ([`glu_plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GluKernel {
    /// `mul_mat_cm2.comp`'s FUSE_GLU kernel with this tile (rows of each product, columns, k step).
    Cm2(Tile),
    /// `mul_mat_cm16.comp`'s FUSE_GLU kernel: 64 rows of each product and 128 columns per workgroup.
    Cm16,
}

/// The FUSE_GLU kernel for gate and up products of `n` columns on `device`: the one of the kernel their F16
/// products take, `mul_mat_cm16.comp` ([`cm16_takes`]) or NV_cooperative_matrix2 where the driver lists the tile's
/// shape for its workgroup.
pub(crate) fn glu_plan(device: &Device, n: u32) -> Option<GluKernel> {
    let tile = cm2_glu_tile();
    let listed =
        device.caps().coopmat2.allows((tile.bn, tile.bm, tile.bk), CoopmatType::F16, CoopmatType::F32, tile.wg);
    glu_kernel(&plan_device(device, GgmlType::F16), knob(), cm16_min_cols(), listed.then_some(tile), n)
}

/// [`glu_plan`] on `dev` with the knob `knob`, `mul_mat_cm16.comp` from `min_cols` columns and the
/// NV_cooperative_matrix2 FUSE_GLU tile `cm2_glu` where the driver lists it: the kernel an F16 product of `n`
/// columns takes, if it has a FUSE_GLU variant.
fn glu_kernel(dev: &CoopmatDevice, knob: Knob, min_cols: u32, cm2_glu: Option<Tile>, n: u32) -> Option<GluKernel> {
    let (_, plain) = plan(dev, knob, GgmlType::F16, false, n)?;
    if cm16_takes(dev, min_cols, n) {
        return Some(GluKernel::Cm16);
    }
    cm2_glu.filter(|_| plain.cm2).map(GluKernel::Cm2)
}

/// `mul_mat_cm16.comp`'s FUSE_GLU kernel: output rows per workgroup (half its shared rows hold the gate weights,
/// half the up weights).
const CM16_GLU_ROWS: u32 = TILE_CM16.bm / 2;

/// Record the FUSE_GLU kernel `kernel` for the GLU of code `glu` ([`super::glu::op_code`]). `bindings`: gate
/// weights, the activations' f16 copy, gate product, up weights, up product, GLU output, its f16 copy; every view
/// 16-byte aligned, rows of m and k values multiples of 8 (the caller checks). False, with nothing recorded, where
/// the driver could not build it or (`mul_mat_cm16.comp`) the views are not on 16-byte boundaries.
pub(crate) fn record_pair_glu(
    rec: &mut Recorder<'_>,
    (kernel, glu): (GluKernel, u32),
    bindings: &[Binding; 7],
    push: &PairGluPush,
) -> Result<bool> {
    let device = rec.device().clone();
    let (m, n) = (push.mm.m, push.mm.n);
    let (shader, spec, groups, family) = match kernel {
        GluKernel::Cm2(tile) => {
            let groups = [m.div_ceil(tile.bm), n.div_ceil(tile.bn), 1];
            (CM2_F16_GLU, vec![tile.bm, tile.bn, tile.bk, 1, glu], groups, "mul_mat_cm2")
        }
        GluKernel::Cm16 => {
            if !cm16_aligned(&push.mm) || push.a2_off % 8 != 0 {
                return Ok(false);
            }
            let groups = cm16_groups(m.div_ceil(CM16_GLU_ROWS), n.div_ceil(TILE_CM16.bn), 1);
            (CM16_GLU, vec![glu, u32::from(cm16_cols_first())], groups, "mul_mat_cm16")
        }
    };
    let pipeline = match device.pipelines().get(&device, &shader, &spec) {
        Ok(p) => p,
        Err(e) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            warn_once(&WARNED, || format!("{}: {e}; gate and up products record their GLU apart", shader.name));
            return Ok(false);
        }
    };
    rec.dispatch(family, &pipeline, bindings, bytemuck::bytes_of(push), groups)?;
    Ok(true)
}

/// Whether prompt products take the following ADD in their store (`GGVK_CM2_ADD=0` records the ADD apart). H100,
/// 7B Q4_0, 2,048-token prompts: the 63 ADDs' 2.4 ms gone, summed GPU time 139.0 -> 136.5 ms, pp2048 +0.8%, the
/// same perplexity to the last digit (NOTES.md).
fn cm2_add_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_CM2_ADD", true))
}

/// Shared memory `mul_mat_cm.comp`'s MUL_MAT_ID variant declares beside [`TILE_128`]'s: the tile's column table
/// (where each column starts in b and in dst).
const ID_COLUMNS_BYTES: u32 = 2 * 128 * 4;

/// Whether MUL_MAT_ID with many tokens takes `mul_mat_cm.comp`'s MUL_MAT_ID variant (`GGVK_COOPMAT_ID=0` keeps the
/// scalar tiled kernel). H100, 2026-12-06, `test-backend-ops perf -o MUL_MAT_ID` (128 experts, 8 used, m=768,
/// k=2048) against the scalar kernel: 2.6-4x faster for every type and width measured; a 2-layer Qwen3-MoE-shaped
/// Q4_0 model's prompts (`llama-bench -p 512,2048 -ub 2048 -fa 1`) 69,740 -> 111,317-118,368 t/s (pp512) and
/// 67,036 -> 85,161-88,309 (pp2048), ggml-vulkan 115,775-134,552 and 79,045-90,544 in the same processes (NOTES.md).
fn id_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::knobs::switch("GGVK_COOPMAT_ID", true))
}

/// The MUL_MAT_ID variant of `mul_mat_cm.comp` for experts of type `ty` and `n` tokens on `device`, where
/// [`id_kernel`] takes them, with its columns per tile.
pub(crate) fn id_plan(device: &Device, ty: GgmlType, n: u32) -> Option<(Shader, u32)> {
    id_kernel(&CoopmatDevice::from_caps(device.caps()), knob(), id_enabled(), ty, n, id_columns())
}

/// Columns per tile of the MUL_MAT_ID kernel: 64 by default (`GGVK_CM_ID_BN=128` for the 128-column tile). A
/// prompt's expert takes a few tens of pairs (512 tokens, 8 of 128 experts: 32 on average), so most of a 128-column
/// tile multiplied nothing; H100, 2026-12-06, `test-backend-ops perf -o MUL_MAT_ID` (128 experts, 8 used, m=768,
/// k=2048), 128 -> 64 columns, us: 32 tokens f16 283 -> 164, q4_0 326 -> 211, q4_K 424 -> 251, q6_K 641 -> 381,
/// iq2_xs (generic loader) 732 -> 427; 512 tokens f16 424 -> 291, q4_0 469 -> 310, q8_0 492 -> 327.
fn id_columns() -> u32 {
    static BN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *BN.get_or_init(|| if crate::knobs::number("GGVK_CM_ID_BN") == Some(128) { 128 } else { 64 })
}

/// [`id_plan`] on `dev` with the knobs `knob` and `enabled` and `bn` columns per tile (64, else 128): more tokens than
/// the mat-vec kernels take, a device that runs [`TILE_128`] with the column table (and the type's grid tables) in
/// its shared memory, and weights with a cooperative loader (not F32, not BF16, whose range the f16 fragments lack).
/// Returns the kernel and its columns per tile.
fn id_kernel(dev: &CoopmatDevice, knob: Knob, enabled: bool, ty: GgmlType, n: u32, bn: u32) -> Option<(Shader, u32)> {
    let table = super::matmul::dq_table_bytes(ty);
    let fits = dev.runs(&TILE_128) && dev.max_shared_memory >= TILE_128.shared_bytes + ID_COLUMNS_BYTES + table;
    let on = enabled && knob.mode != Mode::Off && n > MATVEC_MAX_COLS && fits;
    let narrow = bn == 64;
    let (name, spirv): (&'static str, &'static [u8]) = match ty {
        _ if !on => return None,
        GgmlType::F16 if narrow => ("mul_mat_cm_id64_f16", spirv::MUL_MAT_CM_ID64_F16),
        GgmlType::Q4_0 if narrow => ("mul_mat_cm_id64_q4_0", spirv::MUL_MAT_CM_ID64_Q4_0),
        GgmlType::Q8_0 if narrow => ("mul_mat_cm_id64_q8_0", spirv::MUL_MAT_CM_ID64_Q8_0),
        GgmlType::Q4_K if narrow => ("mul_mat_cm_id64_q4_k", spirv::MUL_MAT_CM_ID64_Q4_K),
        GgmlType::Q6_K if narrow => ("mul_mat_cm_id64_q6_k", spirv::MUL_MAT_CM_ID64_Q6_K),
        GgmlType::F16 => ("mul_mat_cm_id_f16", spirv::MUL_MAT_CM_ID_F16),
        GgmlType::Q4_0 => ("mul_mat_cm_id_q4_0", spirv::MUL_MAT_CM_ID_Q4_0),
        GgmlType::Q8_0 => ("mul_mat_cm_id_q8_0", spirv::MUL_MAT_CM_ID_Q8_0),
        GgmlType::Q4_K => ("mul_mat_cm_id_q4_k", spirv::MUL_MAT_CM_ID_Q4_K),
        GgmlType::Q6_K => ("mul_mat_cm_id_q6_k", spirv::MUL_MAT_CM_ID_Q6_K),
        GgmlType::F32 | GgmlType::BF16 => return None,
        ty => {
            let kernel = if narrow { "mul_mat_cm_id64_dq" } else { "mul_mat_cm_id_dq" };
            let (name, spirv) = spirv::dq_module(kernel, ty.name())?;
            (name, spirv)
        }
    };
    Some((product_shader(name, spirv, 4), if narrow { 64 } else { 128 }))
}

/// The MUL_MAT_ID kernel `shader` ([`id_kernel`]) with Q4_K weights read in 16-byte loads (block header and code
/// bytes in one load each) where `wide_a` allows; other kernels unchanged.
fn id_wide_variant(shader: &Shader, wide_a: bool) -> Shader {
    let (name, spirv): (&'static str, &'static [u8]) = match shader.name {
        "mul_mat_cm_id_q4_k" if wide_a => ("mul_mat_cm_id_q4_k_vec", spirv::MUL_MAT_CM_ID_Q4_K_VEC),
        "mul_mat_cm_id64_q4_k" if wide_a => ("mul_mat_cm_id64_q4_k_vec", spirv::MUL_MAT_CM_ID64_Q4_K_VEC),
        _ => return *shader,
    };
    Shader { name, spirv, ..*shader }
}

/// Record MUL_MAT_ID's products of one range of experts on `shader` ([`id_plan`]): `bindings` the range's weights,
/// the f16 copy of b, dst and the expert map; `p` as `mul_mat_cm.comp` describes its MUL_MAT_ID push constants;
/// `tokens` sizes the column tiles (one slot per token and expert; an expert with more pairs loops over them).
pub(crate) fn record_id(
    rec: &mut Recorder<'_>,
    (shader, bn): &(Shader, u32),
    bindings: &[Binding; 4],
    p: &MatMulPush,
    tokens: u32,
) -> Result<()> {
    let device = rec.device().clone();
    let caps = device.caps();
    // 16-byte loads of b where every column starts on 8 halves and k is whole steps; of F16 and Q4_K experts
    // likewise.
    let steps = p.k % BK == 0;
    let vec_b = steps && [p.b_off, p.b_s2, p.b_s3].iter().all(|v| v % 8 == 0);
    let vec_a = steps && [p.a_off, p.a_row, p.a_s2].iter().all(|v| v % 8 == 0);
    let shader = id_wide_variant(shader, vec_a);
    let pipeline = device.pipelines().get(&device, &shader, &[u32::from(vec_b), u32::from(vec_a)])?;
    let groups = [p.m.div_ceil(TILE_128.bm), tokens.div_ceil(*bn).min(caps.max_workgroup_count[1]), p.r2];
    if groups[0] > caps.max_workgroup_count[0] || groups[2] > caps.max_workgroup_count[2] {
        return Err(crate::error::Error::unsupported(format!(
            "MUL_MAT_ID: {groups:?} workgroups exceed this device's limits"
        )));
    }
    rec.dispatch("mul_mat_cm_id", &pipeline, bindings, bytemuck::bytes_of(p), groups)
}

/// The H200 / H100 (NVIDIA, driver 580) as the cooperative-matrix plans see it, for the unit tests of every plan that
/// reads a [`CoopmatDevice`]: f16 16x16x16, s8 16x16x32, subgroup 32, 48 KiB shared memory, no
/// NV_cooperative_matrix2 (tests switch its parts on).
#[cfg(test)]
pub(crate) const NVIDIA_TEST: CoopmatDevice = CoopmatDevice {
    f16_16x16x16: true,
    s8_16x16x32: true,
    fp16: true,
    memory_model: true,
    subgroup_size: 32,
    max_shared_memory: 48 * 1024,
    max_workgroup_invocations: 1024,
    cm2: false,
    cm2_decode: false,
    cm2_attention: false,
    cm2_split: 0,
};

#[cfg(test)]
mod tests {
    use super::*;

    const NVIDIA: CoopmatDevice = NVIDIA_TEST;

    /// The H200 with NV_cooperative_matrix2 (driver 580: workgroup scope, block loads).
    const NVIDIA_CM2: CoopmatDevice = CoopmatDevice { cm2: true, cm2_decode: true, ..NVIDIA };

    #[test]
    fn cm16_takes_wide_f16_products_where_the_tile_runs() {
        // From the threshold on, on a device with 16x16x16 f16 fragments, subgroups of 32 and 45 KiB of shared
        // memory, NV_cooperative_matrix2 or not; never below it, with the threshold 0 or on a device without
        // cooperative matrices.
        let n = CM16_MIN_COLS;
        assert!(n > 0);
        assert!(!cm16_takes(&NVIDIA_CM2, 0, 2048));
        assert!(cm16_takes(&NVIDIA_TEST, n, n));
        assert!(cm16_takes(&NVIDIA_CM2, n, 2048));
        assert!(!cm16_takes(&NVIDIA_TEST, n, n - 1));
        assert!(!cm16_takes(&CoopmatDevice { subgroup_size: 64, ..NVIDIA_TEST }, n, 2048));
        assert!(!cm16_takes(&CoopmatDevice { max_shared_memory: 32 << 10, ..NVIDIA_TEST }, n, 2048));
        assert!(!cm16_takes(&CoopmatDevice { f16_16x16x16: false, ..NVIDIA_TEST }, n, 2048));
        // Its loads: offsets, strides and k in multiples of 8 halves.
        let p = MatMulPush { m: 4096, n: 2048, k: 4096, a_row: 4096, b_col: 4096, ..Default::default() };
        assert!(cm16_aligned(&p));
        assert!(!cm16_aligned(&MatMulPush { k: 4100, ..p }));
        assert!(!cm16_aligned(&MatMulPush { k: 0, ..p }));
        assert!(!cm16_aligned(&MatMulPush { b_off: 4, ..p }));
    }

    #[test]
    fn expert_products_take_the_cooperative_kernel_where_enabled() {
        // With `GGVK_COOPMAT_ID` on (the default), for more tokens than the mat-vec kernels take, every type with a
        // cooperative loader, where the tile, its column table and the type's grid tables fit in shared memory.
        let on = |dev: &CoopmatDevice, ty, n| id_kernel(dev, Knob::AUTO, true, ty, n, 128).map(|(s, _)| s.name);
        assert_eq!(id_kernel(&NVIDIA_TEST, Knob::AUTO, false, GgmlType::Q4_0, 512, 128).map(|(s, _)| s.name), None);
        assert_eq!(on(&NVIDIA_TEST, GgmlType::Q4_0, 512), Some("mul_mat_cm_id_q4_0"));
        assert_eq!(on(&NVIDIA_CM2, GgmlType::F16, 9), Some("mul_mat_cm_id_f16"));
        assert_eq!(on(&NVIDIA_TEST, GgmlType::Q4_K, 512), Some("mul_mat_cm_id_q4_k"));
        assert_eq!(on(&NVIDIA_TEST, GgmlType::Q6_K, 512), Some("mul_mat_cm_id_q6_k"));
        assert!(on(&NVIDIA_TEST, GgmlType::Q5_K, 512).is_some_and(|n| n.starts_with("mul_mat_cm_id_dq")));
        assert!(on(&NVIDIA_TEST, GgmlType::IQ4_NL, 512).is_some());
        // IQ1_S's 4 KiB of grid tables do not fit beside the tile and the column table in 48 KiB.
        assert_eq!(on(&NVIDIA_TEST, GgmlType::IQ1_S, 512), None);
        assert_eq!(on(&NVIDIA_TEST, GgmlType::F32, 512), None);
        assert_eq!(on(&NVIDIA_TEST, GgmlType::BF16, 512), None);
        assert_eq!(on(&NVIDIA_TEST, GgmlType::Q4_0, MATVEC_MAX_COLS), None);
        let off = Knob { mode: Mode::Off, ..Knob::AUTO };
        assert_eq!(id_kernel(&NVIDIA_TEST, off, true, GgmlType::Q4_0, 512, 128).map(|(s, _)| s.name), None);
        assert_eq!(on(&CoopmatDevice { f16_16x16x16: false, ..NVIDIA_TEST }, GgmlType::Q4_0, 512), None);
        // 64-column tiles (the default) for every type, the generic loader too.
        let narrow = |ty| id_kernel(&NVIDIA_TEST, Knob::AUTO, true, ty, 512, 64).map(|(s, bn)| (s.name, bn));
        assert_eq!(narrow(GgmlType::Q4_K), Some(("mul_mat_cm_id64_q4_k", 64)));
        assert_eq!(narrow(GgmlType::F16), Some(("mul_mat_cm_id64_f16", 64)));
        assert!(narrow(GgmlType::Q5_K).is_some_and(|(n, bn)| n.starts_with("mul_mat_cm_id64_dq") && bn == 64));
        // Q4_K blocks on 16-byte boundaries take the wide loader, in either tile.
        let (q4k, _) = id_kernel(&NVIDIA_TEST, Knob::AUTO, true, GgmlType::Q4_K, 512, 64).unwrap();
        assert_eq!(id_wide_variant(&q4k, true).name, "mul_mat_cm_id64_q4_k_vec");
        assert_eq!(id_wide_variant(&q4k, false).name, "mul_mat_cm_id64_q4_k");
        let (q6k, _) = id_kernel(&NVIDIA_TEST, Knob::AUTO, true, GgmlType::Q6_K, 512, 128).unwrap();
        assert_eq!(id_wide_variant(&q6k, true).name, "mul_mat_cm_id_q6_k");
    }

    #[test]
    fn gate_and_up_take_the_glu_kernel_of_their_products() {
        // mul_mat_cm16.comp's FUSE_GLU from its threshold on, NV_cooperative_matrix2 or not; below it (or with it
        // off) NV_cooperative_matrix2's where the device has it and the driver lists the tile; nothing for the
        // mat-vec widths, without cooperative matrices or with them off.
        let cm2 = Some(TILE_CM2_GLU);
        let min = CM16_MIN_COLS;
        assert_eq!(glu_kernel(&NVIDIA_CM2, Knob::AUTO, min, cm2, 2048), Some(GluKernel::Cm16));
        assert_eq!(glu_kernel(&NVIDIA_TEST, Knob::AUTO, min, None, min), Some(GluKernel::Cm16));
        assert_eq!(glu_kernel(&NVIDIA_CM2, Knob::AUTO, min, cm2, min - 1), Some(GluKernel::Cm2(TILE_CM2_GLU)));
        assert_eq!(glu_kernel(&NVIDIA_CM2, Knob::AUTO, 0, cm2, 2048), Some(GluKernel::Cm2(TILE_CM2_GLU)));
        assert_eq!(glu_kernel(&NVIDIA_CM2, Knob::AUTO, min, None, min - 1), None);
        assert_eq!(glu_kernel(&NVIDIA_TEST, Knob::AUTO, min, cm2, min - 1), None);
        assert_eq!(glu_kernel(&NVIDIA_CM2, Knob::AUTO, min, cm2, MATVEC_MAX_COLS), None);
        let off = Knob { mode: Mode::Off, ..Knob::AUTO };
        assert_eq!(glu_kernel(&NVIDIA_CM2, off, min, cm2, 2048), None);
        let no_coopmat = CoopmatDevice { f16_16x16x16: false, cm2: false, ..NVIDIA_TEST };
        assert_eq!(glu_kernel(&no_coopmat, Knob::AUTO, min, None, 2048), None);
    }

    #[test]
    fn cooperative_matrix2_takes_f16_and_k_quants_where_enabled() {
        for (ty, name) in [
            (GgmlType::F16, "mul_mat_cm2_f16"),
            (GgmlType::Q4_K, "mul_mat_cm2_q4_k"),
            (GgmlType::Q5_K, "mul_mat_cm2_q5_k"),
            (GgmlType::Q6_K, "mul_mat_cm2_q6_k"),
            (GgmlType::Q8_0, "mul_mat_cm2_q8_0"),
        ] {
            let (shader, tile) = plan(&NVIDIA_CM2, Knob::AUTO, ty, ty == GgmlType::Q8_0, 512).expect("cm2");
            assert_eq!((shader.name, tile), (name, TILE_CM2));
            assert!(!tile.b_q8 && tile.cm2);
            assert!(!shader.spirv.is_empty() || cfg!(not(feature = "shaders")), "{name} compiled");
        }
        // The integer kernel, when asked for, wins over cm2 for Q4_0 / Q8_0.
        assert_eq!(plan(&NVIDIA_CM2, Knob::INT8, GgmlType::Q4_0, true, 512).map(|(_, t)| t), Some(TILE_I8));
        // Without block loads only F16 takes it; other types keep the KHR kernel.
        let no_decode = CoopmatDevice { cm2_decode: false, ..NVIDIA_CM2 };
        assert_eq!(plan(&no_decode, Knob::AUTO, GgmlType::F16, false, 512).map(|(_, t)| t), Some(TILE_CM2));
        assert_eq!(plan(&no_decode, Knob::AUTO, GgmlType::Q4_K, false, 512).map(|(_, t)| t), Some(TILE_128));
        // Types without a cm2 decoder (Q4_0: slower there, measured), mat-vec widths and the off switch.
        assert_eq!(plan(&NVIDIA_CM2, Knob::AUTO, GgmlType::Q4_0, true, 512).map(|(_, t)| t), Some(TILE_128));
        assert_eq!(plan(&NVIDIA_CM2, Knob::AUTO, GgmlType::IQ4_XS, false, 512).map(|(_, t)| t), Some(TILE_128));
        assert!(plan(&NVIDIA_CM2, Knob::AUTO, GgmlType::F16, false, MATVEC_MAX_COLS).is_none());
        assert!(plan(&NVIDIA_CM2, Knob::OFF, GgmlType::F16, false, 512).is_none());
    }

    #[test]
    fn q4_k_blocks_on_16_byte_boundaries_take_the_wide_loader() {
        let p = MatMulPush { k: 4096, a_off: 72 * 8, a_row: 72 * 16, b_off: 0, b_col: 4096, ..Default::default() };
        assert_eq!(wide_loads(&p), (true, true));
        assert_eq!(wide_loads(&MatMulPush { a_off: 4, ..p }), (true, false), "A view off a 16-byte boundary");
        assert_eq!(wide_loads(&MatMulPush { b_col: 4100, ..p }), (false, true), "B column stride");
        assert_eq!(wide_loads(&MatMulPush { k: 4100, ..p }), (false, false), "partial k step");
        let q4k = shader_for(GgmlType::Q4_K).unwrap();
        assert_eq!(wide_variant(q4k, GgmlType::Q4_K, true).name, "mul_mat_cm_q4_k_vec");
        assert!(!wide_variant(q4k, GgmlType::Q4_K, true).spirv.is_empty() || cfg!(not(feature = "shaders")));
        assert_eq!(wide_variant(q4k, GgmlType::Q4_K, false).name, "mul_mat_cm_q4_k");
        let q6k = shader_for(GgmlType::Q6_K).unwrap();
        assert_eq!(wide_variant(q6k, GgmlType::Q6_K, true).name, "mul_mat_cm_q6_k");
    }

    #[test]
    fn cooperative_matrix2_needs_aligned_views() {
        let p = MatMulPush { a_off: 8, b_off: 16, d_off: 4, a_s2: 64, b_s2: 64, d_s2: 64, ..Default::default() };
        assert!(cm2_aligned(&p));
        assert!(!cm2_aligned(&MatMulPush { a_off: 4, ..p }));
        assert!(!cm2_aligned(&MatMulPush { b_s2: 12, ..p }));
        assert!(!cm2_aligned(&MatMulPush { d_off: 2, ..p }));
    }

    #[test]
    fn cooperative_matrix2_interior_loop_and_k_quant_tiles() {
        // Rows of 4096 halves / 512 floats: aligned; an odd F16 row stride is not, a quantized one (whole blocks)
        // is; B and dst strides count for every type.
        let p = MatMulPush { a_row: 4096, b_col: 4096, d_col: 512, ..Default::default() };
        assert!(cm2_aligned_rows(&p, GgmlType::F16));
        assert!(!cm2_aligned_rows(&MatMulPush { a_row: 4097, ..p }, GgmlType::F16));
        assert!(cm2_aligned_rows(&MatMulPush { a_row: 4097 * 9, ..p }, GgmlType::Q4_0));
        assert!(!cm2_aligned_rows(&MatMulPush { b_col: 4100, ..p }, GgmlType::Q4_K));
        assert!(!cm2_aligned_rows(&MatMulPush { d_col: 510, ..p }, GgmlType::Q6_K));
        // The K-quants' scale staging: rows and k step dividing 256, 256 invocations.
        assert!(cm2_tile_fits(&TILE_CM2, GgmlType::Q4_K));
        assert!(cm2_tile_fits(&Tile { bm: 64, bk: 32, ..TILE_CM2 }, GgmlType::Q6_K));
        assert!(!cm2_tile_fits(&Tile { bm: 512, ..TILE_CM2 }, GgmlType::Q4_K));
        assert!(!cm2_tile_fits(&Tile { bk: 96, ..TILE_CM2 }, GgmlType::Q6_K));
        assert!(cm2_tile_fits(&Tile { bm: 512, bk: 96, ..TILE_CM2 }, GgmlType::F16));
    }

    #[test]
    fn nvidia_takes_the_cooperative_kernel_for_prompts() {
        for ty in [GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::BF16] {
            // Q4_0 / Q8_0 come with 8-bit activations; by default they still take the f16 kernel over f16 b.
            let q8_b = matches!(ty, GgmlType::Q4_0 | GgmlType::Q8_0);
            let (shader, tile) = plan(&NVIDIA, Knob::AUTO, ty, q8_b, 512).expect("cooperative path");
            assert_eq!(tile, TILE_128);
            assert!(!tile.b_q8);
            assert!(shader.name.starts_with("mul_mat_cm_"), "{}", shader.name);
            assert!(!shader.spirv.is_empty() || cfg!(not(feature = "shaders")), "{} compiled", shader.name);
        }
    }

    #[test]
    fn q4_0_and_q8_0_take_the_integer_kernel_when_asked_where_s8_fragments_exist() {
        for (ty, name) in [(GgmlType::Q4_0, "mul_mat_cmq_q4_0"), (GgmlType::Q8_0, "mul_mat_cmq_q8_0")] {
            let (shader, tile) = plan(&NVIDIA, Knob::INT8, ty, true, 512).expect("integer kernel");
            assert_eq!((shader.name, tile), (name, TILE_I8));
            assert!(tile.b_q8);
            assert!(!shader.spirv.is_empty() || cfg!(not(feature = "shaders")), "{name} compiled");
        }
        // Without 8-bit activations, or without s8 fragments, the f16 kernel.
        assert_eq!(plan(&NVIDIA, Knob::INT8, GgmlType::Q4_0, false, 512).map(|(_, t)| t), Some(TILE_128));
        let no_s8 = CoopmatDevice { s8_16x16x32: false, ..NVIDIA };
        assert_eq!(plan(&no_s8, Knob::INT8, GgmlType::Q8_0, true, 512).map(|(_, t)| t), Some(TILE_128));
        assert!(!no_s8.runs(&TILE_I8) && no_s8.runs(&TILE_128));
        // Mat-vec widths stay on the mat-vec kernels.
        assert!(plan(&NVIDIA, Knob::INT8, GgmlType::Q4_0, true, MATVEC_MAX_COLS).is_none());
    }

    #[test]
    fn decode_widths_and_f32_weights_stay_off() {
        assert!(plan(&NVIDIA, Knob::AUTO, GgmlType::Q4_0, false, MATVEC_MAX_COLS).is_none());
        assert!(plan(&NVIDIA, Knob::AUTO, GgmlType::Q4_0, false, MATVEC_MAX_COLS + 1).is_some());
        for ty in [GgmlType::F16, GgmlType::BF16, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q4_1] {
            assert!(plan(&NVIDIA, Knob::AUTO, ty, false, 512).is_some(), "{}", ty.name());
        }
        assert!(plan(&NVIDIA, Knob::AUTO, GgmlType::F32, false, 512).is_none());
        assert!(plan(&NVIDIA, Knob::OFF, GgmlType::F16, false, 512).is_none());
    }

    #[test]
    fn grid_tables_count_against_the_shared_memory() {
        // IQ1_S's 4 KiB table fits beside the 44 KiB tile in 48 KiB, not in 46 KiB.
        assert!(plan(&NVIDIA, Knob::AUTO, GgmlType::IQ1_S, false, 512).is_some());
        let tight = CoopmatDevice { max_shared_memory: 46 * 1024, ..NVIDIA };
        assert!(plan(&tight, Knob::AUTO, GgmlType::IQ1_S, false, 512).is_none());
        assert!(plan(&tight, Knob::AUTO, GgmlType::Q4_K, false, 512).is_some());
    }

    #[test]
    fn devices_without_the_shape_or_with_other_subgroups_keep_the_scalar_kernel() {
        let lavapipe = CoopmatDevice { f16_16x16x16: false, subgroup_size: 8, max_shared_memory: 32 * 1024, ..NVIDIA };
        assert!(plan(&lavapipe, Knob::AUTO, GgmlType::F16, false, 512).is_none());
        let wave64 = CoopmatDevice { subgroup_size: 64, ..NVIDIA };
        assert!(plan(&wave64, Knob::AUTO, GgmlType::F16, false, 512).is_none());
        let small_shared = CoopmatDevice { max_shared_memory: 16 * 1024, ..NVIDIA };
        assert!(plan(&small_shared, Knob::AUTO, GgmlType::F16, false, 512).is_none());
        let no_fp16 = CoopmatDevice { fp16: false, ..NVIDIA };
        assert!(plan(&no_fp16, Knob::AUTO, GgmlType::F16, false, 512).is_none());
        let no_memory_model = CoopmatDevice { memory_model: false, ..NVIDIA };
        assert!(plan(&no_memory_model, Knob::AUTO, GgmlType::F16, false, 512).is_none());
    }

    #[test]
    fn tile_fits_the_declared_shared_memory() {
        // As + Bs (f16, padded rows of 72) and the staging areas (f32): must match mul_mat_cm.comp.
        assert_eq!(TILE_128.shared_bytes, 128 * 72 * 2 * 2 + 8 * 16 * 16 * 4);
        const { assert!(TILE_128.shared_bytes <= 48 * 1024) };
        assert_eq!(TILE_128.wg / TILE_128.subgroup, 8);
        // Codes (uvec4 rows of 80 bytes), scale matrices (f16, 16 x 256), staging: must match mul_mat_cmq.comp.
        assert_eq!(TILE_I8.shared_bytes, 2 * 128 * 80 + 2 * 16 * 256 * 2 + 8 * 256 * 4);
        const { assert!(TILE_I8.shared_bytes <= 48 * 1024) };
    }
}
