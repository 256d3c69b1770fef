//! IM2COL (ggml_im2col, 1-D and 2-D) and IM2COL_3D (ggml_im2col_3d): the patches a convolution's kernel sees,
//! unfolded into rows of a contiguous dst, zeros where the kernel hangs over the padding. src0 is the kernel
//! (only its shape is used), src1 the image. Types as ggml's CPU backend takes them: F32 -> F32, F32 -> F16
//! (rounded to nearest even), and for IM2COL F16 -> F16. As ggml's CPU backend does, IM2COL reads the image's
//! rows as packed (nb[0] the element size) and, in 2-D, each channel's rows as consecutive (nb[1] = ne[0]
//! elements), with any channel and batch strides; IM2COL_3D takes any strides but a packed dim 0. Everything is
//! one 3-D scheme (`shaders/im2col.comp`; 1-D and 2-D have depth 1): one thread per dst element.

use bytemuck::{Pod, Zeroable};

use super::binary::{dispatch, pipeline};
use super::{bind, dim_u32, spirv, stride_units};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Device, Recorder, Shader};

/// Push constants of `im2col.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Im2ColPush {
    /// Kernel extent: width, height, depth, and `IC * KD * KH * KW` (a dst row).
    k: [u32; 4],
    /// Output extent: width, height, depth, batch.
    o: [u32; 4],
    /// Input extent: width, height, depth, and the element count of dst.
    i: [u32; 4],
    s: [i32; 4],
    p: [i32; 4],
    d: [i32; 4],
    /// src1 strides in elements: width, height, depth, channel.
    st: [u32; 4],
    s_n: u32,
    a_off: u32,
    d_off: u32,
    pad: u32,
}

const PUSH: u32 = std::mem::size_of::<Im2ColPush>() as u32;
const _: () = assert!(PUSH == 128);

fn shader(src: GgmlType, dst: GgmlType) -> Option<Shader> {
    let (name, spirv) = match (src, dst) {
        (GgmlType::F32, GgmlType::F32) => ("im2col_f32", spirv::IM2COL_F32),
        (GgmlType::F32, GgmlType::F16) => ("im2col_f32_f16", spirv::IM2COL_F32_F16),
        (GgmlType::F16, GgmlType::F16) => ("im2col_f16", spirv::IM2COL_F16),
        _ => return None,
    };
    Some(Shader { name, spirv, bindings: 2, push_size: PUSH })
}

/// ggml_calc_conv_output_size; -1 where ggml's arithmetic would overflow or divide by zero.
fn conv_out(ins: i64, ks: i64, s: i32, p: i32, d: i32) -> i64 {
    let reach = i64::from(d).checked_mul(ks - 1).and_then(|r| r.checked_add(1));
    let num = reach.and_then(|r| ins.checked_add(2 * i64::from(p))?.checked_sub(r));
    match num {
        Some(v) if s != 0 => v / i64::from(s) + 1,
        _ => -1,
    }
}

/// The shape of the scheme: kernel (w, h, d, ic), output (w, h, d, n), input (w, h, d), src1 strides in bytes
/// (w, h, d, channel, batch), strides, padding, dilation.
struct Geometry {
    k: [i64; 4],
    o: [i64; 4],
    i: [i64; 3],
    nb: [u64; 5],
    s: [i32; 3],
    p: [i32; 3],
    d: [i32; 3],
}

fn geometry(node: &Node) -> Result<Geometry> {
    let name = node.op.name();
    let (a, b, dst) = (node.src(0)?, node.src(1)?, &node.dst);
    let g = match node.op {
        Op::Im2Col { s, p, d, is_2d } => {
            // 1-D leaves the height's parameters unused (ggml_conv_1d passes zeros).
            let (s, p, d) = if is_2d {
                ([s[0], s[1], 1], [p[0], p[1], 0], [d[0], d[1], 1])
            } else {
                ([s[0], 1, 1], [p[0], 0, 0], [d[0], 1, 1])
            };
            if is_2d {
                if a.ne[2] != b.ne[2] {
                    return Err(Error::invalid(format!("IM2COL: kernel {:?} and image {:?} channels", a.ne, b.ne)));
                }
                // ggml's CPU backend steps through a channel's rows as packed (IW elements apart).
                if b.ne[1] > 1 && b.nb[1] != b.ne[0] as u64 * b.ty.type_size() as u64 {
                    return Err(Error::unsupported("2-D IM2COL of an image whose rows are not consecutive"));
                }
                Geometry {
                    k: [a.ne[0], a.ne[1], 1, b.ne[2]],
                    o: [dst.ne[1], dst.ne[2], 1, b.ne[3]],
                    i: [b.ne[0], b.ne[1], 1],
                    nb: [b.nb[0], b.ne[0] as u64 * b.ty.type_size() as u64, 0, b.nb[2], b.nb[3]],
                    s,
                    p,
                    d,
                }
            } else {
                if a.ne[1] != b.ne[1] || b.ne[3] != 1 {
                    return Err(Error::invalid(format!("1-D IM2COL: kernel {:?}, input {:?}", a.ne, b.ne)));
                }
                Geometry {
                    k: [a.ne[0], 1, 1, b.ne[1]],
                    o: [dst.ne[1], 1, 1, b.ne[2]],
                    i: [b.ne[0], 1, 1],
                    nb: [b.nb[0], 0, 0, b.nb[1], b.nb[2]],
                    s,
                    p,
                    d,
                }
            }
        }
        Op::Im2Col3d { s, p, d, ic } => {
            let ic = i64::from(ic);
            if ic <= 0 {
                return Err(Error::invalid(format!("IM2COL_3D with IC = {ic}: kernel {:?}, input {:?}", a.ne, b.ne)));
            }
            let n = b.ne[3] / ic;
            let od = conv_out(b.ne[2], a.ne[2], s[2], p[2], d[2]);
            Geometry {
                k: [a.ne[0], a.ne[1], a.ne[2], ic],
                o: [dst.ne[1], dst.ne[2], od, n],
                i: [b.ne[0], b.ne[1], b.ne[2]],
                nb: [b.nb[0], b.nb[1], b.nb[2], b.nb[3], b.nb[3].saturating_mul(ic as u64)],
                s,
                p,
                d,
            }
        }
        _ => return Err(Error::Internal(format!("im2col::check called for {name}"))),
    };
    if g.s.iter().any(|&v| v <= 0) || g.d.iter().any(|&v| v <= 0) || g.p.iter().any(|&v| v < 0) {
        return Err(Error::unsupported(format!(
            "{name} with strides {:?}, padding {:?}, dilation {:?}",
            g.s, g.p, g.d
        )));
    }
    Ok(g)
}

