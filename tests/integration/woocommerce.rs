//! WooCommerce against a wiremock that checks the exact requests its REST API expects: orders
//! polled by `modified_after`, page by page as `X-WP-TotalPages` says, and by signed webhooks;
//! shipments out as core Order Fulfillments where the site has them, else as Shipment Tracking
//! items, adopted on a retry; a site with neither, or settings that cannot work, are refused
//! with what to do.

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::StoreId;
use shipsync_domain::purchase_order::PurchaseOrder;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::{TestApp, errors};

const KEY: &str = "ck_test";
const SECRET: &str = "cs_test";
const WEBHOOK_SECRET: &str = "woo-webhook-secret";

fn basic() -> String {
    format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{KEY}:{SECRET}")))
}

/// A retailer with a WooCommerce store at `site`, selling `WC-1` and `WC-2`, confirming once
/// tracking is assigned (WooCommerce's default).
async fn woo_app(site: &MockServer) -> (TestApp, StoreId) {
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
    let store = json!({"store": {"name": "Woo", "channel": "woocommerce", "site_url": site.uri(),
        "credentials": {"consumer_key": KEY, "consumer_secret": SECRET, "webhook_secret": WEBHOOK_SECRET}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["store"]["ship_confirmation"], "tracking_assigned");
    for sku in ["WC-1", "WC-2"] {
        let product = json!({"product": {"sku": sku, "vendor_id": app.vendor.id.get()}});
        let (status, json) = app.call(Method::POST, "/products.json", Some(product)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
    (app, StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id"))
}

fn order(id: u64, status: &str, modified: &str) -> Value {
    json!({"id": id, "number": id.to_string(), "status": status, "date_modified_gmt": modified,
        "shipping": {"first_name": "Ann", "last_name": "Example"},
        "line_items": [{"id": id * 10 + 1, "sku": "WC-1", "name": "Lamp", "quantity": 2, "price": 19.5},
                       {"id": id * 10 + 2, "sku": "WC-2", "name": "Mug", "quantity": 1, "price": "4.00"}]})
}

/// Two pages of orders; 727 and 728 are paid for, 729 is not (pending: nothing to ship).
async fn poll_two_pages(app: &TestApp, site: &MockServer) {
    for (page, orders) in [
        (1, vec![order(727, "processing", "2026-03-02T11:00:00")]),
        (2, vec![order(728, "processing", "2026-03-02T11:05:00"), order(729, "pending", "2026-03-02T11:06:00")]),
    ] {
        Mock::given(method("GET"))
            .and(path("/wp-json/wc/v3/orders"))
            .and(header("authorization", basic().as_str()))
            .and(query_param("modified_after", "2026-03-01T12:00:00"))
            .and(query_param("dates_are_gmt", "true"))
            .and(query_param("orderby", "modified"))
            .and(query_param("order", "asc"))
            .and(query_param("per_page", "100"))
            .and(query_param("page", page.to_string().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!(orders)).insert_header("X-WP-TotalPages", "2"))
            .expect(1)
            .mount(site)
            .await;
    }
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 2, 0), "{report:?}");
    app.run_orders().await;
}

async fn purchase_order(app: &TestApp, store: StoreId, number: u64) -> Option<PurchaseOrder> {
    app.table
        .purchase_order_by_number(app.retailer.id, &format!("S{store}-{number}-V{}", app.vendor.id))
        .await
        .expect("read")
}

fn item(po: &PurchaseOrder, line: &str) -> u64 {
    po.items.iter().find(|item| item.channel_line_item_id.as_deref() == Some(line)).expect("an item").id.get()
}

/// Line 7271 (both units) in the first parcel, 7272 in the second.
async fn ship(app: &TestApp, po: &PurchaseOrder, first: &str, second: &str) -> Value {
    let body = json!({"shipment": {"shipper_name": "UPS",
        "shipment_items_attributes": [
            {"order_item_id": item(po, "7271"), "quantity": 2, "package_tracking": first},
            {"order_item_id": item(po, "7272"), "quantity": 1, "package_tracking": second}],
        "shipment_trackings_attributes": [{"tracking": first}, {"tracking": second}]}});
    app.create_shipment(po, body).await
}

fn fulfillment_body(line: u64, qty: u32, tracking: &str) -> Value {
    json!({"status": "fulfilled", "is_fulfilled": true, "notify_customer": true, "meta_data": [
        {"key": "_items", "value": [{"item_id": line, "qty": qty}]},
        {"key": "_tracking_number", "value": tracking},
        {"key": "_shipment_provider", "value": "UPS"},
        {"key": "_tracking_url", "value": format!("https://www.ups.com/track?tracknum={tracking}")}]})
}

async fn state(app: &TestApp, shipment: &Value) -> Value {
    let (_, json) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    json["shipment"].clone()
}

async fn posts(site: &MockServer) -> usize {
    let requests: Vec<Request> = site.received_requests().await.unwrap_or_default();
    requests.iter().filter(|request| request.method.as_str() == "POST").count()
}

#[tokio::test]
async fn orders_are_polled_page_by_page_and_shipped_as_core_fulfillments_once() {
    let site = MockServer::start().await;
    let (app, store) = woo_app(&site).await;
    poll_two_pages(&app, &site).await;
    let po = purchase_order(&app, store, 727).await.expect("727 made a purchase order");
    assert_eq!(po.customer_name, "Ann Example");
    assert!(purchase_order(&app, store, 728).await.is_some());
    assert!(purchase_order(&app, store, 729).await.is_none(), "a pending order is not taken in");

    let fulfillments = "/wp-json/wc/v3/orders/727/fulfillments";
    Mock::given(method("GET"))
        .and(path(fulfillments))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&site)
        .await;
    let (first, second) = ("1Z999AA10000007271", "1Z999AA10000007272");
    for (line, qty, tracking, id) in [(7271, 2, first, 41), (7272, 1, second, 42)] {
        Mock::given(method("POST"))
            .and(path(fulfillments))
            .and(header("authorization", basic().as_str()))
            .and(body_json(fulfillment_body(line, qty, tracking)))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": id, "is_fulfilled": true})))
            .expect(1)
            .mount(&site)
            .await;
    }
    let shipment = ship(&app, &po, first, second).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!(["41", "42"]));
    app.run_exports().await;
    assert_eq!(posts(&site).await, 2, "each package once");
}

#[tokio::test]
async fn a_lost_answer_is_adopted_from_the_orders_fulfillments() {
    let site = MockServer::start().await;
    let (app, store) = woo_app(&site).await;
    poll_two_pages(&app, &site).await;
    let po = purchase_order(&app, store, 727).await.expect("a purchase order");
    let (first, second) = ("1Z999AA10000007281", "1Z999AA10000007282");
    let fulfillments = "/wp-json/wc/v3/orders/727/fulfillments";
    let held = |id: u64, line: u64, qty: u32, tracking: &str| {
        json!({"id": id, "is_fulfilled": true, "date_deleted": null, "meta_data": [
            {"id": 1, "key": "_items", "value": [{"item_id": line, "qty": qty}]},
            {"id": 2, "key": "_tracking_number", "value": tracking}]})
    };
    // First read: nothing there. The first package is created, but the answer about the second
    // is lost (WooCommerce made it). The retry reads both and sends nothing more.
    Mock::given(method("GET"))
        .and(path(fulfillments))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&site)
        .await;
    Mock::given(method("GET"))
        .and(path(fulfillments))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([held(51, 7271, 2, first), held(52, 7272, 1, second)])),
        )
        .with_priority(2)
        .mount(&site)
        .await;
    Mock::given(method("POST"))
        .and(path(fulfillments))
        .and(body_json(fulfillment_body(7271, 2, first)))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 51})))
        .expect(1)
        .mount(&site)
        .await;
    Mock::given(method("POST"))
        .and(path(fulfillments))
        .and(body_json(fulfillment_body(7272, 1, second)))
        .respond_with(ResponseTemplate::new(504))
        .expect(1)
        .mount(&site)
        .await;
    let shipment = ship(&app, &po, first, second).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!(["51", "52"]));
    assert_eq!(posts(&site).await, 2);
}

