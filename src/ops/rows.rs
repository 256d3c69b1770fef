//! GET_ROWS (ggml_get_rows) and SET_ROWS (ggml_set_rows).
//!
//! GET_ROWS: src0 `[ne00, ne01, ne02, ne03]` F32, F16, Q4_0, Q8_0 or any type with a dequantization include
//! `shaders/dequant/<type>.glsl` (Q4_1, Q5_0, Q5_1, BF16, ...; rows of a multiple of 4 values) (dst F32, dequantized
//! on the GPU), or I32 (dst I32); src1 I32 indices `[n, ne11 = ne02, ne12 = ne03, 1]`; dst `[ne00, n, ne11, ne12]`:
//! `dst[:, i10, i11, i12] = src0[:, src1[i10, i11, i12], i11, i12]`. An index outside `[0, ne01)` (ggml asserts)
//! gives a row of zeros here.
//!
//! SET_ROWS: src0 the rows, F32 or F16 `[ne00, ne01, ne02, ne03]`; src1 I64 or I32 indices `[ne01, ne11, ne12, 1]`
//! with `ne02 % ne11 == 0` and `ne03 % ne12 == 0`; dst `[ne00, ne1, ne02, ne03]` (ggml's src2 `a`, which dst
//! views, is not read): `dst[:, src1[i, i02 % ne11, i03 % ne12], i02, i03] = src0[:, i, i02, i03]`, converted
//! (f32 -> f16 rounds to nearest even, bit-exact with `half::f16::from_f32`; f32 -> bf16 as ggml's
//! `GGML_FP32_TO_BF16`). An index outside `[0, ne1)` writes nothing. Repeated indices race (one of the rows
//! lands, as on ggml's CPU backend with several threads). Destinations: every K/V cache type llama.cpp offers
//! (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), and Q1_0, Q2_0, NVFP4. Quantized rows are quantized on the GPU block by block
//! exactly as ggml's CPU backend does (Q8_0: its x86 `quantize_row_q8_0`, 127 / amax and round half to even; the
//! others: `quantize_row_<type>_ref`); see `shaders/quantize.glsl`. A cache write that ggvk declined would abort
//! llama.cpp (the cache lives in GGVK's buffer, so ggml's scheduler cannot move the write), hence the full list.
//!
//! Both: rows packed (`nb[0]` = element or block size) in src0 and dst, any other strides; indices any strides.

use bytemuck::{Pod, Zeroable};

use super::norm::{elem_stride, row_strides};
use super::{bind, dim_u32, spirv, split_groups};
use crate::error::{Error, Result};
use crate::ir::{Node, Op, Tensor};
use crate::quant::GgmlType;
use crate::vk::{Recorder, Shader};

/// Threads per workgroup of `get_rows.comp` and `set_rows.comp` (their `WG`).
const WG: u64 = 256;

/// Push constants of `get_rows.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GetRowsPush {
    ne00: u32,
    ne01: u32,
    ne10: u32,
    ne11: u32,
    /// src0 first element and strides of dims 1..3 (32-bit words for F32/I32, else 16-bit words).
    a_off: u32,
    a_s: [u32; 3],
    /// Indices first element and strides of dims 0..2 (32-bit words).
    i_off: u32,
    i_s: [u32; 3],
    /// dst first element and strides of dims 1..3 (32-bit words).
    d_off: u32,
    d_s: [u32; 3],
    /// dst rows (ne10 * ne11 * ne12).
    rows: u32,
    pad: [u32; 3],
}

/// Push constants of `set_rows.comp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SetRowsPush {
    ne00: u32,
    ne01: u32,
    ne02: u32,
    /// dst rows per batch (the index bound).
    ne1: u32,
    /// src0 first element and strides of dims 1..3 (its element units).
    a_off: u32,
    a_s: [u32; 3],
    /// Indices first element and strides of dims 0..2 (32-bit words, also for I64).
    i_off: u32,
    i_s: [u32; 3],
    /// dst first element and strides of dims 1..3 (its element units).
    d_off: u32,
    d_s: [u32; 3],
    /// src0 rows (ne01 * ne02 * ne03).
    rows: u32,
    ne11: u32,
    ne12: u32,
    /// Bit 0: indices are I64 (else I32). Bit 1 (set_rows.comp only): short rows packed into workgroups.
    idx64: u32,
    /// The TILE variants of set_rows.comp: a batch's one-value rows taken as a matrix of this many columns.
    period: u32,
    pad: [u32; 3],
}

