//! Every variant of every family has a stable code, and converts into the
//! umbrella with the same code and the same message. Each family's examples
//! cover all its variants: the exhaustive `position` matches fail to compile
//! when a variant is added without an example here.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::BTreeSet;
use std::sync::Arc;

use runjournal_core::fold::Anomaly;
use runjournal_core::snapshot::SnapshotError;
use runjournal_core::{
    ChainHash, CodecError, ErrorInfo, EventError, IntegrityError, IntegrityProblem, KeyError, OrderViolation, RunKey,
    RunStatus, StoreError,
};

use super::*;
use crate::{ForkError, ImportError, LagPoint, OperatorError, PurgeError, SubscribeError};

fn run() -> RunKey {
    RunKey::new("g", 0, "a").unwrap()
}

fn failure() -> StoreFailure {
    Arc::new(StoreError::Io {
        operation: "sync",
        source: std::io::Error::other("disk gone"),
    })
}

fn key_error() -> KeyError {
    RunKey::new("", 0, "a").unwrap_err()
}

#[expect(
    clippy::unnecessary_box_returns,
    reason = "the umbrella error holds the event error boxed"
)]
fn event_error() -> Box<EventError> {
    Box::new(EventError::InvalidField {
        event_type: "task_claimed",
        field: "priority",
        reason: "is 7; it must be 0 (critical) to 3 (low)".into(),
    })
}

fn codec_error() -> CodecError {
    CodecError::Truncated { len: 3, needed: 5 }
}

fn integrity() -> IntegrityError {
    IntegrityError {
        run: run(),
        seq: 3,
        problem: IntegrityProblem::Missing { next_seq: 4 },
    }
}

fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::Io {
            operation: "read events",
            source: std::io::Error::other("gone"),
        },
        StoreError::Locked { path: "/db".into() },
        StoreError::Missing { path: "/db".into() },
        StoreError::UnsupportedFormat {
            path: "/db".into(),
            found: 2,
            supported: 1,
        },
        StoreError::Corrupt {
            detail: "run record 0".into(),
        },
        StoreError::Backend {
            operation: "append",
            detail: "down".into(),
        },
    ]
}

/// Checks one family: its variants' positions cover the family, and each
/// keeps its code and its message in the umbrella.
fn check_family<E: std::fmt::Display>(
    family: &str,
    count: usize,
    examples: Vec<E>,
    position: fn(&E) -> usize,
    code: fn(&E) -> &'static str,
    into: fn(E) -> Error,
) -> BTreeSet<&'static str> {
    let positions: BTreeSet<usize> = examples.iter().map(position).collect();
    assert_eq!(positions, (0..count).collect(), "{family}: an example per variant");
    let mut codes = BTreeSet::new();
    for example in examples {
        let (family_code, message) = (code(&example), example.to_string());
        let umbrella = into(example);
        assert_eq!(umbrella.code(), family_code, "{family}: {message}");
        assert_eq!(
            umbrella.to_string(),
            message,
            "{family}: the umbrella keeps the message"
        );
        assert!(!family_code.is_empty() && family_code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        codes.insert(family_code);
    }
    codes
}

