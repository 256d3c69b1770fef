//! CPY / CONT / DUP (ggml_cpy, ggml_cont, ggml_dup): element `k` of src0 in its logical order (dim 0
//! innermost) is written to element `k` of dst in dst's logical order, so dst may have another shape with the
//! same number of elements. Types: F32 -> F32, F32 -> F16, F16 -> F32, F16 -> F16, I32 -> I32. Same-type
//! copies move the bits untouched; F32 -> F16 rounds to nearest even exactly as ggml's CPU conversion (and
//! `half::f16::from_f32`), F16 -> F32 is exact. Any strides on both sides. `src[1]` (ggml_cpy's destination
//! source) is not read: the node's dst is the destination.

use bytemuck::{Pod, Zeroable};

use super::binary::{check_layout, dispatch, pipeline, strided};
use super::{dim_u32, spirv};
use crate::error::{Error, Result};
use crate::graph::Node;
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

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

fn cpy_shader(src: GgmlType, dst: GgmlType) -> Option<Shader> {
    use GgmlType::{F16, F32, I32};
    Some(match (src, dst) {
        (F32, F32) | (I32, I32) => shader("cpy_32_32", spirv::CPY_32_32),
        (F32, F16) => shader("cpy_32_16", spirv::CPY_32_16),
        (F16, F32) => shader("cpy_16_32", spirv::CPY_16_32),
        (F16, F16) => shader("cpy_16_16", spirv::CPY_16_16),
        _ => return None,
    })
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
    if cpy_shader(a.ty, d.ty).is_none() {
        return Err(Error::unsupported(format!(
            "{name} {} -> {} (supported: f32/f16 -> f32/f16, i32 -> i32)",
            a.ty.name(),
            d.ty.name()
        )));
    }
    check_layout(name, "src0", a)?;
    check_layout(name, "dst", d)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (a, d) = (node.src(0)?, &node.dst);
    let device = rec.device().clone();
    let ss = strided(&device, a, false, "src0")?;
    let sd = strided(&device, d, true, "dst")?;
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
    let shader = cpy_shader(a.ty, d.ty).expect("checked");
    let pipeline = pipeline(&device, &shader, &[])?;
    dispatch(rec, "cpy", &pipeline, &[ss.binding, sd.binding], bytemuck::bytes_of(&push), n)
}
