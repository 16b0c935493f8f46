//! The HTTP/1.1 client: its runtime, its connection pool, one exchange.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::error::{Failure, RemoteError, WireFailure};
use super::ConnectOptions;
use crate::options::{Durability, Options};

use crate::wire::SOCKET_NAME;

mod upload;
pub(crate) use upload::UploadError;

/// An idle connection older than this is dropped rather than reused: the
/// server closes idle connections after 60 s, and a write sent on one it is
/// closing could not be told from a write it received.
const IDLE_REUSE: Duration = Duration::from_secs(20);

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(authority) => write!(f, "http://{authority}"),
        }
    }
}

impl Endpoint {
    /// `http://host:port[/]` is TCP; anything else is a database path (its
    /// socket inside it) or the socket file itself.
    pub(crate) fn parse(target: &Path) -> Result<Endpoint, RemoteError> {
        let text = target.to_string_lossy();
        if let Some(rest) = text.strip_prefix("http://") {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(RemoteError::Unreachable {
                    endpoint: text.into_owned(),
                    detail: "an address is http://host:port, with no path".into(),
                });
            }
            return Ok(Endpoint::Tcp(authority.to_string()));
        }
        if text.starts_with("https://") {
            return Err(RemoteError::Unreachable {
                endpoint: text.into_owned(),
                detail: "https is not served; use http:// behind a TLS proxy, or the Unix socket".into(),
            });
        }
        let is_socket = std::fs::metadata(target)
            .is_ok_and(|metadata| std::os::unix::fs::FileTypeExt::is_socket(&metadata.file_type()));
        if is_socket || target.file_name().is_some_and(|name| name == SOCKET_NAME) {
            return Ok(Endpoint::Unix(target.to_path_buf()));
        }
        Ok(Endpoint::Unix(target.join(SOCKET_NAME)))
    }

    fn host(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "localhost",
            Endpoint::Tcp(authority) => authority,
        }
    }
}

/// A connected journal's client: owns its runtime; cheap to share.
pub(crate) struct Client {
    pub(crate) shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    options: Options,
}

/// What every request needs, shared with the tasks on the client's runtime.
pub(crate) struct Shared {
    pub(crate) endpoint: Endpoint,
    token: Option<String>,
    idle: Mutex<Vec<(Instant, SendRequest<Full<Bytes>>)>>,
    permits: Semaphore,
    timeout: Duration,
    pub(crate) handle: tokio::runtime::Handle,
    /// The durability every write asks for, when not the owner's default.
    pub(crate) durability: Option<Durability>,
    /// The appends waiting for a request.
    pub(crate) coalescer: super::coalesce::Coalescer,
}

impl Client {
    /// Starts the runtime and checks that the server answers as runjournal's.
    pub(crate) fn connect(target: &Path, options: ConnectOptions) -> Result<Client, RemoteError> {
        let endpoint = Endpoint::parse(target)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("runjournal-client")
            .enable_all()
            .build()
            .map_err(|error| RemoteError::Runtime {
                detail: error.to_string(),
            })?;
        let shared = Arc::new(Shared {
            endpoint,
            token: options.token,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(options.max_connections.max(1)),
            timeout: options.timeout,
            handle: runtime.handle().clone(),
            durability: options.durability_override,
            coalescer: super::coalesce::Coalescer::default(),
        });
        let client = Client {
            shared,
            runtime: Some(runtime),
            options: options.options,
        };
        let health: serde_json::Value = client
            .block({
                let shared = client.shared.clone();
                async move { shared.call(Method::GET, "/v1/health", None::<&()>).await }
            })
            .map_err(Failure::into_remote)?;
        if health.get("server").and_then(serde_json::Value::as_str) != Some("runjournal") {
            return Err(RemoteError::Protocol {
                endpoint: client.shared.endpoint.to_string(),
                detail: format!("GET /v1/health answered {health}, not a runjournal server"),
            });
        }
        Ok(client)
    }

    /// The options the connection was made with.
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// Where the server listens.
    pub(crate) fn endpoint(&self) -> String {
        self.shared.endpoint.to_string()
    }

