//! Wish, through its Merchant API v3. A Wish order is one product variation (one line) of a
//! checkout (`transaction_id`), so each Wish order is a channel order of its own, with one line
//! whose id is the order's. Reads: `GET /api/v3/orders` by `updated_at_min`, oldest first, paged
//! by the last order's `updated_at` (Wish pages by time, not by cursor); one order by
//! `GET /api/v3/orders/{id}`. Exports: `PUT /api/v3/orders/{id}/tracking` with one tracking
//! number, Wish's carrier name and the store's `origin_country` (Wish takes one parcel per
//! order); a retry reads the order first and adopts the tracking it already holds.
//!
//! Wish answers `{code, message, data}`; refusals come as HTTP 400 with Wish's code (1006, 1007,
//! 1008: the token is missing, expired or revoked). Refreshing a token revokes every access
//! token the app holds for the merchant, so tokens are not kept per container as Amazon's are:
//! the current one lives with the store's sealed credentials, and [`WishClient::renew`] is
//! called by one container at a time (shipsync-app's credential renewal), well before it
//! expires. Source: Wish's OpenAPI v3.0.65 (orders and OAuth), in
//! /work/shared/reference/intake.md §1.5.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::{info, warn};

use crate::port::{PageReader, required_text, required_time};
use crate::settings::WishCredentials;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, channel_wait, packages, path_segment,
    transport_error,
};

pub const WISH_ENDPOINT: &str = "https://merchant.wish.com";

/// Orders a page holds (Wish allows 1 to 500).
pub const WISH_ORDERS_PER_PAGE: u32 = 250;

/// A token is renewed this long before it expires (Wish's last 30 days): a week of polls and
/// exports may fail to renew it before it stops working.
pub const WISH_RENEW_AHEAD: Duration = Duration::days(7);

/// Wish's usual carriers, as its `shipping_carriers` list names them (the rest go by the store's
/// mapping, or their name).
const CARRIER_NAMES: &[(&str, &str)] = &[
    ("UPS", "UPS"),
    ("FedEx", "FedEx"),
    ("Federal Express", "FedEx"),
    ("USPS", "USPS"),
    ("US Postal Service", "USPS"),
    ("DHL", "DHL"),
    ("DHL Express", "DHL"),
    ("Canada Post", "CanadaPost"),
    ("Royal Mail", "RoyalMail"),
];

/// Wish's name for the shipment's carrier: the store's mapping, else the usual name, else ours.
pub fn wish_carrier(order: &ExportOrder) -> String {
    if let Some(code) = &order.carrier_code {
        return code.clone();
    }
    let name = order.carrier.trim();
    CARRIER_NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |(_, wish)| (*wish).to_owned())
}

/// No `Debug`: it holds the merchant's tokens.
#[derive(Clone)]
pub struct WishClient {
    http: reqwest::Client,
    endpoint: String,
    credentials: WishCredentials,
    origin_country: String,
}

