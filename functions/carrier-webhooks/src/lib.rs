//! Carrier-tracking webhooks: `POST /carrier_webhooks/{provider}` for EasyPost (`tracker.updated`),
//! AfterShip (`tracking_update`) and Shippo (`track_updated`).
//!
//! Verifies the provider's signature over the raw body (no secret configured or an empty one, no
//! signature, a wrong one, or a signed time more than 5 minutes from now: 401), drops an event already accepted, reads the scan, queues it for the order
//! processor (which records it on every shipment with that tracking number and queues the export
//! where the store waits for movement) and answers 200. A failure to queue answers 503.

pub mod providers;

use chrono::{Duration, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_app::Failure;
use shipsync_app::ports::EventQueue;
use shipsync_domain::orders::{ChannelEvent, ChannelEventMessage};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_response, path_segments, query_pairs};
use shipsync_planner::OrderQueue;
use shipsync_table::Table;
use std::sync::Arc;
use tracing::{error, info, warn};

pub use providers::Provider;

/// The largest payload accepted.
pub const MAX_PAYLOAD_BYTES: usize = 200 * 1024;

/// How long an event id is remembered: the providers retry for hours at most.
const EVENT_MEMORY: Duration = Duration::days(2);

use shipsync_domain::time::Clock;

#[derive(Clone)]
pub struct CarrierWebhooks {
    table: Table,
    /// The order processor's queue.
    queue: OrderQueue,
    clock: Clock,
}

impl CarrierWebhooks {
    /// As deployed (its Lambda, the local stack): it opens the providers' webhook secrets only: its KMS grant names that purpose.
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
        let provider = match segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["carrier_webhooks", name] if request.method() == Method::POST => {
                Provider::from_path(name).ok_or_else(|| ApiError::NotFound(format!("no provider {name}")))?
            }
            ["carrier_webhooks", _] => return Err(ApiError::MethodNotAllowed),
            _ => return Err(ApiError::NotFound("no such webhook endpoint".into())),
        };
        let body = request.body();
        if body.len() > MAX_PAYLOAD_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        let secret = self.table.carrier_webhook_secret(provider.name()).await.map_err(Failure::from)?;
        let token = query_pairs(request).into_iter().find(|(key, _)| key == "token").map(|(_, value)| value);
        let now = (self.clock)();
        let delivery = providers::Delivery {
            body,
            headers: request.headers(),
            method: request.method().as_str(),
            token: token.as_deref(),
            now,
        };
        let verified = match secret.as_deref() {
            Some(secret) => providers::verify(provider, secret, &delivery),
            None => {
                error!(
                    provider = provider.name(),
                    "no webhook secret configured for this provider (shipsync-admin set-carrier-webhook-secret)"
                );
                Err("no secret is configured")
            }
        };
        if let Err(refusal) = verified {
            warn!(provider = provider.name(), refusal, "carrier webhook signature rejected");
            return Err(ApiError::WebhookRefused(
                "the signature is missing, wrong or outside its 5-minute window, or no secret is set for this provider",
            ));
        }
        let payload: Value =
            serde_json::from_slice(body).map_err(|error| ApiError::BadRequest(format!("malformed JSON: {error}")))?;
        let scan = match providers::read_scan(provider, &payload, now) {
            Ok(Some(scan)) => scan,
            Ok(None) => return Ok(accepted("ignored")),
            Err(problem) => return Err(ApiError::BadRequest(format!("{} payload: {problem}", provider.name()))),
        };
        let event_key = format!("{}#{}", provider.name(), scan.event_id);
        if self.table.event_seen(&event_key).await.map_err(Failure::from)? {
            info!(provider = provider.name(), event = %scan.event_id, "repeated event: already accepted");
            return Ok(accepted("duplicate"));
        }
        let message = ChannelEventMessage {
            retailer_id: None,
            store_id: None,
            source: format!("{} event {}", provider.name(), scan.event_id),
            event: ChannelEvent::CarrierScanned { scan },
        };
        let body = serde_json::to_string(&message).map_err(|_| ApiError::Internal)?;
        if let Err(failure) = self.queue.queue_event(body).await {
            error!(error = %failure.chain(), "could not queue a carrier scan");
            return Err(ApiError::Unavailable);
        }
        if let Err(failure) = self.table.remember_event(&event_key, now, now + EVENT_MEMORY).await {
            warn!(error = ?failure, "could not remember a carrier event");
        }
        Ok(accepted("queued"))
    }
}

fn accepted(status: &str) -> ApiResponse {
    json_response(StatusCode::OK, &json!({ "status": status }))
}
