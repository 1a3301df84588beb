//! Field names, as written in DynamoDB and in the scenario file.

/// Partition key: `ACCOUNT/REGION/REPOSITORY`.
pub const REPOSITORY: &str = "repository";
/// Sort key: the tag.
pub const TAG: &str = "tag";
/// Pinned digest.
pub const DIGEST: &str = "digest";
/// Manifest text.
pub const MANIFEST: &str = "manifest";
/// Manifest media type.
pub const MEDIA_TYPE: &str = "media_type";
/// Child manifests of an index.
pub const CHILDREN: &str = "children";
/// Delete mode.
pub const ON_DELETE: &str = "on_delete";
/// Move mode.
pub const ON_MOVE: &str = "on_move";
/// Allowed principals.
pub const ALLOW: &str = "allow";
/// Severity.
pub const SEVERITY: &str = "severity";
/// Owner.
pub const OWNER: &str = "owner";
/// Notes.
pub const NOTES: &str = "notes";
/// Who pinned.
pub const PINNED_BY: &str = "pinned_by";
/// When pinned.
pub const PINNED_AT: &str = "pinned_at";
/// The guard's seal on the pin: the hex HMAC-SHA-256, made with the deployment's KMS key,
/// of the repository, tag, digest and manifest hash (see [`crate::registry::seal`]).
pub const PIN_MAC: &str = "pin_mac";
/// Whether the guard keeps its keep-alive tag on the pinned image (default true).
pub const KEEP_ALIVE: &str = "keep_alive";
/// On a tag item a rule made: the rule's name.
pub const RULE: &str = "rule";
/// Written by the guard when a registered tag was not in ECR: when it looked (RFC 3339).
pub const NOT_FOUND_AT: &str = "not_found_at";
/// Written by the guard when an allowed caller deleted the tag and the pin was released
/// (RFC 3339); the tag is pinned again when it is pushed.
pub const RELEASED_AT: &str = "released_at";
