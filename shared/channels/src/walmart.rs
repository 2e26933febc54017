//! Walmart Marketplace (US) Orders API v3. Reads: `GET /v3/orders` by `lastModifiedStartDate`,
//! seller-fulfilled, 200 a page, the next page by Walmart's `nextCursor`; one order by
//! `GET /v3/orders/{purchaseOrderId}`; its lines shipped with tracking are its fulfillments.
//! Acceptance: Walmart wants an order acknowledged before it ships, for all of its lines at once,
//! so it is acknowledged once every line still `Created` is routed to a vendor. Exports: one
//! `POST /v3/orders/{purchaseOrderId}/shipping` with every line not shipped yet, each line's units
//! under the tracking number of the package they are in, the carrier by Walmart's exact name
//! (else as `otherCarrier` with its tracking page), after reading the order: a line Walmart shows
//! shipped under the same tracking number (an earlier attempt whose answer was lost) is adopted,
//! and a line still `Created` is acknowledged first.
//!
//! Sources: Walmart's Orders and Auth specs as published in `highsidelabs/walmart-api-php`
//! (`resources/schemas/models/us/mp/orders.json`, `auth.json`) and developer.walmart.com, in
//! /work/shared/reference/intake.md §1.4 and channels.md §1.5.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::info;

use crate::port::{PageReader, required_text};
use crate::settings::WalmartCredentials;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, TokenCache, packages, path_segment,
    success_body, transport_error,
};

pub const WALMART_ENDPOINT: &str = "https://marketplace.walmartapis.com";

/// Orders a page of `GET /v3/orders` holds (Walmart's maximum).
pub const WALMART_ORDERS_PER_PAGE: u32 = 200;

/// `WM_SVC.NAME`, which every call carries.
const SERVICE_NAME: &str = "Walmart Marketplace";

/// How long a token lasts when Walmart does not say (its tokens last 15 minutes).
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// How long to wait when Walmart throttles (429) without saying: its quotas replenish by the minute.
const THROTTLE_WAIT: Duration = Duration::from_secs(60);

/// The carriers Walmart names in `carrierName.carrier`, exactly as it spells them (the spec's
/// enum); any other goes as `otherCarrier` with a tracking URL.
pub const WALMART_CARRIERS: &[&str] = &[
    "UPS",
    "USPS",
    "FedEx",
    "Airborne",
    "OnTrac",
    "DHL Ecommerce - US",
    "DHL",
    "LS",
    "UDS",
    "UPSMI",
    "FDX",
    "PILOT",
    "ESTES",
    "SAIA",
    "FDS Express",
    "Seko Worldwide",
    "HIT Delivery",
    "FEDEXSP",
    "RL Carriers",
    "Metropolitan Warehouse & Delivery",
    "China Post",
    "YunExpress",
    "Yellow Freight Sys",
    "AIT Worldwide Logistics",
    "Chukou1",
    "Sendle",
    "Landmark Global",
    "Sunyou",
    "Yanwen",
    "4PX",
    "GLS",
    "OSM Worldwide",
    "FIRST MILE",
    "AM Trucking",
    "CEVA",
    "India Post",
    "SF Express",
    "CNE",
    "TForce Freight",
    "AxleHire",
    "LSO",
    "Royal Mail",
    "ABF Freight System",
    "WanB",
    "Roadrunner Freight",
    "Meyer Distribution",
    "AAA Cooper",
    "Canada Post",
    "Southeastern Freight Lines",
    "Japan Post",
    "Correos de Mexico",
    "XPO Logistics",
    "JD Logistics",
    "YDH",
    "JCEX",
    "Flyt",
    "Deutsche Post",
];

/// Names carriers go by that Walmart lists under another (shipsync's default carriers included).
const CARRIER_ALIASES: &[(&str, &str)] = &[
    ("US Postal", "USPS"),
    ("US Postal Service", "USPS"),
    ("United States Postal Service", "USPS"),
    ("Federal Express", "FedEx"),
    ("FedEx SmartPost", "FEDEXSP"),
    ("DHL Express", "DHL"),
    ("DHL eCommerce", "DHL Ecommerce - US"),
    ("LaserShip", "LS"),
    ("UPS Mail Innovations", "UPSMI"),
    ("United Delivery Service", "UDS"),
];

/// Walmart's name for a carrier: its own spelling when the name is one of [`WALMART_CARRIERS`]
/// or a known alias of one (case aside); `None` when Walmart lists no such carrier.
pub fn walmart_carrier(name: &str) -> Option<&'static str> {
    let name = name.trim();
    WALMART_CARRIERS.iter().copied().find(|carrier| carrier.eq_ignore_ascii_case(name)).or_else(|| {
        CARRIER_ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map(|(_, carrier)| *carrier)
    })
}

/// Walmart's shipping methods (`methodCode`).
const METHOD_CODES: [&str; 6] = ["Standard", "Express", "OneDay", "Freight", "WhiteGlove", "Value"];

/// Line statuses (`orderLineStatus.status`).
const CREATED: &str = "Created";
const CANCELLED: &str = "Cancelled";

