//! A process killed with SIGKILL while it appends loses nothing it
//! acknowledged durably and leaves nothing half-written: after every kill
//! the database reopens, every run verifies and holds whole batches only.
//!
//! The test (`kill_harness`) spawns the `kill-child` binary of this crate
//! (`src/bin/kill_child.rs`) with a database path and a seed. The child
//! opens the journal (`Durable`; see below for `Buffered`), begins or resumes
//! 8 runs from 4 threads and appends batches (phases, steps, compactions,
//! custom payloads; 3 to 12 events each), now and then interrupting and
//! resuming a run or recording an `agent_died`, until it is killed. After
//! every acknowledged batch it prints `ack <goal> <episode> <agent> <last_seq>
//! <batch_len>` on stdout, and after every run boundary that returned (`begin`,
//! `resume`, `finish`, `agent_died`) `boundary <goal> <episode> <agent> <seq>
//! <event type>`.
//!
//! Every batch is framed by two `custom` events, `batch-begin` and
//! `batch-end`, whose data is `n=<batch_len> id=<unique id>`, so a batch is
//! recognisable in the log whether or not it was acknowledged. The only
//! unframed events are the boundaries, single-event writes: `run_started`,
//! `attached`, `agent_died` and `run_interrupted`.
//!
//! The parent kills the child with SIGKILL after a random delay (5–80 ms,
//! counted from the first acknowledgement, or one time in six from the spawn
//! and one in six from the child's "ready", so that kills also land in sled's
//! recovery and in begin/resume). One child in five runs `Buffered`: its
//! acknowledged batches are not required to survive, but they must be whole
//! too, and its boundaries must survive (a run's boundaries are durable in
//! every mode). The parent then reopens the database with `Journal::open` and
//! checks:
//! - every run verifies (`verify`: chain, gapless seqs, head);
//! - every batch in every log is whole (no partial batch, acknowledged or
//!   not) and nothing unframed appears outside the single-event writes;
//! - every write acknowledged by every earlier `Durable` child is present, at
//!   its seq, with its length;
//! - every boundary that returned in any child, `Durable` or `Buffered`, is
//!   present at its seq with its event type: the run replays with that
//!   outcome or boundary;
//! - every recoverable run resumes (and the next child resumes it again).
//!
//! Defaults: 50 kills (about 20 s in debug on 2 cores); `RUNJOURNAL_KILLS=N`
//! for a soak run, `RUNJOURNAL_KILL_SEED=S` to replay a seed. The summary line
//! `kill harness: N kills, M acknowledged events checked, K runs` is printed
//! with `println!` and `eprintln!`; run with `--nocapture` to see it:
//! `cargo test -p runjournal-kill-harness -- --nocapture`.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runjournal::{Envelope, Event, Journal, Options, RunFilter, RunKey, RunStatus};
use runjournal_kill_harness::{Rng, GOAL, RUNS};
use runjournal_postgres::testing::{as_url, test_server_url, TempServer, TestDatabase};

// ---------------------------------------------------------------------------
// The parent.
// ---------------------------------------------------------------------------

/// An acknowledged write: its last seq and length.
type Acks = BTreeMap<String, BTreeMap<u64, u64>>;
/// A boundary that returned: its seq and event type, by agent.
type Boundaries = BTreeMap<String, BTreeMap<u64, String>>;

