//! Shopify webhooks: signed deliveries become purchase orders per vendor; repeats, stale versions,
//! bad signatures and bad payloads change nothing; unknown SKUs show in order health until fixed;
//! cancellations stop planned exports; channel-made fulfillments follow Duoplane's rules. The
//! payloads are Shopify's documented examples (tests/fixtures/shopify).

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::tenant::FeeSettings;

use crate::harness::{SHOPIFY_WEBHOOK_SECRET, TestApp, shipment_body};

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/shopify/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

/// Delivers a webhook as Shopify does: raw body, topic, delivery id and signature headers.
async fn deliver(
    app: &TestApp,
    topic: &str,
    body: &str,
    delivery: &str,
    signature: Option<String>,
) -> (StatusCode, Value) {
    let mut request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/shopify/{}", app.shop.id))
        .header("content-type", "application/json")
        .header("x-shopify-topic", topic)
        .header("x-shopify-webhook-id", delivery)
        .header("x-shopify-shop-domain", "test-shop.myshopify.com");
    if let Some(signature) = signature {
        request = request.header("x-shopify-hmac-sha256", signature);
    }
    let response = app.webhooks.handle(request.body(bytes::Bytes::from(body.to_owned())).expect("request")).await;
    let json = serde_json::from_str(response.body()).unwrap_or(Value::Null);
    (response.status(), json)
}

pub(crate) async fn deliver_signed(app: &TestApp, topic: &str, payload: &Value, delivery: &str) -> (StatusCode, Value) {
    let body = payload.to_string();
    let signature = shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET);
    deliver(app, topic, &body, delivery, Some(signature)).await
}