fn is_shipped(status: &str) -> bool {
    status == "Shipped" || status == "Delivered"
}

/// No `Debug`: it holds the seller's credentials.
#[derive(Clone)]
pub struct WalmartClient {
    http: reqwest::Client,
    endpoint: String,
    credentials: WalmartCredentials,
    tokens: TokenCache,
}

impl WalmartClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<&str>,
        credentials: WalmartCredentials,
        tokens: TokenCache,
    ) -> Self {
        Self {
            http,
            endpoint: endpoint.unwrap_or(WALMART_ENDPOINT).trim_end_matches('/').to_owned(),
            credentials,
            tokens,
        }
    }

    fn order_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!("{}/v3/orders/{}", self.endpoint, path_segment(channel_order_id.as_str()))
    }

    /// A token of the seller's client credentials (`POST /v3/token`), kept while it lasts.
    async fn access_token(&self) -> Result<String, ChannelError> {
        let token_url = format!("{}/v3/token", self.endpoint);
        let key = TokenCache::key(&token_url, &self.credentials.client_id, &self.credentials.client_secret);
        if let Some(token) = self.tokens.get(&key) {
            return Ok(token);
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.credentials.client_id, self.credentials.client_secret));
        let response = self
            .http
            .post(&token_url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .header("WM_SVC.NAME", SERVICE_NAME)
            .header("WM_QOS.CORRELATION_ID", correlation_id())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let text = success_body(response, |text| format!("Walmart token: {}", walmart_error_message(text))).await?;
        let body: Value =
            serde_json::from_str(&text).map_err(|_| ChannelError::retryable("Walmart's token answer is not JSON"))?;
        let token = body["access_token"]
            .as_str()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ChannelError::permanent("Walmart's token answer has no access_token"))?;
        let lasts = body["expires_in"].as_u64().map_or(TOKEN_LIFETIME, Duration::from_secs);
        self.tokens.put(key, token.to_owned(), lasts);
        Ok(token.to_owned())
    }

    /// One call with the headers Walmart wants on each; `None`: 404. A 429 waits as Walmart
    /// says, else [`THROTTLE_WAIT`].
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ChannelError> {
        let token = self.access_token().await?;
        let mut request = self
            .http
            .request(method, url)
            .header("WM_SEC.ACCESS_TOKEN", token)
            .header("WM_SVC.NAME", SERVICE_NAME)
            .header("WM_QOS.CORRELATION_ID", correlation_id())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let throttled = response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS;
        let text = success_body(response, |text| format!("Walmart: {}", walmart_error_message(text))).await.map_err(
            |error| match error {
                ChannelError::Retryable { message, retry_after } if throttled => {
                    ChannelError::Retryable { message, retry_after: retry_after.or(Some(THROTTLE_WAIT)) }
                }
                other => other,
            },
        )?;
        if text.trim().is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| ChannelError::retryable(format!("Walmart answered something that is not JSON: {text:.200}")))
    }

    /// The order as Walmart holds it now; `None` when it does not know it.
    async fn read_order(&self, channel_order_id: &ChannelOrderId) -> Result<Option<Value>, ChannelError> {
        let Some(body) = self.call(reqwest::Method::GET, &self.order_url(channel_order_id), None).await? else {
            return Ok(None);
        };
        Ok(Some(body.get("order").cloned().unwrap_or(body)))
    }

    async fn acknowledge(&self, channel_order_id: &ChannelOrderId) -> Result<(), ChannelError> {
        let url = format!("{}/acknowledge", self.order_url(channel_order_id));
        self.call(reqwest::Method::POST, &url, None).await?.ok_or_else(|| {
            ChannelError::permanent(format!("Walmart has no order {channel_order_id} to acknowledge"))
        })?;
        info!(order = %channel_order_id, "Walmart order acknowledged");
        Ok(())
    }

    /// Acknowledges the order once every line Walmart still holds as `Created` is among `lines`
    /// (routed to a vendor): Walmart acknowledges whole orders, and an acknowledged line is a
    /// promise to ship it. An order with a line no product claims waits (its problem says why).
    async fn accept(&self, channel_order_id: &ChannelOrderId, lines: &[IncomingLine]) -> Result<(), ChannelError> {
        let node = self
            .read_order(channel_order_id)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Walmart has no order {channel_order_id}")))?;
        let created = created_lines(&node);
        if created.is_empty() {
            return Ok(());
        }
        let unrouted: Vec<&String> =
            created.iter().filter(|id| !lines.iter().any(|line| &line.channel_line_item_id == *id)).collect();
        if !unrouted.is_empty() {
            info!(order = %channel_order_id, ?unrouted, "Walmart order not acknowledged: lines wait for a vendor");
            return Ok(());
        }
        self.acknowledge(channel_order_id).await
    }

    /// Cancels units of lines (`POST /v3/orders/{po}/cancel`). Every attempt reads the order
    /// first: a line already showing the units cancelled that this cancellation brings it to
    /// is not sent again, so a retry after a lost answer sends only what Walmart lacks.
    async fn cancel_lines(&self, cancellation: &crate::CancelOrder) -> Result<Vec<String>, ChannelError> {
        let order = &cancellation.channel_order_id;
        let node = self
            .read_order(order)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Walmart has no order {order}")))?;
        let mut wanted: Vec<(String, u32)> = Vec::new();
        for (line, quantity) in &cancellation.lines {
            match wanted.iter_mut().find(|(id, _)| id == line) {
                Some((_, total)) => *total += quantity,
                None => wanted.push((line.clone(), *quantity)),
            }
        }
        let mut send = Vec::new();
        for (line_number, quantity) in wanted {
            let line = order_lines(&node)
                .find(|line| text_of(&line["lineNumber"]).as_deref() == Some(line_number.as_str()))
                .ok_or_else(|| ChannelError::permanent(format!("Walmart order {order} has no line {line_number}")))?;
            let shown: u64 = statuses(line)
                .filter(|status| status["status"].as_str() == Some(CANCELLED))
                .filter_map(|status| number_of(&status["statusQuantity"]["amount"]))
                .fold(0, u64::saturating_add);
            let target = cancellation
                .cancelled_after
                .iter()
                .filter(|(id, _)| *id == line_number)
                .map(|(_, total)| u64::from(*total))
                .max()
                .unwrap_or(u64::from(quantity));
            let missing = target.saturating_sub(shown).min(u64::from(quantity));
            if missing == 0 {
                continue;
            }
            send.push(json!({
                "lineNumber": line_number,
                "orderLineStatuses": {"orderLineStatus": [{
                    "status": CANCELLED,
                    "cancellationReason": walmart_cancel_reason(cancellation.reason),
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": missing.to_string()},
                }]},
            }));
        }
        if send.is_empty() {
            info!(%order, "Walmart shows the units cancelled already: adopted");
            return Ok(vec![order.to_string()]);
        }
        let body = json!({"orderCancellation": {"orderLines": {"orderLine": send}}});
        let url = format!("{}/cancel", self.order_url(order));
        self.call(reqwest::Method::POST, &url, Some(&body))
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Walmart has no order {order} to cancel")))?;
        info!(%order, "units cancelled at Walmart");
        Ok(vec![order.to_string()])
    }

    /// A page of the orders modified at or after `since`. `page` is Walmart's `nextCursor` (a
    /// query string): only its parameters are taken, sent to the store's own endpoint, so the
    /// token never goes anywhere else.
    async fn orders_modified_since(
        &self,
        since: DateTime<Utc>,
        page: Option<&str>,
    ) -> Result<OrdersPage, ChannelError> {
        let listing = format!("{}/v3/orders", self.endpoint);
        let parameters: Vec<(String, String)> = match page {
            Some(cursor) => cursor_parameters(cursor)
                .ok_or_else(|| ChannelError::permanent(format!("{cursor:.80} is not a Walmart nextCursor")))?,
            None => vec![
                ("lastModifiedStartDate".into(), since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                ("limit".into(), WALMART_ORDERS_PER_PAGE.to_string()),
                ("shipNodeType".into(), "SellerFulfilled".into()),
            ],
        };
        let url = reqwest::Url::parse_with_params(&listing, &parameters)
            .map_err(|_| ChannelError::permanent("the Walmart endpoint is not a URL"))?;
        let body = self
            .call(reqwest::Method::GET, url.as_str(), None)
            .await?
            .ok_or_else(|| ChannelError::permanent("Walmart answered its order list with 404"))?;
        let list = &body["list"];
        let listed = match &list["elements"]["order"] {
            Value::Array(orders) => orders.clone(),
            // No orders: Walmart leaves the elements out.
            Value::Null if list.is_object() => Vec::new(),
            _ => return Err(ChannelError::retryable("Walmart listed orders without list.elements.order")),
        };
        let mut read = PageReader::default();
        for node in &listed {
            read.add("Walmart", "purchaseOrderId", node.clone(), walmart_order(node));
        }
        // A page that lists nothing ends the listing, whatever the cursor says: no endless loop.
        let next = list["meta"]["nextCursor"]
            .as_str()
            .map(str::trim)
            .filter(|cursor| !cursor.is_empty() && !listed.is_empty())
            .map(str::to_owned);
        Ok(read.page(next))
    }

    /// Ships every line of the shipment Walmart does not show shipped under the same tracking
    /// number, in one call; acknowledges the order first if a line is still `Created`.
    async fn ship(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        let carrier = carrier_name(order)?;
        let node = self
            .read_order(&order.channel_order_id)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Walmart has no order {}", order.channel_order_id)))?;
        let held = held_lines(&node);
        let method_code = method_code(order.shipping_method.as_deref(), &node);
        let ship_time = order.shipped_at.timestamp_millis();
        let seller_order_id = node["sellerOrderId"]
            .as_str()
            .filter(|id| !id.trim().is_empty())
            .map_or_else(|| order.channel_order_id.to_string(), str::to_owned);
        let mut sent: Vec<String> = Vec::new();
        let mut adopted = false;
        let mut lines: Vec<Value> = Vec::new();
        for package in packages(order) {
            if !package.tracking.is_empty() && !sent.contains(&package.tracking) {
                sent.push(package.tracking.clone());
            }
            let tracking_url = order.tracking_urls.get(package.index).cloned();
            for (line_number, units) in &package.items {
                let Some(line) = held.iter().find(|line| &line.number == line_number) else {
                    return Err(ChannelError::permanent(format!(
                        "Walmart's order {} has no line {line_number}",
                        order.channel_order_id
                    )));
                };
                if line.shipped_under(&package.tracking) {
                    info!(order = %order.channel_order_id, line = %line_number, "Walmart shows this line shipped: adopted");
                    adopted = true;
                    continue;
                }
                let mut tracking = json!({
                    "shipDateTime": ship_time,
                    "carrierName": carrier.field(),
                    "methodCode": method_code,
                    "trackingNumber": package.tracking,
                });
                match (&tracking_url, carrier.needs_url()) {
                    (Some(url), _) => tracking["trackingURL"] = json!(url),
                    (None, true) => {
                        return Err(ChannelError::permanent(format!(
                            "Walmart takes {} only as another carrier with a tracking URL: give the store's \
                             carrier mapping a tracking_url_template, or map it to one of Walmart's carriers",
                            carrier.name()
                        )));
                    }
                    (None, false) => {}
                }
                let status = json!({
                    "status": "Shipped",
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": units.to_string()},
                    "trackingInfo": tracking,
                });
                // One entry per line; a line whose units are in two packages has two statuses.
                match lines.iter_mut().find(|entry| entry["lineNumber"] == json!(line_number)) {
                    Some(entry) => {
                        if let Some(statuses) = entry["orderLineStatuses"]["orderLineStatus"].as_array_mut() {
                            statuses.push(status);
                        }
                    }
                    None => lines.push(json!({
                        "lineNumber": line_number,
                        "sellerOrderId": seller_order_id,
                        "orderLineStatuses": {"orderLineStatus": [status]},
                    })),
                }
            }
        }
        if !lines.is_empty() {
            if !created_lines(&node).is_empty() {
                self.acknowledge(&order.channel_order_id).await?;
            }
            let url = format!("{}/shipping", self.order_url(&order.channel_order_id));
            let body = json!({"orderShipment": {"orderLines": {"orderLine": lines}}});
            self.call(reqwest::Method::POST, &url, Some(&body)).await?.ok_or_else(|| {
                ChannelError::permanent(format!("Walmart has no order {} to ship", order.channel_order_id))
            })?;
            info!(order = %order.channel_order_id, lines = lines.len(), "Walmart order lines shipped");
        }
        if sent.is_empty() {
            sent.push(order.channel_order_id.to_string());
        }
        Ok(Fulfillment { channel_ids: sent, adopted })
    }
}