    /// Runs `work` on the client's runtime and waits for it on this thread
    /// (any thread: the wait is a channel, not the caller's runtime).
    pub(crate) fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Failure>> + Send + 'static,
    ) -> Result<T, Failure> {
        self.block_raw(work).unwrap_or_else(|| Err(self.shared.stopped()))
    }

    /// [`Client::block`] for any answer; `None` when the task never finished
    /// (the runtime stopped).
    pub(crate) fn block_raw<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        self.shared.block_raw(work)
    }

    /// Runs `work` on the client's runtime and awaits it (from any runtime);
    /// `None` when the task never finished (the runtime stopped).
    pub(crate) async fn run_raw<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        match self.shared.handle.spawn(work).await {
            Ok(result) => Some(result),
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => None,
            },
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime;
        // shutting it down in the background never blocks.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    /// Runs `work` on the client's runtime and waits for it on this thread;
    /// `None` when the task never finished (the runtime stopped).
    pub(crate) fn block_raw<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        // A std channel parks the waiting thread after a short spin (no
        // `sched_yield` loop): with many caller threads on few cores, yielding
        // waiters take the CPU the runtime needs to answer them.
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            // The caller waits on the receiver; it is gone only if it panicked.
            drop(sender.send(work.await));
        });
        receiver.recv().ok()
    }

    /// The failure of a call whose task did not finish (the runtime stopped).
    pub(crate) fn stopped(&self) -> Failure {
        Failure::Transport(RemoteError::OutcomeUnknown {
            endpoint: self.endpoint.to_string(),
            detail: "the client's runtime stopped before the call finished".into(),
        })
    }

    /// A request with a JSON body (or none) whose JSON answer is `T`.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Failure> {
        let bytes = match body {
            Some(body) => Bytes::from(serde_json::to_vec(body).map_err(|error| self.protocol(&error))?),
            None => Bytes::new(),
        };
        self.call_raw(method, path, bytes).await
    }

    /// A call whose body is already-encoded JSON.
    pub(crate) async fn call_raw<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<T, Failure> {
        let (status, answer) = self.exchange(method, path, body).await?;
        self.json_answer(path, status, &answer)
    }

    /// The JSON of a success answer to `path`, the typed failure of another.
    fn json_answer<T: DeserializeOwned>(&self, path: &str, status: StatusCode, answer: &[u8]) -> Result<T, Failure> {
        if !status.is_success() {
            return Err(self.failure(status, answer));
        }
        serde_json::from_slice(answer).map_err(|error| {
            Failure::Transport(RemoteError::Protocol {
                endpoint: self.endpoint.to_string(),
                detail: format!("{path} answered a body that is not the expected JSON: {error}"),
            })
        })
    }

    /// A GET whose answer is bytes (a state as a snapshot record).
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Bytes, Failure> {
        let (status, answer) = self.exchange(Method::GET, path, Bytes::new()).await?;
        if !status.is_success() {
            return Err(self.failure(status, &answer));
        }
        Ok(answer)
    }

    fn protocol(&self, error: &dyn fmt::Display) -> Failure {
        Failure::Transport(RemoteError::Protocol {
            endpoint: self.endpoint.to_string(),
            detail: error.to_string(),
        })
    }

    /// The typed failure of an error answer.
    pub(crate) fn failure(&self, status: StatusCode, body: &[u8]) -> Failure {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: WireFailure,
        }
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { mut error }) => {
                error.status = status.as_u16();
                error.endpoint = self.endpoint.to_string();
                Failure::Answer(Box::new(error))
            }
            Err(_) => Failure::Transport(RemoteError::Protocol {
                endpoint: self.endpoint.to_string(),
                detail: format!(
                    "status {status} with a body that is not an error object: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            }),
        }
    }

    /// One request and its whole answer, on a pooled connection, within the timeout.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let write = method != Method::GET;
        match tokio::time::timeout(self.timeout, self.exchange_untimed(method, path, body)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Transport(
                self.lost(write, &format!("no answer within {} s", self.timeout.as_secs())),
            )),
        }
    }

    async fn exchange_untimed(&self, method: Method, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), Failure> {
        let write = method != Method::GET;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Transport(self.lost(false, "the connection pool closed")))?;
        let mut retried = false;
        loop {
            let mut sender = match self.take_idle().await {
                Some(sender) => sender,
                None => self.open().await.map_err(Failure::Transport)?,
            };
            let request = self
                .request(method.clone(), path, body.clone())
                .map_err(Failure::Transport)?;
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let answer = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|error| Failure::Transport(self.lost(write, &error.to_string())))?
                        .to_bytes();
                    self.give_back(sender);
                    return Ok((status, answer));
                }
                Err(mut error) => {
                    // Not sent at all, or a read that may be repeated: once more
                    // on a fresh connection.
                    let unsent = error.take_message().is_some();
                    if !retried && (unsent || !write) {
                        retried = true;
                        continue;
                    }
                    let detail = error.into_error().to_string();
                    return Err(Failure::Transport(if unsent {
                        self.unreachable(&detail)
                    } else {
                        self.lost(write, &detail)
                    }));
                }
            }
        }
    }

    /// A streamed answer (a subscription, an export) on a connection of its own.
    pub(crate) async fn stream(
        &self,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, Failure> {
        let mut sender = self.open().await.map_err(Failure::Transport)?;
        let mut request = self
            .request(Method::GET, path, Bytes::new())
            .map_err(Failure::Transport)?;
        for (name, value) in headers {
            let value = header::HeaderValue::from_str(value).map_err(|error| self.protocol(&error))?;
            request.headers_mut().insert(*name, value);
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| Failure::Transport(self.unreachable(&error.to_string())))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| Failure::Transport(self.unreachable(&error.to_string())))?
            .to_bytes();
        Err(self.failure(status, &body))
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>, RemoteError> {
        self.request_head(method, path)
            .body(Full::new(body))
            .map_err(|error| RemoteError::Protocol {
                endpoint: self.endpoint.to_string(),
                detail: format!("could not build the request for {path}: {error}"),
            })
    }

    /// A request's method, path and headers (host, content type, token).
    fn request_head(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.endpoint.host())
            .header(header::CONTENT_TYPE, "application/json");
        match &self.token {
            Some(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
            None => builder,
        }
    }

    async fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let (since, mut sender) = {
                let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                idle.pop()?
            };
            if since.elapsed() < IDLE_REUSE && !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn give_back(&self, sender: SendRequest<Full<Bytes>>) {
        if !sender.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            idle.push((Instant::now(), sender));
        }
    }

    async fn open<B: RequestBody>(&self) -> Result<SendRequest<B>, RemoteError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|error| self.unreachable(&error.to_string()))?;
                self.handshake(stream).await
            }
            Endpoint::Tcp(authority) => {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|error| self.unreachable(&error.to_string()))?;
                // Small requests answered at once: no Nagle delay.
                drop(stream.set_nodelay(true));
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<S, B: RequestBody>(&self, stream: S) -> Result<SendRequest<B>, RemoteError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| self.unreachable(&error.to_string()))?;
        let endpoint = self.endpoint.to_string();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "connection to the journal's server ended");
            }
        });
        Ok(sender)
    }

    fn unreachable(&self, detail: &str) -> RemoteError {
        RemoteError::Unreachable {
            endpoint: self.endpoint.to_string(),
            detail: detail.to_string(),
        }
    }

    /// A connection lost after the request was sent: a write's outcome is unknown.
    fn lost(&self, write: bool, detail: &str) -> RemoteError {
        if write {
            RemoteError::OutcomeUnknown {
                endpoint: self.endpoint.to_string(),
                detail: detail.to_string(),
            }
        } else {
            self.unreachable(detail)
        }
    }
}

pub(crate) use crate::wire::{encode_segment, run_path};

/// A body a request may carry: a whole one, or a streamed upload.
trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_tcp_address_or_a_database_path() {
        assert_eq!(
            Endpoint::parse(Path::new("http://127.0.0.1:7070/")).ok(),
            Some(Endpoint::Tcp("127.0.0.1:7070".into()))
        );
        assert_eq!(
            Endpoint::parse(Path::new("/data/journal.db")).ok(),
            Some(Endpoint::Unix(PathBuf::from("/data/journal.db/runjournal.sock")))
        );
        assert_eq!(
            Endpoint::parse(Path::new("/data/journal.db/runjournal.sock")).ok(),
            Some(Endpoint::Unix(PathBuf::from("/data/journal.db/runjournal.sock")))
        );
        assert!(Endpoint::parse(Path::new("https://host:1")).is_err());
    }
}
