//! `rule add | list | remove | preview`: pattern rules in the registry table.

use std::io::Write;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Map, Value};

use super::registry::{Ops, ProtectOptions};
use crate::guard::rules::{next_to_release, protected};
use crate::ports::Console;
use crate::registry::rule::rule_field;
use crate::registry::{
    field, is_rule_item, parse_item, parse_rule, RepoKey, TagRule, RULE_PARTITION,
};
use crate::text::{clean, short_digest};

/// What `rule add` is given.
#[derive(Clone, Debug, clap::Args)]
pub struct RuleSpec {
    /// The rule's name.
    #[arg(value_name = "NAME")]
    pub rule: String,
    /// Repositories: a glob over ACCOUNT/REGION/NAME (`*` any run of characters), or a plain
    /// NAME in the caller's account and region.
    #[arg(long)]
    pub repositories: String,
    /// The tag regex (RE2 syntax), e.g. '^pr-(?P<branch>.+)-[0-9a-f]{40}$'.
    #[arg(long)]
    pub pattern: String,
    /// A named group of the pattern: keep N per value it captures.
    #[arg(long)]
    pub group_by: Option<String>,
    /// How many of the newest images to protect (per group).
    #[arg(long)]
    pub keep: u64,
}

/// The rules in the table, valid or not (each invalid one named).
pub(crate) async fn read_rules<B: Console>(
    ops: &Ops<B>,
) -> anyhow::Result<Vec<Result<TagRule, crate::registry::InvalidEntry>>> {
    Ok(ops
        .partition(RULE_PARTITION, false)
        .await
        .context("reading the rules")?
        .iter()
        .map(parse_rule)
        .collect())
}

/// `rule add`: writes a rule item, checked first; an existing rule is replaced only with
/// `--force`. The rule takes effect on the next push of a tag it matches, or reconcile.
pub async fn add<B: Console>(
    ops: &Ops<B>,
    spec: &RuleSpec,
    opts: &ProtectOptions,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    if opts.no_keep_alive {
        anyhow::bail!(
            "--no-keep-alive is for `protect`: a rule's pins always keep their image alive"
        );
    }
    let repositories = if spec.repositories.matches('/').count() >= 2 {
        spec.repositories.clone()
    } else {
        ops.repo(&spec.repositories).await?.key()
    };
    let mut item = Map::new();
    item.insert(field::REPOSITORY.into(), RULE_PARTITION.into());
    item.insert(field::TAG.into(), spec.rule.clone().into());
    item.insert(rule_field::REPOSITORIES.into(), repositories.into());
    item.insert(rule_field::PATTERN.into(), spec.pattern.clone().into());
    if let Some(g) = &spec.group_by {
        item.insert(rule_field::GROUP_BY.into(), g.clone().into());
    }
    item.insert(rule_field::KEEP.into(), spec.keep.into());
    opts.write_settings(&mut item);
    let item = Value::Object(item);
    let rule = parse_rule(&item).map_err(|bad| {
        anyhow!(
            "rule {}: {}",
            clean(&spec.rule, 130),
            bad.problems.join("; ")
        )
    })?;
    if !ops.put_item(&item, opts.force).await? {
        bail!(
            "rule {} already exists: add --force to replace it",
            rule.name
        );
    }
    writeln!(
        out,
        "rule {} written: {}; it takes effect on the next push of a matching tag or the next reconcile",
        rule.name,
        describe(&rule)
    )?;
    Ok(true)
}

fn describe(r: &TagRule) -> String {
    format!(
        "keep the newest {}{} of tags matching {} in {}",
        r.keep,
        r.group_by
            .as_deref()
            .map(|g| format!(" per {g}"))
            .unwrap_or_default(),
        r.pattern.as_str(),
        r.repositories
    )
}

