//! Carrier-tracking webhooks: `POST /carrier_webhooks/{provider}/{store_id}` for EasyPost
//! (`tracker.updated`), AfterShip (`tracking_update`) and Shippo (`track_updated`).
//!
//! Each store registers its tracking numbers in its own provider account and points that
//! account's webhook at its own URL. A delivery is verified with that store's secret only
//! (`tracking_webhook_secret`, a webhook credential), so a tenant cannot sign a scan for another:
//! a store that does not use this provider (or uses none, or does not exist), no secret, an empty
//! one, no signature, a wrong one, or a signed time more than 5 minutes from now: all one 401. The scan is
//! queued for the order processor naming the store, and recorded on that store's shipments with
//! the tracking number only (releasing the export where the store waits for movement). A failure
//! to queue answers 503.
//!
//! Nothing is remembered of a delivery: applying a scan again changes nothing (a shipment's
//! tracking status only moves forward and its export is released once), so a repeat the provider
//! sends is queued and applied as a no-op. A delivery costs the store's record, its webhook
//! secrets and one SQS message.

pub mod providers;

/// The answer to every delivery refused (401), whatever the reason (logged, not told).
const REFUSED: &str = "not a delivery this URL accepts: the store does not take this provider's deliveries, \
                       has no tracking_webhook_secret, or the signature is missing, wrong or outside its \
                       5-minute window";

use chrono::Utc;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_app::Failure;
use shipsync_app::ports::EventQueue;
use shipsync_domain::ids::StoreId;
use shipsync_domain::orders::{ChannelEvent, ChannelEventMessage};
use shipsync_domain::tenant::ChannelStore;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_response, path_segments, query_pairs};
use shipsync_planner::OrderQueue;
use shipsync_table::Table;
use std::sync::Arc;
use tracing::{error, info, warn};

pub use providers::Provider;

/// The largest payload accepted.
pub const MAX_PAYLOAD_BYTES: usize = 200 * 1024;

use shipsync_domain::time::Clock;

#[derive(Clone)]
pub struct CarrierWebhooks {
    table: Table,
    /// The order processor's queue.
    queue: OrderQueue,
    clock: Clock,
}

impl CarrierWebhooks {
    /// As deployed (its Lambda, the local stack): it opens the stores' webhook secrets only: its KMS grant names that purpose.
    pub fn build(config: &shipsync_platform::IntakeConfig, aws: &aws_config::SdkConfig) -> Self {
        let access = shipsync_table::CredentialAccess::Open { key_id: &config.credentials_key_id };
        let table = Table::connect(aws, &config.table_name, access);
        Self::new(table, aws_sdk_sqs::Client::new(aws), config.order_queue_url.clone())
    }

    pub fn new(table: Table, sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { table, queue: OrderQueue::new(sqs, queue_url), clock: Arc::new(Utc::now) }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        match self.receive(&request).await {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        }
    }

    async fn receive(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let segments = path_segments(request);
        let (provider, store_id) = match segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["carrier_webhooks", name, store_id] if request.method() == Method::POST => {
                (Provider::from_path(name).ok_or_else(|| ApiError::NotFound(format!("no provider {name}")))?, *store_id)
            }
            ["carrier_webhooks", _, _] => return Err(ApiError::MethodNotAllowed),
            ["carrier_webhooks", name] => {
                // The deployment-wide URL of earlier versions: any tenant could sign for any other there.
                return Err(ApiError::NotFound(format!(
                    "carrier webhook URLs now name the store: POST /carrier_webhooks/{name}/{{store_id}}, signed \
                     with the store's tracking_webhook_secret"
                )));
            }
            _ => return Err(ApiError::NotFound("no such webhook endpoint".into())),
        };
        let body = request.body();
        if body.len() > MAX_PAYLOAD_BYTES {
            return Err(ApiError::PayloadTooLarge { limit: MAX_PAYLOAD_BYTES });
        }
        // One answer for every delivery that is not a store's own, signed by it: an unknown store,
        // a store of another provider and a bad signature look alike, so probing tells nothing.
        let not_found = || ApiError::WebhookRefused(REFUSED);
        let store_id: StoreId = store_id.parse().map_err(|_| not_found())?;
        let store = self
            .table
            .channel_store_by_id(store_id)
            .await
            .map_err(Failure::from)?
            .filter(|store| store.tracking.provider.is_some_and(|used| used.name() == provider.name()))
            .ok_or_else(not_found)?;
        // Only the webhook secrets: this function may not open the store's API credentials.
        let opened = self.table.webhook_credentials(store.retailer_id, store.id).await.map_err(Failure::from)?;
        let token = query_pairs(request).into_iter().find(|(key, _)| key == "token").map(|(_, value)| value);
        let now = (self.clock)();
        let delivery = providers::Delivery {
            body,
            headers: request.headers(),
            method: request.method().as_str(),
            token: token.as_deref(),
            now,
        };
        // A store saved before the secret was required has none: fail closed (the refusal says why).
        let verified = match opened.tracking_webhook_secret() {
            Some(secret) => providers::verify(provider, secret, &delivery),
            None => Err("the store has no tracking_webhook_secret"),
        };
        if let Err(refusal) = verified {
            warn!(store_id = %store.id, provider = provider.name(), refusal, "carrier webhook signature rejected");
            return Err(ApiError::WebhookRefused(REFUSED));
        }
        let payload: Value =
            serde_json::from_slice(body).map_err(|error| ApiError::BadRequest(format!("malformed JSON: {error}")))?;
        let scan = match providers::read_scan(provider, &payload, now) {
            Ok(Some(scan)) => scan,
            Ok(None) => return Ok(accepted("ignored")),
            Err(problem) => return Err(ApiError::BadRequest(format!("{} payload: {problem}", provider.name()))),
        };
        // No memory of deliveries (it would cost a read and a write each): applying a scan is
        // idempotent, since a shipment's tracking status only moves forward and its export is
        // released once, so a repeat the provider sends is queued again and applied as a no-op.
        let message = scan_message(&store, provider, scan);
        let body = serde_json::to_string(&message).map_err(|_| ApiError::Internal)?;
        if let Err(failure) = self.queue.queue_event(body).await {
            error!(error = %failure.chain(), "could not queue a carrier scan");
            return Err(ApiError::Unavailable);
        }
        info!(store_id = %store.id, provider = provider.name(), source = %message.source, "carrier scan queued");
        Ok(accepted("queued"))
    }
}

/// The queue message for a scan: it names the store whose URL and secret it came with, so that
/// only that store's shipments are looked at.
fn scan_message(
    store: &ChannelStore,
    provider: Provider,
    scan: shipsync_domain::tracking::CarrierScan,
) -> ChannelEventMessage {
    ChannelEventMessage {
        retailer_id: Some(store.retailer_id),
        store_id: Some(store.id),
        source: format!("{} event {} for store {}", provider.name(), scan.event_id, store.id),
        event: ChannelEvent::CarrierScanned { scan },
    }
}

fn accepted(status: &str) -> ApiResponse {
    json_response(StatusCode::OK, &json!({ "status": status }))
}
