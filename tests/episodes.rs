//! Episodes: `latest_episode` is the newest episode of a goal and agent,
//! whatever its status; `next_episode` is one past the newest of the goal.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, memory_journal};
use runjournal::*;

#[test]
fn latest_episode_finds_the_crashed_attempt_and_next_episode_allocates_a_fresh_one() {
    let journal = memory_journal();
    assert_eq!(journal.latest_episode("g", "a").unwrap(), None);
    assert_eq!(journal.next_episode("g").unwrap(), 0);
    for episode in [0, 1, 4] {
        drop(journal.begin(key("g", episode, "a"), RunMeta::default()).unwrap());
    }
    drop(journal.begin(key("g", 7, "b"), RunMeta::default()).unwrap());
    drop(journal.begin(key("other", 9, "a"), RunMeta::default()).unwrap());
    assert_eq!(journal.latest_episode("g", "a").unwrap(), Some(4));
    assert_eq!(journal.latest_episode("g", "b").unwrap(), Some(7));
    assert_eq!(journal.next_episode("g").unwrap(), 8);
    assert_eq!(journal.next_episode("new-goal").unwrap(), 0);
}
