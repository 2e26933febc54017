//! Start-up for every shipsync function: typed configuration from the environment (a missing
//! variable fails the cold start, never a request), the AWS SDK configuration, and logging.

pub mod aws_http;

use aws_config::{BehaviorVersion, SdkConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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

/// What the functions that take orders in need (the Shopify and carrier webhooks, the poller):
/// the table, the key that opens the credentials they check or call with, and the order queue.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// `SHIPSYNC_CREDENTIALS_KEY_ID`
    pub credentials_key_id: String,
    /// `SHIPSYNC_ORDER_QUEUE_URL`: where events for the order processor go.
    pub order_queue_url: String,
}

impl IntakeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env("SHIPSYNC_TABLE")?,
            credentials_key_id: required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?,
            order_queue_url: required_env("SHIPSYNC_ORDER_QUEUE_URL")?,
        })
    }
}

/// The AWS SDK configuration of a function, from what Lambda puts in its environment: the
/// region (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` to point at a local
/// emulator. Built by hand, not by `aws_config::load`: its provider chains (profiles, SSO, IMDS,
/// STS) serve laptops and servers, and were a tenth of every binary. `AWS_CA_BUNDLE` as below.
pub async fn aws_sdk_config() -> Result<SdkConfig, ConfigError> {
    let region = required_env("AWS_REGION")?;
    let credentials = aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new();
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .http_client(aws_http_client()?)
        .retry_config(aws_config::retry::RetryConfig::standard())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().connect_timeout(aws_http::CONNECT_TIMEOUT).build(),
        );
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
        && !endpoint.trim().is_empty()
    {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

/// The SDK's configuration loader, with every provider chain, and shipsync's HTTP client
/// ([`aws_http::sdk_http_client`]): for the tools, run where profiles and SSO are.
pub fn aws_config_loader() -> Result<aws_config::ConfigLoader, ConfigError> {
    Ok(aws_config::defaults(BehaviorVersion::latest()).http_client(aws_http_client()?))
}

/// The SDK's HTTP client, trusting `AWS_CA_BUNDLE`'s roots too when it is set.
fn aws_http_client() -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, ConfigError> {
    Ok(aws_http::sdk_http_client(aws_reqwest_client()?))
}

/// The reqwest client the SDK's calls go through, for the few AWS calls shipsync signs itself
/// (S3's, `shipsync-files`): the same TLS, roots (`AWS_CA_BUNDLE` too) and timeouts.
pub fn aws_reqwest_client() -> Result<reqwest::Client, ConfigError> {
    let extra_roots = match std::env::var_os(AWS_CA_BUNDLE) {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|error| ConfigError::Invalid {
                name: AWS_CA_BUNDLE,
                reason: format!("cannot read {}: {error}", path.to_string_lossy()),
            })?;
            root_certificates(&pem).map_err(|reason| ConfigError::Invalid { name: AWS_CA_BUNDLE, reason })?
        }
        None => Vec::new(),
    };
    aws_http::sdk_http_builder(extra_roots)
        .and_then(|builder| Ok(builder.build()?))
        .map_err(|error| ConfigError::Invalid { name: AWS_CA_BUNDLE, reason: error.to_string() })
}

/// A PEM file of further roots to trust for AWS endpoints (a TLS-inspecting proxy, a partition
/// whose endpoints chain elsewhere): the variable the AWS CLI and other SDKs read.
const AWS_CA_BUNDLE: &str = "AWS_CA_BUNDLE";

/// The certificates of a PEM file, each checked to be a usable root.
fn root_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("is not PEM: {error}"))?;
    if certificates.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    let mut store = rustls::RootCertStore::empty();
    for certificate in &certificates {
        store
            .add(certificate.clone())
            .map_err(|error| format!("holds a certificate that cannot be a root: {error}"))?;
    }
    Ok(certificates)
}

/// A DynamoDB client for the given SDK configuration.
pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// Structured logs as Lambda expects them: `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`) sets the level,
/// one for every target (`TRACE` to `ERROR`, `INFO` when unset or unreadable),
/// `AWS_LAMBDA_LOG_FORMAT=JSON` switches to JSON lines. No time on each line: CloudWatch stamps it.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.trim().parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let logs = tracing_subscriber::fmt().with_target(false).without_time().with_ansi(false).with_max_level(level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    // A subscriber set before (a test's) stays: logs are never worth failing a start over.
    let _ = if json { logs.json().try_init() } else { logs.try_init() };
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
    F: AsyncFn(&aws_lambda_events::event::sqs::SqsMessage) -> Result<(), shipsync_app::Failure>,
{
    for_each_record_within(event, consumer, None, process).await
}

/// How long an invocation may still run, and how long one record may take.
#[derive(Debug, Clone, Copy)]
pub struct TimeBudget {
    /// When the invocation is stopped (Lambda's deadline).
    pub deadline: std::time::Instant,
    /// The longest one record may take: no record is started with less than this left.
    pub per_record: std::time::Duration,
}

impl TimeBudget {
    /// A budget ending at a wall-clock deadline (the Lambda context's).
    pub fn until(deadline: std::time::SystemTime, per_record: std::time::Duration) -> Self {
        let left = deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        Self { deadline: std::time::Instant::now() + left, per_record }
    }

    /// Time kept back at the end of the invocation to return the batch response: a second, or a
    /// quarter of a record's time where that is shorter.
    fn response_margin(&self) -> std::time::Duration {
        (self.per_record / 4).min(std::time::Duration::from_secs(1))
    }