/// Products for the fixture's SKUs: the two iPods from the test vendor, the wrap from the other.
async fn catalog(app: &TestApp, with_wrap: bool) {
    let mut products = vec![("IPOD-342-N", app.vendor.id.get()), ("IPOD-342-P", app.vendor.id.get())];
    if with_wrap {
        products.push(("WRAP-1", app.other_vendor.id.get()));
    }
    for (sku, vendor) in products {
        let (status, json) = app
            .call(
                Method::POST,
                "/products.json",
                Some(json!({"product": {"sku": sku, "vendor_id": vendor, "cost": "42.00"}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
}

async fn purchase_orders(app: &TestApp) -> Vec<Value> {
    let (_, list) = app.call(Method::GET, "/purchase_orders.json", None).await;
    list["purchase_orders"].as_array().cloned().unwrap_or_default()
}

/// The number of a vendor's purchase order for the test store's order `order`.
fn po_number(app: &TestApp, order: &str, vendor: shipsync_domain::ids::VendorId) -> String {
    format!("S{}-{order}-V{vendor}", app.shop.id)
}

async fn po_by_number(app: &TestApp, number: &str) -> PurchaseOrder {
    app.table.purchase_order_by_number(app.retailer.id, number).await.expect("read").expect("purchase order")
}

async fn queued(app: &TestApp) -> usize {
    let attributes = app
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(&app.aws.order_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attributes");
    attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_signed_order_becomes_one_purchase_order_per_vendor() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    let (status, json) = deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-1").await;
    assert_eq!((status, json), (StatusCode::OK, json!({"status": "queued"})));
    assert_eq!(app.run_orders().await, 1);

    let ours = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert_eq!(ours.customer_name, "Steve Shipper");
    assert_eq!(
        ours.channel_order_id.as_ref().map(shipsync_domain::vocabulary::ChannelOrderId::as_str),
        Some("gid://shopify/Order/820982911946154508")
    );
    let lines: Vec<(&str, Option<&str>, u32)> =
        ours.items.iter().map(|i| (i.sku.as_str(), i.channel_line_item_id.as_deref(), i.quantity)).collect();
    assert_eq!(
        lines,
        [
            ("IPOD-342-N", Some("gid://shopify/LineItem/866550311766439020"), 1),
            ("IPOD-342-P", Some("gid://shopify/LineItem/141249953214522974"), 2)
        ]
    );
    assert_eq!(ours.items[0].cost, Some(rust_decimal::Decimal::new(42, 0)));
    let theirs = po_by_number(&app, &po_number(&app, "9999", app.other_vendor.id)).await;
    assert_eq!(theirs.items.len(), 1);
    assert_eq!(theirs.vendor_id, app.other_vendor.id);
    // The vendor sees only its own.
    let (_, vendor_view) = app.call_as(Some(&app.vendor_user), Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(vendor_view["metadata"]["total_count"], 1);
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_deliveries_answer_401_and_store_nothing() {
    let app = TestApp::new().await;
    let body = fixture("orders_create").to_string();
    let wrong = shopify_webhooks::sign(body.as_bytes(), "someone else's secret");
    let tampered = shopify_webhooks::sign(b"{\"id\": 1}", SHOPIFY_WEBHOOK_SECRET);
    for signature in [None, Some(wrong), Some(tampered), Some(String::new()), Some("%%%".into())] {
        let (status, json) = deliver(&app, "orders/create", &body, "delivery-x", signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json["errors"].as_array().map(Vec::len), Some(1));
    }
    assert_eq!(queued(&app).await, 0);
    // A rotated secret: the previous one still works for an hour, as Shopify signs with either.
    let mut credentials = app.table.credentials(app.retailer.id, app.shop.id).await.expect("credentials");
    credentials.0.insert("previous_webhook_secret".into(), SHOPIFY_WEBHOOK_SECRET.into());
    credentials.0.insert("webhook_secret".into(), "the new secret".into());
    app.table.save_credentials(app.retailer.id, app.shop.id, &credentials).await.expect("save");
    let (status, _) = deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-y").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_same_delivery_twice_is_applied_once() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    let order = fixture("orders_create");
    // No delivery memory at the door (it cost two table calls a delivery): both are queued, and
    // applying the second changes nothing.
    assert_eq!(deliver_signed(&app, "orders/create", &order, "delivery-2").await.1, json!({"status": "queued"}));
    assert_eq!(deliver_signed(&app, "orders/create", &order, "delivery-2").await.1, json!({"status": "queued"}));
    assert_eq!(app.run_orders().await, 2);
    assert_eq!(purchase_orders(&app).await.len(), 2);
    // A new delivery of the same event (another subscription) is queued, and changes nothing.
    deliver_signed(&app, "orders/create", &order, "delivery-3").await;
    app.run_orders().await;
    assert_eq!(purchase_orders(&app).await.len(), 2);
}

#[tokio::test]
async fn an_update_that_arrives_before_its_create_wins() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    let created = fixture("orders_create");
    let mut updated = created.clone();
    updated["updated_at"] = json!("2026-03-02T09:30:00-05:00");
    updated["line_items"][1]["current_quantity"] = json!(1);
    updated["shipping_address"]["name"] = json!("Steve Shipper Jr");
    deliver_signed(&app, "orders/updated", &updated, "delivery-u").await;
    app.run_orders().await;
    deliver_signed(&app, "orders/create", &created, "delivery-c").await;
    app.run_orders().await;
    let ours = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert_eq!(ours.items[1].quantity, 1, "the older create did not undo the update");
    assert_eq!(ours.customer_name, "Steve Shipper Jr");
    // A later update removes a unit: it is cancelled on the purchase order.
    let mut later = updated.clone();
    later["updated_at"] = json!("2026-03-02T10:00:00-05:00");
    later["line_items"][0]["current_quantity"] = json!(0);
    deliver_signed(&app, "orders/updated", &later, "delivery-l").await;
    app.run_orders().await;
    let ours = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert_eq!((ours.items[0].quantity, ours.items[0].quantity_cancelled), (0, 1));
}

/// The order health problems of one kind.
async fn problems_of_kind(app: &TestApp, kind: &str) -> Vec<Value> {
    let (_, health) = app.call(Method::GET, "/order_health.json?per_page=100", None).await;
    health["problems"].as_array().into_iter().flatten().filter(|p| p["kind"] == kind).cloned().collect()
}

#[tokio::test]
async fn signed_payloads_that_cannot_be_applied_answer_200_and_are_kept_and_listed() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    let sign = |body: &str| Some(shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET));
    let mut no_lines = fixture("orders_create");
    no_lines.as_object_mut().expect("object").remove("line_items");
    let mut negative = fixture("orders_create");
    negative["line_items"][0]["current_quantity"] = json!(-1);
    let mut long_sku = fixture("orders_create");
    long_sku["line_items"][0]["sku"] = json!("S".repeat(2000));
    // More lines than one queue message holds.
    let mut many_lines = fixture("orders_create");
    let line = many_lines["line_items"][0].clone();
    many_lines["line_items"] = Value::Array(
        (0..3000u64)
            .map(|n| {
                let mut line = line.clone();
                line["id"] = json!(n + 1);
                line["name"] = json!(format!("Line {n} with a long enough name to weigh something"));
                line
            })
            .collect(),
    );
    let cases = [
        ("{not json".to_owned(), "malformed JSON"),
        ("[1, 2]".to_owned(), "must be a JSON object"),
        (no_lines.to_string(), "line_items"),
        (json!({"id": 1, "name": "#1", "updated_at": "yesterday", "line_items": []}).to_string(), "updated_at"),
        (negative.to_string(), "line_items[0].quantity"),
        (long_sku.to_string(), "sku"),
        (many_lines.to_string(), "too large for one queue message"),
    ];
    for (index, (body, _)) in cases.iter().enumerate() {
        let (status, json) = deliver(&app, "orders/create", body, &format!("delivery-bad-{index}"), sign(body)).await;
        assert_eq!((status, json), (StatusCode::OK, json!({"status": "kept"})), "case {index}");
    }
    assert_eq!(queued(&app).await, 0, "nothing that cannot be applied is queued");
    let kept = problems_of_kind(&app, "unapplicable_payload").await;
    assert_eq!(kept.len(), cases.len(), "{kept:?}");
    for (index, (_, reason)) in cases.iter().enumerate() {
        assert!(
            kept.iter().any(|p| p["reason"]
                .as_str()
                .is_some_and(|r| r.contains(reason) && r.contains(&format!("delivery-bad-{index}")))),
            "case {index}: {kept:?}"
        );
    }
    // Each payload is kept (whole when it fits one item), its size and SHA-256 named.
    for (payload, truncated) in [(long_sku.to_string(), false), (many_lines.to_string(), true)] {
        let key = format!("unapplicable:{}:{}", app.shop.id, shipsync_domain::orders::sha256_hex(payload.as_bytes()));
        let (record, bytes) = app.table.kept_payload(app.retailer.id, &key).await.expect("read").expect("kept");
        assert_eq!((record.size, record.truncated), (payload.len(), truncated));
        assert!(
            bytes.len() == payload.len().min(shipsync_domain::orders::MAX_KEPT_BYTES)
                && payload.as_bytes().starts_with(&bytes)
        );
        assert!(kept.iter().any(|p| p["reason"].as_str().is_some_and(|r| r.contains(&record.sha256))));
    }
    let body = many_lines.to_string();
    // A redelivery, or the same payload under a new delivery id, is kept again and listed once.
    let (_, json) = deliver(&app, "orders/create", &body, "delivery-bad-6", sign(&body)).await;
    assert_eq!(json, json!({"status": "kept"}));
    deliver(&app, "orders/create", &body, "delivery-bad-again", sign(&body)).await;
    assert_eq!(problems_of_kind(&app, "unapplicable_payload").await.len(), cases.len());
    // Unsigned, it is still refused and nothing is kept.
    let unsigned = "{still not json";
    let (status, _) = deliver(&app, "orders/create", unsigned, "delivery-unsigned", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problems_of_kind(&app, "unapplicable_payload").await.len(), cases.len());
    // A topic shipsync does not use is acknowledged and ignored.
    let body = json!({"id": 1}).to_string();
    let (status, json) = deliver(&app, "products/update", &body, "delivery-p", sign(&body)).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"status": "ignored"})));
}

#[tokio::test]
async fn a_payload_larger_than_one_item_is_kept_truncated_with_its_size_and_hash() {
    let app = TestApp::new().await;
    let mut huge = fixture("orders_create");
    huge["line_items"] = json!("not a list");
    huge["note"] = json!("x".repeat(600 * 1024));
    let body = huge.to_string();
    let signature = shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET);
    let (status, json) = deliver(&app, "orders/create", &body, "delivery-huge", Some(signature)).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"status": "kept"})));
    let key = format!("unapplicable:{}:{}", app.shop.id, shipsync_domain::orders::sha256_hex(body.as_bytes()));
    let (record, bytes) = app.table.kept_payload(app.retailer.id, &key).await.expect("read").expect("kept");
    assert_eq!((record.size, record.truncated), (body.len(), true));
    assert!(bytes.len() == shipsync_domain::orders::MAX_KEPT_BYTES && body.as_bytes().starts_with(&bytes));
    let listed = problems_of_kind(&app, "unapplicable_payload").await;
    assert!(listed[0]["reason"].as_str().is_some_and(|r| r.contains(&body.len().to_string())), "{listed:?}");
}

