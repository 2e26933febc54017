//! eBay's Sell Fulfillment reads against a local fake: the exact getOrders request (its filter's
//! brackets percent-encoded), paging by offset (never by following `next`), cancel requests read
//! from getOrder, and the shipping fulfillments of shipped orders.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use shipsync_channels::{Channel, ChannelError, EbayClient, EbayCredentials, TokenCache};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ORDERS: &str = "/sell/fulfillment/v1/order";

fn ebay(server: &MockServer) -> EbayClient {
    let credentials = EbayCredentials {
        client_id: "ebay-id".into(),
        client_secret: "ebay-secret".into(),
        refresh_token: "v^1.1".into(),
    };
    EbayClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        Some(&server.uri()),
        None,
        credentials,
        TokenCache::default(),
    )
}

/// eBay's OAuth grants `v^1.1#user` once, for the client's Basic credentials and refresh token.
async fn oauth(server: &MockServer) {
    let basic = base64::engine::general_purpose::STANDARD.encode("ebay-id:ebay-secret");
    Mock::given(method("POST"))
        .and(path("/identity/v1/oauth2/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "v^1.1#user", "expires_in": 7200})),
        )
        .expect(1)
        .mount(server)
        .await;
}

fn id(text: &str) -> ChannelOrderId {
    ChannelOrderId::parse(text).expect("an order id")
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("a time")
}

fn order(id: &str, modified: &str) -> Value {
    json!({"orderId": id, "legacyOrderId": "110000000001-0", "creationDate": "2026-03-01T10:00:00.000Z",
    "lastModifiedDate": modified, "orderFulfillmentStatus": "NOT_STARTED",
    "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
    "buyer": {"username": "jroe"},
    "fulfillmentStartInstructions": [{"shippingStep": {"shipTo": {"fullName": "Jane Roe"}}}],
    "lineItems": [
        {"lineItemId": "10001", "sku": "SKU-1", "title": "Widget", "quantity": 2,
         "lineItemCost": {"value": "39.98", "currency": "USD"}},
        {"lineItemId": "10002", "sku": "", "title": "Gadget", "quantity": 1,
         "lineItemCost": {"value": "5.00", "currency": "USD"}}
    ]})
}

/// getOrders as shipsync must call it, for orders modified since `since` (eBay's milliseconds).
fn get_orders(since: &str, offset: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("authorization", "Bearer v^1.1#user"))
        .and(query_param("filter", format!("lastmodifieddate:[{since}..]").as_str()))
        .and(query_param("limit", "200"))
        .and(query_param("offset", offset))
}

