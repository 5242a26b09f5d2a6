//! Progress bars for interactive runs (records, pages, bytes per stream). Hidden when stderr
//! is not a terminal (Kubernetes logs stay clean) or with `--no-progress`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();

/// Turns bars on when stderr is a terminal, unless `disabled`. Call once, before any run.
pub fn init(disabled: bool) {
    let _ = BARS.set(
        (!disabled && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4))),
    );
}

/// A spinner for one stream; hidden unless [`init`] enabled bars.
pub fn stream_bar(label: &str) -> ProgressBar {
    let Some(Some(multi)) = BARS.get() else { return ProgressBar::hidden() };
    let bar = multi.add(ProgressBar::new_spinner());
    let style = ProgressStyle::with_template("{spinner} {prefix:<20} {msg} [{elapsed}]")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}
