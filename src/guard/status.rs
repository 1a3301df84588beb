//! How a protected tag stands in ECR now, for `status` and reconcile.

use serde::Serialize;

use crate::registry::{keep_tag, Entry, Manifest};
use crate::text::short_digest;

/// What ECR says about a tag: where it points, or its failure code; `None` when the
/// repository does not exist.
pub type Seen<'a> = Option<Result<&'a str, &'a str>>;

pub use crate::registry::image::Storage;

/// A protected tag's standing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TagState {
    /// On its pin, with the manifest stored.
    Ok,
    /// On another digest.
    Moved {
        /// Where it points now.
        to: String,
    },
    /// Not in the repository.
    Missing,
    /// The repository does not exist.
    RepositoryGone,
    /// The item has no digest yet: the guard pins it when it first sees the tag.
    NotPinned,
    /// The item has no digest and ECR has no such tag: nothing to protect until it is pushed.
    TagNotFound,
    /// On its pin, but no manifest is stored: a restore after a full delete would fail.
    PinWithoutManifest,
    /// On its pin, but the pinned image lacks its keep-alive tag: deleting the protected tag
    /// would delete the image.
    KeepAliveMissing,
    /// The pinned image is in archive storage: it cannot be pulled.
    Archived,
    /// The pinned image is being brought back from archive storage.
    Activating,
    /// ECR could not say (its failure code).
    Unreadable {
        /// ECR's failure code.
        code: String,
    },
}

impl TagState {
    /// True for [`TagState::Ok`].
    pub fn is_ok(&self) -> bool {
        *self == TagState::Ok
    }

    /// A short line for people.
    pub fn describe(&self) -> String {
        match self {
            TagState::Ok => "ok".into(),
            TagState::Moved { to } => format!("moved to {}", short_digest(to)),
            TagState::Missing => "missing".into(),
            TagState::RepositoryGone => "repository gone".into(),
            TagState::NotPinned => "not pinned yet".into(),
            TagState::TagNotFound => "tag not in ECR (not pinned)".into(),
            TagState::PinWithoutManifest => "pin without manifest".into(),
            TagState::KeepAliveMissing => "keep-alive tag missing".into(),
            TagState::Archived => "archived (cannot be pulled)".into(),
            TagState::Activating => "coming back from archive (cannot be pulled yet)".into(),
            TagState::Unreadable { code } => format!("unreadable ({code})"),
        }
    }
}

/// The standing of `entry` given what ECR has for its tag (`seen`), where the pinned image
/// is stored and whether its keep-alive tag sits on it (`kept`). A moved tag is reported as
/// moved whatever the storage of its old image; otherwise an archived pin comes first: it
/// must be brought back before anything else can be put right.
pub fn standing(entry: &Entry, seen: Seen<'_>, storage: Storage, kept: bool) -> TagState {
    let Some(seen) = seen else {
        return TagState::RepositoryGone;
    };
    let Some(pin) = &entry.pin else {
        return match seen {
            Err("ImageNotFound") => TagState::TagNotFound,
            _ => TagState::NotPinned,
        };
    };
    match (seen, storage) {
        (Ok(d), _) if d != pin.digest => return TagState::Moved { to: d.to_string() },
        (_, Storage::Archived) => return TagState::Archived,
        (_, Storage::Activating) => return TagState::Activating,
        (_, Storage::Standard) => {}
    }
    match seen {
        Err("ImageNotFound") | Err("ImageTagDoesNotMatchDigest") => TagState::Missing,
        Err(code) => TagState::Unreadable {
            code: code.to_string(),
        },
        Ok(d) if d != pin.digest => TagState::Moved { to: d.to_string() },
        Ok(_) if pin.manifest.is_none() => TagState::PinWithoutManifest,
        Ok(_) if !kept => TagState::KeepAliveMissing,
        Ok(_) => TagState::Ok,
    }
}

/// The tags to read for a repository's entries, in one lookup: each protected tag, then each
/// pinned digest's keep-alive tag (once).
pub fn tags_to_read(entries: &[Entry], keep_prefix: &str) -> Vec<String> {
    let mut tags: Vec<String> = entries.iter().map(|e| e.tag.clone()).collect();
    for k in entries
        .iter()
        .filter(|e| e.keep_alive)
        .filter_map(|e| e.digest().and_then(|d| keep_tag(keep_prefix, d)))
    {
        if !tags.contains(&k) {
            tags.push(k);
        }
    }
    tags
}