/// What one child printed before it died.
struct ChildOutput {
    acks: Vec<(String, u64, u64)>,
    boundaries: Vec<(String, u64, String)>,
    ready: bool,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn seed() -> u64 {
    match std::env::var("RUNJOURNAL_KILL_SEED") {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

fn kills() -> usize {
    std::env::var("RUNJOURNAL_KILLS").map_or(50, |kills| kills.parse().unwrap())
}

/// Parses an `ack` line; `None` for any other line.
fn parse_ack(line: &str) -> Option<(String, u64, u64)> {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["ack", goal, episode, agent, last_seq, len] => {
            assert_eq!(*goal, GOAL, "{line}");
            assert_eq!(*episode, "0", "{line}");
            Some((agent.to_string(), last_seq.parse().unwrap(), len.parse().unwrap()))
        }
        _ => None,
    }
}

/// Parses a `boundary` line; `None` for any other line.
fn parse_boundary(line: &str) -> Option<(String, u64, String)> {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["boundary", goal, episode, agent, seq, event_type] => {
            assert_eq!(*goal, GOAL, "{line}");
            assert_eq!(*episode, "0", "{line}");
            Some((agent.to_string(), seq.parse().unwrap(), event_type.to_string()))
        }
        _ => None,
    }
}

/// Spawns a child in `mode`; returns it, its stdout's complete lines and
/// the thread reading them.
fn spawn_child(
    path: &Path,
    mode: &str,
    seed: u64,
    stderr_path: &Path,
) -> (std::process::Child, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kill-child"))
        .arg(path)
        .arg(seed.to_string())
        .arg(mode)
        .env_remove("RUNJOURNAL_KILLS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill has no newline: it was never complete.
                Ok(_) if buffer.last() != Some(&b'\n') => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer[..buffer.len() - 1]).into_owned();
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (child, lines_rx, reader)
}

/// Spawns a child, kills it at a random moment, returns what it acknowledged.
fn run_child(path: &Path, logs: &Path, iteration: usize, buffered: bool, rng: &mut Rng) -> ChildOutput {
    let stderr_path = logs.join(format!("child-{iteration}.stderr"));
    let mode = if buffered { "buffered" } else { "durable" };
    let (mut child, lines_rx, reader) = spawn_child(path, mode, rng.next_u64(), &stderr_path);
    let spawned = Instant::now();
    let mut lines = Vec::new();
    // The delay counts from the spawn (kills land in process start and sled's
    // recovery), from "ready" (kills land in begin/resume) or, mostly, from
    // the first acknowledgement (kills land among appends).
    let mark: Option<fn(&str) -> bool> = match rng.below(6) {
        0 => None,
        1 => Some(|line| line.ends_with("ready")),
        _ => Some(|line| line.starts_with("ack ")),
    };
    let delay = Duration::from_millis(5 + rng.below(76));
    if let Some(mark) = mark {
        let deadline = spawned + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    let reached = mark(&line);
                    lines.push(line);
                    if reached {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    // Where the kill lands, not a synchronisation: a random delay after the mark.
    std::thread::sleep(delay);
    if let Some(status) = child.try_wait().unwrap() {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        panic!("child {iteration} exited by itself ({status}) before it was killed:\n{stderr}");
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "child {iteration} was killed");
    reader.join().unwrap();
    lines.extend(lines_rx.try_iter());
    ChildOutput {
        ready: lines.iter().any(|line| line.ends_with("ready")),
        acks: lines.iter().filter_map(|line| parse_ack(line)).collect(),
        boundaries: lines.iter().filter_map(|line| parse_boundary(line)).collect(),
    }
}

fn custom<'a>(event: &'a Event, wanted: &str) -> Option<&'a str> {
    match event {
        Event::Custom { kind, data } if kind == wanted => Some(data),
        _ => None,
    }
}

fn frame_len(frame: &str) -> u64 {
    frame
        .strip_prefix("n=")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad frame {frame:?}"))
}

/// Checks that the log is made of whole batches and single-event writes;
/// returns the batches found as `last_seq → len`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn whole_batches(key: &RunKey, events: &[Envelope]) -> BTreeMap<u64, u64> {
    let mut batches = BTreeMap::new();
    let mut seq = 0usize;
    while seq < events.len() {
        let event = &events[seq].event;
        if let Some(frame) = custom(event, "batch-begin") {
            let len = frame_len(frame) as usize;
            let last = seq + len - 1;
            assert!(
                last < events.len(),
                "{key}: partial batch: {frame} starts at seq {seq} but the log ends at seq {}",
                events.len() - 1
            );
            for inner in &events[seq + 1..last] {
                assert!(
                    custom(&inner.event, "batch-begin").is_none() && custom(&inner.event, "batch-end").is_none(),
                    "{key}: batch {frame} at seq {seq} is interleaved with another at seq {}",
                    inner.seq
                );
                assert!(
                    !matches!(
                        inner.event,
                        Event::RunStarted { .. }
                            | Event::Attached { .. }
                            | Event::AgentDied { .. }
                            | Event::RunInterrupted { .. }
                    ),
                    "{key}: batch {frame} at seq {seq} is broken by seq {}",
                    inner.seq
                );
            }
            assert_eq!(
                custom(&events[last].event, "batch-end"),
                Some(frame),
                "{key}: batch {frame} at seq {seq} does not end at seq {last}"
            );
            batches.insert(last as u64, len as u64);
            seq = last + 1;
        } else {
            match event {
                Event::RunStarted { .. } => assert_eq!(seq, 0, "{key}: run_started at seq {seq}"),
                Event::Attached { .. } | Event::AgentDied { .. } | Event::RunInterrupted { .. } => {}
                other => panic!("{key}: seq {seq}: {} outside any batch", other.type_name()),
            }
            batches.insert(seq as u64, 1);
            seq += 1;
        }
    }
    batches
}

