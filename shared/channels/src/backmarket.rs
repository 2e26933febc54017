//! Back Market's seller API (`/ws/orders`). Exports: each order line is validated (state 2) if it
//! is not yet, then shipped (state 3) with its package's tracking number and URL, the carrier, and
//! its units' IMEIs or serial numbers; a line Back Market says needs an IMEI goes out only with
//! one. Reads: orders modified since a time, page by page; an order's shipped lines with its
//! tracking number are its fulfillment. Acceptance: lines awaiting it (state 1) are validated.
//!
//! Back Market publishes no readable reference; the fields and states used here are those the
//! integrations in /work/shared/reference/intake.md §1.3 agree on: order `state` 8 = cancelled;
//! orderline `state` 1 = awaiting validation, 2 = validated, 3 = shipped, 4–7 = cancelled or
//! refunded; orderline `listing` = the seller's SKU.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::shipment::is_imei;
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::info;

use crate::port::{PageReader, page_number};
use crate::{
    Channel, ChannelError, ChannelFuture, ExportLine, ExportOrder, Fulfillment, OrdersPage, packages, path_segment,
    success_body, transport_error,
};

pub const BACK_MARKET_ENDPOINT: &str = "https://www.backmarket.fr";

/// How long to wait when Back Market throttles without saying (its HTML page, a Cloudflare 502):
/// integrators retry after about 30 seconds (intake.md §1.3).
const THROTTLE_WAIT: Duration = Duration::from_secs(30);

/// Orderline states (see the module's note on sources).
const AWAITING_VALIDATION: u64 = 1;
const VALIDATED: u64 = 2;
const SHIPPED: u64 = 3;

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

/// The order line (its index in the order's `orderlines`) that an export line stands for: by its
/// id (the channel line item id), else the first line of its SKU not taken by another export line.
fn orderline_for(orderlines: &[&Value], line: &ExportLine, taken: &[usize]) -> Option<usize> {
    let free = |index: &usize| !taken.contains(index);
    (0..orderlines.len())
        .filter(free)
        .find(|index| {
            orderlines.get(*index).and_then(|found| id_text(&found["id"])).as_deref()
                == Some(&line.channel_line_item_id)
        })
        .or_else(|| {
            (0..orderlines.len()).filter(free).find(|index| {
                orderlines.get(*index).is_some_and(|found| {
                    found["listing"].as_str() == Some(&line.sku) || found["sku"].as_str() == Some(&line.sku)
                })
            })
        })
}

/// The serial codes of a line's units, as the ship confirmation carries them. Back Market takes
/// an IMEI only on an orderline of one unit (channels.md §1.4), in `imei`, 15 characters at
/// most: a one-unit line sends its first IMEI there. Every other code is sent in
/// `serial_number`, comma-joined: the orderline has that one field, and a code left out would be
/// a unit Back Market never hears of (its penalties are for missing codes, not for extra text).
fn serial_fields(line: &ExportLine, body: &mut Value) {
    let codes: Vec<&str> = line.serial_codes.iter().map(|code| code.trim()).filter(|code| !code.is_empty()).collect();
    let imei = (line.quantity == 1).then(|| codes.iter().position(|code| is_imei(code))).flatten();
    if let Some(index) = imei {
        body["imei"] = json!(codes.get(index));
    }
    let others: Vec<&str> =
        codes.iter().enumerate().filter(|(index, _)| Some(*index) != imei).map(|(_, code)| *code).collect();
    if !others.is_empty() {
        body["serial_number"] = json!(others.join(","));
    }
}

/// No `Debug`: it holds the store's token.
#[derive(Clone)]
pub struct BackMarketClient {
    http: reqwest::Client,
    endpoint: String,
    token: String,
}

impl BackMarketClient {
    pub fn new(http: reqwest::Client, endpoint: Option<&str>, token: String) -> Self {
        Self { http, endpoint: endpoint.unwrap_or(BACK_MARKET_ENDPOINT).trim_end_matches('/').to_owned(), token }
    }