#[tokio::test]
async fn a_delivery_from_another_shop_answers_401_and_stores_nothing() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    let body = fixture("orders_create").to_string();
    // Signed with the store's secret (one app, several shops), but sent by another shop, or by none.
    let signature = shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET);
    for shop in [Some("attacker-shop.myshopify.com"), Some(""), None] {
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/webhooks/shopify/{}", app.shop.id))
            .header("x-shopify-topic", "orders/create")
            .header("x-shopify-webhook-id", "delivery-foreign")
            .header("x-shopify-hmac-sha256", &signature);
        if let Some(shop) = shop {
            request = request.header("x-shopify-shop-domain", shop);
        }
        let response = app.webhooks.handle(request.body(bytes::Bytes::from(body.clone())).expect("request")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{shop:?}");
    }
    assert_eq!(queued(&app).await, 0);
    assert_eq!(purchase_orders(&app).await.len(), 0);
    // The store's own shop, in any letter case, gets in.
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/shopify/{}", app.shop.id))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "delivery-own-shop")
        .header("x-shopify-shop-domain", "Test-Shop.myshopify.com")
        .header("x-shopify-hmac-sha256", &signature)
        .body(bytes::Bytes::from(body))
        .expect("request");
    assert_eq!(app.webhooks.handle(request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_stores_of_one_retailer_both_with_order_1001_each_get_their_purchase_orders() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    let second = shipsync_tools::provision::create_store(
        &app.table,
        app.retailer.id,
        "Second shop",
        shipsync_domain::tenant::ChannelKind::Shopify,
        ExportSettings::default(),
        shipsync_domain::tenant::ChannelConnection {
            shop_domain: Some("second-shop.myshopify.com".into()),
            ..Default::default()
        },
    )
    .await
    .expect("store");
    app.table
        .save_credentials(
            app.retailer.id,
            second.id,
            &shipsync_domain::secrets::ChannelCredentials(
                [("webhook_secret".to_owned(), SHOPIFY_WEBHOOK_SECRET.to_owned())].into_iter().collect(),
            ),
        )
        .await
        .expect("credentials");
    let mut order = fixture("orders_create");
    order["name"] = json!("#1001");
    let first = deliver_signed(&app, "orders/create", &order, "first-1001").await;
    assert_eq!(first.1, json!({"status": "queued"}));
    // The second shop's own order #1001 (another Shopify order id).
    order["id"] = json!(555);
    let body = order.to_string();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/shopify/{}", second.id))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "second-1001")
        .header("x-shopify-shop-domain", "second-shop.myshopify.com")
        .header("x-shopify-hmac-sha256", shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET))
        .body(bytes::Bytes::from(body))
        .expect("request");
    assert_eq!(app.webhooks.handle(request).await.status(), StatusCode::OK);
    app.run_orders().await;
    let numbers: Vec<String> = purchase_orders(&app)
        .await
        .iter()
        .filter_map(|po| po["public_reference"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(numbers.len(), 4, "two vendors in each of two stores: {numbers:?}");
    for (store, vendor) in [(app.shop.id, app.vendor.id), (second.id, app.vendor.id), (second.id, app.other_vendor.id)]
    {
        let number = format!("S{store}-1001-V{vendor}");
        let po = po_by_number(&app, &number).await;
        assert_eq!(po.store_id, store, "{number}");
    }
    assert_eq!(problems_of_kind(&app, "purchase_order_number_taken").await.len(), 0);
}

#[tokio::test]
async fn a_purchase_order_number_taken_by_another_purchase_order_is_listed_until_freed() {
    let app = TestApp::new().await;
    catalog(&app, false).await;
    // A purchase order made by hand already holds the number the order's would get.
    let taken = po_number(&app, "9999", app.vendor.id);
    app.purchase_order(&app.other_vendor, &taken, "Someone else", &[1]).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-taken").await;
    assert_eq!(app.run_orders().await, 1, "applied once, not retried");
    let listed = problems_of_kind(&app, "purchase_order_number_taken").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0]["reason"].as_str().is_some_and(|r| r.contains(&taken)), "{listed:?}");
    assert_eq!(listed[0]["order_number"], "9999");
    // The same order again lists it once.
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-taken-2").await;
    app.run_orders().await;
    assert_eq!(problems_of_kind(&app, "purchase_order_number_taken").await.len(), 1);
}

#[tokio::test]
async fn an_unknown_sku_is_listed_in_order_health_until_added_and_reprocessed() {
    let app = TestApp::new().await;
    catalog(&app, false).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-h").await;
    app.run_orders().await;
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 1, "{health}");
    let problem = &health["problems"][0];
    assert_eq!(problem["kind"], "unknown_sku");
    assert_eq!(problem["order_number"], "9999");
    assert!(problem["reason"].as_str().is_some_and(|r| r.contains("WRAP-1")), "{problem}");
    assert!(problem["since"].is_string());
    assert_eq!(purchase_orders(&app).await.len(), 1, "the known lines went ahead");

    app.call(
        Method::POST,
        "/products.json",
        Some(json!({"product": {"sku": "WRAP-1", "vendor_id": app.other_vendor.id.get()}})),
    )
    .await;
    let (status, json) = app.call(Method::POST, &format!("/orders/{}/reprocess.json", problem["order_id"]), None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["order"]["unknown_lines"], 0);
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 0, "{health}");
    assert_eq!(purchase_orders(&app).await.len(), 2);
    let (status, _) = app.call(Method::POST, "/orders/999999/reprocess.json", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_cancelled_order_stops_a_planned_export_and_says_why() {
    let app = TestApp::with(
        FeeSettings::default(),
        ExportSettings { shipment_export_delay_minutes: 30, ..ExportSettings::default() },
        Some("http://127.0.0.1:9"),
    )
    .await;
    catalog(&app, true).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-k").await;
    app.run_orders().await;
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZCANCEL"])).await;
    assert_eq!(shipment["export_state"], "scheduled");
    let mut cancelled = fixture("orders_create");
    cancelled["cancelled_at"] = json!("2026-03-02T08:10:00-05:00");
    cancelled["updated_at"] = json!("2026-03-02T08:10:00-05:00");
    deliver_signed(&app, "orders/cancelled", &cancelled, "delivery-cancel").await;
    app.run_orders().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "export_cancelled");
    assert_eq!(state["shipment"]["export_error"], Value::Null);
    let stored = app
        .table
        .shipment(shipsync_domain::ids::ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id"))
        .await
        .expect("read")
        .expect("shipment");
    assert!(
        matches!(&stored.export.state, shipsync_domain::export::ExportState::Cancelled { reason, .. } if reason == "order 9999 was cancelled at the channel")
    );
    // The unshipped units are cancelled; the shipped one stays shipped.
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert_eq!((po.items[0].quantity, po.items[0].quantity_fulfilled), (1, 1));
    assert_eq!((po.items[1].quantity, po.items[1].quantity_cancelled), (0, 2));
    // When the schedule fires, nothing goes out (the fake channel is not even listening).
    app.advance(Duration::minutes(30));
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "export_cancelled");
}

