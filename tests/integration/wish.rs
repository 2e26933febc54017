//! Wish against a wiremock that checks the exact requests its Merchant API v3 takes: the poller
//! renews the store's token (once, under a lease, however many pollers tick at once) and lists
//! orders with it; a shipment's tracking goes on the first carrier scan with the store's
//! origin_country and Wish's carrier name; a lost answer is adopted by reading the order; a
//! renewal Wish refuses is listed in order health and cleared by the next that works.

use chrono::Utc;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::StoreId;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::TestApp;

const ORDER: &str = "5f1a0c2e9b1d4a0012ab34cd";
const EASYPOST_SECRET: &str = "wi-easypost-secret";

async fn wish_app(wish: &MockServer, easypost: &MockServer, confirmation: &str) -> (TestApp, StoreId) {
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
    let store = json!({"store": {"name": "Wish", "channel": "wish", "base_url": wish.uri(), "origin_country": "us",
        "ship_confirmation": confirmation, "tracking_provider": "easypost", "tracking_base_url": easypost.uri(),
        "credentials": {"wish_client_id": "5f00000000000000000c11e7", "wish_client_secret": "wish-secret",
            "refresh_token": "refresh-1", "tracking_api_key": "EZ", "tracking_webhook_secret": EASYPOST_SECRET}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["store"]["origin_country"], "US");
    let product = json!({"product": {"sku": "WI-1", "vendor_id": app.vendor.id.get()}});
    let (status, json) = app.call(Method::POST, "/products.json", Some(product)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    (app, StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id"))
}

fn envelope(data: Value) -> Value {
    json!({"code": 0, "message": "", "data": data})
}

/// Wish's renewal: the refresh token the store holds, for a new pair (`access-2`, `refresh-2`).
async fn renews(wish: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/v3/oauth/refresh_token"))
        .and(query_param("client_id", "5f00000000000000000c11e7"))
        .and(query_param("client_secret", "wish-secret"))
        .and(query_param("refresh_token", "refresh-1"))
        .and(query_param("grant_type", "refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(envelope(json!({"access_token": "access-2",
            "refresh_token": "refresh-2", "expiry_time": "2099-01-01T00:00:00.000+00:00",
            "merchant_id": "5f0000000000000000000001", "scopes": ["orders:read", "orders:write"]}))))
        .mount(wish)
        .await;
}

fn order(state: &str, tracking: Option<&str>) -> Value {
    let tracking: Vec<Value> = tracking
        .into_iter()
        .map(|number| json!({"tracking_number": number, "origin_country": "US", "shipping_provider": {"name": "UPS"}}))
        .collect();
    json!({"id": ORDER, "state": state, "transaction_id": "5f1a0c2e9b1d4a0012ab0000",
        "updated_at": "2026-03-02T11:00:00.000Z", "released_at": "2026-03-02T10:00:00.000Z",
        "product_information": {"id": "p1", "variation_id": "v1", "sku": "WI-1", "name": "Mug"},
        "order_payment": {"general_payment_details": {"product_quantity": 2,
            "product_price": {"amount": 4.5, "currency_code": "USD"}}},
        "full_address": {"shipping_detail": {"name": "Jo Buyer", "city": "Austin", "country_code": "US"}},
        "tracking_information": tracking})
}

/// Lists the order (approved) to a caller holding the renewed token.
async fn lists_the_order(wish: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/v3/orders"))
        .and(query_param("sort_by", "updated_at.asc"))
        .and(query_param("limit", "250"))
        .and(header("authorization", "Bearer access-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(envelope(json!([order("APPROVED", None)]))))
        .mount(wish)
        .await;
}

async fn requests(server: &MockServer, at: &str) -> Vec<Request> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests.into_iter().filter(|r| r.url.path() == at).collect()
}

async fn state(app: &TestApp, shipment: &Value) -> Value {
    let (_, json) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    json["shipment"].clone()
}

/// Polls (renewing the token first), and ships both units in one parcel.
async fn poll_and_ship(app: &TestApp, wish: &MockServer, store: StoreId, tracking: &str) -> Value {
    renews(wish).await;
    lists_the_order(wish).await;
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.orders_queued, report.failures.len()), (1, 0), "{report:?}");
    app.run_orders().await;
    let po = app
        .table
        .purchase_order_by_number(app.retailer.id, &format!("S{store}-{ORDER}-V{}", app.vendor.id))
        .await
        .expect("read")
        .expect("a purchase order");
    assert_eq!(po.items.iter().map(|i| (i.sku.as_str(), i.quantity)).collect::<Vec<_>>(), [("WI-1", 2)]);
    assert_eq!(po.customer_name, "Jo Buyer");
    let body = json!({"shipment": {"shipper_name": "UPS",
        "shipment_items_attributes": [{"order_item_id": po.items[0].id.get(), "quantity": 2}],
        "shipment_trackings_attributes": [{"tracking": tracking}]}});
    app.create_shipment(&po, body).await
}

