//! `lifecycle check | shield | simulate`: a repository's lifecycle policy against the
//! protected images, all through one evaluator ([`crate::guard::lifecycle`]).

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::registry::Ops;
use crate::guard::lifecycle::{self, simulate, Fate, ImageInfo, Policy, Verdict};
use crate::ports::Console;
use crate::registry::{parse_item, Entry, RepoKey};
use crate::text::{clean, short_digest};

/// Reads a policy document; `source` names it in errors. Takes the policy itself or the
/// output of `aws ecr get-lifecycle-policy` (its `lifecyclePolicyText`).
pub fn read_policy(text: &str, source: &str) -> anyhow::Result<Policy> {
    let mut v: Value = serde_json::from_str(text).with_context(|| format!("{source}: not JSON"))?;
    if let Some(inner) = v.get("lifecyclePolicyText").and_then(Value::as_str) {
        v = serde_json::from_str(inner)
            .with_context(|| format!("{source}: lifecyclePolicyText is not JSON"))?;
    }
    Policy::parse(&v).map_err(|problems| {
        anyhow!(
            "{source}: not a valid lifecycle policy:\n  - {}",
            problems.join("\n  - ")
        )
    })
}

/// The repository's lifecycle policy as JSON, `None` when it has none.
async fn policy_json<B: Console>(ops: &Ops<B>, repo: &RepoKey) -> anyhow::Result<Option<Value>> {
    match ops.lifecycle_policy(repo).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("the lifecycle policy of {repo} is not JSON")),
    }
}

/// The registry items of one repository (valid ones only).
async fn repo_entries<B: Console>(ops: &Ops<B>, repo: &RepoKey) -> anyhow::Result<Vec<Entry>> {
    Ok(ops
        .partition(&repo.key(), false)
        .await?
        .iter()
        .filter_map(|i| parse_item(i).ok())
        .collect())
}

/// True for an image the guard protects: pinned by an item, or carrying a keep-alive tag.
fn is_protected(im: &ImageInfo, pinned: &[&str], keep_prefix: &str) -> bool {
    pinned.contains(&im.digest.as_str()) || im.tags.iter().any(|t| t.starts_with(keep_prefix))
}

/// `lifecycle check REPO`: every protected image a lifecycle rule could expire or archive,
/// with the rule, and whether it would do so now. `Ok(false)` when there is one.
pub async fn check<B: Console>(
    ops: &Ops<B>,
    repo: &str,
    now: i64,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let repo = ops.repo(repo).await?;
    let Some(policy) = policy_json(ops, &repo).await? else {
        writeln!(
            out,
            "{repo} has no lifecycle policy: no rule can expire a protected image"
        )?;
        return Ok(true);
    };
    let policy = Policy::parse(&policy).map_err(|p| {
        anyhow!(
            "the lifecycle policy of {repo} is not valid: {}",
            p.join("; ")
        )
    })?;
    let prefix = &ops.scope.keep_prefix;
    if let Some(rule) = lifecycle::keep_alive_exposure(&policy, prefix) {
        writeln!(
            out,
            "WARNING rule {} ({}{}) selects images whose only tag is a keep-alive tag ({prefix}…): an image the guard keeps alive after its protected tag was deleted can be taken; `ecr-tag-guard lifecycle shield {}` puts a rule first that keeps them",
            rule.priority,
            rule.action_name(),
            rule.description
                .as_deref()
                .map(|d| format!(": {}", clean(d, 200)))
                .unwrap_or_default(),
            repo.key()
        )?;
    }
    let entries = repo_entries(ops, &repo).await?;
    let pinned: Vec<&str> = entries.iter().filter_map(|e| e.digest()).collect();
    let images = ops.all_images(&repo).await?;
    let protected: Vec<&ImageInfo> = images
        .iter()
        .filter(|im| pinned.contains(&im.digest.as_str()))
        .collect();
    let tagged: Vec<(String, Vec<String>)> = protected
        .iter()
        .map(|im| (im.digest.clone(), im.tags.clone()))
        .collect();
    let risks = lifecycle::at_risk(&policy, &tagged, &ops.scope.keep_prefix);
    let verdicts = simulate(&policy, &images, now);
    for r in &risks {
        let guarded: Vec<&str> = entries
            .iter()
            .filter(|e| e.digest() == Some(r.digest.as_str()))
            .map(|e| e.tag.as_str())
            .collect();
        let now_too = verdicts
            .iter()
            .find(|v| v.digest == r.digest)
            .filter(|v| v.action != Fate::Keep)
            .map_or(String::new(), |_| {
                format!(" — it would {} it NOW", r.action)
            });
        writeln!(
            out,
            "AT RISK {} (protected: {}) by rule {} ({}{}){now_too}",
            short_digest(&r.digest),
            guarded.join(", "),
            r.rule_priority,
            r.action,
            r.description
                .as_deref()
                .map(|d| format!(": {}", clean(d, 200)))
                .unwrap_or_default(),
        )?;
    }
    writeln!(
        out,
        "{} protected image(s) in {repo}, {} a lifecycle rule could take{}",
        protected.len(),
        risks.len(),
        if risks.is_empty() {
            String::new()
        } else {
            format!(
                "; `ecr-tag-guard lifecycle shield {}` adds a rule that keeps them",
                repo.key()
            )
        }
    )?;
    Ok(risks.is_empty())
}

