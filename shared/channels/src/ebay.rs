//! eBay Sell Fulfillment `createShippingFulfillment`: one fulfillment per package. eBay names a
//! fulfillment after its tracking number, so before any retry the order's fulfillments are listed
//! and a package already there is adopted instead of created again.

use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::ChannelOrderId;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::IncomingFulfillment;
use tracing::info;

use crate::port::unsupported;
use crate::settings::EbayCredentials;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, TokenCache, first_error_message,
    packages, success_body, transport_error,
};

pub const EBAY_ENDPOINT: &str = "https://api.ebay.com";
pub const EBAY_SCOPE: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";

#[derive(Debug, Clone)]
pub struct EbayClient {
    http: reqwest::Client,
    endpoint: String,
    token_url: String,
    credentials: EbayCredentials,
    tokens: TokenCache,
}

/// eBay accepts letters and digits only in a tracking number.
pub fn ebay_tracking_number(number: &str) -> String {
    number.chars().filter(char::is_ascii_alphanumeric).collect()
}

impl EbayClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<&str>,
        token_url: Option<&str>,
        credentials: EbayCredentials,
        tokens: TokenCache,
    ) -> Self {
        let endpoint = endpoint.unwrap_or(EBAY_ENDPOINT).trim_end_matches('/').to_owned();
        let token_url = token_url.map_or_else(|| format!("{endpoint}/identity/v1/oauth2/token"), str::to_owned);
        Self { http, endpoint, token_url, credentials, tokens }
    }

    /// The URL of an order's shipping fulfillments (to list and to create them).
    fn fulfillments_url(&self, channel_order_id: &str) -> String {
        format!("{}/sell/fulfillment/v1/order/{channel_order_id}/shipping_fulfillment", self.endpoint)
    }

    /// One fulfillment per package, shipped when the shipment was created (eBay wants
    /// milliseconds). With `check_existing`, a package eBay already has is adopted.
    async fn create_fulfillments(
        &self,
        order: &ExportOrder,
        check_existing: bool,
    ) -> Result<Fulfillment, ChannelError> {
        let shipped_date = order.shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let token = self.access_token().await?;
        let base = self.fulfillments_url(order.channel_order_id.as_str());
        let existing: Vec<(TrackingNumber, String)> = if check_existing {
            self.listed(&base, &token).await?.iter().filter_map(tracking_and_id).collect()
        } else {
            Vec::new()
        };
        let mut ids = Vec::new();
        let mut adopted = false;
        for package in packages(order) {
            let (number, items) = (package.tracking, package.items);
            let tracking = ebay_tracking_number(&number);
            let mine = TrackingNumber::parse(&tracking).ok();
            if let Some((_, id)) =
                existing.iter().find(|(listed, _)| mine.as_ref().is_some_and(|mine| mine.same_parcel(listed)))
            {
                info!(order = %order.channel_order_id, fulfillment = %id, tracking = %tracking, "eBay already has this package: adopted");
                adopted = true;
                ids.push(id.clone());
                continue;
            }
            let body = json!({
                "lineItems": items.iter().map(|(item, quantity)| json!({"lineItemId": item, "quantity": quantity})).collect::<Vec<_>>(),
                "shippedDate": shipped_date,
                "shippingCarrierCode": order.carrier_code.clone().unwrap_or_else(|| order.carrier.clone()),
                "trackingNumber": tracking,
            });
            let response =
                self.http.post(&base).bearer_auth(&token).json(&body).send().await.map_err(|e| transport_error(&e))?;
            let location =
                response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
            success_body(response, |text| format!("eBay: {}", first_error_message(text))).await?;
            // The Location header ends with the new fulfillment's id (the tracking number).
            let id = location.and_then(|url| url.rsplit('/').next().map(str::to_owned)).unwrap_or(tracking);
            info!(order = %order.channel_order_id, fulfillment = %id, "eBay fulfillment created");
            ids.push(id);
        }
        Ok(Fulfillment { channel_ids: ids, adopted })
    }

    /// The order's shipping fulfillments as eBay lists them.
    async fn listed(&self, base: &str, token: &str) -> Result<Vec<Value>, ChannelError> {
        let response = self.http.get(base).bearer_auth(token).send().await.map_err(|e| transport_error(&e))?;
        let text = success_body(response, |text| format!("eBay: {}", first_error_message(text))).await?;
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            ChannelError::retryable("eBay listed the order's fulfillments in something that is not JSON")
        })?;
        Ok(body["fulfillments"].as_array().cloned().unwrap_or_default())
    }

    /// The order's fulfillments, as shipsync reads a channel's.
    async fn order_fulfillments(
        &self,
        channel_order_id: &ChannelOrderId,
    ) -> Result<Vec<IncomingFulfillment>, ChannelError> {
        let token = self.access_token().await?;
        let listed = self.listed(&self.fulfillments_url(channel_order_id.as_str()), &token).await?;
        Ok(listed.iter().filter_map(|fulfillment| incoming_fulfillment(channel_order_id, fulfillment)).collect())
    }

    async fn access_token(&self) -> Result<String, ChannelError> {
        let key = TokenCache::key(&self.token_url, &self.credentials.client_id, &self.credentials.refresh_token);
        if let Some(token) = self.tokens.get(&key) {
            return Ok(token);
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.credentials.client_id, self.credentials.client_secret));
        let response = self
            .http
            .post(&self.token_url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.credentials.refresh_token.as_str()),
                ("scope", EBAY_SCOPE),
            ])
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let text = success_body(response, |text| format!("eBay OAuth: {}", first_error_message(text))).await?;
        let body: Value =
            serde_json::from_str(&text).map_err(|_| ChannelError::retryable("eBay OAuth answered no JSON"))?;
        let token =
            body["access_token"].as_str().ok_or_else(|| ChannelError::permanent("eBay OAuth gave no access_token"))?;
        self.tokens.put(key, token.to_owned(), Duration::from_secs(body["expires_in"].as_u64().unwrap_or(7200)));
        Ok(token.to_owned())
    }
}