fn tracking_body(tracking: &str) -> Value {
    json!({"tracking_number": tracking, "shipping_provider": "UPS", "origin_country": "US"})
}

async fn ships(wish: &MockServer, tracking: &str, priority: u8) {
    Mock::given(method("PUT"))
        .and(path(format!("/api/v3/orders/{ORDER}/tracking")))
        .and(header("authorization", "Bearer access-2"))
        .and(body_json(tracking_body(tracking)))
        .respond_with(ResponseTemplate::new(200).set_body_json(envelope(order("SHIPPED", Some(tracking)))))
        .with_priority(priority)
        .mount(wish)
        .await;
}

/// Posts a signed EasyPost scan for `tracking` to the store's URL, and applies it.
async fn scan(app: &TestApp, store: StoreId, tracking: &str) {
    let (status, body) = crate::harness::post_easypost_scan(app, store, EASYPOST_SECRET, tracking, "in_transit").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.run_orders().await;
}

#[tokio::test]
async fn the_token_is_renewed_once_and_tracking_goes_on_the_first_scan() {
    let (wish, easypost) = (MockServer::start().await, MockServer::start().await);
    let (app, store) = wish_app(&wish, &easypost, "tracking_movement").await;
    let tracking = "1Z999AA10000005021";
    let shipment = poll_and_ship(&app, &wish, store, tracking).await;
    assert_eq!(shipment["export_state"], "waiting_for_movement", "Wish stores confirm on movement: {shipment}");
    ships(&wish, tracking, 1).await;
    app.run_exports().await;
    assert!(requests(&wish, &format!("/api/v3/orders/{ORDER}/tracking")).await.is_empty(), "nothing before a scan");
    scan(&app, store, tracking).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!([tracking]));
    app.run_exports().await;
    assert_eq!(requests(&wish, &format!("/api/v3/orders/{ORDER}/tracking")).await.len(), 1, "shipped once");
    // Two pollers at once, once the token is due again: one renewal between them, since
    // each renewal revokes the tokens before it. The stored pair is the one used.
    Mock::given(method("GET"))
        .and(path("/api/v3/oauth/refresh_token"))
        .and(query_param("refresh_token", "refresh-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(envelope(json!({"access_token": "access-3",
            "refresh_token": "refresh-3", "expiry_time": "2099-03-01T00:00:00.000+00:00", "merchant_id": "m",
            "scopes": ["orders:read", "orders:write"]}))))
        .mount(&wish)
        .await;
    let later = Utc::now() + chrono::Duration::days(365 * 80);
    let poller = app.poller.clone().with_clock(std::sync::Arc::new(move || later));
    let other = app.poller.clone().with_clock(std::sync::Arc::new(move || later));
    let (first, second) = tokio::join!(poller.tick(), other.tick());
    assert!(first.is_ok() && second.is_ok());
    assert_eq!(requests(&wish, "/api/v3/oauth/refresh_token").await.len(), 2, "the first renewal, then one more");
    app.table.forget_settings(app.retailer.id);
    let stored = app.table.credentials(app.retailer.id, store).await.expect("credentials");
    assert_eq!(stored.0.get("access_token").map(String::as_str), Some("access-3"));
    assert_eq!(stored.0.get("refresh_token").map(String::as_str), Some("refresh-3"));
    assert_eq!(stored.0.get("tracking_webhook_secret").map(String::as_str), None, "webhook secrets stay apart");
    let webhook = app.table.webhook_credentials(app.retailer.id, store).await.expect("webhook secrets");
    assert_eq!(webhook.0.get("tracking_webhook_secret").map(String::as_str), Some(EASYPOST_SECRET), "kept");
}

