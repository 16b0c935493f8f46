//! `show`: a run's timeline, one line per event annotated with the fold's
//! anomalies (`--json`: its events as JSON lines, like `export`), narrowed by
//! seq range, type and text, cut to its first or last N events, through a
//! pager on a terminal.
//!
//! Invariants: the history is streamed and verified as it is read, never
//! held: memory is bounded by the `--tail` ring (N events) whatever the run's
//! length. The annotating fold keeps no transcript (the fold's decisions
//! never read it) and hands over each event's anomalies as it applies it.
//! With `--with-prefix`, SEQ, `--from` and `--to` count positions in the
//! whole history (for a fork of a root run, the prefix's positions are its
//! parent's seqs).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Args;
use runjournal::{Envelope, Event, Journal, ResumeState, RunRecord, RunStatus};

use crate::context::Context;
use crate::failure::{coded, Code};
use crate::render::timeline::{self, Timeline};
use crate::select::{self, RunArg};

/// The arguments of `show`.
#[derive(Args, Debug)]
#[expect(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
#[expect(clippy::struct_excessive_bools, reason = "each bool is one command-line flag")]
pub struct ShowArgs {
    #[command(flatten)]
    run: RunArg,
    /// Start at this seq (with --with-prefix: this position in the whole history).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    from: u64,
    /// End at this seq, included (with --with-prefix: this position).
    #[arg(long, value_name = "SEQ")]
    to: Option<u64>,
    /// Only the first N events that pass the other filters.
    #[arg(long, value_name = "N", conflicts_with = "tail")]
    limit: Option<usize>,
    /// Only the last N events that pass the other filters (memory holds N events, not the run).
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Only events of this type, such as step or phase_completed (repeatable).
    #[arg(long = "type", value_name = "T", value_parser = parse_type)]
    types: Vec<&'static str>,
    /// Only events whose text contains TEXT, case-sensitive (message contents, outputs, names, ids, reasons).
    #[arg(long, value_name = "TEXT")]
    grep: Option<String>,
    /// Whole message text (and every other free text) instead of cutting it to fit the line.
    #[arg(long)]
    full: bool,
    /// For a fork: its inherited history (its ancestors' prefixes) first, with a RUN column.
    #[arg(long)]
    with_prefix: bool,
    /// Write straight to stdout, never through $PAGER (a pager is used only on a terminal, never with --json).
    #[arg(long)]
    no_pager: bool,
    /// Keep following the run: print its events as they are appended (through the owner's socket when another
    /// process holds the database) until it completes or fails, or Ctrl-C.
    #[arg(long, conflicts_with_all = ["to", "limit", "tail", "with_prefix"])]
    follow: bool,
}

fn parse_type(text: &str) -> Result<&'static str, String> {
    Event::TYPE_NAMES
        .iter()
        .find(|name| **name == text)
        .copied()
        .ok_or_else(|| format!("unknown event type {text:?} (one of {})", Event::TYPE_NAMES.join(", ")))
}

/// Which events of a run `show` writes, and how.
#[derive(Debug, Default)]
pub struct Selection {
    from: u64,
    to: Option<u64>,
    limit: Option<usize>,
    tail: Option<usize>,
    types: Vec<&'static str>,
    grep: Option<String>,
    full: bool,
    with_prefix: bool,
}

impl Selection {
    fn of(args: &ShowArgs) -> Selection {
        Selection {
            from: args.from,
            to: args.to,
            limit: args.limit,
            tail: args.tail,
            types: args.types.clone(),
            grep: args.grep.clone(),
            full: args.full,
            with_prefix: args.with_prefix,
        }
    }

    /// Whether the event passes the type and text filters.
    fn matches(&self, event: &Event) -> bool {
        (self.types.is_empty() || self.types.contains(&event.type_name()))
            && self.grep.as_deref().is_none_or(|needle| contains_text(event, needle))
    }
}

/// `show`.
pub fn run(cx: &mut Context, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let record = cx.resolve(&journal, &args.run)?;
    let selection = Selection::of(args);
    let prefix = if selection.with_prefix {
        prefix_length(cx, &journal, &record)?
    } else {
        0
    };
    let last = (prefix + record.head.next_seq).saturating_sub(1);
    let what = if selection.with_prefix && prefix > 0 {
        "history position"
    } else {
        "seq"
    };
    for seq in [Some(selection.from).filter(|from| *from > 0), selection.to]
        .into_iter()
        .flatten()
    {
        if seq > last {
            return Err(coded(
                Code::NotFound,
                format!("run {} has no {what} {seq} (its last {what} is {last})", record.key),
            ));
        }
    }
    if selection.to.is_some_and(|to| to < selection.from) {
        return Err(coded(
            Code::Usage,
            format!(
                "--to {} is before --from {}: nothing to show",
                selection.to.unwrap_or_default(),
                selection.from
            ),
        ));
    }
    if args.follow {
        return follow(cx, &journal, &record, &selection);
    }
    if !cx.json && !args.no_pager {
        cx.out.page()?;
    }
    write_selection(cx, &journal, &record, &selection, last)?;
    Ok(ExitCode::SUCCESS)
}

