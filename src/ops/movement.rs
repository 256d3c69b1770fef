//! Data movement: REPEAT (ggml_repeat: src0 tiled to dst's shape), CONCAT (ggml_concat: src0 then src1 along one
//! dim), PAD (ggml_pad_ext: zeros before and after src0 along each dim, or with `circular` the values wrapped
//! around from the other side, ggml_pad_ext_circular), PAD_REFLECT_1D (ggml_pad_reflect_1d: dim 0 padded with
//! its values mirrored about the row's ends), ROLL (ggml_roll: every dim shifted circularly), ARANGE
//! (ggml_arange: `start + step * i`, F32), DIAG (ggml_diag: a row per matrix spread on the diagonal, zeros
//! elsewhere) and REPEAT_BACK (ggml_repeat_back: the sum of src0's tiles, F32, added in ggml's CPU order).
//! REPEAT and CONCAT copy the bits of elements of any type, CONCAT of quantized types too (whole blocks: dims in
//! blocks along dim 0); DIAG any unblocked type; PAD, PAD_REFLECT_1D and ROLL take F32 as ggml's CPU backend does
//! (ROLL writes packed dst rows, as ggml does). An element is moved as 1, 2 or 4-byte words (the widest that its
//! size, the offsets and the strides allow; 1-byte words need 8-bit storage). Sources may have any strides; dst of
//! REPEAT, CONCAT, DIAG and REPEAT_BACK too, PAD and ARANGE write a contiguous dst (as ggml's CPU backend does
//! whatever the view says, so other layouts are declined). One thread per dst element (`shaders/movement.comp`).

use bytemuck::{Pod, Zeroable};