    fn order_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!("{}/ws/orders/{}", self.endpoint, path_segment(channel_order_id.as_str()))
    }

    /// Validates and ships each line not shipped yet, each with its package's tracking number;
    /// the order's state says what an earlier attempt did, so every attempt reads it first.
    async fn ship_lines(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        let missing: Vec<&str> = order
            .lines
            .iter()
            .filter(|line| line.needs_imei && !line.serial_codes.iter().any(|code| is_imei(code)))
            .map(|line| line.sku.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ChannelError::permanent(format!(
                "Back Market needs the IMEI of {}: add it to the shipment's serial_codes and it goes out",
                missing.join(", ")
            )));
        }
        // An order line carries one tracking number: a line split over packages cannot be sent.
        let mut seen: Vec<&str> = Vec::new();
        for line in &order.lines {
            if seen.contains(&line.channel_line_item_id.as_str()) {
                return Err(ChannelError::permanent(format!(
                    "Back Market takes one tracking number per order line, and {} is split over packages: \
                     put all of its units in one package",
                    line.sku
                )));
            }
            seen.push(&line.channel_line_item_id);
        }
        let url = self.order_url(&order.channel_order_id);
        let current = self.call(reqwest::Method::GET, &url, None).await?;
        let orderlines: Vec<&Value> = current["orderlines"].as_array().into_iter().flatten().collect();
        let order_id = order_id_value(&order.channel_order_id);
        let packed = packages(order);
        let mut adopted = false;
        // The tracking numbers the lines went under: Back Market's order names its shipment by one
        // of them (its `tracking_number`, which `shipped_lines` reads as the fulfillment's id), so
        // these are the ids a later read of the order is recognised by.
        let mut sent: Vec<String> = Vec::new();
        // Order lines already matched to one of ours: two lines of one SKU are two order lines.
        let mut taken: Vec<usize> = Vec::new();
        for line in &order.lines {
            // The line's own package, else the first package the spread put its units in.
            let tracking = match &line.package {
                Some(package) => package.to_string(),
                None => packed
                    .iter()
                    .find(|package| package.items.iter().any(|(item, _)| *item == line.channel_line_item_id))
                    .map(|package| package.tracking.clone())
                    .unwrap_or_default(),
            };
            if !tracking.is_empty() && !sent.contains(&tracking) {
                sent.push(tracking.clone());
            }
            let state = match orderline_for(&orderlines, line, &taken) {
                Some(index) => {
                    taken.push(index);
                    orderlines.get(index).and_then(|found| found["state"].as_u64()).unwrap_or(0)
                }
                None => 0,
            };
            if state >= SHIPPED {
                // Shipped before (an earlier attempt whose answer was lost): nothing to send again.
                adopted = true;
                continue;
            }
            if state < VALIDATED {
                self.call(
                    reqwest::Method::POST,
                    &url,
                    Some(json!({"order_id": order_id, "new_state": VALIDATED, "sku": line.sku})),
                )
                .await?;
            }
            let tracking_url = TrackingNumber::parse(&tracking)
                .ok()
                .and_then(|number| order.tracking_numbers.iter().position(|listed| listed.same_parcel(&number)))
                .and_then(|index| order.tracking_urls.get(index).cloned())
                .unwrap_or_default();
            let mut body = json!({
                "order_id": order_id,
                "new_state": SHIPPED,
                "sku": line.sku,
                "tracking_number": tracking,
                "tracking_url": tracking_url,
                "shipper": order.carrier_code.clone().unwrap_or_else(|| order.carrier.clone()),
            });
            serial_fields(line, &mut body);
            self.call(reqwest::Method::POST, &url, Some(body)).await?;
            info!(order = %order.channel_order_id, sku = %line.sku, "Back Market order line shipped");
        }
        if sent.is_empty() {
            sent.push(order.channel_order_id.to_string());
        }
        Ok(Fulfillment { channel_ids: sent, adopted })
    }

    /// A page of the orders modified at or after `since`; `page` is the page number the previous
    /// page's `next` named. `next` is a URL, but only its `page` is taken from it: the token goes
    /// only to the store's endpoint.
    async fn orders_modified_since(
        &self,
        since: DateTime<Utc>,
        page: Option<&str>,
    ) -> Result<OrdersPage, ChannelError> {
        let page = page_number(page, "Back Market")?;
        // Back Market's times have no zone; UTC is at or before the time in any European zone
        // its sites use, so a poll reads too much rather than too little.
        let modified = since.format("%Y-%m-%d %H:%M:%S").to_string();
        let url = reqwest::Url::parse_with_params(
            &format!("{}/ws/orders", self.endpoint),
            [("date_modification", modified), ("page", page.to_string())],
        )
        .map_err(|_| ChannelError::permanent("the Back Market endpoint is not a URL"))?;
        let body = self.call(reqwest::Method::GET, url.as_str(), None).await?;
        let listed = body["results"]
            .as_array()
            .ok_or_else(|| ChannelError::retryable("Back Market listed orders without results"))?;
        let mut read = PageReader::default();
        for node in listed {
            read.add("Back Market", "order_id", node.clone(), back_market_order(node));
        }
        let next = body["next"]
            .as_str()
            .filter(|_| !listed.is_empty())
            .map(|next| next_page(next).unwrap_or(page.saturating_add(1)).to_string());
        Ok(read.page(next))
    }

    /// One order as Back Market holds it: `None` when it does not know it.
    async fn one_order(&self, channel_order_id: &ChannelOrderId) -> Result<Option<Value>, ChannelError> {
        self.read(&self.order_url(channel_order_id)).await
    }

    /// Validates (state 2) the given lines that Back Market still holds for acceptance (state 1).
    /// The order is read first, so a line accepted already is not sent again.
    async fn accept(&self, channel_order_id: &ChannelOrderId, lines: &[IncomingLine]) -> Result<(), ChannelError> {
        if lines.is_empty() {
            return Ok(());
        }
        let node = self
            .one_order(channel_order_id)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Back Market has no order {channel_order_id}")))?;
        let order_id = order_id_value(channel_order_id);
        let url = self.order_url(channel_order_id);
        for orderline in node["orderlines"].as_array().into_iter().flatten() {
            let Some(id) = id_text(&orderline["id"]) else { continue };
            if !lines.iter().any(|line| line.channel_line_item_id == id) {
                continue;
            }
            if orderline["state"].as_u64() != Some(AWAITING_VALIDATION) {
                continue;
            }
            let Some(listing) = orderline["listing"].as_str() else {
                return Err(ChannelError::permanent(format!(
                    "Back Market's order line {id} of order {channel_order_id} names no listing to accept"
                )));
            };
            self.call(
                reqwest::Method::POST,
                &url,
                Some(json!({"order_id": order_id, "new_state": VALIDATED, "sku": listing})),
            )
            .await?;
            info!(order = %channel_order_id, line = %id, "Back Market order line accepted");
        }
        Ok(())
    }

    /// Calls Back Market: the answer, `Value::Null` for a POST's that is not JSON (it is not read).
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Result<Value, ChannelError> {
        self.send(method, url, body)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("Back Market answered HTTP 404 (no such order) at {url}")))
    }

    /// Reads one order: `None` when Back Market answers 404.
    async fn read(&self, url: &str) -> Result<Option<Value>, ChannelError> {
        self.send(reqwest::Method::GET, url, None).await
    }

    /// One request. Its throttle page (HTML, whatever the status) and a 429 or 5xx are retryable,
    /// after [`THROTTLE_WAIT`] unless it says how long; a GET must answer JSON (an unreadable
    /// order state is no state); `None`: 404.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, ChannelError> {
        let reading = method == reqwest::Method::GET;
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {}", self.token))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::ACCEPT_LANGUAGE, "en-gb");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text =
            success_body(response, |text| format!("Back Market: {text}")).await.map_err(|error| match error {
                ChannelError::Retryable { message, retry_after } => {
                    ChannelError::Retryable { message, retry_after: retry_after.or(Some(THROTTLE_WAIT)) }
                }
                other => other,
            })?;
        if text.trim_start().starts_with('<') {
            return Err(ChannelError::Retryable {
                message: "Back Market answered a web page (its throttle page) instead of JSON".into(),
                retry_after: Some(THROTTLE_WAIT),
            });
        }
        match serde_json::from_str(&text) {
            Ok(value) => Ok(Some(value)),
            Err(_) if reading => {
                Err(ChannelError::retryable(format!("Back Market answered something that is not JSON: {text:.200}")))
            }
            Err(_) => Ok(Some(Value::Null)),
        }
    }
}

