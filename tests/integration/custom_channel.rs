//! A custom channel (UntilGone, or any marketplace without an API shipsync knows): its orders
//! are posted to `/webhooks/custom/{store_id}` in shipsync's documented format and signed with
//! the store's webhook secret; its shipments go to the store's receiver (a wiremock that checks
//! the exact request and its signature) once per shipment, adopted on a retry whether the
//! receiver answers the idempotency-key read or only the repeated POST.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::StoreId;
use shipsync_domain::purchase_order::PurchaseOrder;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::harness::{TestApp, errors};

const WEBHOOK_SECRET: &str = "custom-webhook-secret-0001";
const SIGNING_SECRET: &str = "custom-signing-secret-0001";

/// A request signed as shipsync signs a custom channel's shipments: `X-Shipsync-Signature` is
/// `v1=` HMAC-SHA256 over `<X-Shipsync-Timestamp>.<body>` with the store's signing secret.
struct SignedWith(&'static str);

impl Match for SignedWith {
    fn matches(&self, request: &Request) -> bool {
        let text = |name: &str| request.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let Some(timestamp) = text("x-shipsync-timestamp").and_then(|t| t.parse::<i64>().ok()) else { return false };
        text("x-shipsync-signature").as_deref()
            == Some(shipsync_channels::shipment_signature(self.0, timestamp, &request.body).as_str())
    }
}

/// A retailer with a custom channel's store whose receiver is `receiver`, selling `CU-1`.
async fn custom_app(receiver: &MockServer) -> (TestApp, StoreId) {
    let mut app = TestApp::new().await;
    app.api = app.api.clone().allowing_store_base_url();
    let store = json!({"store": {"name": "UntilGone", "channel": "custom",
        "shipment_url": format!("{}/shipsync/shipments", receiver.uri()),
        "credentials": {"signing_secret": SIGNING_SECRET, "webhook_secret": WEBHOOK_SECRET}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["store"]["ship_confirmation"], "tracking_assigned", "{created}");
    let product = json!({"product": {"sku": "CU-1", "vendor_id": app.vendor.id.get()}});
    let (status, json) = app.call(Method::POST, "/products.json", Some(product)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    (app, StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id"))
}

/// Posts `body` to a store's custom webhook URL, signed with `secret`.
async fn post_order(app: &TestApp, store: StoreId, secret: &str, body: &str) -> (StatusCode, Value) {
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/custom/{store}"))
        .header("content-type", "application/json")
        .header("x-shipsync-hmac-sha256", shopify_webhooks::sign(body.as_bytes(), secret))
        .header("x-shipsync-delivery-id", "delivery-1")
        .body(bytes::Bytes::from(body.to_owned()))
        .expect("request");
    let response = app.webhooks.handle(request).await;
    (response.status(), serde_json::from_str(response.body()).unwrap_or(Value::Null))
}

fn order(updated_at: &str, quantity: u32) -> String {
    json!({"order": {"id": "UG-1001", "number": "1001", "updated_at": updated_at, "customer_name": "Ann Example",
        "lines": [{"id": "UG-1001-1", "sku": "CU-1", "name": "Lamp", "quantity": quantity, "unit_price": "19.99"}]}})
    .to_string()
}

async fn purchase_order(app: &TestApp, store: StoreId) -> Option<PurchaseOrder> {
    app.table
        .purchase_order_by_number(app.retailer.id, &format!("S{store}-1001-V{}", app.vendor.id))
        .await
        .expect("read")
}

/// The shipment shipsync posts for one unit in parcel `tracking`.
fn expected_body(shipment: &Value, tracking: &str) -> Value {
    let id = shipment["id"].as_u64().expect("id");
    json!({"shipment": {
        "id": id, "idempotency_key": format!("shipsync-shipment-{id}"), "order_id": "UG-1001",
        "shipped_at": shipment["created_at"].as_str().expect("created_at").replace(".000Z", "Z"),
        "carrier": "UPS", "shipping_method": null, "notify_customer": true, "tracking_numbers": [tracking],
        "lines": [{"line_id": "UG-1001-1", "sku": "CU-1", "quantity": 1, "serial_codes": []}],
        "packages": [{"tracking_number": tracking,
            "tracking_url": format!("https://www.ups.com/track?tracknum={tracking}"),
            "lines": [{"line_id": "UG-1001-1", "quantity": 1}]}]}})
}

async fn ship_one(app: &TestApp, po: &PurchaseOrder, tracking: &str) -> Value {
    let body = json!({"shipment": {"shipper_name": "UPS",
        "shipment_items_attributes": [{"order_item_id": po.items[0].id.get(), "quantity": 1}],
        "shipment_trackings_attributes": [{"tracking": tracking}]}});
    app.create_shipment(po, body).await
}

async fn state(app: &TestApp, shipment: &Value) -> Value {
    let (_, json) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    json["shipment"].clone()
}

#[tokio::test]
async fn a_posted_order_becomes_a_purchase_order_and_its_shipment_goes_to_the_receiver_once() {
    let receiver = MockServer::start().await;
    let (app, store) = custom_app(&receiver).await;
    let (status, answer) = post_order(&app, store, WEBHOOK_SECRET, &order("2026-03-02T11:00:00Z", 2)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "queued"})));
    // Delivered twice: applied once.
    post_order(&app, store, WEBHOOK_SECRET, &order("2026-03-02T11:00:00Z", 2)).await;
    app.run_orders().await;
    let po = purchase_order(&app, store).await.expect("a purchase order");
    assert_eq!((po.customer_name.as_str(), po.items.len(), po.items[0].quantity), ("Ann Example", 1, 2));
    assert_eq!(po.items[0].channel_line_item_id.as_deref(), Some("UG-1001-1"));

    let shipment = ship_one(&app, &po, "1Z999AA10000009001").await;
    Mock::given(method("POST"))
        .and(path("/shipsync/shipments"))
        .and(header("idempotency-key", format!("shipsync-shipment-{}", shipment["id"]).as_str()))
        .and(header("content-type", "application/json"))
        .and(SignedWith(SIGNING_SECRET))
        .and(body_json(expected_body(&shipment, "1Z999AA10000009001")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "UG-SHIP-1"})))
        .expect(1)
        .mount(&receiver)
        .await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!(["UG-SHIP-1"]));
    app.run_exports().await;
    assert_eq!(receiver.received_requests().await.unwrap_or_default().len(), 1, "posted once");

    // A later version cancels the order's unshipped units: the purchase order follows.
    let mut cancelled: Value = serde_json::from_str(&order("2026-03-02T13:00:00Z", 2)).expect("json");
    cancelled["order"]["cancelled"] = json!(true);
    let (status, _) = post_order(&app, store, WEBHOOK_SECRET, &cancelled.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    app.run_orders().await;
    let po = purchase_order(&app, store).await.expect("a purchase order");
    assert_eq!(po.items[0].quantity_cancelled, 1, "the unit not shipped is cancelled: {po:?}");
}

