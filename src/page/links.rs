//! Links a page carries to the AWS console: the repository, the image by digest, and the
//! CloudTrail record of the event. Built from checked values only (an account, a region and a
//! repository name that passed AWS's grammar, a `sha256:` digest, a CloudTrail event id), so
//! nothing in a link needs escaping.

use crate::events::Incident;
use crate::registry::RepoKey;
use crate::text::is_digest;

/// The console's host for `region`'s partition.
fn console(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "console.amazonaws.cn".to_string()
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com".to_string()
    } else {
        format!("{region}.console.aws.amazon.com")
    };
    format!("https://{domain}")
}

/// The repository in the ECR console; `None` for a repository key that breaks AWS's grammar
/// (none reaches a page: events and items are checked first).
pub fn repository(repo: &RepoKey) -> Option<String> {
    repo.check().ok()?;
    Some(format!(
        "{}/ecr/repositories/private/{}/{}?region={}",
        console(&repo.region),
        repo.account,
        repo.name,
        repo.region
    ))
}

/// An image of the repository, by digest, in the ECR console; `None` for a malformed digest.
pub fn image(repo: &RepoKey, digest: &str) -> Option<String> {
    repo.check().ok()?;
    is_digest(digest).then(|| {
        format!(
            "{}/ecr/repositories/private/{}/{}/_/image/{digest}/details?region={}",
            console(&repo.region),
            repo.account,
            repo.name,
            repo.region
        )
    })
}

/// The CloudTrail event history filtered to the event, when the incident came from a CloudTrail
/// record (its `eventID`, a UUID); `None` for ECR's own events and reconcile's findings.
pub fn event(incident: &Incident) -> Option<String> {
    let id = &incident.event_id;
    let uuid = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    let from_trail =
        incident.source.starts_with("CloudTrail") || incident.source.starts_with("lifecycle");
    (uuid && from_trail && incident.repo.check().is_ok()).then(|| {
        let region = &incident.repo.region;
        format!(
            "{}/cloudtrail/home?region={region}#/events?EventId={id}",
            console(region)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Actor;

    fn incident(id: &str, source: &str, region: &str) -> Incident {
        Incident {
            event_id: id.into(),
            source: source.into(),
            time: String::new(),
            repo: RepoKey::parse(&format!("123456789012/{region}/team/web")).unwrap(),
            actor: Actor::Lifecycle,
            changes: Vec::new(),
            note: None,
        }
    }

    #[test]
    fn links_point_at_the_console_of_the_repositorys_partition() {
        let i = incident(
            "c0ffee01-1111-4b2c-8d3e-000000000001",
            "CloudTrail BatchDeleteImage",
            "eu-west-1",
        );
        assert_eq!(
            repository(&i.repo).unwrap(),
            "https://eu-west-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team/web?region=eu-west-1"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            image(&i.repo, &d).unwrap(),
            format!("https://eu-west-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team/web/_/image/{d}/details?region=eu-west-1")
        );
        assert_eq!(image(&i.repo, "sha256:nope"), None);
        assert_eq!(
            event(&i).unwrap(),
            "https://eu-west-1.console.aws.amazon.com/cloudtrail/home?region=eu-west-1#/events?EventId=c0ffee01-1111-4b2c-8d3e-000000000001"
        );
        let cn = incident(
            "c0ffee01-1111-4b2c-8d3e-000000000001",
            "CloudTrail PutImage",
            "cn-north-1",
        );
        assert!(repository(&cn.repo)
            .unwrap()
            .starts_with("https://console.amazonaws.cn/ecr/"));
        let gov = incident(
            "c0ffee01-1111-4b2c-8d3e-000000000001",
            "CloudTrail PutImage",
            "us-gov-west-1",
        );
        assert!(repository(&gov.repo)
            .unwrap()
            .starts_with("https://console.amazonaws-us-gov.com/"));
    }

    #[test]
    fn only_a_cloudtrail_record_has_an_event_link() {
        let id = "c0ffee01-1111-4b2c-8d3e-000000000001";
        assert!(event(&incident(
            id,
            "lifecycle policy (PolicyExecutionEvent)",
            "eu-west-1"
        ))
        .is_some());
        assert_eq!(
            event(&incident(id, "ECR Image Action DELETE", "eu-west-1")),
            None
        );
        assert_eq!(
            event(&incident("reconcile-1700000000", "reconcile", "eu-west-1")),
            None
        );
        assert_eq!(
            event(&incident(
                "c0ffee01-1111-4b2c-8d3e-00000000000?",
                "CloudTrail PutImage",
                "eu-west-1"
            )),
            None
        );
        assert_eq!(
            event(&incident(
                "c0ffee01x1111-4b2c-8d3e-000000000001",
                "CloudTrail PutImage",
                "eu-west-1"
            )),
            None
        );
    }
}
