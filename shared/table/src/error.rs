use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::error::Error as StdError;

/// What can go wrong with the store. Callers decide from the variant; the cause is for logs only.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A conditional write found the record changed since it was read: read again and retry.
    #[error("{0} was changed by another request")]
    Conflict(&'static str),
    /// A record that must be unique exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A stored record cannot be read back (a bug or a manual edit); never the caller's fault.
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// A record or key that DynamoDB cannot hold (an item over 400 KB, a key over its length),
    /// refused before it is sent: not worth retrying. (Emulators do not enforce these limits.)
    #[error("{key} does not fit in DynamoDB: {reason}")]
    TooLarge { key: String, reason: String },
    /// A search was given a cursor that is not one of its own (see `cursor.rs`): the caller's
    /// mistake, refused before anything is read.
    #[error(transparent)]
    InvalidCursor(#[from] crate::cursor::InvalidCursor),
    /// DynamoDB refused a request as invalid: a bug in shipsync, not worth retrying.
    #[error("DynamoDB {operation} rejected the request")]
    Rejected {
        operation: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// DynamoDB failed or could not be reached; worth retrying later.
    #[error("DynamoDB {operation} failed")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl TableError {
    /// Whether the same request can never succeed (as opposed to a conflict or an outage).
    pub fn is_permanent(&self) -> bool {
        matches!(self, TableError::TooLarge { .. } | TableError::Rejected { .. } | TableError::InvalidCursor(_))
    }

    pub(crate) fn unavailable<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Self
    where
        E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        move |error| {
            if error.code() == Some("ValidationException") {
                TableError::Rejected { operation, source: Box::new(error) }
            } else {
                TableError::Unavailable { operation, source: Box::new(error) }
            }
        }
    }
}

/// The outcome of a conditional write: `on_condition()` when its condition did not hold.
pub(crate) fn conditional_write<O, E, R>(
    result: Result<O, SdkError<E, R>>,
    operation: &'static str,
    on_condition: impl FnOnce() -> TableError,
) -> Result<(), TableError>
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => Err(on_condition()),
        Err(error) => Err(TableError::unavailable(operation)(error)),
    }
}
