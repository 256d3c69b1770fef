//! Several backends on one device, used from several threads at once: each thread has its own backend (command
//! stream, own queue submissions) and its own model buffers; the device, its queue and its pipelines are shared.
//! Every step's logits must equal what a single thread computed for the same weights and tokens.

mod tiny;

use std::sync::{Arc, Barrier};

use ggvk::Backend;
use tiny::{plausible, Model};

fn backend() -> Backend {
    let index = std::env::var("GGVK_DEVICE").ok().map(|s| s.parse::<usize>().expect("GGVK_DEVICE is an index"));
    Backend::new(index).expect("backend")
}

#[test]
fn backends_on_one_device_from_several_threads() {
    const THREADS: u64 = 4;
    const STEPS: u64 = 12;
    let first = backend();
    // References, one thread, one backend: per (thread seed, token seed).
    let mut reference = Vec::new();
    for t in 0..THREADS {
        let m = Model::new(&first, 100 + t).expect("model");
        let per: Vec<Vec<f32>> = (0..STEPS).map(|s| m.step(&first, 1000 * t + s).expect("reference step")).collect();
        assert!(per.iter().all(|l| plausible(l)));
        reference.push(per);
    }
    let pipelines = first.device().pipelines().len();
    let device = first.device().clone();
    let reference = Arc::new(reference);
    let start = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let device = device.clone();
            let reference = reference.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let be = Backend::on(&device).expect("backend on the shared device");
                let m = Model::new(&be, 100 + t).expect("model");
                start.wait();
                for s in 0..STEPS {
                    let logits = m.step(&be, 1000 * t + s).expect("step");
                    assert_eq!(logits, reference[t as usize][s as usize], "thread {t} step {s}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker thread failed");
    }
    // Backends made through Backend::new share the device too.
    let other = backend();
    assert!(Arc::ptr_eq(other.device(), &device), "Backend::new opened a second device");
    assert_eq!(device.pipelines().len(), pipelines, "pipelines were created again instead of shared");
    assert_eq!(ggvk::vk::validation_error_count(), 0, "Vulkan validation errors were reported (see stderr)");
}

#[test]
fn one_backend_shared_by_threads_serialises() {
    // One backend, several threads, each with its own buffers: calls on the backend serialise, results are right.
    let be = Arc::new(backend());
    let models: Vec<Model> = (0..3).map(|t| Model::new(&be, 200 + t).expect("model")).collect();
    let reference: Vec<Vec<f32>> = models.iter().map(|m| m.step(&be, 5).expect("reference")).collect();
    let models = Arc::new(models);
    let handles: Vec<_> = (0..3)
        .map(|t| {
            let (be, models) = (be.clone(), models.clone());
            std::thread::spawn(move || (0..6).map(|_| models[t].step(&be, 5).expect("step")).collect::<Vec<_>>())
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        for logits in h.join().expect("a worker thread failed") {
            assert_eq!(logits, reference[t], "thread {t}");
        }
    }
    assert_eq!(ggvk::vk::validation_error_count(), 0, "Vulkan validation errors were reported (see stderr)");
}
