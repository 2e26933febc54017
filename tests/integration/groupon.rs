//! Groupon Goods against a wiremock that checks the exact form requests its supplier API takes:
//! a poll lists the lines not yet taken, marks the routed ones exported right away (a line no
//! vendor sells stays unmarked and listed), and the shipment's tracking goes out on the first
//! carrier scan, in Groupon's carrier codes; a refusal is listed with Groupon's reason.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::StoreId;
use wiremock::matchers::{body_string, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::TestApp;

const SUPPLIER: &str = "4242";
const TOKEN: &str = "gr-token";
const EASYPOST_SECRET: &str = "gr-easypost-secret";

async fn groupon_app(groupon: &MockServer, easypost: &MockServer, confirmation: &str) -> (TestApp, StoreId) {
    let mut app = TestApp::new().await;
    app.api = app.api.clone().allowing_store_base_url();
    let (status, json) = app
        .call(
            Method::PUT,
            &format!("/stores/{}.json", app.shop.id),
            Some(json!({"store": {"poll_orders_every_minutes": 0}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "trk_1", "object": "Tracker"})))
        .mount(easypost)
        .await;
    let store = json!({"store": {"name": "Groupon", "channel": "groupon", "base_url": groupon.uri(),
        "ship_confirmation": confirmation, "tracking_provider": "easypost", "tracking_base_url": easypost.uri(),
        "credentials": {"supplier_id": SUPPLIER, "token": TOKEN, "tracking_api_key": "EZ", "tracking_webhook_secret": EASYPOST_SECRET}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let product = json!({"product": {"sku": "GR-1", "vendor_id": app.vendor.id.get()}});
    let (status, json) = app.call(Method::POST, "/products.json", Some(product)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    (app, StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id"))
}

/// One order: two units of GR-1 (line 501), and one of a SKU no vendor sells (line 502).
async fn listed_once(groupon: &MockServer) {
    let order = json!({"orderid": "GRP-1001", "date": "03/02/2026 11:00",
        "customer": {"name": "Jo Buyer", "city": "Chicago", "country": "US"},
        "line_items": [{"ci_lineitemid": 501, "sku": "GR-1", "name": "Lamp", "quantity": 2, "unit_price": "9.50"},
                       {"ci_lineitemid": 502, "sku": "NOBODY", "name": "Mystery", "quantity": 1, "unit_price": "1.00"}]});
    Mock::given(method("GET"))
        .and(path("/get_orders"))
        .and(query_param("supplier_id", SUPPLIER))
        .and(query_param("token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true, "data": [order]})))
        .expect(1)
        .mount(groupon)
        .await;
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

async fn bodies(server: &MockServer, at: &str) -> Vec<String> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == at).map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect()
}

async fn state(app: &TestApp, shipment: &Value) -> Value {
    let (_, json) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    json["shipment"].clone()
}

/// Polls, and ships both GR-1 units in one parcel.
async fn poll_and_ship(app: &TestApp, groupon: &MockServer, store: StoreId, tracking: &str) -> Value {
    listed_once(groupon).await;
    Mock::given(method("POST"))
        .and(path("/mark_exported"))
        .and(body_string(form(&[("supplier_id", SUPPLIER), ("token", TOKEN), ("ci_lineitem_ids", "[501]")])))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(groupon)
        .await;
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.orders_queued, report.failures.len()), (1, 0), "{report:?}");
    app.run_orders().await;
    let po = app
        .table
        .purchase_order_by_number(app.retailer.id, &format!("S{store}-GRP-1001-V{}", app.vendor.id))
        .await
        .expect("read")
        .expect("a purchase order");
    assert_eq!(po.items.iter().map(|i| (i.sku.as_str(), i.quantity)).collect::<Vec<_>>(), [("GR-1", 2)]);
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert!(health.to_string().contains("NOBODY"), "the unsold line is listed: {health}");
    let body = json!({"shipment": {"shipper_name": "UPS",
        "shipment_items_attributes": [{"order_item_id": po.items[0].id.get(), "quantity": 2}],
        "shipment_trackings_attributes": [{"tracking": tracking}]}});
    app.create_shipment(&po, body).await
}

fn notification(tracking: &str) -> String {
    let info = json!([{"ci_lineitem_id": 501, "carrier": "ups", "tracking": tracking, "quantity": 2}]).to_string();
    form(&[("supplier_id", SUPPLIER), ("token", TOKEN), ("tracking_info", &info)])
}

/// Posts a signed EasyPost scan for `tracking` to the store's URL, and applies it.
async fn scan(app: &TestApp, store: StoreId, tracking: &str) {
    let (status, body) = crate::harness::post_easypost_scan(app, store, EASYPOST_SECRET, tracking, "in_transit").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.run_orders().await;
}

#[tokio::test]
async fn routed_lines_are_taken_at_once_and_tracking_goes_on_the_first_scan() {
    let (groupon, easypost) = (MockServer::start().await, MockServer::start().await);
    let (app, store) = groupon_app(&groupon, &easypost, "tracking_movement").await;
    let tracking = "1Z999AA10000005011";
    let shipment = poll_and_ship(&app, &groupon, store, tracking).await;
    assert_eq!(shipment["export_state"], "waiting_for_movement", "Groupon pays on movement: {shipment}");
    Mock::given(method("POST"))
        .and(path("/tracking_notification"))
        .and(body_string(notification(tracking)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&groupon)
        .await;
    app.run_exports().await;
    assert!(bodies(&groupon, "/tracking_notification").await.is_empty(), "nothing before the parcel moves");
    scan(&app, store, tracking).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!([tracking]));
    app.run_exports().await;
    assert_eq!(bodies(&groupon, "/tracking_notification").await.len(), 1, "notified once");
}

#[tokio::test]
async fn a_lost_answer_sends_the_same_notification_again_and_a_refusal_is_listed() {
    let (groupon, easypost) = (MockServer::start().await, MockServer::start().await);
    let (app, store) = groupon_app(&groupon, &easypost, "tracking_assigned").await;
    let tracking = "1Z999AA10000005012";
    // Groupon sets the line's tracking, but its answer is lost: the retry sets the same again
    // (Groupon offers no read of what it holds; setting a line's tracking twice is one shipment).
    Mock::given(method("POST"))
        .and(path("/tracking_notification"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&groupon)
        .await;
    Mock::given(method("POST"))
        .and(path("/tracking_notification"))
        .and(body_string(notification(tracking)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .with_priority(2)
        .mount(&groupon)
        .await;
    let shipment = poll_and_ship(&app, &groupon, store, tracking).await;
    app.run_exports().await;
    assert_eq!(state(&app, &shipment).await["export_state"], "exported");
    let sent = bodies(&groupon, "/tracking_notification").await;
    assert_eq!(sent, [notification(tracking), notification(tracking)], "the same notification, twice");
}

#[tokio::test]
async fn a_notification_groupon_refuses_is_listed_with_its_reason() {
    let (groupon, easypost) = (MockServer::start().await, MockServer::start().await);
    let (app, store) = groupon_app(&groupon, &easypost, "tracking_assigned").await;
    Mock::given(method("POST"))
        .and(path("/tracking_notification"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": false, "reason": "Carrier is not approved"})),
        )
        .expect(1)
        .mount(&groupon)
        .await;
    let shipment = poll_and_ship(&app, &groupon, store, "1Z999AA10000005013").await;
    app.run_exports().await;
    let failed = state(&app, &shipment).await;
    assert_eq!(failed["export_state"], "export_failed", "{failed}");
    assert!(failed["export_error"].as_str().unwrap_or_default().contains("Carrier is not approved"), "{failed}");
}
