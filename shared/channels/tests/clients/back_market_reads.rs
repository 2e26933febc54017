//! Back Market's `/ws/orders` against a local fake: the exact listing request, paging by page
//! number (never by following `next`), states read as shipsync's, shipped lines as fulfillments,
//! accepting only lines that await it, its throttle page, and a ship confirmation per line with
//! its own package and serials.

use std::time::Duration;

use serde_json::{Value, json};
use shipsync_channels::{BackMarketClient, Channel, ChannelError, ExportLine, ExportOrder};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn back_market(server: &MockServer) -> BackMarketClient {
    BackMarketClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        Some(&server.uri()),
        "YmFja21hcmtldA==".into(),
    )
}

fn id(text: &str) -> ChannelOrderId {
    ChannelOrderId::parse(text).expect("an order id")
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("a time")
}

fn tracking(number: &str) -> TrackingNumber {
    TrackingNumber::parse(number).expect("a tracking number")
}

fn orderline(id: u64, listing: &str, state: u64, quantity: u64) -> Value {
    json!({"id": id, "listing": listing, "product": format!("Product {listing}"), "state": state,
           "quantity": quantity, "price": "249.00", "imei": "", "serial_number": ""})
}

fn order(order_id: u64, state: u64, modified: &str, orderlines: Value) -> Value {
    json!({"order_id": order_id, "state": state, "date_creation": "2026-03-01 10:00:00",
           "date_modification": modified, "tracking_number": "", "shipper": "",
           "shipping_address": {"first_name": "Jeanne", "last_name": "Dupont", "country": "FR"},
           "orderlines": orderlines})
}

/// The listing as shipsync must request it, with Back Market's headers.
fn list_orders(modified: &str, page: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/ws/orders"))
        .and(header("authorization", "Basic YmFja21hcmtldA=="))
        .and(header("accept", "application/json"))
        .and(header("accept-language", "en-gb"))
        .and(query_param("date_modification", modified))
        .and(query_param("page", page))
}

#[tokio::test]
async fn a_page_reads_states_lines_and_shipped_lines() {
    let server = MockServer::start().await;
    let several = order(
        4_500_001,
        1,
        "2026-03-02T09:00:00+01:00",
        json!([orderline(901, "IPHONE-13", 1, 1), orderline(902, "CASE-1", 2, 3), orderline(903, "CABLE", 5, 1)]),
    );
    let cancelled = order(4_500_002, 8, "2026-03-02 09:10:00", json!([orderline(911, "IPHONE-12", 4, 1)]));
    let mut shipped = order(
        4_500_003,
        9,
        "2026-03-02 09:20:00",
        json!([orderline(921, "IPHONE-13", 3, 1), orderline(922, "CASE-1", 2, 1)]),
    );
    shipped["tracking_number"] = json!("6A12345678901");
    shipped["shipper"] = json!("Colissimo");
    list_orders("2026-03-02 08:00:00", "1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "count": 3, "next": null, "previous": null, "results": [several, cancelled, shipped]})))
        .expect(1)
        .mount(&server)
        .await;
    let page = back_market(&server).orders_since(at("2026-03-02T08:00:00Z"), None).await.expect("a page");
    assert_eq!(page.next, None);
    assert!(page.unreadable.is_empty());
    let [several, cancelled, shipped] = page.orders.as_slice() else { panic!("three orders: {page:?}") };
    assert_eq!(several.channel_order_id, id("4500001"));
    assert_eq!(several.number, "4500001");
    assert_eq!(several.customer_name, "Jeanne Dupont");
    assert_eq!(several.updated_at, at("2026-03-02T08:00:00Z"), "+01:00 read as such");
    let line = |id: &str, sku: &str, quantity, awaiting_acceptance, needs_imei| IncomingLine {
        channel_line_item_id: id.into(),
        sku: Sku::received(sku),
        name: format!("Product {sku}"),
        quantity,
        unit_price: Some("249.00".parse().unwrap()),
        awaiting_acceptance,
        needs_imei,
    };
    assert_eq!(
        several.lines,
        [
            line("901", "IPHONE-13", 1, true, true),
            line("902", "CASE-1", 3, false, false),
            line("903", "CABLE", 0, false, true),
        ],
        "state 1 awaits acceptance; state 5 (refunded) leaves nothing ordered; one-unit lines without a category need an IMEI"
    );
    assert!(!several.cancelled && several.fulfillments.is_empty());
    assert!(cancelled.cancelled);
    assert_eq!(cancelled.updated_at, at("2026-03-02T09:10:00Z"));
    assert_eq!(
        shipped.fulfillments,
        [IncomingFulfillment {
            channel_fulfillment_id: "6A12345678901".into(),
            channel_order_id: id("4500003"),
            lines: vec![("921".into(), 1)],
            tracking_numbers: vec![tracking("6A12345678901")],
            tracking_company: Some("Colissimo".into()),
            cancelled: false,
        }],
        "only the shipped line (state 3) is in the shipment"
    );
}

#[tokio::test]
async fn pages_go_by_number_and_never_to_the_next_url() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let broken = json!({"order_id": 4_500_009, "state": 1, "date_modification": "2026-03-02 08:10:00",
                        "orderlines": [{"id": 991, "state": 1, "listing": "X"}]});
    list_orders("2026-03-02 08:00:00", "1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "next": format!("{}/ws/orders?date_modification=2026-03-02+08%3A00%3A00&page=2", elsewhere.uri()),
            "results": [order(4_500_001, 1, "2026-03-02 08:30:00", json!([orderline(901, "A", 2, 1)])), broken.clone()]
        })))
        .expect(1)
        .mount(&server)
        .await;
    list_orders("2026-03-02 08:00:00", "2")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "next": null,
            "results": [order(4_500_005, 3, "2026-03-02 09:30:00", json!([orderline(951, "A", 2, 1)]))]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = back_market(&server);
    let since = at("2026-03-02T08:00:00Z");
    let first = client.orders_since(since, None).await.expect("page 1");
    assert_eq!(first.next.as_deref(), Some("2"));
    assert_eq!(first.orders.len(), 1);
    assert_eq!(first.unreadable[0].node, broken, "kept with its reason, not dropped");
    assert_eq!(first.unreadable[0].reason, "orderlines[0].quantity must be a whole number, 0 or more");
    let second = client.orders_since(since, first.next.as_deref()).await.expect("page 2");
    assert_eq!(second.orders[0].channel_order_id, id("4500005"));
    assert_eq!(second.next, None);
    assert!(elsewhere.received_requests().await.unwrap_or_default().is_empty(), "the token stays home");
}

