//! Fault injection over a full step of a small llama-like model (tests/tiny): every allocation, submit, pipeline
//! creation and host mapping of building the model and running one step is made to fail in turn. Each failure must
//! come back as an error (no crash), leave nothing allocated once everything is dropped (ggvk's live-allocation
//! count and gpu-allocator's report at device drop), and the same backend must work again (same logits as a clean
//! run) once the fault is disarmed, except after a device loss, where every later call must fail, freeing must
//! work, and a new backend must work.
//!
//! `cargo test --release --features fault-injection --test fault_injection`; `GGVK_SOAK=N` sets the soak length.
#![cfg(feature = "fault-injection")]

mod tiny;

use std::sync::Mutex;

use ggvk::vk::fault::{self, Fault, FaultKind, ALL_KINDS};
use ggvk::{Backend, Error};
use tiny::{plausible, Model, Rng};

/// The counters are process-wide: tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SEED: u64 = 7;
const TOKENS: u64 = 11;

fn backend() -> Backend {
    let index = std::env::var("GGVK_DEVICE").ok().map(|s| s.parse::<usize>().expect("GGVK_DEVICE is an index"));
    Backend::new(index).expect("backend")
}

fn build_and_step(be: &Backend) -> (Option<Model>, ggvk::Result<Vec<f32>>) {
    match Model::new(be, SEED) {
        Ok(m) => {
            let r = m.step(be, TOKENS);
            (Some(m), r)
        }
        Err(e) => (None, Err(e)),
    }
}

/// Nothing of ggvk is left: no device, no allocation, gpu-allocator reported no leak at any device drop.
fn assert_clean(what: &str) {
    assert_eq!(fault::live_allocations(), 0, "{what}: allocations left after dropping everything");
    assert_eq!(fault::live_devices(), 0, "{what}: a device is still open after dropping everything");
    assert_eq!(fault::leaked_at_drop(), 0, "{what}: gpu-allocator reported live allocations at device drop");
}

fn assert_no_validation_errors() {
    assert_eq!(ggvk::vk::validation_error_count(), 0, "Vulkan validation errors were reported (see stderr)");
}

/// Hits of each kind in building the model and running one step on a fresh device, and the clean logits.
fn census() -> ([u64; 4], Vec<f32>) {
    fault::reset();
    let be = backend();
    let (m, r) = build_and_step(&be);
    let logits = r.expect("clean step");
    assert!(plausible(&logits), "clean logits are implausible: {:?}", &logits[..8]);
    let hits = ALL_KINDS.map(fault::hits);
    drop(m);
    drop(be);
    assert_clean("census");
    (hits, logits)
}

fn fault_for(kind: FaultKind) -> Fault {
    match kind {
        FaultKind::Alloc => Fault::OutOfDeviceMemory,
        _ => Fault::OutOfHostMemory,
    }
}

#[test]
fn sweep_every_fault_point_of_a_model_step() {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (hits, reference) = census();
    eprintln!(
        "fault points in one build + step: alloc {} submit {} pipeline {} map {}",
        hits[0], hits[1], hits[2], hits[3]
    );
    for kind in ALL_KINDS {
        assert!(hits[kind as usize] > 0, "no {kind:?} point was hit: the sweep would cover nothing");
    }
    let mut covered = 0;
    for kind in ALL_KINDS {
        for n in 1..=hits[kind as usize] {
            let what = format!("{kind:?} #{n}");
            fault::reset();
            let be = backend();
            fault::arm(kind, n, fault_for(kind));
            let (model, r) = build_and_step(&be);
            assert_eq!(fault::fired(kind), 1, "{what}: the fault did not fire");
            let err = r.expect_err(&format!("{what}: an injected failure was swallowed"));
            assert!(
                matches!(err, Error::OutOfDeviceMemory(_) | Error::OutOfHostMemory(_)),
                "{what}: unexpected error {err}"
            );
            fault::disarm();
            // The same backend works again: rebuild what failed to build, run the step, same logits.
            let model = match model {
                Some(m) => m,
                None => Model::new(&be, SEED).unwrap_or_else(|e| panic!("{what}: rebuild after disarm: {e}")),
            };
            let again = model.step(&be, TOKENS).unwrap_or_else(|e| panic!("{what}: step after disarm: {e}"));
            assert_eq!(again, reference, "{what}: logits after recovery differ from the clean run");
            drop(model);
            drop(be);
            assert_clean(&what);
            covered += 1;
        }
    }
    eprintln!("fault points covered: {covered}");
    assert_no_validation_errors();
}

