//! Shopify webhook ingestion: `POST /webhooks/shopify/{store_id}`.
//!
//! Verifies `X-Shopify-Hmac-Sha256` over the raw body (constant time; the previous secret is
//! accepted during a rotation; a missing signature fails), drops a delivery already accepted
//! (`X-Shopify-Webhook-Id`), reads the payload into an event, queues it and answers 200. Nothing is
//! acknowledged that was not queued: a failure to queue answers 503 so Shopify retries.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use shipsync_channels::shopify_webhooks::read_shopify_webhook;
use shipsync_domain::ids::StoreId;
use shipsync_domain::orders::ChannelEventMessage;
use shipsync_domain::tenant::ChannelKind;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_response, path_segments, store_failure};
use shipsync_store::Store;
use tracing::{error, info, warn};

/// The largest payload accepted: an SQS message holds 256 KiB, with room for the envelope.
pub const MAX_PAYLOAD_BYTES: usize = 200 * 1024;

/// How long a delivery id is remembered: Shopify retries for 4 hours; a day is ample.
const DELIVERY_MEMORY: Duration = Duration::days(1);

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct ShopifyWebhooks {
    store: Store,
    sqs: aws_sdk_sqs::Client,
    /// `SHIPSYNC_ORDER_QUEUE_URL`: the order processor's queue.
    queue_url: String,
    clock: Clock,
}

impl ShopifyWebhooks {
    pub fn new(store: Store, sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { store, sqs, queue_url, clock: Arc::new(Utc::now) }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Answers one delivery.
    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        match self.receive(&request).await {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        }
    }

    async fn receive(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let segments = path_segments(request);
        let store_id = match segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["webhooks", "shopify", id] if request.method() == Method::POST => *id,
            ["webhooks", "shopify", _] => return Err(ApiError::MethodNotAllowed),
            _ => return Err(ApiError::NotFound("no such webhook endpoint".into())),
        };
        let body = request.body();
        if body.len() > MAX_PAYLOAD_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        let store_id: StoreId =
            store_id.parse().map_err(|_| ApiError::NotFound(format!("store {store_id} not found")))?;
        let store = self
            .store
            .store_by_id(store_id)
            .await
            .map_err(store_failure)?
            // The local stack's channel speaks Shopify's webhooks too, for its demo.
            .filter(|store| matches!(store.channel, ChannelKind::Shopify | ChannelKind::Local))
            .ok_or_else(|| ApiError::NotFound(format!("store {store_id} not found")))?;
        let credentials = self.store.credentials(store.retailer_id, store.id).await.map_err(store_failure)?;
        let secrets: Vec<&String> = ["webhook_secret", "previous_webhook_secret"]
            .iter()
            .filter_map(|name| credentials.0.get(*name))
            .filter(|secret| !secret.is_empty())
            .collect();
        let signature = header(request, "x-shopify-hmac-sha256");
        if !signature.is_some_and(|signature| secrets.iter().any(|secret| signed_by(body, secret, signature))) {
            warn!(store_id = %store.id, signed = signature.is_some(), "webhook signature rejected");
            return Err(ApiError::Unauthorized);
        }
        let topic = header(request, "x-shopify-topic")
            .ok_or_else(|| ApiError::BadRequest("X-Shopify-Topic is required".into()))?;
        let delivery = header(request, "x-shopify-webhook-id")
            .ok_or_else(|| ApiError::BadRequest("X-Shopify-Webhook-Id is required".into()))?;
        if self.store.delivery_seen(store.id, delivery).await.map_err(store_failure)? {
            info!(store_id = %store.id, delivery, "repeated delivery: already accepted");
            return Ok(accepted("duplicate"));
        }
        let payload: Value =
            serde_json::from_slice(body).map_err(|error| ApiError::BadRequest(format!("malformed JSON: {error}")))?;
        let event = match read_shopify_webhook(topic, &payload) {
            Ok(Some(event)) => event,
            Ok(None) => {
                info!(store_id = %store.id, topic, "topic not used by shipsync: ignored");
                return Ok(accepted("ignored"));
            }
            Err(problem) => return Err(ApiError::BadRequest(format!("{topic} payload: {problem}"))),
        };
        let message = ChannelEventMessage {
            retailer_id: Some(store.retailer_id),
            store_id: Some(store.id),
            source: format!("shopify webhook {delivery}"),
            event,
        };
        let body = serde_json::to_string(&message).map_err(|_| ApiError::Internal)?;
        if let Err(failure) = self.sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await {
            error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&failure), "could not queue a webhook event");
            return Err(ApiError::Unavailable);
        }
        let now = (self.clock)();
        // Remembered only once queued. If this write fails, a retried delivery is queued again,
        // which the processor takes in its stride: the event stays acknowledged.
        if let Err(failure) = self.store.remember_delivery(store.id, delivery, now, now + DELIVERY_MEMORY).await {
            warn!(error = ?failure, delivery, "could not remember a delivery");
        }
        info!(store_id = %store.id, topic, delivery, "webhook queued");
        Ok(accepted("queued"))
    }
}

fn accepted(status: &str) -> ApiResponse {
    json_response(StatusCode::OK, &json!({ "status": status }))
}

fn header<'a>(request: &'a ApiRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|value| value.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// Whether `signature` is base64(HMAC-SHA256(secret, body)), compared in constant time.
pub fn signed_by(body: &Bytes, secret: &str, signature: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The signature Shopify sends for a body (for tests and tools that replay deliveries).
pub fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_shopifys() {
        let body = Bytes::from_static(br#"{"id":1}"#);
        let signature = sign(&body, "secret");
        assert!(signed_by(&body, "secret", &signature));
        assert!(!signed_by(&body, "other", &signature));
        assert!(!signed_by(&Bytes::from_static(br#"{"id":2}"#), "secret", &signature));
        assert!(!signed_by(&body, "secret", "not base64!"));
        assert!(!signed_by(&body, "secret", ""));
    }
}
