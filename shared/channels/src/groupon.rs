//! Groupon Goods, through its supplier API (CommerceInterface). Reads: `GET get_orders`, which
//! lists every order line the supplier has not yet taken (marked exported); there is no
//! modification time and no single-order read. Acceptance: `POST mark_exported` with the lines
//! taken, right after they are read (Groupon may cancel and withhold payment for lines left
//! unmarked); a line whose SKU routes to no vendor stays unmarked and listed in order health.
//! Exports: `POST tracking_notification` with each line's units under its package's tracking
//! number and Groupon's carrier code. Groupon pays on carrier movement, so its stores confirm on
//! movement by default.
//!
//! Groupon publishes this API to its suppliers only; the calls and fields here are those the
//! integrations in /work/shared/reference/intake.md §1.6 agree on (`supplier_id` and `token` as
//! query or form fields, JSON arrays in form fields, `{success, data}` answers). Groupon offers no
//! read of the tracking it holds: a notification sent again for the same line and number
//! (a retry after a lost answer) sets what is already set.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::info;

use crate::port::{PageReader, unsupported};
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, packages, success_body, transport_error,
};

pub const GROUPON_ENDPOINT: &str = "https://scm.commerceinterface.com/api/v4";

/// Groupon's codes for the usual carriers (the rest go by the store's mapping, or their name).
const CARRIER_CODES: &[(&str, &str)] = &[
    ("UPS", "ups"),
    ("FedEx", "fedex"),
    ("Federal Express", "fedex"),
    ("USPS", "usps"),
    ("US Postal", "usps"),
    ("US Postal Service", "usps"),
    ("DHL", "dhl"),
    ("DHL Express", "dhl"),
    ("DHL eCommerce", "dhlglobalmail"),
    ("OnTrac", "ontrac"),
];

/// Groupon's carrier code for a carrier: the store's mapping, else the usual code, else its name.
pub fn groupon_carrier(order: &ExportOrder) -> String {
    if let Some(code) = &order.carrier_code {
        return code.clone();
    }
    let name = order.carrier.trim();
    CARRIER_CODES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |(_, code)| (*code).to_owned())
}

/// No `Debug`: it holds the supplier's token.
#[derive(Clone)]
pub struct GrouponClient {
    http: reqwest::Client,
    endpoint: String,
    supplier_id: String,
    token: String,
}

impl GrouponClient {
    pub fn new(http: reqwest::Client, endpoint: Option<&str>, supplier_id: String, token: String) -> Self {
        Self {
            http,
            endpoint: endpoint.unwrap_or(GROUPON_ENDPOINT).trim_end_matches('/').to_owned(),
            supplier_id,
            token,
        }
    }

    /// A form POST with the supplier's id and token; Groupon's answer, which must say `success`.
    async fn post(&self, operation: &str, fields: &[(&str, String)]) -> Result<Value, ChannelError> {
        let mut form: Vec<(&str, &str)> = vec![("supplier_id", &self.supplier_id), ("token", &self.token)];
        form.extend(fields.iter().map(|(name, value)| (*name, value.as_str())));
        let response = self
            .http
            .post(format!("{}/{operation}", self.endpoint))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        answer(operation, success_body(response, |text| format!("Groupon: {}", groupon_message(text))).await?)
    }

    async fn orders(&self) -> Result<OrdersPage, ChannelError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/get_orders", self.endpoint),
            [("supplier_id", self.supplier_id.as_str()), ("token", self.token.as_str())],
        )
        .map_err(|_| ChannelError::permanent("the Groupon endpoint is not a URL"))?;
        let response = self.http.get(url).send().await.map_err(|e| transport_error(&e))?;
        let body =
            answer("get_orders", success_body(response, |text| format!("Groupon: {}", groupon_message(text))).await?)?;
        let listed = match &body["data"] {
            Value::Array(orders) => orders.clone(),
            Value::Null => Vec::new(),
            _ => return Err(ChannelError::retryable("Groupon listed orders without a data list")),
        };
        let mut read = PageReader::default();
        for node in listed {
            let order = groupon_order(&node);
            read.add("Groupon", "orderid", node, order);
        }
        // One listing holds every line not yet taken: there is no next page.
        Ok(read.page(None))
    }

    /// Marks the routed lines exported: Groupon then stops listing them.
    async fn accept(&self, lines: &[IncomingLine]) -> Result<(), ChannelError> {
        if lines.is_empty() {
            return Ok(());
        }
        let ids: Vec<Value> = lines.iter().map(|line| line_id_value(&line.channel_line_item_id)).collect();
        self.post("mark_exported", &[("ci_lineitem_ids", json!(ids).to_string())]).await?;
        info!(lines = ids.len(), "Groupon order lines marked exported");
        Ok(())
    }

    async fn notify(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        let carrier = groupon_carrier(order);
        let mut tracking_info = Vec::new();
        let mut sent = Vec::new();
        for package in packages(order) {
            if package.tracking.is_empty() {
                return Err(ChannelError::permanent("Groupon needs a tracking number for every package"));
            }
            for (line, quantity) in &package.items {
                tracking_info.push(json!({"ci_lineitem_id": line_id_value(line), "carrier": carrier,
                    "tracking": package.tracking, "quantity": quantity}));
            }
            sent.push(package.tracking);
        }
        self.post("tracking_notification", &[("tracking_info", json!(tracking_info).to_string())]).await?;
        info!(order = %order.channel_order_id, lines = tracking_info.len(), "Groupon tracking notified");
        Ok(Fulfillment { channel_ids: sent, adopted: false })
    }
}

