//! Throwaway PostgreSQL servers and scratch databases for tests, benches and
//! the kill harness (feature `testing`).
//!
//! - [`TempServer::start`] runs `initdb` into a temporary directory and starts
//!   a server listening only on a unix socket in it (`listen_addresses=''`).
//!   A small shell watchdog owns the server: it stops the server and removes
//!   the directory when its stdin closes, which happens when the
//!   [`TempServer`] drops (also while a test panics) and when the process
//!   holding it exits in any way, even killed. As root (CI), where `initdb`
//!   and `postgres` refuse to run, everything runs as the `postgres` user
//!   (or `RUNJOURNAL_POSTGRES_USER`) through `runuser`.
//! - [`TestDatabase::create`] makes a uniquely named database on a server
//!   and drops it when dropped.
//! - [`test_server_url`] is what a test asks for: the server named by
//!   `RUNJOURNAL_TEST_POSTGRES`, else one throwaway server shared by the test
//!   binary, else an error saying in one line how to get one.
//!
//! Readiness is `pg_ctl start -w` returning; nothing here sleeps.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the server tests use.
pub const TEST_SERVER_VARIABLE: &str = "RUNJOURNAL_TEST_POSTGRES";

/// The environment variable naming the directory of `initdb` and `pg_ctl`.
pub const BIN_VARIABLE: &str = "RUNJOURNAL_POSTGRES_BIN";

/// The environment variable naming the OS user the server runs as under root.
pub const USER_VARIABLE: &str = "RUNJOURNAL_POSTGRES_USER";

/// What to do when no server can be had, in one line.
pub const INSTALL_HINT: &str = "no PostgreSQL server for the tests: set RUNJOURNAL_TEST_POSTGRES to a URL \
     (scripts/postgres starts a throwaway one and prints it), or install the server binaries \
     (apt-get install -y postgresql) so that the tests start their own";

/// Why a throwaway server or database could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TempServerError {
    /// No `initdb` was found.
    #[error("{INSTALL_HINT} (looked for initdb in ${BIN_VARIABLE}, /usr/lib/postgresql/*/bin and PATH)")]
    NoServerBinaries,
    /// A command could not be run.
    #[error("could not run {command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server did not start.
    #[error("the throwaway PostgreSQL server in {dir} did not start: {log}")]
    Start {
        /// Its directory.
        dir: String,
        /// The end of its logs.
        log: String,
    },
    /// A statement on the server failed.
    #[error("{operation} on {url} failed: {source}")]
    Sql {
        /// What was being done.
        operation: &'static str,
        /// The server.
        url: String,
        /// The driver's error.
        source: postgres::Error,
    },
    /// Sessions of another process on a database outlived the wait for them to end.
    #[error("{count} other sessions on database {database} did not end within {timeout_ms} ms")]
    SessionsLinger {
        /// The database.
        database: String,
        /// How many were still there.
        count: i64,
        /// How long each was waited for.
        timeout_ms: i64,
    },
}

