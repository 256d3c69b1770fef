//! Mixture-of-experts ops against CPU references, on the default Vulkan device with the validation layer on.
//!
//! MUL_MAT_ID, every weight type MUL_MAT runs: the GPU result against an f64 product over the CPU reference
//! dequantization of the selected expert (with the activations as the kernels see them: rounded onto the CPU
//! backend's grid where ggvk rounds them; 8-bit blocks for Q4_0/Q8_0 bounded as in `tests/ops.rs`; f16 for F16), and
//! bit for bit against ggvk's own MUL_MAT of the same expert and column (the same kernels, so the same numerics).
//! Shapes: src1 broadcast over the slots or one column per slot, ids as a view of wider rows, experts strided by
//! more rows than they use, more (slot, token) pairs than a dispatch has workgroups along z, more than 8 tokens (the tiled path, against the
//! CPU reference), one expert chosen by every slot, unsupported cases declined.

mod common;

use common::*;
use ggvk::ops::spirv;
use ggvk::quant::{self, GgmlType};
use ggvk::{Backend, Error, Graph, Node, Op, SrcPrec, Tensor};

/// Every weight type MUL_MAT runs: the specialised four and those with a dequantization include.
fn weight_types() -> Vec<GgmlType> {
    let mut v = vec![GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0];
    v.extend(spirv::DQ_TYPES.iter().map(|name| {
        *GgmlType::ALL.iter().find(|t| t.name().eq_ignore_ascii_case(name)).expect("dq type is a GgmlType")
    }));
    v
}

/// `n` values of `ty` as bytes: ggml's reference quantization of random values where ggvk has it, random K-quant
/// blocks otherwise.
fn random_typed(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let vals: Vec<f32> = rng.vec(n);
    quant::quantize_to_vec(ty, &vals).unwrap_or_else(|_| random_kquant(rng, ty, n))
}

/// Types run on two of the shape families per test rather than all (CI time): Q1_0, Q2_0 and NVFP4 (generic
/// kernels every dequantized type shares; test-backend-ops covers their MUL_MAT_ID cases).
fn few_shapes(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q1_0 | GgmlType::Q2_0 | GgmlType::NVFP4)
}

/// Smallest row the kernels take for `ty`.
fn unit(ty: GgmlType) -> i64 {
    if ty == GgmlType::MXFP4 {
        64 // a pair of 17-byte blocks
    } else {
        ty.block_size().max(32) as i64
    }
}

/// Bytes `data` laid out with the given strides (dims of `ne`, rows of `row` bytes) at `offset` in a new buffer.
fn strided(be: &Backend, ty: GgmlType, ne: [i64; 4], nb: [u64; 4], offset: u64, data: &[u8]) -> Tensor {
    let row = ty.row_size(ne[0]).unwrap();
    let size = offset + nb[3] * ne[3] as u64 + 64;
    let mut bytes = vec![0x5Au8; size as usize];
    let mut r = 0;
    for i3 in 0..ne[3] as u64 {
        for i2 in 0..ne[2] as u64 {
            for i1 in 0..ne[1] as u64 {
                let at = (offset + i1 * nb[1] + i2 * nb[2] + i3 * nb[3]) as usize;
                bytes[at..at + row].copy_from_slice(&data[r * row..(r + 1) * row]);
                r += 1;
            }
        }
    }
    let buf = be.alloc(size).unwrap();
    buf.write(0, &bytes).unwrap();
    Tensor::new(buf, offset, ty, ne, nb).unwrap()
}

/// Per-output bound of the error from rounding x to 8 bits per 32-value block (as `tests/ops.rs`).
fn int_dot_bound(a_row: &[f32], x: &[f32]) -> f64 {
    let mut bound = 0f64;
    for (ab, xb) in a_row.chunks(32).zip(x.chunks(32)) {
        let d = xb.iter().fold(0f32, |acc, v| acc.max(v.abs())) as f64 / 127.0;
        let sa: f64 = ab.iter().map(|v| f64::from(v.abs())).sum();
        bound += d * (0.5 + 127.0 / 2048.0) * sa;
    }
    bound
}

