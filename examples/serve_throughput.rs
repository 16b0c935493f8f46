//! Durable appends through the served API's Unix socket with 1 and 64
//! clients (keep-alive connections, one run each, one step per request),
//! beside the embedded journal with 64 writer threads, in the same run on
//! the same disk. Prints events per second and the socket/embedded ratio.
//!
//! Run with `cargo run --release --example serve_throughput [EVENTS_PER_WRITER]`
//! (default 200).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use runjournal::{Journal, Message, Options, Role, RunKey, RunMeta, ServeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args().nth(1).map_or(Ok(200), |text| text.parse())?;
    let content = "x".repeat(256);
    let base = std::env::temp_dir().join(format!("runjournal-serve-throughput-{}", std::process::id()));
    let embedded = embedded_rate(&base.join("embedded"), 64, events, &content)?;
    println!("embedded, durable, 64 writers: {embedded:.0} events/s");
    let mut socket_rates = Vec::new();
    for clients in [1, 64] {
        let rate = socket_rate(&base.join(format!("socket-{clients}")), clients, events, &content)?;
        println!(
            "socket, durable, {clients} client{}: {rate:.0} events/s",
            if clients == 1 { "" } else { "s" }
        );
        socket_rates.push(rate);
    }
    println!(
        "64 socket clients / 64 embedded writers = {:.2}",
        socket_rates[1] / embedded
    );
    std::fs::remove_dir_all(&base)?;
    Ok(())
}

fn embedded_rate(db: &Path, writers: u32, events: u64, content: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let journal = Journal::open(db, Options::default())?;
    let runs = (0..writers)
        .map(|writer| {
            journal
                .begin(RunKey::new("bench", writer, "a")?, RunMeta::default())
                .map_err(Into::into)
        })
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for run in &runs {
            scope.spawn(move || {
                for _ in 0..events {
                    if let Err(error) = run.step(vec![Message::new(Role::Assistant, content)]) {
                        eprintln!("append failed: {error}");
                        return;
                    }
                }
            });
        }
    });
    Ok(per_second(u64::from(writers) * events, started))
}

fn socket_rate(db: &Path, clients: u32, events: u64, content: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let journal = Journal::open(db, Options::default())?;
    let server = journal.serve(ServeOptions::default())?;
    let socket = server.socket_path().ok_or("no socket")?.to_path_buf();
    let step = serde_json::json!({"type": "step", "messages": [{"role": "assistant", "content": content}]});
    let mut connections = Vec::new();
    for client in 0..clients {
        let mut connection = Connection::open(&socket)?;
        let key = serde_json::json!({"goal": "bench", "episode": client, "agent": "a"});
        let status = connection.post("/v1/runs", &serde_json::json!({"run": key}).to_string())?;
        if status != 201 {
            return Err(format!("begin answered {status}").into());
        }
        connections.push((client, connection));
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (client, connection) in &mut connections {
            let step = &step;
            scope.spawn(move || {
                for seq in 1..=events {
                    let body = serde_json::json!({"epoch": 0, "expected_seq": seq, "events": [step]}).to_string();
                    match connection.post(&format!("/v1/runs/bench/{client}/a/events"), &body) {
                        Ok(200) => {}
                        other => {
                            eprintln!("append answered {other:?}");
                            return;
                        }
                    }
                }
            });
        }
    });
    let rate = per_second(u64::from(clients) * events, started);
    server.close();
    Ok(rate)
}

#[expect(clippy::cast_precision_loss, reason = "event counts far below 2^52")]
fn per_second(events: u64, started: Instant) -> f64 {
    events as f64 / started.elapsed().as_secs_f64()
}

/// A keep-alive HTTP/1.1 connection over the socket.
struct Connection {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Connection {
    fn open(socket: &Path) -> std::io::Result<Connection> {
        let writer = UnixStream::connect(socket)?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Connection { writer, reader })
    }

    /// Posts `body` and reads the answer; returns its status.
    fn post(&mut self, path: &str, body: &str) -> std::io::Result<u16> {
        write!(
            self.writer,
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut answer = vec![0; length];
        self.reader.read_exact(&mut answer)?;
        Ok(status)
    }
}
