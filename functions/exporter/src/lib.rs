//! The exporter. Each export request is run by [`ExportRun`] (shipsync-app: claim, call the
//! channel, record the outcome, never twice). Requests arrive two ways: in batches from the export
//! queue (exports due now, retries), where this crate lengthens a message's wait when a channel
//! asks for one and reports batch item failures; or one at a time from a due schedule, which
//! invokes the function directly. A scheduled request that must be tried again is handed to the
//! queue, with the wait the channel asked for, so both ways retry alike.

use std::time::Duration as StdDuration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipsync_app::Failure;
use shipsync_app::cancellations::CancellationPush;
use shipsync_app::exports::{ExportRun, MAX_REDELIVERY_WAIT, RequestDelivery};
use shipsync_app::returns::ReturnPush;
use shipsync_channels::{ChannelEndpoints, Channels};
use shipsync_domain::cancellations::ChannelUpdate;
use shipsync_domain::export::ExportRequest;
use shipsync_domain::time::{Clock, system_clock};
use shipsync_platform::{ConfigError, required_env};
use shipsync_table::{CredentialAccess, Table};
use tracing::{error, warn};

/// The time one record may take (its DynamoDB calls, a few channel calls under the HTTP
/// client's timeout, a short wait): no record is started with less left of the invocation.
pub const RECORD_BUDGET: StdDuration = StdDuration::from_secs(20);

/// How long one channel call may take.
pub const CHANNEL_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// How long a scheduled request that failed waits in the queue before its next try, when the
/// channel named no wait: about as long as a queued one waits for its visibility timeout to pass.
pub const SCHEDULED_RETRY_WAIT: StdDuration = StdDuration::from_secs(60);

/// The longest wait SQS can put on a message it is sent (`DelaySeconds`). A channel asking for
/// longer has recorded its due time on the shipment: the request comes early, finds it not due,
/// and the sweeper sends it again once it is overdue.
pub const MAX_QUEUE_DELAY: StdDuration = StdDuration::from_secs(900);

/// What invokes the exporter: a due schedule with one request (tried first: an SQS event has
/// no `shipment_id`), or the export queue's event source with a batch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ExporterEvent {
    Scheduled(ExportRequest),
    Queue(SqsEvent),
}

/// A message on the export queue: an export request, or a change its channel must be told of.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum QueuedMessage {
    Export(ExportRequest),
    Update(ChannelUpdate),
}

/// The exporter's answer: the batch's item failures for the queue; nothing for a schedule.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ExporterResponse {
    Queue(SqsBatchResponse),
    Scheduled {},
}

/// A scheduled request that failed and could not be handed to the queue either: the function
/// fails, and Lambda invokes it again (then sends it to the on-failure destination).
#[derive(Debug, thiserror::Error)]
#[error("export of shipment {shipment} failed ({reason}) and could not be queued for a retry")]
pub struct ScheduledRetryLost {
    pub shipment: u64,
    pub reason: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
/// What the exporter is built from: read from the environment when deployed, set by the local
/// stack and the tests.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// `SHIPSYNC_CREDENTIALS_KEY_ID`: opens the channel credentials.
    pub credentials_key_id: String,
    /// `SHIPSYNC_EXPORT_QUEUE_URL`: to lengthen a message's wait when a channel asks for it.
    pub queue_url: String,
    /// `SHIPSYNC_EXPORT_MAX_RECEIVES`: the queue's redrive `maxReceiveCount`. On the last
    /// receive, a failing export is marked failed before the message goes to the dead-letter queue.
    pub max_receives: u32,
    /// How long one channel call may take ([`CHANNEL_TIMEOUT`] when deployed).
    pub channel_timeout: StdDuration,
}

impl ExporterConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env("SHIPSYNC_TABLE")?,
            credentials_key_id: required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?,
            queue_url: required_env("SHIPSYNC_EXPORT_QUEUE_URL")?,
            max_receives: required_env("SHIPSYNC_EXPORT_MAX_RECEIVES")?.parse().map_err(|_| ConfigError::Invalid {
                name: "SHIPSYNC_EXPORT_MAX_RECEIVES",
                reason: "not a number".into(),
            })?,
            channel_timeout: CHANNEL_TIMEOUT,
        })
    }
}

#[derive(Clone)]
pub struct Exporter {
    run: ExportRun<Table, Channels>,
    /// Cancellations to push, queued beside the exports.
    cancellations: CancellationPush<Table, Channels>,
    /// Returns to open at their channels.
    returns: ReturnPush<Table, Channels>,
    table: Table,
    http: reqwest::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    record_budget: StdDuration,
}