impl WalmartClient {
    /// Replaces the tracking numbers Walmart holds for a shipped shipment, within Walmart's
    /// window: one `PARTIAL_UPDATE` shipping call, each line's units under its package's new
    /// number with the number it replaces in `currentTrackingInfo`. A line Walmart already shows
    /// under the new number (an earlier send got through) is not sent again.
    async fn correct(
        &self,
        order: &ExportOrder,
        replaced: &[(TrackingNumber, TrackingNumber)],
    ) -> Result<Vec<String>, ChannelError> {
        let carrier = carrier_name(order)?;
        let node = self
            .read_order(&order.channel_order_id)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Walmart has no order {}", order.channel_order_id)))?;
        let held = held_lines(&node);
        let method_code = method_code(order.shipping_method.as_deref(), &node);
        let seller_order_id = node["sellerOrderId"]
            .as_str()
            .filter(|id| !id.trim().is_empty())
            .map_or_else(|| order.channel_order_id.to_string(), str::to_owned);
        let mut lines: Vec<Value> = Vec::new();
        let mut numbers = Vec::new();
        for package in packages(order) {
            if !package.tracking.is_empty() && !numbers.contains(&package.tracking) {
                numbers.push(package.tracking.clone());
            }
            let Some((was, _)) = replaced.iter().find(|(_, new)| new.as_str() == package.tracking) else { continue };
            for (line_number, units) in &package.items {
                if held.iter().any(|line| &line.number == line_number && line.shipped_under(&package.tracking)) {
                    info!(order = %order.channel_order_id, line = %line_number, "Walmart shows the corrected number: adopted");
                    continue;
                }
                let mut tracking = json!({"shipDateTime": order.shipped_at.timestamp_millis(),
                    "carrierName": carrier.field(), "methodCode": method_code, "trackingNumber": package.tracking});
                if let Some(url) = order.tracking_urls.get(package.index) {
                    tracking["trackingURL"] = json!(url);
                }
                let status = json!({"status": "Shipped",
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": units.to_string()},
                    "trackingInfo": tracking, "currentTrackingInfo": {"trackingNumber": was.as_str()}});
                match lines.iter_mut().find(|entry| entry["lineNumber"] == json!(line_number)) {
                    Some(entry) => {
                        if let Some(statuses) = entry["orderLineStatuses"]["orderLineStatus"].as_array_mut() {
                            statuses.push(status);
                        }
                    }
                    None => lines.push(json!({"lineNumber": line_number, "sellerOrderId": seller_order_id,
                        "orderLineStatuses": {"orderLineStatus": [status]}})),
                }
            }
        }
        if !lines.is_empty() {
            let url = format!("{}/shipping", self.order_url(&order.channel_order_id));
            let body = json!({"orderShipment": {"processMode": "PARTIAL_UPDATE", "orderLines": {"orderLine": lines}}});
            self.call(reqwest::Method::POST, &url, Some(&body)).await?.ok_or_else(|| {
                ChannelError::permanent(format!("Walmart has no order {} to correct", order.channel_order_id))
            })?;
            info!(order = %order.channel_order_id, lines = lines.len(), "Walmart tracking corrected");
        }
        Ok(numbers)
    }
}

