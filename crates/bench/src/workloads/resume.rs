//! Resume with snapshots: opening a database and resuming a run of S events
//! against one of 100 × S (at scale ≥ 1).
//!
//! Both runs are agent sessions ([`session_event`]): steps with a structured
//! compaction closing every [`CYCLE`] events, so the resume state stays
//! bounded as a real agent's context does. They are built in
//! `Durability::Buffered` with batches of [`BUILD_BATCH`] events and the
//! default snapshot interval (1,000), arranged so both end with the same
//! [`TAIL`] events after their last snapshot: a resume decodes one snapshot
//! and folds the same tail in both, and any difference is what the size of
//! the run and of its database costs. Each repetition reopens the database
//! (timed apart) and resumes (which appends `attached`, buffered).

use std::path::Path;
use std::time::{Duration, Instant};

use runjournal::{Durability, Event, Journal, Options, RunKey, RunMeta};

use super::{journal_bytes, open_journal, Bench};
use crate::error::{journal_error, BenchError};
use crate::measure::Measurement;
use crate::payload::{bench_key, session_event};
use crate::report::Row;

/// Events per compaction cycle of the resumed sessions.
pub(crate) const CYCLE: u64 = 100;
/// Events appended per batch while building.
const BUILD_BATCH: u64 = 1_000;
/// Events after the last snapshot of each run.
const TAIL: u64 = 500;

/// A built run: where it is and what its fold must show.
struct Built {
    dir: tempfile::TempDir,
    key: RunKey,
    events: u64,
    steps: u64,
    bytes_per_event: f64,
    build: Duration,
}

/// What the resume workload measured.
pub(crate) struct Resumed {
    small_open: Measurement,
    big_open: Measurement,
    small_resume: Measurement,
    big_resume: Measurement,
    big_build: Measurement,
}

/// The rows of the resume workload, with the two the target compares.
pub(crate) struct ResumeRows {
    /// Every row, in report order.
    pub(crate) all: Vec<Row>,
    /// Resume of the small run.
    pub(crate) small_resume: Row,
    /// Resume of the big run.
    pub(crate) big_resume: Row,
    /// Open of the small run's database.
    pub(crate) small_open: Row,
    /// Open of the big run's database.
    pub(crate) big_open: Row,
}

impl Resumed {
    pub(crate) fn rows(&self, event_bytes: usize) -> ResumeRows {
        let small = self.small_open.events;
        let big = self.big_open.events;
        let small_open = Row::operation(
            &format!("journal open, {small}-event db"),
            &self.small_open,
            event_bytes,
            None,
        );
        let big_open = Row::operation(
            &format!("journal open, {big}-event db"),
            &self.big_open,
            event_bytes,
            Some(&small_open),
        );
        let small_resume = Row::operation(
            &format!("journal resume, {small}-event run"),
            &self.small_resume,
            event_bytes,
            None,
        );
        let big_resume = Row::operation(
            &format!("journal resume, {big}-event run"),
            &self.big_resume,
            event_bytes,
            Some(&small_resume),
        );
        let build = Row::throughput(
            &format!("journal append, buffered, batches of {BUILD_BATCH} ({big}-event session)"),
            &self.big_build,
            event_bytes,
            None,
        );
        ResumeRows {
            all: vec![
                build,
                small_open.clone(),
                big_open.clone(),
                small_resume.clone(),
                big_resume.clone(),
            ],
            small_resume,
            big_resume,
            small_open,
            big_open,
        }
    }
}