const GET_PUSH: u32 = std::mem::size_of::<GetRowsPush>() as u32;
const SET_PUSH: u32 = std::mem::size_of::<SetRowsPush>() as u32;
const _: () = assert!(GET_PUSH == 80 && SET_PUSH == 96);

const fn get_shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 3, push_size: GET_PUSH }
}

const fn set_shader(name: &'static str, spirv: &'static [u8]) -> Shader {
    Shader { name, spirv, bindings: 3, push_size: SET_PUSH }
}

const SET_F32_F16_VEC4: Shader = set_shader("set_rows_f32_f16_vec4", spirv::SET_ROWS_F32_F16_VEC4);

/// The TILE variant of set_rows.comp for rows of one value from `src` into `dst` (non-quantized).
fn set_rows_tile_shader(src: GgmlType, dst: GgmlType) -> Option<Shader> {
    Some(match (src, dst) {
        (GgmlType::F32, GgmlType::F32) => set_shader("set_rows_f32_f32_tile", spirv::SET_ROWS_F32_F32_TILE),
        (GgmlType::F32, GgmlType::F16) => set_shader("set_rows_f32_f16_tile", spirv::SET_ROWS_F32_F16_TILE),
        (GgmlType::F32, GgmlType::BF16) => set_shader("set_rows_f32_bf16_tile", spirv::SET_ROWS_F32_BF16_TILE),
        (GgmlType::F16, GgmlType::F32) => set_shader("set_rows_f16_f32_tile", spirv::SET_ROWS_F16_F32_TILE),
        (GgmlType::F16, GgmlType::F16) => set_shader("set_rows_f16_f16_tile", spirv::SET_ROWS_F16_F16_TILE),
        (GgmlType::F16, GgmlType::BF16) => set_shader("set_rows_f16_bf16_tile", spirv::SET_ROWS_F16_BF16_TILE),
        _ => return None,
    })
}

/// Tokens per tile of the TILE variants (their `TT`): a batch of fewer rows than this many periods keeps the
/// packed path (a tile would be mostly empty).
const TILE_TOKENS: u64 = 32;
/// Columns (channels) per tile of the TILE variants (their `TC`).
const TILE_COLUMNS: u64 = 64;

/// The period the TILE variant of `set_rows.comp` takes for a SET_ROWS of one-value rows, given `hint` (the row
/// length of the tensor its rows were cut from, which the executor's planning finds): `GGVK_SET_ROWS_PERIOD`
/// where set (`0`: never tile; `N`: period N for every one-value-row SET_ROWS, for tests: any period gives the
/// same bytes), else the hint where the batch holds at least [`TILE_TOKENS`] periods.
fn tile_period(node: &Node, hint: Option<u32>) -> Option<u32> {
    static FORCED: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let a = node.src.first()?.as_ref()?;
    let d = &node.dst;
    if a.ne[0] != 1 || set_rows_tile_shader(a.ty, d.ty).is_none() {
        return None;
    }
    let rows = u64::try_from(a.ne[1]).ok()?;
    let forced = *FORCED.get_or_init(|| crate::knobs::number("GGVK_SET_ROWS_PERIOD"));
    let period = match forced {
        Some(0) => return None,
        Some(n) => n,
        None => u64::from(hint?).max(1),
    };
    // Row numbers of a tile stay below 2^32 (the kernel computes token * period + column in 32 bits).
    let fits = rows + period <= u64::from(u32::MAX);
    (fits && (forced.is_some() || rows >= TILE_TOKENS * period)).then_some(period as u32)
}

/// The GET_ROWS kernel for src0 type `ty` and the dst type it produces.
fn get_rows_shader(ty: GgmlType) -> Option<(Shader, GgmlType)> {
    Some(match ty {
        GgmlType::F32 => (get_shader("get_rows_f32", spirv::GET_ROWS_F32), GgmlType::F32),
        GgmlType::I32 => (get_shader("get_rows_f32", spirv::GET_ROWS_F32), GgmlType::I32),
        GgmlType::F16 => (get_shader("get_rows_f16", spirv::GET_ROWS_F16), GgmlType::F32),
        GgmlType::Q4_0 => (get_shader("get_rows_q4_0", spirv::GET_ROWS_Q4_0), GgmlType::F32),
        GgmlType::Q8_0 => (get_shader("get_rows_q8_0", spirv::GET_ROWS_Q8_0), GgmlType::F32),
        _ => {
            let (name, spirv) = spirv::dq_module("get_rows_dq", ty.name())?;
            (get_shader(name, spirv), GgmlType::F32)
        }
    })
}

