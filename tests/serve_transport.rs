//! The served API's transport: the owner-only socket, stale and live
//! sockets, TCP with a bearer token, slow-loris and connection limits, and
//! SSE subscriptions (Last-Event-ID resume exactly once, lagged, end).
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

#[path = "common/http.rs"]
mod http;
#[path = "common/served.rs"]
mod served;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use http::{get, post, Sse};
use runjournal::wire::run_path;
use runjournal::{ConnectOptions, Journal, Options, RemoteError, RunKey, ServeOptions};
use serde_json::{json, Value};
use served::{serve_with, step, Served};

fn key() -> RunKey {
    RunKey::new("g", 0, "a").unwrap()
}

fn begin_with_steps(served: &Served, steps: u64) {
    let begun = post(&served.socket, "/v1/runs", &json!({"run": key()}));
    assert_eq!(begun.status, 201, "{}", begun.text());
    let events: Vec<Value> = (0..steps).map(|index| step(&index.to_string())).collect();
    if steps > 0 {
        append(served, 1, &events);
    }
}

fn append(served: &Served, expected_seq: u64, events: &[Value]) {
    let reply = post(
        &served.socket,
        &format!("{}/events", run_path(&key())),
        &json!({"epoch": 0, "expected_seq": expected_seq, "events": events}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn the_socket_is_owner_only() {
    let served = serve_with(ServeOptions::default());
    let mode = std::fs::metadata(&served.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(served.socket, served.dir.path().join("db").join("runjournal.sock"));
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let journal = Journal::open(&db, Options::default()).unwrap();
    let stale = db.join("runjournal.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let server = journal.serve(ServeOptions::default()).unwrap();
    assert_eq!(get(&stale, "/v1/health").status, 200);
    server.close();
    assert!(!stale.exists());
}

#[test]
fn a_live_socket_is_refused() {
    let served = serve_with(ServeOptions::default());
    let error = served.journal.serve(ServeOptions::default()).unwrap_err();
    assert_eq!(error.code(), "already_served");
    // The first server still serves.
    assert_eq!(get(&served.socket, "/v1/health").status, 200);
}

#[test]
fn tcp_needs_a_token_file() {
    let served = serve_with(ServeOptions::default());
    let options = ServeOptions {
        socket: Some(served.dir.path().join("other.sock")),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServeOptions::default()
    };
    assert_eq!(served.journal.serve(options).unwrap_err().code(), "no_token");
    let empty = served.dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let options = ServeOptions {
        socket: Some(served.dir.path().join("other.sock")),
        ..ServeOptions::default()
    }
    .with_tcp("127.0.0.1:0".parse().unwrap(), &empty);
    assert_eq!(served.journal.serve(options).unwrap_err().code(), "no_token");
}

#[test]
fn bad_request_missing_or_wrong_token_on_tcp_is_unauthorized_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let journal = Journal::open(dir.path().join("db"), Options::default()).unwrap();
    let server = journal
        .serve(ServeOptions::default().with_tcp("127.0.0.1:0".parse().unwrap(), &token))
        .unwrap();
    let addr = server.tcp_addr().unwrap();
    let body = json!({"run": key()}).to_string();
    let tcp = |headers: &[(&str, &str)]| {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        http::exchange(
            stream,
            &http::request_bytes("POST", "/v1/runs", headers, Some(body.as_bytes())),
        )
    };
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "s3cret")],
    ] {
        let reply = tcp(&headers);
        assert_eq!(
            (reply.status, reply.code()),
            (401, "unauthorized".to_string()),
            "{headers:?}"
        );
        assert!(journal.run_info(&key()).is_err());
    }
    let reply = tcp(&[("authorization", "Bearer s3cret")]);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert!(journal.run_info(&key()).is_ok());
    // The Unix socket needs no token.
    assert_eq!(get(server.socket_path().unwrap(), "/v1/health").status, 200);
}

#[test]
fn bad_request_slow_loris_is_cut_off_and_never_blocks_others() {
    let served = serve_with(ServeOptions {
        header_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    });
    let mut slow = http::connect(&served.socket);
    slow.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let request = b"GET /v1/health HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let started = Instant::now();
    let mut sent = 0;
    let cut_off = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slow client was never cut off"
        );
        let byte = request[sent % request.len()];
        if slow.write_all(&[byte]).is_err() {
            break true;
        }
        sent += 1;
        // Others are served while the slow client trickles (this also paces it).
        assert_eq!(get(&served.socket, "/v1/health").status, 200);
        let mut buffer = [0; 256];
        match slow.read(&mut buffer) {
            // Still open: the read timed out.
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // Closed by the server (EOF or reset), or whatever it said before closing.
            _ => break true,
        }
    };
    assert!(cut_off);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(served.stored_runs().is_empty());
}

