//! ADD, SUB, MUL and DIV (and ADD1, which the adapter maps to ADD) with ggml's broadcast of src1 over src0 (ggml_can_repeat: each src1 dim divides src0's, element
//! `i` reads src1 at `i % ne1` per dim). Types as ggml's CPU backend takes them: F32 + F32 -> F32,
//! F16 + F16 -> F16, F16 + F32 -> F16, F16 + F32 -> F32 (arithmetic in f32, F16 results rounded to nearest even).
//! Any strides on all three tensors (permuted, transposed, padded views); dst may be src0 itself (in place).
//!
//! Also home of the helpers the elementwise families (binary, unary, glu, cpy) share: strided views with
//! 32-bit element offsets and strides, layout modes, and the linear dispatch.

use bytemuck::{Pod, Zeroable};

use super::{bind, dim_u32, spirv, split_groups, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Binding, Device, Pipeline, Recorder, Shader};

/// Threads per workgroup of the elementwise kernels (one element per thread).
const WG: u32 = 256;

/// Layout modes of a tensor in the elementwise kernels (`MODE_*` in `shaders/elementwise.glsl`).
pub(crate) const MODE_STRIDED: u32 = 0;
/// Packed: element `id` is at `offset + id`.
pub(crate) const MODE_PACKED: u32 = 1;
/// Rows packed along dim 0, rows (dims 1-3 flattened) `rs` elements apart.
pub(crate) const MODE_ROWS: u32 = 2;

/// A tensor as an elementwise kernel addresses it: its binding window, the index of its first element in the
/// window and its strides, all in elements of its type (strides of dims of size 1 are 0).
pub(crate) struct Strided {
    /// The storage-buffer window.
    pub binding: Binding,
    /// First element's index in the window.
    pub off: u32,
    /// Shape.
    pub ne: [u32; 4],
    /// Strides in elements.
    pub s: [u32; 4],
}

impl Strided {
    /// Layout mode and row stride (for [`MODE_ROWS`]) of this view.
    pub fn mode(&self) -> (u32, u32) {
        match row_stride(self.ne, self.s) {
            Some(rs) if self.ne[0] == 1 || self.s[0] == 1 => {
                let rows = u64::from(self.ne[1]) * u64::from(self.ne[2]) * u64::from(self.ne[3]);
                if rows <= 1 || rs == self.ne[0] {
                    (MODE_PACKED, rs)
                } else {
                    (MODE_ROWS, rs)
                }
            }
            _ => (MODE_STRIDED, 0),
        }
    }

    /// Packed in logical order: element `id` is at `off + id`.
    pub fn packed(&self) -> bool {
        self.mode().0 == MODE_PACKED
    }
}

/// The stride between consecutive flattened rows (`i1 + ne1 * (i2 + ne2 * i3)`) if dims 1-3 are laid out as
/// one run of equally spaced rows; `None` otherwise. Dims of size 1 do not count.
fn row_stride(ne: [u32; 4], s: [u32; 4]) -> Option<u32> {
    let mut rs: Option<u64> = None;
    let mut span = 1u64; // rows covered by dims 1..d
    for d in 1..4 {
        if ne[d] > 1 {
            match rs {
                None => rs = Some(u64::from(s[d])),
                Some(r) if u64::from(s[d]) == r * span => {}
                Some(_) => return None,
            }
        }
        span *= u64::from(ne[d]);
    }
    u32::try_from(rs.unwrap_or(0)).ok()
}

/// Element types the elementwise kernels address (one element per 2 or 4 bytes).
fn elem_bytes(ty: GgmlType) -> Option<u64> {
    match ty {
        GgmlType::F32 | GgmlType::I32 => Some(4),
        GgmlType::F16 => Some(2),
        _ => None,
    }
}

/// Device-independent layout checks of one tensor for the 32-bit elementwise kernels: dims, element count,
/// offset and strides (whole elements, fitting 32 bits). The binding window is checked when recording.
pub(crate) fn check_layout(op: &str, what: &str, t: &Tensor) -> Result<()> {
    let unit = elem_bytes(t.ty)
        .ok_or_else(|| Error::unsupported(format!("{op}: {what} of type {} is not supported", t.ty.name())))?;
    check_layout_in(op, what, t, unit)
}

/// [`check_layout`] with the element size given (`unit` bytes), for kernels that move other types as bits.
pub(crate) fn check_layout_in(op: &str, what: &str, t: &Tensor, unit: u64) -> Result<()> {
    for d in 0..4 {
        dim_u32(&format!("{op}: {what} ne[{d}]"), t.ne[d])?;
    }
    if u32::try_from(t.nelements()).is_err() {
        return Err(Error::unsupported(format!(
            "{op}: {what} has {} elements, more than 32-bit indexing allows",
            t.nelements()
        )));
    }
    if t.offset % unit != 0 {
        return Err(Error::unsupported(format!(
            "{op}: {what} offset {} is not a multiple of its {unit}-byte element",
            t.offset
        )));
    }
    for d in 0..4 {
        if t.ne[d] > 1 {
            stride_units(&format!("{op}: {what} dim-{d}"), t.nb[d], unit)?;
        }
    }
    Ok(())
}

/// Bind `t` for an elementwise kernel (after [`check_layout`]).
pub(crate) fn strided(device: &Device, t: &Tensor, write: bool, what: &str) -> Result<Strided> {
    let unit = elem_bytes(t.ty).ok_or_else(|| Error::unsupported(format!("{what} of type {}", t.ty.name())))?;
    strided_in(device, t, unit, write, what)
}

