//! The order poller: on every tick, each store whose interval has passed has the orders changed
//! since its cursor fetched (with an overlap, so an order changed during the last fetch is not
//! missed) and queued for the order processor, which ignores versions it already has.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use shipsync_channels::ChannelEndpoints;
use shipsync_domain::orders::{ChannelEvent, ChannelEventMessage};
use shipsync_domain::tenant::{ChannelKind, Store as ChannelStore};
use shipsync_store::{PollState, Store};
use tracing::{error, info};

/// Fetches reach back this far before the cursor: an order updated while the previous fetch ran
/// may carry a time just before where that fetch ended.
pub const OVERLAP: Duration = Duration::minutes(5);

/// How far back the first fetch of a store reaches.
pub const FIRST_FETCH: Duration = Duration::days(1);

/// Pages fetched per store per tick: a large backlog is caught up over several ticks.
const PAGES_PER_TICK: usize = 20;

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct OrderPoller {
    store: Store,
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    /// `SHIPSYNC_ORDER_QUEUE_URL`
    queue_url: String,
    /// Where channel calls go: the channels' own hosts unless built for the local stack or tests.
    endpoints: ChannelEndpoints,
    clock: Clock,
}

/// What a tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub stores_polled: usize,
    pub orders_queued: usize,
    /// Stores whose fetch failed (logged; their cursor stays, so the next tick tries again).
    pub failures: Vec<String>,
}

impl OrderPoller {
    pub fn new(store: Store, sqs: aws_sdk_sqs::Client, http: reqwest::Client, queue_url: String) -> Self {
        Self { store, sqs, http, queue_url, endpoints: ChannelEndpoints::fixed(), clock: Arc::new(Utc::now) }
    }

    /// Sends channel calls where `endpoints` says (the local stack and tests honour stores' `base_url`).
    pub fn with_endpoints(mut self, endpoints: ChannelEndpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Polls every store that is due.
    pub async fn tick(&self) -> Result<PollReport, String> {
        let now = (self.clock)();
        let mut report = PollReport::default();
        let listed = self.store.polled_stores().await.map_err(|e| format!("listing stores: {e}"))?;
        for entry in listed {
            let Some(store) =
                self.store.channel_store(entry.retailer_id, entry.store_id).await.map_err(|e| e.to_string())?
            else {
                continue;
            };
            let every = store.ingestion.poll_orders_every_minutes;
            // Only Shopify can be fetched so far; the other channels' clients come with them.
            if every == 0 || store.channel != ChannelKind::Shopify {
                continue;
            }
            let state = self.store.poll_state(store.id).await.map_err(|e| e.to_string())?;
            if state.last_polled_at.is_some_and(|last| now - last < Duration::minutes(i64::from(every))) {
                continue;
            }
            match self.poll(&store, state, now).await {
                Ok(queued) => {
                    report.stores_polled += 1;
                    report.orders_queued += queued;
                }
                Err(problem) => {
                    error!(store_id = %store.id, %problem, "polling failed");
                    report.failures.push(format!("store {}: {problem}", store.id));
                }
            }
        }
        Ok(report)
    }

    async fn poll(&self, store: &ChannelStore, state: PollState, now: DateTime<Utc>) -> Result<usize, String> {
        let credentials = self.store.credentials(store.retailer_id, store.id).await.map_err(|e| e.to_string())?;
        let token = credentials.0.get("access_token").cloned().ok_or("no Shopify access_token")?;
        let client =
            self.endpoints.shopify_client(self.http.clone(), &store.connection, token).map_err(|e| e.to_string())?;
        let since = state.cursor.map_or(now - FIRST_FETCH, |cursor| cursor - OVERLAP);
        let mut cursor = state.cursor;
        let mut after: Option<String> = None;
        let mut queued = 0;
        for _ in 0..PAGES_PER_TICK {
            let page = client.orders_updated_since(since, after.as_deref()).await.map_err(|e| e.to_string())?;
            for order in page.orders {
                cursor = Some(cursor.map_or(order.updated_at, |c| c.max(order.updated_at)));
                let message = ChannelEventMessage {
                    retailer_id: Some(store.retailer_id),
                    store_id: Some(store.id),
                    source: "shopify poll".into(),
                    event: ChannelEvent::OrderChanged { order },
                };
                let body = serde_json::to_string(&message).map_err(|e| e.to_string())?;
                self.sqs
                    .send_message()
                    .queue_url(&self.queue_url)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| format!("queueing an order: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
                queued += 1;
            }
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        // Saved only after every order up to it was queued: a failure above fetches them again.
        let next = PollState { cursor, last_polled_at: Some(now) };
        self.store.save_poll_state(store.id, &next).await.map_err(|e| e.to_string())?;
        info!(store_id = %store.id, queued, cursor = ?next.cursor, "polled");
        Ok(queued)
    }
}
