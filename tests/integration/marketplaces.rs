//! The "done when", one test per marketplace: a store created through the API goes from
//! an order at its (wiremock) channel to a purchase order, a shipment, a tracker registered with a
//! (wiremock) EasyPost, a carrier scan signed with the store's own secret and posted to its own URL,
//! and a confirmation at the channel, through the real
//! poller, order processor, exporter and carrier-webhook endpoint, with no admin step. Every fake
//! counts the calls it gets, so the calls per polled order and per export are measured here.

use base64::Engine;
use carrier_webhooks::{CarrierWebhooks, Provider, providers};
use chrono::Utc;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::StoreId;
use shipsync_domain::purchase_order::PurchaseOrder;
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::TestApp;

const EASYPOST_KEY: &str = "EZAK_test_key";
const EASYPOST_SECRET: &str = "easypost-webhook-secret";
const IMEI: &str = "356938035643809";

/// A retailer whose API accepts a store's channel address (a wiremock), as the local stack's
/// does, and an EasyPost fake that registers any tracker. The harness's Shopify store is not
/// polled: it has no fake.
async fn marketplace_app() -> (TestApp, MockServer) {
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
    let easypost = MockServer::start().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{EASYPOST_KEY}:"));
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "trk_1", "object": "Tracker"})))
        .mount(&easypost)
        .await;
    (app, easypost)
}

