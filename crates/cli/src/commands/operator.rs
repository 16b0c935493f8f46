//! `interrupt`, `fail` and `resume`: an operator's actions on a run, each one
//! [`Journal`](runjournal::Journal) method, naming the operator (`user@host`).
//!
//! Invariants: every action opens a new epoch with an `attached` whose owner
//! names the operator, so the agent's handle is fenced (its next append fails
//! with `fenced` and writes nothing); `interrupt` and `fail` write their
//! outcome in the same atomic batch; an action the rules refuse writes
//! nothing and its error names the rule (code `finished`, exit 8).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use runjournal::{OperatorReport, RunKey};
use serde::Serialize;

use crate::context::Context;
use crate::select::RunArg;

/// The arguments of `interrupt`.
#[derive(Args, Debug)]
pub struct InterruptArgs {
    #[command(flatten)]
    run: RunArg,
}

/// The arguments of `fail`.
#[derive(Args, Debug)]
#[expect(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
pub struct FailArgs {
    #[command(flatten)]
    run: RunArg,
    /// Why the run is failed (the message of its run_failed, kind `operator`).
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// The arguments of `resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    run: RunArg,
}

/// An action's result in `--json`.
#[derive(Serialize)]
struct ActionJson<'a> {
    action: &'static str,
    id: String,
    run: &'a RunKey,
    operator: &'a str,
    attached_seq: u64,
    epoch: u64,
    last_seq: u64,
    status: &'static str,
}

/// `interrupt`.
pub fn interrupt(cx: &mut Context, args: &InterruptArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let record = cx.resolve(&journal, &args.run)?;
    let operator = operator_name();
    let report = journal.interrupt(&record.key, &operator)?;
    write_report(cx, "interrupt", &operator, &report, "interrupted")
}

/// `fail`.
pub fn fail(cx: &mut Context, args: &FailArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let record = cx.resolve(&journal, &args.run)?;
    let operator = operator_name();
    let report = journal.fail_run(&record.key, &operator, &args.reason)?;
    write_report(cx, "fail", &operator, &report, "failed")
}

/// `resume`: the handle is dropped unfinished, so the run stays running for
/// whoever continues it (a run dropped without finishing stays recoverable).
pub fn resume(cx: &mut Context, args: &ResumeArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let record = cx.resolve(&journal, &args.run)?;
    let operator = operator_name();
    let (report, run, _) = journal.resume_as_operator(&record.key, &operator)?;
    drop(run);
    write_report(cx, "resume", &operator, &report, "resumed")
}

fn write_report(
    cx: &mut Context,
    action: &'static str,
    operator: &str,
    report: &OperatorReport,
    done: &str,
) -> anyhow::Result<ExitCode> {
    if cx.json {
        cx.print_json(&ActionJson {
            action,
            id: report.run.short_id(),
            run: &report.run,
            operator,
            attached_seq: report.attached_seq,
            epoch: report.epoch,
            last_seq: report.last_seq,
            status: report.status.as_str(),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let style = cx.style();
    writeln!(
        cx.out,
        "{} {} {} as {operator}: epoch {} from seq {} (older writers are fenced) · status {} · last seq {}",
        style.bold(done),
        style.bold(&report.run.short_id()),
        report.run,
        report.epoch,
        report.attached_seq,
        report.status.as_str(),
        report.last_seq
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `user@host` of whoever runs this command: `$USER` (else the name of this
/// process's uid in `/etc/passwd`, else `uid N`) at the host name of
/// `/etc/hostname` (else `uname -n`, else `localhost`).
pub fn operator_name() -> String {
    format!("{}@{}", user_name(), host_name())
}

fn user_name() -> String {
    if let Some(user) = std::env::var("USER").ok().filter(|user| !user.trim().is_empty()) {
        return user.trim().to_owned();
    }
    let Some(uid) = process_uid() else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The real uid of this process, from `/proc/self/status` (no `unsafe`
/// `getuid` call: the crate forbids unsafe code).
fn process_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(1).map(str::to_owned)
}

fn host_name() -> String {
    let from_file = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|host| !host.is_empty());
    from_file
        .or_else(|| {
            let output = std::process::Command::new("uname").arg("-n").output().ok()?;
            let host = String::from_utf8(output.stdout).ok()?.trim().to_owned();
            (!host.is_empty()).then_some(host)
        })
        .unwrap_or_else(|| "localhost".into())
}
