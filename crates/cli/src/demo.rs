//! `demo`: what the journal is for, in a few seconds, on the embedded sled store.
//!
//! A simulated agent runs a multi-phase session in a child process (this same
//! binary, `demo-agent`), appending durably. Mid-compaction the demo kills it
//! with SIGKILL: a real crash, with nothing flushed or finished on the way
//! out. A supervisor-like second process (`demo-resume`) then resumes the run
//! from the journal alone: the resume clears the stranded compaction (rule 5),
//! it records the death, skips the completed phases, re-runs the active one from its
//! start, continues the transcript and finishes the run. Finally the demo
//! reconstructs the session with `show` and `state`.
//!
//! Child protocol (stdout, one line each): `say TEXT` is narration to relay;
//! `ready SEQ` means the agent has durably appended `compaction_started` at
//! SEQ and waits to be killed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use runjournal::{
    CompactionInfo, CompactionSource, Handoff, Message, Outcome, ResumeState, Role, Run, RunKey, RunMeta, TaskResult,
};

use crate::commands::{write_state, write_timeline};
use crate::output::{fail, Output, Style};
use crate::select::{open_existing, open_or_create};

/// The agent of the demo's run.
const AGENT: &str = "orchestrator-0";
/// The phases of the simulated session.
const PHASES: [&str; 4] = ["plan", "implement", "test", "write-up"];
/// The task the simulated user gives.
const PROMPT: &str = "Add rate limiting to POST /login: at most 5 attempts per minute per IP, with tests.";
/// The pause between simulated agent steps, so the session unfolds visibly.
const STEP_PAUSE: Duration = Duration::from_millis(110);
/// The longest the demo waits for a child's next line.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// Exit status of a process killed by SIGKILL, as a shell reports it.
const SIGKILL_EXIT: i32 = 128 + 9;

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

/// Narration: to stdout, or to stderr when stdout carries `--json`.
struct Narrator<'a> {
    out: &'a mut Output,
    json: bool,
    style: Style,
}

impl Narrator<'_> {
    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        if self.json {
            eprintln!("{text}");
        } else {
            writeln!(self.out, "{text}")?;
            self.out.flush()?;
        }
        Ok(())
    }

    fn step(&mut self, number: u32, text: &str) -> anyhow::Result<()> {
        let heading = self.style.bold(&format!("[{number}/4] {text}"));
        self.line(&format!("\n{heading}"))
    }
}