#[tokio::test]
async fn a_lost_answer_is_adopted_by_reading_the_idempotency_key_and_not_posted_twice() {
    let receiver = MockServer::start().await;
    let (app, store) = custom_app(&receiver).await;
    post_order(&app, store, WEBHOOK_SECRET, &order("2026-03-02T11:00:00Z", 1)).await;
    app.run_orders().await;
    let po = purchase_order(&app, store).await.expect("a purchase order");
    let shipment = ship_one(&app, &po, "1Z999AA10000009002").await;
    let key = format!("shipsync-shipment-{}", shipment["id"]);
    // The receiver takes it, but its answer is lost on the way back.
    Mock::given(method("POST"))
        .and(path("/shipsync/shipments"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&receiver)
        .await;
    Mock::given(method("GET"))
        .and(path("/shipsync/shipments"))
        .and(query_param("idempotency_key", key.as_str()))
        .and(SignedWith(SIGNING_SECRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "UG-SHIP-2"})))
        .expect(1)
        .mount(&receiver)
        .await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!(["UG-SHIP-2"]));
}

#[tokio::test]
async fn a_receiver_without_the_read_is_guarded_by_the_key_alone() {
    let receiver = MockServer::start().await;
    let (app, store) = custom_app(&receiver).await;
    post_order(&app, store, WEBHOOK_SECRET, &order("2026-03-02T11:00:00Z", 1)).await;
    app.run_orders().await;
    let po = purchase_order(&app, store).await.expect("a purchase order");
    let shipment = ship_one(&app, &po, "1Z999AA10000009003").await;
    let key = format!("shipsync-shipment-{}", shipment["id"]);
    // First POST: taken, answer lost. The read is not offered (405). The second POST carries the
    // same key, and the receiver answers 409 with what it has.
    Mock::given(method("POST"))
        .and(path("/shipsync/shipments"))
        .and(header("idempotency-key", key.as_str()))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/shipsync/shipments"))
        .and(header("idempotency-key", key.as_str()))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"id": "UG-SHIP-3", "error": "duplicate"})))
        .with_priority(2)
        .mount(&receiver)
        .await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(405)).mount(&receiver).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!(["UG-SHIP-3"]));
}

