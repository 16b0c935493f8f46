//! `ui`: serves the web timeline of the database (docs/ui.md) until stopped.
//!
//! Invariants: when no other process holds the database, this one opens it
//! and serves the API on its socket (`Options::serve`, stopped when the
//! journal is dropped), so other processes can append while the page
//! watches; a PostgreSQL URL (which has no directory, and which other
//! processes open themselves) is served on a private socket in a fresh 0700
//! temporary directory, for this page only; when another process holds it, the
//! page goes through that owner's socket; an address that is not loopback
//! is refused unless a token file is given; the first line printed is the
//! page's URL, so a script can wait for it; SIGINT and SIGTERM are listened
//! for before the database is opened, so either stops it cleanly (the
//! served socket removed) from the moment the socket or the port exists.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use runjournal::{wire, ServeOptions};

use crate::context::Context;
use crate::failure::{classify, coded, Code};
use crate::select;
use crate::stop_signals::StopSignals;
use crate::web::{self, App, Source};

/// The arguments of `ui`.
#[derive(Args, Debug)]
pub struct UiArgs {
    /// The address to serve on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7341")]
    listen: SocketAddr,
    /// A file holding the bearer token every API request must carry; required
    /// to listen on an address that is not loopback.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Open the page in the desktop's browser (xdg-open / open).
    #[arg(long)]
    open: bool,
}

/// `ui`.
pub fn run(cx: &mut Context, args: &UiArgs) -> anyhow::Result<ExitCode> {
    let token = token(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Before the served socket and the port exist.
    let signals = StopSignals::listen(&runtime)?;
    // Held until the journal is dropped: a PostgreSQL URL's private socket directory.
    let private = match runjournal::location::postgres_url(&cx.db.0) {
        Some(_) => Some(crate::commands::serve::private_socket_dir()?),
        None => None,
    };
    let serve = ServeOptions {
        socket: private.as_ref().map(|dir| dir.path().join(wire::SOCKET_NAME)),
        ..ServeOptions::default()
    };
    let (socket, source, how) = match select::open_existing_with(&cx.db.0, |options| options.with_serve(serve)) {
        // The CLI connects to the owner of a held database: the page goes
        // through that owner's socket.
        Ok(journal) if journal.is_remote() => {
            let socket = cx.db.join(wire::SOCKET_NAME);
            drop(journal);
            (socket.clone(), Source::Socket(socket), " (through the owner's socket)")
        }
        Ok(journal) => {
            let socket = journal
                .served_socket()
                .map(std::path::Path::to_path_buf)
                .ok_or_else(|| coded(Code::Other, "the served API has no socket"))?;
            (socket, Source::Local(journal), "")
        }
        Err(error) if classify(&error) == Code::Locked => {
            let socket = cx.db.join(wire::SOCKET_NAME);
            if !socket.exists() {
                return Err(error.context(format!(
                    "another process holds {} and serves no API on {}",
                    cx.db.display(),
                    socket.display()
                )));
            }
            (socket.clone(), Source::Socket(socket), " (through the owner's socket)")
        }
        Err(error) => return Err(error),
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .map_err(|error| coded(Code::Io, format!("cannot listen on {}: {error}", args.listen)))?;
    let address = listener.local_addr()?;
    let url = match &token {
        Some(token) => format!("http://{address}/#token={token}"),
        None => format!("http://{address}/"),
    };
    writeln!(cx.out, "runjournal ui: serving {} at {url}{how}", cx.db.display())?;
    cx.out.flush()?;
    if args.open {
        open_browser(&url);
    }
    let app = Arc::new(App { socket, source, token });
    runtime.block_on(web::serve(app, listener, signals.received()))?;
    // An outline still being read is abandoned, not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    // The journal went with the app (its last handle): the served API stopped.
    drop(private);
    Ok(ExitCode::SUCCESS)
}

/// The token of `--token-file`; none is refused for an address that is not loopback.
fn token(args: &UiArgs) -> anyhow::Result<Option<String>> {
    let Some(file) = &args.token_file else {
        if web::is_loopback(&args.listen) {
            return Ok(None);
        }
        return Err(coded(
            Code::Usage,
            format!(
                "{} is not a loopback address: give --token-file FILE to serve it with a token",
                args.listen
            ),
        ));
    };
    let text = std::fs::read_to_string(file).map_err(|error| {
        coded(
            Code::Io,
            format!("cannot read the token file {}: {error}", file.display()),
        )
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(coded(
            Code::Invalid,
            format!("the token file {} is empty", file.display()),
        ));
    }
    Ok(Some(token))
}

/// Asks the desktop to open `url`; says so on stderr when it cannot.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    if let Err(error) = std::process::Command::new(opener).arg(url).spawn() {
        eprintln!("runjournal: cannot run {opener} to open {url}: {error}");
    }
}
