//! The command line: `replay` (the main local job) and `schema`.

pub mod drill;
pub mod lifecycle;
pub mod ops;
mod reconcile;
pub mod registry;
mod replay;
pub mod rules;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::memory::{Memory, Scenario};
use crate::service::Now;
use ops::Backend;

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
    /// Set up the registry table.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
        #[command(flatten)]
        table: TableArg,
    },
    /// Pin REPO:TAG's current image in the registry (REPO: ACCOUNT/REGION/NAME, or NAME in the
    /// caller's account and region).
    Protect {
        /// REPO:TAG
        target: String,
        #[command(flatten)]
        opts: registry::ProtectOptions,
        #[command(flatten)]
        table: TableArg,
    },
    /// Remove REPO:TAG from the registry (its history stays).
    Unprotect {
        /// REPO:TAG
        target: String,
        #[command(flatten)]
        table: TableArg,
    },
    /// List the protected tags.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        table: TableArg,
    },
    /// Show what happened to REPO:TAG, newest first.
    History {
        /// REPO:TAG
        target: String,
        #[command(flatten)]
        table: TableArg,
    },
    /// Check a repository's lifecycle policy against the protected images, shield them, or
    /// simulate a policy offline.
    Lifecycle {
        #[command(subcommand)]
        command: LifecycleCommand,
    },
    /// Compare every registry item with ECR and put things right (what the scheduled Lambda
    /// does); exit 1 when a problem is left.
    Reconcile {
        /// Decide and report only: no write call, no page.
        #[arg(long)]
        dry_run: bool,
        /// The pager topic (against AWS).
        #[arg(long, env = crate::config::TOPIC_ARN)]
        topic_arn: Option<String>,
        #[command(flatten)]
        table: TableArg,
    },
    /// Prove the deployed guard works: push a canary, protect it, delete its tag, wait for
    /// the restore and its record, print each step's time, clean up.
    Drill {
        /// ACCOUNT/REGION/NAME, or NAME in the caller's account and region.
        #[arg(long)]
        repo: String,
        /// Seconds to wait for the guard.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[command(flatten)]
        table: TableArg,
    },
    /// Pattern rules: protect the newest N images whose tags match a regex, per group.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Check every protected tag against ECR; exit 1 when any is not ok.
    Status {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        table: TableArg,
    },
}

#[derive(Subcommand, Debug)]
enum LifecycleCommand {
    /// List every protected image a lifecycle rule could expire or archive; exit 1 if any.
    Check {
        /// ACCOUNT/REGION/NAME, or NAME in the caller's account and region.
        repo: String,
        #[command(flatten)]
        table: TableArg,
    },
    /// Show the policy with a priority-1 rule that never expires keep-alive-tagged images.
    Shield {
        /// ACCOUNT/REGION/NAME, or NAME in the caller's account and region.
        repo: String,
        /// Write it to the repository.
        #[arg(long)]
        apply: bool,
        #[command(flatten)]
        table: TableArg,
    },
    /// What a lifecycle policy would expire or archive now, protected images marked; exit 1
    /// when it would take a protected one.
    Simulate {
        /// The policy: its JSON, or `aws ecr get-lifecycle-policy` output.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// `aws ecr describe-images` output (offline).
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "repo",
            conflicts_with = "repo"
        )]
        images: Option<PathBuf>,
        /// Read the images from ECR instead (ACCOUNT/REGION/NAME or NAME).
        #[arg(long)]
        repo: Option<String>,
        /// The clock for age rules: RFC 3339 or epoch seconds (default: now).
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        /// One JSON object per image.
        #[arg(long)]
        json: bool,
        /// With --repo: the registry table, to mark pinned images.
        #[arg(long, env = crate::config::TABLE)]
        table: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum RuleCommand {
    /// Write a rule (checked first; an existing one only with --force).
    Add {
        #[command(flatten)]
        spec: Box<rules::RuleSpec>,
        #[command(flatten)]
        opts: Box<registry::ProtectOptions>,
        #[command(flatten)]
        table: TableArg,
    },
    /// List the rules (invalid ones named; exit 1 if any).
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        table: TableArg,
    },
    /// Remove a rule; its pins are released by the next reconcile.
    Remove {
        /// The rule's name.
        #[arg(value_name = "NAME")]
        rule: String,
        #[command(flatten)]
        table: TableArg,
    },
    /// Which images each rule protects now, and which the next push releases.
    Preview {
        /// Only this repository (ACCOUNT/REGION/NAME or NAME).
        repo: Option<String>,
        #[command(flatten)]
        table: TableArg,
    },
}

