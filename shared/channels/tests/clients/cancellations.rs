//! Cancellations at each channel that takes them from shipsync, against local fakes that check
//! the exact requests: what is sent the first time, and what a retry finds and adopts instead
//! of cancelling twice.

use base64::Engine;
use serde_json::{Value, json};
use shipsync_channels::{
    CancelOrder, Channel, CustomClient, EbayClient, EbayCredentials, TokenCache, WishClient, WishCredentials,
    WooCommerceClient,
};
use shipsync_domain::cancellations::CancelReason;
use shipsync_domain::vocabulary::ChannelOrderId;
use wiremock::matchers::{body_json, body_string_contains, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn http() -> reqwest::Client {
    shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client")
}

fn whole(order: &str, reason: CancelReason) -> CancelOrder {
    CancelOrder {
        channel_order_id: ChannelOrderId::parse(order).expect("an order id"),
        lines: vec![("L1".into(), 2)],
        cancelled_after: vec![("L1".into(), 2)],
        whole_order: true,
        reason,
        note: "supplier discontinued it".into(),
        notify_customer: true,
        reference: "shipsync-cancellation-77".into(),
    }
}

async fn sent(server: &MockServer, verb: &str, at: &str) -> Vec<Value> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|request| request.method.as_str() == verb && request.url.path() == at)
        .map(|request| serde_json::from_slice(&request.body).unwrap_or(Value::Null))
        .collect()
}

fn ebay(server: &MockServer) -> EbayClient {
    let credentials = EbayCredentials {
        client_id: "ebay-id".into(),
        client_secret: "ebay-secret".into(),
        refresh_token: "v^1.1".into(),
    };
    EbayClient::new(http(), Some(&server.uri()), None, credentials, TokenCache::default())
}