    fn allows_another_record(&self) -> bool {
        self.deadline.saturating_duration_since(std::time::Instant::now()) >= self.per_record
    }

    /// When a record still under way is cut off, so that the batch response is returned before
    /// the Lambda's timeout.
    fn cut_at(&self) -> tokio::time::Instant {
        let cut = self.deadline.checked_sub(self.response_margin()).unwrap_or(self.deadline);
        tokio::time::Instant::from_std(cut)
    }
}

/// As [`for_each_record`], within a time budget: once less time is left than one record may
/// take, the records not yet started are reported as batch item failures, untouched, so that
/// they come back rather than being cut off by the Lambda's timeout (which would fail the whole
/// batch, the records already done with it, and leave the record under way half done).
pub async fn for_each_record_within<F>(
    event: aws_lambda_events::event::sqs::SqsEvent,
    consumer: &'static str,
    budget: Option<TimeBudget>,
    process: F,
) -> aws_lambda_events::event::sqs::SqsBatchResponse
where
    F: AsyncFn(&aws_lambda_events::event::sqs::SqsMessage) -> Result<(), shipsync_app::Failure>,
{
    use tracing::Instrument;
    let mut failures = Vec::new();
    for (index, message) in event.records.iter().enumerate() {
        let id = message.message_id.clone().unwrap_or_default();
        if budget.is_some_and(|budget| !budget.allows_another_record()) {
            let left = event.records.len() - index;
            tracing::warn!(consumer, left, "too little time left for another record: the rest will be delivered again");
            failures.extend(event.records[index..].iter().map(|m| m.message_id.clone().unwrap_or_default()));
            break;
        }
        let span = tracing::info_span!("sqs_record", consumer, message_id = %id);
        let processed = process(message).instrument(span);
        // A record that outruns the invocation is cut off and delivered again: for the exporter
        // that is a crash after its claim, which the next attempt handles by asking the channel.
        let outcome = match budget {
            Some(budget) => tokio::time::timeout_at(budget.cut_at(), processed)
                .await
                .unwrap_or_else(|_| Err(shipsync_app::Failure::retryable("cut off: the invocation's time ran out"))),
            None => processed.await,
        };
        // The one place a failed record becomes a batch item failure; the log keeps its causes.
        if let Err(failure) = outcome {
            tracing::warn!(consumer, message_id = %id, reason = %failure.chain(), "record will be delivered again");
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    #[test]
    fn the_compiled_in_roots_hold_amazons_that_every_aws_endpoint_chains_to() {
        let subjects: Vec<String> = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .map(|root| String::from_utf8_lossy(root.subject.as_ref()).into_owned())
            .collect();
        for name in ["Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4"] {
            assert!(subjects.iter().any(|subject| subject.contains(name)), "{name} is missing");
        }
        assert!(subjects.iter().any(|subject| subject.contains("Starfield Services Root Certificate Authority - G2")));
    }

    #[test]
    fn a_ca_bundle_that_is_not_certificates_fails_the_cold_start_instead_of_a_call() {
        assert!(root_certificates(b"not a certificate").is_err());
        assert!(root_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        let amazon = include_bytes!("../tests/amazon-root-ca-1.pem");
        assert_eq!(root_certificates(amazon).map(|roots| roots.len()), Ok(1));
    }

    fn batch(ids: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for id in ids {
            let mut message = SqsMessage::default();
            message.message_id = Some((*id).to_owned());
            event.records.push(message);
        }
        event
    }

    fn failed(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn records_left_without_time_for_them_are_reported_failed_untouched() {
        let started = Cell::new(0);
        let budget = TimeBudget {
            deadline: Instant::now() + Duration::from_millis(150),
            per_record: Duration::from_millis(100),
        };
        let response = for_each_record_within(batch(&["a", "b", "c"]), "test", Some(budget), async |_| {
            started.set(started.get() + 1);
            tokio::time::sleep(Duration::from_millis(60)).await;
            Ok(())
        })
        .await;
        assert_eq!(started.get(), 1, "the second record would have started with 90 ms left of the 100 it may take");
        assert_eq!(failed(&response), ["b", "c"]);
    }

    #[tokio::test]
    async fn a_record_that_outruns_the_invocation_is_cut_off_and_reported_in_time() {
        let started = Instant::now();
        let budget = TimeBudget {
            deadline: Instant::now() + Duration::from_millis(300),
            per_record: Duration::from_millis(100),
        };
        let response = for_each_record_within(batch(&["slow", "next"]), "test", Some(budget), async |_| {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        })
        .await;
        assert_eq!(failed(&response), ["slow", "next"]);
        // Cut 25 ms (a quarter of a record's time) before the deadline; the next was not started.
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn without_a_budget_every_record_is_handled_and_only_failures_reported() {
        let response = for_each_record(batch(&["a", "b"]), "test", async |m| {
            if m.message_id.as_deref() == Some("b") { Err(shipsync_app::Failure::retryable("no")) } else { Ok(()) }
        })
        .await;
        assert_eq!(failed(&response), ["b"]);
        let expired = TimeBudget::until(std::time::SystemTime::now(), Duration::from_secs(1));
        let response = for_each_record_within(batch(&["a"]), "test", Some(expired), async |_| Ok(())).await;
        assert_eq!(failed(&response), ["a"]);
    }
}
