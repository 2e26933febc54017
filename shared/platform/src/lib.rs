//! Start-up for every shipsync function: typed configuration from the environment (a missing
//! variable fails the cold start, never a request), the AWS SDK configuration, and logging.

use aws_config::{BehaviorVersion, SdkConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required environment variable.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// What the shipments API needs from its environment.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `SHIPSYNC_TABLE`: the DynamoDB table.
    pub table_name: String,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self { table_name: required_env("SHIPSYNC_TABLE")? })
    }
}

/// The AWS SDK configuration: region and credentials from the Lambda environment, and
/// `AWS_ENDPOINT_URL` (read by the SDK itself) to point at a local emulator.
pub async fn aws_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A DynamoDB client for the given SDK configuration.
pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// Structured logs as Lambda expects them: `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`) sets the level,
/// `AWS_LAMBDA_LOG_FORMAT=JSON` switches to JSON lines.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Handles an SQS batch record by record, each in its own span: a record whose `process` fails
/// (with the reason, logged) is reported as a batch item failure and comes back after the
/// visibility timeout, or goes to the dead-letter queue after its last receive; a poison record
/// never fails its neighbours, and the others are deleted.
pub async fn for_each_record<F>(
    event: aws_lambda_events::event::sqs::SqsEvent,
    consumer: &'static str,
    process: F,
) -> aws_lambda_events::event::sqs::SqsBatchResponse
where
    F: AsyncFn(&aws_lambda_events::event::sqs::SqsMessage) -> Result<(), String>,
{
    use tracing::Instrument;
    let mut failures = Vec::new();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("sqs_record", consumer, message_id = %id);
        if let Err(reason) = process(message).instrument(span).await {
            tracing::warn!(consumer, message_id = %id, %reason, "record will be delivered again");
            failures.push(id);
        }
    }
    batch_failures(failures)
}

/// An SQS batch response that fails exactly these records.
fn batch_failures(failed_message_ids: Vec<String>) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    response.batch_item_failures = failed_message_ids
        .into_iter()
        .map(|id| {
            let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