/// The order id as Back Market's bodies carry it: a number when it is one.
fn order_id_value(channel_order_id: &ChannelOrderId) -> Value {
    channel_order_id.as_str().parse::<u64>().map_or_else(|_| json!(channel_order_id), |n| json!(n))
}

/// The `page` a `next` URL names, if it names one.
fn next_page(next: &str) -> Option<u64> {
    let url = reqwest::Url::parse(next).ok()?;
    url.query_pairs().find(|(name, _)| name == "page").and_then(|(_, value)| value.parse().ok())
}

/// A time as Back Market writes it: RFC 3339 (`2026-03-02T12:00:00+01:00`), or without a zone
/// (`2026-03-02 12:00:00`, read as UTC).
fn back_market_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).ok().or_else(|| {
        ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .map(|time| time.and_utc())
    })
}

/// Whether Back Market says a line's unit needs its IMEI on the ship confirmation. Sources: the
/// IMEI is mandatory for the Smartphones category, and attachable only to an orderline of one
/// unit (ChannelEngine's Back Market IMEI article, channels.md §1.4). `/ws/orders` orderlines
/// carry no category in the integrations' types (intake.md §1.3); some answers carry the
/// listing's snapshot, `snapshot.product.category_3.category_name` (seen in one integration's
/// `BackmarketListingSnapshot`). So: with a category, a one-unit line of a category naming
/// phones; without one, every one-unit line, as before (a missing IMEI is penalised, while an
/// export held for a serial code a person can add is not).
fn needs_imei(orderline: &Value, quantity: u32) -> bool {
    if quantity != 1 {
        return false;
    }
    let category = [
        &orderline["snapshot"]["product"]["category_3"]["category_name"],
        &orderline["category"],
        &orderline["category_name"],
    ]
    .into_iter()
    .find_map(|value| value.as_str().map(str::trim).filter(|name| !name.is_empty()).map(str::to_lowercase));
    category.is_none_or(|name| name.contains("phone"))
}