impl WishClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<&str>,
        credentials: WishCredentials,
        origin_country: &str,
    ) -> Self {
        Self {
            http,
            endpoint: endpoint.unwrap_or(WISH_ENDPOINT).trim_end_matches('/').to_owned(),
            credentials,
            origin_country: origin_country.to_owned(),
        }
    }

    /// When the token must be renewed: [`WISH_RENEW_AHEAD`] before it expires; at once when
    /// there is none or its expiry is unknown.
    pub fn renew_by(credentials: &WishCredentials) -> DateTime<Utc> {
        match (&credentials.access_token, credentials.expires_at) {
            (Some(_), Some(expires_at)) => expires_at - WISH_RENEW_AHEAD,
            _ => DateTime::UNIX_EPOCH,
        }
    }

    /// Obtains a new token pair (`GET /api/v3/oauth/refresh_token`, as Wish documents it), which
    /// revokes the tokens issued before: the caller stores the result before anyone uses it.
    /// `stored`: the store's credentials as read, returned with the new pair and its expiry.
    pub async fn renew(&self, stored: &ChannelCredentials) -> Result<ChannelCredentials, ChannelError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v3/oauth/refresh_token", self.endpoint),
            [
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret.as_str()),
                ("refresh_token", self.credentials.refresh_token.as_str()),
                ("grant_type", "refresh_token"),
            ],
        )
        .map_err(|_| ChannelError::permanent("the Wish endpoint is not a URL"))?;
        let response = self.http.get(url).send().await.map_err(|e| transport_error(&e))?;
        let data = answer("token renewal", response).await?.ok_or_else(|| {
            ChannelError::permanent("Wish answered the token renewal with 404: is the store's endpoint Wish's?")
        })?;
        let text = |field: &str| data[field].as_str().map(str::trim).filter(|text| !text.is_empty());
        let (Some(access_token), Some(refresh_token)) = (text("access_token"), text("refresh_token")) else {
            return Err(ChannelError::permanent(
                "Wish's token renewal answered without access_token and refresh_token",
            ));
        };
        let expires_at = text("expiry_time")
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
            .map(|time| time.to_utc())
            .ok_or_else(|| ChannelError::permanent("Wish's token renewal answered without a readable expiry_time"))?;
        info!(client_id = %self.credentials.client_id, %expires_at, "Wish token renewed");
        Ok(WishCredentials::renewed(stored, access_token, refresh_token, expires_at))
    }

    fn order_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!("{}/api/v3/orders/{}", self.endpoint, path_segment(channel_order_id.as_str()))
    }

    /// One call with the merchant's token; Wish's `data`, `None` on 404.
    async fn call(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ChannelError> {
        let token = self.credentials.access_token.as_deref().ok_or_else(|| {
            ChannelError::retryable("the Wish store has no access token yet: shipsync renews it before the next try")
        })?;
        let mut request =
            self.http.request(method, url).bearer_auth(token).header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        answer("the call", response).await
    }

    async fn read_order(&self, channel_order_id: &ChannelOrderId) -> Result<Option<Value>, ChannelError> {
        let url = reqwest::Url::parse(&self.order_url(channel_order_id))
            .map_err(|_| ChannelError::permanent("the Wish endpoint is not a URL"))?;
        self.call(reqwest::Method::GET, url, None).await
    }

    /// A page of the orders updated at or after `since` (or the page's own time), oldest first.
    /// `page`: the last listed order's `updated_at`, where the next page starts (the orders at
    /// that very time are listed again, and applying an order twice changes nothing).
    async fn orders_updated_since(&self, since: DateTime<Utc>, page: Option<&str>) -> Result<OrdersPage, ChannelError> {
        let from = match page {
            Some(page) => DateTime::parse_from_rfc3339(page)
                .map(|time| time.to_utc())
                .map_err(|_| ChannelError::permanent(format!("{page:.50} is not a Wish page time")))?,
            None => since,
        };
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v3/orders", self.endpoint),
            [
                ("updated_at_min", wish_time(from)),
                ("sort_by", "updated_at.asc".to_owned()),
                ("limit", WISH_ORDERS_PER_PAGE.to_string()),
            ],
        )
        .map_err(|_| ChannelError::permanent("the Wish endpoint is not a URL"))?;
        let data = self
            .call(reqwest::Method::GET, url, None)
            .await?
            .ok_or_else(|| ChannelError::permanent("Wish answered its order list with 404"))?;
        let listed = match data {
            Value::Array(orders) => orders,
            Value::Null => Vec::new(),
            _ => return Err(ChannelError::retryable("Wish listed orders without a data list")),
        };
        let mut read = PageReader::default();
        let mut last = None;
        for node in &listed {
            if let Ok(updated_at) = required_time(&node["updated_at"], "updated_at") {
                last = Some(last.map_or(updated_at, |last: DateTime<Utc>| last.max(updated_at)));
            }
            match wish_order(node) {
                Ok(None) => {}
                Ok(Some(order)) => read.add("Wish", "id", node.clone(), Ok(order)),
                Err(reason) => read.add("Wish", "id", node.clone(), Err(reason)),
            }
        }
        // A full page goes on from its last time; a whole page at one instant steps past it
        // (a thousandth of a second), so that the listing always moves on.
        let full = listed.len() >= WISH_ORDERS_PER_PAGE as usize;
        let next = match last {
            Some(last) if full && last > from => Some(last),
            Some(last) if full => {
                warn!(at = %last, "a whole page of Wish orders updated at one instant: the listing steps past it");
                Some(last + Duration::milliseconds(1))
            }
            _ => None,
        };
        Ok(read.page(next.map(wish_time)))
    }

    async fn ship(&self, order: &ExportOrder, check_first: bool) -> Result<Fulfillment, ChannelError> {
        let parcels = packages(order);
        let [package] = parcels.as_slice() else {
            return Err(ChannelError::permanent(format!(
                "Wish takes one tracking number per order, and this shipment has {}: ship each Wish order in one parcel",
                parcels.len()
            )));
        };
        if package.tracking.is_empty() || !package.tracking.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ChannelError::permanent(format!(
                "Wish takes tracking numbers of letters and digits only, not {:?}",
                package.tracking
            )));
        }
        if check_first && let Some(node) = self.read_order(&order.channel_order_id).await? {
            if held_tracking(&node).iter().any(|held| same_number(held, &package.tracking)) {
                info!(order = %order.channel_order_id, "Wish already holds the tracking: adopted");
                return Ok(Fulfillment { channel_ids: vec![package.tracking.clone()], adopted: true });
            }
            if let Some(problem) = unshippable(&node) {
                return Err(ChannelError::permanent(problem));
            }
        }
        let mut body = json!({"tracking_number": package.tracking, "shipping_provider": wish_carrier(order),
            "origin_country": self.origin_country});
        if let Some(method) = order.shipping_method.as_deref().filter(|method| !method.trim().is_empty()) {
            body["ship_note"] = json!(method.chars().take(500).collect::<String>());
        }
        let url = reqwest::Url::parse(&format!("{}/tracking", self.order_url(&order.channel_order_id)))
            .map_err(|_| ChannelError::permanent("the Wish endpoint is not a URL"))?;
        self.call(reqwest::Method::PUT, url, Some(&body))
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Wish has no order {}", order.channel_order_id)))?;
        info!(order = %order.channel_order_id, "Wish order shipped (Wish applies tracking asynchronously)");
        Ok(Fulfillment { channel_ids: vec![package.tracking.clone()], adopted: false })
    }
}