/// Creates a store through the API, confirming on movement (the marketplaces' default) with
/// EasyPost at `easypost`, and routes `skus` to the vendor.
async fn create_store(app: &TestApp, easypost: &MockServer, mut store: Value, skus: &[&str]) -> StoreId {
    store["tracking_provider"] = json!("easypost");
    store["tracking_base_url"] = json!(easypost.uri());
    store["credentials"]["tracking_api_key"] = json!(EASYPOST_KEY);
    store["credentials"]["tracking_webhook_secret"] = json!(EASYPOST_SECRET);
    let (status, created) = app.call(Method::POST, "/stores.json", Some(json!({ "store": store }))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["store"]["ship_confirmation"], "tracking_movement", "{created}");
    assert_eq!(created["store"]["tracking_provider"], "easypost", "{created}");
    for sku in skus {
        let product = json!({"product": {"sku": sku, "vendor_id": app.vendor.id.get()}});
        let (status, json) = app.call(Method::POST, "/products.json", Some(product)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
    StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id")
}

/// The purchase order the order processor made of channel order `number` for the vendor.
async fn polled_order(app: &TestApp, store: StoreId, number: &str) -> PurchaseOrder {
    app.table
        .purchase_order_by_number(app.retailer.id, &format!("S{store}-{number}-V{}", app.vendor.id))
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("no purchase order for {number}"))
}

/// The purchase order's item for a channel line.
fn item(po: &PurchaseOrder, line: &str) -> u64 {
    po.items
        .iter()
        .find(|item| item.channel_line_item_id.as_deref() == Some(line))
        .unwrap_or_else(|| panic!("no item for line {line}: {po:?}"))
        .id
        .get()
}

/// A shipment's request: UPS, these items `(order item, quantity, package, serial codes)`, and
/// the tracking numbers of its packages.
fn shipment(items: &[(u64, u32, &str, &[&str])], trackings: &[&str]) -> Value {
    json!({"shipment": {
        "shipper_name": "UPS",
        "shipment_items_attributes": items.iter().map(|(id, quantity, package, codes)| json!({
            "order_item_id": id, "quantity": quantity, "package_tracking": package, "serial_codes": codes,
        })).collect::<Vec<_>>(),
        "shipment_trackings_attributes": trackings.iter().map(|t| json!({"tracking": t})).collect::<Vec<_>>(),
    }})
}

async fn shipment_state(app: &TestApp, id: &Value) -> Value {
    let (status, json) = app.call(Method::GET, &format!("/shipments/{id}.json"), None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["shipment"].clone()
}

/// The requests a fake received, as `METHOD path`, in order.
async fn calls(server: &MockServer) -> Vec<String> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests.iter().map(|r| format!("{} {}", r.method, r.url.path())).collect()
}

/// The JSON bodies of the `verb` requests a fake received at `at`, in order.
async fn bodies(server: &MockServer, verb: &str, at: &str) -> Vec<Value> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

/// EasyPost's registrations, exactly as sent: one `{"tracker": ...}` per tracking number.
fn registrations(numbers: &[&str]) -> Vec<Value> {
    numbers.iter().map(|number| json!({"tracker": {"tracking_code": number, "carrier": "UPS"}})).collect()
}

/// Posts a signed EasyPost `tracker.updated` for `tracking`, as EasyPost sends it to the store's URL.
async fn scan(app: &TestApp, store: StoreId, event: &str, tracking: &str, status: &str) -> Value {
    let body = json!({
        "id": event, "object": "Event", "description": "tracker.updated", "mode": "production",
        "result": {"id": "trk_1", "object": "Tracker", "tracking_code": tracking, "status": status,
            "carrier": "UPS", "updated_at": "2026-03-02T13:00:00Z", "tracking_details": []}
    })
    .to_string();
    let signature = providers::sign(Provider::EasyPost, body.as_bytes(), EASYPOST_SECRET, Utc::now().timestamp());
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/carrier_webhooks/easypost/{store}"))
        .header(providers::signature_header(Provider::EasyPost), signature)
        .body(bytes::Bytes::from(body))
        .expect("request");
    let endpoint = CarrierWebhooks::new(app.table.clone(), app.aws.sqs.clone(), app.aws.order_queue_url.clone());
    let response = endpoint.handle(request).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    serde_json::from_str(response.body()).expect("JSON")
}

/// Creates the shipment, checks it waits for movement with its numbers pending, runs the
/// exporter twice and checks each number was registered once and nothing went to the channel.
async fn ship_and_register(app: &TestApp, easypost: &MockServer, po: &PurchaseOrder, body: Value) -> Value {
    let numbers: Vec<String> = body["shipment"]["shipment_trackings_attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["tracking"].as_str().map(str::to_owned))
        .collect();
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let created = app.create_shipment(po, body).await;
    assert_eq!(created["export_state"], "waiting_for_movement", "{created}");
    assert_eq!(created["trackers_pending"], json!(numbers), "{created}");
    app.run_exports().await;
    assert_eq!(bodies(easypost, "POST", "/v2/trackers").await, registrations(&numbers));
    let state = shipment_state(app, &created["id"]).await;
    assert_eq!(state["export_state"], "waiting_for_movement", "{state}");
    assert!(state.get("trackers_pending").is_none(), "every number registered: {state}");
    // Nothing left to register: a second run sends nothing more.
    app.run_exports().await;
    assert_eq!(easypost.received_requests().await.unwrap_or_default().len(), numbers.len());
    created
}

/// The first scan in transit releases the export; the same scan again (queued again: applying it
/// is a no-op), and a scan of the other package, confirm nothing twice.
async fn scan_and_confirm(
    app: &TestApp,
    easypost: &MockServer,
    store: StoreId,
    shipment: &Value,
    first: &str,
    second: &str,
) {
    let registered = easypost.received_requests().await.unwrap_or_default().len();
    assert_eq!(scan(app, store, "evt_1", first, "in_transit").await, json!({"status": "queued"}));
    app.run_orders().await;
    app.run_exports().await;
    let state = shipment_state(app, &shipment["id"]).await;
    assert_eq!(
        (&state["tracking_status"], &state["export_state"]),
        (&json!("in_transit"), &json!("exported")),
        "{state}"
    );
    assert_eq!(scan(app, store, "evt_1", first, "in_transit").await, json!({"status": "queued"}));
    scan(app, store, "evt_2", second, "in_transit").await;
    app.run_orders().await;
    app.run_exports().await;
    assert_eq!(shipment_state(app, &shipment["id"]).await["export_state"], "exported");
    let now_registered = easypost.received_requests().await.unwrap_or_default().len();
    assert_eq!(now_registered, registered, "no tracker registered again");
}

/// The next poll, ten minutes on, lists the order as the channel now holds it (shipped, with the
/// packages shipsync confirmed): it is recognised as the shipment shipsync made, so nothing is
/// created, listed or confirmed again.
async fn poll_the_confirmed_order(app: &TestApp, po: &PurchaseOrder) {
    app.advance(chrono::Duration::minutes(10));
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 1, 0), "{report:?}");
    app.run_orders().await;
    app.run_exports().await;
    let shipments = app.table.shipments_of_purchase_order(po.id).await.expect("shipments");
    assert_eq!(shipments.len(), 1, "no shipment made of the channel's own record: {shipments:?}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 0, "{health}");
}

const AMAZON_ORDER: &str = "113-1234567-1234567";

fn amazon_item(id: &str, sku: &str, ordered: u32) -> Value {
    json!({"orderItemId": id, "quantityOrdered": ordered,
           "product": {"asin": "B0", "sellerSku": sku, "title": format!("Item {sku}"),
                       "price": {"unitPrice": {"amount": "19.99", "currencyCode": "USD"}}}})
}

#[tokio::test]
async fn an_amazon_order_goes_from_the_channel_to_a_confirmation_on_movement() {
    let (app, easypost) = marketplace_app().await;
    let amazon = MockServer::start().await;
    let store = create_store(
        &app,
        &easypost,
        json!({"name": "Amazon US", "channel": "amazon", "base_url": amazon.uri(),
               "marketplace_id": "ATVPDKIKX0DER", "seller_id": "A3TH9S8BH6GOGM",
               "credentials": {"lwa_client_id": "amzn-id", "lwa_client_secret": "amzn-secret", "refresh_token": "Atzr|1"}}),
        &["AMZ-1", "AMZ-2"],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=Atzr%7C1"))
        .and(body_string_contains("client_id=amzn-id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "Atza|1", "expires_in": 3600})))
        .mount(&amazon)
        .await;
    let order = json!({"orderId": AMAZON_ORDER, "createdTime": "2026-03-02T11:00:00Z", "lastUpdatedTime": "2026-03-02T11:30:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "recipient": {"deliveryAddress": {"name": "Jane Roe"}}, "buyer": {"buyerName": "J. Roe"},
        "orderItems": [amazon_item("68828574383266", "AMZ-1", 2), amazon_item("68828574383267", "AMZ-2", 1)]});
    Mock::given(method("GET"))
        .and(path("/orders/2026-01-01/orders"))
        .and(header("x-amz-access-token", "Atza|1"))
        .and(query_param("lastUpdatedAfter", "2026-03-01T12:00:00Z"))
        .and(query_param("marketplaceIds", "ATVPDKIKX0DER"))
        .and(query_param("fulfilledBy", "MERCHANT"))
        .and(query_param("includedData", "BUYER,RECIPIENT,CANCELLATION,FULFILLMENT,PACKAGES"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [order.clone()]})))
        .expect(1)
        .mount(&amazon)
        .await;
    let confirm = format!("/orders/v0/orders/{AMAZON_ORDER}/shipmentConfirmation");
    Mock::given(method("POST"))
        .and(path(confirm.clone()))
        .and(header("x-amz-access-token", "Atza|1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&amazon)
        .await;

    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 1, 0), "{report:?}");
    app.run_orders().await;
    let po = polled_order(&app, store, AMAZON_ORDER).await;
    assert_eq!(po.customer_name, "Jane Roe");
    let lines: Vec<(Option<&str>, &str, u32)> =
        po.items.iter().map(|i| (i.channel_line_item_id.as_deref(), i.sku.as_str(), i.quantity)).collect();
    assert_eq!(lines, [(Some("68828574383266"), "AMZ-1", 2), (Some("68828574383267"), "AMZ-2", 1)]);
    // Per polled order: one token, one searchOrders page.
    assert_eq!(calls(&amazon).await, ["POST /auth/o2/token", "GET /orders/2026-01-01/orders"]);

    // Both units of the first line in the second box, the second line in the first.
    let (first, second) = ("1Z999AA10000000001", "1Z999AA10000000002");
    let mut body = shipment(
        &[(item(&po, "68828574383266"), 2, second, &[]), (item(&po, "68828574383267"), 1, first, &[])],
        &[first, second],
    );
    body["shipment"]["shipping_method"] = json!("Ground");
    let shipment = ship_and_register(&app, &easypost, &po, body).await;
    assert_eq!(calls(&amazon).await.len(), 2, "nothing to Amazon before the first scan");

    scan_and_confirm(&app, &easypost, store, &shipment, first, second).await;
    let id = shipment["id"].as_u64().expect("id");
    let package = |reference: u32, tracking: &str, item: &str, quantity: u32| {
        json!({"marketplaceId": "ATVPDKIKX0DER", "packageDetail": {
            "packageReferenceId": format!("{id}{reference:03}"), "carrierCode": "Other", "carrierName": "UPS",
            "trackingNumber": tracking, "shipDate": "2026-03-02T12:00:00Z", "shippingMethod": "Ground",
            "orderItems": [{"orderItemId": item, "quantity": quantity}]}})
    };
    assert_eq!(
        bodies(&amazon, "POST", &confirm).await,
        [package(0, first, "68828574383267", 1), package(1, second, "68828574383266", 2)],
        "each package confirmed once, with its own items"
    );
    // Per export: the exporter's own token, then one confirmShipment per package.
    assert_eq!(
        calls(&amazon).await[2..],
        ["POST /auth/o2/token", format!("POST {confirm}").as_str(), format!("POST {confirm}").as_str()]
    );
    let state = shipment_state(&app, &shipment["id"]).await;
    assert_eq!(state["exported_channel_ids"], json!([format!("{id}000"), format!("{id}001")]));

    // Amazon now lists the order shipped, with the two packages.
    let mut confirmed = order;
    confirmed["lastUpdatedTime"] = json!("2026-03-02T12:15:00Z");
    confirmed["fulfillment"]["fulfillmentStatus"] = json!("SHIPPED");
    confirmed["packages"] = json!([
        {"packageReferenceId": format!("{id}000"), "carrier": "UPS", "trackingNumber": first,
         "packageStatus": {"status": "IN_TRANSIT"}, "packageItems": [{"orderItemId": "68828574383267", "quantity": 1}]},
        {"packageReferenceId": format!("{id}001"), "carrier": "UPS", "trackingNumber": second,
         "packageStatus": {"status": "IN_TRANSIT"}, "packageItems": [{"orderItemId": "68828574383266", "quantity": 2}]}
    ]);
    Mock::given(method("GET"))
        .and(path("/orders/2026-01-01/orders"))
        .and(query_param("lastUpdatedAfter", "2026-03-02T11:25:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [confirmed]})))
        .expect(1)
        .mount(&amazon)
        .await;
    poll_the_confirmed_order(&app, &po).await;
    // Per later poll: one searchOrders page (the poller's token is still good).
    assert_eq!(calls(&amazon).await[5..], ["GET /orders/2026-01-01/orders"]);
}

const EBAY_ORDER: &str = "12-34567-89012";

#[tokio::test]
async fn an_ebay_order_goes_from_the_channel_to_a_confirmation_on_movement() {
    let (app, easypost) = marketplace_app().await;
    let ebay = MockServer::start().await;
    let store = create_store(
        &app,
        &easypost,
        json!({"name": "eBay", "channel": "ebay", "base_url": ebay.uri(),
               "credentials": {"ebay_client_id": "ebay-id", "ebay_client_secret": "ebay-secret", "refresh_token": "v^1.1"}}),
        &["EB-1", "EB-2"],
    )
    .await;
    let basic = base64::engine::general_purpose::STANDARD.encode("ebay-id:ebay-secret");
    Mock::given(method("POST"))
        .and(path("/identity/v1/oauth2/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "v^1.1#user", "expires_in": 7200})),
        )
        .mount(&ebay)
        .await;
    let order = json!({"orderId": EBAY_ORDER, "legacyOrderId": "110000000001-0", "creationDate": "2026-03-02T11:00:00.000Z",
    "lastModifiedDate": "2026-03-02T11:30:00.000Z", "orderFulfillmentStatus": "NOT_STARTED",
    "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []}, "buyer": {"username": "jroe"},
    "fulfillmentStartInstructions": [{"shippingStep": {"shipTo": {"fullName": "Jane Roe"}}}],
    "lineItems": [
        {"lineItemId": "10000000001", "sku": "EB-1", "title": "Widget", "quantity": 2, "lineItemCost": {"value": "39.98", "currency": "USD"}},
        {"lineItemId": "10000000002", "sku": "EB-2", "title": "Gadget", "quantity": 1, "lineItemCost": {"value": "5.00", "currency": "USD"}}
    ]});
    Mock::given(method("GET"))
        .and(path("/sell/fulfillment/v1/order"))
        .and(header("authorization", "Bearer v^1.1#user"))
        .and(query_param("filter", "lastmodifieddate:[2026-03-01T12:00:00.000Z..]"))
        .and(query_param("limit", "200"))
        .and(query_param("offset", "0"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"limit": 200, "offset": 0, "total": 1, "orders": [order.clone()]})),
        )
        .expect(1)
        .mount(&ebay)
        .await;
    let fulfillments = format!("/sell/fulfillment/v1/order/{EBAY_ORDER}/shipping_fulfillment");
    let (first, second) = ("1Z999AA10000000011", "1Z999AA10000000012");
    for (tracking, line, quantity) in [(first, "10000000002", 1), (second, "10000000001", 2)] {
        Mock::given(method("POST"))
            .and(path(fulfillments.clone()))
            .and(header("authorization", "Bearer v^1.1#user"))
            .and(body_json(json!({"lineItems": [{"lineItemId": line, "quantity": quantity}],
                "shippedDate": "2026-03-02T12:00:00.000Z", "shippingCarrierCode": "UPS", "trackingNumber": tracking})))
            .respond_with(
                ResponseTemplate::new(201)
                    .insert_header("Location", format!("https://api.ebay.com{fulfillments}/{tracking}")),
            )
            .expect(1)
            .mount(&ebay)
            .await;
    }

    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 1, 0), "{report:?}");
    app.run_orders().await;
    let po = polled_order(&app, store, EBAY_ORDER).await;
    assert_eq!(po.customer_name, "Jane Roe");
    let lines: Vec<(Option<&str>, &str, u32)> =
        po.items.iter().map(|i| (i.channel_line_item_id.as_deref(), i.sku.as_str(), i.quantity)).collect();
    assert_eq!(lines, [(Some("10000000001"), "EB-1", 2), (Some("10000000002"), "EB-2", 1)]);
    // Per polled order: one token, one getOrders page (no getOrder: no cancel request open).
    assert_eq!(calls(&ebay).await, ["POST /identity/v1/oauth2/token", "GET /sell/fulfillment/v1/order"]);

    let body = shipment(
        &[(item(&po, "10000000001"), 2, second, &[]), (item(&po, "10000000002"), 1, first, &[])],
        &[first, second],
    );
    let shipment = ship_and_register(&app, &easypost, &po, body).await;
    assert_eq!(calls(&ebay).await.len(), 2, "nothing to eBay before the first scan");

    scan_and_confirm(&app, &easypost, store, &shipment, first, second).await;
    // Per export: the exporter's own token, then one createShippingFulfillment per package.
    let post = format!("POST {fulfillments}");
    assert_eq!(calls(&ebay).await[2..], ["POST /identity/v1/oauth2/token", post.as_str(), post.as_str()]);
    let state = shipment_state(&app, &shipment["id"]).await;
    assert_eq!(state["exported_channel_ids"], json!([first, second]));

    // eBay now lists the order fulfilled; its fulfillments are the two packages.
    let mut confirmed = order;
    confirmed["lastModifiedDate"] = json!("2026-03-02T12:15:00.000Z");
    confirmed["orderFulfillmentStatus"] = json!("FULFILLED");
    Mock::given(method("GET"))
        .and(path("/sell/fulfillment/v1/order"))
        .and(query_param("filter", "lastmodifieddate:[2026-03-02T11:25:00.000Z..]"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"limit": 200, "offset": 0, "total": 1, "orders": [confirmed]})),
        )
        .expect(1)
        .mount(&ebay)
        .await;
    let fulfillment = |tracking: &str, line: &str, quantity: u32| {
        json!({"fulfillmentId": tracking, "shipmentTrackingNumber": tracking, "shippingCarrierCode": "UPS",
               "shippedDate": "2026-03-02T12:00:00.000Z", "lineItems": [{"lineItemId": line, "quantity": quantity}]})
    };
    Mock::given(method("GET"))
        .and(path(fulfillments.clone()))
        .and(header("authorization", "Bearer v^1.1#user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 2, "fulfillments": [
            fulfillment(first, "10000000002", 1), fulfillment(second, "10000000001", 2)]})))
        .expect(1)
        .mount(&ebay)
        .await;
    poll_the_confirmed_order(&app, &po).await;
    // Per later poll: one getOrders page, and the fulfillments of the order it lists as fulfilled.
    assert_eq!(calls(&ebay).await[5..], ["GET /sell/fulfillment/v1/order", format!("GET {fulfillments}").as_str()]);
}

