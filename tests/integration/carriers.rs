//! Carrier scans: EasyPost, AfterShip and Shippo webhooks at each store's own URL
//! (`/carrier_webhooks/{provider}/{store_id}`), verified with that store's secret, recorded on
//! that store's shipments with the tracking number (monotonically), and releasing the export of
//! shipments whose store confirms on movement. Isolation between stores: credentials.rs.

use carrier_webhooks::{Provider, providers};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::FeeSettings;
use shipsync_domain::tracking::TrackingProvider;
use std::collections::BTreeMap;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

const SECRET: &str = "store-tracking-secret";

/// Every provider, as the store names it and as its URL names it.
const PROVIDERS: [(TrackingProvider, Provider); 3] = [
    (TrackingProvider::Easypost, Provider::EasyPost),
    (TrackingProvider::Aftership, Provider::AfterShip),
    (TrackingProvider::Shippo, Provider::Shippo),
];

/// The providers' documented payload shapes for one scan.
pub fn payload(provider: Provider, event: &str, tracking: &str, status: &str) -> Value {
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

/// An EasyPost fake that registers any tracker.
pub async fn easypost() -> MockServer {
    let easypost = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "trk_1", "object": "Tracker"})))
        .mount(&easypost)
        .await;
    easypost
}

async fn shipment(app: &TestApp, id: &Value) -> Value {
    app.call(Method::GET, &format!("/shipments/{id}.json"), None).await.1["shipment"].clone()
}

