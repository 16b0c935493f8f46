//! Progress bars on stderr, for long work only, and only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work smaller than this many units finishes too fast for a bar.
const EVENTS_WORTH_A_BAR: u64 = 20_000;
/// An import file smaller than this many bytes needs no bar.
const BYTES_WORTH_A_BAR: u64 = 8 << 20;

/// A bar over `total` events, hidden when the work is small or stderr is not a terminal.
pub fn events(total: u64, message: &'static str) -> ProgressBar {
    bar(total, total >= EVENTS_WORTH_A_BAR, message, "{pos}/{len} events")
}

/// A bar over `total` bytes of input.
pub fn bytes(total: u64, message: &'static str) -> ProgressBar {
    bar(total, total >= BYTES_WORTH_A_BAR, message, "{bytes}/{total_bytes}")
}

fn bar(total: u64, worth_it: bool, message: &'static str, counts: &str) -> ProgressBar {
    if !worth_it || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = format!("{{msg}} [{{bar:40}}] {counts} ({{eta}} left)");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(style);
    bar.set_message(message);
    bar
}