/// Each entry's standing and the digest its tag sits on now, from ECR's answer (`seen`,
/// `None` when the repository does not exist) to a lookup of `tags` ([`tags_to_read`]) and
/// the repository's images that are not in standard storage (`stored`).
pub fn standings(
    entries: &[Entry],
    keep_prefix: &str,
    tags: &[String],
    seen: Option<&[Result<Manifest, String>]>,
    stored: &[(String, Storage)],
) -> Vec<(TagState, Option<String>)> {
    let at = |tag: &str| -> Result<&str, &str> {
        let found = tags
            .iter()
            .position(|t| t == tag)
            .and_then(|i| seen?.get(i));
        match found {
            Some(Ok(m)) => Ok(m.digest.as_str()),
            Some(Err(code)) => Err(code.as_str()),
            None => Err("ImageNotFound"),
        }
    };
    entries
        .iter()
        .map(|e| {
            // An item without a keep-alive tag (`keep_alive: false`) misses none.
            let kept = !e.keep_alive
                || e.digest()
                    .and_then(|d| keep_tag(keep_prefix, d).map(|k| at(&k) == Ok(d)))
                    .unwrap_or(false);
            let found = seen.map(|_| at(&e.tag));
            let digest = found.and_then(|f| f.ok()).map(String::from);
            let storage = stored
                .iter()
                .find(|(d, _)| Some(d.as_str()) == e.digest())
                .map_or(Storage::Standard, |(_, s)| *s);
            (standing(e, found, storage, kept), digest)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::parse_item;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn every_standing() {
        let base = json!({"repository": "123456789012/eu-west-1/web", "tag": "t"});
        let unpinned = parse_item(&base).unwrap();
        let mut v = base.clone();
        v["digest"] = json!(D1);
        let no_manifest = parse_item(&v).unwrap();
        v["manifest"] = json!("{}");
        let full = parse_item(&v).unwrap();
        assert_eq!(
            standing(&full, None, Storage::Standard, true),
            TagState::RepositoryGone
        );
        assert_eq!(
            standing(&unpinned, Some(Ok(D1)), Storage::Standard, true),
            TagState::NotPinned
        );
        assert_eq!(
            standing(&full, Some(Err("ImageNotFound")), Storage::Standard, true),
            TagState::Missing
        );
        assert_eq!(
            standing(&full, Some(Err("Throttled")), Storage::Standard, true),
            TagState::Unreadable {
                code: "Throttled".into()
            }
        );
        assert_eq!(
            standing(&full, Some(Ok(D2)), Storage::Standard, true),
            TagState::Moved { to: D2.into() }
        );
        assert_eq!(
            standing(&no_manifest, Some(Ok(D1)), Storage::Standard, true),
            TagState::PinWithoutManifest
        );
        assert!(standing(&full, Some(Ok(D1)), Storage::Standard, true).is_ok());
        assert_eq!(
            standing(&full, Some(Ok(D1)), Storage::Standard, false),
            TagState::KeepAliveMissing
        );
        let archived = |seen, storage| standing(&full, Some(seen), storage, true);
        assert_eq!(archived(Ok(D1), Storage::Archived), TagState::Archived);
        assert_eq!(
            archived(Err("ImageNotFound"), Storage::Archived),
            TagState::Archived,
            "brought back before it is re-tagged"
        );
        assert_eq!(archived(Ok(D1), Storage::Activating), TagState::Activating);
        assert_eq!(
            archived(Ok(D2), Storage::Archived),
            TagState::Moved { to: D2.into() },
            "a move is what matters for a moved tag"
        );
        assert_eq!(
            standing(&unpinned, Some(Ok(D1)), Storage::Archived, true),
            TagState::NotPinned
        );
        assert_eq!(
            TagState::Moved { to: D2.into() }.describe(),
            "moved to sha256:222222222222"
        );
    }

    #[test]
    fn standings_from_one_lookup() {
        let m = |d: &str| Manifest {
            digest: d.into(),
            media_type: None,
            body: String::new(),
        };
        let mut v = json!({"repository": "123456789012/eu-west-1/web", "tag": "a", "digest": D1, "manifest": "{}"});
        let a = parse_item(&v).unwrap();
        v["tag"] = json!("b");
        let b = parse_item(&v).unwrap();
        let entries = [a, b];
        let tags = tags_to_read(&entries, "k-");
        assert_eq!(
            tags,
            vec!["a", "b", "k-1111111111111111"],
            "the shared keep-alive tag once"
        );
        let seen = [Ok(m(D1)), Err("ImageNotFound".to_string()), Ok(m(D1))];
        let got = standings(&entries, "k-", &tags, Some(&seen), &[]);
        assert_eq!(
            got,
            vec![(TagState::Ok, Some(D1.into())), (TagState::Missing, None)]
        );
        let seen = [Ok(m(D2)), Ok(m(D1)), Err("ImageNotFound".to_string())];
        let got = standings(&entries, "k-", &tags, Some(&seen), &[]);
        assert_eq!(got[0], (TagState::Moved { to: D2.into() }, Some(D2.into())));
        assert_eq!(got[1].0, TagState::KeepAliveMissing);
        let seen = [Ok(m(D1)), Ok(m(D1)), Ok(m(D1))];
        let stored = [
            (D2.to_string(), Storage::Archived),
            (D1.to_string(), Storage::Activating),
        ];
        let got = standings(&entries, "k-", &tags, Some(&seen), &stored);
        assert_eq!(
            (got[0].0.clone(), got[1].0.clone()),
            (TagState::Activating, TagState::Activating),
            "only the pinned digest's storage counts"
        );
        assert_eq!(
            standings(&entries, "k-", &tags, None, &[])[0].0,
            TagState::RepositoryGone
        );
    }
}
