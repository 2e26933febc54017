//! WooCommerce (REST API v3) on the seller's own site. Reads: `GET /wp-json/wc/v3/orders` by
//! `modified_after` (GMT), oldest first, 100 a page, paged by `X-WP-TotalPages`; one order by
//! `GET /wp-json/wc/v3/orders/{id}`. Orders also arrive by signed webhooks
//! ([`read_woocommerce_order`] reads both). Exports: WooCommerce core has no shipment resource,
//! so each export finds which the site has, by reading the order's shipments first (which also
//! adopts what an earlier attempt left): the core **Order Fulfillments** routes
//! (`/wp-json/wc/v3/orders/{id}/fulfillments`, 404 when the feature is off), one fulfilled
//! fulfillment per package with its items and tracking in `meta_data`; else the **Shipment
//! Tracking** extension (`/wp-json/wc-shipment-tracking/v3/orders/{id}/shipment-trackings`), one
//! tracking item per package. A site with neither is told what to install.
//!
//! Sources: woocommerce-rest-api-docs and WooCommerce core (`OrderFulfillmentsRestController`,
//! `Fulfillment::get_items`, the `_tracking_number`, `_tracking_url`, `_shipment_provider` and
//! `_items` meta keys), and the Shipment Tracking extension's REST documentation, in
//! /work/shared/reference/intake.md §1.8 and channels.md §1.5.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::info;

use crate::port::{PageReader, first_name, page_number};
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, packages, path_segment, success_body,
    transport_error,
};

/// Orders a page holds (WordPress's maximum).
pub const WOOCOMMERCE_ORDERS_PER_PAGE: u32 = 100;

/// The header WooCommerce signs its webhooks in: base64 of HMAC-SHA256 over the raw body.
pub const WOOCOMMERCE_SIGNATURE_HEADER: &str = "x-wc-webhook-signature";

/// Statuses of an order not paid for yet: nothing to ship, so not taken in (it is read again
/// when it moves on, which changes its modification time).
const NOT_READY: [&str; 3] = ["pending", "on-hold", "checkout-draft"];
/// Statuses that end an order unshipped.
const ENDED: [&str; 4] = ["cancelled", "refunded", "failed", "trash"];

/// The order meta key under which shipsync records a shipment's units, for the store that has
/// orders completed once fully shipped: `_shipsync_shipment_<id>`, one per shipment, so that a
/// retry rewrites its own and the parts add up whatever the site keeps its shipments in.
const SHIPPED_META_PREFIX: &str = "_shipsync_shipment_";

/// Statuses an order is not completed from (already there, or ended unshipped).
const NOT_COMPLETED_FROM: [&str; 5] = ["completed", "cancelled", "refunded", "failed", "trash"];

/// No `Debug`: it holds the site's API keys.
#[derive(Clone)]
pub struct WooCommerceClient {
    http: reqwest::Client,
    site: String,
    consumer_key: String,
    consumer_secret: String,
    /// Moves an order to `completed` once every unit of it has shipped (the store's
    /// `complete_order_when_shipped`), which sends WooCommerce's "order complete" email.
    complete_when_shipped: bool,
}

/// Where a site keeps its shipments.
#[derive(Debug, Clone, PartialEq)]
enum ShipmentStore {
    /// Core Order Fulfillments: the order's fulfillments as listed.
    Fulfillments(Vec<Value>),
    /// The Shipment Tracking extension: the order's tracking items as listed.
    ShipmentTracking(Vec<Value>),
}

impl WooCommerceClient {
    /// `http` should refuse private addresses: the site is the seller's ([`crate::PublicOnlyResolver`]).
    pub fn new(http: reqwest::Client, site: &str, consumer_key: String, consumer_secret: String) -> Self {
        Self {
            http,
            site: site.trim_end_matches('/').to_owned(),
            consumer_key,
            consumer_secret,
            complete_when_shipped: false,
        }
    }

    /// Completes orders once fully shipped (the store's `complete_order_when_shipped`).
    pub fn completing_orders(mut self, complete_when_shipped: bool) -> Self {
        self.complete_when_shipped = complete_when_shipped;
        self
    }

