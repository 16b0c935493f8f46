//! A request body streamed from a blocking reader (a connected `import`):
//! the caller's thread reads the input in bounded chunks and hands them to
//! the request, which runs on the client's runtime on a connection of its own.
//!
//! Invariants:
//! - The client holds at most [`QUEUED`] chunks of [`CHUNK`] bytes (plus the
//!   one being read): the input is never buffered whole.
//! - A body that did not reach the end of the input never ends cleanly: a
//!   read error, a stalled connection or a dropped caller aborts it (an error
//!   frame, so the connection is cut without the last chunk), and the
//!   server's import, which stores nothing unless it read the whole input,
//!   stores nothing.
//! - An upload is never retried (its body cannot be sent again); a connection
//!   lost after it opened makes the outcome unknown.

use std::io::{BufRead, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame};
use hyper::Method;
use serde::de::DeserializeOwned;

use super::{Failure, RemoteError, Shared};

/// The most bytes read from the input into one chunk.
pub(crate) const CHUNK: usize = 64 * 1024;
/// The most chunks read ahead of the connection.
pub(crate) const QUEUED: usize = 4;

/// Why an upload failed.
pub(crate) enum UploadError {
    /// Reading the input failed; the request was aborted (nothing stored).
    Read(std::io::Error),
    /// The request failed or was refused.
    Request(Failure),
}

/// The body: chunks from the reading thread, ending with an error frame
/// unless the reader reached the end of the input.
struct ChannelBody {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    /// Signalled after each chunk taken: the reader may queue another.
    space: crossbeam_channel::Sender<()>,
    /// Set (before the channel closes) when the reader stopped short.
    aborted: Arc<AtomicBool>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                // A full signal slot already says there is space.
                let _ = self.space.try_send(());
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(None) if self.aborted.load(Ordering::Acquire) => Poll::Ready(Some(Err(std::io::Error::other(
                "the upload stopped before the end of its input",
            )))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Tells the reading side that the server answered (its head arrived): an
/// answer before the end of the input is a refusal, and the rest of the input
/// is neither read nor sent (the server drains only a little of it).
struct Answered {
    flag: Arc<AtomicBool>,
    /// Wakes a reader waiting for space.
    space: crossbeam_channel::Sender<()>,
}

impl Answered {
    fn mark(&self) {
        self.flag.store(true, Ordering::Release);
        // A full signal slot already wakes the reader.
        let _ = self.space.try_send(());
    }
}

/// How the reading side ended.
enum Fed {
    /// The whole input was handed to the body.
    Whole,
    /// The request ended first (the server answered early, or failed).
    RequestEnded,
    /// Reading the input failed.
    ReadFailed(std::io::Error),
    /// The connection took no chunk within the timeout.
    Stalled,
}

impl Shared {
    /// POSTs `input` to `path` as a streamed body and returns the JSON answer.
    pub(crate) fn upload<T: DeserializeOwned + Send + 'static>(
        self: &Arc<Self>,
        path: &str,
        input: &mut dyn BufRead,
    ) -> Result<T, UploadError> {
        let (chunks, receiver) = tokio::sync::mpsc::channel(QUEUED);
        let (space_signal, space) = crossbeam_channel::bounded(1);
        let aborted = Arc::new(AtomicBool::new(false));
        let body = ChannelBody {
            chunks: receiver,
            space: space_signal,
            aborted: aborted.clone(),
        };
        let (answer_sender, answer) = crossbeam_channel::bounded(1);
        let answered = Answered {
            flag: Arc::new(AtomicBool::new(false)),
            space: body.space.clone(),
        };
        let answered_flag = answered.flag.clone();
        let shared = self.clone();
        let path = path.to_owned();
        self.handle.spawn(async move {
            // The caller waits on the receiver; it is gone only if it panicked.
            drop(answer_sender.send(shared.send_streamed::<T>(&path, body, &answered).await));
        });
        let fed = self.feed(input, &chunks, &space, &answered_flag);
        if !matches!(fed, Fed::Whole) {
            aborted.store(true, Ordering::Release);
        }
        drop(chunks);
        let result = match answer.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(Failure::Transport(self.lost(
                true,
                &format!("no answer within {} s of the end of the upload", self.timeout.as_secs()),
            ))),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(self.stopped()),
        };
        match fed {
            Fed::ReadFailed(error) => Err(UploadError::Read(error)),
            Fed::Stalled if result.is_err() => Err(UploadError::Request(Failure::Transport(self.lost(
                true,
                &format!(
                    "the server took no part of the upload within {} s",
                    self.timeout.as_secs()
                ),
            )))),
            Fed::Whole | Fed::RequestEnded | Fed::Stalled => result.map_err(UploadError::Request),
        }
    }

    /// Reads `input` chunk by chunk into `chunks`, waiting for space, until
    /// the input ends or the server answered.
    fn feed(
        &self,
        input: &mut dyn BufRead,
        chunks: &tokio::sync::mpsc::Sender<Bytes>,
        space: &crossbeam_channel::Receiver<()>,
        answered: &AtomicBool,
    ) -> Fed {
        loop {
            if answered.load(Ordering::Acquire) {
                return Fed::RequestEnded;
            }
            let mut chunk = Vec::with_capacity(CHUNK);
            match input.take(CHUNK as u64).read_to_end(&mut chunk) {
                Ok(0) => return Fed::Whole,
                Ok(_) => {}
                Err(error) => return Fed::ReadFailed(error),
            }
            let mut chunk = Bytes::from(chunk);
            loop {
                match chunks.try_send(chunk) {
                    Ok(()) => break,
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return Fed::RequestEnded,
                    Err(tokio::sync::mpsc::error::TrySendError::Full(again)) => {
                        chunk = again;
                        match space.recv_timeout(self.timeout) {
                            // A closed body shows as Closed on the next try.
                            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
                            Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Fed::Stalled,
                        }
                    }
                }
            }
        }
    }

    /// The request of an upload, on a connection of its own, never retried.
    async fn send_streamed<T: DeserializeOwned>(
        &self,
        path: &str,
        body: ChannelBody,
        answered: &Answered,
    ) -> Result<T, Failure> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Transport(self.lost(false, "the connection pool closed")))?;
        let mut sender = self.open::<ChannelBody>().await.map_err(Failure::Transport)?;
        let request = self.request_head(Method::POST, path).body(body).map_err(|error| {
            Failure::Transport(RemoteError::Protocol {
                endpoint: self.endpoint.to_string(),
                detail: format!("could not build the request for {path}: {error}"),
            })
        })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| Failure::Transport(self.lost(true, &error.to_string())))?;
        answered.mark();
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|error| Failure::Transport(self.lost(true, &error.to_string())))?
            .to_bytes();
        if !status.is_success() {
            return Err(self.failure(status, &answer));
        }
        serde_json::from_slice(&answer).map_err(|error| self.protocol(&error))
    }
}
