//! One request sent from the caller's own thread on a blocking connection:
//! the path of a blocking append, with no hop to the client's runtime (the
//! caller writes the request and sleeps in `read` until the owner answers).
//!
//! Invariants:
//! - A blocking connection holds one of the client's `max_connections`
//!   permits while it is in use; with none free the caller takes the
//!   runtime's path, which waits for one.
//! - An answer is read within bounds: a head of at most [`MAX_HEAD`] bytes
//!   with a `content-length` (no chunked body, no `1xx`) and a body of at most
//!   [`MAX_BODY`] bytes; anything else is a protocol error and the
//!   connection is dropped. [`parse_head`] is a pure function of the bytes.
//! - A request is retried once, on a fresh connection, only when it was not
//!   written whole on a reused one (the owner acts only on a whole request);
//!   once written, a lost answer makes a write's outcome unknown.
//! - A connection goes back to the pool only after a whole answer with
//!   nothing after it and no `connection: close`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::StatusCode;

use super::{Endpoint, Failure, Shared, IDLE_REUSE};

/// The most bytes of an answer's status line and headers.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// A Unix connection idle for less than this is reused without a probe
/// (the server closes idle ones after its header timeout, 10 s by default).
const UNPROBED_IDLE: Duration = Duration::from_secs(1);
/// The most bytes of an answer's body.
pub(crate) const MAX_BODY: usize = 256 * 1024 * 1024;

/// The blocking connections not in use, and the headers every request sends.
pub(crate) struct BlockingPool {
    idle: Mutex<Vec<(Instant, Conn)>>,
    /// `host`, `content-type` and (TCP) `authorization` lines; `None` when
    /// the host or token is not a valid header value (the runtime's path
    /// then reports it).
    headers: Option<String>,
}

impl BlockingPool {
    pub(crate) fn new(endpoint: &Endpoint, token: Option<&str>) -> BlockingPool {
        let valid = |value: &str| hyper::header::HeaderValue::from_str(value).is_ok();
        let host = endpoint.host();
        let mut headers = format!("host: {host}\r\ncontent-type: application/json\r\n");
        let mut usable = valid(host);
        if let Some(token) = token {
            let value = format!("Bearer {token}");
            usable &= valid(&value);
            headers.push_str("authorization: ");
            headers.push_str(&value);
            headers.push_str("\r\n");
        }
        BlockingPool {
            idle: Mutex::new(Vec::new()),
            headers: usable.then_some(headers),
        }
    }

    fn take(&self) -> Option<Conn> {
        loop {
            let (since, mut conn) = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()?;
            let idle = since.elapsed();
            // A Unix socket whose server end closed refuses a write at once
            // (`EPIPE`: unsent, retried), so one just used needs no probe; a
            // TCP connection may take a write its peer already closed.
            let fresh = matches!(conn, Conn::Unix(_)) && idle < UNPROBED_IDLE;
            if idle < IDLE_REUSE && (fresh || conn.is_open()) {
                return Some(conn);
            }
        }
    }

    fn give_back(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((Instant::now(), conn));
    }
}

/// A blocking stream to the server.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn open(endpoint: &Endpoint, timeout: Duration) -> std::io::Result<Conn> {
        let conn = match endpoint {
            Endpoint::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
            Endpoint::Tcp(authority) => {
                let stream = TcpStream::connect(authority.as_str())?;
                // Small requests answered at once: no Nagle delay.
                stream.set_nodelay(true)?;
                Conn::Tcp(stream)
            }
        };
        conn.set_timeouts(Some(timeout))?;
        Ok(conn)
    }

    fn set_timeouts(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Conn::Unix(stream) => {
                stream.set_read_timeout(timeout)?;
                stream.set_write_timeout(timeout)
            }
            Conn::Tcp(stream) => {
                stream.set_read_timeout(timeout)?;
                stream.set_write_timeout(timeout)
            }
        }
    }

    fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
        match self {
            Conn::Unix(stream) => stream.set_nonblocking(nonblocking),
            Conn::Tcp(stream) => stream.set_nonblocking(nonblocking),
        }
    }

    /// Whether an idle connection is still open: nothing to read yet (the
    /// server closed it: end of stream; anything else is out of protocol).
    fn is_open(&mut self) -> bool {
        if self.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let idle = matches!(self.read(&mut probe), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock);
        idle && self.set_nonblocking(false).is_ok()
    }
}

