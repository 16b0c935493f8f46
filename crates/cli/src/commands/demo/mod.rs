//! `demo`: what the journal is for, in a few seconds, on the embedded sled store.
//!
//! A simulated agent runs a multi-phase session in a child process (this same
//! binary, `demo-agent`, in [`session`]), appending durably. Mid-compaction
//! the demo kills it with SIGKILL: a real crash, with nothing flushed or
//! finished on the way out. A supervisor-like second process (`demo-resume`)
//! then resumes the run from the journal alone: the resume clears the stranded
//! compaction (rule 5), it records the death, skips the completed phases, re-runs the
//! active one from its start, continues the transcript and finishes the run.
//! Before the kill, while the agent holds the database, the demo reads the
//! run's live state through the socket the agent serves, as any other
//! process would. Finally the demo reconstructs the session with `show` and
//! `state`.
//!
//! Invariants: without `--db` the demo uses its own default database and
//! replaces only a previous demo's database there (a sled directory; anything
//! else is the user's and is refused); with `--json`, stdout carries only the
//! final state and the narration goes to stderr.

mod child;
pub mod session;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runjournal::{ConnectOptions, Journal, ResumeState, RunKey};
use runjournal_sled::files;

use super::show::write_timeline;
use super::state::write_state;
use crate::context::Context;
use crate::output::{fail, Style};
use crate::render::state::TranscriptShown;

/// The database path `demo` uses when `--db` is not given.
const DEFAULT_DB: &str = "./runjournal-demo.db";
/// The agent of the demo's run.
const AGENT: &str = "orchestrator-0";
/// The longest the demo waits for a child's next line.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Narration: to stdout, or to stderr when stdout carries `--json`.
struct Narrator<'a, 'out> {
    cx: &'a mut Context<'out>,
    style: Style,
}

impl Narrator<'_, '_> {
    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        if self.cx.json {
            eprintln!("{text}");
        } else {
            writeln!(self.cx.out, "{text}")?;
            self.cx.out.flush()?;
        }
        Ok(())
    }

    fn step(&mut self, number: u32, text: &str) -> anyhow::Result<()> {
        let heading = self.style.bold(&format!("[{number}/4] {text}"));
        self.line(&format!("\n{heading}"))
    }
}

/// `demo`.
pub fn run(cx: &mut Context) -> anyhow::Result<ExitCode> {
    let style = if cx.json { Style::PLAIN } else { cx.style() };
    if !cx.db_given {
        cx.db = crate::context::Db(PathBuf::from(DEFAULT_DB));
        clear_previous_demo(&cx.db)?;
    }
    let goal = format!("demo-{}", SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs());
    // Open once up front: creates the database, fails early and clearly when
    // another process holds it, and picks a fresh episode of the goal.
    let episode = {
        let journal = cx.open_or_create()?;
        journal.next_episode(&goal).map_err(|error| cx.read_error(error))?
    };
    let key = RunKey::new(goal, episode, AGENT)?;
    let exe =
        std::env::current_exe().map_err(|error| fail(format!("cannot find this program to re-run it: {error}")))?;
    let mut say = Narrator { cx, style };

    say.line(&format!(
        "{} a simulated agent session that crashes mid-compaction and resumes in a new process",
        style.bold("runjournal demo:")
    ))?;
    say.line(&format!(
        "  database  {} (embedded sled, durable appends; its holder serves it to other processes)",
        say.cx.db.display()
    ))?;
    say.line(&format!("  run       {} {key}", key.short_id()))?;

    let (crash_seq, status) = crash_the_agent(&mut say, &exe, &key)?;
    resume_in_a_new_process(&mut say, &exe, &key, status)?;
    reconstruct(&mut say, &key)?;
    try_next(&mut say, &key, crash_seq)?;
    Ok(ExitCode::SUCCESS)
}

/// Steps 1 and 2: the agent appends its session up to the compaction, and is
/// killed there. Returns the seq of the stranded compaction and the exit.
fn crash_the_agent(say: &mut Narrator, exe: &Path, key: &RunKey) -> anyhow::Result<(Option<u64>, ExitStatus)> {
    let style = say.style;
    let mut agent = child::spawn(exe, &say.cx.db, "demo-agent", key, &[])?;
    say.step(1, &format!("the agent (process {}) starts the run", agent.id()))?;
    let lines = child::relay(&mut agent)?;
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
                    child::describe(status)
                )));
            }
        }
    };

    let pid = agent.id();
    if let Err(error) = read_live_state(say, key, pid) {
        drop(agent.kill());
        drop(agent.wait());
        return Err(error);
    }

    say.step(2, "crash: SIGKILL, mid-compaction")?;
    agent.kill()?;
    let status = agent.wait()?;
    say.line(&format!(
        "  {} process {pid} while its compaction was in flight ({}): no shutdown hook ran, nothing was finished",
        style.bad("killed"),
        child::describe(status)
    ))?;
    Ok((crash_seq, status))
}