/// A listed fulfillment's tracking number (in eBay's format) and id. Matched by tracking number:
/// the fulfillment id equals it only by eBay's habit.
fn tracking_and_id(fulfillment: &Value) -> Option<(TrackingNumber, String)> {
    let number = TrackingNumber::parse(&ebay_tracking_number(fulfillment["shipmentTrackingNumber"].as_str()?)).ok()?;
    let id = fulfillment["fulfillmentId"].as_str().map_or_else(|| number.to_string(), str::to_owned);
    Some((number, id))
}

/// A listed `ShippingFulfillment`; `None` for one without an id or with an unreadable line.
fn incoming_fulfillment(channel_order_id: &ChannelOrderId, fulfillment: &Value) -> Option<IncomingFulfillment> {
    let lines = fulfillment["lineItems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|line| {
            let quantity = line["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok())?;
            Some((line["lineItemId"].as_str()?.to_owned(), quantity))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(IncomingFulfillment {
        channel_fulfillment_id: fulfillment["fulfillmentId"].as_str()?.to_owned(),
        channel_order_id: channel_order_id.clone(),
        lines,
        // A number shipsync could not store names no parcel: it is left out, as a missing one is.
        tracking_numbers: fulfillment["shipmentTrackingNumber"]
            .as_str()
            .and_then(|number| TrackingNumber::parse(number).ok())
            .into_iter()
            .collect(),
        tracking_company: fulfillment["shippingCarrierCode"].as_str().map(str::to_owned),
        // eBay has no call that cancels a shipping fulfillment.
        cancelled: false,
    })
}

impl Channel for EbayClient {
    fn export<'a>(&'a self, order: &'a ExportOrder, check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.create_fulfillments(order, check_first))
    }

    fn orders_since<'a>(&'a self, _since: DateTime<Utc>, _page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        unsupported("reading eBay's orders")
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(self.order_fulfillments(channel_order_id))
    }
}
