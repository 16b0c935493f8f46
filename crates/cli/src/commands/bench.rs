//! `bench`: the throughput harness of `runjournal-bench`, side by side with
//! raw sled, fdatasync per event and SQLite.
//!
//! Invariant: only a build with the `bench` feature links the harness (and
//! with it SQLite); without it the command exists and fails with one line
//! saying how to get it, so the product compiles no competing engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::context::Context;

/// The arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Workload size: 1.0 takes about a minute on a 2-core machine.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    scale: f64,
    /// Where the benchmark databases go [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Bench PostgreSQL on a throwaway server the bench starts (with `--db postgres://…`: on that database).
    #[arg(long)]
    postgres: bool,
}

/// `bench`.
#[cfg(feature = "bench")]
pub fn run(cx: &mut Context, args: BenchArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;

    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(crate::output::fail(format!(
            "--scale must be a positive number, not {}",
            args.scale
        )));
    }
    let url = runjournal::location::postgres_url(&cx.db).filter(|_| cx.db_given);
    if args.postgres || url.is_some() {
        let config = runjournal_bench::PostgresBenchConfig {
            url: url.map(str::to_owned),
            scale: args.scale,
        };
        let report = runjournal_bench::run_postgres(&config, &mut |line| eprintln!("bench: {line}"))?;
        if cx.json {
            writeln!(cx.out, "{:#}", report.to_json())?;
        } else {
            write!(cx.out, "{}", report.to_table())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = runjournal_bench::BenchConfig {
        dir: args.dir,
        ..runjournal_bench::BenchConfig::with_scale(args.scale)
    };
    let report = runjournal_bench::run(&config, &mut |line| eprintln!("bench: {line}"))?;
    if cx.json {
        writeln!(cx.out, "{:#}", report.to_json())?;
    } else {
        write!(cx.out, "{}", report.to_table())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How to get a `runjournal` with the harness.
#[cfg(not(feature = "bench"))]
const INSTALL: &str = "cargo install --locked --path crates/cli --features bench";

/// `bench`, in a build without the harness: one line saying how to get it.
#[cfg(not(feature = "bench"))]
#[expect(
    clippy::needless_pass_by_value,
    reason = "every subcommand's `run` takes its parsed arguments by value"
)]
pub fn run(_cx: &mut Context, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let BenchArgs {
        scale: _,
        dir: _,
        postgres: _,
    } = args;
    Err(crate::output::fail(format!(
        "this runjournal was built without the benchmark harness; build it with the `bench` feature: \
         `{INSTALL}` (or `cargo run --release -p runjournal-cli --features bench -- bench`)"
    )))
}