#[test]
fn connections_over_the_limit_are_answered_busy() {
    let served = serve_with(ServeOptions {
        max_connections: 1,
        ..ServeOptions::default()
    });
    // A keep-alive connection that has been served holds the one slot.
    let mut held = http::connect(&served.socket);
    held.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut reader = std::io::BufReader::new(held.try_clone().unwrap());
    assert_eq!(http::read_reply(&mut reader).status, 200);
    let reply = get(&served.socket, "/v1/health");
    assert_eq!((reply.status, reply.code()), (429, "busy".to_string()));
    drop(reader);
    drop(held);
}

#[test]
fn a_client_over_the_connection_limit_gets_the_typed_busy_error() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let journal = Journal::open(dir.path().join("db"), Options::default()).unwrap();
    let server = journal
        .serve(ServeOptions {
            max_connections: 1,
            ..ServeOptions::default().with_tcp("127.0.0.1:0".parse().unwrap(), &token)
        })
        .unwrap();
    let socket = server.socket_path().unwrap().to_path_buf();
    let mut held = http::connect(&socket);
    held.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut reader = std::io::BufReader::new(held.try_clone().unwrap());
    assert_eq!(http::read_reply(&mut reader).status, 200);
    // The busy answer must reach a client however its write races the
    // server's answer: many attempts in a row, no pauses, on both listeners.
    let tcp = format!("http://{}", server.tcp_addr().unwrap());
    for (target, options) in [
        (socket.display().to_string(), ConnectOptions::default()),
        (tcp, ConnectOptions::default().with_token("s3cret")),
    ] {
        for attempt in 0..50 {
            match Journal::connect(&target, options.clone()) {
                Err(RemoteError::Refused(refusal)) => {
                    assert_eq!(
                        (refusal.status, refusal.code.as_str()),
                        (429, "busy"),
                        "{target} attempt {attempt}"
                    );
                }
                Err(other) => panic!(
                    "{target} attempt {attempt}: a transport error instead of busy: {other} ({})",
                    other.code()
                ),
                Ok(_) => panic!("{target} attempt {attempt}: connected past the connection limit"),
            }
        }
    }
    drop(reader);
    drop(held);
}

/// The server's count of open connections, asked on `held` (keep-alive).
fn connections_open(held: &mut std::os::unix::net::UnixStream) -> u64 {
    held.write_all(b"GET /v1/metrics HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut reader = std::io::BufReader::new(held.try_clone().unwrap());
    let text = http::read_reply(&mut reader).text();
    text.lines()
        .find_map(|line| line.strip_prefix("runjournal_connections_open "))
        .unwrap_or_else(|| panic!("no open connection count: {text}"))
        .parse()
        .unwrap()
}

#[test]
fn a_silent_connection_over_the_limit_is_answered_busy_and_closed_within_its_bound() {
    let served = serve_with(ServeOptions {
        max_connections: 1,
        ..ServeOptions::default()
    });
    let mut held = http::connect(&served.socket);
    assert_eq!(connections_open(&mut held), 1);
    // Sends nothing and never closes its end.
    let silent = http::connect(&served.socket);
    let mut reader = std::io::BufReader::new(silent.try_clone().unwrap());
    let reply = http::read_reply(&mut reader);
    assert_eq!((reply.status, reply.code()), (429, "busy".to_string()));
    let mut rest = Vec::new();
    assert_eq!(
        reader.read_to_end(&mut rest).unwrap(),
        0,
        "the answer is the last thing written"
    );
    // The refusing task ends on its own bound (three 1 s steps) while the
    // client still holds its end: the server counts only `held` again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while connections_open(&mut held) != 1 {
        assert!(
            Instant::now() < deadline,
            "the over-limit connection is still held by the server"
        );
        std::thread::yield_now();
    }
    drop(silent);
}

