//! Keep-alive planning: which guard-owned tags to put back after restores, which one to
//! release when a pin leaves a digest, and how it leaves without deleting its image.

use serde::Serialize;

use super::{Action, Decision, Outcome, PutStep};
use crate::registry::image::{ImageInfo, Storage};
use crate::registry::Entry;

/// The keep-alive tags to put (back) after restores: one `PutStep` per pinned digest whose
/// tag was put back or found in place, with its stored manifest. Run beside the page, so a
/// restore still takes three round trips; a restore of a fully deleted image needs it.
pub fn keep_alive_steps(done: &[(&Decision, &Outcome)], keep_prefix: &str) -> Vec<PutStep> {
    let mut steps: Vec<PutStep> = Vec::new();
    for (d, outcome) in done {
        let restored = matches!(outcome, Outcome::Restored | Outcome::AlreadyInPlace);
        if !restored || !d.entry.keep_alive || !matches!(d.action, Action::Restore | Action::Revert)
        {
            continue;
        }
        let Some(pin) = &d.entry.pin else { continue };
        let (Some(manifest), Some(tag)) = (
            &pin.manifest,
            crate::registry::keep_tag(keep_prefix, &pin.digest),
        ) else {
            continue;
        };
        if !steps.iter().any(|s| s.tag.as_deref() == Some(tag.as_str())) {
            steps.push(PutStep {
                manifest: manifest.clone(),
                tag: Some(tag),
            });
        }
    }
    steps
}

/// The keep-alive tag to remove when `tag`'s pin leaves `old_digest`, unless another entry
/// with a keep-alive tag still pins that digest.
pub fn keep_alive_to_drop(
    entries: &[Entry],
    tag: &str,
    old_digest: &str,
    keep_prefix: &str,
) -> Option<String> {
    let shared = entries
        .iter()
        .any(|e| e.tag != tag && e.keep_alive && e.digest() == Some(old_digest));
    if shared {
        None
    } else {
        crate::registry::keep_tag(keep_prefix, old_digest)
    }
}

/// How a guard-owned tag comes off its image without the guard deleting anything: ECR
/// deletes an image whose last tag is removed, and leaves an image untagged when its tag is
/// pushed onto another image. The guard only ever does the second to an image whose last tag
/// is its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Leave {
    /// The tag is not in the repository (or the repository is gone): nothing to do.
    Gone,
    /// The image keeps another tag: `BatchDeleteImage` of the guard tag only untags it.
    Untag {
        /// The image the tag leaves.
        digest: String,
    },
    /// The guard tag is its image's last tag: it is pushed onto `carrier`, an image that
    /// keeps other tags, which leaves `digest` untagged (as any moved tag does), then removed
    /// from the carrier. The team's own lifecycle rules decide the untagged image's fate.
    Carry {
        /// The image the tag leaves, untagged after.
        digest: String,
        /// The image that takes the tag for a moment.
        carrier: String,
    },
    /// The tag stays where it is, retired: no image can take it (none keeps other tags, the
    /// repository's tags are immutable, or ECR could not be read). `status` lists it; a later
    /// reconcile tries again.
    Retire {
        /// The image it stays on, when known.
        digest: Option<String>,
        /// Why it stays.
        why: String,
    },
}

impl Leave {
    /// A line for a person: what happened to the tag and its image.
    pub fn describe(&self, tag: &str) -> String {
        use crate::text::short_digest;
        match self {
            Leave::Gone => format!("guard tag {tag} was not in the repository"),
            Leave::Untag { digest } => {
                format!("guard tag {tag} removed from {} (it keeps its other tags)", short_digest(digest))
            }
            Leave::Carry { digest, .. } => format!(
                "guard tag {tag} moved off {}: the image stays in ECR, untagged, as ECR leaves an image whose tag moved (your lifecycle rules decide its fate)",
                short_digest(digest)
            ),
            Leave::Retire { digest, why } => format!(
                "guard tag {tag} kept (retired) on {}: {why}; the image stays in ECR",
                digest.as_deref().map_or("its image", short_digest)
            ),
        }
    }
}

/// How `tag` comes off its image, given the repository's images now (`images`: standard
/// storage, each with its tags). `prefer` names a carrier to take first when it can (a
/// follow's new pin). A carrier is another image with at least one other tag, in standard
/// storage: one with a tag that is not the guard's (`keep_prefix`) first, the newest first.
pub fn plan_leave(
    images: &[ImageInfo],
    tag: &str,
    prefer: Option<&str>,
    keep_prefix: &str,
) -> Leave {
    let Some(holder) = images.iter().find(|i| i.tags.iter().any(|t| t == tag)) else {
        return Leave::Gone;
    };
    if holder.tags.iter().any(|t| t != tag) {
        return Leave::Untag {
            digest: holder.digest.clone(),
        };
    }
    let carries = |i: &&ImageInfo| {
        i.digest != holder.digest
            && i.storage == Storage::Standard
            && i.tags.iter().any(|t| t != tag)
    };
    let user_tagged = |i: &ImageInfo| i.tags.iter().any(|t| !t.starts_with(keep_prefix));
    let preferred = prefer.and_then(|p| images.iter().filter(carries).find(|i| i.digest == p));
    let best = images.iter().filter(carries).max_by(|a, b| {
        (user_tagged(a), a.pushed_at, &a.digest).cmp(&(user_tagged(b), b.pushed_at, &b.digest))
    });
    match preferred.or(best) {
        Some(c) => Leave::Carry {
            digest: holder.digest.clone(),
            carrier: c.digest.clone(),
        },
        None => Leave::Retire {
            digest: Some(holder.digest.clone()),
            why: "it is the image's last tag and no other image in the repository keeps a tag to carry it".into(),
        },
    }
}

