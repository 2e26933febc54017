//! A fake Shopify for the local stack and its test: a small HTTP server answering exactly the
//! GraphQL calls shipsync's Shopify client makes (an order's fulfillment orders and fulfillments,
//! `fulfillmentCreate`, the orders changed since a time, an order's further lines, an order's
//! fulfillments), for the orders it is given, and recording every fulfillment it receives. A
//! store whose `base_url` points here is an ordinary Shopify store to the rest of shipsync.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shipsync_channels::SHOPIFY_API_VERSION;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// An order the fake shop holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOrder {
    /// Its id, a Shopify global id (`gid://shopify/Order/1001`) or the number in it.
    pub id: String,
    pub lines: Vec<FakeLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLine {
    /// The line item's id, a global id or the number in it.
    pub id: String,
    pub sku: String,
    pub quantity: u32,
}

/// A fulfillment the fake received, as a person would check it in Shopify's admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFulfillment {
    pub id: String,
    pub order_id: String,
    pub company: String,
    pub tracking_numbers: Vec<String>,
    pub tracking_urls: Vec<String>,
    pub notify_customer: bool,
    pub lines: Vec<ReceivedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLine {
    pub line_item_id: String,
    pub sku: String,
    pub quantity: u32,
}

/// A cancellation the fake received: a refund cancelling units, or a whole order cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCancellation {
    pub id: String,
    pub order_id: String,
    /// Line item and units; empty for a whole order.
    pub lines: Vec<(String, u32)>,
    pub note: String,
    /// The `@idempotent` key a refund came with.
    pub key: Option<String>,
}

/// A return the fake received (`returnCreate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedReturn {
    pub id: String,
    pub order_id: String,
    /// Fulfillment line item, units, and the note.
    pub lines: Vec<(String, u32, String)>,
}

/// An order line as the shop keeps it: its fulfillment order line item and what is left to fulfil.
struct HeldLine {
    line: FakeLine,
    fulfillment_order_line_item_id: String,
    remaining: u32,
}

struct HeldOrder {
    fulfillment_order_id: String,
    lines: Vec<HeldLine>,
}

#[derive(Default)]
struct Shop {
    orders: BTreeMap<String, HeldOrder>,
    received: Vec<ReceivedFulfillment>,
    next_id: u64,
    /// Orders the next orders query lists as changed (GraphQL `Order` nodes), then forgets.
    changed: Vec<Value>,
    cancellations: Vec<ReceivedCancellation>,
    returns: Vec<ReceivedReturn>,
}

impl Shop {
    fn next(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("gid://shopify/{kind}/{}", self.next_id)
    }
}

/// A running fake shop; it stops when dropped.
pub struct FakeShopify {
    url: String,
    shop: Arc<Mutex<Shop>>,
    server: JoinHandle<()>,
}

