//! `ui`: serves the web timeline of the database (docs/ui.md) until stopped.
//!
//! Invariants: the database is opened by this process (its owner) for as
//! long as it serves; an address that is not loopback is refused unless a
//! token file is given; the first line printed is the page's URL, so a
//! script can wait for it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::context::Context;
use crate::failure::{coded, Code};
use crate::web::{self, App};

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
    let token = match &args.token_file {
        Some(file) => {
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
            Some(token)
        }
        None if !web::is_loopback(&args.listen) => {
            return Err(coded(
                Code::Usage,
                format!(
                    "{} is not a loopback address: give --token-file FILE to serve it with a token",
                    args.listen
                ),
            ));
        }
        None => None,
    };
    let journal = cx.open_existing()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .map_err(|error| coded(Code::Io, format!("cannot listen on {}: {error}", args.listen)))?;
    let address = listener.local_addr()?;
    let url = match &token {
        Some(token) => format!("http://{address}/#token={token}"),
        None => format!("http://{address}/"),
    };
    writeln!(cx.out, "runjournal ui: serving {} at {url}", cx.db.display())?;
    cx.out.flush()?;
    if args.open {
        open_browser(&url);
    }
    let app = Arc::new(App::new(journal, token));
    runtime.block_on(web::serve(app, listener))?;
    Ok(ExitCode::SUCCESS)
}

/// Asks the desktop to open `url`; says so on stderr when it cannot.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    if let Err(error) = std::process::Command::new(opener).arg(url).spawn() {
        eprintln!("runjournal: cannot run {opener} to open {url}: {error}");
    }
}
