//! UPSCALE (ggml_upscale / ggml_interpolate): src0 (F32) resampled to dst's shape (F32), any strides on both.
//! Dims 0 and 1 by the mode: nearest, bilinear (also with ggml's antialiasing triangle filter) or bicubic
//! (alpha -0.75); dims 2 and 3 always take the nearest source index. ggml's CPU arithmetic: the scale factors
//! `sf = ne / ne_src` in f32 (with align-corners `(ne - 1) / (ne_src - 1)` along dims 0 and 1 when both exceed
//! 1, and a pixel offset of 0 instead of 0.5), source coordinates `(i + offset) / sf - offset`, divisions
//! correctly rounded in the kernel (`shaders/upscale.comp`, one thread per dst element).

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, ScaleMode};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Push constants of `upscale.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct UpscalePush {
    ne: [u32; 4],
    s_d: [u32; 4],
    ne_a: [u32; 4],
    s_a: [u32; 4],
    sf: [f32; 4],
    pixel_offset: f32,
    mode: u32,
    a_off: u32,
    d_off: u32,
    n: u32,
    support0: f32,
    support1: f32,
    invscale0: f32,
    invscale1: f32,
    pad: [u32; 3],
}

const PUSH: u32 = std::mem::size_of::<UpscalePush>() as u32;
const _: () = assert!(PUSH == 128);

/// The kernel's mode code: 0 nearest, 1 bilinear, 2 bicubic, 3 bilinear with antialiasing.
fn mode_code(op: &Op) -> Result<u32> {
    match *op {
        Op::Upscale { mode: ScaleMode::Bilinear, antialias: true, .. } => Ok(3),
        Op::Upscale { antialias: true, mode, .. } => {
            Err(Error::unsupported(format!("UPSCALE with antialiasing in {mode:?} mode (bilinear only)")))
        }
        Op::Upscale { mode: ScaleMode::Nearest, .. } => Ok(0),
        Op::Upscale { mode: ScaleMode::Bilinear, .. } => Ok(1),
        Op::Upscale { mode: ScaleMode::Bicubic, .. } => Ok(2),
        ref other => Err(Error::Internal(format!("upscale::check called for {}", other.name()))),
    }
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    mode_code(&node.op)?;
    let (a, d) = (node.src(0)?, &node.dst);
    if a.ty != GgmlType::F32 || d.ty != GgmlType::F32 {
        return Err(Error::unsupported(format!("UPSCALE of {} -> {} (f32 only)", a.ty.name(), d.ty.name())));
    }
    if a.ne.contains(&0) {
        return Err(Error::invalid("UPSCALE of an empty tensor"));
    }
    // Indices go through f32 in ggml's arithmetic; keep them exact.
    if a.ne.iter().chain(d.ne.iter()).any(|&v| v > 1 << 24) {
        return Err(Error::unsupported("UPSCALE with a dimension over 2^24"));
    }
    check_layout("UPSCALE", "src0", a)?;
    check_layout("UPSCALE", "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let mode = mode_code(&node.op)?;
    let align = matches!(node.op, Op::Upscale { align_corners: true, .. });
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let sa = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
    let n = dim_u32("elements", d.nelements())?;
    let mut sf: [f32; 4] = std::array::from_fn(|i| d.ne[i] as f32 / a.ne[i] as f32);
    let mut pixel_offset = 0.5f32;
    if align {
        pixel_offset = 0.0;
        for (i, f) in sf.iter_mut().enumerate().take(2) {
            if d.ne[i] > 1 && a.ne[i] > 1 {
                *f = (d.ne[i] - 1) as f32 / (a.ne[i] - 1) as f32;
            }
        }
    }
    // ggml: support max(1, 1 / sf), at least one source pixel each side.
    let support = |s: f32| if 1.0 < 1.0 / s { 1.0 / s } else { 1.0 };
    let (support0, support1) = (support(sf[0]), support(sf[1]));
    let push = UpscalePush {
        ne: sd.ne,
        s_d: sd.s,
        ne_a: sa.ne,
        s_a: sa.s,
        sf,
        pixel_offset,
        mode,
        a_off: sa.off,
        d_off: sd.off,
        n,
        support0,
        support1,
        invscale0: 1.0 / support0,
        invscale1: 1.0 / support1,
        pad: [0; 3],
    };
    let shader = Shader { name: "upscale_f32", spirv: spirv::UPSCALE_F32, bindings: 2, push_size: PUSH };
    let pipeline = pipeline(&device, &shader, &[])?;
    dispatch(rec, "upscale", &pipeline, &[sa.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
