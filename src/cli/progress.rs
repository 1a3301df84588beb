//! Progress of a long run (reconcile, a replay of many files) on stderr, only when stderr is a
//! terminal: in a pipe, a log or CI nothing is drawn.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `what` (repositories, files); hidden unless stderr is a terminal (and,
/// with `unless_stdout_terminal`, stdout is not one: the run prints its story there).
pub fn bar(what: &str, unless_stdout_terminal: bool) -> ProgressBar {
    let shown = std::io::stderr().is_terminal()
        && !(unless_stdout_terminal && std::io::stdout().is_terminal());
    let bar = ProgressBar::with_draw_target(
        None,
        if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    let template = format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {what} {{wide_msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
