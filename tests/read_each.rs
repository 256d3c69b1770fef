//! `Buffer::read_each`: reads from buffers of several devices submitted together and waited for together (the
//! allreduce of tensor parallelism reads every device's partial so). Run with staged (not mapped) buffers, as on
//! discrete GPUs (`GGVK_DIRECT_MAPPING=0`, its own test binary: knobs are read once per process); the two devices
//! are two VkDevices on one GPU. Validation layer on.

mod common;

use std::sync::Arc;

use common::*;
use ggvk::vk::{Buffer, Device};

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
