//! Memory accounting: every byte ggvk allocates on the device (ggml-sized buffers, scratch for quantized
//! activations, staging) counts against the device's budget (`GGVK_MEMORY_BUDGET`, or `Device::set_memory_budget`).
//! A model whose buffers take 95% of the budget runs; one step's extra memory is accounted; an allocation past the
//! budget fails cleanly and leaves nothing behind.

mod tiny;

use std::sync::Mutex;

use ggvk::vk::fault;
use ggvk::{Backend, Error};
use tiny::{plausible, Model};

/// The budget is per device and the device is shared by the backends of this process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn backend() -> Backend {
    let index = std::env::var("GGVK_DEVICE").ok().map(|s| s.parse::<usize>().expect("GGVK_DEVICE is an index"));
    Backend::new(index).expect("backend")
}

#[test]
fn model_at_95_percent_of_the_budget() {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Unlimited first: what the model's buffers take, and what a step adds on top (scratch, staging).
    let be = backend();
    be.device().set_memory_budget(0);
    // The staging memory a device keeps for its transfers (made by the first uploads where buffers are not mapped,
    // as on discrete GPUs) is not the model's: made once before counting.
    drop(Model::new(&be, 3).expect("model"));
    let base = be.device().allocated_bytes();
    let m = Model::new(&be, 3).expect("model");
    let model_bytes = be.device().allocated_bytes() - base;
    let reference = m.step(&be, 9).expect("step");
    assert!(plausible(&reference));
    let step_extra = be.device().allocated_bytes() - base - model_bytes;
    eprintln!("model buffers {model_bytes} bytes, a step adds {step_extra} bytes (scratch/staging)");
    assert_eq!(model_bytes, m.weights.size().div_ceil(4) * 4 + m.acts.size().div_ceil(4) * 4);
    drop(m);
    assert_eq!(be.device().allocated_bytes(), base + step_extra, "freed buffers are still counted");

    // The model at 95% of a budget: building and 20 steps succeed, and never go past the budget.
    let budget = base + step_extra + model_bytes * 100 / 95;
    be.device().set_memory_budget(budget);
    let m = Model::new(&be, 3).expect("model at 95% of the budget");
    for s in 0..20 {
        assert_eq!(m.step(&be, 9).unwrap_or_else(|e| panic!("step {s} at 95%: {e}")), reference);
        assert!(be.device().allocated_bytes() <= budget);
    }
    drop(m);

    // One byte short of the model: building fails with OutOfDeviceMemory and leaves nothing allocated.
    be.device().set_memory_budget(base + step_extra + model_bytes - 1);
    let before = fault::live_allocations();
    match Model::new(&be, 3) {
        Err(Error::OutOfDeviceMemory(msg)) => assert!(msg.contains("budget"), "{msg}"),
        Err(e) => panic!("expected OutOfDeviceMemory, got {e}"),
        Ok(_) => panic!("a model larger than the budget was built"),
    }
    assert_eq!(fault::live_allocations(), before, "a failed build left allocations behind");
    be.device().set_memory_budget(0);
    assert_eq!(ggvk::vk::validation_error_count(), 0, "Vulkan validation errors were reported (see stderr)");
}

#[test]
fn hidden_step_memory_counts_against_the_budget() {
    let _s = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // On a fresh device (own backend; the budget is per device), the budget covers the model but not the scratch
    // memory of a step: the step fails cleanly, and works once the budget allows it.
    let be = backend();
    let dev = be.device().clone();
    let m = Model::new(&be, 4).expect("model");
    let used = dev.allocated_bytes();
    dev.set_memory_budget(used);
    let r = m.step(&be, 1);
    dev.set_memory_budget(0);
    match r {
        // Without scratch (GGVK_INT_DOT=0 keeps activations in f32) the step needs nothing more and works.
        Ok(l) => assert!(plausible(&l)),
        Err(Error::OutOfDeviceMemory(msg)) => {
            assert!(msg.contains("budget"), "{msg}");
            assert!(plausible(&m.step(&be, 1).expect("step once the budget allows it")));
        }
        Err(e) => panic!("unexpected error {e}"),
    }
    assert_eq!(ggvk::vk::validation_error_count(), 0, "Vulkan validation errors were reported (see stderr)");
}
