//! How the host waits for a replayed graph: asleep through most of it, polling its fence near the end.
//!
//! A blocking `vkWaitForFences` returns some time after the fence signals: the driver's interrupt, then the
//! scheduler's wake-up of the waiting thread. For a generated token the host waits once per graph, and that
//! latency adds to every token (ggml-vulkan sleeps on a fence submitted at 80% of the graph and polls the last
//! one). A replayed graph takes about as long as its previous run, so ggvk needs no second fence: [`Pace`] keeps
//! each recording's last duration, the wait sleeps (a fence wait with a timeout) until `lead` before the expected
//! end and then polls the fence status, and falls back to a blocking wait where the graph runs well past its
//! expected end. `GGVK_WAIT_POLL_US` sets `lead` (0: always the blocking wait); unset, GPUs poll from
//! [`GPU_LEAD_US`] before the end (measured on an H100: NOTES.md, 2026-12-07 17:53 UTC) and CPU devices wait
//! blocking, since a CPU device (lavapipe) needs the core a polling host would take for its own threads.

use std::time::{Duration, Instant};

/// What the waits for one recording learnt: how long its submissions take from submission to completion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pace {
    expected: Option<Duration>,
}

/// How a paced wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// The fence was found signalled by a poll: the elapsed time is the submission's duration (to a poll's
    /// granularity).
    Polled,
    /// The fence signalled while the host slept (before the poll window, or after it, in the blocking fallback):
    /// the elapsed time includes the wake-up latency.
    Slept,
}

/// The plan of one wait: sleep until `poll_from` after the submission, poll until `poll_until`, then block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Sleep until this long after the submission.
    pub poll_from: Duration,
    /// Poll until this long after the submission (then block).
    pub poll_until: Duration,
}

impl Pace {
    /// The plan for a submission of this recording with a poll window of `lead` before its expected end; `None`:
    /// a plain blocking wait (polling off, or nothing learnt yet).
    pub fn plan(&self, lead: Duration) -> Option<Plan> {
        if lead.is_zero() {
            return None;
        }
        let expected = self.expected?;
        let tail = (expected / 8).min(MAX_TAIL);
        Some(Plan { poll_from: expected.saturating_sub(lead), poll_until: expected + lead + tail })
    }

    /// Learn from a wait that ended `elapsed` after the submission, as `woke` says. A polled end is the duration;
    /// a slept one is later than the signal by the wake-up latency, so the next wait starts polling `lead`
    /// earlier than it (and earlier again until a poll catches the end).
    pub fn learn(&mut self, elapsed: Duration, woke: Woke, lead: Duration) {
        self.expected = Some(match woke {
            Woke::Polled => elapsed,
            Woke::Slept => elapsed.saturating_sub(lead),
        });
    }
}

/// The longest a wait polls past a graph's expected end (beyond the lead): an eighth of the expected duration, at
/// most this. A late long graph (a 2,048-token prompt takes ~140 ms) then falls back to the blocking wait after
/// 1 ms of polling instead of spinning a core for ~17 ms; the fallback's wake-up latency (tens of microseconds) is
/// under 1% of any graph the cap shortens (8 ms and longer).
const MAX_TAIL: Duration = Duration::from_millis(1);

/// The poll window of a GPU when `GGVK_WAIT_POLL_US` is unset, in microseconds.
const GPU_LEAD_US: u64 = 200;

/// The poll window: `GGVK_WAIT_POLL_US` where set (read once per process), else [`GPU_LEAD_US`] for a GPU and 0
/// (the blocking wait) for a CPU device (`cpu_device`).
pub fn lead(cpu_device: bool) -> Duration {
    static US: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    lead_of(*US.get_or_init(|| crate::knobs::number("GGVK_WAIT_POLL_US")), cpu_device)
}

fn lead_of(set: Option<u64>, cpu_device: bool) -> Duration {
    Duration::from_micros(set.unwrap_or(if cpu_device { 0 } else { GPU_LEAD_US }))
}

/// Time left from `since + at` on, as a fence wait's timeout in nanoseconds (0 when past it).
pub fn timeout_ns(since: Instant, at: Duration) -> u64 {
    (since + at).saturating_duration_since(Instant::now()).as_nanos().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAD: Duration = Duration::from_micros(200);

    #[test]
    fn nothing_learnt_or_polling_off_means_a_blocking_wait() {
        let mut p = Pace::default();
        assert_eq!(p.plan(LEAD), None);
        p.learn(Duration::from_micros(3_000), Woke::Slept, LEAD);
        assert_eq!(p.plan(Duration::ZERO), None);
        assert!(p.plan(LEAD).is_some());
    }

    #[test]
    fn a_polled_end_is_the_duration_and_the_window_surrounds_it() {
        let mut p = Pace::default();
        p.learn(Duration::from_micros(3_200), Woke::Polled, LEAD);
        let plan = p.plan(LEAD).unwrap();
        assert_eq!(plan.poll_from, Duration::from_micros(3_000));
        assert_eq!(plan.poll_until, Duration::from_micros(3_200 + 200 + 400));
    }

    #[test]
    fn a_slept_end_moves_the_window_earlier_until_a_poll_catches_it() {
        let mut p = Pace::default();
        // The first wait blocks: 3,250 us including the wake-up; the next polls from 2,850 us.
        p.learn(Duration::from_micros(3_250), Woke::Slept, LEAD);
        assert_eq!(p.plan(LEAD).unwrap().poll_from, Duration::from_micros(2_850));
        // Ended while asleep again (the graph got faster): earlier still.
        p.learn(Duration::from_micros(2_900), Woke::Slept, LEAD);
        assert_eq!(p.plan(LEAD).unwrap().poll_from, Duration::from_micros(2_500));
        p.learn(Duration::from_micros(2_700), Woke::Polled, LEAD);
        assert_eq!(p.plan(LEAD).unwrap().poll_from, Duration::from_micros(2_500));
    }

    #[test]
    fn long_graphs_poll_at_most_a_millisecond_past_their_expected_end() {
        let mut p = Pace::default();
        p.learn(Duration::from_millis(140), Woke::Polled, LEAD);
        let plan = p.plan(LEAD).unwrap();
        assert_eq!(plan.poll_until, Duration::from_millis(140) + LEAD + MAX_TAIL);
        p.learn(Duration::from_millis(8), Woke::Polled, LEAD);
        assert_eq!(p.plan(LEAD).unwrap().poll_until, Duration::from_millis(8) + LEAD + Duration::from_millis(1));
    }

    #[test]
    fn short_graphs_poll_from_their_submission() {
        let mut p = Pace::default();
        p.learn(Duration::from_micros(50), Woke::Polled, LEAD);
        let plan = p.plan(LEAD).unwrap();
        assert_eq!(plan.poll_from, Duration::ZERO);
        assert!(plan.poll_until >= Duration::from_micros(250));
    }

    #[test]
    fn gpus_poll_by_default_cpu_devices_block_and_the_knob_rules_both() {
        assert_eq!(lead_of(None, false), Duration::from_micros(GPU_LEAD_US));
        assert_eq!(lead_of(None, true), Duration::ZERO);
        assert_eq!(lead_of(Some(0), false), Duration::ZERO);
        assert_eq!(lead_of(Some(50), true), Duration::from_micros(50));
    }

    #[test]
    fn timeouts_are_never_negative() {
        let t = Instant::now();
        assert_eq!(timeout_ns(t, Duration::ZERO), 0);
        assert!(timeout_ns(t, Duration::from_secs(10)) > 9_000_000_000);
    }
}