/// A line id as Groupon's JSON carries it: a number when it is one.
fn line_id_value(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

/// Groupon's answer to `operation`, which must say `"success": true`; else its reason, for good
/// (a refusal is a person's to fix: a wrong token, an unknown line, a carrier it does not take).
fn answer(operation: &str, text: String) -> Result<Value, ChannelError> {
    let body: Value = serde_json::from_str(&text).map_err(|_| {
        ChannelError::retryable(format!("Groupon answered {operation} with something that is not JSON: {text:.200}"))
    })?;
    if body["success"] == true || body["success"] == "true" {
        Ok(body)
    } else {
        Err(ChannelError::permanent(format!("Groupon refused {operation}: {}", groupon_message(&text))))
    }
}

/// Groupon's reason for a refusal (`reason`, `message`, `errors`), or the body.
fn groupon_message(text: &str) -> String {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    [&body["reason"], &body["message"], &body["errors"][0], &body["errors"], &body["error"]]
        .into_iter()
        .find_map(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect())
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

/// A listed Groupon order as shipsync reads it; or which field is wrong. Every listed line waits
/// to be taken (marked exported). Groupon gives no modification time: an order's version is its
/// date when it carries one (`date`, `order_date`), else the same for every listing, so a line
/// listed again changes nothing.
fn groupon_order(node: &Value) -> Result<IncomingOrder, String> {
    let id = text_of(&node["orderid"]).ok_or("orderid is required")?;
    let updated_at = [&node["date"], &node["order_date"]]
        .into_iter()
        .find_map(|value| value.as_str().and_then(groupon_time))
        .unwrap_or(DateTime::UNIX_EPOCH);
    let items = node["line_items"].as_array().ok_or("line_items is required")?;
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("line_items[{index}].{name}");
        let quantity = match &item["quantity"] {
            Value::Number(n) => n.as_u64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
        .and_then(|quantity| u32::try_from(quantity).ok())
        .ok_or_else(|| format!("{} must be a whole number, 0 or more", field("quantity")))?;
        lines.push(IncomingLine {
            channel_line_item_id: text_of(&item["ci_lineitemid"])
                .ok_or_else(|| format!("{} is required", field("ci_lineitemid")))?,
            sku: item["sku"].as_str().and_then(Sku::received),
            name: item["name"].as_str().unwrap_or_default().trim().to_owned(),
            quantity,
            unit_price: match &item["unit_price"] {
                Value::Number(price) => price.to_string().parse().ok(),
                Value::String(price) => price.trim().parse().ok(),
                _ => None,
            },
            awaiting_acceptance: true,
            needs_imei: false,
        });
    }
    Ok(IncomingOrder {
        channel_order_id: ChannelOrderId::received(id.clone()),
        number: id,
        customer_name: node["customer"]["name"].as_str().unwrap_or_default().trim().to_owned(),
        updated_at,
        cancelled: false,
        lines,
        cancel_requested: None,
        fulfillments: Vec::new(),
    })
}

/// Groupon's dates: `MM/DD/YYYY HH:MM` (as its filters take them), or RFC 3339.
fn groupon_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text).map(|time| time.to_utc()).ok().or_else(|| {
        ["%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .map(|time| time.and_utc())
    })
}

impl Channel for GrouponClient {
    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.notify(order))
    }

    /// Every line not yet taken, whatever `since` (Groupon lists by that, not by time).
    fn orders_since<'a>(&'a self, _since: DateTime<Utc>, _page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders())
    }

    /// Groupon offers no read of the tracking it holds.
    fn fulfillments<'a>(
        &'a self,
        _channel_order_id: &'a ChannelOrderId,
    ) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn order<'a>(&'a self, _channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        unsupported("reading one Groupon order")
    }

    fn accept_lines<'a>(
        &'a self,
        _channel_order_id: &'a ChannelOrderId,
        lines: &'a [IncomingLine],
    ) -> ChannelFuture<'a, ()> {
        Box::pin(self.accept(lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_read_their_lines_and_dates() {
        let node = json!({"orderid": "FFB7A681BE", "date": "03/02/2026 11:00",
            "customer": {"name": " Jo Buyer ", "city": "Chicago"},
            "line_items": [{"ci_lineitemid": 54553920, "sku": "GR-1", "name": "Lamp", "quantity": "2", "unit_price": 9.5}]});
        let order = groupon_order(&node).expect("readable");
        assert_eq!((order.number.as_str(), order.customer_name.as_str()), ("FFB7A681BE", "Jo Buyer"));
        assert_eq!(order.updated_at, "2026-03-02T11:00:00Z".parse::<DateTime<Utc>>().expect("a time"));
        assert_eq!((order.lines[0].channel_line_item_id.as_str(), order.lines[0].quantity), ("54553920", 2));
        assert!(order.lines[0].awaiting_acceptance);
        let undated = json!({"orderid": 7, "line_items": []});
        assert_eq!(groupon_order(&undated).expect("readable").updated_at, DateTime::UNIX_EPOCH);
        assert_eq!(groupon_order(&json!({"line_items": []})).err().as_deref(), Some("orderid is required"));
    }

    #[test]
    fn answers_must_say_success() {
        assert!(answer("get_orders", r#"{"success": true, "data": []}"#.into()).is_ok());
        let refused = answer("tracking_notification", r#"{"success": false, "reason": "Invalid carrier"}"#.into());
        assert_eq!(
            refused.err().map(|e| e.to_string()).as_deref(),
            Some("Groupon refused tracking_notification: Invalid carrier")
        );
        assert!(matches!(answer("get_orders", "<html>".into()), Err(ChannelError::Retryable { .. })));
    }
}
