//! The generic dequantizing kernels (mat-vec, tiled mat-mul, GET_ROWS) against CPU references, for every weight
//! type with a dequantization include `shaders/dequant/<type>.glsl` (`ggvk::ops::spirv::DQ_TYPES`), on the default
//! Vulkan device with the validation layer on. Run once more with `GGVK_SHARED_REDUCTION=1` to cover the
//! shared-memory reduction of the mat-vec kernel.
//!
//! MUL_MAT: GPU result vs an f64 dot product over the CPU reference dequantization (`quant::dequantize`), with a
//! relative tolerance of 1e-5 of sum |a||b| (f32 accumulation), the activations taken on the grid the product
//! reads them on (the mat-vec of Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, Q2_K, Q3_K and IQ4_XS runs the integer-dot kernels
//! on devices with integer dot products: Q8_0 / Q8_K grids; CI also runs the mat-vec with `GGVK_INT_DOT=0`). GET_ROWS: the dequantized rows must equal the CPU
//! reference bit for bit (Q4_1/Q5_0/Q5_1/BF16 and the K-quants compute ggml's formula without contraction; Q1_0,
//! Q2_0 and NVFP4 have one product or a select); the IQ/TQ/MXFP4 types are allowed one rounding of difference
//! (1e-6 of the row's largest magnitude), as the include interface permits fused multiply-adds. Q1_0, Q2_0 and NVFP4
//! run a couple of shapes per test ([`few_shapes`]).

mod common;

use common::*;
use ggvk::ops::spirv;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Error, Graph, Node, Op, Tensor};

/// The types with a dequantization include, as `GgmlType`s. Every name must be a known type.
fn dq_types() -> Vec<GgmlType> {
    spirv::DQ_TYPES
        .iter()
        .map(|name| {
            *GgmlType::ALL
                .iter()
                .find(|t| t.name().eq_ignore_ascii_case(name)) // files are lower case: q4_k.glsl is ggml's q4_K
                .unwrap_or_else(|| panic!("shaders/dequant/{name}.glsl names no GgmlType"))
        })
        .collect()
}

/// Types run on a couple of shapes per test rather than the whole list (CI time): Q1_0, Q2_0 and NVFP4, whose
/// includes are a few lines of bit selection; their conformance is test-backend-ops' and the ggml cross-check's.
fn few_shapes(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q1_0 | GgmlType::Q2_0 | GgmlType::NVFP4)
}

/// Smallest row length the generic kernels take for `ty` (a block, 4 values for BF16, two blocks for MXFP4).
fn unit(ty: GgmlType) -> i64 {
    if ty == GgmlType::MXFP4 {
        64
    } else {
        ty.block_size().max(4) as i64
    }
}

/// A tensor `ne` of `ty` at byte `offset` of a fresh buffer, rows `row_pad` bytes apart beyond their size.
fn padded_tensor(be: &Backend, ty: GgmlType, ne: [i64; 4], row_pad: u64, offset: u64, data: &[u8]) -> Tensor {
    let row = ty.row_size(ne[0]).unwrap() as u64;
    let nb1 = row + row_pad;
    let nb = [ty.type_size() as u64, nb1, nb1 * ne[1] as u64, nb1 * (ne[1] * ne[2]) as u64];
    let rows = (ne[1] * ne[2] * ne[3]) as u64;
    let size = offset + nb1 * rows + 16;
    let mut bytes = vec![0xA5u8; size as usize];
    for r in 0..rows {
        let at = (offset + r * nb1) as usize;
        bytes[at..at + row as usize].copy_from_slice(&data[(r * row) as usize..((r + 1) * row) as usize]);
    }
    let buf = be.alloc(size).unwrap();
    buf.write(0, &bytes).unwrap();
    Tensor::new(buf, offset, ty, ne, nb).unwrap()
}