/// `demo`.
pub fn demo(db: Option<&Path>, json: bool, out: &mut Output) -> anyhow::Result<ExitCode> {
    let style = if json { Style::PLAIN } else { out.style };
    let db = match db {
        Some(db) => db.to_path_buf(),
        None => {
            let db = PathBuf::from(crate::DEFAULT_DEMO_DB);
            clear_previous_demo(&db)?;
            db
        }
    };
    let goal = format!("demo-{}", SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs());
    // Open once up front: creates the database, fails early and clearly when
    // another process holds it, and picks a fresh episode of the goal.
    let episode = {
        let journal = open_or_create(&db)?;
        journal
            .next_episode(&goal)
            .map_err(|error| crate::select::read_error(&db, error))?
    };
    let key = RunKey::new(goal.clone(), episode, AGENT)?;
    let exe =
        std::env::current_exe().map_err(|error| fail(format!("cannot find this program to re-run it: {error}")))?;
    let mut say = Narrator { out, json, style };

    say.line(&format!(
        "{} a simulated agent session that crashes mid-compaction and resumes in a new process",
        style.bold("runjournal demo:")
    ))?;
    say.line(&format!(
        "  database  {} (embedded sled, durable appends)",
        db.display()
    ))?;
    say.line(&format!("  run       {} {key}", key.short_id()))?;

    let mut agent = spawn(&exe, &db, "demo-agent", &key, &[])?;
    say.step(1, &format!("the agent (process {}) starts the run", agent.id()))?;
    let lines = relay(&mut agent)?;
    let crash_seq = loop {
        match lines.recv_timeout(CHILD_TIMEOUT) {
            Ok(line) => match line.split_once(' ') {
                Some(("say", text)) => say.line(&format!("  {} {text}", style.dim("agent │")))?,
                Some(("ready", seq)) => break seq.trim().parse::<u64>().ok(),
                _ => say.line(&format!("  {} {line}", style.dim("agent │")))?,
            },
            Err(RecvTimeoutError::Timeout) => {
                drop(agent.kill());
                drop(agent.wait());
                return Err(fail("the demo agent stopped answering; killed it"));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = agent.wait()?;
                return Err(fail(format!(
                    "the demo agent exited before the crash point ({}); its error is above",
                    describe(status)
                )));
            }
        }
    };

    say.step(2, "crash: SIGKILL, mid-compaction")?;
    let pid = agent.id();
    agent.kill()?;
    let status = agent.wait()?;
    say.line(&format!(
        "  {} process {pid} while its compaction was in flight ({}): no shutdown hook ran, nothing was finished",
        style.bad("killed"),
        describe(status)
    ))?;

    let reason = "killed by SIGKILL during a context compaction".to_owned();
    let exit_code = status_code(status).to_string();
    let extra = ["--reason", reason.as_str(), "--exit-code", exit_code.as_str()];
    let mut resumer = spawn(&exe, &db, "demo-resume", &key, &extra)?;
    say.step(
        3,
        &format!("a supervisor resumes the run in a new process ({})", resumer.id()),
    )?;
    let lines = relay(&mut resumer)?;
    loop {
        match lines.recv_timeout(CHILD_TIMEOUT) {
            Ok(line) => {
                let text = line.strip_prefix("say ").unwrap_or(&line);
                say.line(&format!("  {} {text}", style.dim("resume │")))?;
            }
            Err(RecvTimeoutError::Timeout) => {
                drop(resumer.kill());
                drop(resumer.wait());
                return Err(fail("the demo's resuming process stopped answering; killed it"));
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = resumer.wait()?;
    if !status.success() {
        return Err(fail(format!(
            "the demo's resuming process failed ({}); its error is above",
            describe(status)
        )));
    }

    say.step(4, "the journal reconstructs the session")?;
    let journal = open_existing(&db)?;
    let record = journal
        .run_info(&key)
        .map_err(|error| crate::select::read_error(&db, error))?;
    let state = journal
        .state(&key)
        .map_err(|error| crate::select::read_error(&db, error))?;
    if json {
        write_state(&state, None, true, say.out)?;
    } else {
        say.line(&format!(
            "\n{}",
            style.dim(&format!(
                "$ runjournal --db {} show {}",
                shell_word(&db),
                key.short_id()
            ))
        ))?;
        write_timeline(&journal, &db, &record, 0, false, say.out)?;
        say.line(&format!(
            "\n{}",
            style.dim(&format!(
                "$ runjournal --db {} state {}",
                shell_word(&db),
                key.short_id()
            ))
        ))?;
        write_state(&state, None, false, say.out)?;
    }
    drop(journal);

    let prefix = format!("runjournal --db {}", shell_word(&db));
    let id = key.short_id();
    say.line(&format!("\n{} (on the database the demo left)", style.bold("Try next")))?;
    say.line(&format!("  {prefix} runs"))?;
    say.line(&format!("  {prefix} show {id}"))?;
    if let Some(seq) = crash_seq {
        say.line(&format!(
            "  {prefix} state {id} --at {seq}    # the state the crash left behind"
        ))?;
    }
    say.line(&format!("  {prefix} verify"))?;
    say.line(&format!("  {prefix} export {id} -o session.jsonl"))?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the previous demo's database at the default path, and only a sled
/// database directory: anything else there is the user's and is kept.
fn clear_previous_demo(db: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        return Ok(());
    }
    if !looks_like_sled(db) {
        return Err(fail(format!(
            "{} exists and is not a runjournal database; move it away, or pass --db PATH",
            db.display()
        )));
    }
    std::fs::remove_dir_all(db).map_err(|error| {
        fail(format!(
            "cannot remove the previous demo database {}: {error}",
            db.display()
        ))
    })
}

/// A sled 0.34 directory: `conf` and `db`, and nothing but sled's own files.
fn looks_like_sled(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let mut names = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let guard = runjournal_sled::guard::GUARD_FILE;
    let sled_file =
        |name: &str| matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.") || name.starts_with(guard);
    names.iter().any(|name| name == "db")
        && names.iter().any(|name| name == "conf")
        && names.iter().all(|name| sled_file(name))
}

fn spawn(exe: &Path, db: &Path, command: &str, key: &RunKey, extra: &[&str]) -> anyhow::Result<Child> {
    Command::new(exe)
        .arg("--db")
        .arg(db)
        .arg(command)
        .arg("--goal")
        .arg(&key.goal)
        .arg("--episode")
        .arg(key.episode.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_remove("NO_COLOR")
        .spawn()
        .map_err(|error| fail(format!("cannot start the demo's {command} process: {error}")))
}

/// The child's stdout lines, read on a thread so the demo can time out.
fn relay(child: &mut Child) -> anyhow::Result<Receiver<String>> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("the demo's child process has no stdout"))?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal}, exit status {}", 128 + signal);
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "no exit status".into(),
    }
}

/// The exit code a shell would report: 128 + signal for a killed process.
fn status_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(SIGKILL_EXIT)
}

/// A path as one shell word (quoted when it needs to be).
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '+' | ',' | ':' | '@'));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Writes a `say` line for the demo to relay.
fn say(out: &mut Output, text: &str) -> anyhow::Result<()> {
    writeln!(out, "say {text}")?;
    out.flush()?;
    Ok(())
}

/// `demo-agent`: begins the run and works until the compaction of phase 2,
/// then waits to be killed.
pub fn agent(db: &Path, args: &ChildArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let journal = open_or_create(db)?;
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
pub fn resume(db: &Path, args: &ChildArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
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
                crate::output::quoted(&last.content, 60)
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
