//! eBay Sell Fulfillment. Exports: `createShippingFulfillment`, one fulfillment per package. eBay
//! names a fulfillment after its tracking number, so before any retry the order's fulfillments are
//! listed and a package already there is adopted instead of created again. Reads: `getOrders` by
//! last modification, `getOrder` where a buyer asked to cancel (only it lists the request), and
//! `getShippingFulfillments` for orders eBay says are (partly) shipped.

use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::ChannelOrderId;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::vocabulary::Sku;
use tracing::info;

use crate::port::{PageReader, first_name, fulfillment_lines, required_text, required_time};
use crate::settings::EbayCredentials;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, TokenCache, first_error_message,
    json_or_missing, packages, path_segment, success_body, transport_error,
};

pub const EBAY_ENDPOINT: &str = "https://api.ebay.com";
pub const EBAY_SCOPE: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";

/// Orders a `getOrders` page holds (eBay's maximum).
pub const EBAY_ORDERS_PER_PAGE: u64 = 200;

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

    /// A page of the orders modified at or after `since`, oldest first; `page` is the offset the
    /// previous page returned. eBay's `next` is a URL: only the offset is taken from the answer,
    /// so the token never goes anywhere but the store's endpoint.
    async fn orders_modified_since(
        &self,
        since: DateTime<Utc>,
        page: Option<&str>,
    ) -> Result<OrdersPage, ChannelError> {
        let offset = match page {
            Some(page) => page
                .parse::<u64>()
                .map_err(|_| ChannelError::permanent(format!("{page:.50} is not an eBay page offset")))?,
            None => 0,
        };
        let filter = format!("lastmodifieddate:[{}..]", since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        // `Url` percent-encodes the filter's brackets, as eBay requires.
        let url = reqwest::Url::parse_with_params(
            &format!("{}/sell/fulfillment/v1/order", self.endpoint),
            [("filter", filter), ("limit", EBAY_ORDERS_PER_PAGE.to_string()), ("offset", offset.to_string())],
        )
        .map_err(|_| ChannelError::permanent("the eBay endpoint is not a URL"))?;
        let token = self.access_token().await?;
        let body = self
            .read(url.as_str(), &token)
            .await?
            .ok_or_else(|| ChannelError::permanent("eBay answered getOrders with 404"))?;
        let listed = body["orders"].as_array().cloned().unwrap_or_default();
        let mut read = PageReader::default();
        for node in listed {
            let order = self.read_order(node.clone(), &token).await?;
            read.add("eBay", "orderId", node, order);
        }
        let limit = body["limit"].as_u64().filter(|limit| *limit > 0).unwrap_or(EBAY_ORDERS_PER_PAGE);
        let answered_offset = body["offset"].as_u64().unwrap_or(offset);
        let more = body["next"].as_str().is_some_and(|next| !next.is_empty())
            || body["total"].as_u64().is_some_and(|total| answered_offset.saturating_add(limit) < total);
        // A page that lists nothing ends the listing, whatever `next` says: no endless loop.
        let next = (more && !body["orders"].as_array().is_none_or(Vec::is_empty))
            .then(|| answered_offset.saturating_add(limit).to_string());
        Ok(read.page(next))
    }

    /// An order as listed, completed with what the listing leaves out: the buyer's cancel request
    /// (`getOrder`, only while one is open) and its shipping fulfillments (only for orders eBay says
    /// are partly or wholly shipped). `Ok(Err)`: why it cannot be read (listed for a person); a
    /// retryable failure is an `Err`, which fails the page so that the poll tries it again.
    async fn read_order(&self, mut node: Value, token: &str) -> Result<Result<IncomingOrder, String>, ChannelError> {
        let Some(order_id) = node["orderId"].as_str().filter(|id| !id.trim().is_empty()).map(ChannelOrderId::received)
        else {
            return Ok(Err("orderId is required".to_owned()));
        };
        if cancel_state(&node) == Some("IN_PROGRESS") && cancel_requests(&node).is_empty() {
            // getOrders always lists `cancelRequests` empty: getOrder fills it.
            match self.read(&self.order_url(&order_id), token).await {
                Ok(Some(full)) => node["cancelStatus"] = full["cancelStatus"].clone(),
                Ok(None) | Err(ChannelError::Permanent { .. } | ChannelError::Unsupported { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let mut order = match ebay_order(&node) {
            Ok(order) => order,
            Err(reason) => return Ok(Err(reason)),
        };
        if shipped_some(&node) {
            match self.listed(&self.fulfillments_url(order_id.as_str()), token).await {
                Ok(listed) => {
                    order.fulfillments =
                        listed.iter().filter_map(|fulfillment| incoming_fulfillment(&order_id, fulfillment)).collect();
                }
                Err(error @ ChannelError::Retryable { .. }) => return Err(error),
                Err(error) => return Ok(Err(format!("its shipping fulfillments could not be read: {error}"))),
            }
        }
        Ok(Ok(order))
    }

    /// One order as eBay holds it now, with its fulfillments: `None` when eBay does not know it.
    async fn one_order(&self, channel_order_id: &ChannelOrderId) -> Result<Option<IncomingOrder>, ChannelError> {
        let token = self.access_token().await?;
        let Some(node) = self.read(&self.order_url(channel_order_id), &token).await? else { return Ok(None) };
        let mut order = ebay_order(&node).map_err(|reason| {
            ChannelError::permanent(format!("eBay's order {channel_order_id} cannot be read: {reason}"))
        })?;
        if shipped_some(&node) {
            let listed = self.listed(&self.fulfillments_url(channel_order_id.as_str()), &token).await?;
            order.fulfillments =
                listed.iter().filter_map(|fulfillment| incoming_fulfillment(channel_order_id, fulfillment)).collect();
        }
        Ok(Some(order))
    }

    /// The URL of one order (`getOrder`).
    fn order_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!("{}/sell/fulfillment/v1/order/{}", self.endpoint, path_segment(channel_order_id.as_str()))
    }

    /// A GET: the JSON body, `None` on 404, else the error the status means.
    async fn read(&self, url: &str, token: &str) -> Result<Option<Value>, ChannelError> {
        let response = self.http.get(url).bearer_auth(token).send().await.map_err(|e| transport_error(&e))?;
        json_or_missing(response, "eBay").await
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
    let lines = fulfillment_lines(&fulfillment["lineItems"], "lineItemId")?;
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

impl EbayClient {
    /// Cancels a whole order through eBay's Post-Order API (`POST /post-order/v2/cancellation`,
    /// the OAuth token as `IAF`). Every attempt reads the order first (`getOrder`): one eBay
    /// shows cancelled, or with a cancellation the seller asked for, is adopted.
    async fn cancel_order(&self, cancellation: &crate::CancelOrder) -> Result<Vec<String>, ChannelError> {
        let order = &cancellation.channel_order_id;
        if !cancellation.whole_order {
            return Err(ChannelError::permanent("eBay cancels whole orders only"));
        }
        let token = self.access_token().await?;
        let node = self
            .read(&self.order_url(order), &token)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("eBay has no order {order}")))?;
        let status = &node["cancelStatus"];
        if status["cancelState"].as_str() == Some("CANCELED") {
            info!(%order, "eBay shows the order cancelled: adopted");
            return Ok(vec![order.to_string()]);
        }
        let by_seller = status["cancelRequests"].as_array().into_iter().flatten().find(|request| {
            request["cancelInitiator"].as_str().is_some_and(|who| who.eq_ignore_ascii_case("seller"))
                && request["cancelRequestState"].as_str() != Some("REJECTED")
        });
        if let Some(request) = by_seller {
            let id = request["cancelRequestId"].as_str().unwrap_or(order.as_str()).to_owned();
            info!(%order, %id, "eBay holds the seller's cancellation: adopted");
            return Ok(vec![id]);
        }
        let legacy = node["legacyOrderId"].as_str().unwrap_or(order.as_str());
        let marketplace = node["lineItems"][0]["purchaseMarketplaceId"].as_str().unwrap_or("EBAY_US");
        let body = json!({"legacyOrderId": legacy, "cancelReason": ebay_cancel_reason(cancellation.reason)});
        let response = self
            .http
            .post(format!("{}/post-order/v2/cancellation", self.endpoint))
            .header(reqwest::header::AUTHORIZATION, format!("IAF {token}"))
            .header("X-EBAY-C-MARKETPLACE-ID", marketplace)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let text = success_body(response, |text| format!("eBay: {}", first_error_message(text))).await?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let id = match &answer["cancelId"] {
            Value::String(id) => id.clone(),
            Value::Number(id) => id.to_string(),
            _ => order.to_string(),
        };
        info!(%order, cancel_id = %id, "cancellation made at eBay");
        Ok(vec![id])
    }
}

/// eBay's seller reasons: three only, the retailer's note says more.
fn ebay_cancel_reason(reason: shipsync_domain::cancellations::CancelReason) -> &'static str {
    use shipsync_domain::cancellations::CancelReason;
    match reason {
        CancelReason::CustomerRequested => "BUYER_ASKED_CANCEL",
        CancelReason::AddressUndeliverable => "ADDRESS_ISSUES",
        _ => "OUT_OF_STOCK_OR_CANNOT_FULFILL",
    }
}

impl Channel for EbayClient {
    fn cancel<'a>(
        &'a self,
        cancellation: &'a crate::CancelOrder,
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        Box::pin(self.cancel_order(cancellation))
    }

    fn export<'a>(&'a self, order: &'a ExportOrder, check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.create_fulfillments(order, check_first))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_modified_since(since, page))
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(self.order_fulfillments(channel_order_id))
    }

    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        Box::pin(self.one_order(channel_order_id))
    }
}