/// A Shopify fake for order `number` that expects exactly one fulfillment.
async fn shopify_expecting_one_fulfillment(number: &str) -> MockServer {
    let shopify = MockServer::start().await;
    let order = json!({"data": {"order": {"id": format!("gid://shopify/Order/{number}"), "fulfillments": [], "fulfillmentOrders": {"nodes": [
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
    shopify
}

fn waiting_for_movement() -> ExportSettings {
    ExportSettings {
        ship_confirmation: Some(shipsync_domain::export::ShipConfirmation::TrackingMovement),
        ..ExportSettings::default()
    }
}

#[tokio::test]
async fn a_store_that_waits_for_movement_exports_on_the_first_scan_in_transit_once() {
    let shopify = shopify_expecting_one_fulfillment("3001").await;
    let app = TestApp::with(FeeSettings::default(), waiting_for_movement(), Some(&shopify.uri())).await;
    let easypost = easypost().await;
    app.track_with(TrackingProvider::Easypost, &easypost.uri(), SECRET).await;
    let po = app.purchase_order(&app.vendor, "3001", "Moving", &[1]).await;
    let created = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z MOVE 01"])).await;
    assert_eq!(created["export_state"], "waiting_for_movement");
    let store = app.shop.id;

    // Label created: not moving yet.
    let label = payload(Provider::EasyPost, "evt_1", "1ZMOVE01", "pre_transit");
    assert_eq!(app.post_scan(Provider::EasyPost, store, Some(SECRET), &label).await.0, StatusCode::OK);
    app.run_orders().await;
    app.run_exports().await;
    let state = shipment(&app, &created["id"]).await;
    assert_eq!(
        (state["tracking_status"].clone(), state["export_state"].clone()),
        (json!("pre_transit"), json!("waiting_for_movement"))
    );

    // First scan in transit (the number as the provider spells it): the export goes out at once.
    // The provider delivers it twice: nothing remembers it, both are queued, the second is a no-op.
    let moving = payload(Provider::EasyPost, "evt_2", "1zmove01", "in_transit");
    for _ in 0..2 {
        let answer = app.post_scan(Provider::EasyPost, store, Some(SECRET), &moving).await;
        assert_eq!(answer, (StatusCode::OK, json!({"status": "queued"})));
    }
    assert_eq!(app.run_orders().await, 2);
    app.run_exports().await;
    let state = shipment(&app, &created["id"]).await;
    assert_eq!(
        (state["tracking_status"].clone(), state["export_state"].clone()),
        (json!("in_transit"), json!("exported"))
    );

    // A late pre-transit never undoes in-transit.
    assert_eq!(app.post_scan(Provider::EasyPost, store, Some(SECRET), &label).await.0, StatusCode::OK);
    app.run_orders().await;
    app.run_exports().await;
    assert_eq!(shipment(&app, &created["id"]).await["tracking_status"], "in_transit");
    // Exactly one fulfillment (checked when the fake is dropped).
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_scans_answer_401_and_queue_nothing() {
    let app = TestApp::new().await;
    let tracker = MockServer::start().await;
    for (tracking, provider) in PROVIDERS {
        app.track_with(tracking, &tracker.uri(), SECRET).await;
        let body = payload(provider, "evt_9", "1Z9", "in_transit");
        let store = app.shop.id;
        assert_eq!(app.post_scan(provider, store, None, &body).await.0, StatusCode::UNAUTHORIZED, "{provider:?}");
        let wrong = app.post_scan(provider, store, Some("not the secret"), &body).await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED, "{provider:?} wrong");
        assert!(
            wrong.1["errors"][0].as_str().is_some_and(|error| error.starts_with("webhook refused")),
            "{provider:?}: {}",
            wrong.1
        );
        assert_eq!(app.post_scan(provider, store, Some(SECRET), &body).await.0, StatusCode::OK, "{provider:?}");
    }
    assert_eq!(app.run_orders().await, 3, "only the signed ones");
    // Shippo's default protection: the token in the URL.
    let body = payload(Provider::Shippo, "t", "1Z9", "TRANSIT").to_string();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/carrier_webhooks/shippo/{}?token={SECRET}", app.shop.id))
        .body(bytes::Bytes::from(body))
        .expect("request");
    let endpoint =
        carrier_webhooks::CarrierWebhooks::new(app.table.clone(), app.aws.sqs.clone(), app.aws.order_queue_url.clone());
    assert_eq!(endpoint.handle(request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_replayed_shippo_signature_and_an_empty_or_missing_secret_answer_401_and_queue_nothing() {
    let app = TestApp::new().await;
    let tracker = MockServer::start().await;
    app.track_with(TrackingProvider::Shippo, &tracker.uri(), SECRET).await;
    let store = app.shop.id;
    let body = payload(Provider::Shippo, "old", "1ZOLD", "TRANSIT");
    // Captured a day ago, or signed for tomorrow: refused, though the signature itself is right.
    for offset in [-86_400, -302, 302] {
        let signed = providers::sign(
            Provider::Shippo,
            body.to_string().as_bytes(),
            SECRET,
            chrono::Utc::now().timestamp() + offset,
        );
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/carrier_webhooks/shippo/{store}"))
            .header(providers::signature_header(Provider::Shippo), signed)
            .body(bytes::Bytes::from(body.to_string()))
            .expect("request");
        let endpoint = carrier_webhooks::CarrierWebhooks::new(
            app.table.clone(),
            app.aws.sqs.clone(),
            app.aws.order_queue_url.clone(),
        );
        assert_eq!(endpoint.handle(request).await.status(), StatusCode::UNAUTHORIZED, "{offset}");
    }
    assert_eq!(app.post_scan(Provider::Shippo, store, Some(SECRET), &body).await.0, StatusCode::OK, "signed now");
    assert_eq!(app.run_orders().await, 1);

    // A store saved before its secret was required (no secret), or with an empty one: nothing
    // signed with an empty secret (or an empty token) gets in.
    for stored in [None, Some(""), Some("  ")] {
        let mut credentials = BTreeMap::from([("tracking_api_key".to_owned(), "shippo_key".to_owned())]);
        if let Some(secret) = stored {
            credentials.insert("tracking_webhook_secret".to_owned(), secret.to_owned());
        }
        app.table.save_credentials(app.retailer.id, store, &ChannelCredentials(credentials)).await.expect("save");
        let body = payload(Provider::Shippo, "evt_empty", "1ZEMPTY", "TRANSIT");
        assert_eq!(app.post_scan(Provider::Shippo, store, Some(""), &body).await.0, StatusCode::UNAUTHORIZED);
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/carrier_webhooks/shippo/{store}?token="))
            .body(bytes::Bytes::from(body.to_string()))
            .expect("request");
        let endpoint = carrier_webhooks::CarrierWebhooks::new(
            app.table.clone(),
            app.aws.sqs.clone(),
            app.aws.order_queue_url.clone(),
        );
        assert_eq!(endpoint.handle(request).await.status(), StatusCode::UNAUTHORIZED, "{stored:?}");
    }
    assert_eq!(app.run_orders().await, 0);
}

#[tokio::test]
async fn unknown_numbers_and_other_events_change_nothing() {
    let app = TestApp::new().await;
    let easypost = easypost().await;
    app.track_with(TrackingProvider::Easypost, &easypost.uri(), SECRET).await;
    let store = app.shop.id;
    let po = app.purchase_order(&app.vendor, "3002", "Ours", &[1]).await;
    let ours = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["OURS1"])).await;
    // A tracking number the store does not know: accepted, and nothing happens.
    let unknown = payload(Provider::EasyPost, "e-unknown", "NOPE", "in_transit");
    assert_eq!(app.post_scan(Provider::EasyPost, store, Some(SECRET), &unknown).await.0, StatusCode::OK);
    assert_eq!(app.run_orders().await, 1);
    assert_eq!(shipment(&app, &ours["id"]).await["tracking_status"], Value::Null);
    // Other events are acknowledged and ignored; malformed ones are refused.
    let other_event = json!({"id": "evt_x", "description": "batch.created", "result": {}});
    assert_eq!(
        app.post_scan(Provider::EasyPost, store, Some(SECRET), &other_event).await.1,
        json!({"status": "ignored"})
    );
    let malformed = json!({"id": "evt_y", "description": "tracker.updated", "result": {"status": "in_transit"}});
    assert_eq!(app.post_scan(Provider::EasyPost, store, Some(SECRET), &malformed).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.run_orders().await, 0);
    let scan = payload(Provider::EasyPost, "evt_ours", "OURS1", "out_for_delivery");
    assert_eq!(app.post_scan(Provider::EasyPost, store, Some(SECRET), &scan).await.0, StatusCode::OK);
    assert_eq!(app.run_orders().await, 1);
    assert_eq!(shipment(&app, &ours["id"]).await["tracking_status"], "out_for_delivery");
}

#[tokio::test]
async fn a_url_that_is_not_a_stores_own_carrier_webhook_is_refused_like_a_bad_signature() {
    let app = TestApp::new().await;
    let scan = payload(Provider::EasyPost, "evt_1", "1Z1", "in_transit");
    let refused = |provider: Provider, store: &str, body: &Value| {
        let app = &app;
        let body = body.clone();
        let store = store.to_owned();
        async move { app.post_scan(provider, &store, Some(SECRET), &body).await }
    };
    // A store without tracking: its URL serves no provider.
    let store = app.shop.id.to_string();
    let (status, without_tracking) = refused(Provider::EasyPost, &store, &scan).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let easypost = easypost().await;
    app.track_with(TrackingProvider::Easypost, &easypost.uri(), SECRET).await;
    assert_eq!(app.post_scan(Provider::EasyPost, &store, Some(SECRET), &scan).await.0, StatusCode::OK);
    // Another provider's URL of an EasyPost store, an unknown store, a store id that is none, a
    // wrong signature: one answer, so probing tells nothing of which stores exist or use what.
    let aftership = payload(Provider::AfterShip, "e1", "1Z1", "InTransit");
    assert_eq!(
        refused(Provider::AfterShip, &store, &aftership).await,
        (StatusCode::UNAUTHORIZED, without_tracking.clone())
    );
    for unknown in ["999999999", "0", "abc"] {
        assert_eq!(
            refused(Provider::EasyPost, unknown, &scan).await,
            (StatusCode::UNAUTHORIZED, without_tracking.clone())
        );
    }
    let badly_signed = app.post_scan(Provider::EasyPost, &store, Some("another secret"), &scan).await;
    assert_eq!(badly_signed, (StatusCode::UNAUTHORIZED, without_tracking));
    let endpoint =
        carrier_webhooks::CarrierWebhooks::new(app.table.clone(), app.aws.sqs.clone(), app.aws.order_queue_url.clone());
    let call = |method: Method, uri: &str| {
        http::Request::builder().method(method).uri(uri).body(bytes::Bytes::from(scan.to_string())).expect("request")
    };
    // The deployment-wide URL of earlier versions says where scans go now.
    let former = endpoint.handle(call(Method::POST, "/carrier_webhooks/easypost")).await;
    assert_eq!(former.status(), StatusCode::NOT_FOUND);
    let answer: Value = serde_json::from_str(former.body()).expect("JSON");
    assert!(
        answer["errors"][0].as_str().is_some_and(|error| error.contains("/carrier_webhooks/easypost/{store_id}")),
        "{answer}"
    );
    let unknown_provider = endpoint.handle(call(Method::POST, &format!("/carrier_webhooks/fedex/{store}"))).await;
    assert_eq!(unknown_provider.status(), StatusCode::NOT_FOUND);
    let read = endpoint.handle(call(Method::GET, &format!("/carrier_webhooks/easypost/{store}"))).await;
    assert_eq!(read.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.run_orders().await, 1, "only the store's own URL queued");
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

/// A table written before tracking-number records held the store: a scan at the store's URL
/// finds the shipment only once `shipsync-admin rekey-tracking-numbers` has moved its record.
#[tokio::test]
async fn old_tracking_number_records_are_moved_to_their_store_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::with(FeeSettings::default(), waiting_for_movement(), None).await;
    let tracker = MockServer::start().await;
    app.track_with(TrackingProvider::Easypost, &tracker.uri(), SECRET).await;
    let po = app.purchase_order(&app.vendor, "3009", "Before", &[1]).await;
    let created = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z OLD 0001"])).await;
    // As an earlier version wrote it: `TRACKING#<number>`.
    let key = |pk: String| {
        [
            ("pk".to_owned(), AttributeValue::S(pk)),
            ("sk".to_owned(), AttributeValue::S(format!("SHIPMENT#{}", created["id"]))),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    let client = app.table.client();
    let current = key(format!("TRACKING#{}#1ZOLD0001", app.shop.id));
    let item = client
        .get_item()
        .table_name(app.table.table_name())
        .set_key(Some(current.clone()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the store's tracking record");
    let mut old = item.clone();
    old.extend(key("TRACKING#1ZOLD0001".to_owned()));
    client.put_item().table_name(app.table.table_name()).set_item(Some(old)).send().await.expect("put");
    client.delete_item().table_name(app.table.table_name()).set_key(Some(current)).send().await.expect("delete");

    let scan = payload(Provider::EasyPost, "evt_old", "1ZOLD0001", "in_transit");
    assert_eq!(app.post_scan(Provider::EasyPost, app.shop.id, Some(SECRET), &scan).await.0, StatusCode::OK);
    app.run_orders().await;
    assert_eq!(shipment(&app, &created["id"]).await["tracking_status"], Value::Null, "not found before the rekey");

    assert_eq!(app.table.rekey_tracking_numbers().await.expect("rekey"), 1);
    assert_eq!(app.table.rekey_tracking_numbers().await.expect("rekey again"), 0);
    assert_eq!(app.post_scan(Provider::EasyPost, app.shop.id, Some(SECRET), &scan).await.0, StatusCode::OK);
    app.run_orders().await;
    let state = shipment(&app, &created["id"]).await;
    assert_eq!(
        (state["tracking_status"].clone(), state["export_state"].clone()),
        (json!("in_transit"), json!("scheduled"))
    );
}
