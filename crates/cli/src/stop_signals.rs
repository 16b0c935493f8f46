//! SIGINT and SIGTERM for the foreground servers (`serve`, `ui`).
//!
//! Invariant: the listeners exist from [`StopSignals::listen`] on, which the
//! commands call before their socket or port exists; a signal that arrives
//! once a client could see either is never the default action (which would
//! kill the process without the final sync and leave the socket behind),
//! and one received before [`StopSignals::received`] is awaited is kept.

use anyhow::Context as _;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The stop signals, listened for since creation.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Listens for SIGINT and SIGTERM on `runtime`'s signal driver.
    pub fn listen(runtime: &tokio::runtime::Runtime) -> anyhow::Result<StopSignals> {
        let _in_runtime = runtime.enter();
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// A current-thread runtime of its own, and the signals on it, for a
    /// command that otherwise blocks.
    pub fn listen_blocking() -> anyhow::Result<BlockingStopSignals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the signal runtime")?;
        let signals = StopSignals::listen(&runtime)?;
        Ok(BlockingStopSignals { runtime, signals })
    }

    /// Resolves at SIGINT or SIGTERM (also one received since [`StopSignals::listen`]).
    pub async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// [`StopSignals`] with the runtime that drives them.
pub struct BlockingStopSignals {
    runtime: tokio::runtime::Runtime,
    signals: StopSignals,
}

impl BlockingStopSignals {
    /// Blocks until SIGINT or SIGTERM (also one received before this call).
    pub fn wait(self) {
        self.runtime.block_on(self.signals.received());
    }
}
