//! `serve`: serves a database in the foreground (docs/http-api.md) on its
//! owner-only Unix socket and, with `--listen` and `--token-file`, on TCP,
//! until SIGINT or SIGTERM; then drains in-flight requests, ends
//! subscriptions and removes the socket.
//!
//! Invariants: a sled database's socket is `<db>/runjournal.sock` unless
//! `--socket` names another; a PostgreSQL URL has no directory, so it needs
//! `--socket`, or `--listen` (then the Unix socket is a private one in a
//! fresh 0700 temporary directory, removed at exit).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use runjournal::{Options, ServeOptions};
use serde::Serialize;

use crate::context::Context;
use crate::failure::{coded, Code};
use crate::stop_signals::StopSignals;

/// The arguments of `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Also serve TCP on ADDR (e.g. 127.0.0.1:7700); needs --token-file.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    pub listen: Option<SocketAddr>,
    /// The file holding the bearer token every TCP request must send.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The Unix socket to serve (created owner-only; a stale one replaced);
    /// default `<db>/runjournal.sock`. Required for a PostgreSQL URL unless
    /// --listen is given.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// `serve --json`: where the server listens.
#[derive(Serialize)]
struct Listening {
    socket: String,
    tcp: Option<String>,
}

/// `serve`.
pub fn run(cx: &mut Context, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let is_url = runjournal::location::postgres_url(&cx.db.0).is_some();
    // Held until the journal is closed: the private socket's directory.
    let mut private = None;
    let socket = match (&args.socket, is_url, args.listen) {
        (Some(path), _, _) => Some(path.clone()),
        (None, false, _) => None,
        (None, true, Some(_)) => {
            let dir = private_socket_dir()?;
            let path = dir.path().join(runjournal::wire::SOCKET_NAME);
            private = Some(dir);
            Some(path)
        }
        (None, true, None) => {
            return Err(coded(
                Code::Usage,
                format!(
                    "{} is a PostgreSQL URL: name the Unix socket to serve with --socket PATH (or serve TCP with \
                     --listen ADDR --token-file FILE)",
                    cx.db.display()
                ),
            ))
        }
    };
    let serve = ServeOptions {
        socket,
        listen: args.listen,
        token_file: args.token_file.clone(),
        ..ServeOptions::default()
    };
    let signals = StopSignals::listen_blocking()?;
    // The journal serves while it is open (Options::serve) and stops at close.
    let journal = runjournal::Journal::open(&cx.db.0, Options::default().with_serve(serve))
        .with_context(|| format!("cannot serve {}", cx.db.display()))?;
    let socket = journal
        .served_socket()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let tcp = journal.served_tcp_addr().map(|addr| addr.to_string());
    if cx.json {
        cx.print_json(&Listening {
            socket: socket.clone(),
            tcp: tcp.clone(),
        })?;
    } else {
        writeln!(cx.out, "serving {} on {socket}", cx.db.display())?;
        if let Some(tcp) = &tcp {
            writeln!(cx.out, "and on tcp {tcp} (bearer token required)")?;
        }
        writeln!(cx.out, "stop with Ctrl-C or SIGTERM")?;
    }
    cx.out.flush()?;
    signals.wait();
    journal.close().context("the final sync failed")?;
    drop(private);
    if !cx.json {
        writeln!(cx.out, "stopped; socket removed")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh owner-only (0700) temporary directory for a private socket.
pub fn private_socket_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("runjournal-")
        .tempdir()
        .map_err(|error| {
            coded(
                Code::Io,
                format!("cannot create a private directory for the socket: {error}"),
            )
        })
}