/// End of step 1: the run's state, read through the socket of the agent
/// process `pid` while it holds the database (or why it could not be).
fn read_live_state(say: &mut Narrator, key: &RunKey, pid: u32) -> anyhow::Result<()> {
    let style = say.style;
    let socket = say.cx.db.join(runjournal::wire::SOCKET_NAME);
    let live = Journal::connect(&say.cx.db.0, ConnectOptions::default())
        .map_err(|error| error.to_string())
        .and_then(|journal| journal.state(key).map_err(|error| error.to_string()));
    let state = match live {
        Ok(state) => state,
        Err(reason) => {
            return say.line(&format!(
                "  {} no live state through {}: {reason}",
                style.dim("live  │"),
                socket.display()
            ))
        }
    };
    say.line(&format!(
        "  {} read through {} while process {pid} holds the database:",
        style.dim("live  │"),
        socket.display()
    ))?;
    say.line(&format!("  {} {}", style.dim("live  │"), live_summary(&state)))
}

/// One line of a live run's state: where it stands and what is in flight.
fn live_summary(state: &ResumeState) -> String {
    let last_seq = state.last_seq.map_or_else(|| "-".to_owned(), |seq| seq.to_string());
    let phase = state.phases.active.as_ref().map_or_else(
        || "none".to_owned(),
        |active| format!("{} \"{}\"", active.index, active.name),
    );
    format!(
        "{} · epoch {} · last seq {last_seq} · iteration {} · {} phases done, active {phase} · compaction {}",
        state.status.as_str(),
        state.epoch,
        state.iteration,
        state.phases.completed.len(),
        if state.compaction.active { "in flight" } else { "idle" },
    )
}

/// Step 3: a supervisor's process resumes the run, told how the agent died.
fn resume_in_a_new_process(say: &mut Narrator, exe: &Path, key: &RunKey, died: ExitStatus) -> anyhow::Result<()> {
    let style = say.style;
    let reason = "killed by SIGKILL during a context compaction".to_owned();
    let exit_code = child::status_code(died).to_string();
    let extra = ["--reason", reason.as_str(), "--exit-code", exit_code.as_str()];
    let mut resumer = child::spawn(exe, &say.cx.db, "demo-resume", key, &extra)?;
    say.step(
        3,
        &format!("a supervisor resumes the run in a new process ({})", resumer.id()),
    )?;
    let lines = child::relay(&mut resumer)?;
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
            child::describe(status)
        )));
    }
    Ok(())
}

/// Step 4: `show` and `state` of the run, as a user would type them.
fn reconstruct(say: &mut Narrator, key: &RunKey) -> anyhow::Result<()> {
    let style = say.style;
    say.step(4, "the journal reconstructs the session")?;
    let journal = say.cx.open_existing()?;
    let record = journal.run_info(key).map_err(|error| say.cx.read_error(error))?;
    let state = journal.state(key).map_err(|error| say.cx.read_error(error))?;
    if say.cx.json {
        return write_state(say.cx, &state, None, TranscriptShown::DEFAULT);
    }
    let db = shell_word(Path::new(&say.cx.db.display()));
    let id = key.short_id();
    say.line(&format!(
        "\n{}",
        style.dim(&format!("$ runjournal --db {db} show {id}"))
    ))?;
    write_timeline(say.cx, &journal, &record)?;
    say.line(&format!(
        "\n{}",
        style.dim(&format!("$ runjournal --db {db} state {id}"))
    ))?;
    write_state(say.cx, &state, None, TranscriptShown::DEFAULT)
}

/// The commands to explore the database the demo left.
fn try_next(say: &mut Narrator, key: &RunKey, crash_seq: Option<u64>) -> anyhow::Result<()> {
    let prefix = format!("runjournal --db {}", shell_word(Path::new(&say.cx.db.display())));
    let id = key.short_id();
    say.line(&format!(
        "\n{} (on the database the demo left)",
        say.style.bold("Try next")
    ))?;
    say.line(&format!("  {prefix} runs"))?;
    say.line(&format!("  {prefix} show {id}"))?;
    if let Some(seq) = crash_seq {
        say.line(&format!(
            "  {prefix} state {id} --at {seq}    # the state the crash left behind"
        ))?;
    }
    say.line(&format!("  {prefix} verify"))?;
    say.line(&format!("  {prefix} export {id} -o session.jsonl"))
}

/// Removes the previous demo's database at the default path, and only a
/// database directory: anything else there is the user's and is kept.
fn clear_previous_demo(db: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        return Ok(());
    }
    if !files::looks_like_database(db) {
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