#[derive(Subcommand, Debug)]
enum RegistryCommand {
    /// Create the registry table (key repository + tag, TTL on expires_at); does nothing
    /// when it exists with that schema, refuses when it has another.
    Init,
}

#[derive(clap::Args, Debug, Default)]
struct TableArg {
    /// The registry table (against AWS).
    #[arg(long = "table", env = crate::config::TABLE)]
    name: Option<String>,
    /// Run on the embedded world this scenario file describes instead of AWS (try
    /// `events/scenario.json`).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// With --state: write the embedded world's final state to FILE (the scenario format).
    #[arg(long, value_name = "FILE", requires = "state")]
    save_state: Option<PathBuf>,
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

/// What the registry commands work with: the embedded world of `--state FILE`, or the SDK
/// clients from the usual AWS configuration and the table `--table` names.
async fn ops(table: &TableArg) -> anyhow::Result<registry::Ops> {
    let settings = crate::config::settings_from_env()?;
    if let Some(path) = &table.state {
        let world = Memory::new(Scenario::load(path)?.into_state(&path.display().to_string())?);
        let region = world
            .home()
            .map_or_else(|| "eu-west-1".to_string(), |h| h.region);
        return Ok(registry::Ops {
            backend: Backend::Embedded(world),
            region,
            settings,
        });
    }
    let Some(name) = table.name.clone().filter(|n| !n.is_empty()) else {
        anyhow::bail!("name the registry table with --table or TAG_GUARD_TABLE (or try the embedded world: --state events/scenario.json)");
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(registry::Ops {
        backend: Backend::Aws(crate::aws::admin::Admin {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            ecr: crate::aws::EcrClients::new(aws_sdk_ecr::Client::new(&sdk)),
            table: name,
            sts: aws_sdk_sts::Client::new(&sdk),
        }),
        region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        settings,
    })
}

/// Writes the embedded world to `--save-state FILE` when asked, then hands `result` on.
fn saved(
    ops: &registry::Ops,
    table: &TableArg,
    result: anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    if let (Some(path), Backend::Embedded(world)) = (&table.save_state, &ops.backend) {
        save_world(world, path)?;
    }
    result
}

/// Writes the embedded world's state to `path` in the scenario format.
pub(crate) fn save_world(world: &Memory, path: &std::path::Path) -> anyhow::Result<()> {
    let state = world.state();
    let saved = Scenario::from_state(&state, state.guard_role_arn.clone());
    let text = serde_json::to_string_pretty(&saved)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// The keep-alive prefix: `TAG_GUARD_KEEP_PREFIX`, or the default.
fn keep_prefix() -> anyhow::Result<String> {
    Ok(crate::config::settings_from_env()?.keep_prefix)
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

/// Runs the CLI; the exit code says whether every input was handled (0), not (1), or the
/// command could not run (2).
pub async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Schema => {
            writeln!(out, "{}", crate::registry::SCHEMA.trim_end())?;
            Ok(true)
        }
        Command::Registry {
            command: RegistryCommand::Init,
            table,
        } => {
            let ops = ops(&table).await?;
            let r = registry::init(&ops, out).await;
            saved(&ops, &table, r)
        }
        Command::Protect {
            target,
            opts,
            table,
        } => {
            let ops = ops(&table).await?;
            let r = registry::protect(&ops, &target, &opts, &Now::system(), out).await;
            saved(&ops, &table, r)
        }
        Command::Unprotect { target, table } => {
            let ops = ops(&table).await?;
            let r = registry::unprotect(&ops, &target, &Now::system(), out).await;
            saved(&ops, &table, r)
        }
        Command::List { json, table } => {
            let ops = ops(&table).await?;
            let r = registry::list(&ops, json, out).await;
            saved(&ops, &table, r)
        }
        Command::History { target, table } => {
            let ops = ops(&table).await?;
            let r = registry::history(&ops, &target, out).await;
            saved(&ops, &table, r)
        }
        Command::Status { json, table } => {
            let ops = ops(&table).await?;
            let r = registry::status(&ops, json, out).await;
            saved(&ops, &table, r)
        }
        Command::Lifecycle { command } => run_lifecycle(command, out).await,
        Command::Rule { command } => run_rule(command, out).await,
        Command::Reconcile {
            dry_run,
            topic_arn,
            table,
        } => {
            if let Some(path) = &table.state {
                return reconcile::run_embedded(dry_run, path, table.save_state.as_deref(), out)
                    .await;
            }
            reconcile::run(dry_run, table.name, topic_arn, out).await
        }
        Command::Drill {
            repo,
            timeout,
            table,
        } => {
            drill::drill(
                &ops(&table).await?,
                &repo,
                std::time::Duration::from_secs(timeout),
                std::time::Duration::from_secs(1),
                out,
                |_| async { Ok(()) },
            )
            .await
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
            replay(&opts, out).await
        }
    }
}

async fn run_lifecycle(command: LifecycleCommand, out: &mut impl Write) -> anyhow::Result<bool> {
    match command {
        LifecycleCommand::Check { repo, table } => {
            let ops = ops(&table).await?;
            let r = lifecycle::check(&ops, &repo, Now::system().epoch, out).await;
            saved(&ops, &table, r)
        }
        LifecycleCommand::Shield { repo, apply, table } => {
            let ops = ops(&table).await?;
            let r = lifecycle::shield(&ops, &repo, apply, out).await;
            saved(&ops, &table, r)
        }
        LifecycleCommand::Simulate {
            policy,
            images,
            repo,
            now,
            json,
            table,
        } => {
            let now = match now {
                None => Now::system().epoch,
                Some(t) => crate::text::parse_time(&serde_json::Value::String(t.clone()))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--now {t:?}: not an RFC 3339 time or epoch seconds")
                    })?,
            };
            let prefix = keep_prefix()?;
            match (images, repo) {
                (Some(file), _) => {
                    let source = lifecycle::Source::File(&file);
                    lifecycle::simulate_policy(&policy, source, now, &prefix, json, out).await
                }
                (None, Some(repo)) => {
                    let table = TableArg {
                        name: Some(table.unwrap_or_default()),
                        ..TableArg::default()
                    };
                    let ops = ops(&table).await?;
                    let source = lifecycle::Source::Repo(&ops, &repo);
                    lifecycle::simulate_policy(&policy, source, now, &prefix, json, out).await
                }
                (None, None) => anyhow::bail!("give --images FILE or --repo REPO"),
            }
        }
    }
}

async fn run_rule(command: RuleCommand, out: &mut impl Write) -> anyhow::Result<bool> {
    match command {
        RuleCommand::Add { spec, opts, table } => {
            let ops = ops(&table).await?;
            let r = rules::add(&ops, &spec, &opts, out).await;
            saved(&ops, &table, r)
        }
        RuleCommand::List { json, table } => {
            let ops = ops(&table).await?;
            let r = rules::list(&ops, json, out).await;
            saved(&ops, &table, r)
        }
        RuleCommand::Remove { rule, table } => {
            let ops = ops(&table).await?;
            let r = rules::remove(&ops, &rule, out).await;
            saved(&ops, &table, r)
        }
        RuleCommand::Preview { repo, table } => {
            let ops = ops(&table).await?;
            let r = rules::preview(&ops, repo.as_deref(), out).await;
            saved(&ops, &table, r)
        }
    }
}