async fn ebay_order(server: &MockServer, cancel_status: Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode("ebay-id:ebay-secret");
    Mock::given(method("POST"))
        .and(path("/identity/v1/oauth2/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "v^1.1#user", "expires_in": 7200})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sell/fulfillment/v1/order/12-01234-56789"))
        .and(header("authorization", "Bearer v^1.1#user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orderId": "12-01234-56789",
            "legacyOrderId": "110000000001-0", "cancelStatus": cancel_status,
            "lineItems": [{"lineItemId": "L1", "purchaseMarketplaceId": "EBAY_GB", "quantity": 2}]})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn ebay_cancels_a_whole_order_through_post_order_and_adopts_what_it_shows() {
    let server = MockServer::start().await;
    ebay_order(&server, json!({"cancelState": "NONE_REQUESTED", "cancelRequests": []})).await;
    Mock::given(method("POST"))
        .and(path("/post-order/v2/cancellation"))
        .and(header("authorization", "IAF v^1.1#user"))
        .and(header("x-ebay-c-marketplace-id", "EBAY_GB"))
        .and(body_json(json!({"legacyOrderId": "110000000001-0", "cancelReason": "OUT_OF_STOCK_OR_CANNOT_FULFILL"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"cancelId": "5000012345"})))
        .expect(1)
        .mount(&server)
        .await;
    let ids = ebay(&server).cancel(&whole("12-01234-56789", CancelReason::OutOfStock), false).await.expect("cancelled");
    assert_eq!(ids, ["5000012345"]);

    // A retry finds the seller's request (or the order cancelled) and sends nothing.
    for status in [
        json!({"cancelState": "IN_PROGRESS", "cancelRequests": [{"cancelInitiator": "Seller",
            "cancelRequestId": "5000012345", "cancelRequestState": "REQUESTED"}]}),
        json!({"cancelState": "CANCELED", "cancelRequests": []}),
    ] {
        let again = MockServer::start().await;
        ebay_order(&again, status).await;
        let ids = ebay(&again).cancel(&whole("12-01234-56789", CancelReason::OutOfStock), true).await.expect("adopted");
        assert_eq!(ids.len(), 1);
        assert!(sent(&again, "POST", "/post-order/v2/cancellation").await.is_empty());
    }
    let mut part = whole("12-01234-56789", CancelReason::OutOfStock);
    part.whole_order = false;
    assert!(ebay(&server).cancel(&part, false).await.is_err(), "eBay cancels whole orders only");
}

fn wish(server: &MockServer) -> WishClient {
    let credentials = WishCredentials {
        client_id: "wish-id".into(),
        client_secret: "wish-secret".into(),
        refresh_token: "wish-refresh".into(),
        access_token: Some("wish-token".into()),
        expires_at: None,
    };
    WishClient::new(http(), Some(&server.uri()), credentials, "CN")
}

async fn wish_order(server: &MockServer, state: &str) {
    Mock::given(method("GET"))
        .and(path("/api/v3/orders/61a0f2"))
        .and(header("authorization", "Bearer wish-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "message": "",
            "data": {"id": "61a0f2", "state": state}})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn wish_refunds_the_order_once_and_adopts_a_refunded_one() {
    let server = MockServer::start().await;
    wish_order(&server, "APPROVED").await;
    Mock::given(method("PUT"))
        .and(path("/api/v3/orders/61a0f2/refund"))
        .and(header("authorization", "Bearer wish-token"))
        .and(body_json(json!({"refund_reason": "MERCHANT_OUT_OF_STOCK",
            "refund_reason_note": "Cancelled by shipsync (out_of_stock): supplier discontinued it [shipsync-cancellation-77]"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "message": "",
            "data": {"id": "61a0f2", "state": "APPROVED"}})))
        .expect(1)
        .mount(&server)
        .await;
    let ids = wish(&server).cancel(&whole("61a0f2", CancelReason::OutOfStock), false).await.expect("refunded");
    assert_eq!(ids, ["61a0f2"]);

    let refunded = MockServer::start().await;
    wish_order(&refunded, "REFUNDED").await;
    wish(&refunded).cancel(&whole("61a0f2", CancelReason::OutOfStock), true).await.expect("adopted");
    assert!(sent(&refunded, "PUT", "/api/v3/orders/61a0f2/refund").await.is_empty());
    let shipped = MockServer::start().await;
    wish_order(&shipped, "SHIPPED").await;
    let refused = wish(&shipped).cancel(&whole("61a0f2", CancelReason::OutOfStock), false).await;
    assert!(refused.is_err_and(|error| error.to_string().contains("shipped")));
}

#[tokio::test]
async fn woocommerce_moves_the_order_to_cancelled_once() {
    let server = MockServer::start().await;
    let client = WooCommerceClient::new(http(), &server.uri(), "ck_1".into(), "cs_1".into());
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders/1042"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1042, "status": "processing"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/wp-json/wc/v3/orders/1042"))
        .and(header_exists("authorization"))
        .and(body_json(json!({"status": "cancelled", "meta_data": [{"key": "_shipsync_cancellation",
            "value": "Cancelled by shipsync (customer_requested): supplier discontinued it [shipsync-cancellation-77]"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1042, "status": "cancelled"})))
        .expect(1)
        .mount(&server)
        .await;
    client.cancel(&whole("1042", CancelReason::CustomerRequested), false).await.expect("cancelled");
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders/1042"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1042, "status": "cancelled"})))
        .mount(&server)
        .await;
    client.cancel(&whole("1042", CancelReason::CustomerRequested), true).await.expect("adopted");
}

#[tokio::test]
async fn a_custom_channel_gets_one_signed_cancellation_keyed_by_its_reference() {
    let server = MockServer::start().await;
    let url = format!("{}/shipsync/shipments", server.uri());
    let client = CustomClient::new(http(), url, "whsec_custom".into());
    let mut part = whole("UG-1001", CancelReason::PricingError);
    part.whole_order = false;
    Mock::given(method("POST"))
        .and(path("/shipsync/shipments"))
        .and(header("idempotency-key", "shipsync-cancellation-77"))
        .and(header_exists("x-shipsync-signature"))
        .and(body_string_contains("\"cancellation\""))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "C-9"})))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(client.cancel(&part, false).await.expect("posted"), ["C-9"]);
    assert_eq!(
        sent(&server, "POST", "/shipsync/shipments").await,
        [json!({"cancellation": {"reference": "shipsync-cancellation-77", "order_id": "UG-1001", "whole_order": false,
            "reason": "pricing_error", "note": "supplier discontinued it", "notify_customer": true,
            "lines": [{"line_id": "L1", "quantity": 2}]}})]
    );
    // A retry asks the receiver by key first: it has it, so nothing is posted again.
    Mock::given(method("GET"))
        .and(path("/shipsync/shipments"))
        .and(query_param("idempotency_key", "shipsync-cancellation-77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "C-9"})))
        .mount(&server)
        .await;
    assert_eq!(client.cancel(&part, true).await.expect("adopted"), ["C-9"]);
    assert_eq!(sent(&server, "POST", "/shipsync/shipments").await.len(), 1);
}