/// `lifecycle shield REPO [--apply]`: shows (and writes) the policy with a priority-1 rule
/// that never expires images carrying a keep-alive tag.
pub async fn shield<B: Console>(
    ops: &Ops<B>,
    repo: &str,
    apply: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let repo = ops.repo(repo).await?;
    if let (true, Some(why)) = (apply, ops.scope.outside(&repo)) {
        bail!("{repo} is outside the guard's scope ({why}): its lifecycle policy is left as it is");
    }
    let current = policy_json(ops, &repo).await?;
    let Some(new) = lifecycle::shield(current.as_ref(), &ops.scope.keep_prefix)
        .map_err(|e| anyhow!("the lifecycle policy of {repo}: {e}"))?
    else {
        writeln!(
            out,
            "{repo}: the lifecycle policy already starts with the keep-alive shield"
        )?;
        return Ok(true);
    };
    let text = serde_json::to_string_pretty(&new)?;
    writeln!(out, "{text}")?;
    if apply {
        ops.put_lifecycle_policy(&repo, &text).await?;
        writeln!(out, "written to {repo}")?;
    } else {
        writeln!(out, "(not written: add --apply)")?;
    }
    Ok(true)
}

/// Where `simulate` gets the images from.
pub enum Source<'a, B> {
    /// `aws ecr describe-images` output in a file.
    File(&'a Path),
    /// The repository, through ECR (and its registry items, when a table is named).
    Repo(&'a Ops<B>, &'a str),
}

/// `lifecycle simulate`: what the policy would expire or archive now, each protected image
/// marked (pinned by an item, protected by a rule, or carrying a keep-alive tag). `Ok(false)` when it would take a protected image.
pub async fn simulate_policy<B: Console>(
    policy_file: &Path,
    source: Source<'_, B>,
    now: i64,
    keep_prefix: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(policy_file)
        .with_context(|| format!("cannot read {}", policy_file.display()))?;
    let policy = read_policy(&text, &policy_file.display().to_string())?;
    let (images, pinned_digests) = read_source(source).await?;
    let pinned: Vec<&str> = pinned_digests.iter().map(String::as_str).collect();
    let verdicts = simulate(&policy, &images, now);
    let hit = verdicts
        .iter()
        .zip(&images)
        .filter(|(v, im)| v.action != Fate::Keep && is_protected(im, &pinned, keep_prefix))
        .count();
    if as_json {
        for (v, im) in verdicts.iter().zip(&images) {
            let mut o = serde_json::to_value(v)?;
            o["protected"] = json!(is_protected(im, &pinned, keep_prefix));
            writeln!(out, "{o}")?;
        }
        return Ok(hit == 0);
    }
    print_simulation(&policy, &images, &verdicts, &pinned, keep_prefix, out)?;
    let count = |f: Fate| verdicts.iter().filter(|v| v.action == f).count();
    writeln!(
        out,
        "{} image(s): {} expire, {} transition, {} keep; {hit} protected image(s) hit",
        images.len(),
        count(Fate::Expire),
        count(Fate::Transition),
        count(Fate::Keep)
    )?;
    Ok(hit == 0)
}

/// The images to simulate over, and the digests the registry (items and rules) protects.
async fn read_source<B: Console>(
    source: Source<'_, B>,
) -> anyhow::Result<(Vec<ImageInfo>, Vec<String>)> {
    match source {
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            let images = lifecycle::simulate::images_from_describe(&v)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Ok((images, Vec::new()))
        }
        Source::Repo(ops, repo) => {
            let repo = ops.repo(repo).await?;
            let images = ops.all_images(&repo).await?;
            let mut pinned = Vec::new();
            if ops.has_registry() {
                let entries = repo_entries(ops, &repo).await?;
                pinned.extend(entries.iter().filter_map(|e| e.digest().map(String::from)));
                // What the rules protect now, materialised or not yet.
                for rule in super::rules::read_rules(ops).await?.into_iter().flatten() {
                    if rule.covers(&repo) {
                        let prefix = &ops.scope.keep_prefix;
                        let protected = crate::guard::rules::protected(&rule, &images, prefix);
                        pinned.extend(protected.into_iter().map(|p| p.digest));
                    }
                }
            }
            Ok((images, pinned))
        }
    }
}

/// Each rule's count, then each image (newest first) with its fate.
fn print_simulation(
    policy: &Policy,
    images: &[ImageInfo],
    verdicts: &[Verdict],
    pinned: &[&str],
    keep_prefix: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for rule in &policy.rules {
        let taken = verdicts
            .iter()
            .filter(|v| v.rule == Some(rule.priority) && v.action != Fate::Keep)
            .count();
        let about = rule
            .description
            .as_deref()
            .map(|d| format!(" ({})", clean(d, 200)))
            .unwrap_or_default();
        writeln!(
            out,
            "rule {}{about}: {} {taken} image(s)",
            rule.priority,
            rule.action_name(),
        )?;
    }
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(images[i].pushed_at),
            images[i].digest.clone(),
        )
    });
    for i in order {
        let (v, im) = (&verdicts[i], &images[i]);
        let action = match v.action {
            Fate::Expire => "EXPIRE",
            Fate::Transition => "TRANSITION",
            Fate::Keep => "keep",
        };
        let tags = if v.tags.is_empty() {
            "<untagged>".to_string()
        } else {
            clean(&v.tags.join(", "), 300)
        };
        let mark = if is_protected(im, pinned, keep_prefix) {
            "  [PROTECTED]"
        } else {
            ""
        };
        writeln!(
            out,
            "{action:<11} {:<9} {}  {tags}{mark}",
            v.rule.map_or("-".to_string(), |r| format!("rule {r}")),
            short_digest(&v.digest),
        )?;
    }
    Ok(())
}
