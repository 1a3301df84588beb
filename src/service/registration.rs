//! Registration: a registry item written by hand is pinned within seconds, from the table's
//! DynamoDB Stream (new images), instead of at the next event or reconcile.
//!
//! A record is only a hint: the item it names is read back from the table (consistent read)
//! and that is what the guard acts on, so a forged invocation can make it do no more than a
//! real record of the same item would. For each inserted or changed tag item that is not
//! pinned, the guard reads the tag from ECR, writes the pin sealed ("pinned on
//! registration"), adds the keep-alive tag and records it in the tag's history. A pin the
//! guard cannot vouch for (written or edited by hand) is checked against ECR: sealed when the
//! tag is on that digest now, else left unsealed — never pushed from — and paged once. A tag
//! ECR does not have is marked on the item (`not_found_at`, shown by `status` and `list`)
//! and paged once, at low severity. A rule item is materialised in the repository it names.
//! No loop: the guard's own writes come back as records it has nothing to do for — an item
//! pinned and sealed with its manifest, an item marked not found, a history or ledger
//! record. Each record is handled on its own; the ones that failed with an error worth
//! retrying are returned for Lambda's partial-batch response.

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::error::Error;
pub use crate::events::stream::{stream_records, StreamRecord};
use crate::events::Incident;
use crate::guard::{self, Action, Cause, Outcome};
use crate::page;
use crate::page::Alarm;
use crate::ports::{
    HistoryAction, HistoryOutcome, HistoryRecord, Images, Ledger, Pager, PinKey, Registry,
};
use crate::registry::{self, field, Entry, RepoKey, Severity};
use crate::service::{Handler, Now};

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// The record's sequence number.
    pub id: String,
    /// The item's key, `PARTITION:TAG`, where known.
    pub key: String,
    /// What the guard did: `pinned`, `manifest stored`, `not found`, `rule: N change(s)`, or
    /// why it did nothing.
    pub outcome: String,
}

/// What one stream batch came to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StreamReport {
    /// Every record handled, in order.
    pub records: Vec<Registered>,
    /// The sequence numbers of records that failed with an error worth retrying.
    pub failures: Vec<String>,
}

impl<R: Registry, I: Images, P: Pager, L: Ledger, K: PinKey> Handler<R, I, P, L, K> {
    /// Handles a batch of stream records, each on its own.
    pub async fn register(
        &self,
        records: &[Result<StreamRecord, (String, String)>],
        now: &Now,
    ) -> StreamReport {
        let mut report = StreamReport::default();
        for r in records {
            let rec = match r {
                Ok(rec) => rec,
                Err((id, problem)) => {
                    // Unreadable now, unreadable on a retry: reported, not retried.
                    let (id, problem) = (
                        crate::text::clean(id, 100),
                        crate::text::clean(problem, 500),
                    );
                    warn!(record = %id, problem, "stream record not readable");
                    report.records.push(Registered {
                        id,
                        key: String::new(),
                        outcome: format!("unreadable: {problem}"),
                    });
                    continue;
                }
            };
            let key = rec.item.as_ref().map_or(String::new(), |i| {
                // The record's own words, cleaned: they reach the log and the report.
                let s = |f: &str| i.get(f).and_then(Value::as_str).unwrap_or("?");
                crate::text::clean(&format!("{}:{}", s(field::REPOSITORY), s(field::TAG)), 400)
            });
            let outcome = match self.register_one(rec, now).await {
                Ok(o) => o,
                Err(e) if e.is_retryable() => {
                    warn!(record = %rec.id, item = %key, error = %e, "registration failed; the record is retried");
                    report.failures.push(rec.id.clone());
                    format!("failed, retried: {e}")
                }
                Err(e) => {
                    warn!(record = %rec.id, item = %key, error = %e, "registration failed");
                    format!("failed: {e}")
                }
            };
            info!(record = %rec.id, item = %key, outcome, "registration");
            report.records.push(Registered {
                id: rec.id.clone(),
                key,
                outcome,
            });
        }
        report
    }