fn cancel_state(node: &Value) -> Option<&str> {
    node["cancelStatus"]["cancelState"].as_str()
}

fn cancel_requests(node: &Value) -> Vec<Value> {
    node["cancelStatus"]["cancelRequests"].as_array().cloned().unwrap_or_default()
}

/// Whether eBay says some of the order shipped, so its shipping fulfillments are worth reading.
fn shipped_some(node: &Value) -> bool {
    matches!(node["orderFulfillmentStatus"].as_str(), Some("IN_PROGRESS" | "FULFILLED"))
}

/// A Sell Fulfillment `Order` as shipsync reads it (without its fulfillments); or which field is wrong.
fn ebay_order(node: &Value) -> Result<IncomingOrder, String> {
    let text = required_text;
    let order_id = text(&node["orderId"], "orderId")?;
    let updated_at = required_time(&node["lastModifiedDate"], "lastModifiedDate")?;
    let cancelled = cancel_state(node) == Some("CANCELED");
    let cancel_requested = (!cancelled && cancel_state(node) == Some("IN_PROGRESS")).then(|| {
        let requests = cancel_requests(node);
        let open = requests
            .iter()
            .find(|request| !matches!(request["cancelRequestState"].as_str(), Some("REJECTED" | "COMPLETED")))
            .or_else(|| requests.first());
        let reason = open.and_then(|request| request["cancelReason"].as_str()).map(str::trim).filter(|r| !r.is_empty());
        let who = open.and_then(|request| request["cancelInitiator"].as_str()).unwrap_or("buyer").to_lowercase();
        match reason {
            Some(reason) => format!("{who} asked to cancel: {reason}"),
            None => format!("{who} asked to cancel"),
        }
    });
    let lines = node["lineItems"]
        .as_array()
        .ok_or("lineItems is required")?
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let quantity = line["quantity"]
                .as_u64()
                .and_then(|quantity| u32::try_from(quantity).ok())
                .ok_or_else(|| format!("lineItems[{index}].quantity must be a whole number, 0 or more"))?;
            // `lineItemCost` is the line's price for all its units.
            let unit_price = line["lineItemCost"]["value"]
                .as_str()
                .and_then(|value| value.trim().parse::<rust_decimal::Decimal>().ok())
                .filter(|_| quantity > 0)
                .map(|cost| cost / rust_decimal::Decimal::from(quantity));
            Ok(IncomingLine {
                channel_line_item_id: text(&line["lineItemId"], &format!("lineItems[{index}].lineItemId"))?,
                sku: line["sku"].as_str().and_then(Sku::received),
                name: line["title"].as_str().unwrap_or_default().to_owned(),
                quantity,
                unit_price,
                awaiting_acceptance: false,
                needs_imei: false,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let ship_to = &node["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"];
    let customer_name = first_name([ship_to["fullName"].as_str(), node["buyer"]["username"].as_str()]);
    Ok(IncomingOrder {
        channel_order_id: ChannelOrderId::received(order_id.clone()),
        number: order_id,
        customer_name,
        updated_at,
        cancelled,
        lines,
        cancel_requested,
        fulfillments: Vec::new(),
    })
}
