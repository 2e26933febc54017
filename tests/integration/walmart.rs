//! Walmart Marketplace against a wiremock that checks the exact requests Walmart's Orders API
//! expects: a store created through the API polls its orders, acknowledges one once its lines are
//! routed, and ships it line by line with Walmart's own carrier names once tracking is assigned;
//! a shipping answer lost on the way is retried without shipping twice; settings Walmart cannot
//! work with are refused when they are saved, and a carrier it does not list fails with what to do.

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::StoreId;
use shipsync_domain::purchase_order::PurchaseOrder;
use wiremock::matchers::{body_json, body_string, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::TestApp;

const ORDER: &str = "1796277083022";
const CLIENT_ID: &str = "wm-client-id";
const CLIENT_SECRET: &str = "wm-client-secret";
const TOKEN: &str = "eyJwm-token";

/// A retailer whose API accepts a store's channel address (a wiremock), and Walmart's token
/// endpoint there, which checks the client credentials and the headers Walmart requires.
async fn walmart_app(walmart: &MockServer) -> TestApp {
    let mut app = TestApp::new().await;
    app.api = app.api.clone().allowing_store_base_url();
    // The harness's Shopify store has no fake to poll.
    let (status, json) = app
        .call(
            Method::PUT,
            &format!("/stores/{}.json", app.shop.id),
            Some(json!({"store": {"poll_orders_every_minutes": 0}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    Mock::given(method("POST"))
        .and(path("/v3/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("wm_svc.name", "Walmart Marketplace"))
        .and(header_exists("wm_qos.correlation_id"))
        .and(body_string("grant_type=client_credentials"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 900})),
        )
        .mount(walmart)
        .await;
    app
}

/// Creates a Walmart store through the API, confirming as `confirmation` says, selling `skus`.
async fn create_store(app: &TestApp, walmart: &MockServer, confirmation: &str, skus: &[&str]) -> StoreId {
    let store = json!({"store": {"name": "Walmart", "channel": "walmart", "base_url": walmart.uri(),
        "ship_confirmation": confirmation,
        "credentials": {"walmart_client_id": CLIENT_ID, "walmart_client_secret": CLIENT_SECRET}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    for sku in skus {
        let product = json!({"product": {"sku": sku, "vendor_id": app.vendor.id.get()}});
        let (status, json) = app.call(Method::POST, "/products.json", Some(product)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
    StoreId::new(created["store"]["id"].as_u64().expect("id")).expect("id")
}

/// A line as Walmart lists it, its units in the given statuses.
fn line(number: &str, sku: &str, ordered: u32, statuses: Value) -> Value {
    json!({"lineNumber": number, "item": {"productName": format!("Item {sku}"), "sku": sku},
        "charges": {"charge": [{"chargeType": "PRODUCT", "chargeName": "ItemPrice",
            "chargeAmount": {"currency": "USD", "amount": 19.99 * f64::from(ordered)}}]},
        "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": ordered.to_string()},
        "statusDate": 1_772_452_800_000_i64, "orderLineStatuses": {"orderLineStatus": statuses}})
}

fn status(name: &str, units: u32) -> Value {
    json!({"status": name, "statusQuantity": {"unitOfMeasurement": "EACH", "amount": units.to_string()}})
}

fn shipped_status(units: u32, tracking: &str) -> Value {
    let mut shipped = status("Shipped", units);
    shipped["trackingInfo"] = json!({"shipDateTime": 1_772_452_800_000_i64, "carrierName": {"carrier": "UPS"},
        "methodCode": "Standard", "trackingNumber": tracking});
    shipped
}

/// Walmart's purchase order with two lines: two units of WM-1 and one of WM-2, in `states`.
fn order(states: [Value; 2]) -> Value {
    let [first, second] = states;
    json!({"purchaseOrderId": ORDER, "customerOrderId": "5281956426648", "customerEmailId": "x@relay.walmart.com",
        "orderDate": 1_772_449_200_000_i64,
        "shippingInfo": {"phone": "5555550100", "methodCode": "Value", "estimatedShipDate": 1_772_535_600_000_i64,
            "postalAddress": {"name": "Kathryn Cole", "address1": "3258 Warners Rd", "city": "Warners",
                "state": "NY", "postalCode": "13164", "country": "USA"}},
        "orderLines": {"orderLine": [line("1", "WM-1", 2, first), line("2", "WM-2", 1, second)]}})
}

fn created() -> Value {
    order([json!([status("Created", 2)]), json!([status("Created", 1)])])
}

fn acknowledged() -> Value {
    order([json!([status("Acknowledged", 2)]), json!([status("Acknowledged", 1)])])
}

/// `GET /v3/orders/{ORDER}` answers `first` once (when given), then `then` from there on.
async fn order_reads(walmart: &MockServer, first: Option<Value>, then: Value) {
    let one = format!("/v3/orders/{ORDER}");
    if let Some(first) = first {
        Mock::given(method("GET"))
            .and(path(one.clone()))
            .and(header("wm_sec.access_token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": first})))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(walmart)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(one))
        .and(header("wm_sec.access_token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": then})))
        .with_priority(2)
        .mount(walmart)
        .await;
}

/// The requests Walmart received, as `METHOD path`, in order.
async fn calls(walmart: &MockServer) -> Vec<String> {
    let requests: Vec<Request> = walmart.received_requests().await.unwrap_or_default();
    requests.iter().map(|r| format!("{} {}", r.method, r.url.path())).collect()
}

/// The purchase order the order processor made of Walmart's order for the vendor.
async fn polled_order(app: &TestApp, store: StoreId) -> PurchaseOrder {
    app.table
        .purchase_order_by_number(app.retailer.id, &format!("S{store}-{ORDER}-V{}", app.vendor.id))
        .await
        .expect("read")
        .expect("the poller made a purchase order")
}

fn item(po: &PurchaseOrder, line: &str) -> u64 {
    po.items.iter().find(|item| item.channel_line_item_id.as_deref() == Some(line)).expect("an item").id.get()
}

/// A UPS shipment: both units of line 1 in the second parcel, line 2 in the first.
fn shipment(po: &PurchaseOrder, first: &str, second: &str) -> Value {
    json!({"shipment": {"shipper_name": "UPS", "shipping_method": "express",
        "shipment_items_attributes": [
            {"order_item_id": item(po, "1"), "quantity": 2, "package_tracking": second},
            {"order_item_id": item(po, "2"), "quantity": 1, "package_tracking": first}],
        "shipment_trackings_attributes": [{"tracking": first}, {"tracking": second}]}})
}

/// The shipping request Walmart must receive for that shipment, shipped at `at`.
fn expected_shipping(at: DateTime<Utc>, first: &str, second: &str) -> Value {
    let tracking = |number: &str| {
        json!({"shipDateTime": at.timestamp_millis(), "carrierName": {"carrier": "UPS"}, "methodCode": "Express",
            "trackingNumber": number, "trackingURL": format!("https://www.ups.com/track?tracknum={number}")})
    };
    let shipped = |units: u32, number: &str| {
        json!({"status": "Shipped", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": units.to_string()},
            "trackingInfo": tracking(number)})
    };
    json!({"orderShipment": {"orderLines": {"orderLine": [
        {"lineNumber": "2", "sellerOrderId": ORDER, "orderLineStatuses": {"orderLineStatus": [shipped(1, first)]}},
        {"lineNumber": "1", "sellerOrderId": ORDER, "orderLineStatuses": {"orderLineStatus": [shipped(2, second)]}}
    ]}}})
}

/// Polls the store once: one listed order (Walmart's `created` one), made a purchase order.
async fn poll_the_order(app: &TestApp, walmart: &MockServer, store: StoreId) -> PurchaseOrder {
    Mock::given(method("GET"))
        .and(path("/v3/orders"))
        .and(header("wm_sec.access_token", TOKEN))
        .and(header("wm_svc.name", "Walmart Marketplace"))
        .and(header_exists("wm_qos.correlation_id"))
        .and(query_param("lastModifiedStartDate", "2026-03-01T12:00:00Z"))
        .and(query_param("limit", "200"))
        .and(query_param("shipNodeType", "SellerFulfilled"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"list": {"meta": {"totalCount": 1, "limit": 200}, "elements": {"order": [created()]}}}),
        ))
        .expect(1)
        .mount(walmart)
        .await;
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 1, 0), "{report:?}");
    app.run_orders().await;
    polled_order(app, store).await
}

#[tokio::test]
async fn an_order_is_acknowledged_once_routed_and_shipped_line_by_line_when_tracking_is_assigned() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let store = create_store(&app, &walmart, "tracking_assigned", &["WM-1", "WM-2"]).await;
    // Read by the acceptance (still Created), then by the export (acknowledged).
    order_reads(&walmart, Some(created()), acknowledged()).await;
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/acknowledge")))
        .and(header("wm_sec.access_token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .expect(1)
        .mount(&walmart)
        .await;

    let po = poll_the_order(&app, &walmart, store).await;
    assert_eq!(po.customer_name, "Kathryn Cole");
    let lines: Vec<(Option<&str>, &str, u32)> =
        po.items.iter().map(|i| (i.channel_line_item_id.as_deref(), i.sku.as_str(), i.quantity)).collect();
    assert_eq!(lines, [(Some("1"), "WM-1", 2), (Some("2"), "WM-2", 1)]);
    // Per polled order: a token, the page, and the acknowledgment (the order read first).
    assert_eq!(
        calls(&walmart).await,
        [
            "POST /v3/token",
            "GET /v3/orders",
            format!("GET /v3/orders/{ORDER}").as_str(),
            format!("POST /v3/orders/{ORDER}/acknowledge").as_str()
        ]
    );

    let (first, second) = ("1Z999AA10000000101", "1Z999AA10000000102");
    let created = app.create_shipment(&po, shipment(&po, first, second)).await;
    let shipped_at: DateTime<Utc> = created["created_at"].as_str().expect("created_at").parse().expect("a time");
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/shipping")))
        .and(header("wm_sec.access_token", TOKEN))
        .and(header("wm_svc.name", "Walmart Marketplace"))
        .and(header_exists("wm_qos.correlation_id"))
        .and(body_json(expected_shipping(shipped_at, first, second)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .expect(1)
        .mount(&walmart)
        .await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", created["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported", "{state}");
    assert_eq!(state["shipment"]["exported_channel_ids"], json!([first, second]));
    // Per export: the exporter's own token, the order read, one shipping call for both parcels.
    assert_eq!(
        calls(&walmart).await[4..],
        [
            "POST /v3/token",
            format!("GET /v3/orders/{ORDER}").as_str(),
            format!("POST /v3/orders/{ORDER}/shipping").as_str()
        ]
    );
    // Run again: nothing more goes to Walmart.
    app.run_exports().await;
    assert_eq!(calls(&walmart).await.len(), 7);
}

#[tokio::test]
async fn a_lost_shipping_answer_is_retried_without_shipping_twice() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let store = create_store(&app, &walmart, "tracking_assigned", &["WM-1", "WM-2"]).await;
    let (first, second) = ("1Z999AA10000000201", "1Z999AA10000000202");
    // Acknowledged when polled (no acknowledgment call); after the lost answer, Walmart shows
    // both lines shipped under shipsync's numbers.
    let shipped = order([json!([shipped_status(2, second)]), json!([shipped_status(1, first)])]);
    Mock::given(method("GET"))
        .and(path(format!("/v3/orders/{ORDER}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&walmart)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v3/orders/{ORDER}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": shipped})))
        .with_priority(2)
        .mount(&walmart)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"list": {"meta": {"totalCount": 1}, "elements": {"order": [acknowledged()]}}})),
        )
        .mount(&walmart)
        .await;
    // Walmart ships the lines, but its answer is lost (a 503 on the way back).
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/shipping")))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream timed out"))
        .expect(1)
        .mount(&walmart)
        .await;
    let report = app.poller.tick().await.expect("tick");
    assert_eq!(report.orders_queued, 1, "{report:?}");
    app.run_orders().await;
    let po = polled_order(&app, store).await;
    let created = app.create_shipment(&po, shipment(&po, first, second)).await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", created["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported", "the retry adopted what Walmart has: {state}");
    assert_eq!(state["shipment"]["exported_channel_ids"], json!([first, second]));
    let shipping_calls = calls(&walmart).await.iter().filter(|call| call.ends_with("/shipping")).count();
    assert_eq!(shipping_calls, 1, "shipped once: {:?}", calls(&walmart).await);
}