#[tokio::test]
async fn channel_fulfillments_follow_duoplanes_rules() {
    let app = TestApp::with(
        FeeSettings::default(),
        ExportSettings { shipment_export_delay_minutes: 60, ..ExportSettings::default() },
        Some("http://127.0.0.1:9"),
    )
    .await;
    catalog(&app, true).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-o").await;
    app.run_orders().await;
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;

    // 1. An unexported shipsync shipment that matches exactly is linked; its planned export is off.
    let planned = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z827WK74630"])).await;
    deliver_signed(&app, "fulfillments/create", &fixture("fulfillments_create"), "delivery-f1").await;
    app.run_orders().await;
    let (_, linked) = app.call(Method::GET, &format!("/shipments/{}.json", planned["id"]), None).await;
    assert_eq!(linked["shipment"]["export_state"], "exported");
    assert_eq!(linked["shipment"]["exported_channel_ids"], json!(["gid://shopify/Fulfillment/123456"]));
    // The same webhook again (or an update of it) changes nothing.
    deliver_signed(&app, "fulfillments/update", &fixture("fulfillments_create"), "delivery-f1b").await;
    app.run_orders().await;
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 1);

    // 2. No match, one purchase order, unfulfilled: a linked shipment is created, never exported.
    let mut second = fixture("fulfillments_create");
    second["id"] = json!(123457);
    second["tracking_company"] = json!("FedEx");
    second["tracking_numbers"] = json!(["7777"]);
    second["line_items"] = json!([{"id": 141249953214522974u64, "quantity": 2}]);
    deliver_signed(&app, "fulfillments/create", &second, "delivery-f2").await;
    app.run_orders().await;
    let (_, list) = app.call(Method::GET, "/shipments.json?search[tracking]=7777", None).await;
    assert_eq!(list["metadata"]["total_count"], 1, "{list}");
    let created = &list["shipments"][0];
    assert_eq!(created["shipper_name"], "FedEx");
    assert_eq!(created["export_state"], "exported");
    assert_eq!(created["export"], false);
    assert_eq!(created["shipment_items_attributes"][0]["quantity"], 2);
    let po_after = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert!(po_after.is_fully_fulfilled());

    // 3. Items spanning two purchase orders: ignored, and order health says why.
    let mut spanning = fixture("fulfillments_create");
    spanning["id"] = json!(123458);
    spanning["tracking_numbers"] = json!(["8888"]);
    spanning["line_items"] =
        json!([{"id": 866550311766439020u64, "quantity": 1}, {"id": 257004973105704598u64, "quantity": 1}]);
    deliver_signed(&app, "fulfillments/create", &spanning, "delivery-f3").await;
    // 4. Already fulfilled items: ignored too.
    let mut again = fixture("fulfillments_create");
    again["id"] = json!(123459);
    again["tracking_numbers"] = json!(["9999"]);
    deliver_signed(&app, "fulfillments/create", &again, "delivery-f4").await;
    app.run_orders().await;
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    let reasons: Vec<&str> =
        health["problems"].as_array().expect("problems").iter().filter_map(|p| p["reason"].as_str()).collect();
    assert_eq!(reasons.len(), 2, "{health}");
    assert!(reasons.iter().any(|r| r.contains("several purchase orders")));
    assert!(reasons.iter().any(|r| r.contains("already fulfilled")));
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 2);
}

