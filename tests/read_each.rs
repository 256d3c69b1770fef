//! `Buffer::read_each`: reads from buffers of several devices submitted together and waited for together (the
//! allreduce of tensor parallelism reads every device's partial so). `Readback`: a read started now, behind the
//! work already queued, and finished later (ggml's get_tensor_async). Run with staged (not mapped) buffers, as on
//! discrete GPUs (`GGVK_DIRECT_MAPPING=0`, its own test binary: knobs are read once per process); the two devices
//! are two VkDevices on one GPU. Validation layer on.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ggvk::backend::Deliver;
use ggvk::vk::{Buffer, Device, Readback};

fn staged() {
    // SAFETY: set before this binary's tests open a device; every test calls this first with the same value.
    unsafe { std::env::set_var("GGVK_DIRECT_MAPPING", "0") };
}

fn filled(device: &Arc<Device>, len: usize, seed: u64) -> (Arc<Buffer>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    let b = Buffer::new(device, len as u64, "test").unwrap();
    b.write(0, &bytes).unwrap();
    (b, bytes)
}

#[test]
fn reads_of_two_devices_go_together_and_return_each_ones_bytes() {
    staged();
    let main = backend();
    let other = Device::open_unshared(main.device().index()).unwrap();
    let (a, abytes) = filled(main.device(), 1 << 20, 1);
    let (b, bbytes) = filled(&other, 3 << 20, 2);
    for round in 0..3 {
        let (mut x, mut y) = (vec![0u8; 4096 + round], vec![0u8; (2 << 20) + round]);
        {
            let mut reads = [(&*a, 100u64, x.as_mut_slice()), (&*b, 7u64, y.as_mut_slice())];
            Buffer::read_each(&mut reads).unwrap();
        }
        assert!(x[..] == abytes[100..100 + x.len()], "round {round}: first device's bytes");
        assert!(y[..] == bbytes[7..7 + y.len()], "round {round}: second device's bytes");
    }
    // Two reads of one device go one after the other, with the same result.
    let (c, cbytes) = filled(main.device(), 8192, 3);
    let (mut x, mut z) = (vec![0u8; 64], vec![0u8; 64]);
    Buffer::read_each(&mut [(&*a, 0, x.as_mut_slice()), (&*c, 8, z.as_mut_slice())]).unwrap();
    assert_eq!((&x[..], &z[..]), (&abytes[..64], &cbytes[8..72]));
    // A read out of range is an error before anything is submitted; the staging contexts stay usable.
    let mut far = vec![0u8; 64];
    assert!(Buffer::read_each(&mut [(&*a, 0, x.as_mut_slice()), (&*b, (3 << 20) - 8, far.as_mut_slice())]).is_err());
    Buffer::read_each(&mut [(&*a, 64, x.as_mut_slice()), (&*b, 64, z.as_mut_slice())]).unwrap();
    assert_eq!((&x[..], &z[..]), (&abytes[64..128], &bbytes[64..128]));
    let mut single = vec![0u8; 16];
    a.read(5, &mut single).unwrap();
    assert_eq!(&single[..], &abytes[5..21]);
    assert_no_validation_errors();
}

#[test]
fn readbacks_finish_later_with_the_bytes_of_the_work_queued_before_them() {
    staged();
    let be = backend();
    let dev = be.device();
    let len = 1usize << 16;
    let (a, abytes) = filled(dev, len, 4);
    assert!(Readback::takes(dev, &a, len as u64));
    assert!(!Readback::takes(dev, &a, (32 << 20) + 1), "longer than one staging chunk");
    let other = Device::open_unshared(dev.index()).unwrap();
    let (foreign, _) = filled(&other, 64, 5);
    assert!(!Readback::takes(dev, &foreign, 64), "another device's buffer");
    let mut rb = Readback::new(dev).unwrap();
    for round in 1..4u8 {
        // A small write rides with the next submission: the readback's copy is queued after it.
        a.write(40, &[round; 24]).unwrap();
        rb.start(&a, 32, 64).unwrap();
        assert!(rb.is_pending());
        assert!(rb.start(&a, 0, 8).is_err(), "one read at a time");
        let mut out = Vec::new();
        rb.finish(|b| out.extend_from_slice(b)).unwrap();
        let mut want = abytes[32..96].to_vec();
        want[8..32].fill(round);
        assert_eq!(out, want, "round {round}");
        assert!(!rb.is_pending());
    }
    // Misuse is an error and leaves the readback usable.
    assert!(rb.finish(|_| panic!("nothing was read")).is_err(), "finished without a start");
    assert!(rb.start(&a, len as u64 - 8, 16).is_err(), "out of range");
    assert!(rb.start(&foreign, 0, 16).is_err(), "another device's buffer");
    let mut head = Vec::new();
    rb.start(&a, 0, 16).unwrap();
    rb.finish(|b| head.extend_from_slice(b)).unwrap();
    assert_eq!(head[..], abytes[..16]);
    // Dropped while in flight: it waits for its copy before freeing what the copy uses.
    rb.start(&a, 0, len as u64).unwrap();
    drop(rb);
    assert_no_validation_errors();
}

#[test]
fn a_backends_reads_arrive_at_synchronize_in_order_with_its_writes() {
    staged();
    let be = backend();
    let dev = be.device();
    let (a, abytes) = filled(dev, 4096, 6);
    // What each read delivered, tagged, in delivery order.
    type Delivered = Arc<Mutex<Vec<(u32, Vec<u8>)>>>;
    let got: Delivered = Arc::default();
    let deliver = |tag: u32| -> Deliver {
        let got = got.clone();
        Box::new(move |b: &[u8]| got.lock().unwrap().push((tag, b.to_vec())))
    };
    // Read, write, read the same bytes: each read sees the bytes as they were when it was queued.
    assert!(be.read_async(&a, 0, 64, deliver(0)).unwrap());
    a.write(0, &[9u8; 32]).unwrap();
    assert!(be.read_async(&a, 16, 32, deliver(1)).unwrap());
    assert!(got.lock().unwrap().is_empty(), "nothing delivered before synchronize");
    be.synchronize().unwrap();
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, &got[0].1[..]), (0, &abytes[..64]));
        let mut want = vec![9u8; 16];
        want.extend_from_slice(&abytes[32..48]);
        assert_eq!((got[1].0, &got[1].1[..]), (1, &want[..]));
    }
    // Reads the readbacks cannot take are refused (the caller reads at once), out of range ones are errors.
    assert!(!be.read_async(&a, 0, (32 << 20) + 1, deliver(2)).unwrap());
    assert!(be.read_async(&a, 4000, 200, deliver(3)).is_err());
    be.synchronize().unwrap();
    assert_eq!(got.lock().unwrap().len(), 2);
    // Readbacks are reused: many rounds, then a backend dropped with a read in flight.
    for round in 0..20u8 {
        a.write(100, &[round; 4]).unwrap();
        assert!(be.read_async(&a, 100, 4, deliver(10 + round as u32)).unwrap());
        be.finish_reads().unwrap();
        assert_eq!(got.lock().unwrap().last().unwrap(), &(10 + round as u32, vec![round; 4]));
    }
    assert!(be.read_async(&a, 0, 4096, deliver(99)).unwrap());
    drop(be);
    assert_no_validation_errors();
}
