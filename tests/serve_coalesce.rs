//! A connected handle coalesces its concurrent appends: while an append
//! request is in flight the others wait and go together in one
//! `POST /v1/appends`, each getting exactly its own answer; a batch that is
//! not answered fails every append in it as outcome unknown (and the runs'
//! views are read back before their next append); an owner without the
//! batch endpoint gets single appends.
//!
//! The owner's store is gated here: while the gate is closed its writer
//! blocks in the store's append, which holds an append request in flight for as
//! long as the test needs the others to queue behind it.
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

#[path = "common/counting.rs"]
mod counting;
#[path = "common/http.rs"]
mod http;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use runjournal::{
    AppendError, ConnectOptions, Durability, Event, Journal, Message, Options, RemoteError, Role, RunKey, RunMeta,
    ServeHandle, ServeOptions,
};
use runjournal_sled::{OpenMode, SledStore};

use counting::{wait_queued, CountingStore, DEADLINE};

/// Serves a proxy in the given directory in front of the owner's socket and
/// returns where it listens.
type Proxy<'a> = &'a dyn Fn(&Path, PathBuf) -> PathBuf;

/// An owner over a gated store, serving on a socket, and a connection to it.
struct Gated {
    _dir: tempfile::TempDir,
    store: Arc<CountingStore<SledStore>>,
    owner: Journal,
    _server: ServeHandle,
    socket: PathBuf,
    client: Journal,
}

fn gated(timeout: Duration) -> Gated {
    gated_through(timeout, None)
}

/// [`gated`], connected through `proxy` (a path of the temporary directory
/// to serve on, and the owner's socket) when given.
fn gated_through(timeout: Duration, proxy: Option<Proxy<'_>>) -> Gated {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CountingStore::new(
        SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap(),
    ));
    let owner = Journal::with_store(store.clone(), Options::default()).unwrap();
    let socket = dir.path().join("runjournal.sock");
    let server = owner
        .serve(ServeOptions {
            socket: Some(socket.clone()),
            ..ServeOptions::default()
        })
        .unwrap();
    let target = match proxy {
        Some(proxy) => proxy(dir.path(), socket.clone()),
        None => socket.clone(),
    };
    let client = Journal::connect(
        &target,
        ConnectOptions {
            timeout,
            durability_override: Some(Durability::Durable),
            ..ConnectOptions::default()
        },
    )
    .unwrap();
    Gated {
        _dir: dir,
        store,
        owner,
        _server: server,
        socket,
        client,
    }
}

fn step(text: &str) -> Vec<Event> {
    vec![Event::Step {
        messages: vec![Message::new(Role::Assistant, text)],
    }]
}