#[tokio::test]
async fn a_failure_to_queue_answers_503_and_the_delivery_is_not_remembered() {
    let app = TestApp::new().await;
    let broken = shopify_webhooks::ShopifyWebhooks::new(
        app.table.clone(),
        app.aws.sqs.clone(),
        format!("{}/123456789012/no-such-queue", crate::harness::moto().endpoint),
    );
    let body = fixture("orders_create").to_string();
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/shopify/{}", app.shop.id))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "delivery-503")
        .header("x-shopify-shop-domain", "test-shop.myshopify.com")
        .header("x-shopify-hmac-sha256", shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET))
        .body(bytes::Bytes::from(body))
        .expect("request");
    let response = broken.handle(request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "Shopify must retry");
    // Its retry, once the queue is back, is accepted.
    let (status, json) = deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-503").await;
    assert_eq!((status, json), (StatusCode::OK, json!({"status": "queued"})));
}

#[tokio::test]
async fn shipsyncs_own_fulfillment_coming_back_creates_nothing() {
    let shopify = wiremock::MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    catalog(&app, true).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-own").await;
    app.run_orders().await;
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    // Shopify accepts the export as fulfillment 123456 (the fixture's id).
    let order = json!({"data": {"order": {"id": "gid://shopify/Order/820982911946154508", "fulfillments": [],
        "fulfillmentOrders": {"nodes": [{"id": "gid://shopify/FulfillmentOrder/1", "status": "OPEN",
            "assignedLocation": {"location": {"id": "gid://shopify/Location/1"}},
            "lineItems": {"nodes": [{"id": "gid://shopify/FulfillmentOrderLineItem/1", "remainingQuantity": 1,
                "lineItem": {"id": "gid://shopify/LineItem/866550311766439020"}}]}}]}}}});
    wiremock::Mock::given(wiremock::matchers::body_string_contains("ShipsyncOrder"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(order))
        .mount(&shopify)
        .await;
    wiremock::Mock::given(wiremock::matchers::body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"data": {"fulfillmentCreate": {
            "fulfillment": {"id": "gid://shopify/Fulfillment/123456", "status": "SUCCESS"}, "userErrors": []}}})))
        .expect(1)
        .mount(&shopify)
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1z827wk74630"])).await;
    app.run_exports().await;
    deliver_signed(&app, "fulfillments/create", &fixture("fulfillments_create"), "delivery-own-f").await;
    app.run_orders().await;
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 1, "no second shipment");
    assert_eq!(list["shipments"][0]["id"], shipment["id"]);
    assert_eq!(list["shipments"][0]["exported_channel_ids"], json!(["gid://shopify/Fulfillment/123456"]));
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 0, "{health}");
}