impl Read for Conn {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(stream) => stream.read(buffer),
            Conn::Tcp(stream) => stream.read(buffer),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(stream) => stream.write(buffer),
            Conn::Tcp(stream) => stream.write(buffer),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Unix(stream) => stream.flush(),
            Conn::Tcp(stream) => stream.flush(),
        }
    }
}

/// What an answer's head says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status code.
    pub(crate) status: u16,
    /// The body's length.
    pub(crate) length: usize,
    /// Whether the server closes the connection after this answer.
    pub(crate) close: bool,
}

/// Parses an answer's status line and headers (`head` without the blank
/// line that ends it).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the answer's head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let (version, rest) = status_line
        .split_once(' ')
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let close_by_default = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(format!("not an HTTP/1 answer: {status_line:?}")),
    };
    let code = rest
        .get(..3)
        .filter(|code| code.bytes().all(|byte| byte.is_ascii_digit()));
    let status: u16 = code
        .and_then(|code| code.parse().ok())
        .filter(|status| (200..600).contains(status))
        .ok_or_else(|| format!("not a final status: {status_line:?}"))?;
    if rest.len() > 3 && !rest[3..].starts_with(' ') {
        return Err(format!("not a final status: {status_line:?}"));
    }
    let mut length = None;
    let mut close = close_by_default;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = value
                .parse::<usize>()
                .ok()
                .filter(|_| !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()))
                .ok_or_else(|| format!("content-length {value:?} is not a length"))?;
            if length.is_some_and(|known| known != parsed) {
                return Err("two different content-lengths".into());
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("transfer-encoding {value:?} is not read here"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    let length = match (length, status) {
        (Some(length), _) => length,
        (None, 204 | 304) => 0,
        (None, _) => return Err("the answer has no content-length".into()),
    };
    if length > MAX_BODY {
        return Err(format!(
            "an answer body of {length} bytes is over the bound of {MAX_BODY}"
        ));
    }
    Ok(Head { status, length, close })
}

/// Why an exchange on one connection failed.
enum Broken {
    /// The request was not written whole: the server acted on nothing.
    Unsent(std::io::Error),
    /// The request was written; no whole answer came.
    Lost(String),
    /// The answer is not HTTP this client reads.
    Protocol(String),
}

impl Shared {
    /// `method path` with a JSON `body`, sent and answered on this thread;
    /// `None` when this call should take the runtime's path (no permit free,
    /// or headers hyper would refuse).
    pub(crate) fn exchange_blocking(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<Result<(StatusCode, Vec<u8>), Failure>> {
        let headers = self.blocking.headers.as_deref()?;
        let _permit = self.permits.try_acquire().ok()?;
        let mut request = Vec::with_capacity(headers.len() + path.len() + body.len() + 64);
        // Writing into a vector cannot fail.
        let _ = write!(
            request,
            "{method} {path} HTTP/1.1\r\n{headers}content-length: {}\r\n\r\n",
            body.len()
        );
        request.extend_from_slice(body);
        let write = method != "GET";
        let deadline = Instant::now() + self.timeout;
        let mut reused = self.blocking.take();
        loop {
            let fresh = reused.is_none();
            let mut conn = match reused.take() {
                Some(conn) => conn,
                None => match Conn::open(&self.endpoint, self.timeout) {
                    Ok(conn) => conn,
                    Err(error) => return Some(Err(Failure::Transport(self.unreachable(&error.to_string())))),
                },
            };
            match exchange_on(&mut conn, &request, deadline, self.timeout) {
                Ok((head, answer)) => {
                    if !head.close {
                        self.blocking.give_back(conn);
                    }
                    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return Some(Ok((status, answer)));
                }
                // A reused connection the server had closed: once more on a fresh one.
                Err(Broken::Unsent(_)) if !fresh => {}
                Err(Broken::Unsent(error)) => {
                    return Some(Err(Failure::Transport(self.unreachable(&error.to_string()))))
                }
                Err(Broken::Lost(detail)) => return Some(Err(Failure::Transport(self.lost(write, &detail)))),
                Err(Broken::Protocol(detail)) => return Some(Err(self.protocol(&detail))),
            }
        }
    }
}

/// Writes `request` and reads one whole answer before `deadline`.
fn exchange_on(
    conn: &mut Conn,
    request: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<(Head, Vec<u8>), Broken> {
    conn.write_all(request).map_err(Broken::Unsent)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let mut first = true;
    let mut narrowed = false;
    let mut read_more = |conn: &mut Conn, buffer: &mut Vec<u8>| -> Result<(), Broken> {
        if !first {
            // The connection's timeout bounds one read; the deadline, the whole answer.
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| Broken::Lost("no whole answer within the timeout".into()))?;
            conn.set_timeouts(Some(left))
                .map_err(|error| Broken::Lost(error.to_string()))?;
            narrowed = true;
        }
        first = false;
        match conn.read(&mut chunk) {
            Ok(0) => Err(Broken::Lost(
                "the server closed the connection before its answer".into(),
            )),
            Ok(count) => {
                buffer.extend_from_slice(&chunk[..count]);
                Ok(())
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(Broken::Lost("no answer within the timeout".into()))
            }
            Err(error) => Err(Broken::Lost(error.to_string())),
        }
    };
    let head_end = loop {
        if let Some(end) = find_blank_line(&buffer) {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(Broken::Protocol(format!("an answer head over {MAX_HEAD} bytes")));
        }
        read_more(conn, &mut buffer)?;
    };
    if head_end > MAX_HEAD {
        return Err(Broken::Protocol(format!("an answer head over {MAX_HEAD} bytes")));
    }
    let head = parse_head(&buffer[..head_end]).map_err(Broken::Protocol)?;
    let body_start = head_end + 4;
    while buffer.len() < body_start + head.length {
        read_more(conn, &mut buffer)?;
    }
    if buffer.len() > body_start + head.length {
        return Err(Broken::Protocol("bytes after the answer's body".into()));
    }
    if narrowed {
        // The next exchange on it gets its whole timeout again.
        conn.set_timeouts(Some(timeout))
            .map_err(|error| Broken::Protocol(error.to_string()))?;
    }
    buffer.drain(..body_start);
    Ok((head, buffer))
}

/// Where the first `\r\n\r\n` starts.
fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|window| window == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_head_gives_its_status_length_and_keep_alive() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 12").unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                length: 12,
                close: false
            }
        );
        let head = parse_head(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 3\r\nconnection: close").unwrap();
        assert_eq!((head.status, head.length, head.close), (429, 3, true));
        let head = parse_head(b"HTTP/1.0 200 OK\r\ncontent-length: 0").unwrap();
        assert!(head.close);
    }

    #[test]
    fn an_answer_head_this_client_cannot_read_is_refused() {
        for head in [
            &b"HTTP/1.1 200 OK"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked",
            b"HTTP/1.1 100 Continue\r\ncontent-length: 0",
            b"HTTP/2 200\r\ncontent-length: 0",
            b"HTTP/1.1 2000 OK\r\ncontent-length: 0",
            b"HTTP/1.1 20 OK\r\ncontent-length: 0",
            b"HTTP/1.1 200 OK\r\ncontent-length: +1",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999",
            b"HTTP/1.1 200 OK\r\ncontent-length: 999999999999",
            b"HTTP/1.1 200 OK\r\nno colon",
            b"\xff\xfe",
        ] {
            assert!(parse_head(head).is_err(), "{:?}", String::from_utf8_lossy(head));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_as_an_answer_head_parse_or_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            if let Ok(head) = parse_head(&bytes) {
                proptest::prop_assert!(head.length <= MAX_BODY);
                proptest::prop_assert!((200..600).contains(&head.status));
            }
        }
    }
}