/// Reopens the database and checks everything; returns the acknowledged events checked.
/// `buffered` holds the batches a `Buffered` child acknowledged: they may be
/// lost (not synced when it died) but, like every write, never in part.
/// `boundaries` holds every boundary any child saw return: none may be lost.
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
#[expect(clippy::similar_names, reason = "the paired names mirror the values they stand for")]
fn check(
    path: &Path,
    acks: &Acks,
    boundaries: &Boundaries,
    buffered: &[(String, u64, u64)],
    iteration: usize,
    stats: &mut Stats,
) -> u64 {
    let journal = Journal::open(path, Options::default())
        .unwrap_or_else(|error| panic!("after kill {iteration}: the database does not reopen: {error}"));
    let runs = journal.runs(&RunFilter::default()).unwrap();
    let mut checked = 0;
    stats.unacked_batches_found = 0;
    for record in &runs {
        let key = &record.key;
        let report = journal
            .verify(key)
            .unwrap_or_else(|error| panic!("after kill {iteration}: {key} does not verify: {error}"));
        let events = journal.read(key, 0).unwrap();
        assert_eq!(events.len() as u64, report.events);
        let batches = whole_batches(key, &events);
        for (&last_seq, &len) in acks.get(&key.agent).into_iter().flatten() {
            assert_eq!(
                batches.get(&last_seq),
                Some(&len),
                "after kill {iteration}: {key}: the acknowledged write ending at seq {last_seq} ({len} events) is \
                 not in the log (it has {} events)",
                events.len()
            );
            checked += len;
        }
        for (&seq, event_type) in boundaries.get(&key.agent).into_iter().flatten() {
            let found = events.get(seq as usize).map(|envelope| envelope.event.type_name());
            assert_eq!(
                found,
                Some(event_type.as_str()),
                "after kill {iteration}: {key}: the {event_type} that returned at seq {seq} is not in the log (it has \
                 {} events)",
                events.len()
            );
            assert_eq!(batches.get(&seq), Some(&1), "{key}: boundary at seq {seq}");
            checked += 1;
            stats.boundaries_checked += 1;
        }
        stats.buffered_acks_kept += buffered
            .iter()
            .filter(|(agent, last_seq, len)| *agent == key.agent && batches.get(last_seq) == Some(len))
            .count() as u64;
        let acked = acks.get(&key.agent);
        stats.unacked_batches_found += batches
            .iter()
            .filter(|(last, len)| **len > 1 && acked.is_none_or(|acked| !acked.contains_key(last)))
            .count() as u64;
    }
    for agent in acks.keys() {
        assert!(
            runs.iter().any(|record| record.key.agent == *agent),
            "after kill {iteration}: acknowledged run {agent} is gone"
        );
    }
    // Every recoverable run resumes; the next child resumes it again.
    for record in journal.recoverable().unwrap() {
        let (run, state) = journal
            .resume(&record.run)
            .unwrap_or_else(|error| panic!("after kill {iteration}: {} does not resume: {error}", record.run));
        assert_eq!(state.status, RunStatus::Running);
        assert_eq!(state.last_seq, Some(run.next_seq() - 1));
    }
    stats.runs = runs.len();
    checked
}

#[derive(Default)]
struct Stats {
    buffered_kills: usize,
    buffered_acks: u64,
    buffered_acks_kept: u64,
    runs: usize,
    unacked_batches_found: u64,
    boundaries_checked: u64,
    buffered_boundaries: u64,
    kills_before_ready: usize,
    kills_before_first_ack: usize,
    sessions_outliving_kills: i64,
}