/// `images` as they are after `leave` of `tag` went through (so that several tags released
/// in one go are planned one after the other).
pub fn after_leave(images: &mut [ImageInfo], tag: &str, leave: &Leave) {
    if matches!(leave, Leave::Untag { .. } | Leave::Carry { .. }) {
        for i in images.iter_mut() {
            i.tags.retain(|t| t != tag);
        }
    }
}

/// The guard's own tags in the repository that no pin needs (`needed`: the keep-alive tags
/// of the pins that keep one): retired ones, or ones a release could not finish.
pub fn stray_guard_tags(
    images: &[ImageInfo],
    needed: &[String],
    keep_prefix: &str,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = images
        .iter()
        .flat_map(|i| i.tags.iter().map(move |t| (t.clone(), i.digest.clone())))
        .filter(|(t, _)| t.starts_with(keep_prefix) && !needed.contains(t))
        .collect();
    out.sort();
    out
}

/// The keep-alive tags the entries' pins need (entries with `keep_alive` and a pin).
pub fn needed_keep_tags(entries: &[Entry], keep_prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter(|e| e.keep_alive)
        .filter_map(|e| e.digest())
        .filter_map(|d| crate::registry::keep_tag(keep_prefix, d))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "etg-keep-";

    fn image(digest: &str, tags: &[&str], pushed_at: i64) -> ImageInfo {
        ImageInfo {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at,
            last_pulled: None,
            storage: Storage::Standard,
            archived_at: None,
        }
    }

    #[test]
    fn a_guard_tag_beside_other_tags_is_simply_removed() {
        let images = [image("A", &["prod", "etg-keep-a"], 1)];
        assert_eq!(
            plan_leave(&images, "etg-keep-a", None, P),
            Leave::Untag { digest: "A".into() }
        );
    }

    #[test]
    fn a_last_guard_tag_is_carried_off_never_deleted() {
        let images = [
            image("A", &["etg-keep-a"], 1),
            image("B", &["prod", "etg-keep-b"], 2),
            image("C", &["etg-keep-c"], 3),
        ];
        // The follow's new pin when named, else the newest image with a tag of the team's own.
        assert_eq!(
            plan_leave(&images, "etg-keep-a", Some("C"), P),
            Leave::Carry {
                digest: "A".into(),
                carrier: "C".into()
            }
        );
        assert_eq!(
            plan_leave(&images, "etg-keep-a", None, P),
            Leave::Carry {
                digest: "A".into(),
                carrier: "B".into()
            }
        );
        // A preferred image that could not carry it (not there) is passed over.
        assert_eq!(
            plan_leave(&images, "etg-keep-a", Some("Z"), P),
            Leave::Carry {
                digest: "A".into(),
                carrier: "B".into()
            }
        );
    }

    #[test]
    fn with_nothing_to_carry_it_the_tag_is_retired_in_place() {
        let mut archived = image("B", &["old"], 2);
        archived.storage = Storage::Archived;
        let untagged = image("C", &[], 3);
        let images = [image("A", &["etg-keep-a"], 1), archived, untagged];
        assert!(matches!(
            plan_leave(&images, "etg-keep-a", None, P),
            Leave::Retire { digest: Some(d), .. } if d == "A"
        ));
        assert_eq!(plan_leave(&images, "etg-keep-x", None, P), Leave::Gone);
    }

    #[test]
    fn several_releases_are_planned_on_what_the_ones_before_left() {
        // Two images held only by guard tags: the first can be carried by the second, which
        // is then left with no other tag to carry, and nothing else can carry it.
        let mut images = vec![
            image("A", &["etg-keep-a"], 1),
            image("B", &["etg-keep-b"], 2),
        ];
        let first = plan_leave(&images, "etg-keep-a", None, P);
        assert_eq!(
            first,
            Leave::Carry {
                digest: "A".into(),
                carrier: "B".into()
            }
        );
        after_leave(&mut images, "etg-keep-a", &first);
        assert!(images[0].tags.is_empty(), "A is untagged, and still listed");
        assert!(matches!(
            plan_leave(&images, "etg-keep-b", None, P),
            Leave::Retire { .. }
        ));
    }

    #[test]
    fn stray_guard_tags_are_the_ones_no_pin_needs() {
        let images = [
            image("A", &["prod", "etg-keep-a"], 1),
            image("B", &["etg-keep-b"], 2),
        ];
        assert_eq!(
            stray_guard_tags(&images, &["etg-keep-a".into()], P),
            vec![("etg-keep-b".to_string(), "B".to_string())]
        );
    }
}