#[test]
#[expect(clippy::too_many_lines, reason = "one table of every error and its code")]
fn every_family_variant_keeps_its_code_and_message_in_the_umbrella() {
    let mut codes = BTreeSet::new();
    codes.extend(check_family(
        "StoreError",
        1,
        store_errors(),
        |_| 0,
        StoreError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "OpenError",
        4,
        vec![
            OpenError::Store(StoreError::Locked { path: "/db".into() }),
            OpenError::Thread(std::io::Error::other("no threads")),
            OpenError::Connect(unreachable()),
            OpenError::Serve(crate::ServeError::NoSocketPath),
        ],
        |error| match error {
            OpenError::Store(_) => 0,
            OpenError::Thread(_) => 1,
            OpenError::Connect(_) => 2,
            OpenError::Serve(_) => 3,
        },
        OpenError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "AppendError",
        14,
        append_errors(),
        |error| match error {
            AppendError::Fenced { .. } => 0,
            AppendError::Conflict { .. } => 1,
            AppendError::EventTooLarge { .. } => 2,
            AppendError::Unencodable { .. } => 3,
            AppendError::InvalidEvent { .. } => 4,
            AppendError::OutOfOrder { .. } => 5,
            AppendError::EmptyBatch { .. } => 6,
            AppendError::Refused { .. } => 7,
            AppendError::Deleted { .. } => 8,
            AppendError::Storage { .. } => 9,
            AppendError::Poisoned { .. } => 10,
            AppendError::Abandoned { .. } => 11,
            AppendError::WriterStopped => 12,
            AppendError::Remote(_) => 13,
        },
        AppendError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "WriteError",
        4,
        write_errors(),
        |error| match error {
            WriteError::Storage { .. } => 0,
            WriteError::Poisoned { .. } => 1,
            WriteError::WriterStopped => 2,
            WriteError::Remote(_) => 3,
        },
        WriteError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "ReadError",
        8,
        read_errors(),
        |error| match error {
            ReadError::NotFound { .. } => 0,
            ReadError::Integrity(_) => 1,
            ReadError::SnapshotCorrupt { .. } => 2,
            ReadError::SeqOutOfRange { .. } => 3,
            ReadError::ParentMissing { .. } => 4,
            ReadError::Store(_) => 5,
            ReadError::EpisodesExhausted { .. } => 6,
            ReadError::Remote(_) => 7,
        },
        ReadError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "BeginError",
        6,
        vec![
            BeginError::InvalidKey(key_error()),
            BeginError::AlreadyExists { run: run() },
            BeginError::EventTooLarge {
                run: run(),
                seq: 0,
                size: 2016,
                max: 1024,
            },
            BeginError::Unencodable {
                run: run(),
                seq: 0,
                source: codec_error(),
            },
            BeginError::Read(ReadError::NotFound { run: run() }),
            BeginError::Write(WriteError::WriterStopped),
        ],
        |error| match error {
            BeginError::InvalidKey(_) => 0,
            BeginError::AlreadyExists { .. } => 1,
            BeginError::EventTooLarge { .. } => 2,
            BeginError::Unencodable { .. } => 3,
            BeginError::Read(_) => 4,
            BeginError::Write(_) => 5,
        },
        BeginError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "ResumeError",
        8,
        vec![
            ResumeError::NotFound { run: run() },
            ResumeError::Finished {
                run: run(),
                status: RunStatus::Completed,
            },
            ResumeError::Read(ReadError::from(integrity())),
            ResumeError::Append(AppendError::Poisoned { source: failure() }),
            ResumeError::Write(WriteError::Storage { source: failure() }),
            ResumeError::Superseded { run: run() },
            ResumeError::EpochExhausted {
                run: run(),
                epoch: u64::MAX - 1,
            },
            ResumeError::Mismatch {
                run: run(),
                field: "backend",
                stored: None,
                expected: "claude-code".into(),
            },
        ],
        |error| match error {
            ResumeError::NotFound { .. } => 0,
            ResumeError::Finished { .. } => 1,
            ResumeError::Read(_) => 2,
            ResumeError::Append(_) => 3,
            ResumeError::Write(_) => 4,
            ResumeError::Superseded { .. } => 5,
            ResumeError::Mismatch { .. } => 6,
            ResumeError::EpochExhausted { .. } => 7,
        },
        ResumeError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "FinishError",
        1,
        vec![Box::new(FinishError {
            primary: Some(ErrorInfo::new("backend", "overloaded")),
            cleanup_errors: vec![ErrorInfo::new("stop", "hung")],
            source: AppendError::Poisoned { source: failure() },
        })],
        |_| 0,
        |error| error.code(),
        Error::from,
    ));
    codes.extend(check_family(
        "RebuildError",
        2,
        vec![
            RebuildError::Read(ReadError::NotFound { run: run() }),
            RebuildError::Write(WriteError::Poisoned { source: failure() }),
        ],
        |error| match error {
            RebuildError::Read(_) => 0,
            RebuildError::Write(_) => 1,
        },
        RebuildError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "ForkError",
        7,
        fork_errors(),
        |error| match error {
            ForkError::SeqOutOfRange { .. } => 0,
            ForkError::InvalidKey(_) => 1,
            ForkError::AlreadyExists { .. } => 2,
            ForkError::EventTooLarge { .. } => 3,
            ForkError::Unencodable { .. } => 4,
            ForkError::Read(_) => 5,
            ForkError::Write(_) => 6,
        },
        ForkError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "PurgeError",
        3,
        vec![
            PurgeError::HasLiveFork {
                run: run(),
                child: RunKey::new("g", 1, "a").unwrap(),
            },
            PurgeError::Read(ReadError::NotFound { run: run() }),
            PurgeError::Write(WriteError::Storage { source: failure() }),
        ],
        |error| match error {
            PurgeError::HasLiveFork { .. } => 0,
            PurgeError::Read(_) => 1,
            PurgeError::Write(_) => 2,
        },
        PurgeError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "SubscribeError",
        7,
        vec![
            SubscribeError::Lagged(LagPoint { run: run(), seq: 7 }),
            SubscribeError::Closed,
            SubscribeError::Poisoned { source: failure() },
            SubscribeError::WriterStopped,
            SubscribeError::Thread(std::io::Error::other("no threads")),
            SubscribeError::Read(ReadError::NotFound { run: run() }),
            SubscribeError::Purged { run: run() },
        ],
        |error| match error {
            SubscribeError::Lagged(_) => 0,
            SubscribeError::Closed => 1,
            SubscribeError::Poisoned { .. } => 2,
            SubscribeError::WriterStopped => 3,
            SubscribeError::Thread(_) => 4,
            SubscribeError::Read(_) => 5,
            SubscribeError::Purged { .. } => 6,
        },
        SubscribeError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "ImportError",
        16,
        import_errors(),
        |error| match error {
            ImportError::Read { .. } => 0,
            ImportError::Parse { .. } => 1,
            ImportError::InvalidKey { .. } => 2,
            ImportError::InvalidEvent { .. } => 3,
            ImportError::SeqGap { .. } => 4,
            ImportError::OutOfOrder { .. } => 5,
            ImportError::HashMismatch { .. } => 6,
            ImportError::TooLarge { .. } => 7,
            ImportError::Unencodable { .. } => 8,
            ImportError::ForkParentMissing { .. } => 9,
            ImportError::AlreadyExists { .. } => 10,
            ImportError::Database(_) => 11,
            ImportError::Write(_) => 12,
            ImportError::Malformed { .. } => 13,
            ImportError::LineTooLong { .. } => 14,
            ImportError::Staging(_) => 15,
        },
        ImportError::code,
        Error::from,
    ));
    codes.extend(check_family(
        "OperatorError",
        5,
        operator_errors(),
        |error| match error {
            OperatorError::NotFound { .. } => 0,
            OperatorError::Refused { .. } => 1,
            OperatorError::Read(_) => 2,
            OperatorError::Append(_) => 3,
            OperatorError::Resume(_) => 4,
        },
        OperatorError::code,
        Error::from,
    ));
    for expected in [
        "not_allowed",
        "fenced",
        "conflict",
        "not_found",
        "finished",
        "too_large",
        "invalid_key",
        "invalid_event",
        "poisoned",
        "integrity",
        "already_exists",
        "locked",
        "storage",
    ] {
        assert!(codes.contains(expected), "{expected} in {codes:?}");
    }
}

