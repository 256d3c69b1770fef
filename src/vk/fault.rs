//! Fault injection (test builds only: cargo feature `fault-injection`) and live-resource accounting (always on).
//!
//! Four kinds of fault points sit where ggvk talks to the driver: every device-memory allocation
//! ([`FaultKind::Alloc`]: buffers, scratch, staging, host buffers), every queue submission ([`FaultKind::Submit`]),
//! every pipeline creation ([`FaultKind::Pipeline`]) and every host mapping of device memory ([`FaultKind::Map`]).
//! `arm(kind, n, fault)` makes the `n`-th hit of `kind` after arming fail with `fault` (once, or with
//! [`arm_every`] every `n`-th hit); `hits(kind)` counts the hits since the last [`reset`]. Without the feature
//! the points compile to nothing and the counters stay at zero.
//!
//! The live counters (allocations made through gpu-allocator and not yet freed, devices open) are kept in every
//! build: tests use them to show that a failure leaks nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// A class of fault point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Device-memory allocation (gpu-allocator), any buffer.
    Alloc = 0,
    /// `vkQueueSubmit`.
    Submit = 1,
    /// Compute pipeline creation.
    Pipeline = 2,
    /// Host access to mapped device memory.
    Map = 3,
}

/// Every kind, for sweeps.
pub const ALL_KINDS: [FaultKind; 4] = [FaultKind::Alloc, FaultKind::Submit, FaultKind::Pipeline, FaultKind::Map];

/// What an armed fault point returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `VK_ERROR_OUT_OF_DEVICE_MEMORY`.
    OutOfDeviceMemory,
    /// `VK_ERROR_OUT_OF_HOST_MEMORY`.
    OutOfHostMemory,
    /// `VK_ERROR_DEVICE_LOST`: the device is marked lost for good.
    DeviceLost,
}

impl Fault {
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    fn error(self, kind: FaultKind) -> Error {
        let what = format!("injected fault at {kind:?} point");
        match self {
            Fault::OutOfDeviceMemory => Error::OutOfDeviceMemory(what),
            Fault::OutOfHostMemory => Error::OutOfHostMemory(what),
            Fault::DeviceLost => Error::DeviceLost(what),
        }
    }
}

static LIVE_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_DEVICES: AtomicU64 = AtomicU64::new(0);
static LEAKED_AT_DROP: AtomicU64 = AtomicU64::new(0);

/// Device-memory allocations made through gpu-allocator and not freed yet (all devices).
pub fn live_allocations() -> u64 {
    LIVE_ALLOCATIONS.load(Ordering::SeqCst)
}

/// Logical devices open now.
pub fn live_devices() -> u64 {
    LIVE_DEVICES.load(Ordering::SeqCst)
}

/// Allocations gpu-allocator still held when a device closed (summed over every device closed so far).
pub fn leaked_at_drop() -> u64 {
    LEAKED_AT_DROP.load(Ordering::SeqCst)
}

pub(crate) fn allocation_made() {
    LIVE_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn allocation_freed() {
    LIVE_ALLOCATIONS.fetch_sub(1, Ordering::SeqCst);
}

pub(crate) fn device_opened() {
    LIVE_DEVICES.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn device_closed(leaked: u64) {
    LIVE_DEVICES.fetch_sub(1, Ordering::SeqCst);
    LEAKED_AT_DROP.fetch_add(leaked, Ordering::SeqCst);
}

#[cfg(feature = "fault-injection")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    use super::{Fault, FaultKind};

    #[derive(Clone, Copy)]
    pub(super) struct Armed {
        /// Fail when the hit count reaches this (absolute count).
        pub at: u64,
        /// Re-arm this many hits later (0: once).
        pub every: u64,
        pub fault: Fault,
    }

    pub(super) static HITS: [AtomicU64; 4] =
        [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    pub(super) static FIRED: [AtomicU64; 4] =
        [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    pub(super) static ARMED: Mutex<[Option<Armed>; 4]> = Mutex::new([None; 4]);

    pub(super) fn hit(kind: FaultKind) -> Option<Fault> {
        let k = kind as usize;
        let mut armed = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        let n = HITS[k].fetch_add(1, Ordering::SeqCst) + 1;
        let a = armed[k].as_mut()?;
        if n != a.at {
            return None;
        }
        let fault = a.fault;
        if a.every > 0 {
            a.at += a.every;
        } else {
            armed[k] = None;
        }
        FIRED[k].fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }
}

/// Make the `n`-th hit (1-based, counted from now) of `kind` fail with `fault`, once.
#[cfg(feature = "fault-injection")]
pub fn arm(kind: FaultKind, n: u64, fault: Fault) {
    let mut armed = imp::ARMED.lock().unwrap_or_else(|p| p.into_inner());
    let at = imp::HITS[kind as usize].load(Ordering::SeqCst) + n.max(1);
    armed[kind as usize] = Some(imp::Armed { at, every: 0, fault });
}

/// Make every `n`-th hit of `kind` from now on fail with `fault` (the first at hit `first` from now).
#[cfg(feature = "fault-injection")]
pub fn arm_every(kind: FaultKind, first: u64, n: u64, fault: Fault) {
    let mut armed = imp::ARMED.lock().unwrap_or_else(|p| p.into_inner());
    let at = imp::HITS[kind as usize].load(Ordering::SeqCst) + first.max(1);
    armed[kind as usize] = Some(imp::Armed { at, every: n.max(1), fault });
}

/// Disarm every fault point.
#[cfg(feature = "fault-injection")]
pub fn disarm() {
    *imp::ARMED.lock().unwrap_or_else(|p| p.into_inner()) = [None; 4];
}

/// Hits of `kind` since the last [`reset`].
#[cfg(feature = "fault-injection")]
pub fn hits(kind: FaultKind) -> u64 {
    imp::HITS[kind as usize].load(Ordering::SeqCst)
}

/// Faults of `kind` injected since the last [`reset`].
#[cfg(feature = "fault-injection")]
pub fn fired(kind: FaultKind) -> u64 {
    imp::FIRED[kind as usize].load(Ordering::SeqCst)
}

/// Disarm and zero every counter.
#[cfg(feature = "fault-injection")]
pub fn reset() {
    let mut armed = imp::ARMED.lock().unwrap_or_else(|p| p.into_inner());
    *armed = [None; 4];
    for k in 0..4 {
        imp::HITS[k].store(0, Ordering::SeqCst);
        imp::FIRED[k].store(0, Ordering::SeqCst);
    }
}

/// A fault point: `Err` when an armed fault fires here.
#[inline]
pub(crate) fn point(kind: FaultKind) -> Result<(), Error> {
    #[cfg(feature = "fault-injection")]
    if let Some(f) = imp::hit(kind) {
        return Err(f.error(kind));
    }
    let _ = kind;
    Ok(())
}