impl Exporter {
    /// The exporter as deployed: the one composition root its Lambda, the local stack, the
    /// benchmark and the tests share. Channel calls go to each channel's own hosts.
    pub fn build(config: &ExporterConfig, aws: &SdkConfig) -> Result<Self, shipsync_channels::HttpClientError> {
        let access = CredentialAccess::Open { key_id: &config.credentials_key_id };
        let table = Table::connect(aws, &config.table_name, access);
        let http = shipsync_channels::http_client(config.channel_timeout)?;
        Ok(Self::new(table, aws_sdk_sqs::Client::new(aws), http, config))
    }

    /// From parts (a test's table that fails on cue, an HTTP client that resolves fake hosts).
    pub fn new(table: Table, sqs: aws_sdk_sqs::Client, http: reqwest::Client, config: &ExporterConfig) -> Self {
        let channels = Channels::new(http.clone(), ChannelEndpoints::fixed());
        Self {
            run: ExportRun::new(table.clone(), channels.clone(), system_clock(), config.max_receives),
            cancellations: CancellationPush::new(table.clone(), channels.clone(), system_clock()),
            returns: ReturnPush::new(table.clone(), channels, system_clock()),
            table,
            http,
            sqs,
            queue_url: config.queue_url.clone(),
            record_budget: RECORD_BUDGET,
        }
    }

    /// Sets the time one record may take (tests shorten it).
    pub fn with_record_budget(mut self, budget: StdDuration) -> Self {
        self.record_budget = budget;
        self
    }

    /// Sends channel calls where `endpoints` says (the local stack and tests honour stores' `base_url`).
    pub fn with_endpoints(mut self, endpoints: ChannelEndpoints) -> Self {
        let channels = Channels::new(self.http.clone(), endpoints);
        self.cancellations = self.cancellations.with_channels(channels.clone());
        self.returns = self.returns.with_channels(channels.clone());
        self.run = self.run.with_channels(channels);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.run = self.run.with_clock(clock.clone());
        self.cancellations = self.cancellations.with_clock(clock.clone());
        self.returns = self.returns.with_clock(clock);
        self
    }

    /// The table it reads and writes (the benchmark counts its calls).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Handles whatever invoked it, before `deadline` (the Lambda's).
    pub async fn handle_event(
        &self,
        event: ExporterEvent,
        deadline: std::time::SystemTime,
    ) -> Result<ExporterResponse, ScheduledRetryLost> {
        match event {
            ExporterEvent::Queue(batch) => Ok(ExporterResponse::Queue(self.handle_until(batch, deadline).await)),
            ExporterEvent::Scheduled(request) => {
                Box::pin(self.handle_scheduled(request)).await?;
                Ok(ExporterResponse::Scheduled {})
            }
        }
    }

    /// Runs a request a schedule delivered. One that must be tried again goes to the export
    /// queue with the wait the channel asked for (or [`SCHEDULED_RETRY_WAIT`]), and is retried
    /// from there like any queued one; the schedule's delivery itself then succeeds.
    pub async fn handle_scheduled(&self, request: ExportRequest) -> Result<(), ScheduledRetryLost> {
        let delivery = RequestDelivery { receives: 1, sent_at: None };
        let Err(failure) = Box::pin(self.run.run(request, delivery)).await else { return Ok(()) };
        let wait = failure.retry_after().unwrap_or(SCHEDULED_RETRY_WAIT).min(MAX_QUEUE_DELAY);
        let shipment = request.shipment_id.get();
        let lost = |source: Box<dyn std::error::Error + Send + Sync>| ScheduledRetryLost {
            shipment,
            reason: failure.to_string(),
            source,
        };
        let body = serde_json::to_string(&request).map_err(|error| lost(Box::new(error)))?;
        // Boxed: the SDK's send is a large future, and this one is awaited inside others.
        Box::pin(
            self.sqs
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(body)
                .delay_seconds(i32::try_from(wait.as_secs()).unwrap_or(900))
                .send(),
        )
        .await
        .map_err(|error| lost(Box::new(error)))?;
        warn!(shipment_id = shipment, reason = %failure, wait_seconds = wait.as_secs(), "scheduled export queued for a retry");
        Ok(())
    }