/// A fresh `WM_QOS.CORRELATION_ID` (a random UUID, version 4): Walmart wants a new one per call.
fn correlation_id() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the id is still unique enough to trace a call: the clock's nanoseconds.
    if getrandom::fill(&mut bytes).is_err() {
        bytes =
            Utc::now().timestamp_nanos_opt().unwrap_or_default().to_le_bytes().repeat(2).try_into().unwrap_or_default();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The parameters of a `nextCursor` (`?limit=200&hasMoreElements=true&soIndex=…`); `None` if it
/// is not a query string (a URL, or anything else: it is never followed as an address).
fn cursor_parameters(cursor: &str) -> Option<Vec<(String, String)>> {
    let query = cursor.trim().strip_prefix('?')?;
    if query.is_empty() {
        return None;
    }
    let pairs: Vec<(String, String)> = reqwest::Url::parse(&format!("http://cursor.invalid/?{query}"))
        .ok()?
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    (!pairs.is_empty()).then_some(pairs)
}

/// The first error Walmart's body describes (`{"errors": [...]}` or `{"errors": {"error": [...]}}`),
/// or the body itself.
fn walmart_error_message(text: &str) -> String {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let errors = &body["errors"];
    let first = if errors.is_array() { &errors[0] } else { &errors["error"][0] };
    let described = ["description", "info", "message"].iter().find_map(|field| first[field].as_str());
    match (first["code"].as_str(), described) {
        (Some(code), Some(description)) => format!("{code}: {description}"),
        (None, Some(description)) => description.to_owned(),
        (Some(code), None) => code.to_owned(),
        (None, None) => {
            body["error_description"].as_str().map_or_else(|| text.chars().take(300).collect(), str::to_owned)
        }
    }
}

/// The carrier as the confirmation names it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WalmartCarrier {
    /// One of Walmart's carriers, in its spelling.
    Listed(&'static str),
    /// Another carrier: Walmart then requires the tracking URL.
    Other(String),
}

impl WalmartCarrier {
    fn field(&self) -> Value {
        match self {
            WalmartCarrier::Listed(name) => json!({"carrier": name}),
            WalmartCarrier::Other(name) => json!({"otherCarrier": name}),
        }
    }

    fn needs_url(&self) -> bool {
        matches!(self, WalmartCarrier::Other(_))
    }

    fn name(&self) -> &str {
        match self {
            WalmartCarrier::Listed(name) => name,
            WalmartCarrier::Other(name) => name,
        }
    }
}

/// The store's mapping (checked against Walmart's list when it was saved), else the carrier's
/// name as Walmart lists it, else another carrier (which needs a tracking URL).
fn carrier_name(order: &ExportOrder) -> Result<WalmartCarrier, ChannelError> {
    let name = order.carrier_code.as_deref().unwrap_or(&order.carrier).trim();
    if name.is_empty() {
        return Err(ChannelError::permanent("the shipment names no carrier for Walmart"));
    }
    Ok(walmart_carrier(name).map_or_else(|| WalmartCarrier::Other(name.to_owned()), WalmartCarrier::Listed))
}

/// The shipment's shipping method when it is one of Walmart's, else the order's own, else Standard.
fn method_code(shipment_method: Option<&str>, node: &Value) -> &'static str {
    let known = |text: &str| METHOD_CODES.iter().copied().find(|code| code.eq_ignore_ascii_case(text.trim()));
    shipment_method
        .and_then(known)
        .or_else(|| node["shippingInfo"]["methodCode"].as_str().and_then(known))
        .unwrap_or("Standard")
}

