//! CPY / CONT / DUP (ggml_cpy, ggml_cont, ggml_dup): element `k` of src0 in its logical order (dim 0
//! innermost) is written to element `k` of dst in dst's logical order, so dst may have another shape with the
//! same number of elements. Types: F32, F16 and BF16 to one another, F32 <-> I32, and the same type for F32, F16,
//! BF16, I16 and I32. Same-type copies move the bits untouched; conversions go as ggml's CPU backend converts:
//! through f32, F32 -> F16 rounding to nearest even (as `half::f16::from_f32`), F32 -> BF16 as GGML_FP32_TO_BF16
//! (nearest even, NaN made quiet), F16 and BF16 -> F32 exactly, I32 -> F32 to nearest even, F32 -> I32 truncated
//! toward zero (C's cast; NaN and values outside the i32 range give INT_MIN, as x86 does). Any strides on both
//! sides. `src[1]` (ggml_cpy's destination source) is not read: the node's dst is the destination.
//!
//! Quantized sides (blocks packed along dim 0, any strides for dims 1..3): F32/F16/BF16 -> Q8_0, Q4_0, Q4_1, Q5_0,
//! Q5_1, IQ4_NL and F32/F16 -> Q1_0, Q2_0, NVFP4 quantize on the GPU exactly like ggml's CPU backend (as SET_ROWS,
//! `shaders/quantize.glsl`),
//! Q8_0/Q4_0 and every other block type with a dequantization include (`shaders/dequant/`) -> F32 dequantizes as
//! ggml does, and any block type of an even byte size (all but MXFP4) -> the same type moves whole blocks.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, check_layout_in, dispatch, pipeline, strided_in};
use super::{bind, dim_u32, spirv, stride_units, window_limit};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Derived, Device, Recorder, Shader};

/// Push constants of `cpy.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CpyPush {
    ne_s: [u32; 4],
    ne_d: [u32; 4],
    st_s: [u32; 4],
    st_d: [u32; 4],
    s_off: u32,
    d_off: u32,
    n: u32,
    pad0: u32,
    s_mode: u32,
    d_mode: u32,
    s_rs: u32,
    d_rs: u32,
}

const PUSH: u32 = std::mem::size_of::<CpyPush>() as u32;
const _: () = assert!(PUSH == 96);

const fn shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 2, push_size: PUSH }
}

/// The copy kernel for `src` -> `dst`: one invocation per element, or (`tiled`) 32 x 32 tiles for transposed
/// sources ([`tiled_dim`]).
fn cpy_shader(src: GgmlType, dst: GgmlType, tiled: bool) -> Option<Shader> {
    use GgmlType::{BF16, F16, F32, I16, I32};
    let pick = |plain: (&'static str, &'static [u8]), t: (&'static str, &'static [u8])| {
        let (name, spirv) = if tiled { t } else { plain };
        shader(name, spirv)
    };
    Some(match (src, dst) {
        (F32, F32) | (I32, I32) => pick(("cpy_32_32", spirv::CPY_32_32), ("cpy_t_32_32", spirv::CPY_T_32_32)),
        (F32, F16) => pick(("cpy_32_16", spirv::CPY_32_16), ("cpy_t_32_16", spirv::CPY_T_32_16)),
        (F16, F32) => pick(("cpy_16_32", spirv::CPY_16_32), ("cpy_t_16_32", spirv::CPY_T_16_32)),
        (F16, F16) | (BF16, BF16) | (I16, I16) => {
            pick(("cpy_16_16", spirv::CPY_16_16), ("cpy_t_16_16", spirv::CPY_T_16_16))
        }
        (BF16, F32) => pick(("cpy_bf16_32", spirv::CPY_BF16_32), ("cpy_t_bf16_32", spirv::CPY_T_BF16_32)),
        (F32, BF16) => pick(("cpy_32_bf16", spirv::CPY_32_BF16), ("cpy_t_32_bf16", spirv::CPY_T_32_BF16)),
        (BF16, F16) => pick(("cpy_bf16_16", spirv::CPY_BF16_16), ("cpy_t_bf16_16", spirv::CPY_T_BF16_16)),
        (F16, BF16) => pick(("cpy_16_bf16", spirv::CPY_16_BF16), ("cpy_t_16_bf16", spirv::CPY_T_16_BF16)),
        (F32, I32) => pick(("cpy_f32_i32", spirv::CPY_F32_I32), ("cpy_t_f32_i32", spirv::CPY_T_F32_I32)),
        (I32, F32) => pick(("cpy_i32_f32", spirv::CPY_I32_F32), ("cpy_t_i32_f32", spirv::CPY_T_I32_F32)),
        _ => return None,
    })
}

