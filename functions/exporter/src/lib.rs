//! The exporter: an SQS consumer that takes export requests, re-reads each shipment, and exports
//! it to its channel if it is still due, never twice.
//!
//! Never twice rests on three things: a claim (a conditional write) before the channel call, so
//! two deliveries cannot both call; a claim that outlives its attempt (a crash, a timeout after
//! sending) makes the next attempt ask the channel first and adopt what it finds; and the
//! exported state, written after success, ends every later delivery.

mod connector;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, Utc};
use shipsync_domain::export::{ExportAction, ExportRequest, ExportState, decide_export};
use shipsync_domain::shipment::Shipment;
use shipsync_table::{Table, TableError};
use tracing::{error, info, warn};

use connector::Connector;

use shipsync_domain::time::Clock;

/// How long a request for a shipment that is not there yet is retried: a shipment's export is
/// planned just before the shipment is written, so its first message may arrive first.
const MISSING_SHIPMENT_GRACE: Duration = Duration::minutes(5);

/// The longest wait spent inside one invocation before retrying a channel call; longer waits
/// go back to the queue.
const IN_PROCESS_WAIT: StdDuration = StdDuration::from_secs(10);

/// Channel calls tried in one invocation before the message goes back to the queue.
const CALLS_PER_DELIVERY: u32 = 3;

/// The longest a message is kept invisible for a channel's wait (SQS allows 12 hours).
const MAX_REDELIVERY_WAIT: StdDuration = StdDuration::from_secs(43_200);

/// The time one record may take (its DynamoDB calls, a few channel calls under the HTTP
/// client's timeout, a short wait): no record is started with less left of the invocation.
pub const RECORD_BUDGET: StdDuration = StdDuration::from_secs(20);

#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// `SHIPSYNC_EXPORT_QUEUE_URL`: to lengthen a message's wait when a channel asks for it.
    pub queue_url: String,
    /// `SHIPSYNC_EXPORT_MAX_RECEIVES`: the queue's redrive `maxReceiveCount`. On the last
    /// receive, a failing export is marked failed before the message goes to the dead-letter queue.
    pub max_receives: u32,
}

#[derive(Clone)]
pub struct Exporter {
    table: Table,
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    /// Channels' OAuth tokens (Login with Amazon, eBay), kept across invocations until they expire.
    tokens: shipsync_channels::TokenCache,
    /// Where channel calls go: the channels' own hosts unless built for the local stack or tests.
    endpoints: shipsync_channels::ChannelEndpoints,
    config: ExporterConfig,
    clock: Clock,
    record_budget: StdDuration,
}

/// Why a message must be delivered again.
#[derive(Debug)]
struct Retry {
    reason: String,
    /// Wait at least this long (the channel's `Retry-After`), if longer than the queue's own.
    after: Option<StdDuration>,
}

impl Retry {
    fn because(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), after: None }
    }
}

impl From<TableError> for Retry {
    fn from(error: TableError) -> Self {
        Retry::because(format!("store: {error}"))
    }
}

impl Exporter {
    pub fn new(table: Table, sqs: aws_sdk_sqs::Client, http: reqwest::Client, config: ExporterConfig) -> Self {
        Self {
            table,
            sqs,
            http,
            tokens: Default::default(),
            endpoints: shipsync_channels::ChannelEndpoints::fixed(),
            config,
            clock: Arc::new(Utc::now),
            record_budget: RECORD_BUDGET,
        }
    }

    /// Sets the time one record may take (tests shorten it).
    pub fn with_record_budget(mut self, budget: StdDuration) -> Self {
        self.record_budget = budget;
        self
    }