/// A PostgreSQL server in a temporary directory, stopped and removed on drop.
pub struct TempServer {
    url: String,
    dir: PathBuf,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

/// The watchdog: initdb, start, report `ready`, wait for stdin to close,
/// stop, remove the directory. `$1` is the directory, `$2` the binaries.
const WATCHDOG: &str = r#"set -eu
dir=$1
bin=$2
"$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1
"$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
    -o "-c listen_addresses='' -k $dir -c max_connections=200" start >"$dir/pg_ctl.log" 2>&1
echo ready
read -r _ || true
"$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
rm -rf "$dir"
"#;

impl TempServer {
    /// Starts a server; returns once it accepts connections.
    pub fn start() -> Result<Self, TempServerError> {
        let bin = find_bin_dir().ok_or(TempServerError::NoServerBinaries)?;
        let dir = tempfile::Builder::new()
            .prefix("runjournal-pg-")
            .tempdir_in(socket_parent())
            .map_err(|source| TempServerError::Spawn {
                command: "create a temporary directory".into(),
                source,
            })?
            .keep();
        let mut command = watchdog_command(&dir, &bin)?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TempServerError::Spawn {
                command: format!("{command:?}"),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(start_failure(&dir, "the watchdog has no pipes".into()));
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        if read.is_err() || line.trim() != "ready" {
            drop(stdin);
            drop(child.wait());
            let log = logs(&dir);
            drop(std::fs::remove_dir_all(&dir));
            return Err(start_failure(&dir, log));
        }
        Ok(TempServer {
            url: format!("host={} port=5432 user=postgres dbname=postgres", dir.display()),
            dir,
            watchdog: Mutex::new(Some((child, stdin))),
        })
    }

    /// The server as a key-value connection string (unix socket).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding the server's socket (and its data).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// Restarts the server with `pg_ctl restart -m fast`: every session is
    /// terminated (open transactions roll back), the server shuts down
    /// cleanly and starts again; returns once it accepts connections.
    pub fn restart_fast(&self) -> Result<(), TempServerError> {
        let bin = find_bin_dir().ok_or(TempServerError::NoServerBinaries)?;
        let pg_ctl = bin.join("pg_ctl");
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let mut command = if running_as_root() {
            let user = std::env::var(USER_VARIABLE).unwrap_or_else(|_| "postgres".into());
            let mut command = Command::new("runuser");
            command.args(["-u", &user, "--"]).arg(&pg_ctl);
            command
        } else {
            Command::new(&pg_ctl)
        };
        command
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-m", "fast", "-w", "-t", "120", "restart"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = command.status().map_err(|source| TempServerError::Spawn {
            command: format!("{command:?}"),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(start_failure(&self.dir, logs(&self.dir)))
        }
    }

    /// A process-wide server, started on first use and stopped when the
    /// process exits (its watchdog sees the pipe close).
    pub fn shared() -> Result<&'static TempServer, String> {
        static SHARED: OnceLock<Result<TempServer, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| TempServer::start().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        let watchdog = match self.watchdog.get_mut() {
            Ok(watchdog) => watchdog.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some((mut child, mut stdin)) = watchdog {
            // Closing stdin tells the watchdog to stop the server and clean up.
            drop(stdin.flush());
            drop(stdin);
            drop(child.wait());
        }
    }
}

fn start_failure(dir: &Path, log: String) -> TempServerError {
    TempServerError::Start {
        dir: dir.display().to_string(),
        log,
    }
}

/// The last lines of the server's logs.
fn logs(dir: &Path) -> String {
    let mut text = String::new();
    for name in ["initdb.log", "pg_ctl.log", "server.log"] {
        if let Ok(content) = std::fs::read_to_string(dir.join(name)) {
            let lines: Vec<&str> = content.lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
            let _ = write!(text, "[{name}] {tail} ");
        }
    }
    if text.is_empty() {
        text.push_str("no log was written");
    }
    text
}

/// Where the temporary directory goes: a unix socket path must stay under
/// 108 bytes, so a long `$TMPDIR` is not used.
fn socket_parent() -> PathBuf {
    let temp = std::env::temp_dir();
    if temp.as_os_str().len() <= 40 {
        temp
    } else {
        PathBuf::from("/tmp")
    }
}

/// The watchdog, as this user, or as the server user when running as root.
fn watchdog_command(dir: &Path, bin: &Path) -> Result<Command, TempServerError> {
    let args = [
        "-c".to_string(),
        WATCHDOG.to_string(),
        "watchdog".to_string(),
        dir.display().to_string(),
        bin.display().to_string(),
    ];
    if !running_as_root() {
        let mut command = Command::new("sh");
        command.args(args);
        return Ok(command);
    }
    let user = std::env::var(USER_VARIABLE).unwrap_or_else(|_| "postgres".into());
    let chown = Command::new("chown")
        .arg(format!("{user}:"))
        .arg(dir)
        .status()
        .map_err(|source| TempServerError::Spawn {
            command: "chown".into(),
            source,
        })?;
    if !chown.success() {
        return Err(start_failure(
            dir,
            format!(
                "running as root, the server must run as another user, and chown to {user:?} failed \
                 (create the user, or name one in {USER_VARIABLE})"
            ),
        ));
    }
    let mut command = Command::new("runuser");
    command.args(["-u", &user, "--", "sh"]).args(args);
    Ok(command)
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|effective| effective == "0"))
        })
        .unwrap_or(false)
}