#[tokio::test]
async fn a_site_without_fulfillments_gets_shipment_tracking_items_and_one_with_neither_is_told_what_to_do() {
    let site = MockServer::start().await;
    let (app, store) = woo_app(&site).await;
    poll_two_pages(&app, &site).await;
    let no_route = json!({"code": "rest_no_route", "message": "No route was found matching the URL and request method.",
        "data": {"status": 404}});
    for id in [727, 728] {
        Mock::given(method("GET"))
            .and(path(format!("/wp-json/wc/v3/orders/{id}/fulfillments")))
            .respond_with(ResponseTemplate::new(404).set_body_json(no_route.clone()))
            .mount(&site)
            .await;
    }
    // 727's site has the Shipment Tracking extension; 728's answers neither route.
    let trackings = "/wp-json/wc-shipment-tracking/v3/orders/727/shipment-trackings";
    Mock::given(method("GET"))
        .and(path(trackings))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&site)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc-shipment-tracking/v3/orders/728/shipment-trackings"))
        .respond_with(ResponseTemplate::new(404).set_body_json(no_route))
        .mount(&site)
        .await;
    let po = purchase_order(&app, store, 727).await.expect("a purchase order");
    let (first, second) = ("1Z999AA10000007291", "1Z999AA10000007292");
    let created: DateTime<Utc> = app.now();
    for (tracking, id) in [(first, "t1"), (second, "t2")] {
        Mock::given(method("POST"))
            .and(path(trackings))
            .and(header("authorization", basic().as_str()))
            .and(body_json(json!({"custom_tracking_provider": "UPS",
                "custom_tracking_link": format!("https://www.ups.com/track?tracknum={tracking}"),
                "tracking_number": tracking, "date_shipped": created.format("%Y-%m-%d").to_string()})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"tracking_id": id})))
            .expect(1)
            .mount(&site)
            .await;
    }
    let shipment = ship(&app, &po, first, second).await;
    app.run_exports().await;
    let exported = state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported", "{exported}");
    assert_eq!(exported["exported_channel_ids"], json!(["t1", "t2"]));

    let other = purchase_order(&app, store, 728).await.expect("a purchase order");
    let body = json!({"shipment": {"shipper_name": "UPS",
        "shipment_items_attributes": [{"order_item_id": other.items[0].id.get(), "quantity": 1}],
        "shipment_trackings_attributes": [{"tracking": "1Z999AA10000007293"}]}});
    let failed = app.create_shipment(&other, body).await;
    app.run_exports().await;
    let failed = state(&app, &failed).await;
    assert_eq!(failed["export_state"], "export_failed", "{failed}");
    assert!(failed["export_error"].as_str().unwrap_or_default().contains("Shipment Tracking"), "{failed}");
}