/// Builds both runs, then reopens and resumes each `repetitions` times.
pub(crate) fn measure(
    bench: &Bench,
    small: u64,
    big: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<Resumed, BenchError> {
    let small_run = build(bench, "resume-small", small)?;
    progress(&format!(
        "built the {small}-event run in {:.1} s; building the {big}-event run",
        small_run.build.as_secs_f64()
    ));
    let big_run = build(bench, "resume-big", big)?;
    progress(&format!(
        "built the {big}-event run in {:.1} s; resuming",
        big_run.build.as_secs_f64()
    ));
    let mut open = [Vec::new(), Vec::new()];
    let mut resume = [Vec::new(), Vec::new()];
    for _ in 0..bench.repetitions {
        for (index, built) in [&small_run, &big_run].into_iter().enumerate() {
            let (opened, resumed) = reopen_and_resume(built)?;
            open[index].push(opened);
            resume[index].push(resumed);
        }
    }
    let [small_open, big_open] = open;
    let [small_resume, big_resume] = resume;
    Ok(Resumed {
        small_open: Measurement::new(small, small_open, small_run.bytes_per_event),
        big_open: Measurement::new(big, big_open, big_run.bytes_per_event),
        small_resume: Measurement::new(small, small_resume, small_run.bytes_per_event),
        big_resume: Measurement::new(big, big_resume, big_run.bytes_per_event),
        big_build: Measurement::new(big, vec![big_run.build], big_run.bytes_per_event),
    })
}

/// The batch sizes that store `events` events after `run_started` so that the
/// last [`TAIL`] come after the last snapshot.
fn batch_sizes(events: u64) -> Vec<u64> {
    let tail = TAIL.min(events);
    let body = events - tail;
    let mut sizes = Vec::new();
    if body % BUILD_BATCH > 0 {
        sizes.push(body % BUILD_BATCH);
    }
    sizes.extend(std::iter::repeat_n(BUILD_BATCH, (body / BUILD_BATCH) as usize));
    if tail > 0 {
        sizes.push(tail);
    }
    sizes
}

#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
fn build(bench: &Bench, name: &str, events: u64) -> Result<Built, BenchError> {
    let dir = bench.fresh_dir(name)?;
    let (journal, store) = open_journal(dir.path(), Options::with_durability(Durability::Buffered))?;
    let key = bench_key(name, 0);
    let started = Instant::now();
    let run = journal
        .begin(key.clone(), RunMeta::default())
        .map_err(journal_error("begin"))?;
    let batches = batch_sizes(events.saturating_sub(1));
    let mut seq = 1;
    let mut steps = 0;
    for &size in &batches {
        let batch: Vec<Event> = (seq..seq + size)
            .map(|seq| session_event(&bench.payload, seq, CYCLE))
            .collect();
        steps += batch.iter().filter(|event| matches!(event, Event::Step { .. })).count() as u64;
        run.append(batch).map_err(journal_error("build a resumed run"))?;
        seq += size;
    }
    drop(run);
    journal.sync().map_err(journal_error("sync a resumed run"))?;
    let build = started.elapsed();
    let record = journal.run_info(&key).map_err(journal_error("read the run"))?;
    let bytes = journal_bytes(&store, &record, 0, batches.len() as u64)?;
    Ok(Built {
        dir,
        key,
        events: record.head.next_seq,
        steps,
        bytes_per_event: bytes as f64 / record.head.next_seq as f64,
        build,
    })
}

/// Opens the database and resumes the run: (time to open, time to resume).
fn reopen_and_resume(built: &Built) -> Result<(Duration, Duration), BenchError> {
    let path: &Path = built.dir.path();
    let started = Instant::now();
    let journal =
        Journal::open(path, Options::with_durability(Durability::Buffered)).map_err(journal_error("reopen"))?;
    let opened = started.elapsed();
    let started = Instant::now();
    let (run, state) = journal.resume(&built.key).map_err(journal_error("resume"))?;
    let resumed = started.elapsed();
    if state.iteration != built.steps || state.last_seq < Some(built.events) {
        return Err(BenchError::Check {
            workload: "resume",
            detail: format!(
                "the resumed state has {} steps up to seq {:?}; the run has {} steps in {} events",
                state.iteration, state.last_seq, built.steps, built.events
            ),
        });
    }
    drop(run);
    drop(journal);
    Ok((opened, resumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_end_with_the_tail_after_whole_batches() {
        assert_eq!(batch_sizes(999_999)[..2], [499, 1000]);
        assert_eq!(batch_sizes(999_999).last(), Some(&TAIL));
        assert_eq!(batch_sizes(999_999).iter().sum::<u64>(), 999_999);
        assert_eq!(batch_sizes(300), vec![300]);
    }
}