/// A `/ws/orders` order as shipsync reads it; or which field is wrong.
fn back_market_order(node: &Value) -> Result<IncomingOrder, String> {
    let order_id = id_text(&node["order_id"]).ok_or("order_id is required")?;
    let modified = node["date_modification"].as_str().ok_or("date_modification is required")?;
    let updated_at = back_market_time(modified).ok_or("date_modification is not a time")?;
    let cancelled = node["state"].as_u64() == Some(8);
    let orderlines = node["orderlines"].as_array().ok_or("orderlines is required")?;
    let mut lines = Vec::with_capacity(orderlines.len());
    for (index, orderline) in orderlines.iter().enumerate() {
        let field = |name: &str| format!("orderlines[{index}].{name}");
        let state = orderline["state"].as_u64().ok_or_else(|| format!("{} is required", field("state")))?;
        let ordered = orderline["quantity"]
            .as_u64()
            .and_then(|quantity| u32::try_from(quantity).ok())
            .ok_or_else(|| format!("{} must be a whole number, 0 or more", field("quantity")))?;
        // States 4 to 7: cancelled or refunded, nothing left ordered.
        let quantity = if (4..=7).contains(&state) { 0 } else { ordered };
        lines.push(IncomingLine {
            channel_line_item_id: id_text(&orderline["id"]).ok_or_else(|| format!("{} is required", field("id")))?,
            sku: orderline["listing"].as_str().and_then(Sku::received),
            name: orderline["product"].as_str().unwrap_or_default().to_owned(),
            quantity,
            unit_price: match &orderline["price"] {
                Value::String(price) => price.trim().parse().ok(),
                Value::Number(price) => price.to_string().parse().ok(),
                _ => None,
            },
            awaiting_acceptance: state == AWAITING_VALIDATION,
            needs_imei: needs_imei(orderline, ordered),
        });
    }
    let address = &node["shipping_address"];
    let part = |snake: &str, camel: &str| address[snake].as_str().or_else(|| address[camel].as_str()).map(str::trim);
    let customer_name = [part("first_name", "firstName"), part("last_name", "lastName")]
        .into_iter()
        .flatten()
        .filter(|name| !name.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let channel_order_id = ChannelOrderId::received(order_id.clone());
    Ok(IncomingOrder {
        fulfillments: shipped_lines(&channel_order_id, node),
        channel_order_id,
        number: order_id,
        customer_name,
        updated_at,
        cancelled,
        lines,
        cancel_requested: None,
    })
}

/// The order's shipment as Back Market holds it: its shipped lines (state 3) under the order's
/// tracking number, one fulfillment per tracking number (named after it). Without a tracking
/// number there is nothing to match a shipment by: none.
fn shipped_lines(channel_order_id: &ChannelOrderId, node: &Value) -> Vec<IncomingFulfillment> {
    let Some(tracking) = node["tracking_number"].as_str().and_then(|number| TrackingNumber::parse(number).ok()) else {
        return Vec::new();
    };
    let lines: Vec<(String, u32)> = node["orderlines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|orderline| orderline["state"].as_u64() == Some(SHIPPED))
        .filter_map(|orderline| {
            let quantity = orderline["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok())?;
            Some((id_text(&orderline["id"])?, quantity))
        })
        .collect();
    if lines.is_empty() {
        return Vec::new();
    }
    vec![IncomingFulfillment {
        channel_fulfillment_id: tracking.to_string(),
        channel_order_id: channel_order_id.clone(),
        lines,
        tracking_numbers: vec![tracking],
        tracking_company: node["shipper"].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
        cancelled: false,
    }]
}

impl Channel for BackMarketClient {
    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.ship_lines(order))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_modified_since(since, page))
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(async move {
            let node = self
                .one_order(channel_order_id)
                .await?
                .ok_or_else(|| ChannelError::permanent(format!("Back Market has no order {channel_order_id}")))?;
            Ok(shipped_lines(channel_order_id, &node))
        })
    }

    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        Box::pin(async move {
            let Some(node) = self.one_order(channel_order_id).await? else { return Ok(None) };
            back_market_order(&node).map(Some).map_err(|reason| {
                ChannelError::permanent(format!("Back Market's order {channel_order_id} cannot be read: {reason}"))
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
    fn serials_go_out_whole_and_imeis_only_on_one_unit_lines() {
        let line = |quantity, codes: &[&str]| ExportLine {
            channel_line_item_id: "1".into(),
            quantity,
            sku: "s".into(),
            serial_codes: codes.iter().map(|code| (*code).to_owned()).collect(),
            package: None,
            needs_imei: false,
        };
        let fields = |line: ExportLine| {
            let mut body = json!({});
            serial_fields(&line, &mut body);
            body
        };
        assert_eq!(fields(line(1, &["356938035643809"])), json!({"imei": "356938035643809"}));
        assert_eq!(fields(line(1, &["SN-1"])), json!({"serial_number": "SN-1"}));
        assert_eq!(
            fields(line(1, &["SN-1", "356938035643809"])),
            json!({"imei": "356938035643809", "serial_number": "SN-1"})
        );
        assert_eq!(
            fields(line(2, &["356938035643809", "356938035643800"])),
            json!({"serial_number": "356938035643809,356938035643800"})
        );
        assert_eq!(fields(line(1, &[])), json!({}));
    }

    #[test]
    fn times_with_and_without_zone_and_imei_needs() {
        assert_eq!(back_market_time("2026-03-02 12:00:00"), "2026-03-02T12:00:00Z".parse().ok());
        assert_eq!(back_market_time("2026-03-02T13:00:00+01:00"), "2026-03-02T12:00:00Z".parse().ok());
        assert_eq!(back_market_time("soon"), None);
        let phone = json!({"snapshot": {"product": {"category_3": {"category_name": "Smartphones"}}}});
        let laptop = json!({"snapshot": {"product": {"category_3": {"category_name": "Laptops"}}}});
        assert!(needs_imei(&phone, 1));
        assert!(!needs_imei(&phone, 2));
        assert!(!needs_imei(&laptop, 1));
        assert!(needs_imei(&json!({}), 1), "without a category, a one-unit line is presumed a phone");
        assert_eq!(next_page("https://elsewhere.example/ws/orders?date_modification=x&page=3"), Some(3));
        assert_eq!(next_page("not a url"), None);
    }
}
