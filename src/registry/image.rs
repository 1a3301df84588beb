//! The image types the ports, the adapters and the decisions share: one image of a
//! repository as `DescribeImages` lists it, and where ECR keeps it.

use serde::{Deserialize, Serialize};

/// One image of a repository: what lifecycle simulation, rules and the commands read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its digest.
    pub digest: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it was pushed (epoch seconds).
    pub pushed_at: i64,
    /// When it was last pulled, if ever.
    pub last_pulled: Option<i64>,
    /// Its storage class.
    pub storage: Storage,
    /// When it was archived, if it is.
    pub archived_at: Option<i64>,
}

/// Where ECR keeps an image (its `imageStatus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// Standard storage: the image can be pulled.
    #[default]
    Standard,
    /// Archive storage: it cannot be pulled until it is brought back.
    Archived,
    /// On its way back from archive to standard storage (up to about 20 minutes).
    Activating,
}