/// One MUL_MAT case: A `ane` of `ty` (rows padded by `a_pad` bytes at byte offset `a_off` when non-zero), B `bne`
/// F32 (at float offset `b_off`, so B_VEC4 is off when it is not a multiple of 4).
fn mul_mat_case(be: &Backend, rng: &mut Rng, ty: GgmlType, ane: [i64; 4], bne: [i64; 4], a_pad: u64, b_off: u64) {
    let what = format!("{} a{ane:?} b{bne:?} a_pad {a_pad} b_off {b_off}", ty.name());
    let na = ane.iter().product::<i64>() as usize;
    let a_bytes = random_typed(rng, ty, na);
    let a_deq = quant::dequantize_to_f32(ty, &a_bytes, na).unwrap();
    let b_vals = rng.vec(bne.iter().product::<i64>() as usize);
    let a = if a_pad == 0 { upload(be, ty, ane, &a_bytes) } else { padded_tensor(be, ty, ane, a_pad, 2, &a_bytes) };
    let b = padded_tensor(be, GgmlType::F32, bne, 0, 4 * b_off, &f32_bytes(&b_vals));
    let d = output(be, [ane[1], bne[1], bne[2], bne[3]]);
    let mut g = Graph::new();
    g.mul_mat(&a, &b, &d).unwrap();
    be.compute(&g).unwrap();
    let got = download(&d);
    // Against the activations the kernels see (rounded onto the CPU backend's grid unless GGVK_ROUND_ACTIVATIONS=0).
    let x_seen = mul_mat_activations_seen(be, &a, &b, &b_vals);
    let (want, mag) = ref_mul_mat(&a_deq, ane, &x_seen, bne);
    let min_bound = q8_1_min_bounds(be, &a, &b, &a_bytes, ane, &x_seen, bne);
    assert_eq!(got.len(), want.len());
    let cm = coopmat_rel(be, &a, &b);
    for (i, ((g, w), m)) in got.iter().zip(&want).zip(&mag).enumerate() {
        let diff = (f64::from(*g) - f64::from(*w)).abs();
        let allowed = (1e-5 + cm) * (m + 1e-6) + min_bound.get(i).copied().unwrap_or(0.0);
        assert!(diff <= allowed, "{what}: element {i}: got {g}, want {w} (diff {diff:e} > {allowed:e})");
    }
}

/// [`q8_1_min_bound`] per output element in [`ref_mul_mat`]'s order where Q4_1 / Q5_1 run the integer-dot mat-vec
/// (activations on the Q8_0 grid); empty elsewhere.
fn q8_1_min_bounds(
    be: &Backend,
    a: &Tensor,
    b: &Tensor,
    a_bytes: &[u8],
    ane: [i64; 4],
    x: &[f32],
    bne: [i64; 4],
) -> Vec<f64> {
    if ggvk::ops::matmul::activation_grid(be.device(), a, b) != Some(quant::ActRounding::Q8_0) {
        return Vec::new();
    }
    let (k, m, n) = (ane[0] as usize, ane[1] as usize, bne[1] as usize);
    let (r2, r3) = (bne[2] / ane[2], bne[3] / ane[3]);
    let mut out = Vec::new();
    for i13 in 0..bne[3] {
        for i12 in 0..bne[2] {
            let ab = ((i13 / r3) * ane[2] + i12 / r2) as usize * m;
            let bb = (i13 * bne[2] + i12) as usize * n * k;
            for col in 0..n {
                for row in 0..m {
                    out.push(q8_1_min_bound(a.ty, a_bytes, ab + row, &x[bb + col * k..][..k]));
                }
            }
        }
    }
    out
}

#[test]
fn dq_types_are_listed_and_have_every_kernel() {
    let types = dq_types();
    for ty in [GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::BF16] {
        assert!(types.contains(&ty), "{ty} has no dequantization include");
    }
    for ty in &types {
        for kernel in ["mul_mat_vec_dq", "mul_mat_vec_dq_shmem", "mul_mat_dq", "get_rows_dq"] {
            let (name, spv) = spirv::dq_module(kernel, ty.name()).unwrap_or_else(|| panic!("{kernel} {ty}"));
            assert_eq!(name, format!("{kernel}_{}", ty.name().to_ascii_lowercase()));
            assert_eq!(&spv[..4], &0x0723_0203u32.to_le_bytes(), "{name}: SPIR-V magic");
            assert_eq!(spirv::dq_spirv(kernel, ty.name()), Some(spv));
        }
    }
    // The specialised types keep their own kernels.
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0] {
        assert!(spirv::dq_module("mul_mat_vec_dq", ty.name()).is_none(), "{ty}");
    }
    assert!(spirv::dq_module("no_such_kernel", "q5_0").is_none());
}

