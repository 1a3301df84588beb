//! The command line: `replay` (the main local job), `audit`, the registry commands.

/// Runs `$body` with `$ops` bound to the chosen backend's [`Ops`] (an `Ops<Admin>` or an
/// `Ops<Memory>`, so every command is generic over it): the one place the backend is picked.
macro_rules! with_ops {
    ($chosen:expr, |$ops:ident| $body:expr) => {{
        let chosen: $crate::cli::ops::Chosen = $chosen;
        let (region, scope, tuning) = (chosen.region, chosen.scope, chosen.tuning);
        match chosen.backend {
            $crate::cli::ops::Backend::Aws(admin) => {
                let $ops = $crate::cli::ops::Ops {
                    backend: *admin,
                    region,
                    scope,
                    tuning,
                };
                $body
            }
            $crate::cli::ops::Backend::Embedded(world) => {
                let $ops = $crate::cli::ops::Ops {
                    backend: world,
                    region,
                    scope,
                    tuning,
                };
                $body
            }
        }
    }};
}

mod args;
pub mod audit;
pub mod drill;
pub mod lifecycle;
pub mod ops;
mod progress;
mod reconcile;
pub mod registry;
mod replay;
pub mod rules;
mod show;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

pub use args::{Cli, Global};
use args::{Command, LifecycleCommand, RegistryCommand, RuleCommand, TableArg};

use crate::memory::{Memory, Scenario};
use crate::service::Now;
use ops::{Backend, Chosen, Ops};

pub use replay::{replay, ReplayOptions};

/// Runs a command on the backend `$table` selects (as `$ops`), then writes the embedded world
/// to `--save-state` when asked.
macro_rules! on_backend {
    ($global:expr, $table:expr, |$ops:ident| $call:expr) => {{
        let table = &$table;
        let chosen = ops($global, table).await?;
        let (region, scope, tuning) = (chosen.region, chosen.scope, chosen.tuning);
        match chosen.backend {
            Backend::Aws(admin) => {
                let $ops = Ops {
                    backend: *admin,
                    region,
                    scope,
                    tuning,
                };
                $call.await
            }
            Backend::Embedded(world) => {
                let $ops = Ops {
                    backend: world,
                    region,
                    scope,
                    tuning,
                };
                let result = $call.await;
                saved(&$ops.backend, table, result)
            }
        }
    }};
}

/// The AWS configuration as the AWS CLI would build it: the usual chain (environment, shared
/// config and credentials files, SSO, instance roles), with `--profile`, `--region` and
/// `--endpoint-url` taking precedence when given.
pub(crate) async fn sdk_config(g: &Global) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = &g.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &g.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &g.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The caller's own account, asked of STS only when member roles are in play and
/// `TAG_GUARD_ROLE_ARN` does not tell it: the account a command reaches without a role.
pub(crate) async fn caller_account(
    sdk: &aws_config::SdkConfig,
    cfg: &crate::config::Config,
) -> anyhow::Result<Option<String>> {
    if cfg.member_role.is_none() || crate::wiring::own_account(cfg).is_some() {
        return Ok(None);
    }
    sts_account(sdk).await.map(Some)
}

/// The account of the credentials `sdk` carries (`sts:GetCallerIdentity`); an error names
/// the call and AWS's answer.
async fn sts_account(sdk: &aws_config::SdkConfig) -> anyhow::Result<String> {
    let id = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::aws::call_error("sts:GetCallerIdentity", &e)))?;
    id.account()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("sts:GetCallerIdentity named no account"))
}

/// What the registry commands work with: the embedded world of `--state FILE`, or the SDK
/// clients from the AWS configuration ([`sdk_config`]) and the table `--table` names.
async fn ops(g: &Global, table: &TableArg) -> anyhow::Result<Chosen> {
    ops_for(g, table, true).await
}

/// [`ops`]; `need_table`: against AWS a table must be named.
async fn ops_for(g: &Global, table: &TableArg, need_table: bool) -> anyhow::Result<Chosen> {
    let crate::config::Settings { mut scope, tuning } = crate::config::settings_from_env()?;
    if let Some(path) = &table.state {
        let world = Memory::new(Scenario::load(path)?.into_state(&path.display().to_string())?);
        // Without a role of its own configured, the guard is the one the world names.
        if scope.own_role_arn.is_none() {
            scope.own_role_arn = world.state().guard_role_arn.clone();
        }
        let region = world
            .home()
            .map_or_else(|| "eu-west-1".to_string(), |h| h.region);
        return Ok(Chosen {
            backend: Backend::Embedded(world),
            region,
            scope,
            tuning,
        });
    }
    let name = g.table.clone().unwrap_or_default();
    if name.is_empty() && need_table {
        anyhow::bail!("name the registry table with --table or TAG_GUARD_TABLE (or try the embedded world: --state events/scenario.json)");
    }
    let sdk = sdk_config(g).await;
    // Member accounts by role: the caller's own account is reached without one.
    let roles = match crate::config::member_role_from(|k| std::env::var(k).ok())? {
        None => None,
        Some((name, external_id)) => {
            let home = sts_account(&sdk).await?;
            Some(crate::aws::MemberRoles::new(
                name,
                external_id,
                home,
                sdk.clone(),
            ))
        }
    };
    Ok(Chosen {
        backend: Backend::Aws(Box::new(crate::aws::admin::Admin {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            ecr: crate::aws::EcrClients::new(aws_sdk_ecr::Client::new(&sdk))
                .with_member_roles(roles),
            table: name,
            sts: aws_sdk_sts::Client::new(&sdk),
            kms: crate::aws::KmsPinKey {
                client: aws_sdk_kms::Client::new(&sdk),
                key_id: g.pin_key.clone(),
            },
        })),
        region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        scope,
        tuning,
    })
}