/// Posts a WooCommerce webhook to the store's URL: `signature` as given, or the body signed.
async fn deliver(
    app: &TestApp,
    store: StoreId,
    topic: &str,
    body: &str,
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let signature = signature.map_or_else(|| shopify_webhooks::sign(body.as_bytes(), WEBHOOK_SECRET), str::to_owned);
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/woocommerce/{store}"))
        .header("x-wc-webhook-topic", topic)
        .header("x-wc-webhook-delivery-id", "41")
        .header("x-wc-webhook-signature", signature)
        .body(bytes::Bytes::from(body.to_owned()))
        .expect("request");
    let response = app.webhooks.handle(request).await;
    (response.status(), serde_json::from_str(response.body()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn signed_webhooks_bring_orders_in_and_the_rest_are_refused_or_ignored() {
    let site = MockServer::start().await;
    let (app, store) = woo_app(&site).await;
    let body = order(800, "processing", "2026-03-02T11:00:00").to_string();
    assert_eq!(deliver(&app, store, "order.created", &body, None).await, (StatusCode::OK, json!({"status": "queued"})));
    // The creation ping: a form body, unsigned, answered so that WooCommerce keeps the webhook.
    let ping = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/woocommerce/{store}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes::Bytes::from_static(b"webhook_id=12"))
        .expect("request");
    let response = app.webhooks.handle(ping).await;
    assert_eq!((response.status(), response.body().as_str()), (StatusCode::OK, r#"{"status":"ignored"}"#));
    let (forged, forged_body) = deliver(&app, store, "order.created", &body, Some("Zm9yZ2Vk")).await;
    let (unknown, unknown_body) = deliver(&app, StoreId::new(999_999).expect("id"), "order.created", &body, None).await;
    assert_eq!((forged, unknown), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(forged_body, unknown_body, "probing tells nothing");
    let pending = order(801, "pending", "2026-03-02T11:00:00").to_string();
    assert_eq!(deliver(&app, store, "order.created", &pending, None).await.1, json!({"status": "ignored"}));
    assert_eq!(deliver(&app, store, "order.deleted", r#"{"id": 800}"#, None).await.1, json!({"status": "ignored"}));
    app.run_orders().await;
    let po = purchase_order(&app, store, 800).await.expect("the webhook's order made a purchase order");
    assert_eq!(po.items.len(), 2);
    assert!(purchase_order(&app, store, 801).await.is_none());
}

#[tokio::test]
async fn a_site_url_is_https_to_a_public_host_and_a_woocommerce_store_must_have_one() {
    let app = TestApp::new().await;
    let store = |site: Value| {
        json!({"store": {"name": "Woo", "channel": "woocommerce", "site_url": site,
            "credentials": {"consumer_key": KEY, "consumer_secret": SECRET}}})
    };
    for site in [json!("http://shop.example.com"), json!("https://10.0.0.8"), json!("https://wp.internal"), Value::Null]
    {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(store(site.clone()))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{site}: {json}");
        assert!(errors(&json).iter().any(|error| error.starts_with("site_url")), "{site}: {json}");
    }
    let (status, json) = app.call(Method::POST, "/stores.json", Some(store(json!("https://shop.example.com/")))).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["store"]["site_url"], "https://shop.example.com");
}

/// A store that asks for it has its orders completed once every unit has shipped: each
/// shipment's units are recorded on the order under its own meta key, and the update that
/// records the last part also moves the order to `completed`; a store of another channel cannot
/// ask for it.
#[tokio::test]
async fn an_order_shipped_in_two_parts_is_completed_with_the_second() {
    let site = MockServer::start().await;
    let (app, store) = woo_app(&site).await;
    let (status, json) = app
        .call(
            Method::PUT,
            &format!("/stores/{store}.json"),
            Some(json!({"store": {"complete_order_when_shipped": true}})),
        )
        .await;
    assert_eq!((status, json["store"]["complete_order_when_shipped"].clone()), (StatusCode::OK, json!(true)));
    let (status, refused) = app
        .call(
            Method::PUT,
            &format!("/stores/{}.json", app.shop.id),
            Some(json!({"store": {"complete_order_when_shipped": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(errors(&refused).iter().any(|e| e.contains("complete_order_when_shipped")), "{refused}");
    poll_two_pages(&app, &site).await;
    let po = purchase_order(&app, store, 727).await.expect("727 made a purchase order");
    let fulfillments = "/wp-json/wc/v3/orders/727/fulfillments";
    Mock::given(method("GET"))
        .and(path(fulfillments))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&site)
        .await;
    Mock::given(method("POST"))
        .and(path(fulfillments))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 51, "is_fulfilled": true})))
        .mount(&site)
        .await;
    let order_path = "/wp-json/wc/v3/orders/727";
    let mut recorded = Vec::new();
    for (line, qty, tracking, completes) in
        [("7271", 2, "1Z999AA10000007281", false), ("7272", 1, "1Z999AA10000007282", true)]
    {
        let body = json!({"shipment": {"shipper_name": "UPS",
            "shipment_items_attributes": [{"order_item_id": item(&po, line), "quantity": qty}],
            "shipment_trackings_attributes": [{"tracking": tracking}]}});
        let shipment = app.create_shipment(&po, body).await;
        // The order as the site holds it: the parts recorded so far.
        let mut held = order(727, "processing", "2026-03-02T11:00:00");
        held["meta_data"] = json!(recorded);
        Mock::given(method("GET"))
            .and(path(order_path))
            .and(header("authorization", basic().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(held))
            .up_to_n_times(1)
            .mount(&site)
            .await;
        let part =
            json!({"key": format!("_shipsync_shipment_{}", shipment["id"]), "value": [{"item_id": line, "qty": qty}]});
        let mut update = json!({"meta_data": [part.clone()]});
        if completes {
            update["status"] = json!("completed");
        }
        Mock::given(method("PUT"))
            .and(path(order_path))
            .and(header("authorization", basic().as_str()))
            .and(body_json(update))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 727})))
            .expect(1)
            .mount(&site)
            .await;
        app.run_exports().await;
        assert_eq!(state(&app, &shipment).await["export_state"], "exported", "{line}");
        recorded.push(part);
    }
    let requests: Vec<Request> = site.received_requests().await.unwrap_or_default();
    let puts = requests.iter().filter(|request| request.method.as_str() == "PUT").count();
    assert_eq!(puts, 2, "one update per part, the second completing the order");
}