#[test]
fn device_lost_at_every_submit() {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (hits, reference) = census();
    for n in 1..=hits[FaultKind::Submit as usize] {
        fault::reset();
        let be = backend();
        let model = Model::new(&be, SEED).expect("build");
        fault::arm(FaultKind::Submit, n, Fault::DeviceLost);
        let err = model.step(&be, TOKENS).expect_err("device loss at submit was swallowed");
        assert!(matches!(err, Error::DeviceLost(_)), "submit #{n}: expected DeviceLost, got {err}");
        fault::disarm();
        assert!(be.device().is_lost());
        // Every later call fails cleanly with DeviceLost.
        assert!(matches!(model.step(&be, TOKENS), Err(Error::DeviceLost(_))));
        assert!(matches!(be.alloc(256), Err(Error::DeviceLost(_))));
        assert!(matches!(be.compute(&model.graph), Err(Error::DeviceLost(_))));
        let mut out = [0u8; 16];
        assert!(matches!(model.acts.read(0, &mut out), Err(Error::DeviceLost(_))));
        // A new backend on the same device index opens a fresh device and works, while the lost one still lives.
        let be2 = backend();
        assert!(!be2.device().is_lost());
        let m2 = Model::new(&be2, SEED).expect("build on the new backend");
        assert_eq!(m2.step(&be2, TOKENS).expect("step on the new backend"), reference);
        // Freeing the lost backend and its buffers works.
        drop(model);
        drop(be);
        drop(m2);
        drop(be2);
        assert_clean(&format!("device lost at submit #{n}"));
    }
    assert_no_validation_errors();
}

#[test]
fn soak_with_random_failures() {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let steps: u64 = std::env::var("GGVK_SOAK").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let (_, reference) = census();
    fault::reset();
    let mut rng = Rng::new(0x50AC);
    let mut be = backend();
    let mut model = Model::new(&be, SEED).ok();
    let (mut ok, mut failed, mut lost, mut rebuilt) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..steps {
        // Now and then start over: a new model (allocation points), or a new backend on a fresh device (pipeline
        // points too: pipelines live as long as their device).
        let fresh_device = rng.below(16) == 0;
        if fresh_device {
            model = None;
            drop(be);
            be = backend();
        } else if rng.below(8) == 0 {
            model = None;
        }
        let inject = rng.below(2) == 0;
        if inject {
            // Pipelines are created only on a fresh device: aim there more often.
            let kind =
                if fresh_device && rng.below(2) == 0 { FaultKind::Pipeline } else { ALL_KINDS[rng.below(4) as usize] };
            let fault = match rng.below(20) {
                0 => Fault::DeviceLost,
                1..=9 => Fault::OutOfHostMemory,
                _ => Fault::OutOfDeviceMemory,
            };
            fault::arm(kind, 1 + rng.below(6), fault);
        }
        let mut r = Ok(Vec::new());
        if model.is_none() {
            rebuilt += 1;
            match Model::new(&be, SEED) {
                Ok(m) => model = Some(m),
                Err(e) => r = Err(e),
            }
        }
        if let (Ok(_), Some(m)) = (&r, &model) {
            r = m.step(&be, TOKENS);
        }
        fault::disarm();
        match r {
            Ok(logits) => {
                assert_eq!(logits, reference, "soak step {i}: wrong logits");
                ok += 1;
            }
            Err(Error::DeviceLost(_)) => {
                lost += 1;
                model = None;
                drop(be);
                be = backend();
            }
            Err(Error::OutOfDeviceMemory(_) | Error::OutOfHostMemory(_)) => failed += 1,
            Err(e) => panic!("soak step {i}: unexpected error {e}"),
        }
    }
    drop(model);
    drop(be);
    assert_clean("soak");
    eprintln!(
        "soak: {steps} steps, {ok} ok, {failed} failed with an injected error, {lost} device losses, {rebuilt} \
         rebuilds; faults fired: alloc {} submit {} pipeline {} map {}",
        fault::fired(FaultKind::Alloc),
        fault::fired(FaultKind::Submit),
        fault::fired(FaultKind::Pipeline),
        fault::fired(FaultKind::Map)
    );
    if steps >= 200 {
        for kind in ALL_KINDS {
            assert!(fault::fired(kind) > 0, "the soak injected no {kind:?} fault");
        }
        assert!(ok > steps / 4, "too few clean steps: {ok} of {steps}");
    }
    assert_no_validation_errors();
}
