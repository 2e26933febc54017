//! The order poller: an EventBridge rate schedule's target. Each tick is handed to
//! [`OrderPolling`] (shipsync-app), which fetches the orders changed since each due store's
//! cursor through the channel port and queues them for the order processor; this crate only
//! builds it.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shipsync_app::polling::OrderPolling;
use shipsync_channels::{ChannelEndpoints, Channels};
use shipsync_domain::time::{Clock, system_clock};
use shipsync_planner::OrderQueue;
use shipsync_table::{CredentialAccess, Table};

pub use shipsync_app::polling::{
    CONCURRENT_STORES, FIRST_FETCH, MAX_EVENT_BYTES, OVERLAP, PollReport, poll_problem_key,
};

/// How long one channel call may take.
pub const CHANNEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The poller as deployed: the table, the channels at their own hosts, the order queue.
pub type Polling = OrderPolling<Table, Channels, OrderQueue>;

#[derive(Clone)]
pub struct OrderPoller {
    polling: Polling,
    http: reqwest::Client,
}

impl OrderPoller {
    /// As deployed (its Lambda, the local stack): it opens the credentials it fetches orders
    /// with, and calls channels at their own hosts.
    pub fn build(
        config: &shipsync_platform::IntakeConfig,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, shipsync_channels::HttpClientError> {
        let access = CredentialAccess::Open { key_id: &config.credentials_key_id };
        let table = Table::connect(aws, &config.table_name, access);
        let http = shipsync_channels::http_client(CHANNEL_TIMEOUT)?;
        Ok(Self::new(table, aws_sdk_sqs::Client::new(aws), http, config.order_queue_url.clone()))
    }

    pub fn new(table: Table, sqs: aws_sdk_sqs::Client, http: reqwest::Client, queue_url: String) -> Self {
        let channels = Channels::new(http.clone(), ChannelEndpoints::fixed());
        let polling = OrderPolling::new(table, channels, OrderQueue::new(sqs, queue_url), system_clock());
        Self { polling, http }
    }

    /// Sends channel calls where `endpoints` says (the local stack and tests honour stores' `base_url`).
    pub fn with_endpoints(mut self, endpoints: ChannelEndpoints) -> Self {
        self.polling = self.polling.with_channels(Channels::new(self.http.clone(), endpoints));
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.polling = self.polling.with_clock(clock);
        self
    }

    /// Polls every store that is due, [`CONCURRENT_STORES`] at a time.
    pub async fn tick(&self) -> Result<PollReport, shipsync_app::Failure> {
        self.polling.tick().await
    }

    /// Reads and queues the orders a batch of Amazon `ORDER_CHANGE` notifications names; the
    /// records that fail come back (and end in the dead-letter queue).
    pub async fn notifications(&self, batch: SqsEvent) -> SqsBatchResponse {
        let polling = &self.polling;
        shipsync_platform::for_each_record(batch, "order-poller", async |message: &SqsMessage| {
            polling.apply_amazon_notification(message.body.as_deref().unwrap_or_default()).await
        })
        .await
    }

    /// One invocation: a batch from the notification queue, or the schedule's tick.
    pub async fn handle(&self, event: serde_json::Value) -> Result<serde_json::Value, shipsync_app::Failure> {
        if event.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event)
                .map_err(|error| shipsync_app::Failure::permanent(format!("not an SQS batch: {error}")))?;
            let response = Box::pin(self.notifications(batch)).await;
            return serde_json::to_value(response).map_err(|error| shipsync_app::Failure::permanent(error.to_string()));
        }
        let report = Box::pin(self.tick()).await?;
        // A store that failed makes the invocation fail, so it shows in the function's errors.
        if report.failures.is_empty() {
            Ok(serde_json::json!({ "orders_queued": report.orders_queued, "orders_kept": report.orders_kept }))
        } else {
            Err(shipsync_app::Failure::retryable(report.failures.join("; ")))
        }
    }
}
