//! CONV_TRANSPOSE_1D (ggml_conv_transpose_1d): src0 the kernel `[K, C_out, C_in]` (F32), src1 the input
//! `[L, C_in]` (F32), dst `[(L - 1) * s0 + K, C_out]` (F32); ggml allows padding 0 and dilation 1 only.
//! `dst[x, o] = sum over positions l with 0 <= x - l * s0 < K of (sum over c of src1[l, c] * src0[x - l * s0, o, c])`,
//! in ggml's CPU order: positions ascending, each a dot product over the input channels, in f32. Any strides.
//! One thread per dst element (`shaders/conv_transpose_1d.comp`).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `conv_transpose_1d.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ConvT1dPush {
    /// K, C_out, C_in, L.
    dims: [u32; 4],
    /// Kernel strides (position, output channel, input channel) and the stride s0.
    s_k: [u32; 4],
    /// Input strides (position, channel), dst strides (position, channel).
    s_io: [u32; 4],
    /// Output length, element count, kernel and input offsets.
    out: [u32; 4],
    d_off: u32,
    pad: [u32; 3],
}

const PUSH: u32 = std::mem::size_of::<ConvT1dPush>() as u32;
const _: () = assert!(PUSH == 80);

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let Op::ConvTranspose1d { s0, p0, d0 } = node.op else {
        return Err(Error::Internal(format!("conv::check called for {}", node.op.name())));
    };
    let (k, x, d) = (node.src(0)?, node.src(1)?, &node.dst);
    if [k.ty, x.ty, d.ty] != [GgmlType::F32; 3] {
        return Err(Error::unsupported(format!(
            "CONV_TRANSPOSE_1D of {} and {} -> {} (f32 only)",
            k.ty.name(),
            x.ty.name(),
            d.ty.name()
        )));
    }
    if s0 <= 0 || p0 != 0 || d0 != 1 {
        return Err(Error::unsupported(format!("CONV_TRANSPOSE_1D with s0 {s0}, p0 {p0}, d0 {d0}")));
    }
    if x.ne[2] != 1 || x.ne[3] != 1 || k.ne[3] != 1 || k.ne[2] != x.ne[1] || k.ne[0] == 0 || x.ne[0] == 0 {
        return Err(Error::invalid(format!("CONV_TRANSPOSE_1D: kernel {:?}, input {:?}", k.ne, x.ne)));
    }
    let len = (x.ne[0] - 1).checked_mul(i64::from(s0)).and_then(|v| v.checked_add(k.ne[0]));
    if d.ne != [len.unwrap_or(-1), k.ne[1], 1, 1] {
        return Err(Error::invalid(format!(
            "CONV_TRANSPOSE_1D: dst {:?} for kernel {:?}, input {:?}",
            d.ne, k.ne, x.ne
        )));
    }
    check_layout("CONV_TRANSPOSE_1D", "src0", k)?;
    check_layout("CONV_TRANSPOSE_1D", "src1", x)?;
    check_layout("CONV_TRANSPOSE_1D", "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let Op::ConvTranspose1d { s0, .. } = node.op else {
        return Err(Error::Internal("conv::record".into()));
    };
    let (k, x, d) = (node.src(0)?, node.src(1)?, &node.dst);
    let device = rec.device().clone();
    let sk = strided(&device, k, false, "src0")?;
    let sx = strided(&device, x, false, "src1")?;
    let sd = strided(&device, d, true, "dst")?;
    let n = dim_u32("elements", d.nelements())?;
    let push = ConvT1dPush {
        dims: [sk.ne[0], sk.ne[1], sk.ne[2], sx.ne[0]],
        s_k: [sk.s[0], sk.s[1], sk.s[2], s0 as u32],
        s_io: [sx.s[0], sx.s[1], sd.s[0], sd.s[1]],
        out: [sd.ne[0], n, sk.off, sx.off],
        d_off: sd.off,
        pad: [0; 3],
    };
    let shader = Shader { name: "conv_transpose_1d", spirv: spirv::CONV_TRANSPOSE_1D, bindings: 3, push_size: PUSH };
    let pipeline = pipeline(&device, &shader, &[])?;
    let b = [sk.binding, sx.binding, sd.binding];
    dispatch(rec, "conv_transpose_1d", &pipeline, &b, bytemuck::bytes_of(&push), n)
}
