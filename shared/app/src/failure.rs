//! One error taxonomy for every use case and adapter. Each variant says what the caller can do
//! about it; each is mapped once to HTTP (`shipsync-http-api`), to SQS batch item failures and
//! Lambda diagnostics (`shipsync-platform`). The cause is kept for logs, never shown to callers.

use std::time::Duration;

use shipsync_domain::ValidationErrors;

/// The underlying error, for logs.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A conditional write found the record changed since it was read: read again and retry.
    #[error("the {0} was changed by another request")]
    Conflict(String),
    /// A record that must be unique exists already.
    #[error("{0} already exists")]
    Exists(String),
    /// Nothing there, or nothing the caller may see.
    #[error("{0} not found")]
    NotFound(String),
    /// The request (or event) is wrong: every problem names its field. Retrying cannot help.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Worth trying again later: after `after`, when the other side said how long.
    #[error("{reason}")]
    Retryable {
        reason: String,
        after: Option<Duration>,
        #[source]
        cause: Option<Cause>,
    },
    /// Can never succeed as things stand (a bug, a record that cannot be read, settings a person
    /// must fix): recorded where a person sees it rather than retried.
    #[error("{reason}")]
    Permanent {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
}

/// A channel's answer, mapped once: a wait it asked for is kept; a refusal, or a call the
/// channel cannot take, is permanent.
impl From<shipsync_channels::ChannelError> for Failure {
    fn from(error: shipsync_channels::ChannelError) -> Self {
        use shipsync_channels::ChannelError;
        match error {
            ChannelError::Retryable { message, retry_after } => {
                Failure::Retryable { reason: message, after: retry_after, cause: None }
            }
            refused @ (ChannelError::Permanent { .. } | ChannelError::Unsupported { .. }) => {
                Failure::permanent(refused.to_string())
            }
        }
    }
}

/// Settings that cannot work: a person must fix them.
impl From<shipsync_channels::SettingsError> for Failure {
    fn from(error: shipsync_channels::SettingsError) -> Self {
        Failure::permanent(error.to_string())
    }
}

impl Failure {
    pub fn retryable(reason: impl Into<String>) -> Self {
        Failure::Retryable { reason: reason.into(), after: None, cause: None }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Failure::Permanent { reason: reason.into(), cause: None }
    }

    /// Whether the same work can never succeed, so it is kept for a person instead of retried.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Invalid(_) | Failure::Permanent { .. })
    }

    /// The wait the other side asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Retryable { after, .. } => *after,
            _ => None,
        }
    }

    /// The message and every cause under it, for logs: `reason: cause: cause's cause`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