#[tokio::test]
async fn settings_walmart_cannot_work_with_are_refused_when_saved_and_change_nothing() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let (_, before) = app.call(Method::GET, "/stores.json", None).await;
    let store = |extra: Value| {
        let mut store = json!({"name": "Walmart", "channel": "walmart", "base_url": walmart.uri(),
            "credentials": {"walmart_client_id": CLIENT_ID, "walmart_client_secret": CLIENT_SECRET}});
        for (key, value) in extra.as_object().into_iter().flatten() {
            store[key] = value.clone();
        }
        json!({ "store": store })
    };
    let refused = [
        (json!({"ship_confirmation": "never"}), "ship_confirmation"),
        (
            json!({"carrier_mappings": [{"shipper_id": 1, "channel_carrier": "Fedex"}]}),
            "carrier_mappings[0].channel_carrier",
        ),
        (json!({"credentials": {"walmart_client_id": CLIENT_ID}}), "credentials.walmart_client_secret"),
        (json!({"credentials": {"walmart_client_id": CLIENT_ID, "api_token": "x"}}), "credentials.api_token"),
    ];
    for (extra, field) in refused {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(store(extra.clone()))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{extra}: {json}");
        let errors = crate::harness::errors(&json);
        assert!(errors.iter().any(|error| error.starts_with(field)), "{extra}: {errors:?}");
    }
    // Walmart's own name for a carrier, or another carrier with its tracking page, is taken.
    let mapped = json!({"carrier_mappings": [
        {"shipper_id": 1, "channel_carrier": "FedEx"},
        {"shipper_id": 17, "channel_carrier": "Pony Express", "tracking_url_template": "https://pony.example/{tracking}"}]});
    let (status, json) = app.call(Method::POST, "/stores.json", Some(store(mapped))).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["store"]["ship_confirmation"], "tracking_movement", "a marketplace waits for movement");
    let (_, after) = app.call(Method::GET, "/stores.json", None).await;
    let count = |list: &Value| list["stores"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&after), count(&before) + 1, "only the store that could work was made: {after}");
    assert!(walmart.received_requests().await.unwrap_or_default().is_empty(), "saving calls nobody");
}