    /// Sends channel calls where `endpoints` says (the local stack and tests honour stores' `base_url`).
    pub fn with_endpoints(mut self, endpoints: shipsync_channels::ChannelEndpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
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
            match Box::pin(self.process(message)).await {
                Ok(()) => Ok(()),
                Err(retry) => {
                    if let Some(after) = retry.after {
                        self.delay_redelivery(message, after).await;
                    }
                    Err(shipsync_app::Failure::retryable(retry.reason))
                }
            }
        })
        .await
    }

    async fn process(&self, message: &SqsMessage) -> Result<(), Retry> {
        let body = message.body.as_deref().unwrap_or_default();
        let request: ExportRequest = serde_json::from_str(body).map_err(|error| {
            // Never deleted: after its last receive it rests in the dead-letter queue, for a person.
            error!(%error, body, "unreadable export request");
            Retry::because("unreadable export request")
        })?;
        let now = self.now();
        let Some(shipment) = self.table.shipment(request.shipment_id).await? else {
            let age = sent_at(message).map(|sent| now - sent).unwrap_or_default();
            if age < MISSING_SHIPMENT_GRACE {
                return Err(Retry::because("shipment not written yet"));
            }
            warn!(shipment_id = %request.shipment_id, "export request for a shipment that does not exist: dropped");
            return Ok(());
        };
        match decide_export(&shipment, now) {
            ExportAction::Skip(why) => {
                info!(shipment_id = %shipment.id, reason = ?request.reason, why, "nothing to export");
                Ok(())
            }
            ExportAction::Busy => Err(Retry::because("another attempt is exporting it")),
            ExportAction::Export { check_channel_first } => {
                let claimed = shipment.claim_export(now);
                match self.table.update_shipment(&claimed, None).await {
                    Ok(()) => self.export(claimed, check_channel_first, receive_count(message)).await,
                    Err(TableError::Conflict(_)) => Err(Retry::because("the shipment changed while claiming it")),
                    Err(other) => Err(other.into()),
                }
            }
        }
    }

    /// Calls the channel for a claimed shipment and records the outcome.
    async fn export(&self, claimed: Shipment, check_channel_first: bool, receives: u32) -> Result<(), Retry> {
        let connector =
            match Connector::for_shipment(&self.table, &self.http, &self.tokens, self.endpoints, &claimed).await {
                Ok(connector) => connector,
                Err(connector::Problem::Table(error)) => return Err(error.into()),
                Err(connector::Problem::Refused(message)) => return self.record_failure(&claimed, message).await,
            };
        let mut check_first = check_channel_first;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match connector.export(check_first).await {
                Err(shipsync_channels::ChannelError::Retryable { message, retry_after })
                    if attempt < CALLS_PER_DELIVERY && retry_after.unwrap_or_default() <= IN_PROCESS_WAIT =>
                {
                    let wait = retry_after.unwrap_or(StdDuration::from_millis(500 << attempt));
                    warn!(shipment_id = %claimed.id, %message, ?wait, "channel call failed; retrying");
                    tokio::time::sleep(wait).await;
                    // The failed call may have reached the channel.
                    check_first = true;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(fulfillment) => {
                info!(shipment_id = %claimed.id, channel_ids = ?fulfillment.channel_ids, adopted = fulfillment.adopted, "exported");
                self.record(&claimed, |current, now| {
                    matches!(current.export.state, ExportState::Exporting { .. })
                        .then(|| current.exported(now, fulfillment.channel_ids.clone(), connector.notify_customer()))
                })
                .await
            }
            Err(
                refused @ (shipsync_channels::ChannelError::Permanent { .. }
                | shipsync_channels::ChannelError::Unsupported { .. }),
            ) => self.record_failure(&claimed, refused.to_string()).await,
            Err(shipsync_channels::ChannelError::Retryable { message, retry_after }) => {
                if receives >= self.config.max_receives {
                    let message = format!("gave up after {receives} deliveries: {message}");
                    self.record_failure(&claimed, message.clone()).await?;
                    // Failing it once more sends the message to the dead-letter queue.
                    return Err(Retry::because(message));
                }
                // Not due before the wait the channel asked for, so the sweeper leaves it alone too.
                let wait = retry_after
                    .map(|after| after.min(MAX_REDELIVERY_WAIT))
                    .and_then(|after| Duration::from_std(after).ok())
                    .unwrap_or_default();
                self.record(&claimed, |current, now| {
                    matches!(current.export.state, ExportState::Exporting { .. })
                        .then(|| current.export_retry_at(now, now + wait, message.clone()))
                })
                .await?;
                Err(Retry { reason: message, after: retry_after })
            }
        }
    }

    async fn record_failure(&self, claimed: &Shipment, message: String) -> Result<(), Retry> {
        error!(shipment_id = %claimed.id, %message, "export failed");
        self.record(claimed, |current, now| {
            matches!(current.export.state, ExportState::Exporting { .. })
                .then(|| current.export_failed(now, message.clone()))
        })
        .await
    }

    /// Writes an outcome. If the shipment changed meanwhile (costs edited during the call), the
    /// outcome is applied to the fresh copy, as long as it is still this attempt's to record.
    async fn record(
        &self,
        claimed: &Shipment,
        outcome: impl Fn(&Shipment, DateTime<Utc>) -> Option<Shipment>,
    ) -> Result<(), Retry> {
        let mut current = claimed.clone();
        for _ in 0..5 {
            let Some(next) = outcome(&current, self.now()) else { return Ok(()) };
            match self.table.update_shipment(&next, None).await {
                Ok(()) => return Ok(()),
                Err(TableError::Conflict(_)) => match self.table.shipment(claimed.id).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(()),
                },
                Err(other) => return Err(other.into()),
            }
        }
        Err(Retry::because("could not record the export outcome: the shipment kept changing"))
    }

    /// Keeps a message invisible for at least `after`, as the channel asked.
    async fn delay_redelivery(&self, message: &SqsMessage, after: StdDuration) {
        let Some(receipt) = message.receipt_handle.as_deref() else { return };
        let seconds = i32::try_from(after.min(MAX_REDELIVERY_WAIT).as_secs().max(1)).unwrap_or(43_200);
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.queue_url)
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
