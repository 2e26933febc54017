//! Shopify webhook payloads (the REST resource JSON Shopify sends) read into shipsync's events.
//! Ids become Shopify global ids, the form the GraphQL Admin API (and so the exporter) uses.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use shipsync_domain::orders::{ChannelEvent, IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::returns::{ChannelReturnStatus, IncomingReturn};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};

/// The topics shipsync subscribes to.
pub const SHOPIFY_TOPICS: [&str; 10] = [
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "fulfillments/create",
    "fulfillments/update",
    "returns/request",
    "returns/approve",
    "returns/decline",
    "returns/cancel",
    "returns/close",
];

/// Why a payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PayloadError {
    pub field: String,
    pub problem: String,
}

fn missing(field: &str) -> PayloadError {
    PayloadError { field: field.to_owned(), problem: "is required".into() }
}

/// Reads a webhook payload of a subscribed topic; `Ok(None)` for a topic shipsync does not use.
pub fn read_shopify_webhook(topic: &str, payload: &Value) -> Result<Option<ChannelEvent>, PayloadError> {
    if !payload.is_object() {
        return Err(PayloadError { field: "body".into(), problem: "must be a JSON object".into() });
    }
    Ok(match topic {
        "orders/create" | "orders/updated" => Some(ChannelEvent::OrderChanged { order: read_order(payload)? }),
        "orders/cancelled" => {
            let mut order = read_order(payload)?;
            order.cancelled = true;
            Some(ChannelEvent::OrderCancelled { order })
        }
        "fulfillments/create" | "fulfillments/update" => {
            Some(ChannelEvent::FulfillmentChanged { fulfillment: read_fulfillment(payload)? })
        }
        "returns/request" | "returns/approve" | "returns/decline" | "returns/cancel" | "returns/close" => {
            Some(ChannelEvent::ReturnChanged { ret: read_return(topic, payload)? })
        }
        _ => None,
    })
}

/// A Shopify id (number or string, or already a gid) as a global id of `kind`.
pub fn shopify_gid(kind: &str, value: &Value) -> Option<String> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => return None,
    };
    Some(if text.starts_with("gid://") { text } else { format!("gid://shopify/{kind}/{text}") })
}

fn read_order(payload: &Value) -> Result<IncomingOrder, PayloadError> {
    let channel_order_id = ChannelOrderId::received(shopify_gid("Order", &payload["id"]).ok_or_else(|| missing("id"))?);
    let number = payload["name"]
        .as_str()
        .map(|name| name.trim_start_matches('#').to_owned())
        .or_else(|| payload["order_number"].as_u64().map(|n| n.to_string()))
        .ok_or_else(|| missing("name"))?;
    let updated_at = payload["updated_at"]
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .ok_or_else(|| PayloadError { field: "updated_at".into(), problem: "must be an ISO 8601 time".into() })?;
    let lines = payload["line_items"]
        .as_array()
        .ok_or_else(|| PayloadError { field: "line_items".into(), problem: "must be a list".into() })?
        .iter()
        .enumerate()
        .map(|(index, line)| read_line(index, line))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IncomingOrder {
        channel_order_id,
        number,
        customer_name: customer_name(payload),
        updated_at,
        cancelled: !payload["cancelled_at"].is_null() && payload.get("cancelled_at").is_some(),
        lines,
        cancel_requested: None,
        fulfillments: Vec::new(),
    })
}

fn read_line(index: usize, line: &Value) -> Result<IncomingLine, PayloadError> {
    let field = |name: &str| format!("line_items[{index}].{name}");
    let id = shopify_gid("LineItem", &line["id"]).ok_or_else(|| missing(&field("id")))?;
    // current_quantity leaves out removed and refunded units; older payloads have only quantity.
    let given = if line["current_quantity"].is_null() { &line["quantity"] } else { &line["current_quantity"] };
    let quantity = match given.as_u64() {
        Some(quantity) => quantity,
        None if given.is_null() => return Err(missing(&field("quantity"))),
        None => {
            return Err(PayloadError { field: field("quantity"), problem: "must be a whole number, 0 or more".into() });
        }
    };
    Ok(IncomingLine {
        channel_line_item_id: id,
        sku: line["sku"].as_str().and_then(Sku::received),
        name: line["name"].as_str().or_else(|| line["title"].as_str()).unwrap_or_default().to_owned(),
        quantity: u32::try_from(quantity)
            .map_err(|_| PayloadError { field: field("quantity"), problem: "is too large".into() })?,
        unit_price: line["price"].as_str().and_then(|price| price.parse::<Decimal>().ok()),
        awaiting_acceptance: false,
        needs_imei: false,
    })
}

