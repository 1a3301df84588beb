//! An ECR lifecycle policy, read and checked the way ECR checks it on `PutLifecyclePolicy`.

use serde_json::Value;

/// Which images a rule's tagging requirements can select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagStatus {
    /// Images with at least one tag, filtered by prefixes or patterns.
    Tagged,
    /// Images without tags.
    Untagged,
    /// Every image.
    Any,
}

/// What a rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Keep the newest N images; the rest are selected.
    MoreThan(u64),
    /// Images pushed more than N days ago.
    SincePushed(u64),
    /// Images last pulled (never pulled: pushed) more than N days ago.
    SincePulled(u64),
    /// Archived images archived more than N days ago.
    SinceTransitioned(u64),
}

/// A rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// Delete the image.
    Expire,
    /// Move the image to archive storage.
    Transition,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `rulePriority`: lower is evaluated first.
    pub priority: u64,
    /// `description`.
    pub description: Option<String>,
    /// `tagStatus`.
    pub tag_status: TagStatus,
    /// `tagPrefixList`: every prefix must start some tag of the image.
    pub prefixes: Vec<String>,
    /// `tagPatternList`: every pattern (`*` wildcards) must match some tag of the image.
    pub patterns: Vec<String>,
    /// `countType` with `countNumber`.
    pub count: Count,
    /// `storageClass`: the rule selects archived images (`archive`) or standard ones.
    pub archived: bool,
    /// `action.type`.
    pub action: RuleAction,
}

impl Rule {
    /// True when the image's tags meet the rule's tagging requirements.
    pub fn selects(&self, tags: &[String]) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Tagged => {
                !tags.is_empty()
                    && self
                        .prefixes
                        .iter()
                        .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                    && self
                        .patterns
                        .iter()
                        .all(|p| tags.iter().any(|t| crate::text::glob_match(p, t)))
            }
        }
    }

    /// `expire` or `transition`.
    pub fn action_name(&self) -> &'static str {
        match self.action {
            RuleAction::Expire => "expire",
            RuleAction::Transition => "transition",
        }
    }
}

/// A checked policy: its rules in priority order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The rules, lowest priority number first.
    pub rules: Vec<Rule>,
}

/// Most `*` wildcards ECR allows in one `tagPatternList` entry.
pub const MAX_WILDCARDS: usize = 4;

impl Policy {
    /// Reads and checks a policy document. Every problem is reported, each naming its rule.
    pub fn parse(policy: &Value) -> Result<Policy, Vec<String>> {
        let Some(list) = policy.get("rules").and_then(Value::as_array) else {
            return Err(vec!["the policy has no `rules` list".into()]);
        };
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in list.iter().enumerate() {
            match rule(r) {
                Ok(rule) => rules.push(rule),
                Err(e) => problems.extend(e.into_iter().map(|p| format!("rules[{i}]: {p}"))),
            }
        }
        rules.sort_by_key(|r| r.priority);
        for pair in rules.windows(2) {
            if pair[0].priority == pair[1].priority {
                problems.push(format!(
                    "rulePriority {} is used by more than one rule",
                    pair[0].priority
                ));
            }
        }
        let last = rules.last().map(|r| r.priority);
        for r in &rules {
            if r.tag_status == TagStatus::Any && Some(r.priority) != last {
                problems.push(format!(
                    "rule {}: a rule with tagStatus `any` must have the highest rulePriority",
                    r.priority
                ));
            }
        }
        if problems.is_empty() {
            Ok(Policy { rules })
        } else {
            Err(problems)
        }
    }

    /// The first rule (by priority) whose tagging requirements the image meets, among the
    /// rules for its storage class: the only rule that may act on it.
    pub fn owner(&self, tags: &[String], archived: bool) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.archived == archived && r.selects(tags))
    }
}

fn strings(v: Option<&Value>, name: &str, problems: &mut Vec<String>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| match s.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    problems.push(format!("{name} must hold strings, found {s}"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(format!("{name} must be a list, found {other}"));
            Vec::new()
        }
    }
}

fn rule(r: &Value) -> Result<Rule, Vec<String>> {
    let mut p = Vec::new();
    let priority = match r.get("rulePriority").and_then(Value::as_u64) {
        Some(n) if n >= 1 => n,
        _ => {
            p.push("rulePriority must be a whole number of at least 1".into());
            0
        }
    };
    let empty = Value::Null;
    let sel = r.get("selection").unwrap_or_else(|| {
        p.push("no `selection`".into());
        &empty
    });
    let (tag_status, prefixes, patterns) = tag_selection(sel, &mut p);
    let count = count_of(sel, &mut p);
    let archived = archived_selection(sel, count, &mut p);
    let action = action_of(r.get("action").unwrap_or(&empty), archived, &mut p);
    if !p.is_empty() {
        return Err(p);
    }
    Ok(Rule {
        priority,
        description: r
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        tag_status,
        prefixes,
        patterns,
        count,
        archived,
        action,
    })
}