#[tokio::test]
async fn a_page_reads_lines_cancellations_requests_and_fulfillments() {
    let server = MockServer::start().await;
    oauth(&server).await;
    let mut cancelled = order("12-00002-00002", "2026-03-02T09:00:00.000Z");
    cancelled["cancelStatus"] = json!({"cancelState": "CANCELED", "cancelledDate": "2026-03-02T09:00:00.000Z"});
    let mut requested = order("12-00003-00003", "2026-03-02T09:30:00.000Z");
    requested["cancelStatus"] = json!({"cancelState": "IN_PROGRESS", "cancelRequests": []});
    let mut shipped = order("12-00004-00004", "2026-03-02T10:00:00.000Z");
    shipped["orderFulfillmentStatus"] = json!("IN_PROGRESS");
    get_orders("2026-03-02T08:00:00.000Z", "0")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "href": "https://api.ebay.com/sell/fulfillment/v1/order?offset=0", "limit": 200, "offset": 0, "total": 4,
            "orders": [order("12-00001-00001", "2026-03-02T08:30:00.000Z"), cancelled, requested, shipped]
        })))
        .expect(1)
        .mount(&server)
        .await;
    // Only getOrder lists the request (getOrders' `cancelRequests` is always empty).
    Mock::given(method("GET"))
        .and(path(format!("{ORDERS}/12-00003-00003")))
        .and(header("authorization", "Bearer v^1.1#user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orderId": "12-00003-00003",
            "cancelStatus": {"cancelState": "IN_PROGRESS", "cancelRequests": [
                {"cancelRequestId": "5000001", "cancelRequestState": "REQUESTED", "cancelInitiator": "BUYER",
                 "cancelReason": "BUYER_CANCEL_ORDER"}]}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ORDERS}/12-00004-00004/shipping_fulfillment")))
        .and(header("authorization", "Bearer v^1.1#user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 1, "fulfillments": [
            {"fulfillmentId": "1Z999AA10123456784", "shipmentTrackingNumber": "1Z999AA10123456784",
             "shippingCarrierCode": "UPS", "shippedDate": "2026-03-02T10:00:00.000Z",
             "lineItems": [{"lineItemId": "10001", "quantity": 1}]}]})))
        .expect(1)
        .mount(&server)
        .await;

    let page = ebay(&server).orders_since(at("2026-03-02T08:00:00Z"), None).await.expect("a page");
    assert_eq!(page.next, None, "4 of 4 read");
    assert!(page.unreadable.is_empty());
    let [first, cancelled, requested, shipped] = page.orders.as_slice() else { panic!("four orders: {page:?}") };
    assert_eq!((first.number.as_str(), first.customer_name.as_str()), ("12-00001-00001", "Jane Roe"));
    assert_eq!(first.updated_at, at("2026-03-02T08:30:00Z"));
    assert_eq!(
        first.lines,
        [
            IncomingLine {
                channel_line_item_id: "10001".into(),
                sku: Sku::received("SKU-1"),
                name: "Widget".into(),
                quantity: 2,
                unit_price: Some("19.99".parse().unwrap()),
                awaiting_acceptance: false,
                needs_imei: false,
            },
            IncomingLine {
                channel_line_item_id: "10002".into(),
                sku: None,
                name: "Gadget".into(),
                quantity: 1,
                unit_price: Some("5.00".parse().unwrap()),
                awaiting_acceptance: false,
                needs_imei: false,
            },
        ]
    );
    assert!(!first.cancelled && first.cancel_requested.is_none() && first.fulfillments.is_empty());
    assert!(cancelled.cancelled && cancelled.cancel_requested.is_none());
    assert_eq!(requested.cancel_requested.as_deref(), Some("buyer asked to cancel: BUYER_CANCEL_ORDER"));
    assert_eq!(
        shipped.fulfillments,
        [IncomingFulfillment {
            channel_fulfillment_id: "1Z999AA10123456784".into(),
            channel_order_id: id("12-00004-00004"),
            lines: vec![("10001".into(), 1)],
            tracking_numbers: vec![TrackingNumber::parse("1Z999AA10123456784").unwrap()],
            tracking_company: Some("UPS".into()),
            cancelled: false,
        }]
    );
    // The filter's brackets travel percent-encoded.
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    let listing = requests.iter().find(|request| request.url.path() == ORDERS).expect("getOrders");
    assert!(listing.url.query().is_some_and(|query| query.contains("%5B") && query.contains("%5D")), "{listing:?}");
}

#[tokio::test]
async fn pages_go_by_offset_and_never_to_the_next_url() {
    let server = MockServer::start().await;
    oauth(&server).await;
    let elsewhere = MockServer::start().await;
    let broken = json!({"orderId": "12-00009-00009", "lastModifiedDate": "2026-03-02T08:40:00.000Z"});
    get_orders("2026-03-02T08:00:00.000Z", "0")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "limit": 200, "offset": 0, "total": 202,
            "next": format!("{}{ORDERS}?offset=200&limit=200", elsewhere.uri()),
            "orders": [order("12-00001-00001", "2026-03-02T08:30:00.000Z"), broken.clone()]
        })))
        .expect(1)
        .mount(&server)
        .await;
    get_orders("2026-03-02T08:00:00.000Z", "200")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "limit": 200, "offset": 200, "total": 202,
            "orders": [order("12-00005-00005", "2026-03-02T09:30:00.000Z")]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = ebay(&server);
    let since = at("2026-03-02T08:00:00Z");
    let first = client.orders_since(since, None).await.expect("page 1");
    assert_eq!(first.next.as_deref(), Some("200"));
    assert_eq!(first.orders.len(), 1);
    assert_eq!(first.unreadable[0].node, broken, "kept with its reason, not dropped");
    assert_eq!(first.unreadable[0].reason, "lineItems is required");
    let second = client.orders_since(since, first.next.as_deref()).await.expect("page 2");
    assert_eq!(second.orders[0].channel_order_id, id("12-00005-00005"));
    assert_eq!(second.next, None);
    assert!(elsewhere.received_requests().await.unwrap_or_default().is_empty(), "the token stays home");
}