    fn order_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!("{}/wp-json/wc/v3/orders/{}", self.site, path_segment(channel_order_id.as_str()))
    }

    fn fulfillments_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!("{}/fulfillments", self.order_url(channel_order_id))
    }

    fn trackings_url(&self, channel_order_id: &ChannelOrderId) -> String {
        format!(
            "{}/wp-json/wc-shipment-tracking/v3/orders/{}/shipment-trackings",
            self.site,
            path_segment(channel_order_id.as_str())
        )
    }

    /// One call, authenticated with the site's keys (HTTP Basic over HTTPS, as WooCommerce
    /// documents); `None`: 404 (no such order, or no such route).
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<(Value, reqwest::header::HeaderMap)>, ChannelError> {
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(&self.consumer_key, Some(&self.consumer_secret))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let headers = response.headers().clone();
        let text = success_body(response, |text| format!("WooCommerce: {}", woocommerce_message(text))).await?;
        let value = serde_json::from_str(&text).map_err(|_| {
            ChannelError::retryable(format!("WooCommerce answered something that is not JSON: {text:.200}"))
        })?;
        Ok(Some((value, headers)))
    }

    /// The order's shipments, and where the site keeps them; Err when it has neither place.
    async fn shipment_store(&self, channel_order_id: &ChannelOrderId) -> Result<ShipmentStore, ChannelError> {
        let listed = |body: Value| body.as_array().cloned().unwrap_or_default();
        if let Some((body, _)) = self.call(reqwest::Method::GET, &self.fulfillments_url(channel_order_id), None).await?
        {
            return Ok(ShipmentStore::Fulfillments(listed(body)));
        }
        if let Some((body, _)) = self.call(reqwest::Method::GET, &self.trackings_url(channel_order_id), None).await? {
            return Ok(ShipmentStore::ShipmentTracking(listed(body)));
        }
        Err(ChannelError::permanent(format!(
            "the WooCommerce site has neither Order Fulfillments (turn the feature on) nor the Shipment Tracking \
             extension for order {channel_order_id}, or it has no such order"
        )))
    }

    /// One shipment per package, in the place the site keeps them; a package already there (by
    /// tracking number) is adopted.
    async fn ship(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        let store = self.shipment_store(&order.channel_order_id).await?;
        let held: Vec<(TrackingNumber, String)> = match &store {
            ShipmentStore::Fulfillments(listed) => listed.iter().filter_map(fulfillment_tracking).collect(),
            ShipmentStore::ShipmentTracking(listed) => listed.iter().filter_map(tracking_item).collect(),
        };
        let mut ids = Vec::new();
        let mut adopted = false;
        for package in packages(order) {
            let mine = TrackingNumber::parse(&package.tracking).ok();
            if let Some((_, id)) = held.iter().find(|(listed, _)| mine.as_ref().is_some_and(|m| m.same_parcel(listed)))
            {
                info!(order = %order.channel_order_id, shipment = %id, "WooCommerce already has this package: adopted");
                adopted = true;
                ids.push(id.clone());
                continue;
            }
            let url = order.tracking_urls.get(package.index).cloned();
            let (target, body) = match &store {
                ShipmentStore::Fulfillments(_) => {
                    let items: Vec<Value> = package
                        .items
                        .iter()
                        .map(|(line, quantity)| json!({"item_id": line.parse::<u64>().map_or_else(|_| json!(line), |n| json!(n)), "qty": quantity}))
                        .collect();
                    let meta = |key: &str, value: Value| json!({"key": key, "value": value});
                    let mut meta_data = vec![
                        meta("_items", json!(items)),
                        meta("_tracking_number", json!(package.tracking)),
                        meta("_shipment_provider", json!(order.carrier)),
                    ];
                    if let Some(url) = &url {
                        meta_data.push(meta("_tracking_url", json!(url)));
                    }
                    let body = json!({"status": "fulfilled", "is_fulfilled": true,
                        "notify_customer": order.notify_customer, "meta_data": meta_data});
                    (self.fulfillments_url(&order.channel_order_id), body)
                }
                ShipmentStore::ShipmentTracking(_) => {
                    let shipped = order.shipped_at.format("%Y-%m-%d").to_string();
                    let body = match &url {
                        Some(url) => json!({"custom_tracking_provider": order.carrier, "custom_tracking_link": url,
                            "tracking_number": package.tracking, "date_shipped": shipped}),
                        None => json!({"tracking_provider": order.carrier, "tracking_number": package.tracking,
                            "date_shipped": shipped}),
                    };
                    (self.trackings_url(&order.channel_order_id), body)
                }
            };
            let (created, _) = self.call(reqwest::Method::POST, &target, Some(&body)).await?.ok_or_else(|| {
                ChannelError::permanent(format!("WooCommerce has no order {} to ship", order.channel_order_id))
            })?;
            let id = text_of(&created["id"]).or_else(|| text_of(&created["tracking_id"])).unwrap_or(package.tracking);
            info!(order = %order.channel_order_id, shipment = %id, "WooCommerce shipment created");
            ids.push(id);
        }
        if self.complete_when_shipped {
            // A failure here leaves the shipment at the site: the retry adopts it and comes back here.
            self.record_shipped(order).await.map_err(|error| {
                let message = format!(
                    "the shipment is at WooCommerce ({}), but recording it on the order to complete it failed: {error}",
                    ids.join(", ")
                );
                match error {
                    ChannelError::Retryable { retry_after, .. } => ChannelError::Retryable { message, retry_after },
                    _ => ChannelError::permanent(message),
                }
            })?;
        }
        Ok(Fulfillment { channel_ids: ids, adopted })
    }

    /// Records the shipment's units on the order (its own meta key) and, once the units shipsync
    /// has recorded cover every line, moves the order to `completed`, in one update.
    async fn record_shipped(&self, order: &ExportOrder) -> Result<(), ChannelError> {
        let node = self
            .read_one(&order.channel_order_id)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("WooCommerce has no order {}", order.channel_order_id)))?;
        let key = format!("{SHIPPED_META_PREFIX}{}", order.shipment_id);
        let mut units: Vec<(String, u32)> = Vec::new();
        for line in order.lines.iter().filter(|line| line.quantity > 0) {
            match units.iter_mut().find(|(id, _)| *id == line.channel_line_item_id) {
                Some((_, quantity)) => *quantity += line.quantity,
                None => units.push((line.channel_line_item_id.clone(), line.quantity)),
            }
        }
        let complete = order_fully_shipped(&node, &key, &units);
        let status = node["status"].as_str().unwrap_or_default();
        let recorded: Vec<Value> = units.iter().map(|(line, qty)| json!({"item_id": line, "qty": qty})).collect();
        let mut body = json!({"meta_data": [{"key": key, "value": recorded}]});
        if complete && !NOT_COMPLETED_FROM.contains(&status) {
            body["status"] = json!("completed");
        }
        self.call(reqwest::Method::PUT, &self.order_url(&order.channel_order_id), Some(&body))
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("WooCommerce has no order {}", order.channel_order_id)))?;
        info!(order = %order.channel_order_id, completed = body.get("status").is_some(), "WooCommerce order updated");
        Ok(())
    }

    /// Cancels the whole order (`status: cancelled`, with the reason as a private order note).
    /// Setting a status it has already is no change, so a retry needs no check: an order
    /// already cancelled is adopted.
    async fn cancel_order(&self, cancellation: &crate::CancelOrder) -> Result<Vec<String>, ChannelError> {
        let order = &cancellation.channel_order_id;
        if !cancellation.whole_order {
            return Err(ChannelError::permanent("WooCommerce cancels whole orders only"));
        }
        let node = self
            .read_one(order)
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("WooCommerce has no order {order}")))?;
        let status = node["status"].as_str().unwrap_or_default();
        if status == "cancelled" {
            info!(%order, "WooCommerce order already cancelled: adopted");
            return Ok(vec![order.to_string()]);
        }
        if ["completed", "refunded"].contains(&status) {
            return Err(ChannelError::permanent(format!("the WooCommerce order is {status}: it cannot be cancelled")));
        }
        let note = crate::shopify::cancel_note(cancellation);
        let body = json!({"status": "cancelled", "meta_data": [{"key": "_shipsync_cancellation", "value": note}]});
        self.call(reqwest::Method::PUT, &self.order_url(order), Some(&body))
            .await?
            .ok_or_else(|| ChannelError::permanent(format!("WooCommerce has no order {order}")))?;
        info!(%order, "WooCommerce order cancelled");
        Ok(vec![order.to_string()])
    }

    /// A page of the orders modified at or after `since`, oldest first; `page` is the page number
    /// the previous page named.
    async fn orders_modified_since(
        &self,
        since: DateTime<Utc>,
        page: Option<&str>,
    ) -> Result<OrdersPage, ChannelError> {
        let page = page_number(page, "WooCommerce")?;
        let url = reqwest::Url::parse_with_params(
            &format!("{}/wp-json/wc/v3/orders", self.site),
            [
                ("modified_after", since.format("%Y-%m-%dT%H:%M:%S").to_string()),
                ("dates_are_gmt", "true".to_owned()),
                ("orderby", "modified".to_owned()),
                ("order", "asc".to_owned()),
                ("per_page", WOOCOMMERCE_ORDERS_PER_PAGE.to_string()),
                ("page", page.to_string()),
            ],
        )
        .map_err(|_| ChannelError::permanent("the WooCommerce site is not a URL"))?;
        let (body, headers) = self.call(reqwest::Method::GET, url.as_str(), None).await?.ok_or_else(|| {
            ChannelError::permanent("the WooCommerce site has no /wp-json/wc/v3/orders (is the REST API on?)")
        })?;
        let listed =
            body.as_array().ok_or_else(|| ChannelError::retryable("WooCommerce listed orders that are not a list"))?;
        let mut read = PageReader::default();
        for node in listed {
            match read_woocommerce_order(node) {
                Ok(Some(mut order)) => {
                    // A completed order was shipped: its fulfillments say how (one read, only for those).
                    if node["status"] == "completed" {
                        order.fulfillments = self.order_fulfillments(&order.channel_order_id).await?;
                    }
                    read.add("WooCommerce", "id", node.clone(), Ok(order));
                }
                Ok(None) => {}
                Err(reason) => read.add("WooCommerce", "id", node.clone(), Err(reason)),
            }
        }
        let pages = headers
            .get("x-wp-totalpages")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(page);
        let next = (page < pages && !listed.is_empty()).then(|| (page + 1).to_string());
        Ok(read.page(next))
    }

    /// The order's core fulfillments, as shipsync reads a channel's; none where the site keeps
    /// Shipment Tracking items (they name no order lines to reverse-sync by).
    async fn order_fulfillments(
        &self,
        channel_order_id: &ChannelOrderId,
    ) -> Result<Vec<IncomingFulfillment>, ChannelError> {
        match self.call(reqwest::Method::GET, &self.fulfillments_url(channel_order_id), None).await? {
            Some((body, _)) => Ok(incoming_fulfillments(channel_order_id, body.as_array().map_or(&[], Vec::as_slice))),
            None => Ok(Vec::new()),
        }
    }

    async fn read_one(&self, channel_order_id: &ChannelOrderId) -> Result<Option<Value>, ChannelError> {
        Ok(self.call(reqwest::Method::GET, &self.order_url(channel_order_id), None).await?.map(|(body, _)| body))
    }
}