/// Invocations of a tiled copy's workgroup (`cpy.comp` TILED: 32 x 32 tiles, four values per invocation).
const TILED_WG: u32 = 256;

/// The dim `t` (1..3) along which a transposed source is packed, when the copy takes the tiled kernel: source
/// and dst of the same shape, dst rows packed (dim-0 stride 1), the source's dim 0 strided and its dim `t` packed
/// (stride 1, more than one element), and the tile grid within the device's workgroup counts.
/// `GGVK_CPY_TILED=0` keeps the one-element-per-invocation kernel (read once per process).
fn tiled_dim(device: &Device, s: &super::binary::Strided, d: &super::binary::Strided) -> Option<usize> {
    static KNOB: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*KNOB.get_or_init(|| crate::knobs::switch("GGVK_CPY_TILED", true)) {
        return None;
    }
    plan_tiled(s.ne, s.s, d.ne, d.s, device.caps().max_workgroup_count, device.caps().max_workgroup_invocations)
        .map(|(t, _)| t)
}

/// [`tiled_dim`]'s decision from shapes and strides (in elements), with the workgroup grid it dispatches.
fn plan_tiled(
    ne_s: [u32; 4],
    st_s: [u32; 4],
    ne_d: [u32; 4],
    st_d: [u32; 4],
    max_groups: [u32; 3],
    max_invocations: u32,
) -> Option<(usize, [u32; 3])> {
    if ne_s != ne_d || ne_s[0] < 2 || st_s[0] == 1 || st_d[0] != 1 || max_invocations < TILED_WG {
        return None;
    }
    let t = (1..4).find(|&t| ne_s[t] > 1 && st_s[t] == 1)?;
    let others: Vec<u64> = (1..4).filter(|&o| o != t).map(|o| u64::from(ne_s[o])).collect();
    let groups = [ne_s[0].div_ceil(32), ne_s[t].div_ceil(32), u32::try_from(others[0] * others[1]).ok()?];
    (groups.iter().zip(max_groups).all(|(&g, m)| g >= 1 && g <= m)).then_some((t, groups))
}

/// Bytes per element of the unblocked types `cpy.comp` addresses.
fn elem_bytes(ty: GgmlType) -> Option<u64> {
    match ty {
        GgmlType::F32 | GgmlType::I32 => Some(4),
        GgmlType::F16 | GgmlType::BF16 | GgmlType::I16 => Some(2),
        _ => None,
    }
}

/// Push constants of `cpy_q.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct CpyQPush {
    ne_s: [u32; 4],
    ne_d: [u32; 4],
    st_s: [u32; 4],
    st_d: [u32; 4],
    s_off: u32,
    d_off: u32,
    n: u32,
    pad0: u32,
}

const PUSH_Q: u32 = std::mem::size_of::<CpyQPush>() as u32;
const _: () = assert!(PUSH_Q == 80);

