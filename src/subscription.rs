//! Subscriptions: a run's stored events from a seq, then its live events; or
//! every run's live events.
//!
//! Invariants:
//! - Registration happens on the writer thread between groups, which reports
//!   the run's head at that moment: stored events are read (verified) up to
//!   that head, live delivery starts exactly after it. No gap, no duplicate.
//! - Live events arrive only once applied and, in `Durable` mode, synced.
//! - A subscriber never slows writers: when its buffer is full the hub drops
//!   it, and after the buffered events it gets [`SubscribeError::Lagged`]
//!   naming the first event it missed.
//! - A subscription says why it ended: lagged, its run purged, the journal
//!   poisoned, its writer stopped, or the journal closed.
//! - A run subscription follows one run (by its internal id, never reused):
//!   a new run begun under a purged run's key never feeds it.
//! - On a store other processes write too (one with a [`Store::watch`]),
//!   a subscription follows the store instead ([`crate::follow`]): every
//!   event, from this process or another, is read from the store by seq.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use runjournal_core::{ChainReader, Envelope, RunKey, RunRecord, Store};

use crate::error::{ReadError, WriteError};
use crate::follow::Follow;
use crate::history::{own_chain_reader, walk_from};
use crate::hub::{Ended, LagPoint, Scope, Slot};
use crate::journal::Local;
use crate::remote::RemoteSubscription;
use crate::writer::{Command, Health, Reply, StoreFailure};

/// How many events are read from the store per catch-up step.
const CATCH_UP_CHUNK: u64 = 1024;

/// A subscription ended or cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The subscriber fell behind its buffer; subscribe again from `seq` of `run`.
    #[error("subscriber lagged: it missed run {} from seq {}; subscribe again from there", .0.run, .0.seq)]
    Lagged(LagPoint),
    /// The journal closed.
    #[error("the journal closed")]
    Closed,
    /// The subscribed run was purged: nothing more comes from it (a new run
    /// under the same key is another run: subscribe to it anew).
    #[error("run {run} was purged while subscribed: nothing more comes from it")]
    Purged {
        /// The run.
        run: RunKey,
    },
    /// A storage failure poisoned the journal: nothing more will come.
    #[error("the journal is poisoned by an earlier storage failure and refuses writes until reopened: {source}")]
    Poisoned {
        /// The failure that poisoned it.
        source: StoreFailure,
    },
    /// The journal's writer thread is gone (it panicked): nothing more will come.
    #[error("the journal's writer thread has stopped; reopen the journal")]
    WriterStopped,
    /// The thread feeding an async subscription could not be started.
    #[error("could not start the subscription's forwarding thread: {0}")]
    Thread(#[source] std::io::Error),
    /// Reading stored events failed (corruption is reported, never skipped).
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl SubscribeError {
    /// The error's stable machine code (see [`Error::code`](crate::Error::code)).
    pub fn code(&self) -> &'static str {
        match self {
            SubscribeError::Lagged(_) => "lagged",
            SubscribeError::Closed => "closed",
            SubscribeError::Purged { .. } => "purged",
            SubscribeError::Poisoned { .. } => "poisoned",
            SubscribeError::WriterStopped => "writer_stopped",
            SubscribeError::Thread(_) => "thread",
            SubscribeError::Read(error) => error.code(),
        }
    }
}

/// Registering on a writer that failed: the journal is poisoned (the failure
/// of the registration's group poisoned it too), or the writer is gone.
impl From<WriteError> for SubscribeError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Storage { source } | WriteError::Poisoned { source } => SubscribeError::Poisoned { source },
            WriteError::WriterStopped => SubscribeError::WriterStopped,
            WriteError::Remote(error) => SubscribeError::Read(ReadError::Remote(error)),
        }
    }
}

/// A blocking subscription. Also an [`Iterator`] that ends when the journal
/// closes (or, connected, when the owner ends the stream).
pub struct Subscription {
    backend: SubscriptionBackend,
}

#[expect(
    clippy::large_enum_variant,
    reason = "the embedded subscription stays inline: boxing it would add an indirection to every embedded receive"
)]
enum SubscriptionBackend {
    Local(LocalSubscription),
    Remote(RemoteSubscription),
}

/// The embedded backend of a [`Subscription`].
pub(crate) struct LocalSubscription {
    store: Arc<dyn Store>,
    catch_up: Option<CatchUp>,
    queue: VecDeque<Envelope>,
    receiver: crossbeam_channel::Receiver<Envelope>,
    /// Why the hub dropped this subscriber, when it did.
    end_reason: Arc<Mutex<Option<Ended>>>,
    /// The writer's health: why live delivery ended, when it did.
    health: Arc<Health>,
    ended: bool,
    /// Set on a store other processes write: everything comes from the store.
    follow: Option<Follow>,
}