#[tokio::test]
async fn an_order_modified_twice_reads_as_two_versions_in_two_polls() {
    let server = MockServer::start().await;
    list_orders("2026-03-02 08:00:00", "1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"next": null, "results": [
            order(4_500_001, 1, "2026-03-02 08:30:00", json!([orderline(901, "A", 1, 2)]))]})))
        .mount(&server)
        .await;
    list_orders("2026-03-02 08:30:00", "1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"next": null, "results": [
            order(4_500_001, 8, "2026-03-02 09:00:00", json!([orderline(901, "A", 4, 2)]))]})))
        .mount(&server)
        .await;
    let client = back_market(&server);
    let before = client.orders_since(at("2026-03-02T08:00:00Z"), None).await.expect("poll 1").orders;
    let after = client.orders_since(at("2026-03-02T08:30:00Z"), None).await.expect("poll 2").orders;
    assert_eq!(before[0].channel_order_id, after[0].channel_order_id);
    assert!(after[0].updated_at > before[0].updated_at);
    assert_eq!((before[0].lines[0].quantity, after[0].lines[0].quantity), (2, 0));
    assert!(!before[0].cancelled && after[0].cancelled);
}

#[tokio::test]
async fn throttling_is_retryable_whether_429_or_its_web_page() {
    let server = MockServer::start().await;
    list_orders("2026-03-02 08:00:00", "1")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "45"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    list_orders("2026-03-02 08:00:00", "1")
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html><body>Please slow down</body></html>", "text/html"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    list_orders("2026-03-02 08:00:00", "1").respond_with(ResponseTemplate::new(502)).mount(&server).await;
    let client = back_market(&server);
    let since = at("2026-03-02T08:00:00Z");
    for expected in [45, 30, 30] {
        let error = client.orders_since(since, None).await.expect_err("throttled");
        let ChannelError::Retryable { retry_after, .. } = error else { panic!("retryable: {error:?}") };
        assert_eq!(retry_after, Some(Duration::from_secs(expected)));
    }
}

/// The order as Back Market holds it: line 901 awaits acceptance, 902 is accepted, 903 shipped.
async fn held_order(server: &MockServer) {
    let mut held = order(
        4_500_001,
        1,
        "2026-03-02 08:30:00",
        json!([orderline(901, "IPHONE-13", 1, 1), orderline(902, "CASE-1", 2, 1), orderline(903, "CABLE", 3, 1)]),
    );
    held["tracking_number"] = json!("6A0001");
    Mock::given(method("GET"))
        .and(path("/ws/orders/4500001"))
        .and(header("authorization", "Basic YmFja21hcmtldA=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(held))
        .mount(server)
        .await;
}

async fn posted(server: &MockServer) -> Vec<Value> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|request| request.method.as_str() == "POST")
        .map(|request| serde_json::from_slice(&request.body).expect("JSON"))
        .collect()
}

