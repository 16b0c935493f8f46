//! Resources acquired and torn down (rule 13 (docs/resume-state.md)).
//!
//! Invariants:
//! - `resources` is in acquisition order; a resource never torn down stays
//!   visible with `torn_down: false`.
//! - A name has at most one entry that is not torn down: acquiring a name that
//!   is held is a retry and changes nothing; acquiring it after its teardown
//!   adds a new entry.
//! - A `teardown` marks the newest entry of its name torn down, with its error
//!   (a repeated teardown, a retry, replaces the error: the latest attempt says
//!   how it ended); a teardown of a name never acquired adds it, torn down, with
//!   no `acquired_seq`.

use serde::{Deserialize, Serialize};

use super::ResumeState;

/// A resource of the run and whether it was released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct ResourceState {
    /// The resource.
    pub resource: String,
    /// The seq of its `resource_acquired`; `None` when it was only torn down.
    pub acquired_seq: Option<u64>,
    /// A `teardown` released it.
    pub torn_down: bool,
    /// The error of its latest teardown, if that failed.
    pub error: Option<String>,
}

impl ResumeState {
    /// `resource_acquired` at `seq`.
    pub(super) fn acquire_resource(&mut self, resource: &str, seq: u64) {
        if self.newest_resource(resource).is_some_and(|entry| !entry.torn_down) {
            return;
        }
        self.resources.push(ResourceState {
            resource: resource.to_owned(),
            acquired_seq: Some(seq),
            torn_down: false,
            error: None,
        });
    }

    /// `teardown` of `resource`, with its error.
    pub(super) fn tear_down_resource(&mut self, resource: &str, error: Option<&String>) {
        let error = error.cloned();
        match self.resources.iter_mut().rev().find(|entry| entry.resource == resource) {
            Some(entry) => {
                entry.torn_down = true;
                entry.error = error;
            }
            None => self.resources.push(ResourceState {
                resource: resource.to_owned(),
                acquired_seq: None,
                torn_down: true,
                error,
            }),
        }
    }

    fn newest_resource(&self, resource: &str) -> Option<&ResourceState> {
        self.resources.iter().rev().find(|entry| entry.resource == resource)
    }
}
