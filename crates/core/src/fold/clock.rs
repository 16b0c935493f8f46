//! Time on the run (rule 12 (docs/resume-state.md)), from the events' own `ts`.
//!
//! Invariants:
//! - `wall_ms` is the last event's `ts` minus the first event's `ts` of the
//!   whole folded history (a fork's prefix included), 0 before two events.
//! - `active_ms` is the sum, over the history's epochs, of the last minus the
//!   first `ts` of that epoch's events. An epoch is a maximal stretch of
//!   consecutive events with the same envelope epoch; a `run_started` always
//!   opens a new one (a fork's own events follow its parent's prefix in a new
//!   epoch 0 of another run). The downtime between two epochs never counts.
//! - Every event moves the clock, applied or ignored, like `last_seq`.
//! - Timestamps that go backwards (an imported log, a skewed clock) never
//!   underflow: a stretch or the wall time is then 0, never negative.

/// The fold's bookkeeping for `active_ms` and `wall_ms`.
#[derive(Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) struct Clock {
    /// The first event's `ts`; `None` before any event.
    first_ts: Option<u64>,
    /// The latest event's `ts`.
    last_ts: u64,
    /// The epoch of the current stretch.
    stretch_epoch: u64,
    /// The `ts` of the current stretch's first event.
    stretch_first_ts: u64,
    /// The active time of the stretches before the current one.
    closed_ms: u64,
}

impl Clock {
    /// Moves the clock to an event at `ts` in `epoch`; `opens_epoch` is true
    /// for an event that starts a new epoch whatever its number (`run_started`).
    pub(crate) fn tick(&mut self, ts: u64, epoch: u64, opens_epoch: bool) {
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        } else if opens_epoch || epoch != self.stretch_epoch {
            self.closed_ms = self.closed_ms.saturating_add(self.stretch_ms());
        } else {
            self.last_ts = ts;
            return;
        }
        self.stretch_epoch = epoch;
        self.stretch_first_ts = ts;
        self.last_ts = ts;
    }

    /// The time the run was worked on: every epoch's span, without the gaps.
    pub(crate) fn active_ms(&self) -> u64 {
        self.closed_ms.saturating_add(self.stretch_ms())
    }

    /// The last event's `ts` minus the first's.
    pub(crate) fn wall_ms(&self) -> u64 {
        self.first_ts.map_or(0, |first| self.last_ts.saturating_sub(first))
    }

    fn stretch_ms(&self) -> u64 {
        self.last_ts.saturating_sub(self.stretch_first_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    fn clock(ticks: &[(u64, u64, bool)]) -> Clock {
        let mut clock = Clock::default();
        for &(ts, epoch, opens) in ticks {
            clock.tick(ts, epoch, opens);
        }
        clock
    }

    #[test]
    fn an_empty_or_single_event_history_has_no_time() {
        assert_eq!((Clock::default().active_ms(), Clock::default().wall_ms()), (0, 0));
        let one = clock(&[(500, 0, true)]);
        assert_eq!((one.active_ms(), one.wall_ms()), (0, 0));
    }

    #[test]
    fn downtime_between_epochs_is_wall_time_only() {
        let resumed = clock(&[(100, 0, true), (150, 0, false), (1000, 1, false), (1030, 1, false)]);
        assert_eq!(resumed.wall_ms(), 930);
        assert_eq!(resumed.active_ms(), 50 + 30);
    }

    #[test]
    fn a_run_started_opens_an_epoch_even_with_the_same_number() {
        let forked = clock(&[(100, 0, true), (110, 0, false), (900, 0, true), (905, 0, false)]);
        assert_eq!(forked.active_ms(), 15);
        assert_eq!(forked.wall_ms(), 805);
    }

    #[test]
    fn backwards_timestamps_never_underflow() {
        let skewed = clock(&[(1000, 0, true), (400, 0, false)]);
        assert_eq!((skewed.active_ms(), skewed.wall_ms()), (0, 0));
    }
}