/// Whether every line of a WooCommerce order (`node`) has shipped, counting the units shipsync
/// recorded on it for its other shipments and `units` for this one (`key`).
fn order_fully_shipped(node: &Value, key: &str, units: &[(String, u32)]) -> bool {
    let mut shipped: Vec<(String, u64)> = units.iter().map(|(line, qty)| (line.clone(), u64::from(*qty))).collect();
    let recorded =
        node["meta_data"].as_array().into_iter().flatten().filter(|meta| {
            meta["key"].as_str().is_some_and(|name| name.starts_with(SHIPPED_META_PREFIX) && name != key)
        });
    for entry in recorded.flat_map(|meta| meta["value"].as_array().cloned().unwrap_or_default()) {
        let (Some(line), Some(qty)) = (text_of(&entry["item_id"]), entry["qty"].as_u64()) else { continue };
        match shipped.iter_mut().find(|(id, _)| *id == line) {
            Some((_, total)) => *total = total.saturating_add(qty),
            None => shipped.push((line, qty)),
        }
    }
    let lines = node["line_items"].as_array().map_or(&[][..], Vec::as_slice);
    !lines.is_empty()
        && lines.iter().all(|line| {
            let ordered = line["quantity"].as_u64().unwrap_or(0);
            let id = text_of(&line["id"]).unwrap_or_default();
            ordered == 0 || shipped.iter().any(|(shipped_id, total)| *shipped_id == id && *total >= ordered)
        })
}