/// Wish's answer: its `data` on success, `None` on 404; else the refusal with Wish's code and
/// message (400: for good, a token or a field a person must fix; 429 and 5xx: again later).
async fn answer(operation: &str, response: reqwest::Response) -> Result<Option<Value>, ChannelError> {
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let wait = response
        .headers()
        .get("wish-rate-limit-reset")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .and_then(|reset| channel_wait(reset_seconds(reset, Utc::now())))
        .or_else(|| crate::retry_after(response.headers()));
    let text = response.text().await.map_err(|error| transport_error(&error))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(ChannelError::Retryable {
            message: format!("Wish answered {operation} with HTTP {}: {}", status.as_u16(), wish_message(&body, &text)),
            retry_after: wait,
        });
    }
    let code_ok = matches!(&body["code"], Value::Number(code) if code.as_i64() == Some(0))
        || body["code"] == "0"
        || body["code"].is_null();
    if !status.is_success() || !code_ok {
        return Err(ChannelError::permanent(format!(
            "Wish refused {operation} (HTTP {}): {}{}",
            status.as_u16(),
            wish_message(&body, &text),
            token_hint(&body)
        )));
    }
    if body.is_null() {
        return Err(ChannelError::retryable(format!(
            "Wish answered {operation} with something that is not JSON: {text:.200}"
        )));
    }
    Ok(Some(body.get("data").cloned().unwrap_or(Value::Null)))
}

/// Wish's `Wish-Rate-Limit-Reset` as a wait: a Unix time when it is one, else seconds.
fn reset_seconds(reset: f64, now: DateTime<Utc>) -> f64 {
    // Precision is lost only far beyond the 15-minute clamp.
    if reset > 1e9 { reset - now.timestamp() as f64 } else { reset }
}

