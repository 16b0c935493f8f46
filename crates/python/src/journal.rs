//! `Journal` and `Subscription`: the journal handle and live event streams.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use runjournal::{
    ConnectOptions, Durability, Expect, Options, RunFilter, RunKey, RunMeta, RunStatus, ServeHandle, ServeOptions,
};

use crate::errors::{plain, to_py, ClosedError, ForkedProcessError, InvalidError};
use crate::run::Run;

/// A run key from Python: `(goal, episode, agent)`.
pub(crate) type PyKey = (String, u32, String);

/// The Rust key of a Python key, validated.
pub(crate) fn key_of(key: PyKey) -> PyResult<RunKey> {
    RunKey::new(key.0, key.1, key.2).map_err(to_py)
}

/// The Python key of a Rust key.
pub(crate) fn py_key(key: &RunKey) -> PyKey {
    (key.goal.clone(), key.episode, key.agent.clone())
}

/// Parses JSON text the Python layer produced into a Rust value.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> PyResult<T> {
    serde_json::from_str(text)
        .map_err(|error| plain::<InvalidError>("invalid_json", format!("invalid {what}: {error}")))
}

/// JSON text of a Rust value.
pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    // The serde derive of runjournal's types never fails to serialize.
    serde_json::to_string(value).unwrap_or_else(|error| format!("{{\"serialize_error\":{:?}}}", error.to_string()))
}

/// Fails with `ForkedProcessError` when called in another process than `pid`.
pub(crate) fn check_pid(pid: u32) -> PyResult<()> {
    let now = std::process::id();
    if now == pid {
        Ok(())
    } else {
        Err(plain::<ForkedProcessError>(
            "forked",
            format!(
                "this journal was opened by process {pid}; process {now} (a child after os.fork()) cannot use it: open the journal again in the child, or use multiprocessing's spawn start method"
            ),
        ))
    }
}

/// An open journal (`runjournal.Journal` wraps it).
#[pyclass(frozen, module = "runjournal._native")]
pub(crate) struct Journal {
    handle: Mutex<Option<runjournal::Journal>>,
    /// Serving the journal to other processes, while `serve` is on.
    server: Mutex<Option<ServeHandle>>,
    pid: u32,
}

/// `"durable"` or `"buffered"`.
fn parse_durability(durability: &str) -> PyResult<Durability> {
    match durability {
        "durable" => Ok(Durability::Durable),
        "buffered" => Ok(Durability::Buffered),
        other => Err(plain::<InvalidError>(
            "invalid_durability",
            format!("durability must be \"durable\" or \"buffered\", not {other:?}"),
        )),
    }
}

impl Journal {
    /// The Rust journal, when this process opened it and it is not closed.
    fn get(&self) -> PyResult<runjournal::Journal> {
        check_pid(self.pid)?;
        self.handle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| plain::<ClosedError>("closed", "the journal is closed".into()))
    }

    fn run(&self, run: runjournal::Run) -> Run {
        Run::new(run, self.pid)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // A forked child has no writer thread: closing would wait for it
            // forever. The parent owns the store; the child lets go of it.
            let server = self
                .server
                .get_mut()
                .map_or_else(|poisoned| poisoned.into_inner().take(), Option::take);
            std::mem::forget(server);
            let journal = self
                .handle
                .get_mut()
                .map_or_else(|poisoned| poisoned.into_inner().take(), Option::take);
            std::mem::forget(journal);
        }
    }
}

#[pymethods]
impl Journal {
    /// Opens (creating when missing) the sled database at `path`.
    #[staticmethod]
    #[pyo3(signature = (path, durability = "durable"))]
    fn open(py: Python<'_>, path: &str, durability: &str) -> PyResult<Journal> {
        let durability = parse_durability(durability)?;
        let journal = py
            .detach(|| runjournal::Journal::open(path, Options::with_durability(durability)))
            .map_err(to_py)?;
        Ok(Journal {
            handle: Mutex::new(Some(journal)),
            server: Mutex::new(None),
            pid: std::process::id(),
        })
    }