/// WordPress's error message (`{code, message, data}`), or the body.
fn woocommerce_message(text: &str) -> String {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match (body["code"].as_str(), body["message"].as_str()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message.to_owned(),
        _ => text.chars().take(300).collect(),
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

/// A meta value of a fulfillment, by key.
fn meta<'a>(fulfillment: &'a Value, key: &str) -> Option<&'a Value> {
    fulfillment["meta_data"].as_array()?.iter().find(|entry| entry["key"] == key).map(|entry| &entry["value"])
}

/// A core fulfillment's tracking number and id (a deleted one is none).
fn fulfillment_tracking(fulfillment: &Value) -> Option<(TrackingNumber, String)> {
    if !fulfillment["date_deleted"].is_null() {
        return None;
    }
    let number = TrackingNumber::parse(meta(fulfillment, "_tracking_number")?.as_str()?).ok()?;
    Some((number, text_of(&fulfillment["id"])?))
}

/// A Shipment Tracking item's tracking number and id.
fn tracking_item(item: &Value) -> Option<(TrackingNumber, String)> {
    let number = TrackingNumber::parse(item["tracking_number"].as_str()?).ok()?;
    Some((number, text_of(&item["tracking_id"])?))
}

/// A time WooCommerce writes in GMT without a zone (`2026-12-07T09:00:00`), or with one.
fn woocommerce_time(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.to_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok().map(|time| time.and_utc()))
}