/// An order line as Walmart holds it: its number and the tracking numbers its shipped units went under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeldLine {
    number: String,
    shipped_tracking: Vec<TrackingNumber>,
}

impl HeldLine {
    fn shipped_under(&self, tracking: &str) -> bool {
        TrackingNumber::parse(tracking)
            .is_ok_and(|mine| self.shipped_tracking.iter().any(|listed| listed.same_parcel(&mine)))
    }
}

/// Walmart's cancellation reason for shipsync's (Walmart has no "other": out of stock stands in).
fn walmart_cancel_reason(reason: shipsync_domain::cancellations::CancelReason) -> &'static str {
    use shipsync_domain::cancellations::CancelReason;
    match reason {
        CancelReason::CustomerRequested => "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
        CancelReason::PricingError => "SELLER_CANCEL_PRICING_ERROR",
        CancelReason::Fraud => "SELLER_CANCEL_FRAUD_STOP_SHIPMENT",
        CancelReason::AddressUndeliverable => "SELLER_CANCEL_ADDRESS_NOT_SERVICEABLE",
        CancelReason::OutOfStock | CancelReason::Other => "SELLER_CANCEL_OUT_OF_STOCK",
    }
}

fn order_lines(node: &Value) -> impl Iterator<Item = &Value> {
    node["orderLines"]["orderLine"].as_array().into_iter().flatten()
}