#[test]
fn kill_harness() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("db");
    harness(&path, dir.path(), kills(), "kill harness", &|| 0);
}

/// The same kills with the journal on PostgreSQL: `kill-child` opens the
/// `postgres://` URL; a killed child's open transaction rolls back.
#[test]
fn kill_harness_on_postgres() {
    let server = test_server_url().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(&server).unwrap();
    let url = as_url(database.url());
    let dir = tempfile::tempdir().unwrap();
    let kills = std::env::var("RUNJOURNAL_KILLS").map_or(30, |kills| kills.parse().unwrap());
    let settle = || {
        database
            .end_other_sessions()
            .unwrap_or_else(|error| panic!("the killed child's sessions: {error}"))
    };
    harness(
        Path::new(&url),
        dir.path(),
        kills,
        "kill harness on PostgreSQL",
        &settle,
    );
}

/// `settle` runs after each child is reaped and before the check: it
/// returns once nothing the dead child sent can still change the store,
/// with how many of its sessions outlived it.
fn harness(path: &Path, logs: &Path, kills: usize, label: &str, settle: &dyn Fn() -> i64) {
    let seed = seed();
    println!("{label} seed: {seed} (replay with RUNJOURNAL_KILL_SEED={seed})");
    eprintln!("{label} seed: {seed} (replay with RUNJOURNAL_KILL_SEED={seed})");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut acks: Acks = BTreeMap::new();
    let mut boundaries: Boundaries = BTreeMap::new();
    let mut stats = Stats::default();
    let mut checked = 0;
    for iteration in 0..kills {
        // One child in five runs `Buffered`: its acknowledged writes may be
        // lost, so they are not required later, but batches stay whole.
        let buffered = rng.below(5) == 0;
        let output = run_child(path, logs, iteration, buffered, &mut rng);
        stats.sessions_outliving_kills += settle();
        if !output.ready {
            stats.kills_before_ready += 1;
        }
        if output.acks.is_empty() {
            stats.kills_before_first_ack += 1;
        }
        // Boundaries are durable in every mode: required from every child.
        for (agent, seq, event_type) in output.boundaries {
            if buffered {
                stats.buffered_boundaries += 1;
            }
            let previous = boundaries
                .entry(agent.clone())
                .or_default()
                .insert(seq, event_type.clone());
            if let Some(previous) = previous {
                assert_eq!(previous, event_type, "{agent}: seq {seq} returned as two event types");
            }
        }
        if buffered {
            stats.buffered_kills += 1;
            stats.buffered_acks += output.acks.len() as u64;
            checked = check(path, &acks, &boundaries, &output.acks, iteration, &mut stats);
            continue;
        }
        for (agent, last_seq, len) in output.acks {
            let previous = acks.entry(agent.clone()).or_default().insert(last_seq, len);
            assert!(
                previous.is_none_or(|previous| previous == len),
                "{agent}: seq {last_seq} acknowledged twice with different lengths"
            );
        }
        checked = check(path, &acks, &boundaries, &[], iteration, &mut stats);
    }
    let line = format!(
        "{label}: {kills} kills, {checked} acknowledged events checked, {} runs",
        stats.runs
    );
    let detail = format!(
        "{label}: seed {seed}, {:.1}s, {} kills before the journal opened, {} before the first ack; {} \
         children ran Buffered ({} of their {} acknowledged batches survived, the rest were not synced yet; all \
         {} of their boundaries survived); {} batches in the final log were never acknowledged durably (in flight \
         at a kill) and are whole; {} boundary checks over all kills; sessions that outlived their killed child: {}",
        started.elapsed().as_secs_f64(),
        stats.kills_before_ready,
        stats.kills_before_first_ack,
        stats.buffered_kills,
        stats.buffered_acks_kept,
        stats.buffered_acks,
        stats.buffered_boundaries,
        stats.unacked_batches_found,
        stats.boundaries_checked,
        stats.sessions_outliving_kills
    );
    println!("{line}");
    println!("{detail}");
    eprintln!("{line}");
    eprintln!("{detail}");
    assert!(checked > 0, "nothing was acknowledged");
    assert_eq!(stats.runs, RUNS);
}

/// The storage failures a call may meet while the server restarts under it:
/// the lost connection (before or during a commit; a fresh connection the
/// server refuses while it shuts down or starts is lost too).
const RESTART_CODES: [&str; 2] = ["disconnected", "outcome_unknown"];

