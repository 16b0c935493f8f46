//! The checker's child process (`crashstate check`): one per batch of
//! states, restarted when a state kills it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::Value;

/// A state whose check takes longer than this hung the checker.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// What checking one state gave.
pub enum Checked {
    /// The child's JSON result (`outcome`: `opened`, `open_failed`, `panic`).
    Result(Value),
    /// The child died or hung on this state; what its stderr said.
    Died(String),
}

pub struct Checker {
    binary: std::path::PathBuf,
    stderr: std::path::PathBuf,
    running: Option<Running>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Checker {
    pub fn new(binary: &Path, stderr: &Path) -> Self {
        Checker {
            binary: binary.to_path_buf(),
            stderr: stderr.to_path_buf(),
            running: None,
        }
    }

    fn start(&mut self) -> &mut Running {
        self.running.get_or_insert_with(|| {
            let mut child = Command::new(&self.binary)
                .arg("check")
                .env_remove("LD_PRELOAD")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&self.stderr).unwrap())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let stdout = child.stdout.take().unwrap();
            let (sender, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            Running { child, stdin, lines }
        })
    }

    /// Checks the database at `path` (state `id`).
    pub fn check(&mut self, id: usize, path: &Path) -> Checked {
        let running = self.start();
        if writeln!(running.stdin, "{id} {}", path.display())
            .and_then(|()| running.stdin.flush())
            .is_err()
        {
            return self.died("the checker's stdin closed");
        }
        loop {
            match running.lines.recv_timeout(STATE_TIMEOUT) {
                Ok(line) if line == format!("begin {id}") => {}
                Ok(line) => {
                    let value: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|error| panic!("bad checker line {line:?}: {error}"));
                    assert_eq!(
                        value["id"],
                        Value::String(id.to_string()),
                        "checker answered out of order"
                    );
                    return Checked::Result(value);
                }
                Err(RecvTimeoutError::Timeout) => return self.died("hung (no answer within 60 s)"),
                Err(RecvTimeoutError::Disconnected) => return self.died("died"),
            }
        }
    }

    fn died(&mut self, how: &str) -> Checked {
        if let Some(mut running) = self.running.take() {
            drop(running.child.kill());
            let status = running
                .child
                .wait()
                .map(|status| status.to_string())
                .unwrap_or_default();
            let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            let tail: String = stderr
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Checked::Died(format!("the checker {how} ({status}); stderr:\n{tail}"));
        }
        Checked::Died(format!("the checker {how}"))
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        if let Some(mut running) = self.running.take() {
            drop(running.stdin);
            drop(running.child.wait());
        }
    }
}