/// The live events a follower holds before it falls behind (then it lags
/// and resumes from where it stopped).
const FOLLOW_BUFFER: usize = 4096;

/// `show --follow`: the run's events from `--from` through its subscription
/// (stored ones first, then live ones, each once), each line written out at
/// once, until the run completes or fails.
fn follow(cx: &mut Context, journal: &Journal, record: &RunRecord, selection: &Selection) -> anyhow::Result<ExitCode> {
    let style = cx.style();
    let timeline = Timeline::new(u64::from(u32::MAX), false, selection.full, style);
    if !cx.json {
        writeln!(cx.out, "{}", timeline::run_heading(record, false, style))?;
        writeln!(cx.out, "{}", timeline.header())?;
        cx.out.flush()?;
    }
    let mut fold = ResumeState::new(record.key.clone());
    let mut from = 0;
    loop {
        let mut lagged = false;
        let subscription = journal
            .subscribe(&record.key, from, FOLLOW_BUFFER)
            .map_err(|error| subscribe_error(cx, error))?;
        for item in subscription {
            let envelope = match item {
                Ok(envelope) => envelope,
                // Fell behind: catch up from the first missed event.
                Err(runjournal::SubscribeError::Lagged(point)) => {
                    from = point.seq;
                    lagged = true;
                    break;
                }
                Err(error) => return Err(subscribe_error(cx, error)),
            };
            from = envelope.seq + 1;
            let anomalies = annotate(&mut fold, &envelope);
            if envelope.seq >= selection.from && selection.matches(&envelope.event) {
                let shown = Shown {
                    seq: envelope.seq,
                    envelope,
                    anomalies,
                };
                write_shown(&mut *cx.out, cx.json, &timeline, &shown)?;
                cx.out.flush()?;
            }
            if ended(fold.status) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if !lagged {
            // The journal closed (its owner shut down) before the run ended.
            return Err(coded(
                Code::Other,
                format!(
                    "run {}: the journal closed before the run ended (followed to seq {})",
                    record.key,
                    from.saturating_sub(1)
                ),
            ));
        }
    }
}

/// Whether nothing more will be appended to a run with this status.
fn ended(status: RunStatus) -> bool {
    matches!(status, RunStatus::Completed | RunStatus::Failed | RunStatus::Superseded)
}

/// One clear line for a subscription that failed.
fn subscribe_error(cx: &Context, error: runjournal::SubscribeError) -> anyhow::Error {
    match error {
        runjournal::SubscribeError::Read(error) => cx.read_error(error),
        other => coded(Code::Other, format!("following the run failed: {other}")),
    }
}

/// The number of events a fork inherits: its ancestors' prefixes.
fn prefix_length(cx: &Context, journal: &Journal, record: &RunRecord) -> anyhow::Result<u64> {
    let mut length = 0;
    let mut fork = record.fork.clone();
    while let Some(point) = fork {
        length += point.seq + 1;
        fork = journal
            .run_info(&point.parent_key)
            .map_err(|error| cx.read_error(error))?
            .fork;
    }
    Ok(length)
}

/// Writes the run's whole timeline (with `--json`, its JSON lines): the demo's `show`.
pub fn write_timeline(cx: &mut Context, journal: &Journal, record: &RunRecord) -> anyhow::Result<()> {
    write_selection(
        cx,
        journal,
        record,
        &Selection::default(),
        record.head.next_seq.saturating_sub(1),
    )
}

/// An event chosen for the output, with the anomalies the fold found in it.
struct Shown {
    seq: u64,
    envelope: Envelope,
    anomalies: Vec<String>,
}

/// What the walk left to say after its lines.
#[derive(Default)]
struct Walked {
    /// Matching events before the `--tail` window.
    before_tail: u64,
    /// The `--limit` stopped the walk before another matching event.
    more_after: Option<u64>,
    /// Events written.
    written: u64,
}

/// Writes the selected events of the run; `last` is the last seq (or position) shown.
fn write_selection(
    cx: &mut Context,
    journal: &Journal,
    record: &RunRecord,
    selection: &Selection,
    last: u64,
) -> anyhow::Result<()> {
    let style = cx.style();
    let with_run = selection.with_prefix && record.fork.is_some();
    let timeline = Timeline::new(last, with_run, selection.full, style);
    if !cx.json {
        writeln!(
            cx.out,
            "{}",
            timeline::run_heading(record, selection.with_prefix, style)
        )?;
        writeln!(cx.out, "{}", timeline.header())?;
    }
    let json = cx.json;
    let out = &mut *cx.out;
    let mut fold = (!json).then(|| ResumeState::new(record.key.clone()));
    let mut ring: VecDeque<Shown> = VecDeque::new();
    let mut walked = Walked::default();
    let mut failure: Option<io::Error> = None;
    let mut position = 0u64;
    let mut visit = |envelope: Envelope| {
        let at = position;
        position += 1;
        let anomalies = fold.as_mut().map(|fold| annotate(fold, &envelope)).unwrap_or_default();
        let own = envelope.run == record.key;
        if !own && !selection.with_prefix {
            return ControlFlow::Continue(());
        }
        let seq = if selection.with_prefix { at } else { envelope.seq };
        if seq < selection.from || !selection.matches(&envelope.event) {
            return ControlFlow::Continue(());
        }
        if selection.to.is_some_and(|to| seq > to) {
            return ControlFlow::Break(());
        }
        let shown = Shown {
            seq,
            envelope,
            anomalies,
        };
        if let Some(tail) = selection.tail {
            ring.push_back(shown);
            if ring.len() > tail {
                ring.pop_front();
                walked.before_tail += 1;
            }
            return ControlFlow::Continue(());
        }
        if selection.limit.is_some_and(|limit| walked.written >= limit as u64) {
            walked.more_after = Some(seq);
            return ControlFlow::Break(());
        }
        match write_shown(out, json, &timeline, &shown) {
            Ok(()) => {
                walked.written += 1;
                ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    };
    let walk = journal.for_each_in_history(&record.key, &mut visit);
    if let Some(error) = failure {
        return Err(error.into());
    }
    walk.map_err(|error| select::read_error(&cx.db, error))?;
    let out = &mut *cx.out;
    if walked.before_tail > 0 && !json {
        let text = format!(
            "… {} earlier matching events not shown (--tail {})",
            walked.before_tail,
            selection.tail.unwrap_or_default()
        );
        writeln!(out, "{}", style.dim(&text))?;
    }
    for shown in &ring {
        write_shown(out, json, &timeline, shown)?;
        walked.written += 1;
    }
    if json {
        return Ok(());
    }
    if let Some(next) = walked.more_after {
        let text = format!(
            "… more events from {next} on (--limit {}; --from {next} continues)",
            selection.limit.unwrap_or_default()
        );
        writeln!(out, "{}", style.dim(&text))?;
    } else if walked.written == 0 {
        writeln!(out, "{}", style.dim("no events match"))?;
    }
    Ok(())
}

/// One chosen event: its JSON line, or its timeline line.
fn write_shown(out: &mut dyn Write, json: bool, timeline: &Timeline, shown: &Shown) -> io::Result<()> {
    if json {
        writeln!(out, "{}", shown.envelope.to_json_line())
    } else {
        writeln!(out, "{}", timeline.line(shown.seq, &shown.envelope, &shown.anomalies))
    }
}

/// Folds the envelope and returns the kinds of the anomalies it added. The
/// transcript is dropped as it grows and the anomalies handed over, so the
/// fold holds no more than the run's coordination state.
fn annotate(fold: &mut ResumeState, envelope: &Envelope) -> Vec<String> {
    fold.apply(envelope);
    fold.transcript.clear();
    fold.anomalies.drain(..).map(|anomaly| anomaly.kind.clone()).collect()
}

/// Whether any text of the event (every string value but its `type`)
/// contains `needle`.
fn contains_text(event: &Event, needle: &str) -> bool {
    fn any_string(value: &serde_json::Value, needle: &str) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains(needle),
            serde_json::Value::Array(items) => items.iter().any(|item| any_string(item, needle)),
            serde_json::Value::Object(fields) => fields.values().any(|field| any_string(field, needle)),
            _ => false,
        }
    }
    match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(fields)) => fields
            .iter()
            .any(|(name, value)| name != "type" && any_string(value, needle)),
        Ok(other) => any_string(&other, needle),
        Err(_) => false,
    }
}
