//! Runs the throughput harness and prints its table (or JSON with `--json`):
//! `cargo run --release -p runjournal-bench --example table -- [--scale X] [--json] [--dir PATH]`.

use std::process::ExitCode;

use runjournal_bench::{run, BenchConfig};

fn main() -> ExitCode {
    let mut config = BenchConfig::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--scale" => match args.next().and_then(|value| value.parse().ok()) {
                Some(scale) => config.scale = scale,
                None => return usage("--scale needs a number"),
            },
            "--dir" => match args.next() {
                Some(dir) => config.dir = Some(dir.into()),
                None => return usage("--dir needs a path"),
            },
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let report = run(&config, &mut |line| eprintln!("bench: {line}"));
    match report {
        Ok(report) if json => {
            println!("{:#}", report.to_json());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.to_table());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\nusage: table [--scale X] [--json] [--dir PATH]");
    ExitCode::from(2)
}