/// A `fulfillments/create` payload for the fixture order: its id, lines and tracking numbers.
fn channel_fulfillment(id: u64, lines: &[(u64, u32)], numbers: &[&str]) -> Value {
    let mut payload = fixture("fulfillments_create");
    payload["id"] = json!(id);
    payload["tracking_numbers"] = json!(numbers);
    payload["line_items"] =
        json!(lines.iter().map(|(line, quantity)| json!({"id": line, "quantity": quantity})).collect::<Vec<_>>());
    payload
}

const IPOD_P: u64 = 141249953214522974;

#[tokio::test]
async fn one_location_of_an_export_still_being_recorded_is_shipsyncs_own() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-loc").await;
    app.run_orders().await;
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    // One unit of each iPod, the two at two locations; two P were ordered, so one is left.
    let body = shipment_body(&[(po.items[0].id.get(), 1), (po.items[1].id.get(), 1)], &["1Z827WK74630"]);
    let shipment = app.create_shipment(&po, body).await;
    // The exporter claimed it and Shopify made the first location's fulfillment; its webhook
    // arrives before the exporter recorded the ids.
    let id = shipsync_domain::ids::ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id");
    let stored = app.table.shipment(id).await.expect("read").expect("shipment");
    app.table.update_shipment(&stored.claim_export(app.now()), None).await.expect("claim");
    let second_location = channel_fulfillment(700001, &[(IPOD_P, 1)], &["1z827wk74630"]);
    deliver_signed(&app, "fulfillments/create", &second_location, "delivery-loc-f").await;
    app.run_orders().await;
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 1, "no second shipment: {list}");
    assert_eq!(list["shipments"][0]["export_state"], "exporting", "the export's own record is left to it");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 0, "{health}");
}

