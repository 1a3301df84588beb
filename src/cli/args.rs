//! The command line as clap reads it: the commands, their options, and the table or
//! embedded world (`--state`) they run on.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::{registry, rules};

/// Protects critical ECR tags: puts a deleted or moved tag back on its pinned digest and
/// pages on-call. Runs as the Lambda when AWS_LAMBDA_RUNTIME_API is set.
#[derive(Parser, Debug)]
#[command(name = "ecr-tag-guard", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes, before or after its name, as the AWS CLI does; each defaults
/// to the environment.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Global {
    /// The registry table (against AWS).
    #[arg(long = "table", value_name = "TABLE", env = crate::config::TABLE, global = true)]
    pub table: Option<String>,
    /// The pager topic (against AWS: reconcile, replay --aws).
    #[arg(long, value_name = "ARN", env = crate::config::TOPIC_ARN, global = true)]
    pub topic_arn: Option<String>,
    /// The KMS HMAC key that seals pins (key id, ARN or alias/NAME), against AWS: commands
    /// that pin or check pins need it (and kms:GenerateMac / kms:VerifyMac on it).
    #[arg(long, value_name = "KEY", env = crate::config::PIN_KEY, global = true)]
    pub pin_key: Option<String>,
    /// The AWS region of the SDK configuration (default: AWS_REGION, then the profile's).
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,
    /// The named profile of the shared config and credentials files (default: AWS_PROFILE,
    /// then `default`), SSO profiles included.
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (default: AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run events through the guard: on the embedded in-memory ECR/DynamoDB/SNS (default) or
    /// against AWS (--aws).
    Replay(ReplayArgs),
    /// What happened to the tags: every delete, move and expiry in CloudTrail history (log
    /// files, a trail's bucket, or LookupEvents), whether the registry protects the tag and
    /// what the guard did; exit 1 when a protected change was not repaired.
    Audit(AuditArgs),
    /// Print the JSON Schema of a registry item.
    Schema,
    /// Print a completion script for SHELL: `ecr-tag-guard completions bash >
    /// /etc/bash_completion.d/ecr-tag-guard`, `... zsh > "${fpath[1]}/_ecr-tag-guard"`,
    /// `... fish > ~/.config/fish/completions/ecr-tag-guard.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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
    /// Remove REPO:TAG from the registry (its history stays); its keep-alive tag goes
    /// without deleting the image. Refused while the tag is missing from ECR (the item holds
    /// the only copy of its image): `restore` first, or --force.
    Unprotect {
        /// REPO:TAG
        target: String,
        /// Remove the item even though the tag is missing from ECR: the image stays in ECR.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        table: TableArg,
    },
    /// Change REPO:TAG's settings (owner, severity, notes, on_delete, on_move, allow); its pin
    /// and seal stay as they are.
    Edit {
        /// REPO:TAG
        target: String,
        #[command(flatten)]
        fields: registry::FieldOptions,
        #[command(flatten)]
        table: TableArg,
    },
    /// Put REPO:TAG back on its pin now, by hand, with the Lambda's own rules (sealed pin,
    /// sha256 check, children first, keep-alive tag); pages low and records history.
    Restore {
        /// REPO:TAG
        target: String,
        /// Check and say what it would do: no write, no page.
        #[arg(long)]
        dry_run: bool,
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
        /// Also check the seal of every pin ECR confirms and seal again the ones that do not
        /// verify (after replacing the pin key): one kms:VerifyMac per such pin.
        #[arg(long)]
        check_seals: bool,
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
pub(crate) enum LifecycleCommand {
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
        /// With --repo: the registry (--table, to mark pinned images) or the embedded world
        /// (--state) to read the repository from.
        #[command(flatten)]
        table: TableArg,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RuleCommand {
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
pub(crate) enum RegistryCommand {
    /// Create the registry table (key repository + tag, TTL on expires_at); does nothing
    /// when it exists with that schema, refuses when it has another.
    Init,
}

#[derive(clap::Args, Debug, Default)]
pub(crate) struct TableArg {
    /// Run on the embedded world this scenario file describes instead of AWS (try
    /// `events/scenario.json`).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) state: Option<PathBuf>,
    /// With --state: write the embedded world's final state to FILE (the scenario format).
    #[arg(long, value_name = "FILE", requires = "state", global = true)]
    pub(crate) save_state: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ReplayArgs {
    /// Event files or directories: EventBridge events, CloudTrail records or log files
    /// ({"Records": [...]}, plain or .gz), JSON arrays or JSON lines.
    #[arg(default_value = "events")]
    pub(crate) paths: Vec<PathBuf>,
    /// Starting state of the embedded world (default: events/scenario.json when it exists).
    #[arg(long, value_name = "FILE")]
    pub(crate) state: Option<PathBuf>,
    /// Write the embedded world's final state to FILE, in the scenario format.
    #[arg(long, value_name = "FILE")]
    pub(crate) save_state: Option<PathBuf>,
    /// Print one JSON object per event instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print each page's full text.
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// Problems and the summary only (for a backfill of many files): an event is told only
    /// when it failed, the guard could not put a tag back, or it warns.
    #[arg(long, short, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Use the real AWS clients (normal credential chain; AWS_ENDPOINT_URL honoured).
    #[arg(long)]
    pub(crate) aws: bool,
    /// With --aws: decide and report, make no write call and send no page.
    #[arg(long, requires = "aws")]
    pub(crate) dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct AuditArgs {
    /// Where to read: CloudTrail log files or folders (plain or .gz; folders recursively) and
    /// any input replay takes; `s3://BUCKET/PREFIX` (a trail's bucket; --region is the
    /// bucket's); `cloudtrail:` (LookupEvents in the configured region, the last 90 days) or
    /// `cloudtrail:REGION,REGION`; `-` for standard input (plain or gzip).
    #[arg(required = true, value_name = "SOURCE")]
    pub(crate) sources: Vec<String>,
    /// Only changes at or after TIME: RFC 3339, a date (YYYY-MM-DD), epoch seconds, or an age
    /// such as 90m, 36h, 14d.
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only changes at or before TIME (a date: to the end of that day).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Report every tag, not only protected ones (always so without a registry).
    #[arg(long)]
    pub(crate) all_tags: bool,
    /// One JSON object per line.
    #[arg(long, conflicts_with = "csv")]
    pub(crate) json: bool,
    /// Comma-separated values with a header row.
    #[arg(long)]
    pub(crate) csv: bool,
    /// The registry: --table (or TAG_GUARD_TABLE), or the embedded world of --state FILE;
    /// without either, every tag is reported with `protected` null.
    #[command(flatten)]
    pub(crate) table: TableArg,
}
