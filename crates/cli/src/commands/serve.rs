//! `serve`: serves a database in the foreground (docs/http-api.md) on its
//! owner-only Unix socket and, with `--listen` and `--token-file`, on TCP,
//! until SIGINT or SIGTERM; then drains in-flight requests, ends
//! subscriptions and removes the socket.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use runjournal::{Options, ServeOptions};
use serde::Serialize;

use crate::context::Context;

/// The arguments of `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Also serve TCP on ADDR (e.g. 127.0.0.1:7700); needs --token-file.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    pub listen: Option<SocketAddr>,
    /// The file holding the bearer token every TCP request must send.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `serve --json`: where the server listens.
#[derive(Serialize)]
struct Listening {
    socket: String,
    tcp: Option<String>,
}

/// `serve`.
pub fn run(cx: &mut Context, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let journal = runjournal::Journal::open(&cx.db.0, Options::default())
        .with_context(|| format!("cannot open {}", cx.db.display()))?;
    let options = ServeOptions {
        listen: args.listen,
        token_file: args.token_file.clone(),
        ..ServeOptions::default()
    };
    let server = journal
        .serve(options)
        .with_context(|| format!("cannot serve {}", cx.db.display()))?;
    let socket = server
        .socket_path()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let tcp = server.tcp_addr().map(|addr| addr.to_string());
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
    wait_for_signal()?;
    server.close();
    journal.sync().context("the final sync failed")?;
    if !cx.json {
        writeln!(cx.out, "stopped; socket removed")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot listen for SIGINT")?,
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}