/// The `cpy_q.comp` kernel for a copy with a quantized side.
fn cpy_q_shader(src: GgmlType, dst: GgmlType) -> Option<Shader> {
    use GgmlType::{BF16, F16, F32, IQ4_NL, NVFP4, Q1_0, Q2_0, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};
    let sh = |name, spirv| Shader { name, spirv, bindings: 2, push_size: PUSH_Q };
    Some(match (src, dst) {
        (F32, Q8_0) => sh("cpy_f32_q8_0", spirv::CPY_F32_Q8_0),
        (F32, Q4_0) => sh("cpy_f32_q4_0", spirv::CPY_F32_Q4_0),
        (F16, Q8_0) => sh("cpy_f16_q8_0", spirv::CPY_F16_Q8_0),
        (F16, Q4_0) => sh("cpy_f16_q4_0", spirv::CPY_F16_Q4_0),
        (Q8_0, F32) => sh("cpy_q8_0_f32", spirv::CPY_Q8_0_F32),
        (Q4_0, F32) => sh("cpy_q4_0_f32", spirv::CPY_Q4_0_F32),
        (F32, Q4_1) => sh("cpy_f32_q4_1", spirv::CPY_F32_Q4_1),
        (F32, Q5_0) => sh("cpy_f32_q5_0", spirv::CPY_F32_Q5_0),
        (F32, Q5_1) => sh("cpy_f32_q5_1", spirv::CPY_F32_Q5_1),
        (F32, IQ4_NL) => sh("cpy_f32_iq4_nl", spirv::CPY_F32_IQ4_NL),
        (F16, Q4_1) => sh("cpy_f16_q4_1", spirv::CPY_F16_Q4_1),
        (F16, Q5_0) => sh("cpy_f16_q5_0", spirv::CPY_F16_Q5_0),
        (F16, Q5_1) => sh("cpy_f16_q5_1", spirv::CPY_F16_Q5_1),
        (F16, IQ4_NL) => sh("cpy_f16_iq4_nl", spirv::CPY_F16_IQ4_NL),
        (F32, Q1_0) => sh("cpy_f32_q1_0", spirv::CPY_F32_Q1_0),
        (F32, Q2_0) => sh("cpy_f32_q2_0", spirv::CPY_F32_Q2_0),
        (F32, NVFP4) => sh("cpy_f32_nvfp4", spirv::CPY_F32_NVFP4),
        (F16, Q1_0) => sh("cpy_f16_q1_0", spirv::CPY_F16_Q1_0),
        (F16, Q2_0) => sh("cpy_f16_q2_0", spirv::CPY_F16_Q2_0),
        (F16, NVFP4) => sh("cpy_f16_nvfp4", spirv::CPY_F16_NVFP4),
        (BF16, Q8_0) => sh("cpy_bf16_q8_0", spirv::CPY_BF16_Q8_0),
        (BF16, Q4_0) => sh("cpy_bf16_q4_0", spirv::CPY_BF16_Q4_0),
        (BF16, Q4_1) => sh("cpy_bf16_q4_1", spirv::CPY_BF16_Q4_1),
        (BF16, Q5_0) => sh("cpy_bf16_q5_0", spirv::CPY_BF16_Q5_0),
        (BF16, Q5_1) => sh("cpy_bf16_q5_1", spirv::CPY_BF16_Q5_1),
        (BF16, IQ4_NL) => sh("cpy_bf16_iq4_nl", spirv::CPY_BF16_IQ4_NL),
        // Whole blocks of 16-bit words (spec constants: words and values per block).
        (s, d) if s == d && s.type_size() % 2 == 0 => sh("cpy_blocks", spirv::CPY_BLOCKS),
        // Every other block type with a dequantization include, to F32 (one thread per 4 values).
        (s, F32) if generic_dequant(s) => {
            let (name, spirv) = spirv::dq_module("cpy_dq", s.name())?;
            sh(name, spirv)
        }
        _ => return None,
    })
}

/// Whether a copy from `ty` to F32 takes the generic dequantizing kernel (`cpy_dq_<type>`).
fn generic_dequant(ty: GgmlType) -> bool {
    ty.is_quantized() && !matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0)
}

/// Layout checks of a quantized tensor for `cpy_q.comp`: 16-bit-aligned offset and strides that fit 32 bits
/// in words, shape in 32 bits.
fn check_quant_layout(name: &str, what: &str, t: &Tensor) -> Result<()> {
    if t.offset % 2 != 0 {
        return Err(Error::unsupported(format!("{name}: {what} offset {} is odd", t.offset)));
    }
    for d in 0..4 {
        dim_u32(&format!("{name}: {what} ne[{d}]"), t.ne[d])?;
    }
    dim_u32(&format!("{name}: {what} elements"), t.nelements())?;
    quant_strides(name, t).map(|_| ())
}

/// Strides of dims 1..3 of a quantized tensor in 16-bit words (0 for dims of size 1; dim 0 unused).
fn quant_strides(name: &str, t: &Tensor) -> Result<[u32; 4]> {
    let mut s = [0u32; 4];
    for (d, out) in s.iter_mut().enumerate().skip(1) {
        if t.ne[d] > 1 {
            *out = stride_units(&format!("{name} dim-{d}"), t.nb[d], 2)?;
        }
    }
    Ok(s)
}

