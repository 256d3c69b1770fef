//! Row-split weights (`ggvk::split`): a weight matrix's rows on two logical devices (here two VkDevices opened on
//! the same GPU, which share no memory, like two GPUs), bytes written and read across the boundary, and products
//! over it (one column: results written straight into their rows; several: gathered through a CPY) in groups that
//! share src1, against the same products over the unsplit weight on one device; large transfers between the devices
//! go through host memory both imported (`Buffer::copy_across`, where the driver offers it: lavapipe does).
//! Validation layer on.

mod common;

use std::sync::Arc;

use common::*;
use ggvk::graph::Graph;
use ggvk::quant::GgmlType;
use ggvk::split::{SplitProduct, SplitRunner, SplitWeight};
use ggvk::vk::Device;
use ggvk::{Backend, Tensor};

const K: i64 = 256;

fn two_devices() -> (Backend, Arc<Device>) {
    let main = backend();
    let other = Device::open_unshared(main.device().index()).expect("a second logical device");
    assert!(!Arc::ptr_eq(main.device(), &other));
    (main, other)
}

/// A split weight of `m` rows of `ty` with `bounds` over (main, other), holding `bytes`; also the unsplit tensor.
fn weight(
    main: &Backend,
    other: &Arc<Device>,
    ty: GgmlType,
    m: i64,
    bounds: &[i64],
    bytes: &[u8],
) -> (Arc<SplitWeight>, Tensor) {
    let devices = [main.device().clone(), other.clone()];
    let w = SplitWeight::new(&devices, bounds, ty, [K, m, 1, 1]).unwrap();
    w.write(0, bytes).unwrap();
    (Arc::new(w), upload(main, ty, [K, m, 1, 1], bytes))
}

#[test]
fn bytes_reach_each_row_on_its_device() {
    let (main, other) = two_devices();
    let mut rng = Rng::new(7);
    let ty = GgmlType::Q4_0;
    let bytes = random_typed(&mut rng, ty, (K * 100) as usize);
    let (w, _) = weight(&main, &other, ty, 100, &[0, 64, 100], &bytes);
    assert_eq!(w.parts().len(), 2);
    assert!(Arc::ptr_eq(w.parts()[1].buffer.device(), &other));
    let mut back = vec![0u8; bytes.len()];
    w.read(0, &mut back).unwrap();
    assert_eq!(back, bytes);
    // A range across the boundary, at odd offsets.
    let row = ty.row_size(K).unwrap() as u64;
    let (at, len) = (64 * row - 5, 23usize);
    let patch: Vec<u8> = (0..len as u8).collect();
    w.write(at, &patch).unwrap();
    let mut got = vec![0u8; len + 10];
    w.read(at - 5, &mut got).unwrap();
    assert_eq!(&got[5..5 + len], &patch[..]);
    assert_eq!(&got[..5], &bytes[at as usize - 5..at as usize]);
    let mut part = vec![0u8; 7];
    w.parts()[1].buffer.read(0, &mut part).unwrap();
    assert_eq!(&part[..], &patch[5..12]);
    // Past the end: an error, nothing written.
    assert!(w.write(w.nbytes() - 2, &[0; 4]).is_err());
    w.fill(0, w.nbytes(), 0).unwrap();
    w.read(0, &mut back).unwrap();
    assert!(back.iter().all(|&b| b == 0));
    assert_no_validation_errors();
}

#[test]
fn split_products_equal_the_unsplit_ones() {
    let (main, other) = two_devices();
    let runner = SplitRunner::default();
    let mut rng = Rng::new(11);
    for ty in [GgmlType::Q4_0, GgmlType::F16, GgmlType::Q4_K] {
        for n in [1i64, 7] {
            // Three products over one src1: rows over both devices, all on the other device, all on main.
            let shapes: [(i64, Vec<i64>); 3] = [(200, vec![0, 128, 200]), (96, vec![0, 0, 96]), (64, vec![0, 64, 64])];
            let xv = rng.vec((K * n) as usize);
            let x = upload(&main, GgmlType::F32, [K, n, 1, 1], &f32_bytes(&xv));
            let mut group = Vec::new();
            let mut plain = Graph::new();
            let mut wants = Vec::new();
            for (m, bounds) in &shapes {
                let bytes = random_typed(&mut rng, ty, (K * m) as usize);
                let (w, whole) = weight(&main, &other, ty, *m, bounds, &bytes);
                let dst = output(&main, [*m, n, 1, 1]);
                let want = output(&main, [*m, n, 1, 1]);
                plain.mul_mat(&whole, &x, &want).unwrap();
                wants.push(want);
                group.push(SplitProduct { weight: w, src1: x.clone(), dst });
            }
            main.compute(&plain).unwrap();
            let mut after = Graph::new();
            runner.run(&main, &group, &mut after).unwrap();
            // One column, or all of a dst's rows, goes straight in; the other device's 72 of 200 rows over several
            // columns land through a CPY.
            assert_eq!(after.len(), if n == 1 { 0 } else { 1 }, "{ty:?} n={n}");
            if !after.is_empty() {
                main.compute_async(&after).unwrap();
            }
            main.synchronize().unwrap();
            for (p, want) in group.iter().zip(&wants) {
                let (got, want) = (download(&p.dst), download(want));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                        "{ty:?} n={n} {:?}: element {i}: {g} vs {w}",
                        p.weight
                    );
                }
            }
        }
    }
    assert_no_validation_errors();
}

