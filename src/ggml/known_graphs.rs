//! Graphs the backend has seen, by their ggml description. A generating model hands ggml the same graph for every
//! token; translating it into the engine's graph and keying it costs host time on every token while the GPU sits
//! idle. Here each computed graph is described by the raw fields the translation reads (every node's op, type,
//! flags, shape, strides, data and buffer addresses, op parameters, and the same for each source), compared word
//! for word with the descriptions of graphs whose recordings the engine keeps; a match replays the recording
//! without translating anything. Anything the translation depends on that changed makes the description differ;
//! a buffer freed since (even one reallocated at the same address) makes the engine's replay refuse (its recording
//! holds the buffers weakly), and the graph is translated as new.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::sys;
use crate::graph::replay::GraphKey;

/// Descriptions kept: as many as the engine keeps recordings (ggml's meta backend alternates dozens of graphs
/// per device and token).
const KEEP: usize = crate::graph::replay::KEEP;

/// The raw description of a ggml graph.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Description(Vec<u64>);

fn tensor_words(t: &sys::ggml_tensor, out: &mut Vec<u64>) {
    out.push(t.r#type as u32 as u64);
    out.extend(t.ne.iter().map(|&v| v as u64));
    out.extend(t.nb.iter().map(|&v| v as u64));
    out.push(t.data as usize as u64);
    out.push(t.buffer as usize as u64);
}

impl Description {
    /// Describe `nodes`.
    ///
    /// # Safety
    /// Every pointer in `nodes` must be a live ggml tensor whose sources are live.
    pub unsafe fn of(nodes: &[*mut sys::ggml_tensor]) -> Self {
        let mut out = Vec::with_capacity(nodes.len() * 48);
        out.push(nodes.len() as u64);
        for &n in nodes {
            // SAFETY: the caller guarantees live tensors.
            let Some(t) = (unsafe { n.as_ref() }) else {
                out.push(u64::MAX);
                continue;
            };
            out.push(((t.op as u32 as u64) << 32) | t.flags as u32 as u64);
            tensor_words(t, &mut out);
            out.extend(t.op_params.chunks(2).map(|p| (p[0] as u32 as u64) | ((p[1] as u32 as u64) << 32)));
            for &s in &t.src {
                // SAFETY: sources of live nodes are live (or NULL).
                match unsafe { s.as_ref() } {
                    None => out.push(0),
                    Some(st) => {
                        out.push(s as usize as u64);
                        tensor_words(st, &mut out);
                    }
                }
            }
        }
        Description(out)
    }
}

/// The last graph replayed: ggml's uid of it (non-zero), its node pointers and the engine's key.
struct Last {
    uid: u64,
    nodes: Vec<usize>,
    key: Arc<GraphKey>,
}

/// Descriptions of recently computed graphs and the engine's keys of their translations.
#[derive(Default)]
pub struct KnownGraphs {
    known: Mutex<VecDeque<(Description, Arc<GraphKey>)>>,
    last: Mutex<Option<Last>>,
}

impl KnownGraphs {
    /// The key of the last replayed graph when `uid` (ggml's id of a graph as its scheduler split it; 0 = unknown)
    /// and the node pointers are the same as then. ggml gives a graph a new uid whenever its scheduler splits it
    /// again, and llama.cpp hands over an unchanged graph (only input data rewritten) under the same uid; the node
    /// pointers guard against a graph rebuilt under an old id.
    pub fn same_as_last(&self, uid: u64, nodes: &[*mut sys::ggml_tensor]) -> Option<Arc<GraphKey>> {
        if uid == 0 {
            return None;
        }
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let l = last.as_ref()?;
        let same =
            l.uid == uid && l.nodes.len() == nodes.len() && l.nodes.iter().zip(nodes).all(|(a, &b)| *a == b as usize);
        same.then(|| l.key.clone())
    }

    /// Remember the graph just replayed (or recorded for replay) as the last one.
    pub fn note_last(&self, uid: u64, nodes: &[*mut sys::ggml_tensor], key: &Arc<GraphKey>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = (uid != 0).then(|| Last { uid, nodes: nodes.iter().map(|&n| n as usize).collect(), key: key.clone() });
    }

    /// The engine key of the graph described by `d`, if it was seen.
    pub fn find(&self, d: &Description) -> Option<Arc<GraphKey>> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.iter().find(|(k, _)| k == d).map(|(_, g)| g.clone())
    }

    /// Remember `d` as the description of the engine graph keyed `key`.
    pub fn remember(&self, d: Description, key: Arc<GraphKey>) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|(k, _)| *k != d);
        if known.len() == KEEP {
            known.pop_front();
        }
        known.push_back((d, key));
    }

    /// Forget `d` (its recording is no longer kept).
    pub fn forget(&self, d: &Description) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).retain(|(k, _)| k != d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor() -> Box<sys::ggml_tensor> {
        // SAFETY: ggml_tensor is plain data (integers, pointers, arrays of them); all-zero is a valid value.
        let mut t: Box<sys::ggml_tensor> = Box::new(unsafe { std::mem::zeroed() });
        t.ne = [4, 3, 1, 1];
        t.nb = [4, 16, 48, 48];
        t
    }

    #[test]
    fn descriptions_differ_in_whatever_the_translation_reads() {
        let mut a = tensor();
        let mut b = tensor();
        let mut n = tensor();
        n.src[0] = &mut *a;
        n.src[1] = &mut *b;
        let nodes = [&mut *n as *mut sys::ggml_tensor];
        // SAFETY: live tensors (boxes above), NULL or live sources.
        let d = |nodes: &[*mut sys::ggml_tensor]| unsafe { Description::of(nodes) };
        let first = d(&nodes);
        assert!(first == d(&nodes));
        let known = KnownGraphs::default();
        assert!(known.find(&first).is_none());
        // Each change below must give another description.
        let mut seen = vec![first.clone()];
        let check = |what: &str, seen: &mut Vec<Description>, now: Description| {
            assert!(!seen.contains(&now), "{what} left the description unchanged");
            seen.push(now);
        };
        b.ne[1] = 5;
        check("a source's shape", &mut seen, d(&nodes));
        b.data = 64usize as *mut std::ffi::c_void;
        check("a source's address", &mut seen, d(&nodes));
        n.op_params[3] = 7;
        check("an op parameter", &mut seen, d(&nodes));
        n.flags = 1;
        check("the node's flags", &mut seen, d(&nodes));
        a.nb[1] = 32;
        check("a source's strides", &mut seen, d(&nodes));
        n.src[1] = std::ptr::null_mut();
        check("a missing source", &mut seen, d(&nodes));
    }
}
