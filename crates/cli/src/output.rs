//! Writing results: buffered stdout (through a pager when asked and stdout
//! is a terminal), colour only when chosen (`--color`, never with `NO_COLOR`
//! under `auto`), times as `--time-format` says, one-line text, and the
//! one-line error report (JSON under `--json`).

use std::fmt::Display;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;

use crate::failure::{classify, Code};

/// When to colour the text output (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always, even into a pipe or with `NO_COLOR` set.
    Always,
    /// Never.
    Never,
}

/// How times are printed (`--time-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeFormat {
    /// `YYYY-MM-DD HH:MM:SS.mmm` in UTC (ISO 8601 with a space).
    Iso,
    /// How long ago: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
    Relative,
    /// Unix milliseconds, as stored.
    Raw,
}

/// Buffered stdout, or a pager's input, with the style to print in.
pub struct Output {
    writer: BufWriter<Box<dyn Write>>,
    pager: Option<Child>,
    terminal: bool,
    /// Colour and time format of the text output.
    pub style: Style,
}

impl Output {
    /// Stdout, styled as `color` and `time` say.
    pub fn stdout(color: ColorChoice, time: TimeFormat) -> Output {
        let stdout = io::stdout();
        let terminal = stdout.is_terminal();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
        };
        Output {
            writer: BufWriter::new(Box::new(stdout)),
            pager: None,
            terminal,
            style: Style {
                color,
                time,
                now: now_millis(),
            },
        }
    }

    /// Sends the rest of the output through a pager when stdout is a
    /// terminal: `$PAGER` (split at whitespace; set and empty means none), or
    /// `less -FRX`. A pager that does not start leaves the output on stdout.
    pub fn page(&mut self) -> io::Result<()> {
        if !self.terminal || self.pager.is_some() {
            return Ok(());
        }
        let command = match std::env::var("PAGER") {
            Ok(value) => value,
            Err(_) => "less -FRX".to_owned(),
        };
        let mut words = command.split_whitespace();
        let Some(program) = words.next() else {
            return Ok(());
        };
        let spawned = Command::new(program).args(words).stdin(Stdio::piped()).spawn();
        let Ok(mut child) = spawned else {
            return Ok(());
        };
        let Some(input) = child.stdin.take() else {
            return Ok(());
        };
        self.writer.flush()?;
        self.writer = BufWriter::new(Box::new(input));
        self.pager = Some(child);
        Ok(())
    }

    /// Whether stdout is a terminal.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Flushes the output and, with a pager, closes its input and waits for
    /// the reader to quit it.
    pub fn finish(&mut self) -> io::Result<()> {
        let flushed = self.writer.flush();
        if let Some(mut pager) = self.pager.take() {
            self.writer = BufWriter::new(Box::new(io::sink()));
            pager.wait()?;
        }
        flushed
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Unix milliseconds now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// ANSI styling, or none.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    color: bool,
    time: TimeFormat,
    /// The time `relative` counts back from.
    now: u64,
}

impl Style {
    /// Plain text, never styled, UTC times.
    pub const PLAIN: Style = Style {
        color: false,
        time: TimeFormat::Iso,
        now: 0,
    };

    /// A time (unix milliseconds) in the chosen format.
    pub fn time(self, millis: u64) -> String {
        match self.time {
            TimeFormat::Iso => utc(millis),
            TimeFormat::Relative => relative(self.now, millis),
            TimeFormat::Raw => millis.to_string(),
        }
    }

    /// The heading of a time column, `label` naming what the time is.
    pub fn time_heading(self, label: &str) -> String {
        match self.time {
            TimeFormat::Iso => format!("{label} (UTC)"),
            TimeFormat::Relative => label.to_owned(),
            TimeFormat::Raw => format!("{label} (UNIX MS)"),
        }
    }