/// Wish's code and message, or the body.
fn wish_message(body: &Value, text: &str) -> String {
    let code = match &body["code"] {
        Value::Number(code) => Some(code.to_string()),
        Value::String(code) => Some(code.clone()),
        _ => None,
    };
    match (code, body["message"].as_str().filter(|message| !message.is_empty())) {
        (Some(code), Some(message)) => format!("{message} (code {code})"),
        (None, Some(message)) => message.to_owned(),
        (Some(code), None) => format!("code {code}"),
        (None, None) => text.chars().take(300).collect(),
    }
}

/// What a person should do about a refused token (Wish's codes 1006, 1007, 1008, 1002).
fn token_hint(body: &Value) -> &'static str {
    let code = match &body["code"] {
        Value::Number(code) => code.as_i64(),
        Value::String(code) => code.trim().parse().ok(),
        _ => None,
    };
    match code {
        Some(1006..=1008) => {
            ": the store's Wish authorization no longer works; authorize shipsync again on Wish and set the store's refresh_token"
        }
        Some(1002) => ": the Wish merchant account is disabled",
        _ => "",
    }
}

/// Wish's time format in filters: RFC 3339 with milliseconds, in UTC.
fn wish_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn same_number(held: &str, ours: &str) -> bool {
    match (TrackingNumber::parse(held), TrackingNumber::parse(ours)) {
        (Ok(held), Ok(ours)) => held.same_parcel(&ours),
        _ => held.trim().eq_ignore_ascii_case(ours.trim()),
    }
}

/// The tracking numbers Wish holds for an order, newest first.
fn held_tracking(node: &Value) -> Vec<String> {
    node["tracking_information"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|info| info["tracking_number"].as_str().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned))
        .collect()
}

/// Why Wish would not take tracking for the order now, if it would not.
fn unshippable(node: &Value) -> Option<String> {
    let id = node["id"].as_str().unwrap_or_default();
    match node["state"].as_str().unwrap_or_default() {
        "REFUNDED" | "DECLINED" => Some(format!(
            "Wish order {id} is {}: nothing to ship",
            node["state"].as_str().unwrap_or_default().to_lowercase()
        )),
        "SHIPPED" => Some(format!(
            "Wish order {id} is already shipped with tracking {}: Wish holds one parcel per order (correct it on Wish if it is wrong)",
            held_tracking(node).first().map_or("unknown", String::as_str)
        )),
        _ => None,
    }
}