const BACK_MARKET_ORDER: &str = "4567890";

fn orderline(id: u64, listing: &str, state: u64, quantity: u64) -> Value {
    json!({"id": id, "listing": listing, "product": format!("Product {listing}"), "state": state,
           "quantity": quantity, "price": "249.00", "imei": "", "serial_number": ""})
}

fn back_market_order(state: u64, orderlines: Value) -> Value {
    json!({"order_id": 4_567_890, "state": state, "date_creation": "2026-03-02 11:00:00",
           "date_modification": "2026-03-02 11:30:00", "tracking_number": "", "shipper": "",
           "shipping_address": {"first_name": "Jeanne", "last_name": "Dupont", "country": "FR"},
           "orderlines": orderlines})
}

/// A Back Market store listing one order of these lines awaiting acceptance (state 1); read
/// again, the order holds them accepted (state 2).
async fn back_market_store(
    app: &TestApp,
    easypost: &MockServer,
    server: &MockServer,
    lines: &[(u64, &str, u64)],
) -> StoreId {
    let skus: Vec<&str> = lines.iter().map(|(_, sku, _)| *sku).collect();
    let store = create_store(
        app,
        easypost,
        json!({"name": "Back Market", "channel": "back_market", "base_url": server.uri(),
               "credentials": {"api_token": "YmFja21hcmtldA=="}}),
        &skus,
    )
    .await;
    let orderlines = |state| {
        json!(lines.iter().map(|(id, sku, quantity)| orderline(*id, sku, state, *quantity)).collect::<Vec<_>>())
    };
    Mock::given(method("GET"))
        .and(path("/ws/orders"))
        .and(header("authorization", "Basic YmFja21hcmtldA=="))
        .and(query_param("date_modification", "2026-03-01 12:00:00"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"count": 1, "next": null, "previous": null, "results": [back_market_order(1, orderlines(1))]}),
        ))
        .expect(1)
        .mount(server)
        .await;
    let one = format!("/ws/orders/{BACK_MARKET_ORDER}");
    Mock::given(method("GET"))
        .and(path(one.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(back_market_order(1, orderlines(1))))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(one.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(back_market_order(2, orderlines(2))))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(one))
        .and(header("authorization", "Basic YmFja21hcmtldA=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(server)
        .await;
    store
}

fn shipped(sku: &str, tracking: &str, code: (&str, &str)) -> Value {
    let mut body = json!({"order_id": 4_567_890, "new_state": 3, "sku": sku, "tracking_number": tracking,
        "tracking_url": format!("https://www.ups.com/track?tracknum={tracking}"), "shipper": "UPS"});
    body[code.0] = json!(code.1);
    body
}

#[tokio::test]
async fn a_back_market_order_goes_from_the_channel_to_a_confirmation_on_movement() {
    let (app, easypost) = marketplace_app().await;
    let server = MockServer::start().await;
    let store = back_market_store(&app, &easypost, &server, &[(987, "IPHONE-13-128", 1), (988, "CASE-1", 2)]).await;
    let one = format!("/ws/orders/{BACK_MARKET_ORDER}");

    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 1, 0), "{report:?}");
    // Both lines are routed to the vendor: both accepted, each once.
    let accepted = [
        json!({"order_id": 4_567_890, "new_state": 2, "sku": "IPHONE-13-128"}),
        json!({"order_id": 4_567_890, "new_state": 2, "sku": "CASE-1"}),
    ];
    assert_eq!(bodies(&server, "POST", &one).await, accepted);
    app.run_orders().await;
    let po = polled_order(&app, store, BACK_MARKET_ORDER).await;
    assert_eq!(po.customer_name, "Jeanne Dupont");
    let lines: Vec<(Option<&str>, &str, u32, bool)> = po
        .items
        .iter()
        .map(|i| (i.channel_line_item_id.as_deref(), i.sku.as_str(), i.quantity, i.needs_imei))
        .collect();
    assert_eq!(lines, [(Some("987"), "IPHONE-13-128", 1, true), (Some("988"), "CASE-1", 2, false)]);
    // Per polled order: one listing page, then the order read and one acceptance per routed line.
    let post = format!("POST {one}");
    assert_eq!(calls(&server).await, ["GET /ws/orders", format!("GET {one}").as_str(), post.as_str(), post.as_str()]);

    let (first, second) = ("1Z999AA10000000021", "1Z999AA10000000022");
    let body = shipment(
        &[(item(&po, "987"), 1, first, &[IMEI]), (item(&po, "988"), 2, second, &["SN-1", "SN-2"])],
        &[first, second],
    );
    let shipment = ship_and_register(&app, &easypost, &po, body).await;
    assert_eq!(calls(&server).await.len(), 4, "nothing to Back Market before the first scan");

    scan_and_confirm(&app, &easypost, store, &shipment, first, second).await;
    // Per export: the order read (its lines accepted already), then one state 3 per line.
    assert_eq!(calls(&server).await[4..], [format!("GET {one}").as_str(), post.as_str(), post.as_str()]);
    assert_eq!(
        bodies(&server, "POST", &one).await[2..],
        [shipped("IPHONE-13-128", first, ("imei", IMEI)), shipped("CASE-1", second, ("serial_number", "SN-1,SN-2"))]
    );

    // Back Market now lists the order shipped, under its one order-level tracking number.
    let mut confirmed =
        back_market_order(3, json!([orderline(987, "IPHONE-13-128", 3, 1), orderline(988, "CASE-1", 3, 2)]));
    confirmed["date_modification"] = json!("2026-03-02 12:15:00");
    confirmed["tracking_number"] = json!(first);
    confirmed["shipper"] = json!("UPS");
    Mock::given(method("GET"))
        .and(path("/ws/orders"))
        .and(query_param("date_modification", "2026-03-02 11:25:00"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"next": null, "results": [confirmed]})))
        .expect(1)
        .mount(&server)
        .await;
    poll_the_confirmed_order(&app, &po).await;
    // Per later poll: one listing page; no line awaits acceptance.
    assert_eq!(calls(&server).await[7..], ["GET /ws/orders"]);
}