/// Errors about the same thing from different families share the umbrella
/// variant: one arm matches them all.
#[test]
fn the_umbrella_is_flat_across_families() {
    let not_found = [
        Error::from(ReadError::NotFound { run: run() }),
        Error::from(ResumeError::NotFound { run: run() }),
        Error::from(BeginError::Read(ReadError::NotFound { run: run() })),
        Error::from(SubscribeError::Read(ReadError::NotFound { run: run() })),
        Error::from(ImportError::Database(Box::new(ReadError::NotFound { run: run() }))),
    ];
    assert!(not_found.iter().all(|error| matches!(error, Error::NotFound { .. })));
    let poisoned = [
        Error::from(AppendError::Poisoned { source: failure() }),
        Error::from(WriteError::Poisoned { source: failure() }),
        Error::from(ResumeError::Append(AppendError::Poisoned { source: failure() })),
        Error::from(SubscribeError::Poisoned { source: failure() }),
        Error::from(RebuildError::Write(WriteError::Poisoned { source: failure() })),
    ];
    assert!(poisoned.iter().all(|error| matches!(error, Error::Poisoned { .. })));
    let locked = Error::from(ResumeError::Read(ReadError::Store(StoreError::Locked {
        path: "/db".into(),
    })));
    assert!(matches!(locked, Error::Store(StoreError::Locked { .. })));
    assert!(matches!(
        Error::from(BeginError::AlreadyExists { run: run() }),
        Error::AlreadyExists { .. }
    ));
    assert!(matches!(
        Error::from(ForkError::AlreadyExists { run: run() }),
        Error::AlreadyExists { .. }
    ));
}