#[tokio::test]
async fn refused_deliveries_queue_nothing_and_say_why() {
    let receiver = MockServer::start().await;
    let (app, store) = custom_app(&receiver).await;
    let good = order("2026-03-02T11:00:00Z", 1);
    // Another store's secret, an unknown store, a Shopify store: the same 401, nothing learnt.
    let (forged, forged_body) = post_order(&app, store, "not-the-secret", &good).await;
    let (unknown, unknown_body) = post_order(&app, StoreId::new(999_999).expect("id"), WEBHOOK_SECRET, &good).await;
    let (shopify, shopify_body) = post_order(&app, app.shop.id, WEBHOOK_SECRET, &good).await;
    assert_eq!(
        (forged, unknown, shopify),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(forged_body, unknown_body);
    assert_eq!(forged_body, shopify_body);
    // Signed but wrong: 4xx naming the field.
    let bad_quantity = good.replace("\"quantity\":1", "\"quantity\":-1");
    let (status, json) = post_order(&app, store, WEBHOOK_SECRET, &bad_quantity).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(errors(&json), ["order.lines[0].quantity must be a whole number, 0 or more"]);
    let (status, json) = post_order(&app, store, WEBHOOK_SECRET, &good.replace("updated_at", "changed_at")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert!(errors(&json)[0].starts_with("order.updated_at is required"), "{json}");
    let (status, _) = post_order(&app, store, WEBHOOK_SECRET, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.run_orders().await, 0, "nothing was queued");
}

#[tokio::test]
async fn a_receiver_url_must_be_https_to_a_public_host_and_a_custom_store_must_have_one() {
    // As deployed: no store may name a local address.
    let app = TestApp::new().await;
    let store = |url: Value, signing: &str| {
        json!({"store": {"name": "UntilGone", "channel": "custom", "shipment_url": url,
            "credentials": {"signing_secret": signing}}})
    };
    for (url, signing, field) in [
        (json!("http://receiver.example.com/shipments"), SIGNING_SECRET, "shipment_url"),
        (json!("https://169.254.169.254/latest"), SIGNING_SECRET, "shipment_url"),
        (json!("https://localhost:9001/2018-06-01/runtime"), SIGNING_SECRET, "shipment_url"),
        (Value::Null, SIGNING_SECRET, "shipment_url"),
        (json!("https://receiver.example.com/shipments"), "short", "credentials.signing_secret"),
    ] {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(store(url.clone(), signing))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {json}");
        assert!(errors(&json).iter().any(|error| error.starts_with(field)), "{url}: {json}");
    }
    let (status, json) = app
        .call(
            Method::PUT,
            &format!("/stores/{}.json", app.shop.id),
            Some(json!({"store": {"shipment_url": "https://receiver.example.com/shipments"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a Shopify store has no receiver: {json}");
    let (status, json) = app
        .call(
            Method::POST,
            "/stores.json",
            Some(store(json!("https://receiver.example.com/shipments"), SIGNING_SECRET)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["store"]["shipment_url"], "https://receiver.example.com/shipments");
}
