//! Amazon SP-API `confirmShipment`: one call per package, each with a `packageReferenceId` derived
//! from the shipment and the package, so that a retry edits the same package instead of adding
//! one. Login with Amazon tokens are cached until they are about to expire.

use shipsync_domain::vocabulary::ChannelOrderId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::IncomingFulfillment;
use tracing::info;

use crate::port::unsupported;
use crate::settings::AmazonCredentials;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, first_error_message, packages,
    success_body, transport_error,
};

use crate::endpoints::AMAZON_NA_ENDPOINT;
pub const LWA_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";

/// A token is renewed this long before Amazon says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// No token is kept longer than a day, whatever the channel says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// OAuth access tokens by token endpoint, client and refresh token (so a sandbox switch or another
/// channel never reuses a token), shared by every client of one process, kept until a minute
/// before they expire.
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<String, (String, Instant)>>>);

/// Tokens are secrets: a cache shows only how many it holds.
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.lock().map_or(0, |cache| cache.len());
        formatter.debug_struct("TokenCache").field("tokens", &held).finish()
    }
}

impl TokenCache {
    /// The key of one grant: the token endpoint, the client and its refresh token.
    pub(crate) fn key(token_url: &str, client_id: &str, refresh_token: &str) -> String {
        format!("{token_url}\u{0}{client_id}\u{0}{refresh_token}")
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let cache = self.0.lock().ok()?;
        cache.get(key).filter(|(_, until)| Instant::now() < *until).map(|(token, _)| token.clone())
    }

    /// Keeps a token for what the channel says it lasts, at most [`MAX_TOKEN_LIFETIME`]: a huge
    /// `expires_in` must not overflow the clock (`Instant + Duration` panics).
    pub(crate) fn put(&self, key: String, token: String, expires_in: Duration) {
        let lasts = expires_in.min(MAX_TOKEN_LIFETIME).saturating_sub(TOKEN_MARGIN);
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(key, (token, Instant::now() + lasts));
        }
    }
}

/// The tokens of Login with Amazon.
pub type AmazonTokens = TokenCache;

#[derive(Debug, Clone)]
pub struct AmazonClient {
    http: reqwest::Client,
    endpoint: String,
    token_url: String,
    marketplace_id: String,
    credentials: AmazonCredentials,
    tokens: AmazonTokens,
}

impl AmazonClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<&str>,
        token_url: Option<&str>,
        marketplace_id: String,
        credentials: AmazonCredentials,
        tokens: AmazonTokens,
    ) -> Self {
        Self {
            http,
            endpoint: endpoint.unwrap_or(AMAZON_NA_ENDPOINT).trim_end_matches('/').to_owned(),
            token_url: token_url.unwrap_or(LWA_TOKEN_URL).to_owned(),
            marketplace_id,
            credentials,
            tokens,
        }
    }

    /// Confirms the shipment, one package per tracking number, shipped when the shipment was
    /// created. Returns the package reference ids.
    async fn confirm_shipment(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        let ship_date = order.shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let token = self.access_token().await?;
        let packages = packages(order);
        let mut references = Vec::with_capacity(packages.len());
        for (index, (tracking, items)) in packages.into_iter().enumerate() {
            let reference = package_reference(order.shipment_id, index);
            let mut detail = json!({
                "packageReferenceId": reference,
                "carrierCode": order.carrier_code.clone().unwrap_or_else(|| "Other".to_owned()),
                "trackingNumber": tracking,
                "shipDate": ship_date,
                "orderItems": items.iter().map(|(item, quantity)| json!({"orderItemId": item, "quantity": quantity})).collect::<Vec<_>>(),
            });
            if order.carrier_code.is_none() {
                detail["carrierName"] = json!(order.carrier);
            }
            let body = json!({ "marketplaceId": self.marketplace_id, "packageDetail": detail });
            let url = format!("{}/orders/v0/orders/{}/shipmentConfirmation", self.endpoint, order.channel_order_id);
            let response = self
                .http
                .post(&url)
                .header("x-amz-access-token", &token)
                .json(&body)
                .send()
                .await
                .map_err(|error| transport_error(&error))?;
            success_body(response, |text| format!("Amazon: {}", first_error_message(text))).await?;
            info!(order = %order.channel_order_id, package = %reference, "shipment confirmed on Amazon");
            references.push(reference);
        }
        // Re-sending a package with the same reference edits it: a retry never duplicates.
        Ok(Fulfillment { channel_ids: references, adopted: false })
    }

    async fn access_token(&self) -> Result<String, ChannelError> {
        let key = TokenCache::key(&self.token_url, &self.credentials.client_id, &self.credentials.refresh_token);
        if let Some(token) = self.tokens.get(&key) {
            return Ok(token);
        }
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.credentials.refresh_token.as_str()),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret.as_str()),
            ])
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        let text = success_body(response, |text| format!("Login with Amazon: {text}")).await?;
        let body: Value =
            serde_json::from_str(&text).map_err(|_| ChannelError::retryable("Login with Amazon answered no JSON"))?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| ChannelError::permanent("Login with Amazon gave no access_token"))?;
        self.tokens.put(key, token.to_owned(), Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600)));
        Ok(token.to_owned())
    }
}

impl Channel for AmazonClient {
    /// Every attempt sends the same package references, so a retry edits what an earlier one
    /// sent: nothing to look up first.
    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.confirm_shipment(order))
    }

    fn orders_since<'a>(&'a self, _since: DateTime<Utc>, _page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        unsupported("reading Amazon's orders")
    }

    fn fulfillments<'a>(
        &'a self,
        _channel_order_id: &'a ChannelOrderId,
    ) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        unsupported("reading Amazon's shipments of an order")
    }
}

/// A package's reference: positive and numeric, as Amazon requires, and the same on every retry.
pub fn package_reference(shipment_id: u64, package: usize) -> String {
    format!("{shipment_id}{package:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportLine, packages};

    #[test]
    fn units_spread_over_packages_and_references_are_stable() {
        let order = ExportOrder {
            shipment_id: 1012,
            shipped_at: chrono::Utc::now(),
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("111-1").expect("an order id"),
            lines: vec![
                ExportLine {
                    channel_line_item_id: "A".into(),
                    quantity: 2,
                    sku: "a".into(),
                    serial_codes: vec![],
                    package: None,
                    needs_imei: false,
                },
                ExportLine {
                    channel_line_item_id: "B".into(),
                    quantity: 1,
                    sku: "b".into(),
                    serial_codes: vec![],
                    package: None,
                    needs_imei: false,
                },
            ],
            tracking_numbers: ["T1", "T2"]
                .map(|number| shipsync_domain::tracking::TrackingNumber::parse(number).expect("a tracking number"))
                .to_vec(),
            carrier: "UPS".into(),
            carrier_code: Some("UPS".into()),
            tracking_urls: vec![],
            notify_customer: true,
            shipping_method: None,
        };
        let packed = packages(&order);
        assert_eq!(packed[0], ("T1".into(), vec![("A".into(), 1), ("B".into(), 1)]));
        assert_eq!(packed[1], ("T2".into(), vec![("A".into(), 1)]));
        assert_eq!(package_reference(1012, 1), "1012001");
    }
}
