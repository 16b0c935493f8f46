//! A one-value channel for a blocking caller waiting on the writer's answer.
//!
//! Invariants:
//! - The receiver sleeps on a condition variable from its first look: it
//!   never spins or yields, so with many callers waiting on a small machine
//!   the writer keeps the cores (a general-purpose channel spins first).
//! - A sender dropped without sending wakes the receiver with
//!   [`Disconnected`]: the writer drops an answer unsent only when it panics.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The sender went away without sending.
#[derive(Debug)]
pub(crate) struct Disconnected;

enum State<T> {
    Waiting,
    Sent(T),
    Gone,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is a plain value: a panic elsewhere leaves it whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(&self, state: State<T>) {
        *self.lock() = state;
        self.changed.notify_one();
    }
}

/// Sends the one value.
pub(crate) struct Sender<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// Waits for the one value.
pub(crate) struct Receiver<T> {
    slot: Arc<Slot<T>>,
}

/// A connected sender and receiver.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        changed: Condvar::new(),
    });
    (
        Sender {
            slot: Some(slot.clone()),
        },
        Receiver { slot },
    )
}

impl<T> Sender<T> {
    /// Hands `value` to the receiver (kept until it looks, or dropped with it).
    pub(crate) fn send(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Sent(value));
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Gone);
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value.
    pub(crate) fn recv(self) -> Result<T, Disconnected> {
        let mut state = self.slot.lock();
        loop {
            match std::mem::replace(&mut *state, State::Gone) {
                State::Sent(value) => return Ok(value),
                State::Gone => return Err(Disconnected),
                State::Waiting => {
                    *state = State::Waiting;
                    state = self.slot.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sent_before_the_receiver_looks_is_received() {
        let (sender, receiver) = channel();
        sender.send(7);
        assert_eq!(receiver.recv().unwrap(), 7);
    }

    #[test]
    fn a_receiver_waiting_on_another_thread_gets_the_value() {
        let (sender, receiver) = channel();
        let waiter = std::thread::spawn(move || receiver.recv().unwrap());
        sender.send(String::from("answer"));
        assert_eq!(waiter.join().unwrap(), "answer");
    }

    #[test]
    fn a_sender_dropped_unsent_disconnects_the_receiver() {
        let (sender, receiver) = channel::<u8>();
        let waiter = std::thread::spawn(move || receiver.recv());
        drop(sender);
        assert!(
            waiter.join().unwrap().is_err(),
            "the receiver learns the sender is gone"
        );
    }
}