    /// Connects to the process that serves a journal: `target` is a database
    /// path (its socket `<path>/runjournal.sock`) or an `http://host:port`
    /// address (with `token`).
    #[staticmethod]
    #[pyo3(signature = (target, token = None, durability = None))]
    fn connect(py: Python<'_>, target: &str, token: Option<String>, durability: Option<&str>) -> PyResult<Journal> {
        let durability_override = durability.map(parse_durability).transpose()?;
        let options = ConnectOptions {
            token,
            durability_override,
            ..ConnectOptions::default()
        };
        let journal = py
            .detach(|| runjournal::Journal::connect(target, options))
            .map_err(|error| to_py(runjournal::Error::Remote(error)))?;
        Ok(Journal {
            handle: Mutex::new(Some(journal)),
            server: Mutex::new(None),
            pid: std::process::id(),
        })
    }

    /// Serves this (embedded) journal on its Unix socket
    /// `<database>/runjournal.sock`, so other processes `connect` to it;
    /// returns the socket's path. Serving stops at `stop_serving` or `close`.
    fn serve(&self, py: Python<'_>) -> PyResult<String> {
        let journal = self.get()?;
        let handle = py.detach(|| journal.serve(ServeOptions::default())).map_err(|error| {
            plain::<crate::errors::StorageError>(error.code(), format!("could not serve the journal: {error}"))
        })?;
        let path = handle
            .socket_path()
            .map(|path| path.display().to_string())
            .unwrap_or_default();
        let previous = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(handle);
        py.detach(move || drop(previous));
        Ok(path)
    }

    /// Stops serving (connected clients get `unreachable` from then on).
    fn stop_serving(&self, py: Python<'_>) -> PyResult<()> {
        check_pid(self.pid)?;
        let handle = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        py.detach(move || drop(handle));
        Ok(())
    }

    /// Whether this handle is connected to another process's journal.
    #[getter]
    fn connected(&self) -> PyResult<bool> {
        Ok(self.get()?.is_remote())
    }

