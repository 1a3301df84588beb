//! Where the process logs: JSON lines for the Lambda, text on stderr for the commands.

/// Sets up logging: JSON lines for the Lambda (level from `TAG_GUARD_LOG`, default info);
/// for the CLI, text on stderr, errors only unless `TAG_GUARD_LOG` says otherwise (the
/// replay report already shows what warnings would).
pub fn init_logging(lambda: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if lambda { "info" } else { "error" };
    let filter =
        EnvFilter::try_from_env(crate::config::LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if lambda {
        builder
            .json()
            .with_current_span(false)
            .with_ansi(false)
            .without_time()
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
