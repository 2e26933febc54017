//! Back Market's seller API: each order line is validated (state 2) if it is not yet, then shipped
//! (state 3) with the tracking number and URL, the carrier, and the IMEI (a 15-digit code) or
//! serial number. A smartphone line (quantity 1) needs its IMEI: without it nothing is sent.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::IncomingFulfillment;
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::ChannelOrderId;
use tracing::info;

use crate::port::unsupported;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportLine, ExportOrder, Fulfillment, OrdersPage, success_body,
    transport_error,
};

pub const BACK_MARKET_ENDPOINT: &str = "https://www.backmarket.fr";

/// The order line (its index in the order's `orderlines`) that an export line stands for: by its
/// id (the channel line item id), else the first line of its SKU not taken by another export line.
fn orderline_for(orderlines: &[&Value], line: &ExportLine, taken: &[usize]) -> Option<usize> {
    let id_of = |found: &Value| match &found["id"] {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.clone()),
        _ => None,
    };
    let free = |index: &usize| !taken.contains(index);
    (0..orderlines.len())
        .filter(free)
        .find(|index| {
            orderlines.get(*index).and_then(|found| id_of(found)).as_deref() == Some(&line.channel_line_item_id)
        })
        .or_else(|| {
            (0..orderlines.len()).filter(free).find(|index| {
                orderlines.get(*index).is_some_and(|found| {
                    found["listing"].as_str() == Some(&line.sku) || found["sku"].as_str() == Some(&line.sku)
                })
            })
        })
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

    /// Validates and ships each line not shipped yet; the order's state says what an earlier
    /// attempt did, so every attempt reads it first.
    async fn ship_lines(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        // The domain's rule (`needs_imei`), applied to the lines as sent.
        let missing: Vec<&str> = order
            .lines
            .iter()
            .filter(|line| shipsync_domain::shipment::lacks_imei(line.needs_imei, line.quantity, &line.serial_codes))
            .map(|line| line.sku.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ChannelError::permanent(format!(
                "Back Market needs the IMEI of {}: add it to the shipment's serial_codes and it goes out",
                missing.join(", ")
            )));
        }
        let url = format!("{}/ws/orders/{}", self.endpoint, order.channel_order_id);
        let current = self.call(reqwest::Method::GET, &url, None).await?;
        let orderlines: Vec<&Value> = current["orderlines"].as_array().into_iter().flatten().collect();
        let order_id: Value =
            order.channel_order_id.as_str().parse::<u64>().map_or_else(|_| json!(order.channel_order_id), |n| json!(n));
        let mut adopted = false;
        // Order lines already matched to one of ours: two lines of one SKU are two order lines.
        let mut taken: Vec<usize> = Vec::new();
        for line in &order.lines {
            let state = match orderline_for(&orderlines, line, &taken) {
                Some(index) => {
                    taken.push(index);
                    orderlines.get(index).and_then(|found| found["state"].as_u64()).unwrap_or(0)
                }
                None => 0,
            };
            if state >= 3 {
                // Shipped before (an earlier attempt whose answer was lost): nothing to send again.
                adopted = true;
                continue;
            }
            if state < 2 {
                self.call(
                    reqwest::Method::POST,
                    &url,
                    Some(json!({"order_id": order_id, "new_state": 2, "sku": line.sku})),
                )
                .await?;
            }
            let mut body = json!({
                "order_id": order_id,
                "new_state": 3,
                "sku": line.sku,
                "tracking_number": order.tracking_numbers.first().map(TrackingNumber::as_str).unwrap_or_default(),
                "tracking_url": order.tracking_urls.first().cloned().unwrap_or_default(),
                "shipper": order.carrier_code.clone().unwrap_or_else(|| order.carrier.clone()),
            });
            if let Some(code) = line.serial_codes.first() {
                let is_imei = code.len() == 15 && code.chars().all(|c| c.is_ascii_digit());
                body[if is_imei { "imei" } else { "serial_number" }] = json!(code);
            }
            self.call(reqwest::Method::POST, &url, Some(body)).await?;
            info!(order = %order.channel_order_id, sku = %line.sku, "Back Market order line shipped");
        }
        Ok(Fulfillment { channel_ids: vec![order.channel_order_id.to_string()], adopted })
    }

    /// Calls Back Market; an answer that is not JSON is no answer (the calls' replies are not read).
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Result<Value, ChannelError> {
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
        let text = success_body(response, |text| format!("Back Market: {text}")).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Channel for BackMarketClient {
    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.ship_lines(order))
    }

    fn orders_since<'a>(&'a self, _since: DateTime<Utc>, _page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        unsupported("reading Back Market's orders")
    }

    fn fulfillments<'a>(
        &'a self,
        _channel_order_id: &'a ChannelOrderId,
    ) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        unsupported("reading Back Market's shipments of an order")
    }
}
