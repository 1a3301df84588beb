//! What a lifecycle policy would do to a repository's images now, with ECR's documented
//! semantics:
//!
//! - rules are evaluated in priority order; an image is acted on by at most one rule;
//! - an image that meets the tagging requirements of a higher-priority rule (for its storage
//!   class) is never acted on by a lower one, even when that rule keeps it;
//! - `imageCountMoreThan` counts every image meeting the rule's tagging requirements (those
//!   claimed by higher rules included) and selects all but the newest N, oldest first;
//! - `sinceImagePushed` / `sinceImagePulled` / `sinceImageTransitioned` select images whose
//!   time is more than N days before now; an image never pulled counts from its push;
//! - rules for `archive` storage see archived images only, the others standard ones; images
//!   on their way back from archive are left alone.
//!
//! Ties in push time are broken by digest, so results never depend on input order.

use serde::Serialize;
use serde_json::Value;

use super::policy::{Count, Policy, RuleAction};
use crate::guard::status::Storage;

pub use crate::registry::image::ImageInfo;

/// What the policy does to an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Deleted.
    Expire,
    /// Moved to archive storage.
    Transition,
    /// Left as it is.
    Keep,
}

/// The fate of one image and the rule that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The image.
    pub digest: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// What happens to it.
    pub action: Fate,
    /// The deciding rule's priority: the rule that acts on it, or the rule whose tagging
    /// requirements claim it and keep it; `None` when no rule selects it.
    pub rule: Option<u64>,
}

const DAY: i64 = 24 * 3600;

/// The fate of every image (in the order given) under `policy` at `now` (epoch seconds).
pub fn simulate(policy: &Policy, images: &[ImageInfo], now: i64) -> Vec<Verdict> {
    let mut fate: Vec<Option<(Fate, u64)>> = vec![None; images.len()];
    let archived = |im: &ImageInfo| im.storage == Storage::Archived;
    let in_play = |im: &ImageInfo| im.storage != Storage::Activating;
    for rule in &policy.rules {
        let mut matching: Vec<usize> = (0..images.len())
            .filter(|&i| {
                let im = &images[i];
                in_play(im) && archived(im) == rule.archived && rule.selects(&im.tags)
            })
            .collect();
        // Newest first; ties by digest.
        matching.sort_by(|&a, &b| {
            let (a, b) = (&images[a], &images[b]);
            b.pushed_at
                .cmp(&a.pushed_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
        let older = |t: i64, n: u64| now - t > (n as i64).saturating_mul(DAY);
        let selected: Vec<usize> = match rule.count {
            Count::MoreThan(n) => matching.iter().skip(n as usize).copied().collect(),
            Count::SincePushed(n) => matching
                .iter()
                .copied()
                .filter(|&i| older(images[i].pushed_at, n))
                .collect(),
            Count::SincePulled(n) => matching
                .iter()
                .copied()
                .filter(|&i| older(images[i].last_pulled.unwrap_or(images[i].pushed_at), n))
                .collect(),
            Count::SinceTransitioned(n) => matching
                .iter()
                .copied()
                .filter(|&i| older(images[i].archived_at.unwrap_or(images[i].pushed_at), n))
                .collect(),
        };
        let act = match rule.action {
            RuleAction::Expire => Fate::Expire,
            RuleAction::Transition => Fate::Transition,
        };
        for i in selected {
            let im = &images[i];
            let owner = policy.owner(&im.tags, archived(im)).map(|r| r.priority);
            if fate[i].is_none() && owner == Some(rule.priority) {
                fate[i] = Some((act, rule.priority));
            }
        }
    }
    images
        .iter()
        .zip(fate)
        .map(|(im, f)| {
            let (action, rule) = match f {
                Some((a, r)) => (a, Some(r)),
                None => (
                    Fate::Keep,
                    in_play(im)
                        .then(|| policy.owner(&im.tags, archived(im)).map(|r| r.priority))
                        .flatten(),
                ),
            };
            Verdict {
                digest: im.digest.clone(),
                tags: im.tags.clone(),
                action,
                rule,
            }
        })
        .collect()
}

/// The images of `aws ecr describe-images` output (`{"imageDetails": [...]}`, or the list
/// alone). Every problem names the image (by position and digest) and the field.
pub fn images_from_describe(v: &Value) -> Result<Vec<ImageInfo>, String> {
    let list = v
        .get("imageDetails")
        .unwrap_or(v)
        .as_array()
        .ok_or("expected the output of `aws ecr describe-images`: an object with `imageDetails`, or a list")?;
    list.iter()
        .enumerate()
        .map(|(i, im)| {
            let digest = im
                .get("imageDigest")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("imageDetails[{i}]: no imageDigest"))?;
            let when = |k: &str| -> Result<Option<i64>, String> {
                match im.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(t) => crate::text::parse_time(t).map(Some).ok_or_else(|| {
                        format!("imageDetails[{i}] ({digest}): {k} is not a time: {t}")
                    }),
                }
            };
            let pushed_at = when("imagePushedAt")?
                .ok_or_else(|| format!("imageDetails[{i}] ({digest}): no imagePushedAt"))?;
            let tags = im
                .get("imageTags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let storage = match im.get("imageStatus").and_then(Value::as_str) {
                Some("ARCHIVED") => Storage::Archived,
                Some("ACTIVATING") => Storage::Activating,
                _ => Storage::Standard,
            };
            Ok(ImageInfo {
                digest: digest.to_string(),
                tags,
                pushed_at,
                last_pulled: when("lastRecordedPullTime")?,
                storage,
                archived_at: when("lastArchivedAt")?,
            })
        })
        .collect()
}
