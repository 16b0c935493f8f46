//! The demo's child processes: this same binary re-run as `demo-agent` or
//! `demo-resume`, its stdout relayed line by line on a thread so the demo
//! can time out, its exit described as a shell would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};

use runjournal::RunKey;

use crate::output::fail;

/// Exit status of a process killed by SIGKILL, as a shell reports it.
const SIGKILL_EXIT: i32 = 128 + 9;

/// Starts this program as the demo's `command` process on the run `key`.
pub fn spawn(exe: &Path, db: &Path, command: &str, key: &RunKey, extra: &[&str]) -> anyhow::Result<Child> {
    Command::new(exe)
        .arg("--db")
        .arg(db)
        .arg(command)
        .arg("--goal")
        .arg(&key.goal)
        .arg("--episode")
        .arg(key.episode.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_remove("NO_COLOR")
        .spawn()
        .map_err(|error| fail(format!("cannot start the demo's {command} process: {error}")))
}

/// The child's stdout lines, read on a thread so the demo can time out.
pub fn relay(child: &mut Child) -> anyhow::Result<Receiver<String>> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("the demo's child process has no stdout"))?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

/// The exit status in words: the signal and the shell's status for a killed process.
pub fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal}, exit status {}", 128 + signal);
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "no exit status".into(),
    }
}

/// The exit code a shell would report: 128 + signal for a killed process.
pub fn status_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(SIGKILL_EXIT)
}