/// A selection field, lowercased.
fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_lowercase)
}

/// `tagStatus` with its prefix or pattern list, each problem added to `p`.
fn tag_selection(sel: &Value, p: &mut Vec<String>) -> (TagStatus, Vec<String>, Vec<String>) {
    let tag_status = match text(sel, "tagStatus").as_deref() {
        Some("tagged") => TagStatus::Tagged,
        Some("untagged") => TagStatus::Untagged,
        Some("any") => TagStatus::Any,
        other => {
            p.push(format!(
                "selection.tagStatus must be tagged, untagged or any, found {}",
                other.unwrap_or("nothing")
            ));
            TagStatus::Any
        }
    };
    let prefixes = strings(sel.get("tagPrefixList"), "tagPrefixList", p);
    let patterns = strings(sel.get("tagPatternList"), "tagPatternList", p);
    match (tag_status, prefixes.is_empty(), patterns.is_empty()) {
        (TagStatus::Tagged, false, false) => {
            p.push("tagPrefixList and tagPatternList cannot be used together".into())
        }
        (TagStatus::Tagged, true, true) => {
            p.push("tagStatus `tagged` needs a tagPrefixList or a tagPatternList".into())
        }
        (TagStatus::Untagged | TagStatus::Any, false, _)
        | (TagStatus::Untagged | TagStatus::Any, _, false) => p.push(
            "tagPrefixList and tagPatternList are only allowed with tagStatus `tagged`".into(),
        ),
        _ => {}
    }
    for pat in &patterns {
        if pat.matches('*').count() > MAX_WILDCARDS {
            p.push(format!(
                "tagPatternList entry {pat:?} has more than {MAX_WILDCARDS} wildcards"
            ));
        }
    }
    (tag_status, prefixes, patterns)
}

/// `countType`, `countNumber` and `countUnit`, each problem added to `p`.
fn count_of(sel: &Value, p: &mut Vec<String>) -> Count {
    let number = match sel.get("countNumber").and_then(Value::as_u64) {
        Some(n) if n >= 1 => n,
        _ => {
            p.push("selection.countNumber must be a whole number of at least 1".into());
            1
        }
    };
    let count = match text(sel, "countType").as_deref() {
        Some("imagecountmorethan") => Count::MoreThan(number),
        Some("sinceimagepushed") => Count::SincePushed(number),
        Some("sinceimagepulled") => Count::SincePulled(number),
        Some("sinceimagetransitioned") => Count::SinceTransitioned(number),
        other => {
            p.push(format!(
                "selection.countType must be imageCountMoreThan, sinceImagePushed, sinceImagePulled or sinceImageTransitioned, found {}",
                other.unwrap_or("nothing")
            ));
            Count::MoreThan(number)
        }
    };
    match (count, text(sel, "countUnit").as_deref()) {
        (Count::MoreThan(_), Some(_)) => {
            p.push("countUnit is not allowed with imageCountMoreThan".into())
        }
        (Count::MoreThan(_), None) | (_, Some("days")) => {}
        (_, _) => p.push("countUnit must be `days` for a since… countType".into()),
    }
    count
}

/// Whether the rule selects archived images (`storageClass`), each problem added to `p`.
fn archived_selection(sel: &Value, count: Count, p: &mut Vec<String>) -> bool {
    let archived = match text(sel, "storageClass").as_deref() {
        None | Some("standard") => false,
        Some("archive") => true,
        Some(other) => {
            p.push(format!(
                "selection.storageClass must be standard or archive, found {other}"
            ));
            false
        }
    };
    if archived != matches!(count, Count::SinceTransitioned(_)) {
        p.push("sinceImageTransitioned goes with storageClass `archive`, and only it".into());
    }
    archived
}

/// The rule's `action`, each problem added to `p`.
fn action_of(act: &Value, archived: bool, p: &mut Vec<String>) -> RuleAction {
    match text(act, "type").as_deref() {
        Some("expire") => RuleAction::Expire,
        Some("transition") => {
            if text(act, "targetStorageClass").as_deref() != Some("archive") {
                p.push("a transition needs action.targetStorageClass `archive`".into());
            }
            if archived {
                p.push("an archived image cannot be transitioned again".into());
            }
            RuleAction::Transition
        }
        other => {
            p.push(format!(
                "action.type must be expire or transition, found {}",
                other.unwrap_or("nothing")
            ));
            RuleAction::Expire
        }
    }
}
