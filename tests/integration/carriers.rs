//! Carrier scans: EasyPost, AfterShip and Shippo webhooks, verified and de-duplicated, recorded
//! on every shipment with the tracking number (monotonically), and releasing the export of
//! shipments whose store confirms on movement.

use carrier_webhooks::{CarrierWebhooks, Provider, providers};
use chrono::Utc;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::tenant::FeeSettings;
use wiremock::matchers::body_string_contains;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

const SECRETS: [(Provider, &str); 3] = [
    (Provider::EasyPost, "easypost-secret"),
    (Provider::AfterShip, "aftership-secret"),
    (Provider::Shippo, "shippo-secret"),
];

fn endpoint(app: &TestApp) -> CarrierWebhooks {
    CarrierWebhooks::new(app.table.clone(), app.aws.sqs.clone(), app.aws.order_queue_url.clone())
}

async fn configure(app: &TestApp) {
    for (provider, secret) in SECRETS {
        app.table.set_carrier_webhook_secret(provider.name(), secret).await.expect("secret");
    }
}

fn secret(provider: Provider) -> &'static str {
    SECRETS.iter().find(|(p, _)| *p == provider).map(|(_, s)| *s).unwrap_or_default()
}

/// The providers' documented payload shapes for one scan.
fn payload(provider: Provider, event: &str, tracking: &str, status: &str) -> Value {
    match provider {
        Provider::EasyPost => json!({
            "id": event, "object": "Event", "description": "tracker.updated", "mode": "production",
            "result": {"id": "trk_1", "object": "Tracker", "tracking_code": tracking, "status": status,
                "carrier": "UPS", "updated_at": "2026-03-02T13:00:00Z", "tracking_details": []}
        }),
        Provider::AfterShip => json!({
            "event": "tracking_update", "event_id": event, "is_tracking_first_tag": true, "ts": 1772456400,
            "msg": {"id": "a1", "tracking_number": tracking, "slug": "ups", "tag": status, "updated_at": "2026-03-02T13:00:00+00:00"}
        }),
        Provider::Shippo => json!({
            "event": "track_updated", "test": false,
            "data": {"carrier": "ups", "tracking_number": tracking,
                "tracking_status": {"status": status, "status_details": "", "status_date": format!("2026-03-02T13:00:00Z{event}")}}
        }),
    }
}

async fn post(app: &TestApp, provider: Provider, body: &Value, signature: Option<String>) -> (StatusCode, Value) {
    let body = body.to_string();
    let mut request =
        http::Request::builder().method(Method::POST).uri(format!("/carrier_webhooks/{}", provider.name()));
    if let Some(signature) = signature {
        request = request.header(providers::signature_header(provider), signature);
    }
    let response = endpoint(app).handle(request.body(bytes::Bytes::from(body)).expect("request")).await;
    (response.status(), serde_json::from_str(response.body()).unwrap_or(Value::Null))
}

async fn post_signed(app: &TestApp, provider: Provider, body: &Value) -> (StatusCode, Value) {
    // Signed now: Shippo's signed time must be within 5 minutes of the endpoint's clock.
    let signature = providers::sign(provider, body.to_string().as_bytes(), secret(provider), Utc::now().timestamp());
    post(app, provider, body, Some(signature)).await
}

async fn shipment(app: &TestApp, id: &Value) -> Value {
    app.call(Method::GET, &format!("/shipments/{id}.json"), None).await.1["shipment"].clone()
}

