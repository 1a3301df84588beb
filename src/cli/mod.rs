//! The command line: `replay` (the main local job) and `schema`.

mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use replay::{replay, ReplayOptions};

/// Protects critical ECR tags: puts a deleted or moved tag back on its pinned digest and
/// pages on-call. Runs as the Lambda when AWS_LAMBDA_RUNTIME_API is set.
#[derive(Parser, Debug)]
#[command(name = "ecr-tag-guard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run events through the guard: on the embedded in-memory ECR/DynamoDB/SNS (default) or
    /// against AWS (--aws).
    Replay(ReplayArgs),
    /// Print the JSON Schema of a registry item.
    Schema,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// Event files or directories: EventBridge events, CloudTrail records or log files
    /// ({"Records": [...]}, plain or .gz), JSON arrays or JSON lines.
    #[arg(default_value = "events")]
    paths: Vec<PathBuf>,
    /// Starting state of the embedded world (default: events/scenario.json when it exists).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Write the embedded world's final state to FILE, in the scenario format.
    #[arg(long, value_name = "FILE")]
    save_state: Option<PathBuf>,
    /// Print one JSON object per event instead of text.
    #[arg(long)]
    json: bool,
    /// Print each page's full text.
    #[arg(long, short)]
    verbose: bool,
    /// Use the real AWS clients (normal credential chain; AWS_ENDPOINT_URL honoured).
    #[arg(long)]
    aws: bool,
    /// With --aws: decide and report, make no write call and send no page.
    #[arg(long, requires = "aws")]
    dry_run: bool,
    /// With --aws: the registry table.
    #[arg(long, env = crate::config::TABLE, requires = "aws")]
    table: Option<String>,
    /// With --aws: the pager topic.
    #[arg(long, env = crate::config::TOPIC_ARN, requires = "aws")]
    topic_arn: Option<String>,
}

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

/// Runs the CLI; the exit code says whether every input was handled.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schema => {
            println!("{}", crate::registry::SCHEMA.trim_end());
            Ok(true)
        }
        Command::Replay(a) => {
            let opts = ReplayOptions {
                paths: a.paths,
                state: a.state,
                save_state: a.save_state,
                json: a.json,
                verbose: a.verbose,
                aws: a.aws,
                dry_run: a.dry_run,
                table: a.table,
                topic_arn: a.topic_arn,
            };
            replay(&opts, &mut std::io::stdout().lock()).await
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