#[tokio::test]
async fn a_carrier_walmart_does_not_list_fails_with_what_to_do_and_sends_nothing() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let store = create_store(&app, &walmart, "tracking_assigned", &["WM-1", "WM-2"]).await;
    shipsync_tools::provision::create_carrier(&app.table, app.retailer.id, "Pony Express", None)
        .await
        .expect("a carrier");
    order_reads(&walmart, None, acknowledged()).await;
    Mock::given(method("GET"))
        .and(path("/v3/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"list": {"meta": {"totalCount": 1}, "elements": {"order": [acknowledged()]}}})),
        )
        .mount(&walmart)
        .await;
    app.poller.tick().await.expect("tick");
    app.run_orders().await;
    let po = polled_order(&app, store).await;
    let mut body = shipment(&po, "PONY0001", "PONY0002");
    body["shipment"]["shipper_name"] = json!("Pony Express");
    let created = app.create_shipment(&po, body).await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", created["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "export_failed", "{state}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    let listed = health["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|problem| problem["kind"] == "export_failed")
        .unwrap_or_else(|| panic!("the failure is listed: {health}"));
    let reason = listed.to_string();
    assert!(reason.contains("tracking_url_template") && reason.contains("Pony Express"), "{reason}");
    assert!(!calls(&walmart).await.iter().any(|call| call.ends_with("/shipping")), "nothing was shipped");
}