/// Whether ggvk supports this node.
pub fn check(node: &Node) -> Result<()> {
    let name = node.op.name();
    let (b, dst) = (node.src(1)?, &node.dst);
    let g = geometry(node)?;
    let fits = (0..3).all(|x| g.o[x] == conv_out(g.i[x], g.k[x], g.s[x], g.p[x], g.d[x]));
    let ktot = g.k.iter().product::<i64>();
    // 1-D puts the batch in dim 2 (same bytes as the scheme's [K, OW, 1, N]).
    let want = match node.op {
        Op::Im2Col { is_2d: false, .. } => [ktot, g.o[0], g.o[3], 1],
        _ => [ktot, g.o[0], g.o[1], g.o[2] * g.o[3]],
    };
    if !fits || dst.ne != want || g.o.iter().chain(g.k.iter()).any(|&v| v <= 0) {
        return Err(Error::invalid(format!(
            "{name}: dst {:?} is not the unfolding of {:?} (want {want:?})",
            dst.ne, b.ne
        )));
    }
    if shader(b.ty, dst.ty).is_none() || (matches!(node.op, Op::Im2Col3d { .. }) && b.ty != GgmlType::F32) {
        return Err(Error::unsupported(format!("{name} of {} -> {}", b.ty.name(), dst.ty.name())));
    }
    if !b.is_row_packed() {
        return Err(Error::unsupported(format!("{name} of an image with element stride {}", b.nb[0])));
    }
    if !dst.is_contiguous() {
        return Err(Error::unsupported(format!("{name} into a non-contiguous dst")));
    }
    dim_u32(&format!("{name} dst elements"), dst.nelements())?;
    // Image coordinates are 32-bit signed in the kernel.
    for x in 0..3 {
        let reach = (g.o[x] - 1)
            .saturating_mul(i64::from(g.s[x]))
            .saturating_add((g.k[x] - 1).saturating_mul(i64::from(g.d[x])));
        if reach > i64::from(i32::MAX) {
            return Err(Error::unsupported(format!("{name}: coordinates up to {reach} do not fit 32 bits")));
        }
    }
    for (x, &v) in g.k.iter().chain(g.o.iter()).chain(g.i.iter()).enumerate() {
        dim_u32(&format!("{name} extent {x}"), v)?;
    }
    let es = b.ty.type_size() as u64;
    if b.offset % es != 0 {
        return Err(Error::unsupported(format!("{name}: image offset {} is not a multiple of {es}", b.offset)));
    }
    for &nb in &g.nb {
        stride_units(&format!("{name} image"), nb, es)?;
    }
    Ok(())
}

fn bound(device: &Device, t: &Tensor, write: bool) -> Result<(crate::vk::Binding, u32)> {
    bind(device, t, t.ty.type_size() as u64, write)
}

/// Record the node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check(node)?;
    let (b, dst) = (node.src(1)?, &node.dst);
    let g = geometry(node)?;
    let device = rec.device().clone();
    let (ab, a_off) = bound(&device, b, false)?;
    let (db, d_off) = bound(&device, dst, true)?;
    let es = b.ty.type_size() as u64;
    let u = |v: i64| v as u32; // dims were checked to fit 32 bits
    let st = |nb: u64| stride_units("image", nb, es);
    let n = dim_u32("elements", dst.nelements())?;
    let push = Im2ColPush {
        k: [u(g.k[0]), u(g.k[1]), u(g.k[2]), u(dst.ne[0])],
        o: g.o.map(u),
        i: [u(g.i[0]), u(g.i[1]), u(g.i[2]), n],
        s: [g.s[0], g.s[1], g.s[2], 0],
        p: [g.p[0], g.p[1], g.p[2], 0],
        d: [g.d[0], g.d[1], g.d[2], 0],
        st: [st(g.nb[0])?, st(g.nb[1])?, st(g.nb[2])?, st(g.nb[3])?],
        s_n: st(g.nb[4])?,
        a_off,
        d_off,
        pad: 0,
    };
    let shader = shader(b.ty, dst.ty).ok_or_else(|| Error::Internal("im2col types".into()))?;
    let pipeline = pipeline(&device, &shader, &[])?;
    dispatch(rec, "im2col", &pipeline, &[ab, db], bytemuck::bytes_of(&push), n)
}