#[tokio::test]
async fn a_store_that_waits_for_movement_exports_on_the_first_scan_in_transit() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    configure(&app).await;
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/stores/{}.json", app.shop.id),
            Some(json!({"store": {"ship_confirmation": "tracking_movement"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let po = app.purchase_order(&app.vendor, "3001", "Moving", &[1]).await;
    let order = json!({"data": {"order": {"id": "gid://shopify/Order/3001", "fulfillments": [], "fulfillmentOrders": {"nodes": [
        {"id": "gid://shopify/FulfillmentOrder/1", "status": "OPEN", "assignedLocation": {"location": {"id": "gid://shopify/Location/1"}},
         "lineItems": {"nodes": [{"id": "gid://shopify/FulfillmentOrderLineItem/0", "remainingQuantity": 1, "lineItem": {"id": "gid://shopify/LineItem/0"}}]}}]}}}});
    Mock::given(body_string_contains("ShipsyncOrder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order))
        .mount(&shopify)
        .await;
    Mock::given(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/1"}, "userErrors": []}}})))
        .expect(1)
        .mount(&shopify)
        .await;
    let created = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z MOVE 01"])).await;
    assert_eq!(created["export_state"], "waiting_for_movement");

    // Label created: not moving yet.
    assert_eq!(
        post_signed(&app, Provider::EasyPost, &payload(Provider::EasyPost, "evt_1", "1ZMOVE01", "pre_transit")).await.0,
        StatusCode::OK
    );
    app.run_orders().await;
    app.run_exports().await;
    let state = shipment(&app, &created["id"]).await;
    assert_eq!(
        (state["tracking_status"].clone(), state["export_state"].clone()),
        (json!("pre_transit"), json!("waiting_for_movement"))
    );

    // First scan in transit: the export goes out at once.
    post_signed(&app, Provider::AfterShip, &payload(Provider::AfterShip, "e2", "1zmove01", "InTransit")).await;
    app.run_orders().await;
    app.run_exports().await;
    let state = shipment(&app, &created["id"]).await;
    assert_eq!(
        (state["tracking_status"].clone(), state["export_state"].clone()),
        (json!("in_transit"), json!("exported"))
    );

    // A late pre-transit never undoes in-transit.
    post_signed(&app, Provider::Shippo, &payload(Provider::Shippo, "x", "1ZMOVE01", "PRE_TRANSIT")).await;
    app.run_orders().await;
    assert_eq!(shipment(&app, &created["id"]).await["tracking_status"], "in_transit");
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_scans_answer_401_and_queue_nothing() {
    let app = TestApp::new().await;
    for (provider, _) in SECRETS {
        let body = payload(provider, "evt_9", "1Z9", "in_transit");
        // No secret configured yet: fail closed.
        let signature = providers::sign(provider, body.to_string().as_bytes(), secret(provider), 1);
        assert_eq!(post(&app, provider, &body, Some(signature)).await.0, StatusCode::UNAUTHORIZED, "{provider:?}");
    }
    configure(&app).await;
    for (provider, _) in SECRETS {
        let body = payload(provider, "evt_9", "1Z9", "in_transit");
        assert_eq!(post(&app, provider, &body, None).await.0, StatusCode::UNAUTHORIZED, "{provider:?} unsigned");
        let wrong = providers::sign(provider, body.to_string().as_bytes(), "not the secret", 1);
        assert_eq!(post(&app, provider, &body, Some(wrong)).await.0, StatusCode::UNAUTHORIZED, "{provider:?} wrong");
    }
    assert_eq!(app.run_orders().await, 0);
    // Shippo's default protection: the token in the URL.
    let body = payload(Provider::Shippo, "t", "1Z9", "TRANSIT").to_string();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/carrier_webhooks/shippo?token={}", secret(Provider::Shippo)))
        .body(bytes::Bytes::from(body))
        .expect("request");
    assert_eq!(endpoint(&app).handle(request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_replayed_shippo_signature_and_an_empty_secret_answer_401_and_queue_nothing() {
    let app = TestApp::new().await;
    configure(&app).await;
    let body = payload(Provider::Shippo, "old", "1ZOLD", "TRANSIT");
    // Captured a day ago, or signed for tomorrow: refused, though the signature itself is right.
    for offset in [-86_400, -302, 302] {
        let signed = providers::sign(
            Provider::Shippo,
            body.to_string().as_bytes(),
            secret(Provider::Shippo),
            Utc::now().timestamp() + offset,
        );
        assert_eq!(post(&app, Provider::Shippo, &body, Some(signed)).await.0, StatusCode::UNAUTHORIZED, "{offset}");
    }
    assert_eq!(post_signed(&app, Provider::Shippo, &body).await.0, StatusCode::OK, "signed now");
    assert_eq!(app.run_orders().await, 1);

    // An empty secret stored is no secret: nothing signed with it (or an empty token) gets in.
    for (provider, _) in SECRETS {
        app.table.set_carrier_webhook_secret(provider.name(), "").await.expect("secret");
        let body = payload(provider, "evt_empty", "1ZEMPTY", "in_transit");
        let signed = providers::sign(provider, body.to_string().as_bytes(), "", Utc::now().timestamp());
        assert_eq!(post(&app, provider, &body, Some(signed)).await.0, StatusCode::UNAUTHORIZED, "{provider:?}");
    }
    let request = http::Request::builder()
        .method(Method::POST)
        .uri("/carrier_webhooks/shippo?token=")
        .body(bytes::Bytes::from(payload(Provider::Shippo, "t", "1ZEMPTY", "TRANSIT").to_string()))
        .expect("request");
    assert_eq!(endpoint(&app).handle(request).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.run_orders().await, 0);
}

#[tokio::test]
async fn repeated_unknown_and_foreign_events_change_nothing_twice() {
    let app = TestApp::new().await;
    configure(&app).await;
    let other = app.another_tenant().await;
    let ours = app.purchase_order(&app.vendor, "3002", "Ours", &[1]).await;
    let theirs = other.purchase_order(&other.vendor, "3002", "Theirs", &[1]).await;
    // The same tracking number on two retailers' shipments: each records the scan.
    let a = app.create_shipment(&ours, shipment_body(&[(ours.items[0].id.get(), 1)], &["SHARED1"])).await;
    let b = other.create_shipment(&theirs, shipment_body(&[(theirs.items[0].id.get(), 1)], &["SHARED1"])).await;
    let scan = payload(Provider::EasyPost, "evt_shared", "SHARED1", "out_for_delivery");
    assert_eq!(post_signed(&app, Provider::EasyPost, &scan).await.1, json!({"status": "queued"}));
    assert_eq!(post_signed(&app, Provider::EasyPost, &scan).await.1, json!({"status": "duplicate"}));
    assert_eq!(app.run_orders().await, 1);
    assert_eq!(shipment(&app, &a["id"]).await["tracking_status"], "out_for_delivery");
    assert_eq!(
        other.call(Method::GET, &format!("/shipments/{}.json", b["id"]), None).await.1["shipment"]["tracking_status"],
        "out_for_delivery"
    );
    // A tracking number shipsync does not know: accepted, and nothing happens.
    assert_eq!(
        post_signed(&app, Provider::AfterShip, &payload(Provider::AfterShip, "e-unknown", "NOPE", "InTransit")).await.0,
        StatusCode::OK
    );
    assert_eq!(app.run_orders().await, 1);
    // Other events are acknowledged and ignored; malformed ones are refused.
    let other_event = json!({"id": "evt_x", "description": "batch.created", "result": {}});
    assert_eq!(post_signed(&app, Provider::EasyPost, &other_event).await.1, json!({"status": "ignored"}));
    let malformed = json!({"id": "evt_y", "description": "tracker.updated", "result": {"status": "in_transit"}});
    assert_eq!(post_signed(&app, Provider::EasyPost, &malformed).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.run_orders().await, 0);
}

#[tokio::test]
async fn every_timing_mode_for_every_channel_kind_sets_the_first_export_state() {
    let app = TestApp::new().await;
    let cases = [
        ("shopify", None, "scheduled"),
        ("shopify", Some("tracking_movement"), "waiting_for_movement"),
        ("amazon", None, "waiting_for_movement"),
        ("amazon", Some("tracking_assigned"), "scheduled"),
        ("amazon", Some("never"), "not_sent"),
        ("ebay", None, "waiting_for_movement"),
        ("ebay", Some("tracking_assigned"), "scheduled"),
        ("back_market", None, "waiting_for_movement"),
        ("back_market", Some("tracking_assigned"), "scheduled"),
    ];
    for (index, (channel, confirmation, expected)) in cases.into_iter().enumerate() {
        let mut store =
            json!({"name": format!("{channel} {index}"), "channel": channel, "shop_domain": "s.myshopify.com"});
        if let Some(mode) = confirmation {
            store["ship_confirmation"] = json!(mode);
        }
        let (status, created) = app.call(Method::POST, "/stores.json", Some(json!({ "store": store }))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let store_id = shipsync_domain::ids::StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id");
        let order = shipsync_domain::purchase_order::NewPurchaseOrder {
            retailer_id: app.retailer.id,
            vendor_id: app.vendor.id,
            store_id,
            public_reference: format!("T-{index}"),
            channel_order_id: Some(
                shipsync_domain::vocabulary::ChannelOrderId::parse(&format!("T-{index}")).expect("an order id"),
            ),
            customer_name: "Timing".into(),
            items: vec![shipsync_domain::purchase_order::NewOrderItem {
                sku: "T".into(),
                name: "T".into(),
                quantity: 2,
                cost: None,
                channel_line_item_id: Some("1".into()),
                needs_imei: false,
            }],
        };
        let po = shipsync_tools::provision::create_purchase_order(&app.table, order).await.expect("po");
        let shipment =
            app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &[&format!("TM{index}")])).await;
        assert_eq!(shipment["export_state"], expected, "{channel} {confirmation:?}");
    }
}