fn customer_name(payload: &Value) -> String {
    let address = &payload["shipping_address"];
    if let Some(name) = address["name"].as_str().filter(|n| !n.trim().is_empty()) {
        return name.trim().to_owned();
    }
    let customer = &payload["customer"];
    let parts: Vec<&str> =
        [customer["first_name"].as_str(), customer["last_name"].as_str()].into_iter().flatten().collect();
    parts.join(" ").trim().to_owned()
}

/// A `returns/*` payload. Request and approve carry `order` and the return's lines (each with
/// its fulfillment line item's line item); cancel and close carry `order_id`; decline neither.
/// The topic says the status (the payload's `status` agrees, in lowercase).
fn read_return(topic: &str, payload: &Value) -> Result<IncomingReturn, PayloadError> {
    let id = shopify_gid("Return", &payload["admin_graphql_api_id"])
        .or_else(|| shopify_gid("Return", &payload["id"]))
        .ok_or_else(|| missing("id"))?;
    let status = match topic {
        "returns/request" => ChannelReturnStatus::Requested,
        "returns/approve" => ChannelReturnStatus::Open,
        "returns/decline" => ChannelReturnStatus::Declined,
        "returns/cancel" => ChannelReturnStatus::Canceled,
        _ => ChannelReturnStatus::Closed,
    };
    let order = shopify_gid("Order", &payload["order"]["admin_graphql_api_id"])
        .or_else(|| shopify_gid("Order", &payload["order"]["id"]))
        .or_else(|| shopify_gid("Order", &payload["order_id"]))
        .map(ChannelOrderId::received);
    let mut lines: Vec<(String, u32)> = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    for (index, line) in payload["return_line_items"].as_array().into_iter().flatten().enumerate() {
        let field = |name: &str| format!("return_line_items[{index}].{name}");
        let item = &line["fulfillment_line_item"]["line_item"];
        let id = shopify_gid("LineItem", &item["admin_graphql_api_id"])
            .or_else(|| shopify_gid("LineItem", &item["id"]))
            .ok_or_else(|| missing(&field("fulfillment_line_item.line_item.id")))?;
        let quantity = line["quantity"]
            .as_u64()
            .and_then(|quantity| u32::try_from(quantity).ok())
            .filter(|quantity| *quantity > 0)
            .ok_or_else(|| PayloadError {
                field: field("quantity"),
                problem: "must be a whole number, 1 or more".into(),
            })?;
        match lines.iter_mut().find(|(line, _)| *line == id) {
            Some((_, total)) => *total += quantity,
            None => lines.push((id, quantity)),
        }
        let reason =
            [line["return_reason"].as_str(), line["return_reason_note"].as_str(), line["customer_note"].as_str()]
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
        if !reason.is_empty() && !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if matches!(status, ChannelReturnStatus::Requested | ChannelReturnStatus::Open) && order.is_none() {
        return Err(missing("order.id"));
    }
    let mut reason = reasons.join("; ");
    if reason.is_empty() {
        reason = "asked for in Shopify".into();
    }
    Ok(IncomingReturn {
        channel_return_id: id,
        channel_order_id: order,
        status,
        lines,
        reason: reason.chars().take(shipsync_domain::returns::MAX_REASON_CHARS).collect(),
    })
}

fn read_fulfillment(payload: &Value) -> Result<IncomingFulfillment, PayloadError> {
    let id = shopify_gid("Fulfillment", &payload["id"]).ok_or_else(|| missing("id"))?;
    let order = shopify_gid("Order", &payload["order_id"]).ok_or_else(|| missing("order_id"))?;
    let lines = payload["line_items"]
        .as_array()
        .ok_or_else(|| PayloadError { field: "line_items".into(), problem: "must be a list".into() })?
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let id = shopify_gid("LineItem", &line["id"]).ok_or_else(|| missing(&format!("line_items[{index}].id")))?;
            let quantity = line["quantity"].as_u64().and_then(|q| u32::try_from(q).ok());
            Ok((id, quantity.ok_or_else(|| missing(&format!("line_items[{index}].quantity")))?))
        })
        .collect::<Result<Vec<_>, PayloadError>>()?;
    // A number shipsync could not store (blank, say) names no parcel: it is left out, as a missing one is.
    let parse = |number: &Value| number.as_str().and_then(|number| TrackingNumber::parse(number).ok());
    let mut numbers: Vec<TrackingNumber> =
        payload["tracking_numbers"].as_array().into_iter().flatten().filter_map(parse).collect();
    if numbers.is_empty()
        && let Some(number) = parse(&payload["tracking_number"])
    {
        numbers.push(number);
    }
    Ok(IncomingFulfillment {
        channel_fulfillment_id: id,
        channel_order_id: ChannelOrderId::received(order),
        lines,
        tracking_numbers: numbers,
        tracking_company: payload["tracking_company"].as_str().map(str::to_owned),
        cancelled: payload["status"].as_str().is_some_and(|status| status == "cancelled"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn return_notices_are_read_with_their_order_and_lines_or_without() {
        let requested = json!({"id": 123, "admin_graphql_api_id": "gid://shopify/Return/123", "status": "requested",
            "order": {"id": 4783, "admin_graphql_api_id": "gid://shopify/Order/4783"},
            "return_line_items": [
                {"id": 1, "quantity": 1, "return_reason": "size_too_small", "return_reason_note": "",
                 "fulfillment_line_item": {"id": 9, "line_item": {"id": 77, "admin_graphql_api_id": "gid://shopify/LineItem/77"}}},
                {"id": 2, "quantity": 1, "return_reason": "size_too_small",
                 "fulfillment_line_item": {"id": 10, "line_item": {"id": 77}}}]});
        let Some(ChannelEvent::ReturnChanged { ret }) =
            read_shopify_webhook("returns/request", &requested).expect("read")
        else {
            panic!("a return");
        };
        assert_eq!(ret.channel_return_id, "gid://shopify/Return/123");
        assert_eq!(ret.channel_order_id.map(|id| id.to_string()).as_deref(), Some("gid://shopify/Order/4783"));
        assert_eq!(ret.lines, [("gid://shopify/LineItem/77".to_owned(), 2)]);
        assert_eq!((ret.status, ret.reason.as_str()), (ChannelReturnStatus::Requested, "size_too_small"));
        let declined = json!({"id": 123, "admin_graphql_api_id": "gid://shopify/Return/123", "status": "declined",
            "decline": {"reason": "return_period_ended", "note": "Too late"}});
        let Some(ChannelEvent::ReturnChanged { ret }) =
            read_shopify_webhook("returns/decline", &declined).expect("read")
        else {
            panic!("a return");
        };
        assert_eq!((ret.status, ret.channel_order_id), (ChannelReturnStatus::Declined, None));
        let closed = json!({"id": 123, "order_id": 4783, "status": "closed"});
        let Some(ChannelEvent::ReturnChanged { ret }) = read_shopify_webhook("returns/close", &closed).expect("read")
        else {
            panic!("a return");
        };
        assert_eq!(ret.channel_order_id.map(|id| id.to_string()).as_deref(), Some("gid://shopify/Order/4783"));
        let no_order = json!({"id": 5, "status": "requested", "return_line_items": []});
        assert!(read_shopify_webhook("returns/request", &no_order).is_err(), "a request names its order");
        let bad = json!({"id": 5, "order": {"id": 1}, "return_line_items": [{"quantity": 0,
            "fulfillment_line_item": {"line_item": {"id": 77}}}]});
        assert_eq!(
            read_shopify_webhook("returns/approve", &bad).map_err(|e| e.field),
            Err("return_line_items[0].quantity".into())
        );
    }

    #[test]
    fn orders_read_with_global_ids_and_current_quantities() {
        let payload = json!({
            "id": 820982911946154508u64, "name": "#1001", "updated_at": "2026-01-05T10:00:00-05:00", "cancelled_at": null,
            "customer": {"first_name": "John", "last_name": "Smith"},
            "shipping_address": {"name": "Bob Norman"},
            "line_items": [{"id": 866550311766439020u64, "sku": "IPOD-342-N", "name": "IPod Nano - 8GB", "quantity": 2, "current_quantity": 1, "price": "199.00"}]
        });
        let Some(ChannelEvent::OrderChanged { order }) = read_shopify_webhook("orders/create", &payload).unwrap()
        else {
            panic!("an order");
        };
        assert_eq!(order.channel_order_id, "gid://shopify/Order/820982911946154508");
        assert_eq!(order.number, "1001");
        assert_eq!(order.customer_name, "Bob Norman");
        assert_eq!(order.updated_at.to_rfc3339(), "2026-01-05T15:00:00+00:00");
        assert_eq!(order.lines[0].channel_line_item_id, "gid://shopify/LineItem/866550311766439020");
        assert_eq!(order.lines[0].quantity, 1);
        assert!(!order.cancelled);
    }

    #[test]
    fn bad_payloads_name_the_field() {
        let error = read_shopify_webhook(
            "orders/create",
            &json!({"id": 1, "name": "#1", "updated_at": "2026-01-05T10:00:00Z", "line_items": [{"id": 5}]}),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "line_items[0].quantity: is required");
        assert!(read_shopify_webhook("orders/create", &json!([1])).is_err());
        assert_eq!(read_shopify_webhook("products/update", &json!({"id": 1})), Ok(None));
    }
}
