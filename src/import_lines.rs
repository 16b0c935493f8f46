//! An import's lines, read on the importing thread and parsed ahead of it on
//! parser threads ([`ParsedLines`]).
//!
//! Invariants:
//! - Lines come out in input order, each with its 1-based number, exactly
//!   as reading and parsing them one by one would give them: blank lines are
//!   counted and skipped, and the first line that cannot be read or parsed
//!   ends the sequence with its error. No line after it is returned.
//! - The input is read only on the importing thread (it need not be `Send`).
//!   It is cut into blocks of whole lines ([`BLOCK_BYTES`], [`BLOCK_LINES`]);
//!   block `k` is parsed by parser `k mod parsers`, and blocks are taken back
//!   in the order they were read.
//! - At most [`BLOCKS_PER_PARSER`] blocks per parser are read and not yet
//!   taken back, so memory stays bounded by a few blocks (each at most
//!   [`BLOCK_BYTES`] plus one line of at most the import's line limit) and
//!   their envelopes, whatever the input's size.
//! - Dropping [`ParsedLines`] closes every parser's queues: a parser then
//!   stops at its next hand-off.

use std::io::{BufRead, Read};
use std::thread::{Scope, ScopedJoinHandle};

use crossbeam_channel::{Receiver, Sender};
use runjournal_core::{Event, PartialEnvelope};

use crate::import::ImportError;

/// A block is handed to a parser once its lines hold this many bytes.
const BLOCK_BYTES: usize = 256 * 1024;

/// A block is handed to a parser once it holds this many lines.
const BLOCK_LINES: usize = 1024;

/// Blocks read and not yet taken back, per parser.
const BLOCKS_PER_PARSER: usize = 2;

/// The most parser threads an import starts.
const MAX_PARSERS: usize = 4;

/// Whole lines of the input, as read.
struct TextBlock {
    /// The number of the block's first line.
    first_line: u64,
    /// The lines' bytes, one after the other, without their line ends.
    text: Vec<u8>,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
    /// The error of the line after the block's last one, if reading it failed.
    stop: Option<ImportError>,
    /// Envelopes the import is done with, for the parser to drop: their
    /// memory is the parser's, and is freed fastest on its own thread.
    spent: Vec<PartialEnvelope>,
}

/// A block's lines, parsed.
struct ParsedBlock {
    /// The envelopes of the block's lines that are not blank, with their numbers.
    envelopes: Vec<(u64, PartialEnvelope)>,
    /// The first error: of the first line that did not parse, or the block's
    /// reading error.
    stop: Option<ImportError>,
}

/// One parser thread's queues.
struct Parser<'scope> {
    blocks: Sender<TextBlock>,
    parsed: Receiver<ParsedBlock>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

/// The parsed envelopes of an import's input, in order (see the module's
/// invariants).
pub(crate) struct ParsedLines<'scope, R> {
    input: R,
    limit: usize,
    parsers: Vec<Parser<'scope>>,
    /// Lines read so far: the number of the last one.
    lines_read: u64,
    /// Blocks handed out and taken back, over all parsers.
    sent: usize,
    taken: usize,
    /// The input is read to its end, or to a line that could not be read.
    read_all: bool,
    current: std::vec::IntoIter<(u64, PartialEnvelope)>,
    current_stop: Option<ImportError>,
    /// Envelopes given back since the last block was handed out.
    spent: Vec<PartialEnvelope>,
    /// An error has been returned: nothing more is.
    stopped: bool,
}