impl Drop for FakeShopify {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A Shopify global id from either a gid or a bare id, as the Shopify client makes them.
fn gid(kind: &str, id: &str) -> String {
    let id = id.trim();
    if id.starts_with("gid://") { id.to_owned() } else { format!("gid://shopify/{kind}/{id}") }
}

fn lock(shop: &Mutex<Shop>) -> MutexGuard<'_, Shop> {
    // A panic while answering leaves the shop as it was between two calls: still usable.
    shop.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeShopify {
    /// Serves on `listener`, answering calls that carry `access_token` (others are refused as
    /// Shopify refuses a wrong token).
    pub fn start(listener: TcpListener, access_token: &str) -> std::io::Result<FakeShopify> {
        let url = format!("http://{}", listener.local_addr()?);
        let shop = Arc::new(Mutex::new(Shop::default()));
        let server = tokio::spawn(serve(listener, Arc::clone(&shop), access_token.to_owned()));
        Ok(FakeShopify { url, shop, server })
    }

    /// Where the shop answers: a store's `base_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens an order in the shop (again, unfulfilled, if it was there).
    pub fn add_order(&self, order: FakeOrder) {
        let mut shop = lock(&self.shop);
        let fulfillment_order_id = shop.next("FulfillmentOrder");
        let mut lines = Vec::with_capacity(order.lines.len());
        for line in order.lines {
            let line = FakeLine { id: gid("LineItem", &line.id), ..line };
            lines.push(HeldLine {
                fulfillment_order_line_item_id: shop.next("FulfillmentOrderLineItem"),
                remaining: line.quantity,
                line,
            });
        }
        shop.orders.insert(gid("Order", &order.id), HeldOrder { fulfillment_order_id, lines });
    }

    /// Lists `nodes` (GraphQL `Order` nodes, as the poller's orders query reads them) as
    /// changed, once: the next orders query answers them on one page, later ones nothing.
    pub fn list_changed(&self, nodes: Vec<Value>) {
        lock(&self.shop).changed.extend(nodes);
    }

    /// Every fulfillment received so far, oldest first.
    pub fn fulfillments(&self) -> Vec<ReceivedFulfillment> {
        lock(&self.shop).received.clone()
    }

    /// Every cancellation received so far, oldest first.
    pub fn cancellations(&self) -> Vec<ReceivedCancellation> {
        lock(&self.shop).cancellations.clone()
    }

    /// Every return received so far, oldest first.
    pub fn returns(&self) -> Vec<ReceivedReturn> {
        lock(&self.shop).returns.clone()
    }
}

/// A fulfillment line item's id in the fake: its fulfillment's number and the line's place.
fn fulfillment_line_item_id(fulfillment: &str, index: usize) -> String {
    let number = fulfillment.rsplit('/').next().unwrap_or_default();
    format!("gid://shopify/FulfillmentLineItem/{number}0{index}")
}

/// Whether the order is cancelled, and its refunds (each with its note).
fn cancel_state(shop: &Shop, variables: &Value) -> Value {
    let id = variables["id"].as_str().unwrap_or_default();
    if !shop.orders.contains_key(id) {
        return json!({"order": null});
    }
    let ours = || shop.cancellations.iter().filter(|cancellation| cancellation.order_id == id);
    let cancelled = ours().any(|cancellation| cancellation.lines.is_empty());
    let refunds: Vec<Value> = ours()
        .filter(|cancellation| !cancellation.lines.is_empty())
        .map(|refund| json!({"id": refund.id, "note": refund.note}))
        .collect();
    json!({"order": {"id": id, "cancelledAt": if cancelled { json!("2026-12-07T10:00:00Z") } else { Value::Null },
        "refunds": refunds}})
}

/// `refundCreate` restocking units as `CANCEL`: made once per idempotency key, as Shopify does;
/// units beyond what is left to fulfil are refused.
fn cancel_units(shop: &mut Shop, input: &Value, key: Option<&str>) -> Value {
    if let Some(done) =
        shop.cancellations.iter().find(|cancellation| key.is_some() && cancellation.key.as_deref() == key)
    {
        return json!({"refundCreate": {"refund": {"id": done.id}, "userErrors": []}});
    }
    let refused = |message: String| json!({"refundCreate": {"refund": null, "userErrors": [{"field": ["refundLineItems"], "message": message}]}});
    let order_id = input["orderId"].as_str().unwrap_or_default().to_owned();
    let Some(held) = shop.orders.get(&order_id) else { return refused(format!("order {order_id} does not exist")) };
    let mut lines = Vec::new();
    for item in input["refundLineItems"].as_array().into_iter().flatten() {
        let line = item["lineItemId"].as_str().unwrap_or_default();
        let quantity = item["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok()).unwrap_or(0);
        match held.lines.iter().find(|held| held.line.id == line) {
            Some(held) if quantity > 0 && quantity <= held.remaining => lines.push((line.to_owned(), quantity)),
            _ => return refused(format!("{line} cannot have {quantity} unit(s) cancelled")),
        }
    }
    let id = shop.next("Refund");
    if let Some(held) = shop.orders.get_mut(&order_id) {
        for (line, quantity) in &lines {
            if let Some(held) = held.lines.iter_mut().find(|held| held.line.id == *line) {
                held.remaining -= quantity;
            }
        }
    }
    let note = input["note"].as_str().unwrap_or_default().to_owned();
    info!(refund = %id, order = %order_id, ?lines, "fake Shopify: units cancelled");
    shop.cancellations.push(ReceivedCancellation {
        id: id.clone(),
        order_id,
        lines,
        note,
        key: key.map(str::to_owned),
    });
    json!({"refundCreate": {"refund": {"id": id}, "userErrors": []}})
}

/// `orderCancel`: the whole order.
fn cancel_order(shop: &mut Shop, variables: &Value) -> Value {
    let order_id = variables["orderId"].as_str().unwrap_or_default().to_owned();
    if !shop.orders.contains_key(&order_id) {
        return json!({"orderCancel": {"job": null, "orderCancelUserErrors": [{"field": ["orderId"], "message": "Order does not exist", "code": "NOT_FOUND"}]}});
    }
    let id = shop.next("Job");
    info!(order = %order_id, "fake Shopify: order cancelled");
    let note = variables["staffNote"].as_str().unwrap_or_default().to_owned();
    shop.cancellations.push(ReceivedCancellation { id: id.clone(), order_id, lines: Vec::new(), note, key: None });
    json!({"orderCancel": {"job": {"id": id}, "orderCancelUserErrors": []}})
}

/// An order's fulfillment line items and returns, as the return flow reads them.
fn return_state(shop: &Shop, variables: &Value) -> Value {
    let id = variables["id"].as_str().unwrap_or_default();
    if !shop.orders.contains_key(id) {
        return json!({"order": null});
    }
    let fulfillments: Vec<Value> = shop
        .received
        .iter()
        .filter(|fulfillment| fulfillment.order_id == id)
        .map(|fulfillment| {
            json!({"id": fulfillment.id, "status": "SUCCESS", "fulfillmentLineItems": {"nodes":
            fulfillment.lines.iter().enumerate().map(|(index, line)| json!({
                "id": fulfillment_line_item_id(&fulfillment.id, index), "quantity": line.quantity,
                "lineItem": {"id": line.line_item_id}})).collect::<Vec<_>>()}})
        })
        .collect();
    let returns: Vec<Value> = shop
        .returns
        .iter()
        .filter(|ret| ret.order_id == id)
        .map(|ret| json!({"id": ret.id, "status": "OPEN", "returnLineItems": {"nodes": ret.lines.iter().map(|(item, quantity, note)|
            json!({"quantity": quantity, "returnReasonNote": note, "fulfillmentLineItem": {"id": item}})).collect::<Vec<_>>()}}))
        .collect();
    json!({"order": {"id": id, "fulfillments": fulfillments, "returns": {"nodes": returns}}})
}

/// `returnCreate`: each fulfillment line item must exist.
fn return_create(shop: &mut Shop, input: &Value) -> Value {
    let order_id = input["orderId"].as_str().unwrap_or_default().to_owned();
    let known: Vec<String> = shop
        .received
        .iter()
        .filter(|fulfillment| fulfillment.order_id == order_id)
        .flat_map(|fulfillment| {
            (0..fulfillment.lines.len()).map(|index| fulfillment_line_item_id(&fulfillment.id, index))
        })
        .collect();
    let mut lines = Vec::new();
    for item in input["returnLineItems"].as_array().into_iter().flatten() {
        let id = item["fulfillmentLineItemId"].as_str().unwrap_or_default();
        if !known.iter().any(|known| known == id) {
            return json!({"returnCreate": {"return": null, "userErrors": [{"field": ["returnLineItems"], "message": format!("{id} is not a fulfillment line item of the order")}]}});
        }
        let quantity = item["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok()).unwrap_or(0);
        lines.push((id.to_owned(), quantity, item["returnReasonNote"].as_str().unwrap_or_default().to_owned()));
    }
    let id = shop.next("Return");
    info!(ret = %id, order = %order_id, "fake Shopify: return opened");
    shop.returns.push(ReceivedReturn { id: id.clone(), order_id, lines });
    json!({"returnCreate": {"return": {"id": id, "status": "OPEN"}, "userErrors": []}})
}

async fn serve(listener: TcpListener, shop: Arc<Mutex<Shop>>, access_token: String) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                warn!(%error, "fake Shopify stopped accepting");
                return;
            }
        };
        let (shop, token) = (Arc::clone(&shop), access_token.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (shop, token) = (Arc::clone(&shop), token.clone());
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
                    let (status, answer) = answer(&shop, &token, &parts, &body);
                    let response = hyper::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(Bytes::from(answer.to_string())))
                        .unwrap_or_default();
                    Ok::<_, Infallible>(response)
                }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                warn!(%error, "fake Shopify connection ended with an error");
            }
        });
    }
}