#[tokio::test]
async fn a_lost_answer_is_adopted_by_reading_the_order() {
    let (wish, easypost) = (MockServer::start().await, MockServer::start().await);
    let (app, store) = wish_app(&wish, &easypost, "tracking_assigned").await;
    let tracking = "1Z999AA10000005022";
    // Wish takes the tracking, but its answer is lost; the retry reads the order and finds it.
    Mock::given(method("PUT"))
        .and(path(format!("/api/v3/orders/{ORDER}/tracking")))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&wish)
        .await;
    ships(&wish, tracking, 2).await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v3/orders/{ORDER}")))
        .and(header("authorization", "Bearer access-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(envelope(order("SHIPPED", Some(tracking)))))
        .mount(&wish)
        .await;
    let shipment = poll_and_ship(&app, &wish, store, tracking).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(requests(&wish, &format!("/api/v3/orders/{ORDER}/tracking")).await.len(), 1, "sent once, adopted");
    assert_eq!(requests(&wish, &format!("/api/v3/orders/{ORDER}")).await.len(), 1, "read once, on the retry");
}

#[tokio::test]
async fn a_renewal_wish_refuses_is_listed_and_cleared_by_the_next_that_works() {
    let (wish, easypost) = (MockServer::start().await, MockServer::start().await);
    let (app, _store) = wish_app(&wish, &easypost, "tracking_assigned").await;
    Mock::given(method("GET"))
        .and(path("/api/v3/oauth/refresh_token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 1006, "message": "Invalid refresh token", "data": {}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&wish)
        .await;
    renews(&wish).await;
    lists_the_order(&wish).await;
    let report = app.poller.tick().await.expect("tick");
    assert_eq!(report.failures.len(), 1, "no token, no listing: {report:?}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    let listed = health.to_string();
    assert!(
        listed.contains("token_renewal_failed") && listed.contains("Invalid refresh token (code 1006)"),
        "{health}"
    );
    assert!(listed.contains("authorize shipsync again on Wish"), "what to do: {health}");
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.orders_queued, report.failures.len()), (1, 0), "{report:?}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert!(!health.to_string().contains("token_renewal_failed"), "cleared: {health}");
}

#[tokio::test]
async fn a_wish_store_needs_its_origin_country_and_cannot_confirm_never() {
    let mut app = TestApp::new().await;
    app.api = app.api.clone().allowing_store_base_url();
    let credentials = json!({"wish_client_id": "c", "wish_client_secret": "s", "refresh_token": "r"});
    let store = json!({"store": {"name": "Wish", "channel": "wish", "credentials": credentials}});
    let (status, refused) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("origin_country"), "{refused}");
    let store =
        json!({"store": {"name": "Wish", "channel": "wish", "origin_country": "USA", "credentials": credentials}});
    let (status, refused) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("two-letter country code"), "{refused}");
    let store = json!({"store": {"name": "Wish", "channel": "wish", "origin_country": "US", "ship_confirmation": "never",
        "credentials": credentials}});
    let (status, refused) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "never is Amazon's only: {refused}");
    let mut expiring = credentials.clone();
    expiring["access_token_expires_at"] = json!("next week");
    let store = json!({"store": {"name": "Wish", "channel": "wish", "origin_country": "US", "credentials": expiring}});
    let (status, refused) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("access_token_expires_at"), "{refused}");
}