    async fn register_one(&self, rec: &StreamRecord, now: &Now) -> Result<String, Error> {
        let Some(hint) = rec.item.as_ref().filter(|_| rec.event_name != "REMOVE") else {
            return Ok("skipped: a removal".into());
        };
        let key = |f: &str| hint.get(f).and_then(Value::as_str).unwrap_or("");
        let (partition, tag) = (key(field::REPOSITORY), key(field::TAG));
        if partition.starts_with("history#") || partition.starts_with("ledger#") {
            return Ok("skipped: the guard's own record".into());
        }
        if partition.is_empty() || tag.is_empty() {
            return Ok("skipped: the record names no item (repository and tag)".into());
        }
        // The record is a hint: what the table holds now decides.
        let Some(item) = self.registry.item(partition, tag).await? else {
            return Ok("skipped: the item is no longer in the table".into());
        };
        let item = &item;
        if registry::is_rule_item(item) {
            return self.register_rule(rec, item, now).await;
        }
        let entry = match registry::parse_item(item) {
            Ok(e) => e,
            Err(bad) => {
                warn!(item = %bad.key, problems = ?bad.problems, "invalid registry item");
                return Ok(format!("invalid: {}", bad.problems.join("; ")));
            }
        };
        if let Some(why) = self.scope.outside(&entry.repo) {
            return Ok(format!("skipped: outside the guard's scope ({why})"));
        }
        match &entry.pin {
            Some(p) => match self.distrust(&entry.repo, &entry.tag, p).await? {
                None if p.manifest.is_some() => Ok("skipped: already pinned and sealed".into()),
                None => self.store_manifest_of(&entry, &p.digest, rec, now).await,
                Some(why) => self.vouch_registered(&entry, p, &why, rec, now).await,
            },
            None if entry.not_found_at.is_some() => {
                Ok("skipped: marked not found (pinned when the tag is pushed)".into())
            }
            None if entry.released_at.is_some() => Ok(
                "skipped: released after an allowed delete (pinned again when the tag is pushed)"
                    .into(),
            ),
            None => self.pin_registered(&entry, rec, now).await,
        }
    }

    /// The manifest the item's tag sits on in ECR now; `None` when it is not there.
    async fn tag_now(&self, entry: &Entry) -> Result<Option<registry::Manifest>, Error> {
        let seen = self
            .images
            .lookup(&entry.repo, std::slice::from_ref(&entry.tag))
            .await?;
        Ok(seen.and_then(|s| s.into_iter().next()).and_then(Result::ok))
    }

    /// A pin the guard cannot vouch for (`why`): sealed (its manifest stored when missing)
    /// when ECR has the tag on that digest now; else left as it is — the guard never pushes
    /// from it — and paged once.
    async fn vouch_registered(
        &self,
        entry: &Entry,
        pin: &registry::Pin,
        why: &str,
        rec: &StreamRecord,
        now: &Now,
    ) -> Result<String, Error> {
        match self.tag_now(entry).await? {
            Some(m) if m.digest == pin.digest => {
                let (repo, tag, keep) = (&entry.repo, &entry.tag, entry.keep_alive);
                match self
                    .seal_in_place(repo, tag, pin, Some(&m), keep, now)
                    .await?
                {
                    Outcome::Pinned => {
                        self.history(entry, rec, HistoryAction::Seal, &pin.digest, now)
                            .await;
                        Ok("sealed: ECR has the tag on the pinned digest".into())
                    }
                    Outcome::Conflict => Ok("skipped: the item changed meanwhile".into()),
                    _ => Ok(format!("not sealed: the pin key cannot be used ({why})")),
                }
            }
            other => {
                let at = other.map_or("not in ECR".to_string(), |m| format!("on {}", m.digest));
                let problem = format!(
                    "{why}; the tag is {at} now, so the guard will not push the pinned digest"
                );
                self.page_once(entry, &untrusted_alarm(entry, &problem), now)
                    .await?;
                Ok(format!("untrusted pin: {problem}"))
            }
        }
    }

    /// A pin the guard vouches for, without its manifest: the manifest is read from ECR and
    /// stored (paged once when ECR no longer has the image).
    async fn store_manifest_of(
        &self,
        entry: &Entry,
        digest: &str,
        rec: &StreamRecord,
        now: &Now,
    ) -> Result<String, Error> {
        let why = "manifest stored on registration";
        let pin = self.capture(&entry.repo, digest, None, now, why).await?;
        if pin.manifest.is_none() {
            let problem = "the pinned image is not in ECR: there is no manifest to keep";
            self.page_once(entry, &not_found_alarm(entry, problem), now)
                .await?;
            return Ok("pinned image not found".into());
        }
        let pin = self.seal(&entry.repo, &entry.tag, pin).await?;
        if !self
            .registry
            .set_pin(&entry.repo, &entry.tag, Some(digest), Some(&pin))
            .await?
        {
            return Ok("skipped: the item changed meanwhile".into());
        }
        self.add_keep_alive(&entry.repo, &pin, entry.keep_alive)
            .await;
        self.history(entry, rec, HistoryAction::StoreManifest, &pin.digest, now)
            .await;
        Ok("manifest stored".into())
    }

    /// An unpinned item: the tag is pinned where ECR has it now, or the item is marked not
    /// found (paged once).
    async fn pin_registered(
        &self,
        entry: &Entry,
        rec: &StreamRecord,
        now: &Now,
    ) -> Result<String, Error> {
        let Some(m) = self.tag_now(entry).await? else {
            if self
                .registry
                .mark_not_found(&entry.repo, &entry.tag, &now.rfc3339)
                .await?
            {
                let problem = "ECR has no such tag (or no such repository)";
                self.page_once(entry, &not_found_alarm(entry, problem), now)
                    .await?;
            }
            return Ok("not found".into());
        };
        let why = "pinned on registration";
        let pin = self
            .capture(&entry.repo, &m.digest, Some(&m), now, why)
            .await?;
        // Seen under the tag just now.
        let pin = self.seal(&entry.repo, &entry.tag, pin).await?;
        if !self
            .registry
            .set_pin(&entry.repo, &entry.tag, None, Some(&pin))
            .await?
        {
            return Ok("skipped: the item changed meanwhile".into());
        }
        self.add_keep_alive(&entry.repo, &pin, entry.keep_alive)
            .await;
        self.history(entry, rec, HistoryAction::Pin, &pin.digest, now)
            .await;
        Ok("pinned".into())
    }

