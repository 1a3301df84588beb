//! The library's errors. Each says whether trying again can help, which decides whether the
//! Lambda fails the invocation (so EventBridge/Lambda retry) or reports and moves on.

/// A call to AWS (or to the embedded stand-in) that did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct CallError {
    /// The operation, e.g. `ecr:PutImage`.
    pub op: String,
    /// What went wrong, in the service's words.
    pub message: String,
    /// Throttling, a 5xx, a timeout, a dropped connection: worth a retry.
    pub retryable: bool,
}

impl CallError {
    /// A failure that no retry will mend.
    pub fn fatal(op: &str, message: impl Into<String>) -> Self {
        CallError {
            op: op.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that may pass.
    pub fn transient(op: &str, message: impl Into<String>) -> Self {
        CallError {
            op: op.into(),
            message: message.into(),
            retryable: true,
        }
    }
}

/// Why handling one event failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event claims to be one the guard reads but cannot be understood.
    #[error("unreadable event: {0}")]
    BadEvent(#[from] crate::events::ParseError),
    /// A call failed; see [`CallError::retryable`].
    #[error(transparent)]
    Call(#[from] CallError),
    /// Another invocation is handling the same event right now.
    #[error("event {0} is being handled by another invocation; try again later")]
    Busy(String),
    /// The deployment's settings are wrong.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// True when the same event may succeed if handled again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Call(c) => c.retryable,
            Error::Busy(_) => true,
            Error::BadEvent(_) | Error::Config(_) => false,
        }
    }
}