    /// Lets go of the journal; the store closes once no run handle holds it.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        check_pid(self.pid)?;
        let journal = self
            .handle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        py.detach(move || drop(journal));
        Ok(())
    }

    /// The pid of the process that opened the journal.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// `"durable"` or `"buffered"`.
    #[getter]
    fn durability(&self) -> PyResult<&'static str> {
        Ok(match self.get()?.options().durability {
            Durability::Buffered => "buffered",
            Durability::Durable => "durable",
        })
    }

    /// Creates the run `key` (`run_started` with `meta`, JSON).
    fn begin(&self, py: Python<'_>, key: PyKey, meta: &str) -> PyResult<Run> {
        let journal = self.get()?;
        let key = key_of(key)?;
        let meta: RunMeta = from_json("meta", meta)?;
        let run = py.detach(|| journal.begin(key, meta)).map_err(to_py)?;
        Ok(self.run(run))
    }

    /// Resumes `key` in a new epoch: the handle and the state (JSON). With an
    /// expectation, a differing `meta` field is a `MismatchError`.
    #[pyo3(signature = (key, backend = None, model = None, agent_name = None))]
    fn resume(
        &self,
        py: Python<'_>,
        key: PyKey,
        backend: Option<String>,
        model: Option<String>,
        agent_name: Option<String>,
    ) -> PyResult<(Run, String)> {
        let journal = self.get()?;
        let key = key_of(key)?;
        let expect = Expect {
            backend,
            model,
            agent_name,
        };
        let (run, state) = py.detach(|| journal.resume_expecting(&key, &expect)).map_err(to_py)?;
        Ok((self.run(run), to_json(&state)))
    }

    /// Resumes the newest recoverable episode of `(goal, agent)`.
    fn resume_latest(&self, py: Python<'_>, goal: &str, agent: &str) -> PyResult<(Run, String)> {
        let journal = self.get()?;
        let (run, state) = py.detach(|| journal.resume_latest(goal, agent)).map_err(to_py)?;
        Ok((self.run(run), to_json(&state)))
    }

    /// One more than the highest episode of `goal` (0 for a new goal).
    fn next_episode(&self, py: Python<'_>, goal: &str) -> PyResult<u32> {
        let journal = self.get()?;
        py.detach(|| journal.next_episode(goal)).map_err(to_py)
    }

    /// The highest episode of `(goal, agent)`, if any.
    fn latest_episode(&self, py: Python<'_>, goal: &str, agent: &str) -> PyResult<Option<u32>> {
        let journal = self.get()?;
        py.detach(|| journal.latest_episode(goal, agent)).map_err(to_py)
    }

    /// The run's stored head: `(next_seq, epoch)`, without reading its events.
    fn head(&self, py: Python<'_>, key: PyKey) -> PyResult<(u64, u64)> {
        let journal = self.get()?;
        let key = key_of(key)?;
        py.detach(|| journal.run_info(&key))
            .map(|record| (record.head.next_seq, record.head.epoch))
            .map_err(to_py)
    }

    /// The run's resume state (JSON).
    fn state(&self, py: Python<'_>, key: PyKey) -> PyResult<String> {
        let journal = self.get()?;
        let key = key_of(key)?;
        py.detach(|| journal.state(&key).map(|state| to_json(&state)))
            .map_err(to_py)
    }

    /// The run's resume state as of its own seq `seq` (JSON).
    fn state_at(&self, py: Python<'_>, key: PyKey, seq: u64) -> PyResult<String> {
        let journal = self.get()?;
        let key = key_of(key)?;
        py.detach(|| journal.state_at(&key, seq).map(|state| to_json(&state)))
            .map_err(to_py)
    }

    /// The run's whole history, verified (JSON list of envelopes).
    fn history(&self, py: Python<'_>, key: PyKey) -> PyResult<String> {
        let journal = self.get()?;
        let key = key_of(key)?;
        py.detach(|| journal.history(&key).map(|events| to_json(&events)))
            .map_err(to_py)
    }

    /// The run's own events from `from_seq`, verified (JSON list of envelopes).
    #[pyo3(signature = (key, from_seq = 0))]
    fn read(&self, py: Python<'_>, key: PyKey, from_seq: u64) -> PyResult<String> {
        let journal = self.get()?;
        let key = key_of(key)?;
        py.detach(|| journal.read(&key, from_seq).map(|events| to_json(&events)))
            .map_err(to_py)
    }

    /// Verifies the run's chain: `(events, head hash hex)`.
    fn verify(&self, py: Python<'_>, key: PyKey) -> PyResult<(u64, String)> {
        let journal = self.get()?;
        let key = key_of(key)?;
        py.detach(|| journal.verify(&key))
            .map(|report| (report.events, report.head.to_hex()))
            .map_err(to_py)
    }

    /// The runs passing the filter (JSON list of run records).
    #[pyo3(signature = (goal = None, agent = None, status = None))]
    fn runs(
        &self,
        py: Python<'_>,
        goal: Option<String>,
        agent: Option<String>,
        status: Option<&str>,
    ) -> PyResult<String> {
        let journal = self.get()?;
        let status: Option<RunStatus> = status
            .map(|status| from_json("status", &serde_json::Value::String(status.into()).to_string()))
            .transpose()?;
        let filter = RunFilter { goal, agent, status };
        let records = py.detach(|| journal.runs(&filter)).map_err(to_py)?;
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|record| {
                serde_json::json!({
                    "run": record.key,
                    "status": record.status,
                    "created_ts": record.created_ts,
                    "next_seq": record.head.next_seq,
                    "epoch": record.head.epoch,
                    "head": record.head.hash,
                    "last_ts": record.head.last_ts,
                    "fork": record.fork.as_ref().map(|fork| serde_json::json!({
                        "run": fork.parent_key,
                        "seq": fork.seq,
                    })),
                })
            })
            .collect();
        Ok(to_json(&records))
    }

    /// The recoverable runs' resume states (JSON list).
    fn recoverable(&self, py: Python<'_>) -> PyResult<String> {
        let journal = self.get()?;
        py.detach(|| journal.recoverable().map(|states| to_json(&states)))
            .map_err(to_py)
    }

    /// The write path's counters.
    fn metrics(&self) -> PyResult<std::collections::BTreeMap<&'static str, u64>> {
        let metrics = self.get()?.metrics();
        Ok([
            ("batches", metrics.batches),
            ("events", metrics.events),
            ("bytes", metrics.bytes),
            ("groups", metrics.groups),
            ("flushes", metrics.flushes),
            ("flush_micros_total", metrics.flush_micros_total),
            ("flush_micros_max", metrics.flush_micros_max),
        ]
        .into_iter()
        .collect())
    }

    /// Syncs everything applied so far to stable storage.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let journal = self.get()?;
        py.detach(|| journal.sync()).map_err(to_py)
    }

    /// Forks `parent` after its seq `at_seq` into the new run `child`.
    fn fork(&self, py: Python<'_>, parent: PyKey, at_seq: u64, child: PyKey) -> PyResult<Run> {
        let journal = self.get()?;
        let parent = key_of(parent)?;
        let child = key_of(child)?;
        let run = py.detach(|| journal.fork(&parent, at_seq, child)).map_err(to_py)?;
        Ok(self.run(run))
    }

    /// Forks `parent` at `at_seq` into `n` new episodes (best-of-N).
    fn fanout(&self, py: Python<'_>, parent: PyKey, at_seq: u64, n: u32) -> PyResult<Vec<Run>> {
        let journal = self.get()?;
        let parent = key_of(parent)?;
        let runs = py.detach(|| journal.fanout(&parent, at_seq, n)).map_err(to_py)?;
        Ok(runs.into_iter().map(|run| self.run(run)).collect())
    }

    /// Rewinds `key` to `at_seq`: a fork that goes on, the original superseded.
    fn rewind(&self, py: Python<'_>, key: PyKey, at_seq: u64) -> PyResult<Run> {
        let journal = self.get()?;
        let key = key_of(key)?;
        let run = py.detach(|| journal.rewind(&key, at_seq)).map_err(to_py)?;
        Ok(self.run(run))
    }

    /// Where two runs' histories part (JSON).
    fn diff(&self, py: Python<'_>, a: PyKey, b: PyKey) -> PyResult<String> {
        let journal = self.get()?;
        let a = key_of(a)?;
        let b = key_of(b)?;
        let diff = py.detach(|| journal.diff(&a, &b)).map_err(to_py)?;
        let differences: Vec<serde_json::Value> = diff
            .state_differences
            .iter()
            .map(|(field, a, b)| serde_json::json!({"field": field, "a": a, "b": b}))
            .collect();
        Ok(to_json(&serde_json::json!({
            "common": diff.common,
            "a": diff.a,
            "b": diff.b,
            "state_differences": differences,
        })))
    }

    /// The fork parent of `key`, if it is a fork.
    fn parent(&self, py: Python<'_>, key: PyKey) -> PyResult<Option<PyKey>> {
        let journal = self.get()?;
        let key = key_of(key)?;
        let parent = py.detach(|| journal.parent(&key)).map_err(to_py)?;
        Ok(parent.as_ref().map(py_key))
    }

    /// Subscribes to `key`'s events from `from_seq` (history, then live).
    #[pyo3(signature = (key, from_seq = 0, buffer = 1024))]
    fn subscribe(&self, py: Python<'_>, key: PyKey, from_seq: u64, buffer: usize) -> PyResult<Subscription> {
        let journal = self.get()?;
        let key = key_of(key)?;
        let subscription = py.detach(|| journal.subscribe(&key, from_seq, buffer)).map_err(to_py)?;
        Ok(Subscription {
            inner: Mutex::new(subscription),
            pid: self.pid,
        })
    }

    /// Subscribes to every run's new events.
    #[pyo3(signature = (buffer = 1024))]
    fn subscribe_all(&self, py: Python<'_>, buffer: usize) -> PyResult<Subscription> {
        let journal = self.get()?;
        let subscription = py.detach(|| journal.subscribe_all(buffer)).map_err(to_py)?;
        Ok(Subscription {
            inner: Mutex::new(subscription),
            pid: self.pid,
        })
    }
}

/// A live stream of envelopes (`runjournal.Subscription` iterates it).
#[pyclass(frozen, module = "runjournal._native")]
pub(crate) struct Subscription {
    inner: Mutex<runjournal::Subscription>,
    pid: u32,
}

#[pymethods]
impl Subscription {
    /// The next envelope (JSON), or `None` when `timeout` seconds pass first.
    /// The GIL is released while it waits.
    #[pyo3(signature = (timeout))]
    fn recv(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        check_pid(self.pid)?;
        let timeout = Duration::from_secs_f64(timeout.max(0.0));
        py.detach(|| {
            let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            inner
                .recv_timeout(timeout)
                .map(|envelope| envelope.map(|envelope| to_json(&envelope)))
        })
        .map_err(to_py)
    }
}