/// A listed Wish order as shipsync reads it: `Ok(None)` for one Wish still reviews (it is listed
/// again when approved, which changes its time); or which field is wrong.
fn wish_order(node: &Value) -> Result<Option<IncomingOrder>, String> {
    let id = required_text(&node["id"], "id")?;
    let state = required_text(&node["state"], "state")?;
    let updated_at = required_time(&node["updated_at"], "updated_at")?;
    let cancelled = match state.as_str() {
        "REQUIRE_REVIEW" => return Ok(None),
        "APPROVED" | "SHIPPED" => false,
        "REFUNDED" | "DECLINED" => true,
        other => return Err(format!("state {other:.40?} is not one Wish documents")),
    };
    let quantity = match &node["order_payment"]["general_payment_details"]["product_quantity"] {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .and_then(|quantity| u32::try_from(quantity).ok())
    .ok_or("order_payment.general_payment_details.product_quantity must be a whole number, 0 or more")?;
    let product = &node["product_information"];
    let unit_price = match &node["order_payment"]["general_payment_details"]["product_price"]["amount"] {
        Value::Number(price) => price.to_string().parse().ok(),
        Value::String(price) => price.trim().parse().ok(),
        _ => None,
    };
    let line = IncomingLine {
        channel_line_item_id: id.clone(),
        sku: product["sku"].as_str().and_then(Sku::received),
        name: product["name"].as_str().unwrap_or_default().trim().to_owned(),
        quantity,
        unit_price,
        awaiting_acceptance: false,
        needs_imei: false,
    };
    let channel_order_id = ChannelOrderId::received(id.clone());
    let fulfillments = incoming_fulfillments(&channel_order_id, node, quantity);
    Ok(Some(IncomingOrder {
        channel_order_id,
        // Wish's order id is what its merchants and buyers see (a checkout's orders share
        // `transaction_id`).
        number: id.clone(),
        customer_name: node["full_address"]["shipping_detail"]["name"].as_str().unwrap_or_default().trim().to_owned(),
        updated_at,
        cancelled,
        lines: vec![line],
        cancel_requested: None,
        fulfillments,
    }))
}

/// The parcel Wish holds for a shipped order (its newest tracking), as a fulfillment of the
/// whole line: reverse sync links it to shipsync's shipment, or creates one.
fn incoming_fulfillments(channel_order_id: &ChannelOrderId, node: &Value, quantity: u32) -> Vec<IncomingFulfillment> {
    if node["state"] != "SHIPPED" {
        return Vec::new();
    }
    let newest = node["tracking_information"].as_array().and_then(|infos| infos.first());
    let Some(info) = newest else { return Vec::new() };
    let Some(number) = info["tracking_number"].as_str().and_then(|number| TrackingNumber::parse(number).ok()) else {
        return Vec::new();
    };
    vec![IncomingFulfillment {
        channel_fulfillment_id: number.to_string(),
        channel_order_id: channel_order_id.clone(),
        lines: vec![(channel_order_id.as_str().to_owned(), quantity)],
        tracking_numbers: vec![number],
        tracking_company: info["shipping_provider"]["name"].as_str().map(str::to_owned),
        cancelled: false,
    }]
}

impl WishClient {
    /// Refunds (cancels) the order: `PUT /api/v3/orders/{id}/refund`. Every attempt reads the
    /// order first: one Wish shows refunded is adopted. Wish applies it asynchronously.
    async fn refund(&self, cancellation: &crate::CancelOrder) -> Result<Vec<String>, ChannelError> {
        let order = &cancellation.channel_order_id;
        if !cancellation.whole_order {
            return Err(ChannelError::permanent("Wish refunds whole orders only"));
        }
        let node = self
            .read_order(order)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Wish has no order {order}")))?;
        match node["state"].as_str() {
            Some("REFUNDED") => {
                info!(%order, "Wish shows the order refunded: adopted");
                return Ok(vec![order.to_string()]);
            }
            Some("SHIPPED") => {
                return Err(ChannelError::permanent("Wish shows the order shipped: it can no longer be cancelled"));
            }
            _ => {}
        }
        let note: String = crate::shopify::cancel_note(cancellation).chars().take(500).collect();
        let body = json!({"refund_reason": wish_refund_reason(cancellation.reason), "refund_reason_note": note});
        let url = reqwest::Url::parse(&format!("{}/refund", self.order_url(order)))
            .map_err(|_| ChannelError::permanent("the Wish endpoint is not a URL"))?;
        self.call(reqwest::Method::PUT, url, Some(&body))
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Wish has no order {order}")))?;
        info!(%order, "Wish order refunded (Wish applies it asynchronously)");
        Ok(vec![order.to_string()])
    }
}

/// Wish's refund reason for shipsync's (from Wish's `RefundReason` list).
fn wish_refund_reason(reason: shipsync_domain::cancellations::CancelReason) -> &'static str {
    use shipsync_domain::cancellations::CancelReason;
    match reason {
        CancelReason::OutOfStock => "MERCHANT_OUT_OF_STOCK",
        CancelReason::Fraud => "MERCHANT_REPORTED_BUYER_FRAUD",
        _ => "UNABLE_TO_SHIP",
    }
}