/// [`strided`] with the element size given (`unit` bytes; after [`check_layout_in`]).
pub(crate) fn strided_in(device: &Device, t: &Tensor, unit: u64, write: bool, what: &str) -> Result<Strided> {
    let (binding, off) = bind(device, t, unit, write)?;
    let mut ne = [0u32; 4];
    let mut s = [0u32; 4];
    for d in 0..4 {
        ne[d] = dim_u32(what, t.ne[d])?;
        if t.ne[d] > 1 {
            s[d] = stride_units(&format!("{what} dim-{d}"), t.nb[d], unit)?;
        }
    }
    Ok(Strided { binding, off, ne, s })
}

/// A pipeline of an elementwise kernel (spec constant 0 the workgroup size, then `spec`).
pub(crate) fn pipeline(device: &Device, shader: &Shader, spec: &[u32]) -> Result<std::sync::Arc<Pipeline>> {
    let wg = WG.min(device.caps().max_workgroup_invocations);
    let mut all = vec![wg];
    all.extend_from_slice(spec);
    device.pipelines().get(device, shader, &all)
}

/// Dispatch one thread per element for `n` elements (workgroups split over x and y).
pub(crate) fn dispatch(
    rec: &mut Recorder<'_>,
    label: &str,
    pipeline: &std::sync::Arc<Pipeline>,
    bindings: &[Binding],
    push: &[u8],
    n: u32,
) -> Result<()> {
    let wg = pipeline.spec.first().copied().unwrap_or(WG);
    let caps = rec.device().caps();
    let groups = u64::from(n).div_ceil(u64::from(wg));
    let (gx, gy) = split_groups(groups, caps.max_workgroup_count[0])?;
    if u64::from(gx) * u64::from(gy) * u64::from(wg) > 1 << 32 {
        return Err(Error::unsupported(format!("{label}: {n} elements are too many for 32-bit thread ids")));
    }
    rec.dispatch(label, pipeline, bindings, push, [gx, gy, 1])
}

/// Push constants of `binary.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct BinaryPush {
    ne: [u32; 4],
    ne_b: [u32; 4],
    s_a: [u32; 4],
    s_b: [u32; 4],
    s_d: [u32; 4],
    a_off: u32,
    b_off: u32,
    d_off: u32,
    n: u32,
    mode: u32,
    pad: [u32; 3],
}

const PUSH: u32 = std::mem::size_of::<BinaryPush>() as u32;
const _: () = assert!(PUSH == 112);

const fn shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 3, push_size: PUSH }
}

/// The kernel for (src0, src1, dst) types: ggml's CPU combinations of F32 and F16.
fn binary_shader(a: GgmlType, b: GgmlType, d: GgmlType) -> Option<Shader> {
    use GgmlType::{F16, F32};
    Some(match (a, b, d) {
        (F32, F32, F32) => shader("binary_f32", spirv::BINARY_F32),
        (F16, F16, F16) => shader("binary_f16", spirv::BINARY_F16),
        (F16, F32, F16) => shader("binary_f16_f32_f16", spirv::BINARY_F16_F32_F16),
        (F16, F32, F32) => shader("binary_f16_f32_f32", spirv::BINARY_F16_F32_F32),
        _ => return None,
    })
}

/// ggml_can_repeat(t0, t1): `t1` is a repetition of `t0`.
fn can_repeat(t0: &Tensor, t1: &Tensor) -> bool {
    if t0.nelements() == 0 {
        return t1.nelements() == 0;
    }
    (0..4).all(|d| t0.ne[d] > 0 && t1.ne[d] % t0.ne[d] == 0)
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    if !matches!(node.op, Op::Add | Op::Mul | Op::Sub | Op::Div) {
        return Err(Error::Internal(format!("binary::check called for {name}")));
    }
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    if !can_repeat(b, a) {
        return Err(Error::invalid(format!("{name}: src1 {:?} cannot be repeated to src0 {:?}", b.ne, a.ne)));
    }
    if d.ne != a.ne {
        return Err(Error::invalid(format!("{name}: dst shape {:?} differs from src0 {:?}", d.ne, a.ne)));
    }
    if binary_shader(a.ty, b.ty, d.ty).is_none() {
        return Err(Error::unsupported(format!(
            "{name} with types {} {} -> {} (supported: f32 f32 -> f32, f16 f16 -> f16, f16 f32 -> f16, f16 f32 -> f32)",
            a.ty.name(),
            b.ty.name(),
            d.ty.name()
        )));
    }
    check_layout(name, "src0", a)?;
    check_layout(name, "src1", b)?;
    check_layout(name, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, b, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sb = strided(&device, b, false, "src1")?;
    let sd = strided(&device, d, true, "dst")?;
    let n = dim_u32("elements", d.nelements())?;
    // binary.comp's modes: 1 all packed with one shape, 2 src1 one packed row, 0 general strides.
    let mode = if sa.packed() && sd.packed() && sb.packed() && b.ne == a.ne {
        1
    } else if sa.packed() && sd.packed() && sb.packed() && b.ne[1..] == [1, 1, 1] {
        2
    } else {
        0
    };
    let push = BinaryPush {
        ne: sa.ne,
        ne_b: sb.ne,
        s_a: sa.s,
        s_b: sb.s,
        s_d: sd.s,
        a_off: sa.off,
        b_off: sb.off,
        d_off: sd.off,
        n,
        mode,
        pad: [0; 3],
    };
    let shader = binary_shader(a.ty, b.ty, d.ty).expect("checked");
    let (op, label) = match node.op {
        Op::Mul => (1u32, "mul"),
        Op::Sub => (2, "sub"),
        Op::Div => (3, "div"),
        _ => (0, "add"),
    };
    let pipeline = pipeline(&device, &shader, &[op])?;
    dispatch(rec, label, &pipeline, &[sa.binding, sb.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