/// The directory of `initdb`: `$RUNJOURNAL_POSTGRES_BIN` (only that one when
/// set), the newest
/// `/usr/lib/postgresql/*/bin` (Debian), or `PATH`.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_VARIABLE) {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

/// The server tests use: `$RUNJOURNAL_TEST_POSTGRES`, else the shared
/// throwaway server; an error (with [`INSTALL_HINT`]) when neither exists.
pub fn test_server_url() -> Result<String, String> {
    match std::env::var(TEST_SERVER_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => TempServer::shared().map(|server| server.url().to_owned()),
    }
}

/// A uniquely named database on a server, dropped on drop.
pub struct TestDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a fresh database on the server at `server_url`.
    pub fn create(server_url: &str) -> Result<Self, TempServerError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let name = format!(
            "runjournal_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let sql = |operation, source| TempServerError::Sql {
            operation,
            url: server_url.to_owned(),
            source,
        };
        let mut admin = postgres::Client::connect(server_url, postgres::NoTls).map_err(|e| sql("connect", e))?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| sql("CREATE DATABASE", e))?;
        Ok(TestDatabase {
            url: with_dbname(server_url, &name),
            server_url: server_url.to_owned(),
            name,
        })
    }

    /// The database's connection string.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ends every other client session on the database and returns once
    /// they are gone: what a killed client had sent is then committed or
    /// rolled back for good, and nothing changes under a check that
    /// follows. A backend notices its client's death only when it next
    /// reads, so a `COMMIT` received before a SIGKILL may still run after
    /// the client is reaped. Returns how many sessions it ended.
    pub fn end_other_sessions(&self) -> Result<i64, TempServerError> {
        const TIMEOUT_MS: i64 = 30_000;
        let sql = |operation, source| TempServerError::Sql {
            operation,
            url: self.url.clone(),
            source,
        };
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls).map_err(|e| sql("connect", e))?;
        let others = "FROM pg_stat_activity WHERE datname = current_database() \
                      AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
        // `pg_terminate_backend(pid, timeout)` returns once the backend has
        // exited or the timeout passed (false then, and for a backend that
        // exited by itself meanwhile): the count after it is what is left.
        let ended: i64 = client
            .query_one(
                &format!("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $1)) {others}"),
                &[&TIMEOUT_MS],
            )
            .map_err(|e| sql("pg_terminate_backend", e))?
            .get(0);
        let lingering: i64 = client
            .query_one(&format!("SELECT count(*) {others}"), &[])
            .map_err(|e| sql("count the other sessions", e))?
            .get(0);
        if lingering > 0 {
            return Err(TempServerError::SessionsLinger {
                database: self.name.clone(),
                count: lingering,
                timeout_ms: TIMEOUT_MS,
            });
        }
        Ok(ended)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server_url, postgres::NoTls) {
            drop(admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)));
        }
    }
}

/// `url` naming database `name` instead: a `dbname` parameter added last
/// (the driver takes the last value of a parameter), in the URL or the
/// key-value form.
pub fn with_dbname(url: &str, name: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}dbname={name}")
    } else {
        format!("{url} dbname={name}")
    }
}

/// `conninfo` as a `postgres://` URL (what `Journal::open` and `--db`
/// take): a URL is returned as it is; the key-value form (`host=/dir
/// port=5432 user=postgres dbname=db`, values without spaces) becomes
/// `postgres://user@/db?host=/dir&port=5432`.
pub fn as_url(conninfo: &str) -> String {
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        return conninfo.to_owned();
    }
    let mut user = String::new();
    let mut dbname = String::new();
    let mut parameters = Vec::new();
    for pair in conninfo.split_whitespace() {
        match pair.split_once('=') {
            Some(("user", value)) => value.clone_into(&mut user),
            Some(("dbname", value)) => value.clone_into(&mut dbname),
            Some((name, value)) => parameters.push(format!("{name}={value}")),
            None => {}
        }
    }
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("postgres://{user}/{dbname}?{}", parameters.join("&"))
}
