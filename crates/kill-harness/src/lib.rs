//! The kill harness of runjournal: a child process that appends durably
//! until it is killed with SIGKILL (the `kill-child` binary), and the test
//! that kills it again and again and checks the database after each kill
//! (`tests/crash_kill.rs`). This library holds what both sides share: the
//! runs, the random source and the line protocol.
//!
//! The child prints `ready` once the journal is open, then, after every
//! acknowledged batch, `ack <goal> <episode> <agent> <last_seq> <batch_len>`,
//! and after every run boundary that returned (`begin`, `resume`, `finish`,
//! `agent_died`), `boundary <goal> <episode> <agent> <seq> <event type>`: a
//! boundary is durable once it returns, in every durability mode.
//! Every batch is framed by two `custom` events, `batch-begin` and
//! `batch-end`, whose data is `n=<batch_len> id=<unique id>`, so a batch is
//! recognisable in the log whether or not it was acknowledged. The only
//! unframed events are the boundaries, single-event writes: `run_started`,
//! `attached`, `agent_died` and `run_interrupted`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use runjournal::RunKey;

/// The goal of every run the child writes.
pub const GOAL: &str = "kill-harness";
/// The goal of the run the fencing test's writers share.
pub const FENCE_GOAL: &str = "fence-harness";
/// How many runs the child writes.
pub const RUNS: usize = 8;
/// How many threads the child writes from.
pub const THREADS: usize = 4;
/// xorshift64: a small deterministic random source, so a seed replays a run
/// of the harness.
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed` (0 counts as 1).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The key of run number `run`.
pub fn key(run: usize) -> RunKey {
    RunKey {
        goal: GOAL.into(),
        episode: 0,
        agent: format!("agent-{run}"),
    }
}
