//! The demo's simulated agent session, run by its child processes:
//! `demo-agent` begins the run and works until the compaction of phase 2,
//! then waits to be killed; `demo-resume` resumes it as a supervisor would
//! (records the death, skips the completed phases, re-runs the active one
//! from its start) and finishes it.
//!
//! Both serve the database while they hold it (on its owner-only Unix
//! socket), so other processes can read the live run meanwhile; the
//! resumer's server replaces the socket the killed agent left.
//!
//! Child protocol (stdout, one line each): `say TEXT` is narration for the
//! demo to relay; `ready SEQ` means the agent has durably appended
//! `compaction_started` at SEQ, is serving, and waits to be killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use runjournal::{
    CompactionInfo, CompactionSource, Handoff, Journal, Message, Outcome, ResumeState, Role, Run, RunKey, RunMeta,
    ServeHandle, ServeOptions, TaskResult,
};

use super::{AGENT, CHILD_TIMEOUT};
use crate::context::Context;
use crate::output::{fail, quoted, Output};

/// The phases of the simulated session.
const PHASES: [&str; 4] = ["plan", "implement", "test", "write-up"];
/// The task the simulated user gives.
const PROMPT: &str = "Add rate limiting to POST /login: at most 5 attempts per minute per IP, with tests.";
/// The pause between simulated agent steps, so the session unfolds visibly.
const STEP_PAUSE: Duration = Duration::from_millis(110);

/// Arguments of the demo's child processes.
#[derive(Args, Debug)]
pub struct ChildArgs {
    /// The run's goal.
    #[arg(long)]
    goal: String,
    /// The run's episode.
    #[arg(long)]
    episode: u32,
    /// (demo-resume) Why the previous agent process died.
    #[arg(long)]
    reason: Option<String>,
    /// (demo-resume) The previous agent process's exit code.
    #[arg(long, allow_negative_numbers = true)]
    exit_code: Option<i32>,
}

/// Writes a `say` line for the demo to relay.
fn say(out: &mut Output, text: &str) -> anyhow::Result<()> {
    writeln!(out, "say {text}")?;
    out.flush()?;
    Ok(())
}

/// `demo-agent`: begins the run and works until the compaction of phase 2,
/// then waits to be killed.
pub fn agent(cx: &mut Context, args: &ChildArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_or_create()?;
    let out = &mut *cx.out;
    let _server = serve(&journal, out)?;
    let key = RunKey::new(args.goal.clone(), args.episode, AGENT)?;
    let meta = RunMeta {
        agent_name: Some(format!("{AGENT}-{}", std::process::id())),
        caller: Some("runjournal demo".into()),
        prompt: Some(PROMPT.into()),
        model: Some("sim-large".into()),
        backend: Some("simulated".into()),
        ..RunMeta::default()
    };
    let run = journal.begin(key, meta)?;
    say(
        out,
        &format!(
            "began the run (epoch {}): every append is durable before it returns",
            run.epoch()
        ),
    )?;
    let state = run.state();
    match work(&run, &state, true, out)? {
        Flow::Crashed(seq) => {
            writeln!(out, "ready {seq}")?;
            out.flush()?;
            // The demo kills this process now; if it never does, give up.
            std::thread::sleep(CHILD_TIMEOUT);
            Err(fail("demo-agent: the demo never killed this process"))
        }
        Flow::Finished => Err(fail(
            "demo-agent: the session finished without reaching its crash point",
        )),
    }
}