/// Record a copy with a quantized side.
fn record_q(rec: &mut Recorder<'_>, a: &Tensor, d: &Tensor) -> Result<()> {
    let shader = cpy_q_shader(a.ty, d.ty).expect("checked");
    let device = rec.device().clone();
    let ne = |t: &Tensor| -> Result<[u32; 4]> {
        Ok([dim_u32("ne0", t.ne[0])?, dim_u32("ne1", t.ne[1])?, dim_u32("ne2", t.ne[2])?, dim_u32("ne3", t.ne[3])?])
    };
    let (sb, s_off, st_s) = if a.ty.is_quantized() {
        let (b, off) = bind(&device, a, 2, false)?;
        (b, off, quant_strides("src0", a)?)
    } else {
        let unit = elem_bytes(a.ty).ok_or_else(|| Error::Internal(format!("cpy of {}", a.ty.name())))?;
        let s = strided_in(&device, a, unit, false, "src0")?;
        (s.binding, s.off, s.s)
    };
    let (db, d_off, st_d) = if d.ty.is_quantized() {
        let (b, off) = bind(&device, d, 2, true)?;
        (b, off, quant_strides("dst", d)?)
    } else {
        let unit = elem_bytes(d.ty).ok_or_else(|| Error::Internal(format!("cpy of {}", d.ty.name())))?;
        let s = strided_in(&device, d, unit, true, "dst")?;
        (s.binding, s.off, s.s)
    };
    // One thread per dst block (quantizing, or moving blocks), per 4 values (the generic dequantizing kernel), else
    // per element (dequantizing Q8_0 / Q4_0).
    let elements = dim_u32("elements", d.nelements())?;
    let n = if d.ty.is_quantized() {
        elements / d.ty.block_size() as u32
    } else if generic_dequant(a.ty) {
        elements / 4
    } else {
        elements
    };
    let push = CpyQPush { ne_s: ne(a)?, ne_d: ne(d)?, st_s, st_d, s_off, d_off, n, pad0: 0 };
    // The block mover's spec constants: 16-bit words and values per block.
    let spec: &[u32] = if a.ty == d.ty { &[a.ty.type_size() as u32 / 2, a.ty.block_size() as u32] } else { &[] };
    let pipeline = pipeline(&device, &shader, spec)?;
    dispatch(rec, "cpy_q", &pipeline, &[sb, db], bytemuck::bytes_of(&push), n)
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let (a, d) = (node.src(0)?, &node.dst);
    if a.nelements() != d.nelements() {
        return Err(Error::invalid(format!(
            "{name}: src0 {:?} has {} elements but dst {:?} has {}",
            a.ne,
            a.nelements(),
            d.ne,
            d.nelements()
        )));
    }
    if a.ty.is_quantized() || d.ty.is_quantized() {
        if cpy_q_shader(a.ty, d.ty).is_none() {
            return Err(Error::unsupported(format!(
                "{name} {} -> {} (quantized copies: f32/f16/bf16 -> q8_0/q4_0/q4_1/q5_0/q5_1/iq4_nl, f32/f16 -> \
                 q1_0/q2_0/nvfp4, any block type with a dequantization include -> f32, or blocks of an even byte size \
                 to the same type)",
                a.ty.name(),
                d.ty.name()
            )));
        }
        let unit = super::matmul::dq_row_multiple(a.ty);
        if d.ty == GgmlType::F32 && generic_dequant(a.ty) && a.ne[0] % unit != 0 {
            return Err(Error::unsupported(format!(
                "{name} from {} needs rows of a multiple of {unit} values, got {}",
                a.ty.name(),
                a.ne[0]
            )));
        }
        for (what, t) in [("src0", a), ("dst", d)] {
            if t.ty.is_quantized() {
                check_quant_layout(name, what, t)?;
            } else {
                let unit = elem_bytes(t.ty)
                    .ok_or_else(|| Error::unsupported(format!("{name}: {what} of type {}", t.ty.name())))?;
                check_layout_in(name, what, t, unit)?;
            }
        }
        return Ok(());
    }
    if cpy_shader(a.ty, d.ty, false).is_none() {
        return Err(Error::unsupported(format!(
            "{name} {} -> {} (supported: f32/f16/bf16 -> f32/f16/bf16, f32 <-> i32, i16 -> i16, i32 -> i32)",
            a.ty.name(),
            d.ty.name()
        )));
    }
    let unit = |t: &Tensor| elem_bytes(t.ty).ok_or_else(|| Error::Internal(format!("cpy of {}", t.ty.name())));
    check_layout_in(name, "src0", a, unit(a)?)?;
    check_layout_in(name, "dst", d, unit(d)?)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ty.is_quantized() || d.ty.is_quantized() {
        return record_q(rec, a, d);
    }
    let device = rec.device().clone();
    let unit = |t: &Tensor| elem_bytes(t.ty).ok_or_else(|| Error::Internal(format!("cpy of {}", t.ty.name())));
    let ss = strided_in(&device, a, unit(a)?, false, "src0")?;
    let sd = strided_in(&device, d, unit(d)?, true, "dst")?;
    let (s_mode, s_rs) = ss.mode();
    let (d_mode, d_rs) = sd.mode();
    let n = dim_u32("elements", d.nelements())?;
    let push = CpyPush {
        ne_s: ss.ne,
        ne_d: sd.ne,
        st_s: ss.s,
        st_d: sd.s,
        s_off: ss.off,
        d_off: sd.off,
        n,
        s_mode,
        d_mode,
        s_rs,
        d_rs,
        ..Default::default()
    };
    if tiled_dim(&device, &ss, &sd).is_some() {
        let caps = device.caps();
        let (t, groups) =
            plan_tiled(ss.ne, ss.s, sd.ne, sd.s, caps.max_workgroup_count, caps.max_workgroup_invocations)
                .ok_or_else(|| Error::Internal("cpy: tiled plan".into()))?;
        let push = CpyPush { pad0: t as u32, ..push };
        let shader = cpy_shader(a.ty, d.ty, true).expect("checked");
        let pipeline = device.pipelines().get(&device, &shader, &[TILED_WG])?;
        return rec.dispatch("cpy_tiled", &pipeline, &[ss.binding, sd.binding], bytemuck::bytes_of(&push), groups);
    }
    let shader = cpy_shader(a.ty, d.ty, false).expect("checked");
    let pipeline = pipeline(&device, &shader, &[])?;
    dispatch(rec, "cpy", &pipeline, &[ss.binding, sd.binding], bytemuck::bytes_of(&push), n)
}

