//! A small blocking HTTP/1.1 client over a Unix socket or TCP, for the
//! served API's tests: raw requests, chunked bodies, SSE events.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared test helpers, each file uses a part; a failed call fails the test"
)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The error code of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

pub fn connect(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// The bytes of a request with `Connection: close`.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: runjournal\r\nconnection: close\r\n");
    for (name, value) in headers {
        write!(out, "{name}: {value}\r\n").unwrap();
    }
    if let Some(body) = body {
        write!(
            out,
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )
        .unwrap();
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Sends `bytes` and reads the answer until the server closes.
pub fn exchange(mut stream: impl Read + Write, bytes: &[u8]) -> Reply {
    stream.write_all(bytes).unwrap();
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)
}

pub fn call(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Reply {
    exchange(
        connect(socket),
        &request_bytes(method, path, &[], body.map(str::as_bytes)),
    )
}

pub fn get(socket: &Path, path: &str) -> Reply {
    call(socket, "GET", path, None)
}

pub fn post(socket: &Path, path: &str, body: &serde_json::Value) -> Reply {
    call(socket, "POST", path, Some(&body.to_string()))
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    (status, headers)
}

pub fn read_reply(reader: &mut impl BufRead) -> Reply {
    let (status, headers) = read_head(reader);
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|value| value.contains("chunked"))
    {
        while let Some(chunk) = read_chunk(reader) {
            reply.body.extend_from_slice(&chunk);
        }
    } else if let Some(length) = reply
        .header("content-length")
        .and_then(|length| length.parse::<usize>().ok())
    {
        reply.body.resize(length, 0);
        reader.read_exact(&mut reply.body).unwrap();
    } else {
        reader.read_to_end(&mut reply.body).unwrap();
    }
    reply
}

/// The next chunk of a chunked body; `None` at its end.
fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// One Server-Sent Event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// A subscription being read.
pub struct Sse {
    pub status: u16,
    reader: BufReader<UnixStream>,
    pending: String,
}

impl Sse {
    pub fn open(socket: &Path, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut stream = connect(socket);
        stream.write_all(&request_bytes("GET", path, headers, None)).unwrap();
        let mut reader = BufReader::new(stream);
        let (status, _) = read_head(&mut reader);
        Sse {
            status,
            reader,
            pending: String::new(),
        }
    }

    /// The next event that is not a comment; `None` when the stream ended.
    pub fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut any = false;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim_start().to_string());
                        any = true;
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event.event = Some(value.trim_start().to_string());
                        any = true;
                    } else if let Some(value) = line.strip_prefix("data:") {
                        event.data.push_str(value.trim_start());
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            let chunk = read_chunk(&mut self.reader)?;
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