#[test]
fn products_of_a_group_must_share_src1() {
    let (main, other) = two_devices();
    let mut rng = Rng::new(3);
    let ty = GgmlType::Q8_0;
    let bytes = random_typed(&mut rng, ty, (K * 128) as usize);
    let (w, _) = weight(&main, &other, ty, 128, &[0, 64, 128], &bytes);
    let x1 = upload(&main, GgmlType::F32, [K, 1, 1, 1], &f32_bytes(&rng.vec(K as usize)));
    let x2 = upload(&main, GgmlType::F32, [K, 1, 1, 1], &f32_bytes(&rng.vec(K as usize)));
    let group = [
        SplitProduct { weight: w.clone(), src1: x1, dst: output(&main, [128, 1, 1, 1]) },
        SplitProduct { weight: w.clone(), src1: x2.clone(), dst: output(&main, [128, 1, 1, 1]) },
    ];
    assert!(SplitRunner::default().run(&main, &group, &mut Graph::new()).is_err());
    // A dst of the wrong shape is refused too.
    let bad = [SplitProduct { weight: w, src1: x2, dst: output(&main, [64, 1, 1, 1]) }];
    assert!(SplitRunner::default().run(&main, &bad, &mut Graph::new()).is_err());
    assert_no_validation_errors();
}

#[test]
fn large_copies_between_devices_go_through_imported_host_memory() {
    let (main, other) = two_devices();
    let imports = main.device().caps().host_import_alignment > 0;
    // More than one pass through the 32 MiB block, at odd offsets.
    let len = (ggvk::vk::host_import::BLOCK_BYTES + 3 * 4096 + 12) as usize;
    let mut rng = Rng::new(5);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    let a = main.alloc(len as u64 + 100).unwrap();
    let b = ggvk::vk::Buffer::new(&other, len as u64 + 200, "test").unwrap();
    a.write(36, &bytes).unwrap();
    b.fill(0, b.size(), 0xAB).unwrap();
    let done = a.copy_across(36, &b, 100, len as u64).unwrap();
    assert_eq!(done, imports, "copy_across runs exactly where the device imports host memory");
    if done {
        let mut back = vec![0u8; len + 200];
        b.read(0, &mut back).unwrap();
        assert!(back[..100].iter().all(|&x| x == 0xAB), "bytes before the target range untouched");
        assert!(back[100..100 + len] == bytes[..], "copied bytes differ");
        assert!(back[100 + len..].iter().all(|&x| x == 0xAB), "bytes after the target range untouched");
    }
    // Same device, or out of range: nothing copied / an error.
    let c = main.alloc(64).unwrap();
    assert!(!a.copy_across(0, &c, 0, 64).unwrap());
    assert!(!a.copy_across(0, &b, 0, 64).unwrap(), "small copies are left to the host path");
    assert!(a.copy_across(0, &b, b.size() - 8, 64).is_err());
    assert_no_validation_errors();
}

#[test]
fn products_with_large_inputs_and_results_equal_the_unsplit_ones() {
    // src1 of 300 columns (300 KiB) and the other device's 1,024 rows of results (1.2 MiB) cross between the
    // devices through imported host memory; 72 of those rows land through the gather buffer.
    let (main, other) = two_devices();
    let runner = SplitRunner::default();
    let mut rng = Rng::new(13);
    let ty = GgmlType::Q8_0;
    let n = 300i64;
    let xv = rng.vec((K * n) as usize);
    let x = upload(&main, GgmlType::F32, [K, n, 1, 1], &f32_bytes(&xv));
    let mut group = Vec::new();
    let mut plain = Graph::new();
    let mut wants = Vec::new();
    for (m, bounds) in [(2048i64, vec![0, 1024, 2048]), (1024, vec![0, 0, 1024])] {
        let bytes = random_typed(&mut rng, ty, (K * m) as usize);
        let (w, whole) = weight(&main, &other, ty, m, &bounds, &bytes);
        let want = output(&main, [m, n, 1, 1]);
        plain.mul_mat(&whole, &x, &want).unwrap();
        wants.push(want);
        group.push(SplitProduct { weight: w, src1: x.clone(), dst: output(&main, [m, n, 1, 1]) });
    }
    main.compute(&plain).unwrap();
    let mut after = Graph::new();
    runner.run(&main, &group, &mut after).unwrap();
    assert_eq!(after.len(), 1, "the first product's other rows go through the gather buffer");
    main.compute(&after).unwrap();
    for (p, want) in group.iter().zip(&wants) {
        let (got, want) = (download(&p.dst), download(want));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{:?}: element {i}: {g} vs {w}", p.weight);
        }
    }
    assert_no_validation_errors();
}