/// What [`f32_operand`] records its copies under (see [`Recorder::find_derived`]).
const WIDEN: &str = "widen_f16";

/// The layout [`f32_operand`] gives an F16 tensor: the same shape, F32, contiguous. For sizing (scratch, storage
/// windows); its buffer and offset are `t`'s and mean nothing.
pub(crate) fn widened_view(t: &Tensor) -> Tensor {
    if t.ty != GgmlType::F16 {
        return t.clone();
    }
    let nb = Tensor::contiguous_strides(GgmlType::F32, t.ne).unwrap_or([4, 0, 0, 0]);
    Tensor { ty: GgmlType::F32, nb, ..t.clone() }
}

/// Scratch bytes [`f32_operand`] takes for `t` on `device` (0 for F32; rounded up to the scratch alignment).
pub(crate) fn widened_bytes(device: &Device, t: &Tensor) -> u64 {
    if t.ty != GgmlType::F16 {
        return 0;
    }
    let align = device.caps().min_storage_offset_alignment.max(256);
    (t.nelements().max(0) as u64 * 4).div_ceil(align) * align
}

/// Whether [`f32_operand`] takes `t` on `device`: F32 as it is; F16 when this copy kernel takes its layout and the
/// F32 copy fits one storage window.
pub(crate) fn check_f32_operand(device: &Device, op: &str, t: &Tensor) -> Result<()> {
    match t.ty {
        GgmlType::F32 => Ok(()),
        GgmlType::F16 => {
            check_layout(op, "src1", t)?;
            let bytes = widened_view(t).nbytes();
            if bytes > window_limit(device) {
                return Err(Error::unsupported(format!(
                    "{op}: the F32 copy of an F16 src1 ({bytes} bytes) exceeds this device's maxStorageBufferRange"
                )));
            }
            Ok(())
        }
        ty => Err(Error::unsupported(format!("{op}: src1 of type {} (F32 or F16)", ty.name()))),
    }
}

