//! `runjournal serve`: serves in the foreground until SIGTERM or SIGINT,
//! then drains and removes its socket; TCP only with a token file.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Waits (polling, with a deadline) until `path` exists.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::yield_now();
    }
}

fn health(socket: &Path) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

fn stop_with(signal: &str) {
    let (dir, db) = fresh();
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--db")
        .arg(&db)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let socket = db.join("runjournal.sock");
    wait_for(&socket);
    let reply = health(&socket);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"server\":\"runjournal\""), "{reply}");
    let killed = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&format!("on {}", socket.display())), "{text}");
    assert!(text.contains("stopped; socket removed"), "{text}");
    assert!(!socket.exists());
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    stop_with("TERM");
}

#[test]
fn serve_stops_cleanly_on_sigint() {
    stop_with("INT");
}

#[test]
fn serve_refuses_tcp_without_a_token_file() {
    let (_dir, db) = fresh();
    let output = rj(&db, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("token"), "{}", stderr(&output));
}

/// One request over the socket (`Connection: close`): the status and body,
/// or `None` when the server is gone or hung up.
fn request(socket: &Path, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let status = reply.split(' ').nth(1)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n")?.1;
    Some((status, serde_json::from_str(body).ok()?))
}

fn spawn_server(dir: &Path, db: &Path) -> std::process::Child {
    Command::new(BIN)
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killing_the_owner_loses_no_acknowledged_append_and_clients_reconnect() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    const CLIENTS: u32 = 4;
    let (dir, db) = fresh();
    let mut owner = spawn_server(dir.path(), &db);
    let socket = db.join("runjournal.sock");
    wait_for(&socket);
    let acknowledged_total = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let socket = socket.clone();
            let total = acknowledged_total.clone();
            std::thread::spawn(move || {
                let run = serde_json::json!({"goal": "kill", "episode": client, "agent": "a"});
                let (status, _) = request(
                    &socket,
                    "POST",
                    "/v1/runs",
                    &serde_json::json!({"run": run}).to_string(),
                )
                .unwrap();
                assert_eq!(status, 201);
                let mut acknowledged = Vec::new();
                for seq in 1.. {
                    let content = format!("client {client} step {seq}");
                    let body = serde_json::json!({"epoch": 0, "expected_seq": seq, "events": [
                        {"type": "step", "messages": [{"role": "assistant", "content": content}]}]});
                    match request(
                        &socket,
                        "POST",
                        &format!("/v1/runs/kill/{client}/a/events"),
                        &body.to_string(),
                    ) {
                        Some((200, answer)) => {
                            assert_eq!(answer["envelopes"][0]["seq"], seq);
                            acknowledged.push((seq, content));
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        // The owner is gone: an error, never a success.
                        None => return acknowledged,
                        Some(other) => panic!("client {client}: {other:?}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged_total.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < deadline, "the clients never got going");
        std::thread::yield_now();
    }
    owner.kill().unwrap();
    owner.wait().unwrap();
    let acknowledged: Vec<_> = clients.into_iter().map(|client| client.join().unwrap()).collect();

    // A new owner replaces the dead one's socket; the clients reconnect.
    let mut owner = spawn_server(dir.path(), &db);
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(&socket, "GET", "/v1/health", "").is_none() {
        assert!(Instant::now() < deadline, "the new owner never answered");
        std::thread::yield_now();
    }
    for (client, acknowledged) in (0..CLIENTS).zip(&acknowledged) {
        let (status, page) = request(
            &socket,
            "GET",
            &format!("/v1/runs/kill/{client}/a/events?limit=10000"),
            "",
        )
        .unwrap();
        assert_eq!(status, 200);
        let stored = page["envelopes"].as_array().unwrap();
        for (seq, content) in acknowledged {
            let envelope = &stored[usize::try_from(*seq).unwrap()];
            assert_eq!(
                envelope["event"]["messages"][0]["content"],
                content.as_str(),
                "client {client} seq {seq}"
            );
        }
        let (status, verify) = request(&socket, "GET", &format!("/v1/runs/kill/{client}/a/verify"), "").unwrap();
        assert_eq!(status, 200, "{verify}");
        // Appending goes on where the store stands.
        let next = stored.len();
        let body = serde_json::json!({"epoch": 0, "expected_seq": next, "events": [
            {"type": "step", "messages": [{"role": "assistant", "content": "after the restart"}]}]});
        let (status, answer) = request(
            &socket,
            "POST",
            &format!("/v1/runs/kill/{client}/a/events"),
            &body.to_string(),
        )
        .unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(owner.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(owner.wait().unwrap().success());
}
