//! What a supervisor resumes: `recoverable` lists exactly the running and
//! interrupted runs, and `resume` returns where to continue (the phases to
//! skip, the phase to re-run, the current segment's transcript, the iteration).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, memory_journal, step};
use runjournal::*;

#[test]
fn recoverable_lists_exactly_the_running_and_interrupted_runs() {
    let journal = memory_journal();
    let running = key("g", 0, "running");
    let interrupted = key("g", 0, "interrupted");
    drop(journal.begin(running.clone(), RunMeta::default()).unwrap());
    journal
        .begin(interrupted.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::Shutdown)
        .unwrap();
    journal
        .begin(key("g", 0, "completed"), RunMeta::default())
        .unwrap()
        .finish(Outcome::Success { output: None })
        .unwrap();
    journal
        .begin(key("g", 0, "failed"), RunMeta::default())
        .unwrap()
        .finish(Outcome::failure("x", "y"))
        .unwrap();
    let recoverable: Vec<(RunKey, RunStatus)> = journal
        .recoverable()
        .unwrap()
        .into_iter()
        .map(|state| (state.run, state.status))
        .collect();
    assert_eq!(
        recoverable,
        vec![(interrupted, RunStatus::Interrupted), (running, RunStatus::Running)]
    );
}

#[test]
fn resume_returns_the_phases_to_skip_the_phase_to_rerun_the_segment_transcript_and_the_iteration() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    {
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.phase_started(0, "plan").unwrap();
        run.step(step("planning")).unwrap();
        run.phase_completed(0, "plan", "the plan").unwrap();
        run.phase_started(1, "build").unwrap();
        run.step(step("old context")).unwrap();
        run.compaction_started(CompactionSource::Structured, CompactionInfo::default())
            .unwrap();
        run.compaction_done(
            CompactionSource::Structured,
            CompactionInfo {
                summary: Some("summary of the plan".into()),
                ..CompactionInfo::default()
            },
        )
        .unwrap();
        run.step(step("building")).unwrap();
    }
    let (_, state) = journal.resume(&run_key).unwrap();
    assert_eq!(state.completed_phase_indices(), vec![0]);
    let active = state.phases.active.clone().unwrap();
    assert_eq!((active.index, active.name.as_str()), (1, "build"));
    let transcript: Vec<(Role, &str)> = state
        .transcript
        .iter()
        .map(|message| (message.role, message.content.as_str()))
        .collect();
    assert_eq!(
        transcript,
        vec![(Role::System, "summary of the plan"), (Role::Assistant, "building")]
    );
    assert_eq!((state.iteration, state.segment), (3, 1));
}