/// The SET_ROWS kernel for (src0 type, dst type).
fn set_rows_shader(src: GgmlType, dst: GgmlType) -> Option<Shader> {
    Some(match (src, dst) {
        (GgmlType::F32, GgmlType::F32) => set_shader("set_rows_f32_f32", spirv::SET_ROWS_F32_F32),
        (GgmlType::F32, GgmlType::F16) => set_shader("set_rows_f32_f16", spirv::SET_ROWS_F32_F16),
        (GgmlType::F16, GgmlType::F32) => set_shader("set_rows_f16_f32", spirv::SET_ROWS_F16_F32),
        (GgmlType::F16, GgmlType::F16) => set_shader("set_rows_f16_f16", spirv::SET_ROWS_F16_F16),
        (GgmlType::F32, GgmlType::Q8_0) => set_shader("set_rows_f32_q8_0", spirv::SET_ROWS_F32_Q8_0),
        (GgmlType::F32, GgmlType::Q4_0) => set_shader("set_rows_f32_q4_0", spirv::SET_ROWS_F32_Q4_0),
        (GgmlType::F16, GgmlType::Q8_0) => set_shader("set_rows_f16_q8_0", spirv::SET_ROWS_F16_Q8_0),
        (GgmlType::F16, GgmlType::Q4_0) => set_shader("set_rows_f16_q4_0", spirv::SET_ROWS_F16_Q4_0),
        (GgmlType::F32, GgmlType::BF16) => set_shader("set_rows_f32_bf16", spirv::SET_ROWS_F32_BF16),
        (GgmlType::F16, GgmlType::BF16) => set_shader("set_rows_f16_bf16", spirv::SET_ROWS_F16_BF16),
        (GgmlType::F32, GgmlType::Q4_1) => set_shader("set_rows_f32_q4_1", spirv::SET_ROWS_F32_Q4_1),
        (GgmlType::F32, GgmlType::Q5_0) => set_shader("set_rows_f32_q5_0", spirv::SET_ROWS_F32_Q5_0),
        (GgmlType::F32, GgmlType::Q5_1) => set_shader("set_rows_f32_q5_1", spirv::SET_ROWS_F32_Q5_1),
        (GgmlType::F32, GgmlType::IQ4_NL) => set_shader("set_rows_f32_iq4_nl", spirv::SET_ROWS_F32_IQ4_NL),
        (GgmlType::F16, GgmlType::Q4_1) => set_shader("set_rows_f16_q4_1", spirv::SET_ROWS_F16_Q4_1),
        (GgmlType::F16, GgmlType::Q5_0) => set_shader("set_rows_f16_q5_0", spirv::SET_ROWS_F16_Q5_0),
        (GgmlType::F16, GgmlType::Q5_1) => set_shader("set_rows_f16_q5_1", spirv::SET_ROWS_F16_Q5_1),
        (GgmlType::F16, GgmlType::IQ4_NL) => set_shader("set_rows_f16_iq4_nl", spirv::SET_ROWS_F16_IQ4_NL),
        (GgmlType::F32, GgmlType::Q1_0) => set_shader("set_rows_f32_q1_0", spirv::SET_ROWS_F32_Q1_0),
        (GgmlType::F32, GgmlType::Q2_0) => set_shader("set_rows_f32_q2_0", spirv::SET_ROWS_F32_Q2_0),
        (GgmlType::F32, GgmlType::NVFP4) => set_shader("set_rows_f32_nvfp4", spirv::SET_ROWS_F32_NVFP4),
        (GgmlType::F16, GgmlType::Q1_0) => set_shader("set_rows_f16_q1_0", spirv::SET_ROWS_F16_Q1_0),
        (GgmlType::F16, GgmlType::Q2_0) => set_shader("set_rows_f16_q2_0", spirv::SET_ROWS_F16_Q2_0),
        (GgmlType::F16, GgmlType::NVFP4) => set_shader("set_rows_f16_nvfp4", spirv::SET_ROWS_F16_NVFP4),
        _ => return None,
    })
}

/// Whether GET_ROWS from `ty` takes the generic dequantizing kernel (4 values per thread).
fn generic(ty: GgmlType) -> bool {
    !matches!(ty, GgmlType::F32 | GgmlType::I32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q8_0)
}

/// Binding unit of src0 / dst data: 32-bit words for 4-byte types, else 16-bit words (F16 and the blocks).
fn unit(ty: GgmlType) -> u64 {
    if ty.type_size() == 4 {
        4
    } else {
        2
    }
}