/// `rule list`: every rule, as lines or (`json`) one JSON object per line; invalid ones
/// named. `Ok(false)` when one is invalid.
pub async fn list<B: Console>(
    ops: &Ops<B>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let rules = read_rules(ops).await?;
    let mut ok = true;
    for r in &rules {
        match (r, as_json) {
            (Ok(r), true) => writeln!(out, "{}", r.to_item())?,
            (Ok(r), false) => writeln!(
                out,
                "{:<24} {} (on_delete {}, on_move {}, severity {})",
                r.name,
                describe(r),
                json!(r.settings.on_delete).as_str().unwrap_or("?"),
                json!(r.settings.on_move).as_str().unwrap_or("?"),
                r.settings.severity.as_str()
            )?,
            (Err(bad), true) => {
                ok = false;
                writeln!(
                    out,
                    "{}",
                    json!({"invalid": bad.key, "problems": bad.problems})
                )?
            }
            (Err(bad), false) => {
                ok = false;
                writeln!(out, "INVALID {bad}")?
            }
        }
    }
    if !as_json {
        writeln!(out, "{} rule(s)", rules.len())?;
    }
    Ok(ok)
}

/// `rule remove NAME`: deletes the rule item. The pins it made are released by the next
/// reconcile (or push of a matching tag).
pub async fn remove<B: Console>(
    ops: &Ops<B>,
    name: &str,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    if !ops.delete_item(RULE_PARTITION, name).await? {
        bail!("there is no rule {}", clean(name, 130));
    }
    writeln!(
        out,
        "rule {} removed; the pins it made are released by the next reconcile",
        clean(name, 130)
    )?;
    Ok(true)
}

/// `rule preview [REPO]`: for each rule and repository it covers (REPO, or the one it names,
/// or those with registry items), which images it protects now, per group, and which one the
/// next push to each full group releases.
pub async fn preview<B: Console>(
    ops: &Ops<B>,
    repo: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let only = match repo {
        Some(r) => Some(ops.repo(r).await?),
        None => None,
    };
    let rules: Vec<TagRule> = read_rules(ops)
        .await?
        .into_iter()
        .filter_map(|r| match r {
            Ok(r) => Some(r),
            Err(bad) => {
                let _ = writeln!(out, "INVALID {bad}");
                None
            }
        })
        .collect();
    let known: Vec<RepoKey> = match &only {
        Some(r) => vec![r.clone()],
        None => {
            let mut keys: Vec<RepoKey> = ops
                .registry_items()
                .await?
                .iter()
                .filter(|i| !is_rule_item(i))
                .filter_map(|i| parse_item(i).ok().map(|e| e.repo))
                .chain(
                    rules
                        .iter()
                        .filter_map(|r| RepoKey::parse(&r.repositories).ok()),
                )
                .collect();
            keys.sort();
            keys.dedup();
            keys
        }
    };
    for rule in &rules {
        for repo in known.iter().filter(|k| rule.covers(k)) {
            let images = ops.all_images(repo).await?;
            writeln!(out, "rule {} in {repo}: {}", rule.name, describe(rule))?;
            let kept = protected(rule, &images, &ops.scope.keep_prefix);
            let next = next_to_release(rule, &images, &ops.scope.keep_prefix);
            let mut groups: Vec<&str> = kept.iter().map(|p| p.group.as_str()).collect();
            groups.dedup();
            if groups.is_empty() {
                writeln!(out, "  no image has a matching tag")?;
            }
            for g in groups {
                let tags: Vec<String> = kept
                    .iter()
                    .filter(|p| p.group == g)
                    .map(|p| format!("{} ({})", p.tag, short_digest(&p.digest)))
                    .collect();
                let label = if rule.group_by.is_some() {
                    format!(
                        "{} {}",
                        rule.group_by.as_deref().unwrap_or(""),
                        clean(g, 100)
                    )
                } else {
                    "all".into()
                };
                let falls = next
                    .iter()
                    .find(|(ng, _)| ng == g)
                    .map(|(_, d)| format!("; the next push releases {}", short_digest(d)))
                    .unwrap_or_default();
                writeln!(out, "  {label}: protects {}{falls}", tags.join(", "))?;
            }
        }
    }
    if rules.is_empty() {
        writeln!(out, "no rules")?;
    }
    Ok(true)
}