/// `demo-resume`: resumes the run as a supervisor would and finishes it.
pub fn resume(cx: &mut Context, args: &ChildArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let out = &mut *cx.out;
    let _server = serve(&journal, out)?;
    let key = RunKey::new(args.goal.clone(), args.episode, AGENT)?;
    let stranded = journal.state(&key)?.compaction.active;
    let (run, state) = journal.resume(&key)?;
    say(
        out,
        &format!(
            "resume(): attached in epoch {} · iteration {} · segment {} · transcript {} messages · compaction {}",
            run.epoch(),
            state.iteration,
            state.segment,
            state.transcript.len(),
            match (stranded, state.compaction.active) {
                (_, true) => "ACTIVE",
                (true, false) => "stranded by the crash, cleared by the resume (rule 5)",
                (false, false) => "not active",
            }
        ),
    )?;
    let reason = args.reason.clone().unwrap_or_else(|| "the agent process died".into());
    run.agent_died(reason.clone(), args.exit_code)?;
    let code = args.exit_code.map(|code| format!(", exit {code}")).unwrap_or_default();
    say(
        out,
        &format!("recorded agent_died ({reason}{code}): the run stays recoverable (rule 9)"),
    )?;
    let state = run.state();
    if let Some(last) = state.transcript.last() {
        say(
            out,
            &format!(
                "the transcript continues from {} messages of segment {}; the last: {}",
                state.transcript.len(),
                state.segment,
                quoted(&last.content, 60)
            ),
        )?;
    }
    match work(&run, &state, false, out)? {
        Flow::Finished => {
            let seq = run.finish(Outcome::Success {
                output: Some("PR ready: POST /login allows 5 attempts per minute per IP; 42 tests pass".into()),
            })?;
            say(out, &format!("run completed at seq {seq}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Flow::Crashed(_) => Err(fail("demo-resume: the resumed session crashed")),
    }
}

/// Serves `journal` on its database's socket until the handle is dropped
/// (which removes the socket). Serving is not what the session is about:
/// when it cannot start (a socket path over the OS's length limit, say), the
/// process says why and works unserved.
fn serve(journal: &Journal, out: &mut Output) -> anyhow::Result<Option<ServeHandle>> {
    match journal.serve(ServeOptions::default()) {
        Ok(server) => Ok(Some(server)),
        Err(error) => {
            say(out, &format!("not serving the database to other processes: {error}"))?;
            Ok(None)
        }
    }
}

/// Where the simulated session stopped.
enum Flow {
    /// `compaction_started` is durably appended at this seq; the agent waits to be killed.
    Crashed(u64),
    /// Every phase is completed.
    Finished,
}

fn text(role: Role, content: &str) -> Message {
    Message::new(role, content)
}

fn tool(name: &str, content: &str) -> Message {
    Message {
        name: Some(name.into()),
        ..Message::new(Role::Tool, content)
    }
}

/// The simulated session: every phase of [`PHASES`] that `state` has not
/// completed, the active one from its start. With `crash`, it stops right
/// after `compaction_started` in phase 2.
fn work(run: &Run, state: &ResumeState, crash: bool, out: &mut Output) -> anyhow::Result<Flow> {
    for (index, name) in (0u32..).zip(PHASES) {
        if let Some(done) = state.phases.completed.iter().find(|phase| phase.index == index) {
            say(
                out,
                &format!(
                    "skip phase {index} \"{name}\": completed before the crash ({:?})",
                    done.output
                ),
            )?;
            continue;
        }
        if state.phases.active.as_ref().is_some_and(|active| active.index == index) {
            say(
                out,
                &format!("re-run phase {index} \"{name}\" from its start: it was active when the agent died"),
            )?;
        } else {
            say(out, &format!("phase {index} \"{name}\""))?;
        }
        run.phase_started(index, name)?;
        pause();
        let output = match index {
            0 => plan(run)?,
            1 => implement(run, out)?,
            2 => match test(run, crash, out)? {
                Some(output) => output,
                None => return Ok(Flow::Crashed(run.next_seq() - 1)),
            },
            _ => write_up(run)?,
        };
        run.phase_completed(index, name, output.clone())?;
        say(out, &format!("  ✔ phase {index} \"{name}\" completed: {output}"))?;
        pause();
    }
    Ok(Flow::Finished)
}

fn pause() {
    std::thread::sleep(STEP_PAUSE);
}

fn plan(run: &Run) -> anyhow::Result<String> {
    run.step(vec![
        text(Role::User, PROMPT),
        text(
            Role::Assistant,
            "Plan: a per-IP token bucket in front of the login handler, then tests, then the PR write-up.",
        ),
    ])?;
    pause();
    Ok("token bucket per IP as middleware; 2 files to touch".into())
}

fn implement(run: &Run, out: &mut Output) -> anyhow::Result<String> {
    run.task_claimed("rate-limiter", AGENT, 1, 0.9)?;
    run.step(vec![
        text(Role::Assistant, "Reading the login handler."),
        tool(
            "read_file",
            "src/http/login.rs: pub async fn login(req: Request) -> Response { … }",
        ),
    ])?;
    pause();
    run.step(vec![
        text(
            Role::Assistant,
            "Adding src/http/limiter.rs (token bucket, 5 per minute per IP) and wrapping POST /login.",
        ),
        tool("write_file", "wrote src/http/limiter.rs (84 lines)"),
    ])?;
    pause();
    run.handoff_sent(Handoff {
        id: "review-1".into(),
        from: AGENT.into(),
        to: "reviewer-1".into(),
        generation: 1,
        version: "1.0.0".into(),
        content_hash: "5d1c0f9ab27e4c3d".into(),
        timeout_ms: 30_000,
    })?;
    say(out, "  handoff review-1 → reviewer-1 sent")?;
    pause();
    run.handoff_acked("review-1", "reviewer-1")?;
    say(out, "  handoff review-1 acknowledged by reviewer-1")?;
    run.task_completed(
        "rate-limiter",
        AGENT,
        TaskResult::Success,
        Some("limiter wired into POST /login".into()),
    )?;
    run.turn_completed()?;
    pause();
    Ok("src/http/limiter.rs added, POST /login wrapped, review acknowledged".into())
}

/// Phase 2; `None` when it crashed (stopped after `compaction_started`).
fn test(run: &Run, crash: bool, out: &mut Output) -> anyhow::Result<Option<String>> {
    run.step(vec![
        text(Role::Assistant, "Running the test suite."),
        tool(
            "shell",
            "test login_rate_limit ... FAILED: the 6th attempt within a minute returned 200",
        ),
    ])?;
    pause();
    run.step(vec![
        text(
            Role::Assistant,
            "The bucket refills one token too early; fixing the refill time.",
        ),
        tool("write_file", "patched src/http/limiter.rs"),
    ])?;
    pause();
    let id = format!("ctx-e{}", run.epoch());
    let before = run.state().transcript.len() as u64;
    run.compaction_started(
        CompactionSource::Structured,
        CompactionInfo {
            id: Some(id.clone()),
            messages: Some(before),
            tokens: Some(118_000),
            ..CompactionInfo::default()
        },
    )?;
    say(
        out,
        &format!("  context full: compaction {id} started ({before} messages, 118000 tokens)"),
    )?;
    if crash {
        return Ok(None);
    }
    pause();
    run.compaction_done(
        CompactionSource::Structured,
        CompactionInfo {
            id: Some(id.clone()),
            summary: Some(
                "Rate limiter for POST /login in src/http/limiter.rs (token bucket, 5/min/IP); refill fixed; \
                 re-run the tests."
                    .into(),
            ),
            messages: Some(1),
            tokens: Some(900),
        },
    )?;
    say(
        out,
        &format!("  compaction {id} done: segment 1 starts from its summary"),
    )?;
    pause();
    run.step(vec![
        text(Role::Assistant, "Re-running the test suite."),
        tool("shell", "test result: ok. 42 passed; 0 failed"),
    ])?;
    pause();
    Ok(Some("42 tests pass, login_rate_limit included".into()))
}

fn write_up(run: &Run) -> anyhow::Result<String> {
    run.step(vec![
        text(Role::Assistant, "Writing the pull request description."),
        tool("write_file", "wrote PR.md"),
    ])?;
    pause();
    Ok("PR.md: what changed, why, how it was tested".into())
}