#[tokio::test]
async fn an_order_modified_twice_reads_as_two_versions_in_two_polls() {
    let server = MockServer::start().await;
    oauth(&server).await;
    get_orders("2026-03-02T08:00:00.000Z", "0")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total": 1, "orders": [order("12-00001-00001", "2026-03-02T08:30:00.000Z")]})),
        )
        .mount(&server)
        .await;
    let mut changed = order("12-00001-00001", "2026-03-02T09:10:00.000Z");
    changed["cancelStatus"] = json!({"cancelState": "CANCELED"});
    get_orders("2026-03-02T08:30:00.000Z", "0")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 1, "orders": [changed]})))
        .mount(&server)
        .await;
    let client = ebay(&server);
    let before = client.orders_since(at("2026-03-02T08:00:00Z"), None).await.expect("poll 1").orders;
    let after = client.orders_since(at("2026-03-02T08:30:00Z"), None).await.expect("poll 2").orders;
    assert_eq!(before[0].channel_order_id, after[0].channel_order_id);
    assert!(after[0].updated_at > before[0].updated_at);
    assert!(!before[0].cancelled && after[0].cancelled);
}

#[tokio::test]
async fn throttled_reads_are_retryable_after_the_wait_ebay_asks() {
    let server = MockServer::start().await;
    oauth(&server).await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "12")
                .set_body_json(json!({"errors": [{"errorId": 2001, "message": "Too many requests"}]})),
        )
        .mount(&server)
        .await;
    let error = ebay(&server).orders_since(at("2026-03-02T08:00:00Z"), None).await.expect_err("throttled");
    let ChannelError::Retryable { retry_after, .. } = error else { panic!("retryable: {error:?}") };
    assert_eq!(retry_after, Some(Duration::from_secs(12)));
}

#[tokio::test]
async fn one_order_reads_with_its_fulfillments_and_an_unknown_one_is_none() {
    let server = MockServer::start().await;
    oauth(&server).await;
    let mut shipped = order("12-00004-00004", "2026-03-02T10:00:00.000Z");
    shipped["orderFulfillmentStatus"] = json!("FULFILLED");
    Mock::given(method("GET"))
        .and(path(format!("{ORDERS}/12-00004-00004")))
        .and(header("authorization", "Bearer v^1.1#user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(shipped))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ORDERS}/12-00004-00004/shipping_fulfillment")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"fulfillments": [
            {"fulfillmentId": "9400100", "shipmentTrackingNumber": "9400100", "shippingCarrierCode": "USPS",
             "lineItems": [{"lineItemId": "10001", "quantity": 2}, {"lineItemId": "10002", "quantity": 1}]}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ORDERS}/12-00000-00000")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": [{"errorId": 32100}]})))
        .mount(&server)
        .await;
    let client = ebay(&server);
    let read = client.order(&id("12-00004-00004")).await.expect("read").expect("known");
    assert_eq!(read.fulfillments.len(), 1);
    assert_eq!(read.fulfillments[0].lines, [("10001".to_owned(), 2), ("10002".to_owned(), 1)]);
    assert_eq!(client.order(&id("12-00000-00000")).await.expect("read"), None);
}