fn incoming(id: &str, numbers: &[&str]) -> shipsync_domain::orders::IncomingFulfillment {
    shipsync_domain::orders::IncomingFulfillment {
        channel_fulfillment_id: format!("gid://shopify/Fulfillment/{id}"),
        channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("gid://shopify/Order/820982911946154508")
            .expect("an order id"),
        lines: vec![(format!("gid://shopify/LineItem/{IPOD_P}"), 1)],
        tracking_numbers: numbers
            .iter()
            .map(|n| shipsync_domain::tracking::TrackingNumber::parse(n).expect("a tracking number"))
            .collect(),
        tracking_company: Some("UPS".into()),
        cancelled: false,
    }
}

async fn shipment_count(app: &TestApp) -> u64 {
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    list["metadata"]["total_count"].as_u64().expect("count")
}

#[tokio::test]
async fn a_create_and_an_update_racing_make_one_shipment() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-race").await;
    app.run_orders().await;
    let processor = order_processor::OrderProcessor::new(app.table.clone(), app.aws.export_planner());
    // Two P were ordered and each fulfillment holds one: nothing but the fulfillment's id says
    // that a second apply is the same fulfillment.
    let (create, update) = (incoming("800001", &["RACE1"]), incoming("800001", &["RACE1"]));
    let (first, second) = tokio::join!(
        processor.intake().reverse_sync(app.retailer.id, app.shop.id, &create),
        processor.intake().reverse_sync(app.retailer.id, app.shop.id, &update),
    );
    first.expect("first apply");
    second.expect("second apply");
    assert_eq!(shipment_count(&app).await, 1, "exactly one shipment");
}