/// A fast restart of the PostgreSQL server (`pg_ctl restart -m fast`) while
/// a child appends from four threads, twice per child, then a SIGKILL: the
/// child's calls fail with typed errors (a lost connection, an unknown
/// commit outcome, then a poisoned journal), it reopens the journal once the
/// server is back and goes on; after each child every acknowledged durable
/// event is there, every batch is whole and every run verifies and resumes.
#[test]
fn kill_harness_through_fast_server_restarts_on_postgres() {
    let server = TempServer::start().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(server.url()).unwrap();
    let url = as_url(database.url());
    let path = Path::new(&url);
    let logs = tempfile::tempdir().unwrap();
    let seed = seed();
    eprintln!("kill harness through restarts seed: {seed} (replay with RUNJOURNAL_KILL_SEED={seed})");
    let mut rng = Rng::new(seed);
    let mut acks: Acks = BTreeMap::new();
    let mut boundaries: Boundaries = BTreeMap::new();
    let mut stats = Stats::default();
    let mut checked = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let children = 3;
    let restarts_per_child = 2;
    for iteration in 0..children {
        let stderr_path = logs.path().join(format!("restart-child-{iteration}.stderr"));
        let (mut child, lines_rx, reader) = spawn_child(path, "reconnect", rng.next_u64(), &stderr_path);
        let mut lines: Vec<String> = Vec::new();
        let wait_for = |lines: &mut Vec<String>, prefix: &str, count: usize| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while lines.iter().filter(|line| line.starts_with(prefix)).count() < count {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = lines_rx.recv_timeout(left).unwrap_or_else(|error| {
                    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("child {iteration}: waiting for {count} {prefix:?} lines: {error}\n{stderr}")
                });
                lines.push(line);
            }
        };
        for restart in 1..=restarts_per_child {
            let acked = lines.iter().filter(|line| line.starts_with("ack ")).count();
            wait_for(&mut lines, "ack ", acked + 5);
            server.restart_fast().unwrap();
            // The child notices, reopens and appends again.
            wait_for(&mut lines, "ready", restart + 1);
        }
        let acked = lines.iter().filter(|line| line.starts_with("ack ")).count();
        wait_for(&mut lines, "ack ", acked + 5);
        child.kill().unwrap();
        child.wait().unwrap();
        database
            .end_other_sessions()
            .unwrap_or_else(|error| panic!("child {iteration}'s sessions: {error}"));
        reader.join().unwrap();
        lines.extend(lines_rx.try_iter());
        for line in &lines {
            if let Some(codes) = line.strip_prefix("error ") {
                // `<the call's code> <the storage failure's code, or ->`; a
                // call refused by the journal that failure poisoned is `poisoned`.
                let (call, store) = codes.split_once(' ').unwrap();
                assert!(
                    RESTART_CODES.contains(&store) || RESTART_CODES.contains(&call) || call == "poisoned",
                    "child {iteration}: untyped or unexpected failure {codes:?}"
                );
                *errors.entry(codes.to_owned()).or_default() += 1;
            }
        }
        for (agent, seq, event_type) in lines.iter().filter_map(|line| parse_boundary(line)) {
            boundaries.entry(agent).or_default().insert(seq, event_type);
        }
        for (agent, last_seq, len) in lines.iter().filter_map(|line| parse_ack(line)) {
            let previous = acks.entry(agent.clone()).or_default().insert(last_seq, len);
            assert!(
                previous.is_none_or(|previous| previous == len),
                "{agent}: seq {last_seq} acknowledged twice with different lengths"
            );
        }
        checked = check(path, &acks, &boundaries, &[], iteration, &mut stats);
    }
    let line = format!(
        "kill harness on PostgreSQL through fast server restarts: {children} children, {} fast server restarts, {checked} acknowledged events checked, \
         {} runs, typed errors seen: {errors:?}",
        children * restarts_per_child,
        stats.runs
    );
    println!("{line}");
    eprintln!("{line}");
    assert!(
        errors
            .keys()
            .any(|codes| RESTART_CODES.iter().any(|code| codes.contains(code))),
        "every restart was noticed as a lost connection: {line}"
    );
    assert!(checked > 0, "nothing was acknowledged");
}