impl Channel for WishClient {
    fn cancel<'a>(
        &'a self,
        cancellation: &'a crate::CancelOrder,
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        Box::pin(self.refund(cancellation))
    }

    fn export<'a>(&'a self, order: &'a ExportOrder, check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.ship(order, check_first))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_updated_since(since, page))
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(async move {
            let Some(node) = self.read_order(channel_order_id).await? else { return Ok(Vec::new()) };
            // An order Wish still reviews has no parcel yet; one shipsync cannot read says why.
            let order = wish_order(&node)
                .map_err(|reason| ChannelError::permanent(format!("Wish order {channel_order_id}: {reason}")))?;
            Ok(order.map(|order| order.fulfillments).unwrap_or_default())
        })
    }

    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        Box::pin(async move {
            let Some(node) = self.read_order(channel_order_id).await? else { return Ok(None) };
            wish_order(&node)
                .map_err(|reason| ChannelError::permanent(format!("Wish order {channel_order_id}: {reason}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(state: &str) -> Value {
        json!({"id": "5f1a0c2e9b1d4a0012ab34cd", "state": state, "transaction_id": "5f1a0c2e9b1d4a0012ab0000",
            "updated_at": "2026-03-02T11:00:00.000Z", "released_at": "2026-03-02T10:00:00.000Z",
            "product_information": {"id": "p1", "variation_id": "v1", "sku": "WI-1", "name": "Mug"},
            "order_payment": {"general_payment_details": {"product_quantity": 2, "product_price": {"amount": 4.5, "currency_code": "USD"}}},
            "full_address": {"shipping_detail": {"name": " Jo Buyer ", "city": "Austin", "country_code": "US"}},
            "tracking_information": [{"tracking_number": "1Z999AA10000005021", "origin_country": "US", "shipping_provider": {"name": "UPS"}}]})
    }

    #[test]
    fn an_order_is_one_line_named_by_its_id() {
        let order = wish_order(&listed("APPROVED")).expect("readable").expect("taken");
        assert_eq!(order.number, "5f1a0c2e9b1d4a0012ab34cd");
        assert_eq!(order.customer_name, "Jo Buyer");
        assert_eq!(order.lines.len(), 1);
        assert_eq!(order.lines[0].channel_line_item_id, order.channel_order_id.as_str());
        assert_eq!((order.lines[0].quantity, order.lines[0].sku.as_ref().map(|s| s.as_str())), (2, Some("WI-1")));
        assert!(!order.cancelled && order.fulfillments.is_empty());
    }

    #[test]
    fn states_say_what_to_do() {
        assert_eq!(wish_order(&listed("REQUIRE_REVIEW")), Ok(None), "taken once approved");
        assert!(wish_order(&listed("REFUNDED")).expect("readable").expect("taken").cancelled);
        let shipped = wish_order(&listed("SHIPPED")).expect("readable").expect("taken");
        assert_eq!(shipped.fulfillments[0].tracking_numbers[0].as_str(), "1Z999AA10000005021");
        assert_eq!(shipped.fulfillments[0].lines, [("5f1a0c2e9b1d4a0012ab34cd".to_owned(), 2)]);
        assert!(wish_order(&listed("LOST")).is_err());
        let mut no_quantity = listed("APPROVED");
        no_quantity["order_payment"] = json!({});
        assert!(wish_order(&no_quantity).expect_err("unreadable").contains("product_quantity"));
    }

    #[test]
    fn refusals_carry_wishs_code_and_what_to_do() {
        let body = json!({"code": 1008, "message": "Access token revoked", "data": {}});
        assert_eq!(
            format!("{}{}", wish_message(&body, ""), token_hint(&body)),
            "Access token revoked (code 1008): the store's Wish authorization no longer works; authorize shipsync \
             again on Wish and set the store's refresh_token"
        );
        assert_eq!(wish_message(&json!({"code": "1001", "message": "bad"}), ""), "bad (code 1001)");
        assert_eq!(reset_seconds(30.0, Utc::now()), 30.0);
        let now = Utc::now();
        assert!((reset_seconds(now.timestamp() as f64 + 60.0, now) - 60.0).abs() < 1.0);
    }

    #[test]
    fn a_token_is_renewed_a_week_before_it_expires_and_at_once_when_unknown() {
        let credentials = |token: Option<&str>, expires: Option<&str>| WishCredentials {
            client_id: "c".into(),
            client_secret: "s".into(),
            refresh_token: "r".into(),
            access_token: token.map(str::to_owned),
            expires_at: expires.map(|time| time.parse().expect("a time")),
        };
        let at: DateTime<Utc> = "2026-03-24T00:00:00Z".parse().expect("a time");
        assert_eq!(WishClient::renew_by(&credentials(Some("t"), Some("2026-03-31T00:00:00Z"))), at);
        assert_eq!(WishClient::renew_by(&credentials(None, Some("2026-03-31T00:00:00Z"))), DateTime::UNIX_EPOCH);
        assert_eq!(WishClient::renew_by(&credentials(Some("t"), None)), DateTime::UNIX_EPOCH);
    }
}
