//! Context segments and provenance (rule 4 (docs/resume-state.md) and 11).
//!
//! Invariants:
//! - A segment ends only by an effective `compaction_done` (end reason
//!   `compaction`) or a `segment_rotated` (its reason); either adds exactly 1
//!   to `segment` and records the closed segment.
//! - A segment opens at the seq of the event that closed the previous one (the
//!   compaction's summary is the new segment's first message), the first one at
//!   the history's first seq (0).
//! - `segments` holds the newest [`MAX_SEGMENTS`] closed segments, oldest first.
//! - Provenance only grows: an entry fills a key that is absent and never
//!   overwrites a present one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ResumeState;
use crate::event::RotationReason;

/// How many closed segments the state keeps (the newest).
pub const MAX_SEGMENTS: usize = 64;

/// A closed context segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Segment {
    /// Its number (the state's `segment` while it was current).
    pub index: u64,
    /// The seq of the event that opened it.
    pub opened_seq: u64,
    /// The seq of the event that closed it.
    pub closed_seq: u64,
    /// Why it ended.
    pub end_reason: SegmentEnd,
}

/// Why a context segment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum SegmentEnd {
    /// An effective `compaction_done`.
    Compaction,
    /// A `segment_rotated` with reason `session_load`.
    SessionLoad,
    /// A `segment_rotated` with reason `session_changed`.
    SessionChanged,
}

impl SegmentEnd {
    /// The reason's name as in docs/resume-state.md.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentEnd::Compaction => "compaction",
            SegmentEnd::SessionLoad => "session_load",
            SegmentEnd::SessionChanged => "session_changed",
        }
    }
}

impl From<RotationReason> for SegmentEnd {
    fn from(reason: RotationReason) -> Self {
        match reason {
            RotationReason::SessionLoad => SegmentEnd::SessionLoad,
            RotationReason::SessionChanged => SegmentEnd::SessionChanged,
        }
    }
}

impl ResumeState {
    /// Closes the current segment at `seq` and opens the next one there. The
    /// caller sets the new segment's transcript.
    pub(super) fn close_segment(&mut self, seq: u64, end_reason: SegmentEnd) {
        if self.segments.len() == MAX_SEGMENTS {
            self.segments.remove(0);
        }
        self.segments.push(Segment {
            index: self.segment,
            opened_seq: self.segment_opened_seq,
            closed_seq: seq,
            end_reason,
        });
        self.segment = self.segment.saturating_add(1);
        self.segment_opened_seq = seq;
    }

    /// Adds the entries whose key is not yet in `provenance` (rule 11).
    pub(super) fn fill_provenance(&mut self, entries: &BTreeMap<String, String>) {
        for (key, value) in entries {
            self.provenance.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}