/// Writes the embedded world to `--save-state FILE` when asked, then hands `result` on.
fn saved(world: &Memory, table: &TableArg, result: anyhow::Result<bool>) -> anyhow::Result<bool> {
    if let Some(path) = &table.save_state {
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
    Ok(crate::config::settings_from_env()?.scope.keep_prefix)
}

/// Runs the CLI; the exit code says whether every input was handled (0), not (1), or the
/// command could not run (2); `audit` has one more (3: a source it could not read whole).
pub async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command; answers its exit code.
async fn run(cli: Cli) -> anyhow::Result<u8> {
    let out = &mut std::io::stdout().lock();
    let g = &cli.global;
    let handled_all = match cli.command {
        Command::Schema => {
            writeln!(out, "{}", crate::registry::SCHEMA.trim_end())?;
            Ok(true)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "ecr-tag-guard", out);
            Ok(true)
        }
        Command::Lifecycle { command } => run_lifecycle(g, command, out).await,
        Command::Rule { command } => run_rule(g, command, out).await,
        Command::Reconcile {
            dry_run,
            check_seals,
            table,
        } => {
            let how = reconcile::How {
                dry_run,
                check_seals,
            };
            match &table.state {
                Some(path) => {
                    reconcile::run_embedded(how, path, table.save_state.as_deref(), out).await
                }
                None => reconcile::run(how, g, out).await,
            }
        }
        Command::Drill {
            repo,
            timeout,
            table,
        } => {
            let ops = ops(g, &table).await?.aws("drill")?;
            let (wait, poll) = (Duration::from_secs(timeout), Duration::from_secs(1));
            drill::drill(&ops, &repo, wait, poll, out, |_| async { Ok(()) }).await
        }
        Command::Audit(a) => return audit::run(g, a, out).await,
        Command::Replay(a) => {
            let opts = ReplayOptions {
                paths: a.paths,
                state: a.state,
                save_state: a.save_state,
                json: a.json,
                verbose: a.verbose,
                quiet: a.quiet,
                aws: a.aws,
                dry_run: a.dry_run,
                aws_options: g.clone(),
            };
            replay(&opts, out).await
        }
        item => run_item(g, item, out).await,
    }?;
    Ok(u8::from(!handled_all))
}

/// Runs a command on the registry's items: `registry init`, `protect`, `unprotect`, `edit`,
/// `restore`, `list`, `history`, `status`.
async fn run_item(g: &Global, command: Command, out: &mut impl Write) -> anyhow::Result<bool> {
    let now = Now::system();
    match command {
        Command::Registry {
            command: RegistryCommand::Init,
            table,
        } => registry::init(&ops(g, &table).await?.aws("registry init")?, out).await,
        Command::Protect {
            target,
            opts,
            table,
        } => on_backend!(g, table, |ops| registry::protect(
            &ops, &target, &opts, &now, out
        )),
        Command::Unprotect {
            target,
            force,
            table,
        } => on_backend!(g, table, |ops| registry::unprotect(
            &ops, &target, force, &now, out
        )),
        Command::Edit {
            target,
            fields,
            table,
        } => on_backend!(g, table, |ops| registry::edit(
            &ops,
            &target,
            &fields.fields(),
            &now,
            out
        )),
        Command::Restore {
            target,
            dry_run,
            table,
        } => {
            let chosen = ops(g, &table).await?;
            let result = registry::restore(&chosen, g, &target, dry_run, out).await;
            match &chosen.backend {
                Backend::Embedded(world) => saved(world, &table, result),
                Backend::Aws(_) => result,
            }
        }
        Command::List { json, table } => {
            on_backend!(g, table, |ops| registry::list(&ops, json, out))
        }
        Command::History { target, table } => {
            on_backend!(g, table, |ops| registry::history(&ops, &target, out))
        }
        Command::Status { json, table } => {
            on_backend!(g, table, |ops| registry::status(&ops, json, out))
        }
        other => anyhow::bail!("{other:?} is not a command on the registry's items"),
    }
}

async fn run_lifecycle(
    g: &Global,
    command: LifecycleCommand,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    match command {
        LifecycleCommand::Check { repo, table } => on_backend!(g, table, |ops| lifecycle::check(
            &ops,
            &repo,
            Now::system().epoch,
            out
        )),
        LifecycleCommand::Shield { repo, apply, table } => {
            on_backend!(g, table, |ops| lifecycle::shield(&ops, &repo, apply, out))
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
                    let source = lifecycle::Source::<Memory>::File(&file);
                    lifecycle::simulate_policy(&policy, source, now, &prefix, json, out).await
                }
                (None, Some(repo)) => {
                    // Without a table the images are read from ECR and none is marked.
                    let chosen = ops_for(g, &table, false).await?;
                    with_ops!(chosen, |ops| {
                        let source = lifecycle::Source::Repo(&ops, &repo);
                        lifecycle::simulate_policy(&policy, source, now, &prefix, json, out).await
                    })
                }
                (None, None) => anyhow::bail!("give --images FILE or --repo REPO"),
            }
        }
    }
}

async fn run_rule(g: &Global, command: RuleCommand, out: &mut impl Write) -> anyhow::Result<bool> {
    match command {
        RuleCommand::Add { spec, opts, table } => {
            on_backend!(g, table, |ops| rules::add(&ops, &spec, &opts, out))
        }
        RuleCommand::List { json, table } => {
            on_backend!(g, table, |ops| rules::list(&ops, json, out))
        }
        RuleCommand::Remove { rule, table } => {
            on_backend!(g, table, |ops| rules::remove(&ops, &rule, out))
        }
        RuleCommand::Preview { repo, table } => {
            on_backend!(g, table, |ops| rules::preview(&ops, repo.as_deref(), out))
        }
    }
}