fn statuses(line: &Value) -> impl Iterator<Item = &Value> {
    line["orderLineStatuses"]["orderLineStatus"].as_array().into_iter().flatten()
}

/// Walmart writes numbers as strings (`"amount": "2"`) and sometimes as numbers.
fn number_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

fn held_lines(node: &Value) -> Vec<HeldLine> {
    order_lines(node)
        .filter_map(|line| {
            let number = text_of(&line["lineNumber"])?;
            let shipped_tracking = statuses(line)
                .filter(|status| status["status"].as_str().is_some_and(is_shipped))
                .filter_map(|status| status["trackingInfo"]["trackingNumber"].as_str())
                .filter_map(|number| TrackingNumber::parse(number).ok())
                .collect();
            Some(HeldLine { number, shipped_tracking })
        })
        .collect()
}

/// The numbers of the lines with units still `Created` (not acknowledged).
fn created_lines(node: &Value) -> Vec<String> {
    order_lines(node)
        .filter(|line| {
            statuses(line).any(|status| {
                status["status"].as_str() == Some(CREATED)
                    && number_of(&status["statusQuantity"]["amount"]).is_none_or(|units| units > 0)
            })
        })
        .filter_map(|line| text_of(&line["lineNumber"]))
        .collect()
}

/// A time Walmart writes as epoch milliseconds (a number, or digits in a string) or RFC 3339.
fn walmart_time(value: &Value) -> Option<DateTime<Utc>> {
    let millis = match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    };
    match millis {
        Some(millis) => Utc.timestamp_millis_opt(millis).single(),
        None => value.as_str().and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok()).map(|t| t.to_utc()),
    }
}

/// A Walmart purchase order as shipsync reads it; or which field is wrong.
///
/// - Quantity: `orderLineQuantity.amount` less the units Walmart lists as cancelled.
/// - `updated_at`: Walmart lists no modification time, so the latest of the order's date and its
///   lines' `statusDate` (each status change moves one), which orders the versions a poll sees.
/// - Unit price: the line's `PRODUCT` charge over its quantity (Walmart charges per line).
fn walmart_order(node: &Value) -> Result<IncomingOrder, String> {
    let order_id = required_text(&node["purchaseOrderId"], "purchaseOrderId")?;
    let ordered_at = walmart_time(&node["orderDate"]).ok_or("orderDate is required (epoch milliseconds)")?;
    let mut updated_at = ordered_at;
    let mut lines = Vec::new();
    let mut intent_to_cancel = Vec::new();
    for (index, line) in order_lines(node).enumerate() {
        let field = |name: &str| format!("orderLines.orderLine[{index}].{name}");
        let number = text_of(&line["lineNumber"]).ok_or_else(|| format!("{} is required", field("lineNumber")))?;
        let ordered = number_of(&line["orderLineQuantity"]["amount"])
            .and_then(|units| u32::try_from(units).ok())
            .ok_or_else(|| format!("{} must be a whole number", field("orderLineQuantity.amount")))?;
        let cancelled: u64 = statuses(line)
            .filter(|status| status["status"].as_str() == Some(CANCELLED))
            .filter_map(|status| number_of(&status["statusQuantity"]["amount"]))
            .fold(0u64, u64::saturating_add);
        let quantity = u64::from(ordered).saturating_sub(cancelled);
        let quantity = u32::try_from(quantity).unwrap_or(ordered);
        if let Some(changed) = walmart_time(&line["statusDate"]) {
            updated_at = updated_at.max(changed);
        }
        let unit_price = line["charges"]["charge"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|charge| charge["chargeType"].as_str() == Some("PRODUCT"))
            .and_then(|charge| match &charge["chargeAmount"]["amount"] {
                Value::Number(amount) => amount.to_string().parse::<rust_decimal::Decimal>().ok(),
                Value::String(amount) => amount.trim().parse().ok(),
                _ => None,
            })
            .and_then(|amount| {
                if ordered > 1 { amount.checked_div(rust_decimal::Decimal::from(ordered)) } else { Some(amount) }
            });
        let flagged = &line["intentToCancel"];
        if flagged.as_bool() == Some(true)
            || flagged.as_str().is_some_and(|flag| ["y", "yes", "true"].contains(&flag.trim().to_lowercase().as_str()))
        {
            intent_to_cancel.push(number.clone());
        }
        let awaiting_acceptance = quantity > 0
            && statuses(line).any(|status| {
                status["status"].as_str() == Some(CREATED)
                    && number_of(&status["statusQuantity"]["amount"]).is_none_or(|units| units > 0)
            });
        lines.push(IncomingLine {
            channel_line_item_id: number,
            sku: line["item"]["sku"].as_str().and_then(Sku::received),
            name: line["item"]["productName"].as_str().unwrap_or_default().to_owned(),
            quantity,
            unit_price,
            awaiting_acceptance,
            needs_imei: false,
        });
    }
    if lines.is_empty() {
        return Err("orderLines.orderLine is required".into());
    }
    let cancelled = lines.iter().all(|line| line.quantity == 0);
    let channel_order_id = ChannelOrderId::received(order_id.clone());
    Ok(IncomingOrder {
        fulfillments: shipped_lines(&channel_order_id, node),
        channel_order_id,
        number: order_id,
        customer_name: node["shippingInfo"]["postalAddress"]["name"].as_str().unwrap_or_default().trim().to_owned(),
        updated_at,
        cancelled,
        lines,
        cancel_requested: (!intent_to_cancel.is_empty() && !cancelled)
            .then(|| format!("the customer asked Walmart to cancel line {}", intent_to_cancel.join(", "))),
    })
}