struct CatchUp {
    record: RunRecord,
    reader: ChainReader,
    from_seq: u64,
    end_seq: u64,
}

impl Local {
    /// The embedded [`Journal::subscribe`].
    pub(crate) fn subscribe(&self, key: &RunKey, from_seq: u64, buffer: usize) -> Result<Subscription, SubscribeError> {
        let record = self.run_info(key)?;
        if let Some(follow) = Follow::run(&self.inner, record.clone(), from_seq)? {
            return Ok(self.following(follow));
        }
        self.register(Scope::Run(key.clone()), Some(record), from_seq, buffer)
    }

    /// The embedded [`Journal::subscribe_all`].
    pub(crate) fn subscribe_all(&self, buffer: usize) -> Result<Subscription, SubscribeError> {
        if let Some(follow) = Follow::all(&self.inner)? {
            return Ok(self.following(follow));
        }
        self.register(Scope::All, None, 0, buffer)
    }

    fn following(&self, follow: Follow) -> Subscription {
        Subscription::local(LocalSubscription {
            store: self.inner.store.clone(),
            catch_up: None,
            queue: VecDeque::new(),
            receiver: crossbeam_channel::never(),
            end_reason: Arc::new(Mutex::new(None)),
            health: self.inner.writer.health.clone(),
            ended: false,
            follow: Some(follow),
        })
    }

    fn register(
        &self,
        scope: Scope,
        record: Option<RunRecord>,
        from_seq: u64,
        buffer: usize,
    ) -> Result<Subscription, SubscribeError> {
        let (sender, receiver) = crossbeam_channel::bounded(buffer.max(1));
        let end_reason = Arc::new(Mutex::new(None));
        let slot = Slot {
            scope,
            run: record.as_ref().map(|record| record.id),
            sender,
            ended: end_reason.clone(),
        };
        let (reply, answer) = crate::oneshot::channel();
        let command = Command::Subscribe {
            slot,
            run: record.as_ref().map(|record| record.id),
            reply: Reply::Blocking(reply),
        };
        let live_from = self.call(command, answer)?.map_err(ReadError::from)?;
        let catch_up = match (record, live_from) {
            (Some(record), Some(live_from)) => {
                // The record read before registering may predate `live_from`;
                // catch-up reads exactly up to where live delivery starts.
                let record = self.record_by_id(record.id, &record.key)?;
                Some(CatchUp {
                    reader: own_chain_reader(&record),
                    end_seq: live_from,
                    record,
                    from_seq,
                })
            }
            _ => None,
        };
        Ok(Subscription::local(LocalSubscription {
            store: self.inner.store.clone(),
            catch_up,
            queue: VecDeque::new(),
            receiver,
            end_reason,
            health: self.inner.writer.health.clone(),
            ended: false,
            follow: None,
        }))
    }

    /// The embedded [`Journal::subscribe_async`].
    pub(crate) fn subscribe_async(
        &self,
        key: &RunKey,
        from_seq: u64,
        buffer: usize,
    ) -> Result<AsyncSubscription, SubscribeError> {
        Ok(AsyncSubscription::forward(self.subscribe(key, from_seq, buffer)?))
    }

    /// The embedded [`Journal::subscribe_all_async`].
    pub(crate) fn subscribe_all_async(&self, buffer: usize) -> Result<AsyncSubscription, SubscribeError> {
        Ok(AsyncSubscription::forward(self.subscribe_all(buffer)?))
    }
}

impl Subscription {
    fn local(subscription: LocalSubscription) -> Subscription {
        Subscription {
            backend: SubscriptionBackend::Local(subscription),
        }
    }

    pub(crate) fn remote(subscription: RemoteSubscription) -> Subscription {
        Subscription {
            backend: SubscriptionBackend::Remote(subscription),
        }
    }

    /// The next event, waiting for it.
    pub fn recv(&mut self) -> Result<Envelope, SubscribeError> {
        match &mut self.backend {
            SubscriptionBackend::Local(subscription) => subscription.recv(),
            SubscriptionBackend::Remote(subscription) => subscription.recv(),
        }
    }

    /// The next event, waiting at most `timeout`; `None` when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Envelope>, SubscribeError> {
        match &mut self.backend {
            SubscriptionBackend::Local(subscription) => subscription.recv_timeout(timeout),
            SubscriptionBackend::Remote(subscription) => subscription.recv_timeout(timeout),
        }
    }

    fn ended(&self) -> bool {
        match &self.backend {
            SubscriptionBackend::Local(subscription) => subscription.ended,
            SubscriptionBackend::Remote(subscription) => subscription.ended(),
        }
    }
}