#[test]
fn dq_mul_mat_vec_columns_1_to_8_odd_rows() {
    let be = backend();
    let mut rng = Rng::new(101);
    for ty in dq_types() {
        let u = unit(ty);
        if few_shapes(ty) {
            mul_mat_case(&be, &mut rng, ty, [3 * u, 17, 1, 1], [3 * u, 1, 1, 1], 0, 0);
            mul_mat_case(&be, &mut rng, ty, [8 * u, 37, 1, 1], [8 * u, 5, 1, 1], 0, 0);
            continue;
        }
        // k: one block, a few, and a long row (BF16: also lengths that are not multiples of 32).
        let ks: Vec<i64> = if u < 32 { vec![4, 12, 100, 1000, 4096] } else { vec![u, 3 * u, (4096 / u).max(4) * u] };
        for &k in &ks {
            for m in [1, 3, 17, 333] {
                mul_mat_case(&be, &mut rng, ty, [k, m, 1, 1], [k, 1, 1, 1], 0, 0);
            }
        }
        let k = 8 * u;
        for n in 1..=8 {
            mul_mat_case(&be, &mut rng, ty, [k, 37, 1, 1], [k, n, 1, 1], 0, 0);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn dq_mul_mat_tiled_columns_9_to_64() {
    let be = backend();
    let mut rng = Rng::new(102);
    for ty in dq_types() {
        let u = unit(ty);
        if few_shapes(ty) {
            mul_mat_case(&be, &mut rng, ty, [2 * u, 63, 1, 1], [2 * u, 17, 1, 1], 0, 0);
            mul_mat_case(&be, &mut rng, ty, [u, 130, 1, 1], [u, 33, 1, 1], 0, 0);
            continue;
        }
        let ks: Vec<i64> = if u < 32 { vec![4, 36, 100] } else { vec![u, 5 * u] };
        for &k in &ks {
            for (m, n) in [(1, 9), (63, 17), (64, 64), (130, 33), (5, 64)] {
                mul_mat_case(&be, &mut rng, ty, [k, m, 1, 1], [k, n, 1, 1], 0, 0);
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn dq_mul_mat_batch_broadcast_and_views() {
    let be = backend();
    let mut rng = Rng::new(103);
    for ty in dq_types() {
        let k = 2 * unit(ty).max(32);
        if few_shapes(ty) {
            mul_mat_case(&be, &mut rng, ty, [k, 19, 2, 1], [k, 5, 6, 2], 0, 0);
            mul_mat_case(&be, &mut rng, ty, [k, 21, 2, 1], [k, 20, 2, 1], 2 * ty.type_size() as u64, 1);
            continue;
        }
        // b2 = 6 over a2 = 2 (ratio 3), b3 = 2 over a3 = 1; mat-vec (1 and 5 columns) and tiled.
        for n in [1, 5, 9] {
            mul_mat_case(&be, &mut rng, ty, [k, 19, 2, 1], [k, n, 6, 2], 0, 0);
        }
        mul_mat_case(&be, &mut rng, ty, [k, 8, 3, 2], [k, 1, 3, 2], 0, 0);
        // A rows padded apart at an offset; B at an odd float offset (scalar x loads); both kernels.
        for n in [1, 3, 20] {
            mul_mat_case(&be, &mut rng, ty, [k, 21, 2, 1], [k, n, 2, 1], 2 * ty.type_size() as u64, 1);
            mul_mat_case(&be, &mut rng, ty, [k, 21, 1, 1], [k, n, 1, 1], 6, 4);
        }
    }
    assert_no_validation_errors();
}

/// BF16 rows that are not a multiple of 4 values: MUL_MAT takes them (scalar BF16 kernels, tested in
/// `tests/ops_products.rs`), GET_ROWS's generic kernel declines them.
#[test]
fn bf16_rows_not_a_multiple_of_four() {
    let be = backend();
    let a = upload(&be, GgmlType::BF16, [6, 3, 1, 1], &[0u8; 36]);
    let b = upload(&be, GgmlType::F32, [6, 1, 1, 1], &[0u8; 24]);
    let d = output(&be, [3, 1, 1, 1]);
    ggvk::ops::matmul::check(&a, &b, &d).unwrap();
    let idx = upload(&be, GgmlType::I32, [2, 1, 1, 1], &[0u8; 8]);
    let dr = output(&be, [6, 2, 1, 1]);
    let node = Node { op: Op::GetRows, src: vec![Some(a.clone()), Some(idx)], dst: dr };
    let e = ggvk::ops::check(&node).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // Multiples of 4 are fine.
    let a = upload(&be, GgmlType::BF16, [8, 3, 1, 1], &[0u8; 48]);
    let b = upload(&be, GgmlType::F32, [8, 1, 1, 1], &[0u8; 32]);
    ggvk::ops::matmul::check(&a, &b, &d).unwrap();
}

/// One GET_ROWS case: src0 `[n, m, be1, be2]` of `ty` (rows padded apart at an offset when `view`), indices
/// `[r, be1, be2]` (some out of range when `oob`); dst F32 contiguous.
#[allow(clippy::too_many_arguments)]
fn get_rows_case(
    be: &Backend,
    rng: &mut Rng,
    ty: GgmlType,
    n: i64,
    m: i64,
    r: i64,
    bs: [i64; 2],
    view: bool,
    oob: bool,
) {
    let what = format!("get_rows {} n {n} m {m} r {r} be {bs:?} view {view} oob {oob}", ty.name());
    let ane = [n, m, bs[0], bs[1]];
    let nel = ane.iter().product::<i64>() as usize;
    let data = random_typed(rng, ty, nel);
    let a =
        if view { padded_tensor(be, ty, ane, 2 * ty.type_size() as u64, 6, &data) } else { upload(be, ty, ane, &data) };
    let ine = [r, bs[0], bs[1], 1];
    let idx: Vec<i32> =
        (0..(r * bs[0] * bs[1]))
            .map(|_| {
                if oob && rng.below(4) == 0 {
                    [-1, m as i32][rng.below(2) as usize]
                } else {
                    rng.below(m as u64) as i32
                }
            })
            .collect();
    let it = upload(be, GgmlType::I32, ine, &idx.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<_>>());
    let d = output(be, [n, r, bs[0], bs[1]]);
    let mut g = Graph::new();
    g.push(Node { op: Op::GetRows, src: vec![Some(a.clone()), Some(it)], dst: d.clone() }).unwrap();
    be.compute(&g).unwrap();
    let got = download(&d);
    let rs = ty.row_size(n).unwrap();
    let exact = matches!(
        ty,
        GgmlType::Q1_0
            | GgmlType::Q2_0
            | GgmlType::NVFP4
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::BF16
            | GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
    );
    for (k, &ix) in idx.iter().enumerate() {
        let row = &got[k * n as usize..(k + 1) * n as usize];
        if ix < 0 || ix >= m as i32 {
            assert!(row.iter().all(|&v| v.to_bits() == 0), "{what}: out-of-range index {ix} must give zeros");
            continue;
        }
        let batch = k / r as usize;
        let src_row = batch * m as usize + ix as usize;
        let want = quant::dequantize_to_f32(ty, &data[src_row * rs..(src_row + 1) * rs], n as usize).unwrap();
        if exact {
            let (gb, wb): (Vec<u32>, Vec<u32>) =
                (row.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
            assert_eq!(gb, wb, "{what}: dst row {k} <- src row {ix} differs");
        } else {
            let scale = want.iter().fold(0f32, |acc, v| acc.max(v.abs()));
            for (g, w) in row.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-6 * scale, "{what}: dst row {k}: got {g}, want {w}");
            }
        }
    }
}

#[test]
fn dq_get_rows_batched_views_and_out_of_range() {
    let be = backend();
    let mut rng = Rng::new(104);
    for ty in dq_types() {
        let u = unit(ty);
        if few_shapes(ty) {
            get_rows_case(&be, &mut rng, ty, 3 * u, 5, 4, [3, 2], true, false);
            get_rows_case(&be, &mut rng, ty, 2 * u, 3, 17, [2, 1], false, true);
            continue;
        }
        let ns: Vec<i64> = if u < 32 { vec![4, 12, 260] } else { vec![u, 8 * u] };
        for &n in &ns {
            for bs in [[1, 1], [7, 1], [3, 2]] {
                for view in [false, true] {
                    get_rows_case(&be, &mut rng, ty, n, 5, 4, bs, view, false);
                }
            }
        }
        // Repeated and out-of-range indices; a row wider than one workgroup pass (256 threads x 4 values).
        get_rows_case(&be, &mut rng, ty, 2 * u, 3, 17, [2, 1], false, true);
        get_rows_case(&be, &mut rng, ty, (2048 / u + 1) * u, 3, 5, [1, 1], true, true);
    }
    assert_no_validation_errors();
}