/// Walmart takes a corrected tracking number for 4 hours after a line is shipped: a number
/// changed in place within them goes to Walmart once, as a `PARTIAL_UPDATE` naming the number it
/// replaces (the items' package renamed with it); after them, tracking is readonly again.
#[tokio::test]
async fn a_number_corrected_within_four_hours_goes_to_walmart_once_and_is_readonly_after() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let store = create_store(&app, &walmart, "tracking_assigned", &["WM-1", "WM-2"]).await;
    order_reads(&walmart, Some(created()), acknowledged()).await;
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/acknowledge")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .mount(&walmart)
        .await;
    let po = poll_the_order(&app, &walmart, store).await;
    let (first, second, corrected) = ("1Z999AA10000000301", "1Z999AA10000000302", "1Z999AA10000000399");
    let created = app.create_shipment(&po, shipment(&po, first, second)).await;
    let shipped_at: DateTime<Utc> = created["created_at"].as_str().expect("created_at").parse().expect("a time");
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/shipping")))
        .and(body_json(expected_shipping(shipped_at, first, second)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .expect(1)
        .mount(&walmart)
        .await;
    app.run_exports().await;
    // Walmart shows both lines shipped under the numbers sent.
    let shipped = order([json!([shipped_status(2, second)]), json!([shipped_status(1, first)])]);
    Mock::given(method("GET"))
        .and(path(format!("/v3/orders/{ORDER}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": shipped})))
        .with_priority(1)
        .mount(&walmart)
        .await;

    app.advance(chrono::Duration::hours(3));
    let id = created["id"].as_u64().expect("an id");
    let first_id = created["shipment_trackings_attributes"][0]["id"].clone();
    let change = json!({"shipment": {"shipment_trackings_attributes": [{"id": first_id, "tracking": corrected}]}});
    let (status, updated) = app.call(Method::PUT, &format!("/shipments/{id}.json"), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let correction = &updated["shipment"]["tracking_correction"];
    assert_eq!((correction["state"].clone(), correction["channel_holds"].clone()), (json!("pending"), json!([first])));
    let line_two = updated["shipment"]["shipment_items_attributes"]
        .as_array()
        .and_then(|items| items.iter().find(|entry| entry["order_item_id"] == json!(item(&po, "2"))).cloned())
        .expect("line 2's item");
    assert_eq!(line_two["package_tracking"], corrected, "its package renamed with the number");
    let correction_body = json!({"orderShipment": {"processMode": "PARTIAL_UPDATE", "orderLines": {"orderLine": [
        {"lineNumber": "2", "sellerOrderId": ORDER, "orderLineStatuses": {"orderLineStatus": [{"status": "Shipped",
            "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"},
            "trackingInfo": {"shipDateTime": shipped_at.timestamp_millis(), "carrierName": {"carrier": "UPS"},
                "methodCode": "Express", "trackingNumber": corrected,
                "trackingURL": format!("https://www.ups.com/track?tracknum={corrected}")},
            "currentTrackingInfo": {"trackingNumber": first}}]}}]}}});
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/shipping")))
        .and(header("wm_sec.access_token", TOKEN))
        .and(body_json(correction_body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": shipped})))
        .expect(1)
        .mount(&walmart)
        .await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{id}.json"), None).await;
    assert!(state["shipment"]["tracking_correction"].is_null(), "sent: {state}");
    assert_eq!(state["shipment"]["exported_channel_ids"], json!([corrected, second]));
    app.run_exports().await;
    let shipping_calls = calls(&walmart).await.iter().filter(|call| call.ends_with("/shipping")).count();
    assert_eq!(shipping_calls, 2, "the shipment once, the correction once");

    // Past the window, the numbers are readonly again, and nothing is sent.
    app.advance(chrono::Duration::hours(2));
    let change =
        json!({"shipment": {"shipment_trackings_attributes": [{"id": first_id, "tracking": "1Z999AA10000000398"}]}});
    let (status, refused) = app.call(Method::PUT, &format!("/shipments/{id}.json"), Some(change)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("took tracking corrections until"), "{refused}");
    // A number added (not replaced in place) is no correction: readonly at any time.
    app.advance(chrono::Duration::hours(-4));
    let added = json!({"shipment": {"shipment_trackings_attributes": [{"tracking": "1Z999AA10000000397"}]}});
    let (status, refused) = app.call(Method::PUT, &format!("/shipments/{id}.json"), Some(added)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
}

/// A correction Walmart refuses is listed in order health with the number it still holds.
#[tokio::test]
async fn a_correction_walmart_refuses_is_listed_with_the_number_it_still_holds() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let store = create_store(&app, &walmart, "tracking_assigned", &["WM-1", "WM-2"]).await;
    let shipped =
        order([json!([shipped_status(2, "1Z999AA10000000402")]), json!([shipped_status(1, "1Z999AA10000000401")])]);
    order_reads(&walmart, Some(created()), acknowledged()).await;
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/acknowledge")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .mount(&walmart)
        .await;
    let po = poll_the_order(&app, &walmart, store).await;
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/shipping")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&walmart)
        .await;
    let created = app.create_shipment(&po, shipment(&po, "1Z999AA10000000401", "1Z999AA10000000402")).await;
    app.run_exports().await;
    Mock::given(method("GET"))
        .and(path(format!("/v3/orders/{ORDER}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": shipped})))
        .with_priority(1)
        .mount(&walmart)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/shipping")))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"errors": {"error": [{"code": "INVALID_REQUEST_CONTENT.GMP_ORDER_API",
            "description": "Tracking update window has expired", "severity": "ERROR", "category": "DATA"}]}})),
        )
        .with_priority(2)
        .mount(&walmart)
        .await;
    let id = created["id"].as_u64().expect("an id");
    let first_id = created["shipment_trackings_attributes"][0]["id"].clone();
    let change =
        json!({"shipment": {"shipment_trackings_attributes": [{"id": first_id, "tracking": "1Z999AA10000000499"}]}});
    let (status, updated) = app.call(Method::PUT, &format!("/shipments/{id}.json"), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{id}.json"), None).await;
    let correction = &state["shipment"]["tracking_correction"];
    assert_eq!(correction["state"], "refused", "{state}");
    assert!(correction["error"].as_str().unwrap_or_default().contains("window has expired"), "{state}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    let listed = health.to_string();
    assert!(listed.contains("tracking_correction_refused") && listed.contains("1Z999AA10000000401"), "{health}");
    app.run_exports().await;
    let shipping_calls = calls(&walmart).await.iter().filter(|call| call.ends_with("/shipping")).count();
    assert_eq!(shipping_calls, 2, "a refused correction is not sent again by itself");
}

/// The cancellation Walmart must receive: `units` of line `number`, out of stock.
fn expected_cancel(number: &str, units: u32) -> Value {
    json!({"orderCancellation": {"orderLines": {"orderLine": [{"lineNumber": number, "orderLineStatuses": {
        "orderLineStatus": [{"status": "Cancelled", "cancellationReason": "SELLER_CANCEL_OUT_OF_STOCK",
            "statusQuantity": {"unitOfMeasurement": "EACH", "amount": units.to_string()}}]}}]}}})
}

#[tokio::test]
async fn units_cancelled_in_shipsync_reach_walmart_once_and_a_retry_sends_only_what_walmart_lacks() {
    let walmart = MockServer::start().await;
    let app = walmart_app(&walmart).await;
    let store = create_store(&app, &walmart, "tracking_assigned", &["WM-1", "WM-2"]).await;
    order_reads(&walmart, Some(created()), acknowledged()).await;
    Mock::given(method("POST"))
        .and(path(format!("/v3/orders/{ORDER}/acknowledge")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .mount(&walmart)
        .await;
    let po = poll_the_order(&app, &walmart, store).await;
    let cancel_path = format!("/v3/orders/{ORDER}/cancel");
    // The first cancel's answer is lost, though Walmart took it.
    Mock::given(method("POST"))
        .and(path(cancel_path.clone()))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&walmart)
        .await;
    Mock::given(method("POST"))
        .and(path(cancel_path.clone()))
        .and(header("wm_sec.access_token", TOKEN))
        .and(header("wm_svc.name", "Walmart Marketplace"))
        .and(header_exists("wm_qos.correlation_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": acknowledged()})))
        .with_priority(2)
        .mount(&walmart)
        .await;
    let uri = format!("/purchase_orders/{}/cancellations.json", po.id);
    let one_unit = json!({"cancellation": {"items": [{"order_item_id": item(&po, "1"), "quantity": 1}],
        "reason": "out_of_stock"}});
    let (answered, created) = app.call(Method::POST, &uri, Some(one_unit.clone())).await;
    assert_eq!(answered, StatusCode::CREATED, "{created}");
    assert_eq!(app.run_exports().await, 1);

    // Walmart now shows the unit cancelled: the retry adopts it and sends nothing.
    let one_cancelled =
        order([json!([status("Acknowledged", 1), status("Cancelled", 1)]), json!([status("Acknowledged", 1)])]);
    Mock::given(method("GET"))
        .and(path(format!("/v3/orders/{ORDER}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": one_cancelled})))
        .with_priority(1)
        .mount(&walmart)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.run_exports().await, 1, "delivered again");
    let id = &created["cancellation"]["id"];
    let (_, read) = app.call(Method::GET, &format!("/cancellations/{id}.json"), None).await;
    assert_eq!(read["cancellation"]["state"], json!("pushed"), "{read}");

    // The line's other unit: Walmart shows one cancelled, shipsync two, so one more goes.
    let (answered, second) = app.call(Method::POST, &uri, Some(one_unit)).await;
    assert_eq!(answered, StatusCode::CREATED, "{second}");
    app.run_exports().await;
    let sent: Vec<Value> = walmart
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| request.method.as_str() == "POST" && request.url.path() == cancel_path)
        .map(|request| serde_json::from_slice(&request.body).expect("JSON"))
        .collect();
    assert_eq!(sent, [expected_cancel("1", 1), expected_cancel("1", 1)], "the lost one and the second unit, once each");
    let (_, read) = app.call(Method::GET, &format!("/purchase_orders/{}.json", po.id), None).await;
    assert_eq!(read["purchase_order"]["order_items"][0]["quantity_cancelled"], json!(2), "{read}");
}