#[tokio::test]
async fn a_fulfillment_applied_before_is_not_applied_again_whatever_the_index_shows() {
    let app = TestApp::new().await;
    catalog(&app, true).await;
    deliver_signed(&app, "orders/create", &fixture("orders_create"), "delivery-once").await;
    app.run_orders().await;
    let processor = order_processor::OrderProcessor::new(app.table.clone(), app.aws.export_planner());
    let fulfillment = incoming("800002", &["ONCE1"]);
    processor.intake().reverse_sync(app.retailer.id, app.shop.id, &fulfillment).await.expect("apply");
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    let id = list["shipments"][0]["id"].as_u64().expect("id");
    // What a second apply sees while the index does not show the first one's shipment yet
    // (DynamoDB's indexes are eventually consistent): the shipment is out of sight.
    let config = shipsync_tools::local_aws::sdk_config(&crate::harness::moto().endpoint).await;
    aws_sdk_dynamodb::Client::new(&config)
        .delete_item()
        .table_name(app.table.table_name())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("SHIPMENT#{id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("SHIPMENT".into()))
        .send()
        .await
        .expect("delete");
    processor.intake().reverse_sync(app.retailer.id, app.shop.id, &fulfillment).await.expect("apply again");
    assert_eq!(shipment_count(&app).await, 0, "not created a second time");
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert_eq!(po.items[1].quantity_fulfilled, 1, "the unit is fulfilled once");
}

/// Messages on the order queue, visible or being processed.
async fn on_order_queue(app: &TestApp) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = app
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(&app.aws.order_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes");
    [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .filter_map(|name| attributes.attributes().and_then(|a| a.get(name)).and_then(|n| n.parse::<usize>().ok()))
        .sum()
}

#[tokio::test]
async fn an_order_event_that_cannot_be_applied_is_kept_and_listed_not_retried() {
    let app = TestApp::new().await;
    catalog(&app, false).await;
    // Queued as the poller or an older webhook endpoint would: the processor checks for itself.
    let scope = json!({"retailer_id": app.retailer.id.get(), "store_id": app.shop.id.get()});
    let unreadable = json!({"retailer_id": scope["retailer_id"], "store_id": scope["store_id"], "source": "test",
        "event": {"kind": "order_changed", "order": 5}});
    let mut long_sku = json!({"retailer_id": scope["retailer_id"], "store_id": scope["store_id"], "source": "test",
        "event": {"kind": "order_changed", "order": {"channel_order_id": "gid://shopify/Order/77", "number": "77",
            "customer_name": "Long", "updated_at": "2026-03-02T10:00:00Z", "cancelled": false,
            "lines": [{"channel_line_item_id": "gid://shopify/LineItem/1", "sku": "IPOD-342-N", "name": "n", "quantity": 1, "unit_price": null}]}}});
    long_sku["event"]["order"]["lines"][0]["sku"] = json!("S".repeat(2000));
    for message in [unreadable, long_sku] {
        app.aws
            .sqs
            .send_message()
            .queue_url(&app.aws.order_queue_url)
            .message_body(message.to_string())
            .send()
            .await
            .expect("queue");
    }
    // An order of 1,000 lines, then a version that adds 1,000 more: each fits a queue message, and
    // the purchase order of 2,000 lines fits one DynamoDB item since purchase orders are stored
    // deflated (an order that fits a queue message makes a purchase order that fits an item).
    let lines = |from: u64| -> Value {
        Value::Array(
            (from..from + 1000)
                .map(|n| {
                    json!({"id": n, "sku": "IPOD-342-N", "quantity": 1, "price": "1.00",
                    "name": format!("{n:>6} {:<93}", "a line name long enough to weigh on the purchase order")})
                })
                .collect(),
        )
    };
    let mut order = fixture("orders_create");
    order["line_items"] = lines(1);
    assert_eq!(deliver_signed(&app, "orders/create", &order, "big-1").await.1, json!({"status": "queued"}));
    app.run_orders().await;
    order["line_items"] = lines(1001);
    order["updated_at"] = json!("2026-03-02T09:30:00-05:00");
    assert_eq!(deliver_signed(&app, "orders/updated", &order, "big-2").await.1, json!({"status": "queued"}));
    app.run_orders().await;

    assert_eq!(on_order_queue(&app).await, 0, "nothing is left to retry");
    let kept = problems_of_kind(&app, "unapplicable_payload").await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    for needle in ["unreadable event", "lines[0].sku"] {
        assert!(kept.iter().any(|p| p["reason"].as_str().is_some_and(|r| r.contains(needle))), "{needle}: {kept:?}");
    }
    assert_eq!(problems_of_kind(&app, "dead_lettered_event").await.len(), 0);
    let po = po_by_number(&app, &po_number(&app, "9999", app.vendor.id)).await;
    assert_eq!(po.items.len(), 2000);
}