/// Shopify's answer to one request.
fn answer(shop: &Mutex<Shop>, token: &str, request: &http::request::Parts, body: &Bytes) -> (StatusCode, Value) {
    if request.method != Method::POST || request.uri.path() != format!("/admin/api/{SHOPIFY_API_VERSION}/graphql.json")
    {
        return (StatusCode::NOT_FOUND, json!({"errors": "Not Found"}));
    }
    let sent = request.headers.get("x-shopify-access-token").and_then(|value| value.to_str().ok());
    if sent != Some(token) {
        let message = "[API] Invalid API key or access token (unrecognized login or wrong password)";
        return (StatusCode::UNAUTHORIZED, json!({"errors": message}));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, json!({"errors": "the body is not JSON"}));
    };
    let query = request["query"].as_str().unwrap_or_default();
    // `query ShipsyncOrder($id: ID!) {`: the operation's name, as the client names each call.
    let operation = query.split_whitespace().nth(1).and_then(|name| name.split('(').next()).unwrap_or_default();
    let variables = &request["variables"];
    let mut shop = lock(shop);
    let data = match operation {
        "ShipsyncOrder" => order(&shop, variables, true),
        "ShipsyncFulfillments" => order(&shop, variables, false),
        "ShipsyncFulfillmentCreate" => fulfillment_create(&mut shop, &variables["fulfillment"]),
        "ShipsyncCancelState" => cancel_state(&shop, variables),
        "ShipsyncCancelUnits" => cancel_units(&mut shop, &variables["input"], variables["key"].as_str()),
        "ShipsyncCancelOrder" => cancel_order(&mut shop, variables),
        "ShipsyncReturnState" => return_state(&shop, variables),
        "ShipsyncReturnCreate" => return_create(&mut shop, &variables["returnInput"]),
        // The shop's orders change only by fulfillment: none has changed in the sense the orders
        // query asks unless listed as changed (and no order has further lines to read).
        "ShipsyncOrders" => {
            let nodes = std::mem::take(&mut shop.changed);
            json!({"orders": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes}})
        }
        "ShipsyncOrderLines" => {
            json!({"order": {"lineItems": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": []}}})
        }
        _ => {
            let error = json!({"message": format!("the fake Shopify does not answer {operation:?}"),
                "extensions": {"code": "BAD_REQUEST"}});
            return (StatusCode::OK, json!({"errors": [error]}));
        }
    };
    (StatusCode::OK, json!({ "data": data }))
}

/// The order query: its fulfillments, and (`with_fulfillment_orders`) its one fulfillment order.
fn order(shop: &Shop, variables: &Value, with_fulfillment_orders: bool) -> Value {
    let id = variables["id"].as_str().unwrap_or_default();
    let Some(held) = shop.orders.get(id) else { return json!({ "order": null }) };
    let fulfillments: Vec<Value> = shop
        .received
        .iter()
        .filter(|fulfillment| fulfillment.order_id == id)
        .map(|fulfillment| {
            json!({
                "id": fulfillment.id,
                "status": "SUCCESS",
                "trackingInfo": fulfillment.tracking_numbers.iter().map(|number| json!({"number": number, "company": fulfillment.company})).collect::<Vec<_>>(),
                "fulfillmentLineItems": {"nodes": fulfillment.lines.iter().map(|line| json!({"quantity": line.quantity, "lineItem": {"id": line.line_item_id}})).collect::<Vec<_>>()},
            })
        })
        .collect();
    let mut order = json!({ "id": id, "fulfillments": fulfillments });
    if with_fulfillment_orders {
        let open = held.lines.iter().any(|line| line.remaining > 0);
        order["fulfillmentOrders"] = json!({"nodes": [{
            "id": held.fulfillment_order_id,
            "status": if open { "OPEN" } else { "CLOSED" },
            "assignedLocation": {"location": {"id": "gid://shopify/Location/1"}},
            "lineItems": {"nodes": held.lines.iter().map(|line| json!({
                "id": line.fulfillment_order_line_item_id,
                "remainingQuantity": line.remaining,
                "lineItem": {"id": line.line.id},
            })).collect::<Vec<_>>()},
        }]});
    }
    json!({ "order": order })
}

/// `fulfillmentCreate`: checks every quantity against what is left, as Shopify does, then
/// fulfils and records it; or answers `userErrors`, changing nothing.
fn fulfillment_create(shop: &mut Shop, input: &Value) -> Value {
    let refused = |message: String| json!({"fulfillmentCreate": {"fulfillment": null, "userErrors": [{"field": ["fulfillment"], "message": message}]}});
    let mut taken: Vec<(String, String, u32)> = Vec::new();
    for group in input["lineItemsByFulfillmentOrder"].as_array().into_iter().flatten() {
        let fulfillment_order = group["fulfillmentOrderId"].as_str().unwrap_or_default();
        let Some((order_id, held)) =
            shop.orders.iter().find(|(_, held)| held.fulfillment_order_id == fulfillment_order)
        else {
            return refused(format!("fulfillment order {fulfillment_order} does not exist"));
        };
        for item in group["fulfillmentOrderLineItems"].as_array().into_iter().flatten() {
            let item_id = item["id"].as_str().unwrap_or_default();
            let quantity = item["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok()).unwrap_or(0);
            let Some(line) = held.lines.iter().find(|line| line.fulfillment_order_line_item_id == item_id) else {
                return refused(format!("fulfillment order line item {item_id} does not exist"));
            };
            let already: u32 = taken.iter().filter(|(_, id, _)| id == item_id).map(|(_, _, quantity)| quantity).sum();
            if quantity == 0 || already + quantity > line.remaining {
                return refused(format!("Invalid fulfillment order line item quantity requested for {item_id}"));
            }
            taken.push((order_id.clone(), item_id.to_owned(), quantity));
        }
    }
    let Some(order_id) = taken.first().map(|(order, _, _)| order.clone()) else {
        return refused("no line items to fulfil".to_owned());
    };
    let id = shop.next("Fulfillment");
    let mut lines = Vec::new();
    if let Some(held) = shop.orders.get_mut(&order_id) {
        for (_, item_id, quantity) in &taken {
            if let Some(line) = held.lines.iter_mut().find(|line| &line.fulfillment_order_line_item_id == item_id) {
                line.remaining -= quantity;
                lines.push(ReceivedLine {
                    line_item_id: line.line.id.clone(),
                    sku: line.line.sku.clone(),
                    quantity: *quantity,
                });
            }
        }
    }
    let texts = |value: &Value| -> Vec<String> {
        value.as_array().into_iter().flatten().filter_map(|text| text.as_str().map(str::to_owned)).collect()
    };
    let tracking = &input["trackingInfo"];
    let received = ReceivedFulfillment {
        id: id.clone(),
        order_id,
        company: tracking["company"].as_str().unwrap_or_default().to_owned(),
        tracking_numbers: texts(&tracking["numbers"]),
        tracking_urls: texts(&tracking["urls"]),
        notify_customer: input["notifyCustomer"].as_bool().unwrap_or(false),
        lines,
    };
    info!(fulfillment = %id, order = %received.order_id, tracking = ?received.tracking_numbers, "fake Shopify: fulfillment created");
    shop.received.push(received);
    json!({"fulfillmentCreate": {"fulfillment": {"id": id, "status": "SUCCESS"}, "userErrors": []}})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use shipsync_channels::{Channel, ChannelError, ExportLine, ExportOrder, ShopifyClient};

    fn order(tracking: &str, quantity: u32) -> ExportOrder {
        ExportOrder {
            shipment_id: 1,
            shipped_at: chrono::Utc::now(),
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("gid://shopify/Order/1001")
                .expect("an order id"),
            lines: vec![ExportLine {
                channel_line_item_id: "gid://shopify/LineItem/1002".into(),
                quantity,
                sku: "STAKE-10".into(),
                serial_codes: vec![],
                package: None,
                needs_imei: false,
            }],
            tracking_numbers: vec![
                shipsync_domain::tracking::TrackingNumber::parse(tracking).expect("a tracking number"),
            ],
            carrier: "UPS".into(),
            carrier_code: None,
            tracking_urls: vec![],
            notify_customer: true,
            shipping_method: None,
        }
    }

    /// The fake answers the Shopify client's own calls as Shopify would: fulfils what is open,
    /// shows it to a retry (adopted, not fulfilled twice), refuses more than is left and a wrong token.
    #[tokio::test]
    async fn the_shopify_client_exports_to_the_fake_as_to_shopify() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let shop = FakeShopify::start(listener, "shpat_fake").expect("start");
        shop.add_order(FakeOrder {
            id: "1001".into(),
            lines: vec![FakeLine { id: "1002".into(), sku: "STAKE-10".into(), quantity: 2 }],
        });
        let client = ShopifyClient::at(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            shop.url(),
            "shpat_fake".into(),
        );

        let first = client.export(&order("1ZA", 1), false).await.expect("exported");
        assert!(!first.adopted);
        let again = client.export(&order("1ZA", 1), true).await.expect("adopted");
        assert_eq!((again.channel_ids.clone(), again.adopted), (first.channel_ids.clone(), true));
        let received = shop.fulfillments();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(
            received[0].lines,
            [ReceivedLine { line_item_id: "gid://shopify/LineItem/1002".into(), sku: "STAKE-10".into(), quantity: 1 }]
        );
        assert_eq!((received[0].tracking_numbers.clone(), received[0].notify_customer), (vec!["1ZA".to_owned()], true));

        let listed = client
            .fulfillments(&shipsync_domain::vocabulary::ChannelOrderId::parse("1001").expect("an order id"))
            .await
            .expect("listed");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].tracking_numbers, ["1ZA"]);
        let too_many = client.export(&order("1ZB", 2), false).await;
        assert!(matches!(too_many, Err(ChannelError::Permanent { .. })), "{too_many:?}");
        let page = client.orders_since(chrono::Utc::now(), None).await.expect("listed");
        assert!(page.orders.is_empty() && page.next.is_none());

        let stranger = ShopifyClient::at(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            shop.url(),
            "shpat_other".into(),
        );
        let refused = stranger.export(&order("1ZC", 1), false).await;
        assert!(matches!(refused, Err(ChannelError::Permanent { .. })), "{refused:?}");
        assert_eq!(shop.fulfillments().len(), 1, "nothing else was fulfilled");
    }
}