fn append_errors() -> Vec<AppendError> {
    vec![
        AppendError::Fenced {
            run: run(),
            seq: 1,
            epoch: 0,
            current: 1,
        },
        AppendError::Conflict {
            run: run(),
            expected: 99,
            actual: 1,
        },
        AppendError::EventTooLarge {
            run: run(),
            seq: 1,
            size: 2016,
            max: 1024,
        },
        AppendError::Unencodable {
            run: run(),
            seq: 1,
            source: codec_error(),
        },
        AppendError::InvalidEvent {
            run: run(),
            seq: 1,
            source: event_error(),
        },
        AppendError::OutOfOrder {
            run: run(),
            seq: 3,
            violation: OrderViolation::AfterOutcome {
                event: "step",
                ended_by: "run_completed",
                status: RunStatus::Completed,
            },
        },
        AppendError::EmptyBatch { run: run(), seq: 1 },
        AppendError::Refused {
            run: run(),
            seq: 1,
            event_type: "handoff_acked",
            anomaly: Box::new(Anomaly {
                seq: 1,
                kind: "unknown_handoff".into(),
                detail: "handoff_acked for handoff \"nope\", which was never sent; ignored".into(),
            }),
        },
        AppendError::Deleted { run: run(), seq: 4 },
        AppendError::Storage {
            run: run(),
            seq: 1,
            source: failure(),
        },
        AppendError::Poisoned { source: failure() },
        AppendError::Abandoned {
            run: run(),
            seq: 1,
            reason: AbandonReason::Conflict { expected: 1, actual: 2 },
        },
        AppendError::WriterStopped,
        AppendError::Remote(RemoteError::OutcomeUnknown {
            endpoint: "unix:/db/runjournal.sock".into(),
            detail: "connection reset".into(),
        }),
    ]
}

fn unreachable() -> RemoteError {
    RemoteError::Unreachable {
        endpoint: "unix:/db/runjournal.sock".into(),
        detail: "connection refused".into(),
    }
}

fn write_errors() -> Vec<WriteError> {
    vec![
        WriteError::Storage { source: failure() },
        WriteError::Poisoned { source: failure() },
        WriteError::WriterStopped,
        WriteError::Remote(RemoteError::Refused(Box::new(crate::Refusal {
            endpoint: "http://127.0.0.1:7070".into(),
            status: 401,
            code: "unauthorized".into(),
            message: "no token".into(),
            run: None,
            seq: None,
        }))),
    ]
}