#[tokio::test]
async fn a_back_market_phone_without_its_imei_is_held_until_an_edit_adds_it() {
    let (app, easypost) = marketplace_app().await;
    let server = MockServer::start().await;
    let store = back_market_store(&app, &easypost, &server, &[(987, "IPHONE-13-128", 1)]).await;
    let one = format!("/ws/orders/{BACK_MARKET_ORDER}");
    app.poller.tick().await.expect("tick");
    app.run_orders().await;
    let po = polled_order(&app, store, BACK_MARKET_ORDER).await;
    let tracking = "1Z999AA10000000031";
    let body = shipment(&[(item(&po, "987"), 1, tracking, &[])], &[tracking]);
    let shipment = ship_and_register(&app, &easypost, &po, body).await;
    assert_eq!(shipment["shipment_items_attributes"][0]["needs_imei"], true, "{shipment}");

    scan(&app, store, "evt_1", tracking, "in_transit").await;
    app.run_orders().await;
    app.run_exports().await;
    let state = shipment_state(&app, &shipment["id"]).await;
    assert_eq!(state["export_state"], "export_failed", "{state}");
    assert!(
        state["export_error"].as_str().is_some_and(|e| e.contains("Back Market needs the IMEI of IPHONE-13-128")),
        "{state}"
    );
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert!(
        health["problems"].as_array().into_iter().flatten().any(|p| p["kind"] == "export_failed"
            && p["reason"].as_str().is_some_and(|r| r.contains("IMEI of IPHONE-13-128"))),
        "{health}"
    );
    assert_eq!(bodies(&server, "POST", &one).await.len(), 1, "only the acceptance: nothing shipped without the IMEI");

    // A serial number by mistake is no IMEI: still held, nothing sent. The IMEI replacing it
    // releases the confirmation.
    let item_id = &shipment["shipment_items_attributes"][0]["id"];
    let uri = format!("/shipments/{}.json", shipment["id"]);
    let set_codes = |codes: Value| {
        let body = json!({"shipment": {"shipment_items_attributes": [{"id": item_id, "serial_codes": codes}]}});
        app.call(Method::PATCH, &uri, Some(body))
    };
    let (status, json) = set_codes(json!(["SN-ABC-1"])).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    app.run_exports().await;
    assert_eq!(shipment_state(&app, &shipment["id"]).await["export_state"], "export_failed");
    let (status, json) = set_codes(json!([IMEI])).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    app.run_exports().await;
    assert_eq!(bodies(&server, "POST", &one).await[1..], [shipped("IPHONE-13-128", tracking, ("imei", IMEI))]);
    let state = shipment_state(&app, &shipment["id"]).await;
    assert_eq!(state["export_state"], "exported", "{state}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 0, "{health}");
    // Calls: the listing, the order read and the acceptance when polled; nothing while the IMEI
    // was missing; then the order read and the line shipped.
    let post = format!("POST {one}");
    let get = format!("GET {one}");
    assert_eq!(calls(&server).await, ["GET /ws/orders", get.as_str(), post.as_str(), get.as_str(), post.as_str()]);
}
