//! An agent program on a scoped run: the first start begins the run, a start
//! after a crash resumes it and skips the phases it completed, and a start
//! after it finished begins the next episode. Whatever way the work ends, the
//! run records it: `Ok` → completed, `AgentError::Shutdown` → interrupted (left
//! for recovery), another error → failed, a panic → failed with kind `panic`.
//!
//! `cargo run --example scoped_agent` (the database is `./agent.db`, or
//! `$AGENT_DB`). `AGENT_CRASH_AFTER_PHASE=N` aborts the process right after
//! phase N completes, as a crash would; `AGENT_STOP_BEFORE_PHASE=N` stops it
//! for a shutdown before phase N.

use runjournal::{ErrorOutcome, Journal, Message, Options, ResumeState, Role, Run, RunKey, RunMeta, ScopedError};

const GOAL: &str = "fix-login-bug";
const AGENT: &str = "orchestrator-0"; // stable: never a random suffix
const PHASES: [(&str, &str); 3] = [
    ("investigate", "token expiry off by one"),
    ("patch", "expiry compared with <= instead of <"),
    ("test", "42 tests pass"),
];

/// What ends the agent's work early.
#[derive(Debug)]
pub enum AgentError {
    /// Recording a step failed.
    Journal(runjournal::AppendError),
    /// The process is asked to stop: the run is left for recovery.
    Shutdown,
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Journal(error) => write!(f, "{error}"),
            AgentError::Shutdown => f.write_str("shutting down"),
        }
    }
}

impl From<runjournal::AppendError> for AgentError {
    fn from(error: runjournal::AppendError) -> Self {
        AgentError::Journal(error)
    }
}

/// How the scoped run records an error: a shutdown interrupts the run.
impl ErrorOutcome for AgentError {
    fn is_shutdown(&self) -> bool {
        matches!(self, AgentError::Shutdown)
    }

    fn kind(&self) -> String {
        "journal".into()
    }
}

/// The agent's work: every phase the run has not completed yet.
fn work(run: &Run, state: &ResumeState) -> Result<String, AgentError> {
    let resumed = if state.epoch > 0 { "resumed" } else { "began" };
    println!("{resumed} run {}", state.run);
    let done = state.completed_phase_indices();
    for (index, (name, finding)) in (0u32..).zip(PHASES) {
        if done.contains(&index) {
            println!("phase {index} {name}: completed before, skipped");
            continue;
        }
        if env_is("AGENT_STOP_BEFORE_PHASE", index) {
            return Err(AgentError::Shutdown);
        }
        println!("phase {index} {name}");
        run.phase_started(index, name)?;
        run.step(vec![Message::new(Role::Assistant, format!("working on {name}"))])?;
        run.phase_completed(index, name, finding)?;
        if env_is("AGENT_CRASH_AFTER_PHASE", index) {
            println!("crashing after phase {index}");
            std::process::abort();
        }
    }
    Ok("PR ready: token expiry fixed".into())
}

fn env_is(name: &str, index: u32) -> bool {
    std::env::var(name).is_ok_and(|value| value == index.to_string())
}

/// Runs the agent on the newest episode, or on the next one once it finished.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("AGENT_DB").unwrap_or_else(|_| "./agent.db".into());
    let journal = Journal::open(path, Options::default())?; // Durable by default
    let meta = RunMeta {
        model: Some("sim-large".into()), // a resume expects the same backend and model
        ..RunMeta::default()
    };
    let episode = journal.latest_episode(GOAL, AGENT)?.unwrap_or(0);
    let key = RunKey::new(GOAL, episode, AGENT)?;
    let output = match journal.scoped(&key, meta.clone(), work) {
        Err(ScopedError::Finished { run, status }) => {
            // That attempt is over: a new start is a new episode.
            let next = RunKey::new(GOAL, journal.next_episode(GOAL)?, AGENT)?;
            println!("run {run} is {status}; starting episode {}", next.episode);
            journal.scoped(&next, meta, work)?
        }
        other => other?,
    };
    println!("done: {output}");
    Ok(())
}