/// Whether ggvk supports this GET_ROWS or SET_ROWS node.
pub fn check(node: &Node) -> Result<()> {
    match node.op {
        Op::GetRows => check_get(node),
        Op::SetRows => check_set(node),
        _ => Err(Error::Internal(format!("rows::check called for {}", node.op.name()))),
    }
}

/// Record the GET_ROWS or SET_ROWS node.
pub fn record(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    match node.op {
        Op::GetRows => record_get(rec, node),
        Op::SetRows => record_set(rec, node, None),
        _ => Err(Error::Internal(format!("rows::record called for {}", node.op.name()))),
    }
}

/// Record a SET_ROWS node whose one-value rows were cut from a tensor of rows of `period` values (a transposed V
/// cache's write: the V product's rows, one value a row): such a write moves through shared memory in tiles
/// ([`tile_period`]); the same bytes as [`record`].
pub fn record_set_rows_of(rec: &mut Recorder<'_>, node: &Node, period: Option<u32>) -> Result<()> {
    match node.op {
        Op::SetRows => record_set(rec, node, period),
        _ => record(rec, node),
    }
}

/// Dims of `t` as u32 (Unsupported when one does not fit).
fn dims(what: &str, t: &Tensor) -> Result<[u32; 4]> {
    Ok([dim_u32(what, t.ne[0])?, dim_u32(what, t.ne[1])?, dim_u32(what, t.ne[2])?, dim_u32(what, t.ne[3])?])
}

/// Strides of dims 0..2 of an index tensor in 32-bit words.
fn index_strides(what: &str, t: &Tensor) -> Result<[u32; 3]> {
    let s = row_strides(what, t, 4)?;
    Ok([elem_stride(what, t, 4)?, s[0], s[1]])
}

fn check_get(node: &Node) -> Result<()> {
    let a = node.src(0)?;
    let idx = node.src(1)?;
    let d = &node.dst;
    if node.src.iter().skip(2).any(Option::is_some) {
        return Err(Error::invalid("GET_ROWS takes two sources"));
    }
    if idx.ty != GgmlType::I32 {
        return Err(Error::invalid(format!("GET_ROWS: indices must be i32, got {}", idx.ty.name())));
    }
    if a.ne[2] != idx.ne[1] || a.ne[3] != idx.ne[2] || idx.ne[3] != 1 {
        return Err(Error::invalid(format!(
            "GET_ROWS: indices {:?} do not fit src0 {:?} (need ne1 = src0 ne2, ne2 = src0 ne3, ne3 = 1)",
            idx.ne, a.ne
        )));
    }
    let want = [a.ne[0], idx.ne[0], idx.ne[1], idx.ne[2]];
    if d.ne != want {
        return Err(Error::invalid(format!("GET_ROWS: dst shape {:?}, expected {want:?}", d.ne)));
    }
    let Some((_, dst_ty)) = get_rows_shader(a.ty) else {
        return Err(Error::unsupported(format!("GET_ROWS from {} rows", a.ty.name())));
    };
    if d.ty != dst_ty {
        return Err(Error::unsupported(format!(
            "GET_ROWS from {} to {} (only to {})",
            a.ty.name(),
            d.ty.name(),
            dst_ty.name()
        )));
    }
    if !a.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported("GET_ROWS with non-contiguous rows (nb[0] != element size)"));
    }
    if generic(a.ty) && a.ne[0] % super::matmul::dq_row_multiple(a.ty) != 0 {
        return Err(Error::unsupported(format!(
            "GET_ROWS from {} rows of {} values (needs a multiple of {})",
            a.ty.name(),
            a.ne[0],
            super::matmul::dq_row_multiple(a.ty)
        )));
    }
    dims("GET_ROWS src0", a)?;
    dims("GET_ROWS indices", idx)?;
    dim_u32("GET_ROWS rows", idx.nelements())?;
    row_strides("GET_ROWS src0", a, unit(a.ty))?;
    row_strides("GET_ROWS dst", d, 4)?;
    index_strides("GET_ROWS indices", idx)?;
    Ok(())
}