/// The order's shipped units, one fulfillment per tracking number (named after it), with each
/// line's units shipped under it.
fn shipped_lines(channel_order_id: &ChannelOrderId, node: &Value) -> Vec<IncomingFulfillment> {
    let mut fulfillments: Vec<IncomingFulfillment> = Vec::new();
    for line in order_lines(node) {
        let Some(number) = text_of(&line["lineNumber"]) else { continue };
        for status in statuses(line).filter(|status| status["status"].as_str().is_some_and(is_shipped)) {
            let info = &status["trackingInfo"];
            let Some(tracking) = info["trackingNumber"].as_str().and_then(|text| TrackingNumber::parse(text).ok())
            else {
                continue;
            };
            let Some(units) = number_of(&status["statusQuantity"]["amount"]).and_then(|u| u32::try_from(u).ok()) else {
                continue;
            };
            let carrier = info["carrierName"]["carrier"]
                .as_str()
                .or_else(|| info["carrierName"]["otherCarrier"].as_str())
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned);
            match fulfillments.iter_mut().find(|f| f.tracking_numbers.iter().any(|t| t.same_parcel(&tracking))) {
                Some(fulfillment) => match fulfillment.lines.iter_mut().find(|(id, _)| *id == number) {
                    Some((_, quantity)) => *quantity = quantity.saturating_add(units),
                    None => fulfillment.lines.push((number.clone(), units)),
                },
                None => fulfillments.push(IncomingFulfillment {
                    channel_fulfillment_id: tracking.to_string(),
                    channel_order_id: channel_order_id.clone(),
                    lines: vec![(number.clone(), units)],
                    tracking_numbers: vec![tracking],
                    tracking_company: carrier,
                    cancelled: false,
                }),
            }
        }
    }
    fulfillments
}