impl<'scope, R: BufRead> ParsedLines<'scope, R> {
    /// Reads `input`'s lines (each at most `limit` bytes) and parses them on
    /// parser threads started in `scope`, one per core (at most
    /// [`MAX_PARSERS`]): on two cores two parsers and the importing thread
    /// measured faster than one parser, parsing being the longest stage.
    pub(crate) fn start<'env>(scope: &'scope Scope<'scope, 'env>, input: R, limit: usize) -> Result<Self, ImportError> {
        let count = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .clamp(1, MAX_PARSERS);
        Self::with_parsers(scope, input, limit, count)
    }

    /// [`ParsedLines::start`] with `count` parsers (at least one).
    fn with_parsers<'env>(
        scope: &'scope Scope<'scope, 'env>,
        input: R,
        limit: usize,
        count: usize,
    ) -> Result<Self, ImportError> {
        let count = count.max(1);
        let mut parsers = Vec::with_capacity(count);
        for _ in 0..count {
            let (blocks, queued) = crossbeam_channel::bounded::<TextBlock>(BLOCKS_PER_PARSER);
            let (done, parsed) = crossbeam_channel::bounded(BLOCKS_PER_PARSER);
            let thread = std::thread::Builder::new()
                .name("runjournal-parse".into())
                .spawn_scoped(scope, move || {
                    for block in queued {
                        if done.send(parse_block(block)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|source| ImportError::Read {
                    line: 1,
                    source: std::io::Error::new(
                        source.kind(),
                        format!("cannot start the import's parsing thread: {source}"),
                    ),
                })?;
            parsers.push(Parser {
                blocks,
                parsed,
                thread: Some(thread),
            });
        }
        Ok(ParsedLines {
            input,
            limit,
            parsers,
            lines_read: 0,
            sent: 0,
            taken: 0,
            read_all: false,
            current: Vec::new().into_iter(),
            current_stop: None,
            spent: Vec::new(),
            stopped: false,
        })
    }

    /// The number of lines read (blank ones included), once the sequence has
    /// ended without an error: the input's line count.
    pub(crate) fn lines_read(&self) -> u64 {
        self.lines_read
    }

    /// Takes back an envelope [`ParsedLines::next_envelope`] returned, once
    /// the import is done with it, to be dropped on a parser thread.
    pub(crate) fn give_back(&mut self, envelope: PartialEnvelope) {
        self.spent.push(envelope);
    }

    /// The next envelope with its line number; `None` at the end of the
    /// input, and after an error.
    pub(crate) fn next_envelope(&mut self) -> Option<Result<(u64, PartialEnvelope), ImportError>> {
        loop {
            if self.stopped {
                return None;
            }
            if let Some(envelope) = self.current.next() {
                return Some(Ok(envelope));
            }
            if let Some(error) = self.current_stop.take() {
                self.stopped = true;
                return Some(Err(error));
            }
            while !self.read_all && self.sent - self.taken < self.parsers.len() * BLOCKS_PER_PARSER {
                let block = self.read_block();
                let parser = &self.parsers[self.sent % self.parsers.len()];
                if parser.blocks.send(block).is_err() {
                    return Some(Err(self.parser_stopped(self.sent % self.parsers.len())));
                }
                self.sent += 1;
            }
            if self.taken == self.sent {
                return None;
            }
            let index = self.taken % self.parsers.len();
            match self.parsers[index].parsed.recv() {
                Ok(block) => {
                    self.taken += 1;
                    self.current = block.envelopes.into_iter();
                    self.current_stop = block.stop;
                }
                Err(_) => return Some(Err(self.parser_stopped(index))),
            }
        }
    }

    /// Reads the next block of lines (at least one line, unless the input
    /// has ended or fails to read).
    fn read_block(&mut self) -> TextBlock {
        let mut block = TextBlock {
            first_line: self.lines_read + 1,
            text: Vec::new(),
            ends: Vec::new(),
            stop: None,
            spent: std::mem::take(&mut self.spent),
        };
        while block.text.len() < BLOCK_BYTES && block.ends.len() < BLOCK_LINES {
            let number = self.lines_read + 1;
            match read_line_bounded(&mut self.input, &mut block.text, self.limit, number) {
                Ok(true) => {
                    self.lines_read = number;
                    block.ends.push(block.text.len());
                }
                Ok(false) => {
                    self.read_all = true;
                    break;
                }
                Err(error) => {
                    self.read_all = true;
                    block.stop = Some(error);
                    break;
                }
            }
        }
        block
    }

    /// A parser's queue closed while the import still used it: the parser
    /// panicked, and the panic goes on here.
    fn parser_stopped(&mut self, index: usize) -> ImportError {
        self.stopped = true;
        if let Some(thread) = self.parsers[index].thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        ImportError::Read {
            line: self.lines_read,
            source: std::io::Error::other("the import's parsing thread stopped"),
        }
    }
}

/// Parses a block's lines, up to the first that does not parse.
fn parse_block(block: TextBlock) -> ParsedBlock {
    drop(block.spent);
    let mut envelopes = Vec::with_capacity(block.ends.len());
    let mut start = 0;
    for (number, &end) in (block.first_line..).zip(&block.ends) {
        let line = &block.text[start..end];
        start = end;
        match parse_line(line, number) {
            Ok(Some(envelope)) => envelopes.push((number, envelope)),
            Ok(None) => {}
            Err(error) => {
                return ParsedBlock {
                    envelopes,
                    stop: Some(error),
                }
            }
        }
    }
    ParsedBlock {
        envelopes,
        stop: block.stop,
    }
}

/// One line's envelope, with its key checked; `None` for a blank line.
fn parse_line(bytes: &[u8], number: u64) -> Result<Option<PartialEnvelope>, ImportError> {
    let text = line_text(bytes, number)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let partial = parse_envelope(text, number)?;
    partial
        .run
        .validate()
        .map_err(|source| ImportError::InvalidKey { line: number, source })?;
    Ok(Some(partial))
}

/// Appends the next line of `input` to `text` (without its `\n` or `\r\n`),
/// refusing it as soon as it grows past `limit` bytes; false at the end.
fn read_line_bounded(
    input: &mut impl BufRead,
    text: &mut Vec<u8>,
    limit: usize,
    number: u64,
) -> Result<bool, ImportError> {
    let start = text.len();
    // One byte past the limit: a line that long is refused unread beyond it.
    let bound = u64::try_from(limit).map_or(u64::MAX, |limit| limit.saturating_add(1));
    let read = input
        .by_ref()
        .take(bound)
        .read_until(b'\n', text)
        .map_err(|source| ImportError::Read { line: number, source })?;
    if read == 0 {
        return Ok(false);
    }
    if text.last() == Some(&b'\n') {
        text.pop();
    } else if text.len() - start > limit {
        return Err(ImportError::LineTooLong { line: number, limit });
    }
    if text.len() > start && text.last() == Some(&b'\r') {
        text.pop();
    }
    Ok(true)
}

/// The line as UTF-8 text; a byte order mark at the start of the file gets
/// its own message.
fn line_text(bytes: &[u8], line: u64) -> Result<&str, ImportError> {
    if line == 1 && bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(ImportError::Malformed {
            line,
            reason: "the file starts with a UTF-8 byte order mark (BOM, bytes EF BB BF); JSON lines have none: \
                     save the file as UTF-8 without a BOM"
                .into(),
        });
    }
    std::str::from_utf8(bytes).map_err(|error| ImportError::Malformed {
        line,
        reason: format!(
            "the line is not UTF-8 (invalid byte at column {})",
            error.valid_up_to() + 1
        ),
    })
}

/// Parses one line as an envelope: unknown fields anywhere are errors,
/// `turn_completed`'s too (serde ignores a unit variant's fields).
fn parse_envelope(text: &str, line: u64) -> Result<PartialEnvelope, ImportError> {
    let partial = PartialEnvelope::from_json(text).map_err(|source| ImportError::Parse { line, source })?;
    if matches!(partial.event, Event::TurnCompleted) {
        if let Some(field) = unit_event_field(text) {
            return Err(ImportError::Malformed {
                line,
                reason: format!("unknown field `{field}`: turn_completed has no fields"),
            });
        }
    }
    Ok(partial)
}

/// The first key of the line's `event` object other than `type`, if any.
fn unit_event_field(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct EventOnly {
        event: serde_json::Map<String, serde_json::Value>,
    }
    let parsed: EventOnly = serde_json::from_str(text).ok()?;
    parsed.event.keys().find(|key| *key != "type").cloned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use super::*;

    /// An import line of run `g/0/a` at `seq`.
    fn line(seq: u64) -> String {
        format!(r#"{{"run":{{"goal":"g","episode":0,"agent":"a"}},"seq":{seq},"event":{{"type":"turn_completed"}}}}"#)
    }

    /// Everything `input` gives with `parsers` parsers: the line number and
    /// seq of each envelope, then the error (if any) and the lines read.
    fn drain(input: &str, parsers: usize, limit: usize) -> (Vec<(u64, u64)>, Option<ImportError>, u64) {
        std::thread::scope(|scope| {
            let mut lines = ParsedLines::with_parsers(scope, input.as_bytes(), limit, parsers).unwrap();
            let mut seen = Vec::new();
            let mut error = None;
            while let Some(next) = lines.next_envelope() {
                match next {
                    Ok((number, envelope)) => {
                        seen.push((number, envelope.seq));
                        lines.give_back(envelope);
                    }
                    Err(failed) => error = Some(failed),
                }
            }
            (seen, error, lines.lines_read())
        })
    }

    #[test]
    fn lines_come_out_in_input_order_across_blocks_and_parsers() {
        // Every seventh line is blank: counted, not returned.
        let text: Vec<String> = (0..5_000u64)
            .map(|seq| if seq % 7 == 3 { "  ".to_string() } else { line(seq) })
            .collect();
        let expected: Vec<(u64, u64)> = (0..5_000u64)
            .filter(|seq| seq % 7 != 3)
            .map(|seq| (seq + 1, seq))
            .collect();
        for parsers in [1, 3] {
            let (seen, error, read) = drain(&text.join("\r\n"), parsers, 64 * 1024);
            assert!(error.is_none(), "{error:?}");
            assert_eq!(seen, expected);
            assert_eq!(read, 5_000);
        }
    }

    #[test]
    fn the_first_bad_line_ends_the_lines_though_later_ones_fail_to_read() {
        let mut text: Vec<String> = (0..4_000u64).map(line).collect();
        text[1_499] = "{not json".into();
        text[2_999] = "x".repeat(200);
        for parsers in [1, 3] {
            let (seen, error, _) = drain(&text.join("\n"), parsers, 150);
            assert_eq!(seen.len(), 1_499);
            assert_eq!(seen.last(), Some(&(1_499, 1_498)));
            assert_eq!(error.as_ref().and_then(ImportError::line), Some(1_500), "{error:?}");
            assert_eq!(error.as_ref().map(ImportError::code), Some("parse"), "{error:?}");
        }
    }

    #[test]
    fn a_line_that_fails_to_read_comes_after_every_line_before_it() {
        let mut text: Vec<String> = (0..3_000u64).map(line).collect();
        text[2_099] = "x".repeat(200);
        for parsers in [1, 3] {
            let (seen, error, _) = drain(&text.join("\n"), parsers, 150);
            assert_eq!(seen.len(), 2_099);
            assert_eq!(error.as_ref().and_then(ImportError::line), Some(2_100), "{error:?}");
            assert_eq!(error.as_ref().map(ImportError::code), Some("too_large"), "{error:?}");
        }
    }

    #[test]
    fn an_import_that_stops_early_stops_its_parsers() {
        let text: Vec<String> = (0..20_000u64).map(line).collect();
        let input = text.join("\n");
        // The scope returns only once every parser has ended.
        let first = std::thread::scope(|scope| {
            let mut lines = ParsedLines::with_parsers(scope, input.as_bytes(), 64 * 1024, 2).unwrap();
            lines.next_envelope().map(|next| next.map(|(number, _)| number).ok())
        });
        assert_eq!(first, Some(Some(1)));
    }
}
