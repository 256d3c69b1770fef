//! Bad input through the engine (the checks the C API and the ggml adapter run): misaligned offsets, unsupported types, zero-sized tensors, views
//! past the end of a buffer, NaN/Inf data. Each gives a clear error status or the right result, never a crash or
//! an out-of-bounds access (bytes around every destination are checked), validation layer clean.

mod common;

use common::*;
use ggvk::quant::GgmlType;
use ggvk::{Error, Graph, Node, Op, Tensor};

#[test]
fn bad_tensors_are_clear_errors() {
    let be = backend();
    let buf = be.alloc(1024).expect("alloc");
    let t = |off: u64, ty: GgmlType, ne: [i64; 4]| Tensor::contiguous(buf.clone(), off, ty, ne);
    // Past the end: 256 floats at offset 4 need 1028 bytes.
    match t(4, GgmlType::F32, [256, 1, 1, 1]) {
        Err(Error::OutOfBounds(m)) => assert!(m.contains("past the end"), "{m}"),
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
    // Offsets beyond the buffer or overflowing, negative and overflowing shapes, partial blocks.
    assert!(matches!(t(4096, GgmlType::F32, [1, 1, 1, 1]), Err(Error::OutOfBounds(_))));
    assert!(matches!(t(u64::MAX - 1, GgmlType::F32, [1, 1, 1, 1]), Err(Error::OutOfBounds(_))));
    assert!(matches!(t(0, GgmlType::F32, [-4, 1, 1, 1]), Err(Error::InvalidArgument(_))));
    assert!(matches!(t(0, GgmlType::F32, [i64::MAX, 4, 1, 1]), Err(Error::InvalidArgument(_))));
    assert!(matches!(t(0, GgmlType::F32, [0, i64::MAX, 4, 1]), Err(Error::InvalidArgument(_))));
    assert!(matches!(t(0, GgmlType::Q4_0, [33, 1, 1, 1]), Err(Error::InvalidArgument(_))));
    // A view whose strides reach past the end (offset and shape alone would fit), and quantized rows that are not
    // packed blocks.
    let view = Tensor::new(buf.clone(), 0, GgmlType::F32, [4, 4, 1, 1], [4, 512, 2048, 2048]);
    assert!(matches!(view, Err(Error::OutOfBounds(_))), "{view:?}");
    let q = Tensor::new(buf.clone(), 0, GgmlType::Q4_0, [32, 2, 1, 1], [16, 18, 36, 36]);
    assert!(matches!(q, Err(Error::InvalidArgument(_))), "{q:?}");
    // Transfers past the end or overlapping.
    assert!(matches!(buf.write(1020, &[0u8; 16]), Err(Error::OutOfBounds(_))));
    assert!(matches!(buf.write(u64::MAX, &[0u8; 16]), Err(Error::OutOfBounds(_))));
    assert!(matches!(buf.fill(1000, 100, 0), Err(Error::OutOfBounds(_))));
    assert!(matches!(buf.copy_to(0, &buf, 8, 16), Err(Error::InvalidArgument(_))));
    // A tensor's own reads and writes stay inside it.
    let small = t(0, GgmlType::F32, [4, 1, 1, 1]).unwrap();
    assert!(matches!(small.write(8, &[0u8; 16]), Err(Error::OutOfBounds(_))));
    // Zero-sized buffers are refused; absurd sizes fail as unsupported or out of memory, never abort.
    assert!(matches!(be.alloc(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(be.alloc(u64::MAX / 2), Err(Error::Unsupported(_) | Error::OutOfDeviceMemory(_))));
    assert_no_validation_errors();
}

#[test]
fn zero_sized_and_misaligned_products() {
    let be = backend();
    let buf = be.alloc(1 << 16).expect("alloc");
    let t = |off: u64, ne: [i64; 4]| Tensor::contiguous(buf.clone(), off, GgmlType::F32, ne).unwrap();
    // Zero-sized product: accepted and computed as nothing.
    let mut g = Graph::new();
    g.mul_mat(&t(0, [32, 0, 1, 1]), &t(256, [32, 4, 1, 1]), &t(1024, [0, 4, 1, 1])).expect("zero-sized node");
    be.compute(&g).expect("zero-sized graph");
    // Misaligned F32 weights (offset 2050): refused with a clear error, or computed right; never a crash.
    let (a, b, d) = (t(2050, [32, 4, 1, 1]), t(4096, [32, 1, 1, 1]), t(8192, [4, 1, 1, 1]));
    let mut rng = Rng::new(1);
    let (wa, wb) = (rng.vec(128), rng.vec(32));
    a.write(0, &f32_bytes(&wa)).unwrap();
    b.write(0, &f32_bytes(&wb)).unwrap();
    let mut g = Graph::new();
    let r = g.mul_mat(&a, &b, &d).and_then(|()| be.compute(&g).map(|_| ()));
    match r {
        Ok(()) => {
            let mut out = [0u8; 16];
            d.read(0, &mut out).unwrap();
            for (m, got) in bytes_f32(&out).iter().enumerate() {
                let want: f64 = (0..32).map(|k| f64::from(wa[m * 32 + k]) * f64::from(wb[k])).sum();
                assert!((f64::from(*got) - want).abs() < 1e-3, "row {m}: {got} vs {want}");
            }
        }
        Err(Error::Unsupported(m) | Error::InvalidArgument(m)) => assert!(m.contains("offset"), "{m}"),
        Err(e) => panic!("misaligned weights: {e}"),
    }
    // Misaligned element offsets for an elementwise op: refused, never a partial-element access.
    let odd = Tensor::contiguous(buf.clone(), 3, GgmlType::F32, [8, 1, 1, 1]).unwrap();
    let mut g = Graph::new();
    let r = g.push(Node { op: Op::Add, src: vec![Some(odd.clone()), Some(odd)], dst: t(512, [8, 1, 1, 1]) });
    let r = r.and_then(|()| be.compute(&g).map(|_| ()));
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
    assert_no_validation_errors();
}

#[test]
fn nan_and_inf_flow_through_and_nothing_outside_dst_changes() {
    let be = backend();
    let n = 64usize;
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::MAX, f32::MIN_POSITIVE / 2.0];
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..n).map(|i| if i % 5 == 0 { specials[(i / 5) % specials.len()] } else { rng.f32() }).collect();
    let y: Vec<f32> = (0..n).map(|i| if i % 7 == 0 { specials[(i / 7) % specials.len()] } else { rng.f32() }).collect();
    // One buffer: x, y, a guard region, dst, another guard region; guards filled with a marker.
    let buf = be.alloc(4096).expect("alloc");
    buf.fill(0, 4096, 0xA5).expect("fill");
    let tx = Tensor::contiguous(buf.clone(), 0, GgmlType::F32, [n as i64, 1, 1, 1]).unwrap();
    let ty = Tensor::contiguous(buf.clone(), 512, GgmlType::F32, [n as i64, 1, 1, 1]).unwrap();
    let td = Tensor::contiguous(buf.clone(), 2048, GgmlType::F32, [n as i64, 1, 1, 1]).unwrap();
    tx.write(0, &f32_bytes(&x)).unwrap();
    ty.write(0, &f32_bytes(&y)).unwrap();
    let mut g = Graph::new();
    g.push(Node { op: Op::Add, src: vec![Some(tx.clone()), Some(ty.clone())], dst: td.clone() }).unwrap();
    be.compute(&g).expect("compute");
    let mut all = vec![0u8; 4096];
    buf.read(0, &mut all).unwrap();
    let got = bytes_f32(&all[2048..2048 + 4 * n]);
    for i in 0..n {
        let want = x[i] + y[i];
        assert!(want.to_bits() == got[i].to_bits() || (want.is_nan() && got[i].is_nan()), "{i}: {} + {}", x[i], y[i]);
    }
    for (i, b) in all.iter().enumerate() {
        if (4 * n..512).contains(&i) || (512 + 4 * n..2048).contains(&i) || i >= 2048 + 4 * n {
            assert_eq!(*b, 0xA5, "byte {i} outside every tensor changed");
        }
    }
    // RMS_NORM of a row with an Inf: ggml gives NaN for it (inf / inf); the finite rows stay finite.
    let rows = Tensor::contiguous(buf.clone(), 0, GgmlType::F32, [16, 4, 1, 1]).unwrap();
    let clean: Vec<f32> = (0..64).map(|i| if i == 3 { f32::INFINITY } else { (i as f32 - 30.0) / 10.0 }).collect();
    rows.write(0, &f32_bytes(&clean)).unwrap();
    let out = Tensor::contiguous(buf.clone(), 2048, GgmlType::F32, [16, 4, 1, 1]).unwrap();
    let mut g = Graph::new();
    g.push(Node { op: Op::RmsNorm { eps: 1e-6 }, src: vec![Some(rows)], dst: out.clone() }).unwrap();
    be.compute(&g).expect("compute");
    let mut o = vec![0u8; 256];
    out.read(0, &mut o).unwrap();
    let o = bytes_f32(&o);
    assert!(o[..16].iter().any(|v| v.is_nan()), "row 0 has an Inf: {:?}", &o[..16]);
    assert!(o[16..].iter().all(|v| v.is_finite()), "finite rows must stay finite");
    assert_no_validation_errors();
}