impl LocalSubscription {
    fn recv(&mut self) -> Result<Envelope, SubscribeError> {
        if let Some(follow) = &mut self.follow {
            return match follow.recv_timeout(None) {
                Ok(Some(envelope)) => Ok(envelope),
                Ok(None) => Err(SubscribeError::Closed),
                Err(error) => {
                    self.ended = true;
                    Err(error)
                }
            };
        }
        if let Some(envelope) = self.next_ready()? {
            return Ok(envelope);
        }
        self.receiver.recv().map_err(|_| self.end())
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Envelope>, SubscribeError> {
        if let Some(follow) = &mut self.follow {
            let received = follow.recv_timeout(Some(timeout));
            self.ended = received.is_err();
            return received;
        }
        if let Some(envelope) = self.next_ready()? {
            return Ok(Some(envelope));
        }
        match self.receiver.recv_timeout(timeout) {
            Ok(envelope) => Ok(Some(envelope)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(self.end()),
        }
    }

    /// A stored (catch-up) event, if any is left.
    fn next_ready(&mut self) -> Result<Option<Envelope>, SubscribeError> {
        if self.queue.is_empty() {
            self.read_chunk()?;
        }
        Ok(self.queue.pop_front())
    }

    fn read_chunk(&mut self) -> Result<(), ReadError> {
        let Some(catch_up) = &mut self.catch_up else {
            return Ok(());
        };
        let start = catch_up.reader.next_seq();
        if start >= catch_up.end_seq {
            self.catch_up = None;
            return Ok(());
        }
        let end = catch_up.end_seq.min(start + CATCH_UP_CHUNK);
        let queue = &mut self.queue;
        walk_from(
            self.store.as_ref(),
            &catch_up.record,
            &mut catch_up.reader,
            catch_up.from_seq,
            end,
            &mut |envelope| {
                queue.push_back(envelope);
                ControlFlow::Continue(())
            },
        )?;
        Ok(())
    }

    fn end(&mut self) -> SubscribeError {
        self.ended = true;
        let ended = self
            .end_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match ended {
            Some(Ended::Lagged(point)) => return SubscribeError::Lagged(point),
            Some(Ended::Purged(run)) => return SubscribeError::Purged { run },
            Some(Ended::Unreadable(error)) => return SubscribeError::Read(ReadError::Integrity(error)),
            None => {}
        }
        if let Some(source) = self.health.failure() {
            return SubscribeError::Poisoned { source };
        }
        if self.health.stopped() {
            return SubscribeError::WriterStopped;
        }
        SubscribeError::Closed
    }
}

impl Iterator for Subscription {
    type Item = Result<Envelope, SubscribeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended() {
            return None;
        }
        match self.recv() {
            Err(SubscribeError::Closed) => None,
            other => Some(other),
        }
    }
}

/// An async subscription: a `Stream` of events. A forwarding thread reads
/// the blocking subscription (catch-up reads never run on an async worker).
pub struct AsyncSubscription {
    receiver: tokio::sync::mpsc::Receiver<Result<Envelope, SubscribeError>>,
}

impl AsyncSubscription {
    fn forward(mut subscription: Subscription) -> AsyncSubscription {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let spawned = std::thread::Builder::new()
            .name("runjournal-subscription".into())
            .spawn(move || {
                while !sender.is_closed() {
                    let item = match subscription.recv_timeout(Duration::from_millis(100)) {
                        Ok(None) => continue,
                        Ok(Some(envelope)) => Ok(envelope),
                        Err(SubscribeError::Closed) => break,
                        Err(error) => Err(error),
                    };
                    let last = item.is_err();
                    if sender.blocking_send(item).is_err() || last {
                        break;
                    }
                }
            });
        if let Err(error) = spawned {
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            // The channel was just made with room for one item.
            drop(sender.try_send(Err(SubscribeError::Thread(error))));
            return AsyncSubscription { receiver };
        }
        AsyncSubscription { receiver }
    }

    /// An async subscription reading `receiver` (fed by a connection's task).
    pub(crate) fn from_receiver(
        receiver: tokio::sync::mpsc::Receiver<Result<Envelope, SubscribeError>>,
    ) -> AsyncSubscription {
        AsyncSubscription { receiver }
    }

    /// The next event; `None` once the journal closed.
    pub async fn recv(&mut self) -> Option<Result<Envelope, SubscribeError>> {
        self.receiver.recv().await
    }
}

impl futures_core::Stream for AsyncSubscription {
    type Item = Result<Envelope, SubscribeError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(context)
    }
}
