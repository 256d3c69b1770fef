//! Planning the order nodes are recorded in: each node as early as the bytes it touches allow, so that nodes
//! independent of each other sit between the same two barriers. The recorder places a barrier before a node that
//! touches bytes written (or writes bytes read) since the last one, so in graph order a llama block's Q product,
//! its rope, then the K and V products take two barriers where one would do (Q, K and V only need the normalised
//! input); ordered by dependency level they run together. ggml-vulkan reorders nodes for the same reason.
//!
//! Rules: a node's level is one more than the highest level among the earlier nodes it conflicts with (one writes
//! bytes the other reads or writes, same buffer, overlapping ranges), nodes are recorded by level and then by graph
//! index, so every conflicting pair keeps its order and only independent nodes move. Two nodes that [`super::fusion`]
//! records as one kernel move as one unit: neighbours, or a node and a partner a few nodes later that conflicts
//! with none of the nodes between them (gemma's K rope and the K cache write, which its graph puts after the V
//! product: the pair is then one kernel and one dependent step less); an RMS_NORM+MUL pair also takes the ADD of its
//! product so. Ops outside [`Op::writes_dst_only`] (those that update their sources in place, and
//! rarely seen ones) are fences: nothing moves across them. Conflicts are looked for among the last
//! [`WINDOW`] units; anything older counts as a conflict (the level never drops below theirs), which keeps planning
//! linear in the graph's length. `GGVK_SCHEDULE=0` records in graph order (read once per process).

use super::fusion::MatVecRopeGroup;
use super::{fusion, Node, Tensor};

/// Units looked back at for conflicts.
const WINDOW: usize = 32;

/// Nodes looked ahead at for a fusion partner.
const PARTNER_LOOKAHEAD: usize = 4;

/// Whether nodes are reordered (`GGVK_SCHEDULE`, default on; off with fusion off too, so `GGVK_FUSION=0` records
/// exactly the graph).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    fusion::enabled() && *ON.get_or_init(|| crate::knobs::switch("GGVK_SCHEDULE", true))
}

/// One byte range a unit touches.
#[derive(Clone, Copy)]
struct Access {
    buffer: u64,
    start: u64,
    end: u64,
    write: bool,
}

fn access(t: &Tensor, write: bool) -> Access {
    let (start, end) = t.byte_range();
    Access { buffer: t.buffer.id(), start, end: end.max(start + 1), write }
}

fn conflict(a: &[Access], b: &[Access]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| (x.write || y.write) && x.buffer == y.buffer && x.start < y.end && y.start < x.end))
}

/// Whether [`super::fusion`] records `a` then `b` as one kernel.
fn fuses(a: &Node, b: &Node) -> bool {
    fusion::rms_norm_mul(a, b).is_some()
        || fusion::mul_mat_add(a, b).is_some()
        || fusion::rope_set_rows(a, b).is_some()
        || fusion::rope_scale(a, b).is_some()
}

/// Whether `later` may be recorded before `between` (which precedes it in the graph): both touch only their sources
/// and destination, and not the same bytes with one of them writing.
fn may_pass(later: &Node, between: &Node) -> bool {
    later.op.writes_dst_only() && between.op.writes_dst_only() && !conflict(&touched(later), &touched(between))
}

/// The byte ranges a node reads (its sources) and writes (its destination).
fn touched(n: &Node) -> Vec<Access> {
    n.src.iter().flatten().map(|t| access(t, false)).chain(std::iter::once(access(&n.dst, true))).collect()
}

/// The order to record `nodes` in (indices into `nodes`): by dependency level (see the module docs), or graph
/// order when [`enabled`] is off. Either way the members of each of `groups` ([`fusion::plan_groups`], indexed by
/// their product) follow their product.
pub fn order(nodes: &[Node], groups: &[Option<MatVecRopeGroup>]) -> Vec<usize> {
    let mut member = vec![false; nodes.len()];
    for g in groups.iter().flatten() {
        g.later().for_each(|m| member[m] = true);
    }
    // Units: a node, two nodes recorded as one kernel, or a group. `placed`: nodes already in a unit (group members,
    // partners pulled up).
    let mut placed = member;
    let mut units: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
    for i in 0..nodes.len() {
        if placed[i] {
            continue;
        }
        placed[i] = true;
        if let Some(g) = groups.get(i).copied().flatten() {
            units.push(std::iter::once(i).chain(g.later()).collect());
            continue;
        }
        // Partners further away only where nodes may move (else the graph's order stays as it is).
        let ahead = if enabled() { PARTNER_LOOKAHEAD } else { 1 };
        let partner = (i + 1..nodes.len().min(i + 1 + ahead))
            .filter(|&j| !placed[j] && groups.get(j).copied().flatten().is_none())
            .find(|&j| fuses(&nodes[i], &nodes[j]) && (i + 1..j).all(|k| may_pass(&nodes[j], &nodes[k])));
        match partner {
            Some(j) => {
                placed[j] = true;
                // An RMS_NORM+MUL pair takes the ADD of its product along too.
                let norm_mul = fusion::rms_norm_mul(&nodes[i], &nodes[j]);
                let third = (j + 1..nodes.len().min(j + 1 + ahead))
                    .filter(|&k| norm_mul.is_some() && !placed[k] && groups.get(k).copied().flatten().is_none())
                    .find(|&k| {
                        norm_mul.and_then(|f| fusion::rms_norm_mul_add(f, &nodes[k])).is_some()
                            && (i + 1..k).filter(|&m| m != j).all(|m| may_pass(&nodes[k], &nodes[m]))
                    });
                if let Some(k) = third {
                    placed[k] = true;
                }
                units.push(std::iter::once(i).chain(Some(j)).chain(third).collect());
            }
            None => units.push(vec![i]),
        }
    }
    if !enabled() {
        return units.into_iter().flatten().collect();
    }
    let mut accesses: Vec<Vec<Access>> = Vec::with_capacity(units.len());
    let mut levels: Vec<u32> = Vec::with_capacity(units.len());
    // Lowest level a unit may take: above every unit that left the window, and above the last fence.
    let mut floor = 0u32;
    let mut top = 0u32;
    for (u, unit) in units.iter().enumerate() {
        let members: Vec<&Node> = unit.iter().map(|&m| &nodes[m]).collect();
        let acc: Vec<Access> = members.iter().flat_map(|n| touched(n)).collect();
        if u >= WINDOW {
            floor = floor.max(levels[u - WINDOW] + 1);
        }
        let level = if members.iter().all(|n| n.op.writes_dst_only()) {
            let lo = u.saturating_sub(WINDOW);
            (lo..u).filter(|&v| conflict(&accesses[v], &acc)).map(|v| levels[v] + 1).max().unwrap_or(0).max(floor)
        } else {
            // A fence: after everything before it, and before everything after it.
            let level = if u == 0 { 0 } else { top + 1 }.max(floor);
            floor = level + 1;
            level
        };
        top = top.max(level);
        levels.push(level);
        accesses.push(acc);
    }
    let mut by_level: Vec<usize> = (0..units.len()).collect();
    by_level.sort_by_key(|&u| (levels[u], u));
    by_level.into_iter().flat_map(|u| units[u].iter().copied()).collect()
}
