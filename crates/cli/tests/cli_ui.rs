//! `runjournal ui` (docs/ui.md): the page, the served API forwarded from the
//! owner's socket (its shapes and error codes), the outline, the token rule,
//! the subscription's resume, and a second `ui` going through the first
//! one's socket; against the real binary over loopback.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A running `runjournal ui`, stopped when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// The first line `ui` prints.
    fn start_line(db: &Path, extra: &[&str]) -> (Server, String) {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(db)
            .args(["ui", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.split(" at ").nth(1).unwrap().trim();
        let address = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        (Server { child, address }, line)
    }

    fn start(db: &Path, extra: &[&str]) -> Server {
        Server::start_line(db, extra).0
    }

    /// One request; returns the status and the body.
    fn request(&self, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.address,
            body.len()
        );
        for header in headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.push_str(body);
        stream.write_all(text.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.request("GET", path, &[], "");
        (status, serde_json::from_str(&body).unwrap())
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, body) = self.request("POST", path, &["content-type: application/json"], &body.to_string());
        (status, serde_json::from_str(&body).unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

const SESSION: &str = "/v1/runs/fix-login-bug/0/orchestrator-0";

#[test]
fn ui_serves_the_embedded_page_and_the_health_route() {
    let (_dir, db) = session_db();
    let server = Server::start(&db, &[]);
    let (status, page) = server.request("GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("<title>runjournal</title>"), "{page}");
    let (status, script) = server.request("GET", "/app.js", &[], "");
    assert_eq!(status, 200);
    assert!(script.contains("function runView"));
    let (status, health) = server.get("/v1/health");
    assert_eq!(status, 200);
    assert_eq!(health["server"], "runjournal");
    assert_eq!(health["api"], 1);
}

#[test]
fn ui_read_routes_answer_records_states_and_event_ranges() {
    let (_dir, db) = session_db();
    let server = Server::start(&db, &[]);
    let (_, runs) = server.get("/v1/runs?status=running");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    let record = &runs["runs"][0];
    assert_eq!(record["key"]["goal"], "fix-login-bug");
    assert_eq!(record["head"]["next_seq"], 7);
    let (_, none) = server.get("/v1/runs?status=completed");
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);
    let (_, state) = server.get(&format!("{SESSION}/state?at=2"));
    assert_eq!(state["last_seq"], 2);
    assert_eq!(state["transcript"].as_array().unwrap().len(), 2);
    let (_, page) = server.get(&format!("{SESSION}/events?from=2&limit=2"));
    let seqs: Vec<u64> = page["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|envelope| envelope["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(page["next"], 4);
    let (_, last) = server.get(&format!("{SESSION}/history?from=5"));
    assert_eq!(last["envelopes"].as_array().unwrap().len(), 2);
    assert_eq!(last["next"], Value::Null);
    let (_, verified) = server.get(&format!("{SESSION}/verify"));
    assert_eq!(verified["events"], 7);
    let (_, outline) = server.get("/ui/outline/fix-login-bug/0/orchestrator-0");
    assert_eq!(outline["len"], 7);
    assert_eq!(outline["phases"][0]["name"], "investigate");
    assert_eq!(outline["phases"][0]["end"], 3);
    assert_eq!(outline["phases"][1]["end"], Value::Null);
}

#[test]
fn ui_errors_carry_the_library_code_status_and_details() {
    let (_dir, db) = session_db();
    let server = Server::start(&db, &[]);
    let (status, missing) = server.get("/v1/runs/nope/0/x");
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "not_found");
    assert_eq!(missing["error"]["run"]["goal"], "nope");
    let (status, bad) = server.get("/v1/runs/nope/zero/x");
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "invalid_request");
    let (status, too_many) = server.get(&format!("{SESSION}/events?limit=20000"));
    assert_eq!(status, 400);
    assert_eq!(too_many["error"]["code"], "invalid_request");

    let run = serde_json::json!({"goal": "written", "episode": 0, "agent": "a"});
    let (status, begun) = server.post("/v1/runs", &serde_json::json!({"run": run, "meta": {}}));
    assert_eq!(status, 201, "{begun}");
    assert_eq!(begun["handle"]["next_seq"], 1);
    let step = serde_json::json!([{"type": "turn_completed"}]);
    let (status, appended) = server.post(
        "/v1/runs/written/0/a/events",
        &serde_json::json!({"epoch": 0, "expected_seq": 1, "events": step}),
    );
    assert_eq!(status, 200, "{appended}");
    assert_eq!(appended["envelopes"][0]["seq"], 1);
    assert_eq!(appended["handle"]["next_seq"], 2);
    let (status, conflict) = server.post(
        "/v1/runs/written/0/a/events",
        &serde_json::json!({"epoch": 0, "expected_seq": 1, "events": step}),
    );
    assert_eq!(status, 409);
    assert_eq!(conflict["error"]["code"], "conflict");
    assert_eq!(
        conflict["error"]["details"],
        serde_json::json!({"expected": 1, "actual": 2})
    );
    let (_, resumed) = server.post("/v1/runs/written/0/a/resume", &serde_json::json!({}));
    assert_eq!(resumed["handle"]["epoch"], 1);
    let (status, fenced) = server.post(
        "/v1/runs/written/0/a/events",
        &serde_json::json!({"epoch": 0, "expected_seq": 3, "events": step}),
    );
    assert_eq!(status, 409);
    assert_eq!(fenced["error"]["code"], "fenced");
    assert_eq!(fenced["error"]["details"]["current"], 1);
    let (status, invalid) = server.post("/v1/runs/written/0/a/events", &serde_json::json!({"epoch": 1}));
    assert_eq!(status, 400);
    assert_eq!(invalid["error"]["code"], "invalid_request");
}

#[test]
fn ui_refuses_a_non_loopback_address_without_a_token() {
    let (_dir, db) = session_db();
    let line = fails_with(&rj(&db, &["ui", "--listen", "0.0.0.0:0"]), "usage");
    assert!(line.contains("not a loopback address"), "{line}");
}

#[test]
fn ui_with_a_token_refuses_api_requests_without_it() {
    let (dir, db) = session_db();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let server = Server::start(&db, &["--token-file", token.to_str().unwrap()]);
    let (status, refused) = server.get("/v1/health");
    assert_eq!(status, 401);
    assert_eq!(refused["error"]["code"], "unauthorized");
    let (status, _) = server.request("GET", "/v1/health", &["authorization: Bearer wrong"], "");
    assert_eq!(status, 401);
    let (status, _) = server.request("GET", "/v1/health", &["authorization: Bearer s3cret-token"], "");
    assert_eq!(status, 200);
    let (status, _) = server.get("/v1/health?access_token=s3cret-token");
    assert_eq!(status, 200);
    let (status, _) = server.request("GET", "/", &[], "");
    assert_eq!(status, 200, "the page itself needs no token");
}

/// The `id:` lines of a subscription until `last` arrived (or the deadline).
fn subscription_ids(server: &Server, path: &str, headers: &str, last: u64) -> Vec<u64> {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n{headers}\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    loop {
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .map(|id| id.parse().unwrap())
            .collect();
        if ids.last() == Some(&last) || Instant::now() > deadline {
            return ids;
        }
        match stream.read(&mut buffer) {
            Ok(0) => return ids,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock || error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => panic!("{error}"),
        }
    }
}

#[test]
fn ui_subscription_resumes_after_last_event_id_without_gap_or_duplicate() {
    let (_dir, db) = session_db();
    let server = Server::start(&db, &[]);
    let ids = subscription_ids(&server, &format!("{SESSION}/subscribe?from=4"), "", 6);
    assert_eq!(ids, [4, 5, 6]);
    let ids = subscription_ids(
        &server,
        &format!("{SESSION}/subscribe?from=0"),
        "last-event-id: 4\r\n",
        6,
    );
    assert_eq!(ids, [5, 6], "Last-Event-ID overrides from and resumes after it");
}

#[test]
fn ui_on_a_database_another_ui_holds_goes_through_its_socket() {
    let (_dir, db) = session_db();
    let owner = Server::start(&db, &[]);
    let socket = db.join("runjournal.sock");
    assert!(socket.exists(), "the owner serves the API on the database's socket");
    let (second, line) = Server::start_line(&db, &[]);
    assert!(line.contains("through the owner's socket"), "{line}");
    let (status, runs) = second.get("/v1/runs");
    assert_eq!(status, 200);
    assert_eq!(runs["runs"][0]["key"]["goal"], "fix-login-bug");
    let (_, outline) = second.get("/ui/outline/fix-login-bug/0/orchestrator-0");
    assert_eq!(outline["len"], 7);
    assert_eq!(
        outline["marks"].as_array().unwrap().last().unwrap()["type"],
        "agent_died"
    );
    // Both pages see a write made through either.
    let run = serde_json::json!({"goal": "shared", "episode": 0, "agent": "a"});
    let (status, _) = second.post("/v1/runs", &serde_json::json!({"run": run, "meta": {}}));
    assert_eq!(status, 201);
    let (_, record) = owner.get("/v1/runs/shared/0/a");
    assert_eq!(record["head"]["next_seq"], 1);
    drop(second);
    drop(owner);
}

/// Sends `signal` (`INT`, `TERM`) to `child`.
fn send(signal: &str, child: &Child) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits for `ui` to exit on its own (polling, with a deadline).
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "ui did not stop on its signal");
        std::thread::yield_now();
    }
}

#[test]
fn ui_stops_cleanly_on_sigint_sent_as_soon_as_it_prints_its_address() {
    let (_dir, db) = session_db();
    let socket = db.join("runjournal.sock");
    // The signal races the accept loop's start: repeated to make the window matter.
    for attempt in 0..8 {
        let (mut server, line) = Server::start_line(&db, &[]);
        assert!(line.contains("serving"), "{line}");
        send("INT", &server.child);
        let status = wait_exit(&mut server.child);
        assert!(status.success(), "attempt {attempt}: ui ended with {status}");
        assert!(!socket.exists(), "attempt {attempt}: the socket was left behind");
    }
}

#[test]
fn ui_stops_cleanly_on_sigint_sent_as_soon_as_its_socket_appears() {
    let (_dir, db) = session_db();
    let socket = db.join("runjournal.sock");
    for attempt in 0..8 {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args(["ui", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "attempt {attempt}: the socket never appeared"
            );
            std::thread::yield_now();
        }
        send("INT", &child);
        let status = wait_exit(&mut child);
        assert!(status.success(), "attempt {attempt}: ui ended with {status}");
        assert!(!socket.exists(), "attempt {attempt}: the socket was left behind");
    }
}