/// `t` as F32 for kernels that read f32 operands: `t` itself when it is F32; an F16 `t` widened (exactly) into a
/// contiguous F32 copy in this submission's scratch by the F16 -> F32 copy kernel, made once per submission for the
/// same bytes and layout (until they are written again).
pub(crate) fn f32_operand(rec: &mut Recorder<'_>, t: &Tensor) -> Result<Tensor> {
    if t.ty == GgmlType::F32 {
        return Ok(t.clone());
    }
    if t.ty != GgmlType::F16 {
        return Err(Error::Internal(format!("f32_operand: {} operand", t.ty.name())));
    }
    let (start, end) = t.byte_range();
    let source = (t.buffer.id(), start, end);
    let layout = (t.ty.raw(), t.ne, t.nb);
    if let Some((read, off)) = rec.find_derived(WIDEN, source, layout) {
        return Tensor::contiguous(read.buffer.clone(), read.offset + u64::from(off) * 4, GgmlType::F32, t.ne);
    }
    let bytes = t.nelements().max(0) as u64 * 4;
    let (scratch, offset) = rec.scratch(bytes)?;
    let out = Tensor::contiguous(scratch, offset, GgmlType::F32, t.ne)?;
    if bytes == 0 {
        return Ok(out);
    }
    record(rec, &Node { op: Op::Cpy, src: vec![Some(t.clone())], dst: out.clone() })?;
    let device = rec.device().clone();
    let (read, off) = bind(&device, &out, 4, false)?;
    rec.add_derived(Derived { kind: WIDEN, source, layout, result: (read, off) });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::plan_tiled;

    const MAX: [u32; 3] = [65535, 65535, 65535];

    #[test]
    fn tiled_plan_takes_transposed_sources_only() {
        // ggml_cont(ggml_transpose(x)) of a [300, 70] f32 x: src ne [70, 300], strides [300, 1].
        assert_eq!(
            plan_tiled([70, 300, 1, 1], [300, 1, 0, 0], [70, 300, 1, 1], [1, 70, 0, 0], MAX, 256),
            Some((1, [3, 10, 1]))
        );
        // Dims 0 and 2 swapped, dim 1 and 3 batched: dim 2 is the packed one.
        assert_eq!(
            plan_tiled([64, 3, 40, 2], [120, 40, 1, 7680], [64, 3, 40, 2], [1, 64, 192, 7680], MAX, 256),
            Some((2, [2, 2, 6]))
        );
        // Packed source rows, a strided dst, a reshape, one-element rows, too small a device: the plain kernel.
        assert_eq!(plan_tiled([70, 300, 1, 1], [1, 70, 0, 0], [70, 300, 1, 1], [1, 70, 0, 0], MAX, 256), None);
        assert_eq!(plan_tiled([70, 300, 1, 1], [300, 1, 0, 0], [70, 300, 1, 1], [300, 1, 0, 0], MAX, 256), None);
        assert_eq!(plan_tiled([70, 300, 1, 1], [300, 1, 0, 0], [21000, 1, 1, 1], [1, 0, 0, 0], MAX, 256), None);
        assert_eq!(plan_tiled([1, 300, 1, 1], [0, 1, 0, 0], [1, 300, 1, 1], [0, 1, 0, 0], MAX, 256), None);
        assert_eq!(plan_tiled([70, 300, 1, 1], [300, 1, 0, 0], [70, 300, 1, 1], [1, 70, 0, 0], MAX, 128), None);
        // No packed dim at all (every stride above 1): the plain kernel.
        assert_eq!(plan_tiled([8, 8, 1, 1], [16, 2, 0, 0], [8, 8, 1, 1], [1, 8, 0, 0], MAX, 256), None);
        // A grid beyond the device's workgroup counts.
        assert_eq!(
            plan_tiled([64, 40, 70000, 1], [40, 1, 2560, 0], [64, 40, 70000, 1], [1, 64, 2560, 0], MAX, 256),
            None
        );
    }
}