use super::binary::{dispatch, pipeline, Strided};
use super::{bind, dim_u32, spirv, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Push constants of `movement.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MovePush {
    ne: [u32; 4],
    s_d: [u32; 4],
    ne_a: [u32; 4],
    s_a: [u32; 4],
    s_b: [u32; 4],
    lp: [u32; 4],
    d_off: u32,
    a_off: u32,
    b_off: u32,
    n: u32,
    start: f32,
    step: f32,
    pad: [u32; 2],
}

const PUSH: u32 = std::mem::size_of::<MovePush>() as u32;
const _: () = assert!(PUSH == 128);

/// Spec constant OP of `movement.comp` (its `MV_*` codes).
fn code(op: &Op) -> u32 {
    match op {
        Op::Repeat => 0,
        Op::Concat { .. } => 1,
        Op::Pad { circular: false, .. } => 2,
        Op::Pad { circular: true, .. } | Op::Roll { .. } => 3,
        Op::PadReflect1d { .. } => 5,
        Op::Diag => 6,
        Op::RepeatBack => 7,
        _ => 4, // ARANGE
    }
}

/// The word size (4, 2 or 1 bytes) the kernel moves the node's elements in: the widest that divides the element
/// size and every tensor's offset and strides.
fn word_bytes(node: &Node) -> u64 {
    let tensors: Vec<&Tensor> = node.src.iter().flatten().chain(std::iter::once(&node.dst)).collect();
    [4u64, 2]
        .into_iter()
        .find(|&u| {
            tensors.iter().all(|t| {
                t.ty.type_size() as u64 % u == 0
                    && t.offset % u == 0
                    && (0..4).all(|d| t.ne[d] <= 1 || t.nb[d] % u == 0)
            })
        })
        .unwrap_or(1)
}

fn shader(word: u64) -> Shader {
    match word {
        1 => Shader { name: "movement_8", spirv: spirv::MOVEMENT_8, bindings: 3, push_size: PUSH },
        2 => Shader { name: "movement_16", spirv: spirv::MOVEMENT_16, bindings: 3, push_size: PUSH },
        _ => Shader { name: "movement_32", spirv: spirv::MOVEMENT_32, bindings: 3, push_size: PUSH },
    }
}

/// Device-independent layout checks of one tensor moved in `word`-byte words: 32-bit dims (in elements, blocks
/// along dim 0 for quantized types) and word count, whole-word offset and strides that fit 32 bits.
fn check_view(op: &str, what: &str, t: &Tensor, word: u64) -> Result<()> {
    for d in 0..4 {
        dim_u32(&format!("{op}: {what} ne[{d}]"), t.ne[d])?;
    }
    let words = t.nelements() as u64 / t.ty.block_size() as u64 * (t.ty.type_size() as u64 / word);
    if u32::try_from(words).is_err() {
        return Err(Error::unsupported(format!("{op}: {what} has {words} words (32-bit indexing)")));
    }
    if t.offset % word != 0 {
        return Err(Error::unsupported(format!("{op}: {what} offset {} is not a multiple of {word}", t.offset)));
    }
    for d in 0..4 {
        if t.ne[d] > 1 {
            stride_units(&format!("{op}: {what} dim-{d}"), t.nb[d], word)?;
        }
    }
    Ok(())
}

/// Bind `t` (after [`check_view`]): window, first word, shape in elements and strides in words.
fn view(device: &Device, t: &Tensor, word: u64, write: bool, what: &str) -> Result<Strided> {
    let (binding, off) = bind(device, t, word, write)?;
    let mut ne = [0u32; 4];
    let mut s = [0u32; 4];
    for d in 0..4 {
        ne[d] = dim_u32(what, t.ne[d])?;
        if t.ne[d] > 1 {
            s[d] = stride_units(&format!("{what} dim-{d}"), t.nb[d], word)?;
        }
    }
    ne[0] /= t.ty.block_size() as u32;
    Ok(Strided { binding, off, ne, s })
}

/// ggml_arange's element count: `ceilf((stop - start) / step)` in f32.
fn arange_steps(start: f32, stop: f32, step: f32) -> f32 {
    ((stop - start) / step).ceil()
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let d = &node.dst;
    let word = word_bytes(node);
    match &node.op {
        Op::Repeat => {
            let a = node.src(0)?;
            if a.ty != d.ty {
                return Err(Error::invalid(format!("REPEAT: dst {} differs from src0 {}", d.ty.name(), a.ty.name())));
            }
            // ggml_can_repeat(src0, dst).
            if (0..4).any(|i| a.ne[i] == 0 || d.ne[i] % a.ne[i] != 0) {
                return Err(Error::invalid(format!("REPEAT: src0 {:?} does not tile dst {:?}", a.ne, d.ne)));
            }
            check_view(name, "src0", a, word)?;
        }
        Op::Concat { dim } => {
            let (a, b) = (node.src(0)?, node.src(1)?);
            let dim = usize::try_from(*dim)
                .ok()
                .filter(|&x| x < 4)
                .ok_or_else(|| Error::invalid(format!("CONCAT along dim {dim}")))?;
            if a.ty != d.ty || b.ty != d.ty {
                return Err(Error::unsupported(format!(
                    "CONCAT of {} and {} into {} (one type only)",
                    a.ty.name(),
                    b.ty.name(),
                    d.ty.name()
                )));
            }
            for i in 0..4 {
                let want = if i == dim { a.ne[i].checked_add(b.ne[i]) } else { Some(a.ne[i]) };
                if want != Some(d.ne[i]) || (i != dim && b.ne[i] != a.ne[i]) {
                    return Err(Error::invalid(format!(
                        "CONCAT along dim {dim}: src0 {:?}, src1 {:?}, dst {:?}",
                        a.ne, b.ne, d.ne
                    )));
                }
            }
            check_view(name, "src0", a, word)?;
            check_view(name, "src1", b, word)?;
        }
        Op::Pad { lp, rp, circular } => {
            let a = node.src(0)?;
            if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
                return Err(Error::unsupported(format!("PAD of {} -> {} (f32 only)", a.ty.name(), d.ty.name())));
            }
            if lp.iter().chain(rp.iter()).any(|&p| p < 0) {
                return Err(Error::unsupported(format!("PAD with negative padding {lp:?} {rp:?}")));
            }
            for i in 0..4 {
                if Some(d.ne[i]) != a.ne[i].checked_add(i64::from(lp[i]) + i64::from(rp[i])) {
                    return Err(Error::invalid(format!(
                        "PAD: dst {:?} is not src0 {:?} padded by {lp:?} {rp:?}",
                        d.ne, a.ne
                    )));
                }
            }
            if a.nelements() == 0 {
                return Err(Error::unsupported("PAD of an empty tensor"));
            }
            // ggml wraps with (i - lp + ne) % ne: a left padding wider than the source has no defined value.
            if *circular && (0..4).any(|i| i64::from(lp[i]) > a.ne[i]) {
                return Err(Error::unsupported(format!(
                    "circular PAD with a left padding {lp:?} wider than src0 {:?}",
                    a.ne
                )));
            }
            if !d.is_contiguous() {
                return Err(Error::unsupported("PAD into a non-contiguous dst"));
            }
            check_view(name, "src0", a, word)?;
        }
        Op::PadReflect1d { p0, p1 } => {
            let a = node.src(0)?;
            if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
                return Err(Error::unsupported(format!("PAD_REFLECT_1D of {} (f32 only)", a.ty.name())));
            }
            // ggml: 0 <= p < ne0 on both sides.
            if *p0 < 0 || *p1 < 0 || i64::from(*p0) >= a.ne[0] || i64::from(*p1) >= a.ne[0] {
                return Err(Error::invalid(format!("PAD_REFLECT_1D by {p0}, {p1} of rows of {}", a.ne[0])));
            }
            let want = [a.ne[0] + i64::from(*p0) + i64::from(*p1), a.ne[1], a.ne[2], a.ne[3]];
            if d.ne != want {
                return Err(Error::invalid(format!("PAD_REFLECT_1D: dst {:?}, want {want:?}", d.ne)));
            }
            check_view(name, "src0", a, word)?;
        }
        Op::Roll { shift } => {
            let a = node.src(0)?;
            if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
                return Err(Error::unsupported(format!("ROLL of {} (f32 only)", a.ty.name())));
            }
            if d.ne != a.ne || (0..4).any(|i| i64::from(shift[i]).abs() >= a.ne[i]) {
                return Err(Error::invalid(format!("ROLL by {shift:?}: src0 {:?}, dst {:?}", a.ne, d.ne)));
            }
            if !d.is_row_packed() {
                return Err(Error::unsupported("ROLL into a dst whose rows are not packed"));
            }
            check_view(name, "src0", a, word)?;
        }
        Op::Arange { start, stop, step } => {
            if d.ty != GgmlType::F32 {
                return Err(Error::unsupported(format!("ARANGE into {} (f32 only)", d.ty.name())));
            }
            let steps = arange_steps(*start, *stop, *step);
            if !(steps.is_finite() && steps as i64 == d.nelements() && d.is_contiguous()) {
                return Err(Error::invalid(format!(
                    "ARANGE({start}, {stop}, {step}) into a {:?} tensor (wants {steps} contiguous values)",
                    d.ne
                )));
            }
        }
        Op::Diag => {
            let a = node.src(0)?;
            if a.ty != d.ty || a.ty.is_quantized() {
                return Err(Error::unsupported(format!("DIAG of {} -> {}", a.ty.name(), d.ty.name())));
            }
            if a.ne[1] != 1 || d.ne != [a.ne[0], a.ne[0], a.ne[2], a.ne[3]] {
                return Err(Error::invalid(format!("DIAG: src0 {:?}, dst {:?}", a.ne, d.ne)));
            }
            check_view(name, "src0", a, word)?;
        }
        Op::RepeatBack => {
            let a = node.src(0)?;
            if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
                return Err(Error::unsupported(format!(
                    "REPEAT_BACK of {} -> {} (f32 only)",
                    a.ty.name(),
                    d.ty.name()
                )));
            }
            // ggml_can_repeat(dst, src0).
            if (0..4).any(|i| d.ne[i] == 0 || a.ne[i] % d.ne[i] != 0) {
                return Err(Error::invalid(format!("REPEAT_BACK: dst {:?} does not tile src0 {:?}", d.ne, a.ne)));
            }
            check_view(name, "src0", a, word)?;
        }
        other => return Err(Error::Internal(format!("movement::check called for {}", other.name()))),
    }
    if matches!(node.op, Op::Repeat | Op::Concat { .. } | Op::Diag) {
        // Bits of any element: a word size must fit (checked by the views); dst is checked below.
    } else if word != 4 {
        return Err(Error::unsupported(format!("{name}: f32 tensors with offsets or strides not multiples of 4")));
    }
    check_view(name, "dst", d, word)
}

/// [`check`] on `device`: 1-byte words need 8-bit storage and 8-bit integers.
pub fn check_on(device: &Device, node: &Node) -> Result<()> {
    check(node)?;
    let caps = device.caps();
    if word_bytes(node) == 1 && !(caps.storage_8bit && caps.int8) {
        return Err(Error::unsupported(format!(
            "{} of {} on a device without 8-bit storage",
            node.op.name(),
            node.dst.ty.name()
        )));
    }
    Ok(())
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    let device = rec.device().clone();
    check_on(&device, node)?;
    let d = &node.dst;
    let word = word_bytes(node);
    let sd = view(&device, d, word, true, "dst")?;
    let n = dim_u32("elements", d.nelements() / d.ty.block_size() as i64)?;
    let mut push = MovePush { ne: sd.ne, s_d: sd.s, d_off: sd.off, n, ..Default::default() };
    // Unused bindings get a source (or dst, for ARANGE) read-only: every slot must hold a buffer.
    let (sa, sb) = match &node.op {
        Op::Arange { start, step, .. } => {
            push.start = *start;
            push.step = *step;
            (view(&device, d, word, false, "dst")?, view(&device, d, word, false, "dst")?)
        }
        Op::Concat { dim } => {
            let sa = view(&device, node.src(0)?, word, false, "src0")?;
            let sb = view(&device, node.src(1)?, word, false, "src1")?;
            push.lp = [*dim as u32, 0, 0, 0];
            (sa, sb)
        }
        op => {
            match op {
                Op::Pad { lp, .. } => push.lp = lp.map(|p| p as u32),
                Op::PadReflect1d { p0, .. } => push.lp = [*p0 as u32, 0, 0, 0],
                // dst[i] = src0[(i - shift) mod ne]: the circular pad's formula with lp = shift in [0, ne).
                Op::Roll { shift } => {
                    push.lp = std::array::from_fn(|i| i64::from(shift[i]).rem_euclid(d.ne[i].max(1)) as u32)
                }
                _ => {}
            }
            let a = node.src(0)?;
            (view(&device, a, word, false, "src0")?, view(&device, a, word, false, "src0")?)
        }
    };
    push.ne_a = sa.ne;
    push.s_a = sa.s;
    push.a_off = sa.off;
    push.s_b = sb.s;
    push.b_off = sb.off;
    let words = (d.ty.type_size() as u64 / word) as u32;
    let pipeline = pipeline(&device, &shader(word), &[code(&node.op), words])?;
    let label = match node.op {
        Op::Repeat => "repeat",
        Op::Concat { .. } => "concat",
        Op::Pad { .. } => "pad",
        Op::PadReflect1d { .. } => "pad_reflect_1d",
        Op::Roll { .. } => "roll",
        Op::Diag => "diag",
        Op::RepeatBack => "repeat_back",
        _ => "arange",
    };
    dispatch(rec, label, &pipeline, &[sa.binding, sb.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