/// A WooCommerce order (as the REST API and its webhooks write it) as shipsync reads it;
/// `Ok(None)` for an order not paid for yet (nothing to ship); or which field is wrong.
pub fn read_woocommerce_order(node: &Value) -> Result<Option<IncomingOrder>, String> {
    let id = text_of(&node["id"]).ok_or("id is required")?;
    let status = node["status"].as_str().unwrap_or_default().trim().to_lowercase();
    if NOT_READY.contains(&status.as_str()) {
        return Ok(None);
    }
    let updated_at = woocommerce_time(&node["date_modified_gmt"])
        .or_else(|| woocommerce_time(&node["date_modified"]))
        .ok_or("date_modified_gmt is required")?;
    let items = node["line_items"].as_array().ok_or("line_items is required")?;
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("line_items[{index}].{name}");
        let quantity = item["quantity"]
            .as_u64()
            .and_then(|quantity| u32::try_from(quantity).ok())
            .ok_or_else(|| format!("{} must be a whole number, 0 or more", field("quantity")))?;
        lines.push(IncomingLine {
            channel_line_item_id: text_of(&item["id"]).ok_or_else(|| format!("{} is required", field("id")))?,
            sku: item["sku"].as_str().and_then(Sku::received),
            name: item["name"].as_str().unwrap_or_default().trim().to_owned(),
            quantity,
            unit_price: match &item["price"] {
                Value::Number(price) => price.to_string().parse().ok(),
                Value::String(price) => price.trim().parse().ok(),
                _ => None,
            },
            awaiting_acceptance: false,
            needs_imei: false,
        });
    }
    let name = |part: &Value| {
        let joined = [part["first_name"].as_str(), part["last_name"].as_str()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        (!joined.is_empty()).then_some(joined)
    };
    let shipping = name(&node["shipping"]);
    let billing = name(&node["billing"]);
    let channel_order_id = ChannelOrderId::received(id.clone());
    Ok(Some(IncomingOrder {
        fulfillments: Vec::new(),
        number: text_of(&node["number"]).unwrap_or_else(|| id.clone()),
        channel_order_id,
        customer_name: first_name([shipping.as_deref(), billing.as_deref()]),
        updated_at,
        cancelled: ENDED.contains(&status.as_str()),
        lines,
        cancel_requested: None,
    }))
}

/// The order's core fulfillments as shipsync reads a channel's (their items and tracking).
fn incoming_fulfillments(channel_order_id: &ChannelOrderId, listed: &[Value]) -> Vec<IncomingFulfillment> {
    listed
        .iter()
        .filter(|fulfillment| fulfillment["date_deleted"].is_null() && fulfillment["is_fulfilled"] == true)
        .filter_map(|fulfillment| {
            let lines: Vec<(String, u32)> = meta(fulfillment, "_items")?
                .as_array()?
                .iter()
                .map(|item| Some((text_of(&item["item_id"])?, u32::try_from(item["qty"].as_u64()?).ok()?)))
                .collect::<Option<_>>()?;
            let tracking = meta(fulfillment, "_tracking_number")
                .and_then(Value::as_str)
                .and_then(|number| TrackingNumber::parse(number).ok());
            Some(IncomingFulfillment {
                channel_fulfillment_id: text_of(&fulfillment["id"])?,
                channel_order_id: channel_order_id.clone(),
                lines,
                tracking_numbers: tracking.into_iter().collect(),
                tracking_company: meta(fulfillment, "_shipment_provider").and_then(Value::as_str).map(str::to_owned),
                cancelled: false,
            })
        })
        .collect()
}

