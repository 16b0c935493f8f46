//! The runtime side of runjournal: begin a run, work through phases with
//! steps and a context compaction, crash, find the run with `recoverable()`,
//! resume it (skipping completed phases, continuing the transcript) and finish.
//!
//! Run with `cargo run --example resume_after_crash`.

use runjournal::{
    CompactionInfo, CompactionSource, Journal, Message, Options, Outcome, Role, RunKey, RunMeta, RunStatus,
};

const PLAN: [&str; 3] = ["investigate", "patch", "verify"];

fn main() -> Result<(), runjournal::Error> {
    let dir = std::env::temp_dir().join(format!("runjournal-resume-example-{}", std::process::id()));
    let key = RunKey::new("fix-login-bug", 0, "orchestrator-0")?;

    // Process 1: works through phase 0, starts phase 1, then dies mid-compaction.
    {
        let journal = Journal::open(&dir, Options::default())?;
        let run = journal.begin(
            key.clone(),
            RunMeta {
                prompt: Some("fix the login bug".into()),
                agent_name: Some("orchestrator-0-9c1e2a".into()),
                ..RunMeta::default()
            },
        )?;
        run.phase_started(0, PLAN[0])?;
        run.step(vec![
            Message::new(Role::User, "fix the login bug"),
            Message::new(Role::Assistant, "reading auth.rs"),
        ])?;
        run.phase_completed(0, PLAN[0], "token expiry is off by one")?;
        run.phase_started(1, PLAN[1])?;
        run.step(vec![Message::new(Role::Assistant, "editing token.rs")])?;
        run.compaction_started(CompactionSource::Structured, CompactionInfo::default())?;
        run.compaction_done(
            CompactionSource::Structured,
            CompactionInfo {
                summary: Some("expiry check uses > instead of >=; editing token.rs".into()),
                ..CompactionInfo::default()
            },
        )?;
        run.step(vec![Message::new(Role::Assistant, "patched the comparison")])?;
        println!("process 1: appended {} events, then crashed", run.next_seq());
        // No finish: the process is gone. Every append above was durable.
    }

    // Process 2: a supervisor finds what to resume.
    let journal = Journal::open(&dir, Options::default())?;
    for state in journal.recoverable()? {
        println!(
            "recoverable: {} ({}, iteration {})",
            state.run, state.status, state.iteration
        );
    }
    let (run, state) = journal.resume(&key)?;
    let skip = state.completed_phase_indices();
    println!("resumed in epoch {}: skipping phases {skip:?}", state.epoch);
    println!(
        "context segment {} holds {} messages:",
        state.segment,
        state.transcript.len()
    );
    for message in &state.transcript {
        println!("  {:?}: {}", message.role, message.content);
    }
    for (index, name) in (0u32..).zip(PLAN) {
        if skip.contains(&index) {
            continue;
        }
        // The interrupted phase re-runs from its start.
        run.phase_started(index, name)?;
        run.step(vec![Message::new(Role::Assistant, format!("{name}: done"))])?;
        run.phase_completed(index, name, format!("{name} ok"))?;
    }
    run.finish(Outcome::Success {
        output: Some("login bug fixed".into()),
    })
    .map_err(runjournal::Error::from)?;

    let state = journal.state(&key)?;
    assert_eq!(state.status, RunStatus::Completed);
    println!(
        "finished: {} phases completed, iteration {}, {} compaction(s)",
        state.phases.completed.len(),
        state.iteration,
        state.compaction.count
    );
    drop(journal);
    std::fs::remove_dir_all(&dir).map_err(|source| runjournal::StoreError::Io {
        operation: "remove example database",
        source,
    })?;
    Ok(())
}