    /// Handles a batch; each record succeeds or fails on its own.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        Box::pin(self.handle_within(event, None)).await
    }

    /// Handles a batch before `deadline` (the Lambda's): once less than one record's budget is
    /// left, the records not started are reported as failures and come back, untouched.
    pub async fn handle_until(&self, event: SqsEvent, deadline: std::time::SystemTime) -> SqsBatchResponse {
        let budget = shipsync_platform::TimeBudget::until(deadline, self.record_budget);
        Box::pin(self.handle_within(event, Some(budget))).await
    }

    async fn handle_within(&self, event: SqsEvent, budget: Option<shipsync_platform::TimeBudget>) -> SqsBatchResponse {
        shipsync_platform::for_each_record_within(event, "exporter", budget, async |message| {
            let outcome = Box::pin(self.process(message)).await;
            if let Err(failure) = &outcome
                && let Some(after) = failure.retry_after()
            {
                self.delay_redelivery(message, after).await;
            }
            outcome
        })
        .await
    }

    async fn process(&self, message: &SqsMessage) -> Result<(), Failure> {
        let body = message.body.as_deref().unwrap_or_default();
        // One parse: an export request (the common message), else a change to push.
        let queued: QueuedMessage = serde_json::from_str(body).map_err(|error| {
            // Never deleted: after its last receive it rests in the dead-letter queue, for a person.
            error!(%error, body, "unreadable export request");
            Failure::retryable("unreadable export request")
        })?;
        match queued {
            QueuedMessage::Export(request) => {
                let delivery = RequestDelivery { receives: receive_count(message), sent_at: sent_at(message) };
                self.run.run(request, delivery).await
            }
            QueuedMessage::Update(ChannelUpdate::Cancellation(cancellation)) => {
                self.cancellations.run(cancellation, sent_at(message)).await
            }
            QueuedMessage::Update(ChannelUpdate::Return(ret)) => self.returns.run(ret, sent_at(message)).await,
        }
    }

    /// Keeps a message invisible for at least `after`, as the channel asked.
    async fn delay_redelivery(&self, message: &SqsMessage, after: StdDuration) {
        let Some(receipt) = message.receipt_handle.as_deref() else { return };
        let seconds = i32::try_from(after.min(MAX_REDELIVERY_WAIT).as_secs().max(1)).unwrap_or(43_200);
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await;
        if let Err(error) = result {
            // The message comes back after the queue's own visibility timeout instead: still retried.
            warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "could not lengthen the retry wait");
        }
    }
}

fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse().ok()).unwrap_or(1)
}

fn sent_at(message: &SqsMessage) -> Option<DateTime<Utc>> {
    let millis: i64 = message.attributes.get("SentTimestamp")?.parse().ok()?;
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schedules_input_is_one_request_and_a_queue_event_is_a_batch() {
        let scheduled: ExporterEvent =
            serde_json::from_value(json!({"shipment_id": 42, "reason": "scheduled"})).expect("schedule input");
        assert!(matches!(scheduled, ExporterEvent::Scheduled(request) if request.shipment_id.get() == 42));
        let batch = json!({"Records": [{
            "messageId": "m1", "receiptHandle": "r1", "body": "{\"shipment_id\":7,\"reason\":\"manual\"}",
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:exports",
            "awsRegion": "us-east-1"
        }]});
        let queued: ExporterEvent = serde_json::from_value(batch).expect("queue event");
        assert!(matches!(queued, ExporterEvent::Queue(event) if event.records.len() == 1));
        assert_eq!(serde_json::to_value(ExporterResponse::Scheduled {}).expect("json"), json!({}));
    }

    #[test]
    fn a_queued_message_is_an_export_request_or_a_change_to_push() {
        let export: QueuedMessage = serde_json::from_str(r#"{"shipment_id":7,"reason":"manual"}"#).expect("export");
        assert!(matches!(export, QueuedMessage::Export(request) if request.shipment_id.get() == 7));
        let cancel: QueuedMessage =
            serde_json::from_str(r#"{"cancellation":{"retailer_id":1,"purchase_order_id":2,"id":3}}"#).expect("update");
        assert!(matches!(cancel, QueuedMessage::Update(ChannelUpdate::Cancellation(c)) if c.id == 3));
        let ret: QueuedMessage =
            serde_json::from_str(r#"{"return":{"retailer_id":1,"purchase_order_id":2,"id":4}}"#).expect("update");
        assert!(matches!(ret, QueuedMessage::Update(ChannelUpdate::Return(r)) if r.id == 4));
        assert!(serde_json::from_str::<QueuedMessage>(r#"{"shipment":1}"#).is_err());
    }
}
