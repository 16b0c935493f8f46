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