fn record_get(rec: &mut Recorder<'_>, node: &Node) -> Result<()> {
    check_get(node)?;
    let a = node.src(0)?;
    let idx = node.src(1)?;
    let d = &node.dst;
    let rows = dim_u32("GET_ROWS rows", idx.nelements())?;
    if rows == 0 || a.ne[0] == 0 {
        return Ok(());
    }
    let (shader, _) = get_rows_shader(a.ty).expect("checked");
    let device = rec.device().clone();
    let caps = device.caps();
    let a_unit = unit(a.ty);
    let (ab, a_off) = bind(&device, a, a_unit, false)?;
    let (ib, i_off) = bind(&device, idx, 4, false)?;
    let (db, d_off) = bind(&device, d, 4, true)?;
    let ane = dims("GET_ROWS src0", a)?;
    let ine = dims("GET_ROWS indices", idx)?;
    let push = GetRowsPush {
        ne00: ane[0],
        ne01: ane[1],
        ne10: ine[0],
        ne11: ine[1],
        a_off,
        a_s: row_strides("GET_ROWS src0", a, a_unit)?,
        i_off,
        i_s: index_strides("GET_ROWS indices", idx)?,
        d_off,
        d_s: row_strides("GET_ROWS dst", d, 4)?,
        rows,
        pad: [0; 3],
    };
    let pipeline = device.pipelines().get(&device, &shader, &[])?;
    // The generic kernel writes 4 values per thread.
    let per_thread = if generic(a.ty) { 4 } else { 1 };
    let gx = u64::from(ane[0]).div_ceil(WG * per_thread).min(u64::from(caps.max_workgroup_count[0])) as u32;
    let (gy, gz) = split_groups(u64::from(rows), caps.max_workgroup_count[1])?;
    rec.dispatch("get_rows", &pipeline, &[ab, ib, db], bytemuck::bytes_of(&push), [gx, gy, gz])
}

fn check_set(node: &Node) -> Result<()> {
    let a = node.src(0)?;
    let idx = node.src(1)?;
    let d = &node.dst;
    if a.ty != GgmlType::F32 && a.ty != GgmlType::F16 {
        return Err(Error::invalid(format!("SET_ROWS: source rows must be f32 or f16, got {}", a.ty.name())));
    }
    if idx.ty != GgmlType::I64 && idx.ty != GgmlType::I32 {
        return Err(Error::invalid(format!("SET_ROWS: indices must be i64 or i32, got {}", idx.ty.name())));
    }
    let ok = a.ne[0] == d.ne[0]
        && a.ne[2] == d.ne[2]
        && a.ne[3] == d.ne[3]
        && a.ne[1] == idx.ne[0]
        && idx.ne[1] > 0
        && idx.ne[2] > 0
        && a.ne[2] % idx.ne[1] == 0
        && a.ne[3] % idx.ne[2] == 0
        && idx.ne[3] == 1;
    if !ok {
        return Err(Error::invalid(format!(
            "SET_ROWS: shapes do not fit: src0 {:?}, indices {:?}, dst {:?} (need src0 ne0, ne2, ne3 = dst's, \
             src0 ne1 = indices ne0, indices ne1 | src0 ne2, indices ne2 | src0 ne3, indices ne3 = 1)",
            a.ne, idx.ne, d.ne
        )));
    }
    if set_rows_shader(a.ty, d.ty).is_none() {
        return Err(Error::unsupported(format!(
            "SET_ROWS into {} (only f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q1_0, q2_0, nvfp4)",
            d.ty.name()
        )));
    }
    if !a.is_row_packed() || !d.is_row_packed() {
        return Err(Error::unsupported("SET_ROWS with non-contiguous rows (nb[0] != element size)"));
    }
    dims("SET_ROWS src0", a)?;
    dims("SET_ROWS indices", idx)?;
    dims("SET_ROWS dst", d)?;
    dim_u32("SET_ROWS rows", a.nrows())?;
    row_strides("SET_ROWS src0", a, unit(a.ty))?;
    row_strides("SET_ROWS dst", d, unit(d.ty))?;
    index_strides("SET_ROWS indices", idx)?;
    Ok(())
}