impl Channel for WooCommerceClient {
    fn cancel<'a>(
        &'a self,
        cancellation: &'a crate::CancelOrder,
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        // Every attempt reads the order first: a cancelled one is adopted.
        Box::pin(self.cancel_order(cancellation))
    }

    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        // Every attempt reads the order's shipments first (to find where the site keeps them),
        // so a package an earlier attempt created is adopted whether or not this is a retry.
        Box::pin(self.ship(order))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_modified_since(since, page))
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(self.order_fulfillments(channel_order_id))
    }

    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        Box::pin(async move {
            let Some(node) = self.read_one(channel_order_id).await? else { return Ok(None) };
            read_woocommerce_order(&node).map_err(|reason| {
                ChannelError::permanent(format!("WooCommerce's order {channel_order_id} cannot be read: {reason}"))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_fully_shipped_once_the_recorded_parts_cover_every_line() {
        let node = json!({"status": "processing",
            "line_items": [{"id": 31, "quantity": 2}, {"id": 32, "quantity": 1}, {"id": 33, "quantity": 0}],
            "meta_data": [{"key": "_shipsync_shipment_7", "value": [{"item_id": "31", "qty": 2}]},
                          {"key": "_other", "value": [{"item_id": "32", "qty": 1}]}]});
        let second = [("32".to_owned(), 1)];
        assert!(order_fully_shipped(&node, "_shipsync_shipment_8", &second));
        assert!(!order_fully_shipped(&node, "_shipsync_shipment_7", &second), "a retry counts its own part once");
        assert!(!order_fully_shipped(&node, "_shipsync_shipment_8", &[]), "line 32 open");
        assert!(!order_fully_shipped(&json!({"line_items": []}), "k", &second), "no lines: nothing to complete");
    }

    #[test]
    fn orders_read_their_lines_names_and_statuses() {
        let order = json!({"id": 727, "number": "727", "status": "processing",
            "date_modified_gmt": "2026-12-07T09:00:00",
            "shipping": {"first_name": "Ann", "last_name": "Example"}, "billing": {"first_name": "Bill"},
            "line_items": [{"id": 315, "sku": "WC-1", "name": "Lamp", "quantity": 2, "price": 19.5}]});
        let read = read_woocommerce_order(&order).expect("readable").expect("ready");
        assert_eq!((read.number.as_str(), read.customer_name.as_str()), ("727", "Ann Example"));
        assert_eq!(read.updated_at, "2026-12-07T09:00:00Z".parse::<DateTime<Utc>>().expect("time"));
        assert_eq!((read.lines[0].channel_line_item_id.as_str(), read.lines[0].quantity), ("315", 2));
        assert!(!read.cancelled);
        let mut pending = order.clone();
        pending["status"] = json!("pending");
        assert_eq!(read_woocommerce_order(&pending), Ok(None), "not paid for: nothing to ship");
        let mut cancelled = order.clone();
        cancelled["status"] = json!("cancelled");
        assert!(read_woocommerce_order(&cancelled).expect("readable").expect("an order").cancelled);
        let mut broken = order;
        broken["line_items"][0]["quantity"] = json!(-1);
        assert_eq!(
            read_woocommerce_order(&broken).err().as_deref(),
            Some("line_items[0].quantity must be a whole number, 0 or more")
        );
    }

    #[test]
    fn fulfillments_read_items_and_tracking_and_skip_the_deleted() {
        let listed = [
            json!({"id": 9, "is_fulfilled": true, "date_deleted": null, "meta_data": [
                {"key": "_items", "value": [{"item_id": 315, "qty": 1}]},
                {"key": "_tracking_number", "value": "1Z1"}, {"key": "_shipment_provider", "value": "ups"}]}),
            json!({"id": 10, "is_fulfilled": true, "date_deleted": "2026-12-07T10:00:00Z", "meta_data": []}),
        ];
        let id = ChannelOrderId::received("727");
        let read = incoming_fulfillments(&id, &listed);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].lines, [("315".to_owned(), 1)]);
        assert_eq!(fulfillment_tracking(&listed[0]).map(|(_, id)| id).as_deref(), Some("9"));
        assert_eq!(fulfillment_tracking(&listed[1]), None);
        assert_eq!(woocommerce_message(r#"{"code":"rest_no_route","message":"No route"}"#), "rest_no_route: No route");
    }
}