fn read_errors() -> Vec<ReadError> {
    let mut errors = vec![
        ReadError::NotFound { run: run() },
        ReadError::from(integrity()),
        ReadError::SnapshotCorrupt {
            run: run(),
            seq: 9,
            source: SnapshotError::Checksum,
        },
        ReadError::SeqOutOfRange {
            run: run(),
            seq: 99,
            last: 2,
        },
        ReadError::ParentMissing {
            run: RunKey::new("g", 0, "child").unwrap(),
            parent: Box::new(run()),
        },
        ReadError::EpisodesExhausted { goal: "g".into() },
        ReadError::Remote(unreachable()),
    ];
    errors.extend(store_errors().into_iter().map(ReadError::Store));
    errors
}

fn fork_errors() -> Vec<ForkError> {
    vec![
        ForkError::SeqOutOfRange {
            run: run(),
            seq: 99,
            last: 2,
        },
        ForkError::InvalidKey(key_error()),
        ForkError::AlreadyExists { run: run() },
        ForkError::EventTooLarge {
            run: run(),
            seq: 0,
            size: 2016,
            max: 1024,
        },
        ForkError::Unencodable {
            run: run(),
            seq: 0,
            source: codec_error(),
        },
        ForkError::Read(ReadError::from(integrity())),
        ForkError::Write(WriteError::Poisoned { source: failure() }),
    ]
}

fn import_errors() -> Vec<ImportError> {
    let run = || Box::new(run());
    vec![
        ImportError::Read {
            line: 1,
            source: std::io::Error::other("unreadable"),
        },
        ImportError::Parse {
            line: 1,
            source: serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
        },
        ImportError::InvalidKey {
            line: 1,
            source: key_error(),
        },
        ImportError::InvalidEvent {
            line: 2,
            run: run(),
            seq: 1,
            source: *event_error(),
        },
        ImportError::SeqGap {
            line: 2,
            run: run(),
            seq: 2,
            expected: 1,
        },
        ImportError::OutOfOrder {
            line: 3,
            run: run(),
            seq: 2,
            violation: OrderViolation::RunStartedAfterFirst,
        },
        ImportError::HashMismatch {
            line: 1,
            run: run(),
            seq: 0,
            given: Box::new(ChainHash::GENESIS),
            computed: Box::new(ChainHash::GENESIS),
        },
        ImportError::TooLarge {
            line: 1,
            run: run(),
            seq: 0,
            size: 2016,
            max: 1024,
        },
        ImportError::Unencodable {
            line: 1,
            run: run(),
            seq: 0,
            source: codec_error(),
        },
        ImportError::ForkParentMissing {
            line: 1,
            run: run(),
            parent: Box::new(RunKey::new("p", 0, "a").unwrap()),
            fork_seq: 3,
        },
        ImportError::AlreadyExists { line: 2, run: run() },
        ImportError::Database(Box::new(ReadError::Store(StoreError::Locked { path: "/db".into() }))),
        ImportError::Write(Box::new(WriteError::Storage { source: failure() })),
        ImportError::Malformed {
            line: 1,
            reason: "the line is not UTF-8".into(),
        },
        ImportError::LineTooLong { line: 1, limit: 64 },
        ImportError::Staging(Box::new(StoreError::Missing { path: "/db".into() })),
    ]
}

fn operator_errors() -> Vec<OperatorError> {
    vec![
        OperatorError::NotFound { run: run() },
        OperatorError::Refused {
            run: run(),
            action: "interrupt",
            status: RunStatus::Completed,
            rule: "run is completed: nothing may follow run_completed (docs/format.md#ordering-rules)".into(),
        },
        OperatorError::Read(ReadError::NotFound { run: run() }),
        OperatorError::Append(AppendError::Fenced {
            run: run(),
            seq: 4,
            epoch: 1,
            current: 2,
        }),
        OperatorError::Resume(Box::new(ResumeError::EpochExhausted {
            run: run(),
            epoch: u64::MAX - 1,
        })),
    ]
}
