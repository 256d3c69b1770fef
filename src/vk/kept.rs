//! Copies derived from device buffers that outlive the submission that made them: the f16 copies of quantized
//! weights that the prompt products read (decoded once, then reused by every later prompt instead of being decoded
//! again per batch). One store per command stream (so per backend), registered with its device, which tells every
//! store of a buffer being written; the deriving op decides what is worth keeping within its byte budget.
//!
//! A copy is only as good as its source: anything that writes the source buffer drops every copy derived from it,
//! at once. Host writes ([`super::Buffer::write`], `fill`, `copy_to`, [`super::HostBuffer::copy_to`]) and freeing
//! the source do so in `memory.rs`; a kernel writing it does so when recorded ([`super::Recorder::dispatch`]) and
//! again whenever its recording is replayed ([`super::Recording::replay`]).
//!
//! A copy enters the store when the submission that derives it is submitted (so a later submission on the queue
//! finds it written), not when it is recorded. A recording that read kept copies replays only while no copy of
//! its store has been dropped since (the store's epoch), and never where it also writes one's source; a dropped copy
//! may live on in submissions not yet retired, so a recording's weak hold on its buffers is no test of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::memory::Buffer;

/// An epoch no store reaches: a recording that both reads a kept copy and writes its source never replays.
pub(crate) const NEVER: u64 = u64::MAX;

/// What a kept copy was derived from, and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeptKey {
    /// What the copy is (e.g. "f16_weights").
    pub kind: &'static str,
    /// Id of the source buffer ([`Buffer::id`]).
    pub source: u64,
    /// Source bytes `[start, end)`.
    pub range: (u64, u64),
    /// The source's layout as the deriving kernel read it (type, shape, strides).
    pub layout: (i32, [i64; 4], [u64; 4]),
}

/// The store (see the module docs).
pub struct KeptCopies {
    entries: Mutex<HashMap<KeptKey, Arc<Buffer>>>,
    /// Entries in the map, readable without the lock.
    count: AtomicUsize,
    /// Entries in every store of the device (shared with it, so that writes skip the stores while all are empty).
    live: Arc<AtomicUsize>,
    /// Bytes of the kept buffers.
    bytes: AtomicU64,
    /// Bumped whenever a copy is dropped: recordings that read kept copies replay only while it is unchanged.
    epoch: AtomicU64,
    /// Per source buffer, how often its copies were dropped because it was written.
    drops: Mutex<HashMap<u64, u32>>,
}

impl KeptCopies {
    /// An empty store counting its entries into `live` (the device's count of all its stores' entries).
    pub(crate) fn new(live: Arc<AtomicUsize>) -> Self {
        KeptCopies {
            entries: Mutex::default(),
            count: AtomicUsize::new(0),
            live,
            bytes: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            drops: Mutex::default(),
        }
    }

    fn set_count(&self, n: usize) {
        let old = self.count.swap(n, Ordering::AcqRel);
        if n >= old {
            self.live.fetch_add(n - old, Ordering::AcqRel);
        } else {
            self.live.fetch_sub(old - n, Ordering::AcqRel);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<KeptKey, Arc<Buffer>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The copy kept under `key`, if any.
    pub fn get(&self, key: &KeptKey) -> Option<Arc<Buffer>> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.lock().get(key).cloned()
    }

    /// How often copies derived from buffer `source` were dropped because it was written.
    pub fn drops(&self, source: u64) -> u32 {
        self.drops.lock().unwrap_or_else(|p| p.into_inner()).get(&source).copied().unwrap_or(0)
    }

    /// Changes whenever a copy is dropped (never [`NEVER`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Keep `buffer` under `key` (replacing an older copy of the same key).
    pub fn insert(&self, key: KeptKey, buffer: Arc<Buffer>) {
        let size = buffer.size();
        let old = {
            let mut map = self.lock();
            let old = map.insert(key, buffer);
            self.set_count(map.len());
            old
        };
        self.bytes.fetch_add(size, Ordering::AcqRel);
        if let Some(old) = old {
            self.bytes.fetch_sub(old.size(), Ordering::AcqRel);
        }
    }

    /// Drop every copy derived from any of buffers `sources` (being written or freed).
    pub fn invalidate_all(&self, sources: &[u64]) {
        if self.count.load(Ordering::Acquire) == 0 || sources.is_empty() {
            return;
        }
        let removed = self.remove_where(|k| sources.contains(&k.source));
        if !removed.is_empty() {
            let mut drops = self.drops.lock().unwrap_or_else(|p| p.into_inner());
            for s in removed {
                *drops.entry(s).or_insert(0) += 1;
            }
        }
    }

    /// Drop every copy (memory pressure).
    pub fn clear(&self) {
        self.remove_where(|_| true);
    }

    /// Remove the copies whose keys `gone` selects; returns their sources (once each).
    fn remove_where(&self, gone: impl Fn(&KeptKey) -> bool) -> Vec<u64> {
        let (removed, mut sources): (Vec<Arc<Buffer>>, Vec<u64>) = {
            let mut map = self.lock();
            let keys: Vec<KeptKey> = map.keys().filter(|k| gone(k)).cloned().collect();
            let sources = keys.iter().map(|k| k.source).collect();
            let removed = keys.iter().filter_map(|k| map.remove(k)).collect();
            self.set_count(map.len());
            (removed, sources)
        };
        sources.sort_unstable();
        sources.dedup();
        if removed.is_empty() {
            return sources;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let freed: u64 = removed.iter().map(|b| b.size()).sum();
        self.bytes.fetch_sub(freed, Ordering::AcqRel);
        // Dropped outside the lock: a buffer's drop invalidates copies of itself through this store.
        drop(removed);
        sources
    }
}

impl Drop for KeptCopies {
    fn drop(&mut self) {
        self.live.fetch_sub(*self.count.get_mut(), Ordering::AcqRel);
    }
}