#[test]
fn a_subscriber_that_reconnects_with_last_event_id_sees_every_event_exactly_once() {
    let served = serve_with(ServeOptions::default());
    begin_with_steps(&served, 4);
    let path = format!("{}/subscribe", run_path(&key()));
    let mut first = Sse::open(&served.socket, &format!("{path}?from=0"), &[]);
    assert_eq!(first.status, 200);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = first.next().unwrap();
        assert_eq!(event.event.as_deref(), Some("envelope"));
        let envelope: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(event.id.as_deref(), Some(envelope["seq"].to_string().as_str()));
        seen.push(envelope["seq"].as_u64().unwrap());
    }
    drop(first);
    append(&served, 5, &[step("5"), step("6"), step("7")]);
    let last = seen.last().unwrap().to_string();
    // `from` is overridden by Last-Event-ID.
    let mut second = Sse::open(&served.socket, &format!("{path}?from=0"), &[("last-event-id", &last)]);
    assert_eq!(second.status, 200);
    while seen.len() < 8 {
        let event = second.next().unwrap();
        let envelope: Value = serde_json::from_str(&event.data).unwrap();
        seen.push(envelope["seq"].as_u64().unwrap());
    }
    assert_eq!(seen, (0..8).collect::<Vec<u64>>());
    // Live events follow on the same stream.
    append(&served, 8, &[step("8")]);
    let live: Value = serde_json::from_str(&second.next().unwrap().data).unwrap();
    assert_eq!(live["seq"], 8);
}

#[test]
fn a_bad_last_event_id_is_invalid_request() {
    let served = serve_with(ServeOptions::default());
    begin_with_steps(&served, 0);
    let path = format!("{}/subscribe", run_path(&key()));
    let sse = Sse::open(&served.socket, &path, &[("last-event-id", "g/0/a/3")]);
    assert_eq!(sse.status, 400);
}

#[test]
fn subscriptions_end_on_purge_and_on_shutdown() {
    let served = serve_with(ServeOptions::default());
    begin_with_steps(&served, 0);
    let path = format!("{}/subscribe", run_path(&key()));
    let mut purged = Sse::open(&served.socket, &path, &[]);
    assert_eq!(purged.next().unwrap().event.as_deref(), Some("envelope"));
    let mut everything = Sse::open(&served.socket, "/v1/subscribe", &[]);
    let report = post(&served.socket, "/v1/purge", &json!({"policy": {"explicit": [key()]}}));
    assert_eq!(report.status, 200, "{}", report.text());
    let end = purged.next().unwrap();
    assert_eq!(end.event.as_deref(), Some("end"));
    assert_eq!(serde_json::from_str::<Value>(&end.data).unwrap()["reason"], "purged");
    assert!(purged.next().is_none());

    served.server.close();
    let end = everything.next().unwrap();
    assert_eq!(end.event.as_deref(), Some("end"));
    assert_eq!(serde_json::from_str::<Value>(&end.data).unwrap()["reason"], "shutdown");
}

#[test]
fn a_subscriber_that_falls_behind_gets_a_typed_lagged_event() {
    let served = serve_with(ServeOptions {
        subscriber_buffer: 1,
        ..ServeOptions::default()
    });
    begin_with_steps(&served, 0);
    let path = format!("{}/subscribe", run_path(&key()));
    let mut slow = Sse::open(&served.socket, &path, &[]);
    assert_eq!(slow.next().unwrap().event.as_deref(), Some("envelope"));
    // Never read while about 8 MiB of events are written: every buffer fills.
    let payload = "x".repeat(8 * 1024);
    let mut next = 1;
    for _ in 0..10 {
        let events: Vec<Value> = (0..100).map(|_| step(&payload)).collect();
        append(&served, next, &events);
        next += 100;
    }
    let mut last = None;
    while let Some(event) = slow.next() {
        last = Some(event);
    }
    let last = last.unwrap();
    assert_eq!(last.event.as_deref(), Some("lagged"), "{last:?}");
    let next_seq = serde_json::from_str::<Value>(&last.data).unwrap()["next_seq"]
        .as_u64()
        .unwrap();
    assert!(next_seq > 1 && next_seq < next, "{next_seq}");
}
