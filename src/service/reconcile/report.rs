//! What one reconcile run found and did, as the command prints it and the Lambda sums it up.

use serde::Serialize;

use crate::page::Page;
use crate::registry::InvalidEntry;
use crate::service::Handled;

/// What one reconcile run found and did.
#[derive(Debug, Default, Serialize)]
pub struct ReconcileReport {
    /// Repositories read.
    pub repositories: usize,
    /// Protected tags checked.
    pub checked: usize,
    /// Tags found ok.
    pub ok: usize,
    /// Items that are not valid.
    pub invalid: Vec<InvalidEntry>,
    /// Every repair decided, with its outcome (none in a dry run).
    pub repairs: Vec<Handled>,
    /// Pages sent.
    pub pages: Vec<Page>,
    /// Pins that pattern rules added or released.
    pub rule_changes: Vec<crate::service::rules::RuleChange>,
    /// Things that went wrong without stopping the run.
    pub warnings: Vec<String>,
    /// Drifts of items with `allow` left to the event path for now (grace period), one line
    /// each.
    pub waiting: Vec<String>,
    /// Items outside the guard's scope (`TAG_GUARD_ACCOUNTS`, `TAG_GUARD_REGIONS`): reported,
    /// never written to ECR; one line each.
    pub out_of_scope: Vec<String>,
    /// Repositories reconcile could not get through (`ACCOUNT/REGION/NAME: the error`); the
    /// next run tries them again.
    pub failures: Vec<String>,
    /// Repositories not started before the deadline: the next run takes them first.
    pub left: usize,
    /// Pins the guard could not vouch for that ECR confirms (the tag is on the pinned digest
    /// now): sealed by this run (`REPO:TAG`; in a dry run, would be).
    pub sealed: Vec<String>,
    /// The guard's own tags that no pin needs, found in ECR and let go of without deleting
    /// their image, or kept (retired) where nothing can carry them: one line each.
    pub guard_tags: Vec<String>,
}

/// What a step of the run (paging, asking who made a change) has for the run's report; only
/// the run writes the report.
#[derive(Debug)]
pub(super) enum Told {
    /// A page went out.
    Page(Page),
    /// Something went wrong without stopping the run.
    Warning(String),
    /// A drift left to its own event for now (grace period).
    Waiting(String),
}

impl ReconcileReport {
    /// Takes what a step told.
    pub(super) fn tell(&mut self, told: impl IntoIterator<Item = Told>) {
        for t in told {
            match t {
                Told::Page(p) => self.pages.push(p),
                Told::Warning(w) => self.warnings.push(w),
                Told::Waiting(w) => self.waiting.push(w),
            }
        }
    }

    /// Adds what one repository's reconcile found and did.
    pub(super) fn merge(&mut self, part: ReconcileReport) {
        self.checked += part.checked;
        self.ok += part.ok;
        self.invalid.extend(part.invalid);
        self.repairs.extend(part.repairs);
        self.pages.extend(part.pages);
        self.rule_changes.extend(part.rule_changes);
        self.warnings.extend(part.warnings);
        self.waiting.extend(part.waiting);
        self.out_of_scope.extend(part.out_of_scope);
        self.failures.extend(part.failures);
        self.sealed.extend(part.sealed);
        self.guard_tags.extend(part.guard_tags);
    }

    /// Puts what repositories reconciled side by side in a stable order: repairs by repository
    /// and tag (rule changes keep their order within a repository).
    pub(super) fn sort(&mut self) {
        self.repairs.sort_by(|a, b| {
            (&a.decision.entry.repo, &a.decision.tag)
                .cmp(&(&b.decision.entry.repo, &b.decision.tag))
        });
        self.pages.sort_by(|a, b| a.subject.cmp(&b.subject));
        self.invalid.sort_by(|a, b| a.key.cmp(&b.key));
        for v in [
            &mut self.warnings,
            &mut self.waiting,
            &mut self.out_of_scope,
            &mut self.failures,
            &mut self.sealed,
            &mut self.guard_tags,
        ] {
            v.sort();
        }
    }
}