    /// The widest time in the chosen format, for columns fixed up front.
    pub fn time_width(self) -> usize {
        match self.time {
            TimeFormat::Iso => 23,
            TimeFormat::Relative => 9,
            TimeFormat::Raw => 13,
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Bold red: deaths and failures.
    pub fn bad(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Bold green: completions.
    pub fn good(self, text: &str) -> String {
        self.paint("1;32", text)
    }

    /// Yellow: compactions and interruptions.
    pub fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Bold cyan: phases.
    pub fn phase(self, text: &str) -> String {
        self.paint("1;36", text)
    }

    /// Magenta: handoffs.
    pub fn handoff(self, text: &str) -> String {
        self.paint("35", text)
    }

    /// Bold blue: resumes.
    pub fn resume(self, text: &str) -> String {
        self.paint("1;34", text)
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC for unix milliseconds.
#[expect(
    clippy::cast_possible_wrap,
    reason = "days since 1970 of a u64 millisecond time are far below i64::MAX"
)]
pub fn utc(millis: u64) -> String {
    let seconds = millis / 1000;
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis % 1000
    )
}

/// How long before `now` `millis` was: `42s ago`, `5m ago`, `3h ago`, `2d ago`
/// (`just now` under a second; `in the future` for a clock that went back).
pub fn relative(now: u64, millis: u64) -> String {
    if millis > now {
        return "in the future".into();
    }
    let seconds = (now - millis) / 1000;
    match seconds {
        0 => "just now".into(),
        1..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86_399 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day
/// counted from 1970-01-01.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "civil-from-days arithmetic: the day is in 1..=31 and the month in 1..=12"
)]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `text` on one line (control characters shown as spaces or escapes) and at
/// most `max` characters, ending in `…` when cut.
pub fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max.saturating_add(4)));
    let mut count = 0;
    for character in text.chars() {
        if count == max {
            line.pop();
            line.push('…');
            return line;
        }
        match character {
            '\n' | '\r' | '\t' => {
                if !line.ends_with(' ') {
                    line.push(' ');
                    count += 1;
                }
            }
            c if c.is_control() => {
                line.push('�');
                count += 1;
            }
            c => {
                line.push(c);
                count += 1;
            }
        }
    }
    line
}

/// `text` quoted and cut to `max` characters.
pub fn quoted(text: &str, max: usize) -> String {
    format!("\"{}\"", one_line(text, max))
}

/// `n thing` or `n things`.
pub fn plural(n: impl Into<u64>, thing: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Whether the error is stdout closing under us (`runjournal show … | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Reports the error as one line on stderr (`runjournal: error: …`, or with
/// `json` a `{"error": {"code", "message"}}` object) and returns the exit
/// status of its code.
pub fn report_error(error: &anyhow::Error, json: bool) -> ExitCode {
    let code = classify(error);
    let text = error.to_string();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    print_error(code, &text, json);
    ExitCode::from(code.exit_status())
}

/// Prints one error line on stderr, as text or JSON.
pub fn print_error(code: Code, message: &str, json: bool) {
    if json {
        let value = serde_json::json!({"error": {"code": code.as_str(), "message": message}});
        eprintln!("{value}");
    } else {
        eprintln!("runjournal: error: {message}");
    }
}

/// An error from a message.
pub fn fail(message: impl Display) -> anyhow::Error {
    anyhow::anyhow!("{message}")
}

/// Replaces the default panic message and backtrace hint with one line: a
/// panic is a bug in runjournal, never the user's fault.
pub fn install_panic_hook(json: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|location| format!(" at {}:{}", location.file(), location.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let text = format!(
            "internal error (a bug in runjournal, please report it): {}{location}",
            one_line(&message, 300)
        );
        print_error(Code::Other, &text, json);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_763_800_000_123), "2025-11-22 08:26:40.123");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abcd", 4), "abcd");
        assert_eq!(one_line("abcd", usize::MAX), "abcd");
    }

    #[test]
    fn relative_times_use_the_largest_unit() {
        let now = 1_000_000_000;
        assert_eq!(relative(now, now - 400), "just now");
        assert_eq!(relative(now, now - 42_000), "42s ago");
        assert_eq!(relative(now, now - 300_000), "5m ago");
        assert_eq!(relative(now, now - 3 * 3_600_000), "3h ago");
        assert_eq!(relative(now, now - 2 * 86_400_000), "2d ago");
        assert_eq!(relative(now, now + 1), "in the future");
    }
}