    /// A rule item: materialised in the repository it names exactly; a glob reaches its
    /// repositories on their next matching push or reconcile.
    async fn register_rule(
        &self,
        rec: &StreamRecord,
        item: &Value,
        now: &Now,
    ) -> Result<String, Error> {
        let rule = match registry::parse_rule(item) {
            Ok(r) => r,
            Err(bad) => {
                warn!(item = %bad.key, problems = ?bad.problems, "invalid rule");
                return Ok(format!("invalid rule: {}", bad.problems.join("; ")));
            }
        };
        let Ok(repo) = RepoKey::parse(&rule.repositories) else {
            return Ok(
                "rule over a glob: materialised on each repository's next push or reconcile".into(),
            );
        };
        if let Some(why) = self.scope.outside(&repo) {
            return Ok(format!("skipped: outside the guard's scope ({why})"));
        }
        let (entries, rules) = futures::join!(self.registry.entries(&repo), self.registry.rules());
        let (rules, bad_rules) = registry::split_valid(rules?);
        let (entries, bad_items) = registry::split_valid(entries?);
        for bad in bad_rules.iter().chain(&bad_items) {
            warn!(item = %bad.key, problems = ?bad.problems, "invalid registry item skipped");
        }
        let changes = self
            .materialise(&repo, &rules, &entries, None, &rec.id, now)
            .await?;
        Ok(format!("rule: {} change(s)", changes.len()))
    }

    /// Pages `alarm`, once per item and kind of alarm, about what a registration found.
    async fn page_once(&self, entry: &Entry, alarm: &Alarm, now: &Now) -> Result<(), Error> {
        let kind = match alarm.action {
            "not_found" => "not-found",
            other => other,
        };
        let key = format!("registration/{}:{}/{kind}", entry.repo, entry.tag);
        if self.dry_run {
            return Ok(());
        }
        let incident = Incident::found(
            key,
            "registration",
            &now.rfc3339,
            &entry.repo,
            "a registry item written to the table",
        );
        let d = guard::decision(
            entry,
            Cause::Deleted { digest: None },
            Action::Alert,
            &alarm.happened,
        );
        let p = page::render(&incident, &d, alarm);
        self.publish_once(&incident.event_id, &p, now).await?;
        Ok(())
    }

    async fn history(
        &self,
        entry: &Entry,
        rec: &StreamRecord,
        action: HistoryAction,
        digest: &str,
        now: &Now,
    ) {
        let record = HistoryRecord {
            repo: entry.repo.clone(),
            tag: entry.tag.clone(),
            at: now.rfc3339.clone(),
            event_id: format!("registration-{}", rec.id),
            action,
            outcome: HistoryOutcome::Pinned,
            old_digest: None,
            new_digest: Some(digest.to_string()),
            who: "ecr-tag-guard (pinned on registration)".into(),
            detail: "the item was written to the table".into(),
        };
        if let Err(e) = self.registry.add_history(&[record]).await {
            warn!(item = %entry.tag, error = %e, "history not written");
        }
    }
}

/// The alarm of a registration that found nothing to pin (`problem`).
fn not_found_alarm(entry: &Entry, problem: &str) -> Alarm {
    Alarm {
        action: "not_found",
        severity: Severity::Low,
        headline: "registered, but nothing to pin".into(),
        happened: format!("the tag was registered, but {problem}"),
        did: "marked the item; the guard pins the tag when it is pushed.".into(),
        todo: Some(
            "check the repository and tag in the item, then push the tag or delete the item."
                .into(),
        ),
        old_digest: entry.digest().map(String::from),
        new_digest: None,
    }
}

/// The alarm of a registration that found a pin the guard cannot vouch for (`problem`).
fn untrusted_alarm(entry: &Entry, problem: &str) -> Alarm {
    Alarm {
        action: "untrusted_pin",
        severity: entry.severity.max(Severity::High),
        headline: "registered pin NOT trusted".into(),
        happened: format!("the item's pin was written to the table, but {problem}"),
        did: "changed nothing: the guard will not put this tag back on the pinned digest.".into(),
        todo: Some(
            "if the pin is right, push that image to the tag (the guard seals what it sees there); if the tag is right, run `ecr-tag-guard protect REPO:TAG --force`. If nobody meant to write this pin, find out who wrote the table.".into(),
        ),
        old_digest: entry.digest().map(String::from),
        new_digest: None,
    }
}
