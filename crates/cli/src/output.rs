//! Writing results: buffered stdout, colour only on a terminal (and never
//! with `NO_COLOR`), UTC times, one-line text, and the one-line error report.

use std::fmt::Display;
use std::io::{self, BufWriter, IsTerminal, Stdout, Write};

/// Buffered stdout with the style to print in.
pub struct Output {
    writer: BufWriter<Stdout>,
    /// Colour and bold, when stdout is a terminal and `NO_COLOR` is unset.
    pub style: Style,
}

impl Output {
    /// Stdout, styled when it is a terminal and `NO_COLOR` is unset or empty.
    pub fn stdout() -> Output {
        let stdout = io::stdout();
        let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        Output {
            writer: BufWriter::new(stdout),
            style: Style { color },
        }
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

/// ANSI styling, or none.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Plain text, never styled.
    pub const PLAIN: Style = Style { color: false };

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

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day
/// counted from 1970-01-01.
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
    let mut line = String::with_capacity(text.len().min(max + 4));
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

/// Prints `runjournal: error: …` as one line on stderr.
pub fn report_error(error: &anyhow::Error) {
    let text = error.to_string();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("runjournal: error: {text}");
}

/// An error from a message.
pub fn fail(message: impl Display) -> anyhow::Error {
    anyhow::anyhow!("{message}")
}

/// Replaces the default panic message and backtrace hint with one line: a
/// panic is a bug in runjournal, never the user's fault.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
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
        eprintln!(
            "runjournal: error: internal error (a bug in runjournal, please report it): {}{location}",
            one_line(&message, 300)
        );
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
    }
}