struct Case {
    ty: GgmlType,
    n_as: i64,
    n_used: i64,
    broadcast: bool,
    m: i64,
    k: i64,
    n_tok: i64,
    /// Rows each expert is strided by (>= m).
    m_v: i64,
    /// Entries per ids row in memory (>= n_used).
    ids_row: i64,
    /// Compare with MUL_MAT bit for bit (the mat-vec path only: up to 8 tokens).
    exact: bool,
    /// Every slot of every token picks expert 0 (the tiled path then loops over more column tiles than it has
    /// workgroups for).
    one_expert: bool,
    /// The coarsest copy of src1 the node allows (F32: no 8-bit blocks, no rounding onto their grid).
    b_prec: SrcPrec,
    /// Magnitude of src1's values.
    amax: f32,
}

fn mul_mat_id_case(be: &Backend, rng: &mut Rng, c: &Case) {
    let Case { ty, n_as, n_used, broadcast, m, k, n_tok, m_v, ids_row, exact, one_expert, b_prec, amax } = *c;
    let what = format!("{} n_as {n_as} n_used {n_used} b {broadcast} m {m} k {k} tokens {n_tok} m_v {m_v}", ty.name());
    let n_b1 = if broadcast { 1 } else { n_used };
    // Experts: n_as matrices of m_v rows (only m used).
    let a_bytes = random_typed(rng, ty, (k * m * n_as) as usize);
    let a_deq = quant::dequantize_to_f32(ty, &a_bytes, (k * m * n_as) as usize).unwrap();
    let row = ty.row_size(k).unwrap() as u64;
    // At byte 2 (16-bit aligned: Q4_K/Q5_K take the generic kernel) when `exact`, else 4 (F32 needs 4 either way).
    let a_off = if exact && ty != GgmlType::F32 { 2 } else { 4 };
    let nb = [ty.type_size() as u64, row, row * m_v as u64, row * (m_v * n_as) as u64];
    let a = strided(be, ty, [k, m, n_as, 1], nb, a_off, &a_bytes);
    let b_vals: Vec<f32> = rng.vec((k * n_b1 * n_tok) as usize).iter().map(|v| v * amax).collect();
    let b = upload(be, GgmlType::F32, [k, n_b1, n_tok, 1], &f32_bytes(&b_vals));
    // ids: each token's row a shuffled prefix of 0..n_as (distinct experts, as a router's top-k gives).
    let mut ids = vec![0i32; (ids_row * n_tok) as usize];
    for t in 0..n_tok as usize {
        let mut perm: Vec<i32> = (0..n_as as i32).collect();
        for i in (1..perm.len()).rev() {
            perm.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for s in 0..ids_row as usize {
            ids[t * ids_row as usize + s] = if one_expert { 0 } else { perm[s % n_as as usize] };
        }
    }
    let ids_bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let ids_buf = be.alloc(ids_bytes.len() as u64).unwrap();
    ids_buf.write(0, &ids_bytes).unwrap();
    let ids_t = Tensor::new(
        ids_buf,
        0,
        GgmlType::I32,
        [n_used, n_tok, 1, 1],
        [4, 4 * ids_row as u64, 4 * (ids_row * n_tok) as u64, 4 * (ids_row * n_tok) as u64],
    )
    .unwrap();
    let d = output(be, [m, n_used, n_tok, 1]);
    let mut g = Graph::new();
    g.push(Node {
        op: Op::MulMatId { b_prec },
        src: vec![Some(a.clone()), Some(b.clone()), Some(ids_t)],
        dst: d.clone(),
    })
    .unwrap();
    // The same products through MUL_MAT, one node per (slot, token).
    let mut singles = Vec::new();
    if exact {
        for t in 0..n_tok {
            for s in 0..n_used {
                let e = ids[(t * ids_row + s) as usize] as u64;
                let ae = Tensor::new(a.buffer.clone(), a.offset + e * a.nb[2], ty, [k, m, 1, 1], a.nb).unwrap();
                let col = if broadcast { 0 } else { s };
                let bc = Tensor::new(
                    b.buffer.clone(),
                    (col as u64) * b.nb[1] + t as u64 * b.nb[2],
                    GgmlType::F32,
                    [k, 1, 1, 1],
                    b.nb,
                )
                .unwrap();
                let ds = output(be, [m, 1, 1, 1]);
                g.mul_mat(&ae, &bc, &ds).unwrap();
                singles.push(ds);
            }
        }
    }
    be.compute(&g).unwrap();
    let got = download(&d);
    // b rounded to 8-bit blocks: the integer-dot mat-vec, or the tiled path (more than 8 tokens) as MUL_MAT's.
    // With src1 kept F32 (b_prec), neither.
    let grid = ggvk::ops::matmul_id::activation_grid(be.device(), &a, &b, b_prec);
    let q8 = ggvk::ops::matmul::quantizes_activations(&a)
        && (be.device().caps().integer_dot_product || n_tok > 8)
        && b_prec.allows_q8();
    // Q4_1 / Q5_1 on the integer-dot mat-vec: the CPU's Q8_1 min term (see q8_1_min_bound).
    let q8_1 = grid == Some(ggvk::quant::ActRounding::Q8_0);
    // The tiled path on cooperative matrices: weights and activations as f16 (as coopmat_rel bounds MUL_MAT's).
    let cm_rel = if ggvk::ops::matmul_id::uses_coopmat(be.device(), &a, &b, b_prec) { 1.0 / 1024.0 } else { 0.0 };
    for t in 0..n_tok as usize {
        for s in 0..n_used as usize {
            let e = ids[t * ids_row as usize + s] as usize;
            let col = if broadcast { 0 } else { s };
            let x = &b_vals[(t * n_b1 as usize + col) * k as usize..][..k as usize];
            let x_seen = match grid {
                Some(r) => ggvk::quant::round_activations_to_vec(r, x),
                None => x.to_vec(),
            };
            for r in 0..m as usize {
                let w = &a_deq[(e * m as usize + r) * k as usize..][..k as usize];
                let (mut want, mut mag) = (0f64, 0f64);
                for (wv, xv) in w.iter().zip(&x_seen) {
                    let xv = if ty == GgmlType::F16 { half::f16::from_f32(*xv).to_f32() } else { *xv };
                    want += f64::from(*wv) * f64::from(xv);
                    mag += (f64::from(*wv) * f64::from(xv)).abs();
                }
                let g = got[(t * n_used as usize + s) * m as usize + r];
                let allowed = (1e-5 + cm_rel) * (mag + 1e-6)
                    + if q8 { 1.01 * int_dot_bound(w, x) } else { 0.0 }
                    + if q8_1 { q8_1_min_bound(ty, &a_bytes, e * m as usize + r, &x_seen) } else { 0.0 };
                assert!(
                    (f64::from(g) - want).abs() <= allowed,
                    "{what}: token {t} slot {s} (expert {e}) row {r}: got {g}, want {want} (allowed {allowed:e})"
                );
            }
        }
    }
    for (i, single) in singles.iter().enumerate() {
        let want = download(single);
        let have = &got[i * m as usize..][..m as usize];
        for r in 0..m as usize {
            assert_eq!(
                have[r].to_bits(),
                want[r].to_bits(),
                "{what}: pair {i} row {r}: MUL_MAT_ID {} vs MUL_MAT {}",
                have[r],
                want[r]
            );
        }
    }
}

#[test]
fn mul_mat_id_every_weight_type() {
    let be = backend();
    let mut rng = Rng::new(401);
    for ty in weight_types() {
        let u = unit(ty);
        let shapes = [(4, 2, false, 1, 2 * u), (4, 2, true, 5, 3 * u), (8, 4, false, 3, u), (3, 1, true, 2, 4 * u)];
        for &(n_as, n_used, broadcast, n_tok, k) in shapes.iter().take(if few_shapes(ty) { 2 } else { 4 }) {
            let c = Case {
                ty,
                n_as,
                n_used,
                broadcast,
                m: 37,
                k,
                n_tok,
                m_v: 37,
                ids_row: n_used,
                exact: true,
                one_expert: false,
                b_prec: SrcPrec::Any,
                amax: 1.0,
            };
            mul_mat_id_case(&be, &mut rng, &c);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_id_views_of_ids_and_strided_experts() {
    let be = backend();
    let mut rng = Rng::new(402);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_1] {
        let u = unit(ty);
        // ids rows of n_as entries of which n_used are read; experts strided by m_v > m rows.
        let c = Case {
            ty,
            n_as: 6,
            n_used: 3,
            broadcast: false,
            m: 9,
            k: 2 * u,
            n_tok: 4,
            m_v: 14,
            ids_row: 6,
            exact: true,
            one_expert: false,
            b_prec: SrcPrec::Any,
            amax: 1.0,
        };
        mul_mat_id_case(&be, &mut rng, &c);
        let c = Case {
            ty,
            n_as: 6,
            n_used: 2,
            broadcast: true,
            m: 64,
            k: u,
            n_tok: 17,
            m_v: 64,
            ids_row: 6,
            exact: false,
            one_expert: false,
            b_prec: SrcPrec::Any,
            amax: 1.0,
        };
        mul_mat_id_case(&be, &mut rng, &c);
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_id_many_tokens_every_weight_type() {
    let be = backend();
    let mut rng = Rng::new(407);
    for ty in weight_types() {
        let u = unit(ty);
        let shapes = [
            (4, 2, false, 9, 70, false),
            (8, 4, true, 33, 64, false),
            (4, 4, false, 70, 65, true),
            (16, 2, false, 40, 5, false),
        ];
        for &(n_as, n_used, broadcast, n_tok, m, one_expert) in shapes.iter().take(if few_shapes(ty) { 2 } else { 4 }) {
            let c = Case {
                ty,
                n_as,
                n_used,
                broadcast,
                m,
                k: 2 * u,
                n_tok,
                m_v: m,
                ids_row: n_used,
                exact: false,
                one_expert,
                b_prec: SrcPrec::Any,
                amax: 1.0,
            };
            mul_mat_id_case(&be, &mut rng, &c);
        }
    }
    assert_no_validation_errors();
}

/// src1 kept F32 (ggml_prec_set_src(GGML_PREC_F32), as llama.cpp asks of a MoE down projection whose input can
/// exceed f16's range): values of 1e5 and products within f32 noise of the f64 reference on both paths, where the
/// default 8-bit copies of src1 (Q4_0 / Q8_0 tiled, integer-dot mat-vec) or its rounding (IQ4_NL) would be ~1e-3 off.
#[test]
fn mul_mat_id_keeps_src1_f32_when_asked() {
    let be = backend();
    let mut rng = Rng::new(409);
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::IQ4_NL] {
        let u = unit(ty);
        for (n_tok, broadcast) in [(3, false), (20, false), (12, true)] {
            let c = Case {
                ty,
                n_as: 4,
                n_used: 2,
                broadcast,
                m: 24,
                k: 2 * u,
                n_tok,
                m_v: 24,
                ids_row: 2,
                exact: false,
                one_expert: false,
                b_prec: SrcPrec::F32,
                amax: 1e5,
            };
            mul_mat_id_case(&be, &mut rng, &c);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_id_more_pairs_than_workgroups_along_z() {
    let be = backend();
    let mut rng = Rng::new(403);
    let max_z = i64::from(be.device().caps().max_workgroup_count[2]);
    // More (slot, token) pairs than the device's z workgroup count: the tiled path's grouping per expert.
    let n_used = 8;
    let n_tok = max_z / n_used + 3;
    let c = Case {
        ty: GgmlType::F32,
        n_as: 8,
        n_used,
        broadcast: true,
        m: 2,
        k: 32,
        n_tok,
        m_v: 2,
        ids_row: 8,
        exact: false,
        one_expert: false,
        b_prec: SrcPrec::Any,
        amax: 1.0,
    };
    mul_mat_id_case(&be, &mut rng, &c);
    assert_no_validation_errors();
}

/// Gate, up and down of a layer in one graph: the many-token path groups the pairs of the shared ids once and the
/// later products reuse it (and the rounded copy of a shared src1); each result must equal the same product run alone.
#[test]
fn mul_mat_id_products_sharing_ids_equal_each_alone() {
    let be = backend();
    let mut rng = Rng::new(409);
    for ty in [GgmlType::Q4_0, GgmlType::F16, GgmlType::IQ4_NL] {
        let (k, m, n_as, n_used, n_tok) = (64i64, 96i64, 6i64, 2i64, 20i64);
        let expert = |rng: &mut Rng| {
            let bytes = random_typed(rng, ty, (k * m * n_as) as usize);
            upload(&be, ty, [k, m, n_as, 1], &bytes)
        };
        let (gate, up) = (expert(&mut rng), expert(&mut rng));
        let down_bytes = random_typed(&mut rng, ty, (m * k * n_as) as usize);
        let down = upload(&be, ty, [m, k, n_as, 1], &down_bytes);
        let x = upload(&be, GgmlType::F32, [k, 1, n_tok, 1], &f32_bytes(&rng.vec((k * n_tok) as usize)));
        let h = upload(&be, GgmlType::F32, [m, n_used, n_tok, 1], &f32_bytes(&rng.vec((m * n_used * n_tok) as usize)));
        let ids: Vec<i32> = (0..n_used * n_tok).map(|i| ((i * 5 + i / 3) % n_as) as i32).collect();
        let ids = upload_i32(&be, [n_used, n_tok, 1, 1], &ids);
        let node = |a: &Tensor, b: &Tensor, d: &Tensor| Node {
            op: Op::MulMatId { b_prec: SrcPrec::Any },
            src: vec![Some(a.clone()), Some(b.clone()), Some(ids.clone())],
            dst: d.clone(),
        };
        let products = [(&gate, &x, m), (&up, &x, m), (&down, &h, k)];
        let together: Vec<Tensor> =
            products.iter().map(|&(_, _, rows)| output(&be, [rows, n_used, n_tok, 1])).collect();
        let mut g = Graph::new();
        for ((a, b, _), d) in products.iter().zip(&together) {
            g.push(node(a, b, d)).unwrap();
        }
        be.compute(&g).unwrap();
        for ((a, b, rows), d) in products.iter().zip(&together) {
            let alone = output(&be, [*rows, n_used, n_tok, 1]);
            let mut g = Graph::new();
            g.push(node(a, b, &alone)).unwrap();
            be.compute(&g).unwrap();
            let (x, y) = (download(d), download(&alone));
            assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{ty}: a product sharing ids differs");
        }
    }
    assert_no_validation_errors();
}

/// Experts of 128-576 KiB, 2-4 MiB together: with `GGVK_MAX_STORAGE_RANGE=1048576` (CI) they do not fit one
/// storage window and are bound a range at a time, on both paths.
#[test]
fn mul_mat_id_experts_in_pieces() {
    let be = backend();
    let mut rng = Rng::new(408);
    for (ty, k, m) in [(GgmlType::F32, 256, 128), (GgmlType::Q4_0, 1024, 512), (GgmlType::Q4_K, 1024, 512)] {
        for n_tok in [3, 20] {
            let c = Case {
                ty,
                n_as: 8,
                n_used: 3,
                broadcast: false,
                m,
                k,
                n_tok,
                m_v: m,
                ids_row: 3,
                exact: n_tok <= 8,
                one_expert: false,
                b_prec: SrcPrec::Any,
                amax: 1.0,
            };
            mul_mat_id_case(&be, &mut rng, &c);
        }
    }
    assert_no_validation_errors();
}

#[test]
fn mul_mat_id_declines_what_it_does_not_run() {
    let be = backend();
    let f32t = |ne: [i64; 4]| output(&be, ne);
    let ids = |ne: [i64; 4]| {
        let buf = be.alloc((ne.iter().product::<i64>() * 4) as u64).unwrap();
        Tensor::contiguous(buf, 0, GgmlType::I32, ne).unwrap()
    };
    let node = |a: &Tensor, b: &Tensor, i: &Tensor, d: &Tensor| Node {
        op: Op::MulMatId { b_prec: SrcPrec::Any },
        src: vec![Some(a.clone()), Some(b.clone()), Some(i.clone())],
        dst: d.clone(),
    };
    let a = f32t([32, 8, 4, 1]);
    // src1 with 2 columns for 4 slots: ggml allows it (slot % 2), ggvk declines.
    let err = Graph::new().push(node(&a, &f32t([32, 2, 3, 1]), &ids([4, 3, 1, 1]), &f32t([8, 4, 3, 1]))).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    // I32 weights.
    let ai = ids([32, 8, 4, 1]);
    let err = Graph::new().push(node(&ai, &f32t([32, 1, 3, 1]), &ids([2, 3, 1, 1]), &f32t([8, 2, 3, 1]))).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    // Wrong dst shape, ids that do not match the tokens.
    assert!(Graph::new().push(node(&a, &f32t([32, 1, 3, 1]), &ids([2, 3, 1, 1]), &f32t([8, 2, 4, 1]))).is_err());
    assert!(Graph::new().push(node(&a, &f32t([32, 1, 3, 1]), &ids([2, 2, 1, 1]), &f32t([8, 2, 3, 1]))).is_err());
    // F32 ids.
    assert!(Graph::new().push(node(&a, &f32t([32, 1, 3, 1]), &f32t([2, 3, 1, 1]), &f32t([8, 2, 3, 1]))).is_err());
    // F16 / BF16 experts round src1 to their type: declined where src1 must stay finer.
    let typed = |ty: GgmlType| {
        let buf = be.alloc(ty.row_size(32).unwrap() as u64 * 32).unwrap();
        Tensor::contiguous(buf, 0, ty, [32, 8, 4, 1]).unwrap()
    };
    let with_prec = |a: &Tensor, b_prec: SrcPrec| Node {
        op: Op::MulMatId { b_prec },
        ..node(a, &f32t([32, 1, 3, 1]), &ids([2, 3, 1, 1]), &f32t([8, 2, 3, 1]))
    };
    for (ty, prec) in [(GgmlType::F16, SrcPrec::F32), (GgmlType::F16, SrcPrec::Bf16), (GgmlType::BF16, SrcPrec::F32)] {
        let err = Graph::new().push(with_prec(&typed(ty), prec)).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{} {prec:?}: {err}", ty.name());
    }
    for (ty, prec) in [(GgmlType::F16, SrcPrec::F16), (GgmlType::BF16, SrcPrec::Bf16), (GgmlType::F32, SrcPrec::F32)] {
        Graph::new().push(with_prec(&typed(ty), prec)).unwrap();
    }
    // Many tokens: an expert map (4 bytes per expert and pair) larger than one storage window is made per piece of
    // tokens, so the node is taken either way.
    let (n_as, n_used, n_tok) = (1024, 8, 4125);
    let many = f32t([32, 1, n_as, 1]);
    let n = node(&many, &f32t([32, 1, n_tok, 1]), &ids([n_used, n_tok, 1, 1]), &f32t([1, n_used, n_tok, 1]));
    ggvk::ops::check_on(be.device(), &n).unwrap();
    assert_no_validation_errors();
}

/// BF16 experts whose rows are not a multiple of 4 values run the scalar BF16 kernels, on both paths (the mat-vec
/// one bit for bit against MUL_MAT).
#[test]
fn mul_mat_id_bf16_rows_of_any_length() {
    let be = backend();
    let mut rng = Rng::new(410);
    for k in [3, 5, 129] {
        for (n_tok, broadcast, exact) in [(2, false, true), (5, true, true), (16, false, false)] {
            let c = Case {
                ty: GgmlType::BF16,
                n_as: 4,
                n_used: 2,
                broadcast,
                m: 64,
                k,
                n_tok,
                m_v: 64,
                ids_row: 2,
                exact,
                one_expert: false,
                b_prec: SrcPrec::Any,
                amax: 1.0,
            };
            mul_mat_id_case(&be, &mut rng, &c);
        }
    }
    assert_no_validation_errors();
}

/// src1 of 300 tokens x 1024 values (1.2 MB, and as much for the copy rounded onto the CPU's grid for IQ4_NL): with
/// `GGVK_MAX_STORAGE_RANGE=1048576` (CI) more than one storage window, so the node is recorded in pieces of tokens;
/// with the device's own window, in one piece.
#[test]
fn mul_mat_id_tokens_in_pieces() {
    let be = backend();
    let mut rng = Rng::new(411);
    for ty in [GgmlType::F32, GgmlType::Q4_0, GgmlType::IQ4_NL] {
        for (broadcast, n_tok) in [(true, 300), (false, 150)] {
            let c = Case {
                ty,
                n_as: 4,
                n_used: 2,
                broadcast,
                m: 16,
                k: 1024,
                n_tok,
                m_v: 16,
                ids_row: 2,
                exact: false,
                one_expert: false,
                b_prec: SrcPrec::Any,
                amax: 1.0,
            };
            mul_mat_id_case(&be, &mut rng, &c);
        }
    }
    assert_no_validation_errors();
}

/// An I32 tensor `ne` (contiguous) holding `vals`.
fn upload_i32(be: &Backend, ne: [i64; 4], vals: &[i32]) -> Tensor {
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
    upload(be, GgmlType::I32, ne, &bytes)
}

fn download_i32(t: &Tensor) -> Vec<i32> {
    let mut out = vec![0u8; t.nbytes() as usize];
    t.read(0, &mut out).unwrap();
    out.chunks_exact(4).map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn add_id_adds_the_selected_rows() {
    let be = backend();
    let mut rng = Rng::new(404);
    for (n_embd, n_exp, n_used, n_tok, ids_row) in
        [(32, 4, 2, 1, 4), (129, 8, 4, 32, 8), (7, 3, 1, 5, 1), (64, 16, 8, 3, 8)]
    {
        let a_vals = rng.vec(n_embd * n_used * n_tok);
        let b_vals = rng.vec(n_embd * n_exp);
        let ids: Vec<i32> = (0..ids_row * n_tok).map(|_| rng.below(n_exp as u64) as i32).collect();
        let a = upload(&be, GgmlType::F32, [n_embd as i64, n_used as i64, n_tok as i64, 1], &f32_bytes(&a_vals));
        let b = upload(&be, GgmlType::F32, [n_embd as i64, n_exp as i64, 1, 1], &f32_bytes(&b_vals));
        let ids_full = upload_i32(&be, [ids_row as i64, n_tok as i64, 1, 1], &ids);
        let ids_t =
            Tensor::new(ids_full.buffer.clone(), 0, GgmlType::I32, [n_used as i64, n_tok as i64, 1, 1], ids_full.nb)
                .unwrap();
        let d = output(&be, a.ne);
        let mut g = Graph::new();
        g.push(Node { op: Op::AddId, src: vec![Some(a), Some(b), Some(ids_t)], dst: d.clone() }).unwrap();
        be.compute(&g).unwrap();
        let got = download(&d);
        for t in 0..n_tok {
            for s in 0..n_used {
                let e = ids[t * ids_row + s] as usize;
                for i in 0..n_embd {
                    let at = (t * n_used + s) * n_embd + i;
                    // One f32 addition, as on the CPU: exact equality.
                    let want = a_vals[at] + b_vals[e * n_embd + i];
                    assert_eq!(got[at].to_bits(), want.to_bits(), "n_embd {n_embd} token {t} slot {s} i {i}");
                }
            }
        }
    }
    assert_no_validation_errors();
}

/// The stable sort of each row's indices (ties in index order), ascending or descending.
fn ref_argsort(row: &[f32], desc: bool) -> Vec<i32> {
    let mut idx: Vec<i32> = (0..row.len() as i32).collect();
    idx.sort_by(|&x, &y| {
        let (a, b) = (row[x as usize], row[y as usize]);
        let o = a.partial_cmp(&b).unwrap();
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    idx
}

#[test]
fn argsort_rows_both_orders_with_ties() {
    let be = backend();
    let mut rng = Rng::new(405);
    for ne in [
        [16i64, 10, 10, 10],
        [60, 3, 2, 1],
        [1, 4, 1, 1],
        [2, 8, 33, 1],
        [1023, 2, 1, 3],
        [1025, 2, 1, 1],
        [128, 5, 1, 1],
        // Past 4096 values (lavapipe's 32 KiB of shared memory): the multi-pass sort.
        [5000, 3, 1, 1],
        [70001, 2, 1, 1],
    ] {
        let n = ne.iter().product::<i64>() as usize;
        // Values on a coarse grid so rows have ties.
        let vals: Vec<f32> = (0..n).map(|_| (rng.f32() * 8.0).round()).collect();
        let a = upload(&be, GgmlType::F32, ne, &f32_bytes(&vals));
        for desc in [false, true] {
            let buf = be.alloc((n * 4) as u64).unwrap();
            let d = Tensor::contiguous(buf, 0, GgmlType::I32, ne).unwrap();
            let mut g = Graph::new();
            g.push(Node { op: Op::ArgSort { desc }, src: vec![Some(a.clone())], dst: d.clone() }).unwrap();
            be.compute(&g).unwrap();
            let got = download_i32(&d);
            for (r, row) in vals.chunks(ne[0] as usize).enumerate() {
                let want = ref_argsort(row, desc);
                assert_eq!(&got[r * ne[0] as usize..][..ne[0] as usize], &want[..], "{ne:?} desc {desc} row {r}");
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn top_k_gives_the_largest() {
    let be = backend();
    let mut rng = Rng::new(406);
    for (ne, k) in [
        ([16i64, 10, 10, 1], 4),
        ([60, 3, 1, 1], 8),
        ([1, 2, 1, 3], 1),
        ([1025, 2, 1, 1], 100),
        ([7, 3, 1, 1], 7),
        ([100_000, 2, 1, 1], 50),
    ] {
        let n = ne.iter().product::<i64>() as usize;
        let vals: Vec<f32> = (0..n).map(|_| (rng.f32() * 50.0).round()).collect();
        let a = upload(&be, GgmlType::F32, ne, &f32_bytes(&vals));
        let dne = [k, ne[1], ne[2], ne[3]];
        let buf = be.alloc((dne.iter().product::<i64>() * 4) as u64).unwrap();
        let d = Tensor::contiguous(buf, 0, GgmlType::I32, dne).unwrap();
        let mut g = Graph::new();
        g.push(Node { op: Op::TopK, src: vec![Some(a.clone())], dst: d.clone() }).unwrap();
        be.compute(&g).unwrap();
        let got = download_i32(&d);
        for (r, row) in vals.chunks(ne[0] as usize).enumerate() {
            // ggvk's order: descending, ties by index (ggml leaves the order open; the set of values is what counts).
            let want = &ref_argsort(row, true)[..k as usize];
            assert_eq!(&got[r * k as usize..][..k as usize], want, "{ne:?} k {k} row {r}");
        }
    }
    // I32 values are declined, not run.
    let ints = upload_i32(&be, [16, 1, 1, 1], &[0; 16]);
    let buf = be.alloc(16).unwrap();
    let d = Tensor::contiguous(buf, 0, GgmlType::I32, [4, 1, 1, 1]).unwrap();
    let err = Graph::new().push(Node { op: Op::TopK, src: vec![Some(ints)], dst: d }).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert_no_validation_errors();
}