impl Channel for WalmartClient {
    fn cancel<'a>(
        &'a self,
        cancellation: &'a crate::CancelOrder,
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        // Every attempt reads the order first and sends only what Walmart does not show.
        Box::pin(self.cancel_lines(cancellation))
    }

    fn correct_tracking<'a>(
        &'a self,
        order: &'a ExportOrder,
        replaced: &'a [(TrackingNumber, TrackingNumber)],
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        // The order is read first whatever the attempt: it has the lines' method and numbers.
        Box::pin(self.correct(order, replaced))
    }

    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        // Every attempt reads the order first (for the acknowledgment and the lines' states), so
        // a line an earlier attempt shipped is adopted whether or not this is a retry.
        Box::pin(self.ship(order))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_modified_since(since, page))
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(async move {
            let node = self
                .read_order(channel_order_id)
                .await?
                .ok_or_else(|| ChannelError::permanent(format!("Walmart has no order {channel_order_id}")))?;
            Ok(shipped_lines(channel_order_id, &node))
        })
    }

    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        Box::pin(async move {
            let Some(node) = self.read_order(channel_order_id).await? else { return Ok(None) };
            walmart_order(&node).map(Some).map_err(|reason| {
                ChannelError::permanent(format!("Walmart's order {channel_order_id} cannot be read: {reason}"))
            })
        })
    }

    fn accept_lines<'a>(
        &'a self,
        channel_order_id: &'a ChannelOrderId,
        lines: &'a [IncomingLine],
    ) -> ChannelFuture<'a, ()> {
        Box::pin(self.accept(channel_order_id, lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriers_go_by_walmarts_own_spelling_and_aliases() {
        assert_eq!(walmart_carrier("ups"), Some("UPS"));
        assert_eq!(walmart_carrier("fedex"), Some("FedEx"));
        assert_eq!(walmart_carrier("US Postal"), Some("USPS"));
        assert_eq!(walmart_carrier("DHL eCommerce"), Some("DHL Ecommerce - US"));
        assert_eq!(walmart_carrier("DHL Express"), Some("DHL"));
        assert_eq!(walmart_carrier("Pony Express"), None);
    }

    #[test]
    fn a_cursor_is_only_ever_a_query_string() {
        assert_eq!(
            cursor_parameters("?limit=200&hasMoreElements=true&soIndex=31&poIndex=10"),
            Some(vec![
                ("limit".into(), "200".into()),
                ("hasMoreElements".into(), "true".into()),
                ("soIndex".into(), "31".into()),
                ("poIndex".into(), "10".into()),
            ])
        );
        assert_eq!(cursor_parameters("https://elsewhere.example/v3/orders?limit=1"), None);
        assert_eq!(cursor_parameters("limit=1"), None);
        assert_eq!(cursor_parameters("?"), None);
        // An address hidden in a parameter stays a parameter's value.
        assert_eq!(
            cursor_parameters("?next=https%3A%2F%2Felsewhere.example"),
            Some(vec![("next".into(), "https://elsewhere.example".into())])
        );
    }

    #[test]
    fn an_order_reads_its_quantities_cancellations_prices_and_shipped_units() {
        let order = json!({"purchaseOrderId": "1796277083022", "customerOrderId": "5281956426648",
        "orderDate": 1_772_449_200_000_i64,
        "shippingInfo": {"methodCode": "Value", "postalAddress": {"name": " Kathryn Cole "}},
        "orderLines": {"orderLine": [
            {"lineNumber": "1", "item": {"sku": "WM-1", "productName": "Kettle"}, "statusDate": 1_772_452_800_000_i64,
             "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": "3"},
             "charges": {"charge": [{"chargeType": "PRODUCT", "chargeAmount": {"currency": "USD", "amount": 30}}]},
             "orderLineStatuses": {"orderLineStatus": [
                {"status": "Shipped", "statusQuantity": {"amount": "1"},
                 "trackingInfo": {"trackingNumber": "1Z1", "carrierName": {"carrier": "UPS"}}},
                {"status": "Cancelled", "statusQuantity": {"amount": "1"}},
                {"status": "Acknowledged", "statusQuantity": {"amount": "1"}}]}},
            {"lineNumber": "2", "item": {"sku": "WM-2", "productName": "Mug"}, "statusDate": "1772449300000",
             "orderLineQuantity": {"amount": "1"}, "intentToCancel": "Y",
             "orderLineStatuses": {"orderLineStatus": [{"status": "Created", "statusQuantity": {"amount": "1"}}]}}
        ]}});
        let read = walmart_order(&order).expect("readable");
        assert_eq!(read.customer_name, "Kathryn Cole");
        assert_eq!(read.updated_at, Utc.timestamp_millis_opt(1_772_452_800_000).single().expect("time"));
        let lines: Vec<(&str, u32, bool)> =
            read.lines.iter().map(|l| (l.channel_line_item_id.as_str(), l.quantity, l.awaiting_acceptance)).collect();
        assert_eq!(lines, [("1", 2, false), ("2", 1, true)]);
        assert_eq!(read.lines[0].unit_price, Some(rust_decimal::Decimal::new(10, 0)));
        assert_eq!(read.cancel_requested.as_deref(), Some("the customer asked Walmart to cancel line 2"));
        assert_eq!(read.fulfillments.len(), 1);
        assert_eq!(read.fulfillments[0].lines, [("1".to_owned(), 1)]);
        assert_eq!(read.fulfillments[0].tracking_company.as_deref(), Some("UPS"));
        assert!(!read.cancelled);
        assert_eq!(created_lines(&order), ["2"]);
        assert_eq!(method_code(Some("express"), &order), "Express");
        assert_eq!(method_code(Some("Ground"), &order), "Value");
        assert_eq!(method_code(None, &json!({})), "Standard");
        assert_eq!(
            walmart_order(&json!({"purchaseOrderId": "1"})).err().as_deref(),
            Some("orderDate is required (epoch milliseconds)")
        );
    }

    #[test]
    fn errors_read_either_envelope() {
        let listed = r#"{"errors":[{"code":"INVALID_REQUEST_CONTENT.GMP_ORDER_API","description":"Invalid carrier"}]}"#;
        assert_eq!(walmart_error_message(listed), "INVALID_REQUEST_CONTENT.GMP_ORDER_API: Invalid carrier");
        let nested = r#"{"errors":{"error":[{"code":"UNAUTHORIZED.GMP_GATEWAY_API","info":"Unauthorized token"}]}}"#;
        assert_eq!(walmart_error_message(nested), "UNAUTHORIZED.GMP_GATEWAY_API: Unauthorized token");
        assert_eq!(walmart_error_message("<html>busy</html>"), "<html>busy</html>");
    }

    #[test]
    fn correlation_ids_are_fresh_uuids() {
        let (first, second) = (correlation_id(), correlation_id());
        assert_ne!(first, second);
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "4");
    }
}