#[tokio::test]
async fn only_lines_awaiting_acceptance_are_accepted_and_accepting_again_sends_nothing() {
    let server = MockServer::start().await;
    held_order(&server).await;
    Mock::given(method("POST"))
        .and(path("/ws/orders/4500001"))
        .and(header("authorization", "Basic YmFja21hcmtldA=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let client = back_market(&server);
    let read = client.order(&id("4500001")).await.expect("read").expect("known");
    assert_eq!(read.fulfillments[0].lines, [("903".to_owned(), 1)]);
    client.accept_lines(&id("4500001"), &read.lines).await.expect("accepted");
    assert_eq!(posted(&server).await, [json!({"order_id": 4_500_001, "new_state": 2, "sku": "IPHONE-13"})]);

    // Back Market now holds 901 as accepted: accepting again reads the order and sends nothing.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ws/orders/4500001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order(
            4_500_001,
            3,
            "2026-03-02 08:40:00",
            json!([orderline(901, "IPHONE-13", 2, 1), orderline(902, "CASE-1", 2, 1)]),
        )))
        .mount(&server)
        .await;
    back_market(&server).accept_lines(&id("4500001"), &read.lines).await.expect("nothing to do, no error");
    assert!(posted(&server).await.is_empty());
}

#[tokio::test]
async fn fulfillments_are_the_shipped_lines_and_an_unknown_order_is_none() {
    let server = MockServer::start().await;
    held_order(&server).await;
    Mock::given(method("GET"))
        .and(path("/ws/orders/4500404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not found."})))
        .mount(&server)
        .await;
    let client = back_market(&server);
    let fulfillments = client.fulfillments(&id("4500001")).await.expect("read");
    assert_eq!(fulfillments.len(), 1);
    assert_eq!(fulfillments[0].channel_fulfillment_id, "6A0001");
    assert_eq!(client.order(&id("4500404")).await.expect("read"), None);
}

#[tokio::test]
async fn each_line_ships_with_its_own_package_and_every_serial() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ws/orders/4500001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order(
            4_500_001,
            3,
            "2026-03-02 08:30:00",
            json!([orderline(901, "IPHONE-13", 2, 1), orderline(902, "CASE-1", 1, 2)]),
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ws/orders/4500001"))
        .and(header("authorization", "Basic YmFja21hcmtldA=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let line = |id: &str, quantity, sku: &str, codes: &[&str], package: &str, needs_imei| ExportLine {
        channel_line_item_id: id.into(),
        quantity,
        sku: sku.into(),
        serial_codes: codes.iter().map(|code| (*code).to_owned()).collect(),
        package: Some(tracking(package)),
        needs_imei,
    };
    let mut shipment = ExportOrder {
        shipment_id: 1012,
        shipped_at: at("2026-03-02T12:00:00Z"),
        channel_order_id: id("4500001"),
        lines: vec![
            line("901", 1, "IPHONE-13", &["356938035643809"], "6A0002", true),
            line("902", 2, "CASE-1", &["SN-1", "SN-2"], "6A0001", false),
        ],
        tracking_numbers: vec![tracking("6A0001"), tracking("6A0002")],
        carrier: "Colissimo".into(),
        carrier_code: None,
        tracking_urls: vec!["https://track.example/6A0001".into(), "https://track.example/6A0002".into()],
        notify_customer: true,
        shipping_method: None,
    };
    let fulfillment = back_market(&server).export(&shipment, false).await.expect("shipped");
    assert_eq!(fulfillment.channel_ids, ["6A0002", "6A0001"], "the packages' numbers: what a read names it by");
    assert_eq!(
        posted(&server).await,
        [
            json!({"order_id": 4_500_001, "new_state": 3, "sku": "IPHONE-13", "tracking_number": "6A0002",
                   "tracking_url": "https://track.example/6A0002", "shipper": "Colissimo", "imei": "356938035643809"}),
            json!({"order_id": 4_500_001, "new_state": 2, "sku": "CASE-1"}),
            json!({"order_id": 4_500_001, "new_state": 3, "sku": "CASE-1", "tracking_number": "6A0001",
                   "tracking_url": "https://track.example/6A0001", "shipper": "Colissimo", "serial_number": "SN-1,SN-2"}),
        ],
        "each line its own package; the unvalidated line is validated first"
    );

    // A line that needs an IMEI and has only a serial number is refused before any call.
    let server = MockServer::start().await;
    shipment.lines[0].serial_codes = vec!["SN-9".into()];
    let error = back_market(&server).export(&shipment, false).await.expect_err("refused");
    assert!(
        matches!(&error, ChannelError::Permanent { message } if message.contains("IMEI of IPHONE-13")),
        "{error:?}"
    );
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}