/// A counter of the owner's `/metrics`.
fn metric(socket: &Path, name: &str) -> u64 {
    let text = http::get(socket, "/metrics").text();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// The append requests (single and batched) the owner received.
fn append_requests(socket: &Path) -> u64 {
    metric(socket, "runjournal_append_requests_total") + metric(socket, "runjournal_batch_append_requests_total")
}

/// The shared run: an append succeeded exactly when it expected the seq it
/// got; every other is a conflict naming a later seq; the run holds exactly
/// the acknowledged appends. Returns how many there were.
fn check_shared_run(owner: &Journal, shared_key: &RunKey, shared_results: &[SharedResults]) -> u64 {
    let mut written = Vec::new();
    for (writer, results) in shared_results.iter().enumerate() {
        for (round, (expected, result)) in results.iter().enumerate() {
            match result {
                Ok(seq) => {
                    assert_eq!(seq, expected);
                    written.push((*seq, format!("shared {writer}/{round}")));
                }
                Err(AppendError::Conflict {
                    run,
                    expected: refused,
                    actual,
                }) => {
                    assert_eq!((run, refused), (shared_key, expected));
                    assert!(
                        actual > expected,
                        "a conflict is with a later seq: {actual} > {expected}"
                    );
                }
                Err(other) => panic!("shared writer {writer} round {round}: {other}"),
            }
        }
    }
    let round_zero_wins = shared_results.iter().filter(|results| results[0].1.is_ok()).count();
    assert_eq!(round_zero_wins, 1, "exactly one writer gets the seq all expected");
    written.sort();
    let history = owner.history(shared_key).unwrap();
    let stored: Vec<_> = history[1..]
        .iter()
        .map(|envelope| {
            let Event::Step { messages } = &envelope.event else {
                panic!("seq {} is not a step", envelope.seq)
            };
            (envelope.seq, messages[0].content.clone())
        })
        .collect();
    assert_eq!(
        stored, written,
        "the shared run holds exactly the acknowledged appends, in seq order"
    );
    assert_eq!(owner.verify(shared_key).unwrap().events, history.len() as u64);

    written.len() as u64
}

/// A shared-run writer's appends: the seq each expected, and what it got.
type SharedResults = Vec<(u64, Result<u64, AppendError>)>;

const OWN_RUNS: u32 = 64;
const SHARED_WRITERS: usize = 4;
const ROUNDS: u64 = 8;

#[test]
fn concurrent_appends_through_one_handle_share_requests() {
    let setup = gated(Duration::from_secs(300));
    let client = &setup.client;
    let runs: Vec<_> = (0..OWN_RUNS)
        .map(|index| {
            let key = RunKey::new("coalesce", index, "own").unwrap();
            client.begin(key, RunMeta::default()).unwrap()
        })
        .collect();
    let shared_key = RunKey::new("coalesce", 0, "shared").unwrap();
    let shared = client.begin(shared_key.clone(), RunMeta::default()).unwrap();
    let requests_before = append_requests(&setup.socket);
    let items_before = metric(&setup.socket, "runjournal_batch_append_items_total");

    // Round 0 behind the closed gate: the first append holds its request in
    // flight while every other one queues behind it.
    setup.store.close();
    let entered = setup.store.entered();
    let shared_start = shared.next_seq();
    let writers = OWN_RUNS as usize + SHARED_WRITERS;
    let round_zero = Barrier::new(writers + 1);
    let sent = std::sync::atomic::AtomicU64::new(0);
    let (own_results, shared_results) = std::thread::scope(|scope| {
        let own: Vec<_> = runs
            .iter()
            .map(|run| {
                let (round_zero, sent) = (&round_zero, &sent);
                scope.spawn(move || {
                    let mut lasts = Vec::new();
                    for round in 0..=ROUNDS {
                        let expected = run.next_seq();
                        sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        lasts.push((expected, run.append_at(expected, step(&format!("own {round}")))));
                        if round == 0 {
                            round_zero.wait();
                        }
                    }
                    lasts
                })
            })
            .collect();
        let shared_threads: Vec<_> = (0..SHARED_WRITERS)
            .map(|writer| {
                let (round_zero, sent, shared) = (&round_zero, &sent, &shared);
                scope.spawn(move || {
                    let mut results = Vec::new();
                    for round in 0..=ROUNDS {
                        // Round 0: every writer expects the seq it read before the gate.
                        let expected = if round == 0 { shared_start } else { shared.next_seq() };
                        sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let text = format!("shared {writer}/{round}");
                        results.push((expected, shared.append_at(expected, step(&text))));
                        if round == 0 {
                            round_zero.wait();
                        }
                    }
                    results
                })
            })
            .collect();
        // One append in flight (held at the store), the other own-run appends
        // and the one shared append that does not conflict queued.
        setup.store.wait_entered(entered + 1);
        wait_queued(client, OWN_RUNS as usize + 1 - 2);
        setup.store.open();
        round_zero.wait();
        (
            own.into_iter().map(|thread| thread.join().unwrap()).collect::<Vec<_>>(),
            shared_threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect::<Vec<_>>(),
        )
    });

    for (run, results) in runs.iter().zip(&own_results) {
        for (expected, result) in results {
            assert_eq!(result.as_ref().ok(), Some(expected), "run {}: {result:?}", run.key());
        }
        let stored = setup.owner.history(run.key()).unwrap();
        assert_eq!(
            stored.len() as u64,
            2 + ROUNDS,
            "run_started and every append of {}",
            run.key()
        );
        assert_eq!(setup.owner.verify(run.key()).unwrap().events, 2 + ROUNDS);
        assert_eq!(client.state(run.key()).unwrap(), run.state());
    }

    let written = check_shared_run(&setup.owner, &shared_key, &shared_results);

    // Fewer requests than appends: round 0 alone went in at most three.
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    let conflicts_refused_here = (SHARED_WRITERS as u64 * (ROUNDS + 1)) - written;
    let appends_sent = sent - conflicts_refused_here;
    let requests = append_requests(&setup.socket) - requests_before;
    let batched = metric(&setup.socket, "runjournal_batch_append_items_total") - items_before;
    assert!(
        requests < appends_sent,
        "{requests} append requests carried {appends_sent} appends"
    );
    assert!(
        batched >= u64::from(OWN_RUNS) - 1,
        "round 0's queued appends went batched: {batched}"
    );
}

#[test]
fn a_batch_transport_failure_fails_every_item_as_outcome_unknown() {
    let setup = gated(Duration::from_secs(3));
    let client = &setup.client;
    let runs: Vec<_> = (0..4)
        .map(|index| {
            let key = RunKey::new("unanswered", index, "a").unwrap();
            client.begin(key, RunMeta::default()).unwrap()
        })
        .collect();
    setup.store.close();
    let entered = setup.store.entered();
    let results = std::thread::scope(|scope| {
        let first = scope.spawn(|| runs[0].append(step("first")));
        setup.store.wait_entered(entered + 1);
        let rest: Vec<_> = runs[1..]
            .iter()
            .map(|run| scope.spawn(move || run.append(step("unanswered"))))
            .collect();
        wait_queued(client, 2);
        // The first request is answered; the batch after it reaches the store
        // and is held there past the client's timeout.
        setup.store.pass(1);
        let mut results = vec![first.join().unwrap()];
        results.extend(rest.into_iter().map(|thread| thread.join().unwrap()));
        results
    });
    assert_eq!(results[0].as_ref().ok(), Some(&1), "the request in flight was answered");
    for (run, result) in runs.iter().zip(&results).skip(1) {
        assert!(
            matches!(result, Err(AppendError::Remote(RemoteError::OutcomeUnknown { .. }))),
            "run {}: {result:?}",
            run.key()
        );
    }
    // The unanswered appends were written after all; each run's next append
    // reads its view back first and goes after them.
    setup.store.open();
    let deadline = Instant::now() + DEADLINE;
    for run in &runs[1..] {
        while setup.owner.run_info(run.key()).unwrap().head.next_seq < 2 {
            assert!(Instant::now() < deadline, "{} was not written", run.key());
            std::thread::yield_now();
        }
        assert_eq!(run.append(step("after")).unwrap(), 2, "{}", run.key());
        assert_eq!(run.next_seq(), 3);
        assert_eq!(setup.owner.verify(run.key()).unwrap().events, 3);
        assert_eq!(run.state(), setup.owner.state(run.key()).unwrap());
    }
}

/// An owner of before `POST /v1/appends`: a proxy in front of the owner's
/// socket that answers that route as an unknown one, counting the attempts.
struct OldOwner {
    _runtime: tokio::runtime::Runtime,
    batch_attempts: Arc<std::sync::atomic::AtomicU64>,
}

fn old_owner(listen: &Path, owner: PathBuf) -> OldOwner {
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let batch_attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let listener = runtime
        .block_on(async { tokio::net::UnixListener::bind(listen) })
        .unwrap();
    let attempts = batch_attempts.clone();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (owner, attempts) = (owner.clone(), attempts.clone());
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (owner, attempts) = (owner.clone(), attempts.clone());
                async move {
                    if request.uri().path() == "/v1/appends" {
                        attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let body = r#"{"error":{"code":"unknown_route","message":"no route /v1/appends"}}"#;
                        return Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(404)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        );
                    }
                    let stream = tokio::net::UnixStream::connect(&owner).await.unwrap();
                    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                    tokio::spawn(connection);
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await?.to_bytes();
                    let response = sender.send_request(Request::from_parts(parts, Full::new(body))).await?;
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await?.to_bytes();
                    Ok(Response::from_parts(parts, Full::new(body)))
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    OldOwner {
        _runtime: runtime,
        batch_attempts,
    }
}

#[test]
fn an_owner_without_the_batch_endpoint_gets_single_appends() {
    let old = std::cell::OnceCell::new();
    let proxy = |dir: &Path, owner: PathBuf| {
        let listen = dir.join("old-owner.sock");
        assert!(old.set(old_owner(&listen, owner)).is_ok());
        listen
    };
    let setup = gated_through(Duration::from_secs(300), Some(&proxy));
    let old = old.get().unwrap();
    let client = &setup.client;
    let runs: Vec<_> = (0..4)
        .map(|index| {
            let key = RunKey::new("old-owner", index, "a").unwrap();
            client.begin(key, RunMeta::default()).unwrap()
        })
        .collect();
    for (round, expected_seq) in (0..3).zip(1..) {
        setup.store.close();
        let entered = setup.store.entered();
        let results = std::thread::scope(|scope| {
            let first = scope.spawn(|| runs[0].append(step("first")));
            setup.store.wait_entered(entered + 1);
            let rest: Vec<_> = runs[1..]
                .iter()
                .map(|run| scope.spawn(move || run.append(step("queued"))))
                .collect();
            if round == 0 {
                // Only the first round coalesces: the owner's 404 is remembered.
                wait_queued(client, 2);
            }
            setup.store.open();
            let mut results = vec![first.join().unwrap()];
            results.extend(rest.into_iter().map(|thread| thread.join().unwrap()));
            results
        });
        for (run, result) in runs.iter().zip(results) {
            assert_eq!(result.unwrap(), expected_seq, "round {round}: {}", run.key());
        }
    }
    assert_eq!(
        old.batch_attempts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one batch was tried, then none"
    );
    assert_eq!(metric(&setup.socket, "runjournal_batch_append_requests_total"), 0);
    for run in &runs {
        assert_eq!(setup.owner.verify(run.key()).unwrap().events, 4);
        assert_eq!(run.state(), setup.owner.state(run.key()).unwrap());
    }
}
