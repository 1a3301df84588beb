//! `drill --repo REPO`: proves the whole chain in the user's own account. It pushes a tiny
//! canary image (a manifest over an empty layer it uploads) to a scratch tag, protects it,
//! deletes the tag, waits until the deployed guard has put it back and recorded it (the page
//! goes out with that record), prints the time of each step, and cleans up.

use std::future::Future;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use super::registry::{protect, unprotect, Ops, ProtectOptions};
use crate::aws::admin::Admin;
use crate::aws::admin::ImageRef;
use crate::ports::{Images, Items};
use crate::registry::RepoKey;
use crate::service::Now;

/// What the drill did to ECR, for whoever must make the guard see it (tests invoke the
/// handler with the matching event; in an account, EventBridge does).
#[derive(Debug, Clone)]
pub struct Deleted {
    /// The repository.
    pub repo: RepoKey,
    /// The scratch tag.
    pub tag: String,
    /// `BatchDeleteImage`'s `imageIds`, as CloudTrail records them.
    pub image_ids: Vec<Value>,
}

/// An empty gzip stream: the canary's only layer.
fn empty_layer() -> anyhow::Result<Vec<u8>> {
    let mut gz = flate2::read::GzEncoder::new(&[][..], flate2::Compression::best());
    let mut out = Vec::new();
    gz.read_to_end(&mut out)?;
    Ok(out)
}

/// Runs the drill. `after_delete` is called once the tag is deleted; `timeout` bounds each
/// wait, `poll` spaces the reads.
pub async fn drill<F, Fut>(
    ops: &Ops<Admin>,
    repo: &str,
    timeout: Duration,
    poll: Duration,
    out: &mut impl Write,
    after_delete: F,
) -> anyhow::Result<bool>
where
    F: FnOnce(Deleted) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let repo = ops.repo(repo).await?;
    if let Some(why) = ops.scope.outside(&repo) {
        anyhow::bail!("{repo} is outside the guard's scope ({why}): the guard would not act there, so no drill");
    }
    let now = Now::system();
    let tag = format!("etg-drill-{}", now.epoch);
    let start = Instant::now();
    let mut step = |out: &mut dyn Write, what: &str| -> std::io::Result<()> {
        writeln!(out, "{:>8.2} s  {what}", start.elapsed().as_secs_f64())
    };
    let layer = ops.backend.upload_blob(&repo, &empty_layer()?).await?;
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": {"Labels": {"ecr-tag-guard": "drill"}}}).to_string();
    let config_digest = ops.backend.upload_blob(&repo, config.as_bytes()).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": empty_layer()?.len(), "digest": layer}]
    })
    .to_string();
    let step_put = crate::guard::PutStep {
        manifest: crate::registry::Manifest {
            digest: crate::text::sha256_digest(manifest.as_bytes()),
            media_type: Some("application/vnd.docker.distribution.manifest.v2+json".into()),
            body: manifest,
        },
        tag: Some(tag.clone()),
    };
    let digest = step_put.manifest.digest.clone();
    crate::ports::Images::put(
        &crate::aws::EcrImages {
            clients: ops.backend.ecr.clone(),
        },
        &repo,
        &step_put,
    )
    .await
    .map_err(|e| anyhow!("pushing the canary: {e:?}"))?;
    step(out, &format!("pushed canary {repo}:{tag} ({digest})"))?;
    let target = format!("{}:{tag}", repo.key());
    let result = run(
        ops,
        &repo,
        &tag,
        &target,
        &digest,
        timeout,
        poll,
        out,
        &mut step,
        after_delete,
    )
    .await;
    // Clean up whatever happened: the item, the keep-alive tag, the canary image.
    let _ = unprotect(ops, &target, true, &Now::system(), &mut std::io::sink()).await;
    let cleaned = ops
        .backend
        .delete_digests(&repo, std::slice::from_ref(&digest))
        .await;
    step(
        out,
        if cleaned.is_ok() {
            "cleaned up (item, keep-alive tag, canary image)"
        } else {
            "could not delete the canary image; delete it by hand"
        },
    )?;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run<F, Fut>(
    ops: &Ops<Admin>,
    repo: &RepoKey,
    tag: &str,
    target: &str,
    digest: &str,
    timeout: Duration,
    poll: Duration,
    out: &mut impl Write,
    step: &mut dyn FnMut(&mut dyn Write, &str) -> std::io::Result<()>,
    after_delete: F,
) -> anyhow::Result<bool>
where
    F: FnOnce(Deleted) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let opts = ProtectOptions {
        fields: super::registry::FieldOptions {
            severity: Some("low".into()),
            notes: Some("ecr-tag-guard drill canary".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    protect(ops, target, &opts, &Now::system(), &mut std::io::sink()).await?;
    step(out, "protected it (pinned, keep-alive tag added)")?;
    let image_ids = ops.backend.delete_tag(repo, tag).await?;
    step(out, "deleted the tag")?;
    after_delete(Deleted {
        repo: repo.clone(),
        tag: tag.to_string(),
        image_ids,
    })
    .await?;
    let deadline = Instant::now() + timeout;
    loop {
        let seen = ops
            .backend
            .read(repo, &[ImageRef::Tag(tag.to_string())])
            .await?;
        if matches!(seen.as_deref(), Some([Ok(m)]) if m.digest == digest) {
            break;
        }
        if Instant::now() >= deadline {
            bail!("the guard did not put {target} back within {} s: check the function's rules, the trail and its logs", timeout.as_secs());
        }
        tokio::time::sleep(poll).await;
    }
    step(out, "the guard put the tag back")?;
    let history = format!("history#{}:{tag}", repo.key());
    loop {
        let records = ops.backend.partition(&history, true).await?;
        if records
            .iter()
            .any(|r| r.get("outcome").and_then(Value::as_str) == Some("restored"))
        {
            break;
        }
        if Instant::now() >= deadline {
            bail!("the tag is back but the guard recorded no restore for {target}: was it restored by something else?");
        }
        tokio::time::sleep(poll).await;
    }
    step(
        out,
        "the guard recorded the restore (its page went out with it)",
    )?;
    Ok(true)
}