fn record_set(rec: &mut Recorder<'_>, node: &Node, hint: Option<u32>) -> Result<()> {
    check_set(node)?;
    let a = node.src(0)?;
    let idx = node.src(1)?;
    let d = &node.dst;
    let rows = dim_u32("SET_ROWS rows", a.nrows())?;
    if rows == 0 || a.ne[0] == 0 {
        return Ok(());
    }
    let shader = set_rows_shader(a.ty, d.ty).expect("checked");
    let device = rec.device().clone();
    let caps = device.caps();
    let (a_unit, d_unit) = (unit(a.ty), unit(d.ty));
    let (ab, a_off) = bind(&device, a, a_unit, false)?;
    let (ib, i_off) = bind(&device, idx, 4, false)?;
    let (db, d_off) = bind(&device, d, d_unit, true)?;
    let ane = dims("SET_ROWS src0", a)?;
    let ine = dims("SET_ROWS indices", idx)?;
    let push = SetRowsPush {
        ne00: ane[0],
        ne01: ane[1],
        ne02: ane[2],
        ne1: dim_u32("SET_ROWS dst ne1", d.ne[1])?,
        a_off,
        a_s: row_strides("SET_ROWS src0", a, a_unit)?,
        i_off,
        i_s: index_strides("SET_ROWS indices", idx)?,
        d_off,
        d_s: row_strides("SET_ROWS dst", d, d_unit)?,
        rows,
        ne11: ine[1],
        ne12: ine[2],
        idx64: u32::from(idx.ty == GgmlType::I64),
        period: 0,
        pad: [0; 3],
    };
    if d.ty.is_quantized() {
        // One thread per block (set_rows_q.comp, the elementwise workgroup size as spec constant 0).
        let pipeline = super::binary::pipeline(&device, &shader, &[])?;
        let wg = u64::from(pipeline.spec.first().copied().unwrap_or(1));
        let blocks = u64::from(ane[0]) / d.ty.block_size() as u64;
        let gx = u32::try_from(blocks.div_ceil(wg))
            .ok()
            .filter(|&g| g <= caps.max_workgroup_count[0])
            .ok_or_else(|| Error::unsupported("SET_ROWS: rows of too many blocks"))?;
        let (gy, gz) = split_groups(u64::from(rows), caps.max_workgroup_count[1])?;
        return rec.dispatch("set_rows_q", &pipeline, &[ab, ib, db], bytemuck::bytes_of(&push), [gx, gy, gz]);
    }
    if let Some(period) = tile_period(node, hint) {
        let tile = set_rows_tile_shader(a.ty, d.ty).expect("tile_period checked");
        let pipeline = device.pipelines().get(&device, &tile, &[])?;
        let tokens = u64::from(ane[1]).div_ceil(u64::from(period));
        let tiles = u64::from(period).div_ceil(TILE_COLUMNS) * tokens.div_ceil(TILE_TOKENS) * u64::from(rows / ane[1]);
        let (gy, gz) = split_groups(tiles, caps.max_workgroup_count[1])?;
        let push = SetRowsPush { period, ..push };
        return rec.dispatch("set_rows", &pipeline, &[ab, ib, db], bytemuck::bytes_of(&push), [1, gy, gz]);
    }
    let pipeline = device.pipelines().get(&device, &shader, &[])?;
    // Rows shorter than half a workgroup (a transposed V cache writes rows of one value) share workgroups:
    // one thread per (row, column) (bit 1 of idx64 tells the kernel).
    let total = u64::from(rows) * u64::from(ane[0]);
    if u64::from(ane[0]) < WG / 2 && total.div_ceil(WG) * WG <= u64::from(u32::MAX) {
        let push = SetRowsPush { idx64: push.idx64 | 2, ..push };
        let (gy, gz) = split_groups(total.div_ceil(WG), caps.max_workgroup_count[1])?;
        return rec.dispatch("set_rows", &pipeline, &[ab, ib, db], bytemuck::bytes_of(&push), [1, gy, gz]);
    }
    // F32 rows into F16 rows four values at a time where every row starts on a 16-byte (source) and 8-byte (dst)
    // boundary: a 2048-token prompt's V rows took 62 us a layer one value per invocation on the H200 (NOTES.md).
    let four = |v: &[u32]| v.iter().all(|x| x % 4 == 0);
    let vec4 = (a.ty, d.ty) == (GgmlType::F32, GgmlType::F16)
        && ane[0] % 4 == 0
        && four(&[push.a_off, push.d_off])
        && four(&push.a_s)
        && four(&push.d_s);
    let (pipeline, per) =
        if vec4 { (device.pipelines().get(&device, &SET_F32_F16_VEC4, &[])?, 4 * WG) } else { (pipeline, WG) };
    let gx = u64::from(ane[0]).div_ceil(per).min(u64::from(caps.max_workgroup_count[0])) as u32;
    let (gy, gz) = split_groups(u64::from(rows), caps.max_workgroup_count[1])?;
    rec.dispatch("set_rows", &pipeline, &[ab, ib, db], bytemuck::bytes_of(&push), [gx, gy, gz])
}
