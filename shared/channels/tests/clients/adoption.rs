//! Exactly once in the corners of each channel: what a retry adopts, what it sends, and which
//! GraphQL errors are worth a retry. Each fake checks the exact requests the real API expects.

use serde_json::{Value, json};
use shipsync_channels::{
    BackMarketClient, Channel, ChannelError, EbayClient, EbayCredentials, ExportLine, ExportOrder, SHOPIFY_API_VERSION,
    ShopifyClient, TokenCache,
};
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn line(id: &str, quantity: u32, sku: &str, codes: &[&str]) -> ExportLine {
    ExportLine {
        channel_line_item_id: id.into(),
        quantity,
        sku: sku.into(),
        serial_codes: codes.iter().map(|c| (*c).to_owned()).collect(),
        package: None,
        needs_imei: false,
    }
}

fn order(id: &str, lines: Vec<ExportLine>, numbers: &[&str]) -> ExportOrder {
    ExportOrder {
        shipment_id: 1012,
        shipped_at: shipped_at(),
        channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse(id).expect("an order id"),
        lines,
        tracking_numbers: numbers
            .iter()
            .map(|n| shipsync_domain::tracking::TrackingNumber::parse(n).expect("a tracking number"))
            .collect(),
        carrier: "UPS".into(),
        carrier_code: Some("UPS".into()),
        tracking_urls: vec![],
        notify_customer: true,
        shipping_method: None,
    }
}

/// When the test shipments shipped: eBay gets it as `2026-03-02T12:00:00.000Z`.
fn shipped_at() -> chrono::DateTime<chrono::Utc> {
    "2026-03-02T12:00:00Z".parse().unwrap()
}

async fn bodies(server: &MockServer, verb: &str) -> Vec<Value> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.method.as_str() == verb).filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
}

fn graphql_path() -> String {
    format!("/admin/api/{SHOPIFY_API_VERSION}/graphql.json")
}

fn shopify(server: &MockServer) -> ShopifyClient {
    ShopifyClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        "shop.myshopify.com",
        Some(&server.uri()),
        "shpat".into(),
    )
}

/// Shopify's answer to the order query: one open fulfillment order for 1 unit of line item 1,
/// and the fulfillments given.
async fn shopify_order(server: &MockServer, fulfillments: Value) {
    Mock::given(method("POST"))
        .and(path(graphql_path()))
        .and(header("X-Shopify-Access-Token", "shpat"))
        .and(body_string_contains("ShipsyncOrder"))
        .and(body_partial_json(json!({"variables": {"id": "gid://shopify/Order/1"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"order": {
            "id": "gid://shopify/Order/1",
            "fulfillments": fulfillments,
            "fulfillmentOrders": {"nodes": [{
                "id": "gid://shopify/FulfillmentOrder/1", "status": "OPEN",
                "assignedLocation": {"location": {"id": "gid://shopify/Location/1"}},
                "lineItems": {"nodes": [{"id": "gid://shopify/FulfillmentOrderLineItem/1", "remainingQuantity": 1,
                    "lineItem": {"id": "gid://shopify/LineItem/1"}}]}
            }]}
        }}})))
        .mount(server)
        .await;
}

async fn shopify_accepts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(graphql_path()))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"fulfillmentCreate": {
            "fulfillment": {"id": "gid://shopify/Fulfillment/900", "status": "SUCCESS"}, "userErrors": []}}})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn shopify_adoption_ignores_cancelled_fulfillments_carrying_our_tracking() {
    let server = MockServer::start().await;
    // An earlier attempt's fulfillment was cancelled in Shopify (its items are open again).
    shopify_order(
        &server,
        json!([{"id": "gid://shopify/Fulfillment/800", "status": "CANCELLED", "trackingInfo": [{"number": "1Z001"}],
                "fulfillmentLineItems": {"nodes": [{"quantity": 1, "lineItem": {"id": "gid://shopify/LineItem/1"}}]}}]),
    )
    .await;
    shopify_accepts(&server).await;
    let fulfillment =
        shopify(&server).export(&order("1", vec![line("1", 1, "SKU-1", &[])], &["1Z001"]), true).await.unwrap();
    assert_eq!(fulfillment.channel_ids, ["gid://shopify/Fulfillment/900"], "created again, nothing adopted");
    assert!(!fulfillment.adopted);
    let created: Vec<Value> = bodies(&server, "POST")
        .await
        .into_iter()
        .filter(|b| b["query"].as_str().is_some_and(|q| q.contains("ShipsyncFulfillmentCreate")))
        .map(|b| b["variables"]["fulfillment"].clone())
        .collect();
    assert_eq!(
        created,
        [json!({
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1",
                "fulfillmentOrderLineItems": [{"id": "gid://shopify/FulfillmentOrderLineItem/1", "quantity": 1}]}],
            "trackingInfo": {"company": "UPS", "numbers": ["1Z001"]},
            "notifyCustomer": true,
        })]
    );
    // The order query asks for each fulfillment's status, which the adoption needs.
    let query = &bodies(&server, "POST").await[0]["query"];
    assert!(query.as_str().is_some_and(|q| q.contains("status")), "{query}");
}

#[tokio::test]
async fn shopify_adoption_still_adopts_a_live_fulfillment() {
    let server = MockServer::start().await;
    shopify_order(
        &server,
        json!([{"id": "gid://shopify/Fulfillment/800", "status": "SUCCESS", "trackingInfo": [{"number": "1Z001"}],
                "fulfillmentLineItems": {"nodes": [{"quantity": 1, "lineItem": {"id": "gid://shopify/LineItem/1"}}]}}]),
    )
    .await;
    let fulfillment =
        shopify(&server).export(&order("1", vec![line("1", 1, "SKU-1", &[])], &["1Z001"]), true).await.unwrap();
    assert_eq!(fulfillment.channel_ids, ["gid://shopify/Fulfillment/800"]);
    assert!(fulfillment.adopted);
}

async fn shopify_errors(errors: Value) -> ChannelError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(graphql_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": errors})))
        .mount(&server)
        .await;
    shopify(&server).export(&order("1", vec![line("1", 1, "SKU-1", &[])], &["1Z001"]), false).await.unwrap_err()
}

#[tokio::test]
async fn shopify_top_level_errors_are_classified_by_their_code() {
    let internal = shopify_errors(json!([{"message": "Internal error. Looks like something went wrong on our end.",
        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "abc"}}]))
    .await;
    assert!(matches!(internal, ChannelError::Retryable { .. }), "{internal:?}");
    let throttled = shopify_errors(json!([{"message": "Throttled", "extensions": {"code": "THROTTLED"}}])).await;
    assert!(matches!(throttled, ChannelError::Retryable { .. }), "{throttled:?}");
    let denied = shopify_errors(json!([{"message": "Access denied for order field.",
        "extensions": {"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes"}}]))
    .await;
    assert_eq!(denied, ChannelError::permanent("Shopify refused the request: Access denied for order field."));
}

fn ebay(server: &MockServer) -> EbayClient {
    let credentials = EbayCredentials { client_id: "id".into(), client_secret: "s".into(), refresh_token: "r".into() };
    EbayClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        Some(&server.uri()),
        None,
        credentials,
        TokenCache::default(),
    )
}

async fn ebay_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/identity/v1/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "v^1", "expires_in": 7200})))
        .mount(server)
        .await;
}

const EBAY_FULFILLMENTS: &str = "/sell/fulfillment/v1/order/12-34/shipping_fulfillment";

#[tokio::test]
async fn ebay_adoption_compares_tracking_numbers_not_fulfillment_ids() {
    let server = MockServer::start().await;
    ebay_token(&server).await;
    // eBay has our package under an id that is not its tracking number, and another package
    // whose id happens to equal our tracking number but carries a different one.
    Mock::given(method("GET"))
        .and(path(EBAY_FULFILLMENTS))
        .and(header("authorization", "Bearer v^1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"fulfillments": [
            {"fulfillmentId": "999", "shipmentTrackingNumber": "1z-eb 01", "shippingCarrierCode": "UPS"},
            {"fulfillmentId": "1ZEB02", "shipmentTrackingNumber": "OTHER1", "shippingCarrierCode": "UPS"}
        ], "total": 2})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(EBAY_FULFILLMENTS))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", format!("https://api.ebay.com{EBAY_FULFILLMENTS}/1ZEB02")),
        )
        .mount(&server)
        .await;
    let order = order("12-34", vec![line("L1", 2, "SKU-1", &[])], &["1Z-EB01", "1ZEB02"]);
    let fulfillment = ebay(&server).export(&order, true).await.unwrap();
    assert_eq!(fulfillment.channel_ids, ["999", "1ZEB02"]);
    assert!(fulfillment.adopted);
    let created: Vec<Value> =
        bodies(&server, "POST").await.into_iter().filter(|b| b.get("trackingNumber").is_some()).collect();
    assert_eq!(
        created,
        [json!({"lineItems": [{"lineItemId": "L1", "quantity": 1}], "shippedDate": "2026-03-02T12:00:00.000Z",
            "shippingCarrierCode": "UPS", "trackingNumber": "1ZEB02"})],
        "only the package eBay does not have"
    );
}

#[tokio::test]
async fn back_market_ships_both_lines_of_one_sku() {
    let server = MockServer::start().await;
    // Two phones of one SKU, two order lines: the first shipped by an earlier shipment.
    Mock::given(method("GET"))
        .and(path("/ws/orders/4567890"))
        .and(header("authorization", "Basic bm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order_id": 4567890, "state": 3, "orderlines": [
            {"id": 986, "listing": "IPHONE-13", "state": 3, "quantity": 1},
            {"id": 987, "listing": "IPHONE-13", "state": 1, "quantity": 1}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ws/orders/4567890"))
        .and(header("authorization", "Basic bm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let client = BackMarketClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        Some(&server.uri()),
        "bm".into(),
    );
    let second = order("4567890", vec![line("987", 1, "IPHONE-13", &["356938035643809"])], &["1ZBM2"]);
    client.export(&second, false).await.unwrap();
    let shipped = json!({"order_id": 4567890, "new_state": 3, "sku": "IPHONE-13", "tracking_number": "1ZBM2",
        "tracking_url": "", "shipper": "UPS", "imei": "356938035643809"});
    assert_eq!(
        bodies(&server, "POST").await,
        [json!({"order_id": 4567890, "new_state": 2, "sku": "IPHONE-13"}), shipped.clone()],
        "the second line is validated and shipped"
    );

    // Both lines in one shipment, neither shipped yet: both go out.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ws/orders/4567890"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order_id": 4567890, "orderlines": [
            {"id": 986, "listing": "IPHONE-13", "state": 2, "quantity": 1},
            {"id": 987, "listing": "IPHONE-13", "state": 3, "quantity": 1}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ws/orders/4567890"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let client = BackMarketClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        Some(&server.uri()),
        "bm".into(),
    );
    let both = order(
        "4567890",
        vec![line("986", 1, "IPHONE-13", &["356938035643800"]), line("987", 1, "IPHONE-13", &["356938035643809"])],
        &["1ZBM2"],
    );
    let fulfillment = client.export(&both, false).await.unwrap();
    assert!(fulfillment.adopted, "line 987 was shipped before (a lost answer)");
    let mut first = shipped;
    first["imei"] = json!("356938035643800");
    assert_eq!(bodies(&server, "POST").await, [first], "line 986 (validated already) is shipped; 987 is not again");
}

/// One process's token cache serves every store: a token granted by one eBay host (production)
/// must never be sent to another (the sandbox) for the same refresh token.
#[tokio::test]
async fn a_cached_token_goes_only_to_the_host_that_granted_it() {
    let tokens = TokenCache::default();
    let credentials = EbayCredentials { client_id: "id".into(), client_secret: "s".into(), refresh_token: "r".into() };
    // Both hosts live at once (a dropped fake's address is handed out again).
    let (production, sandbox) = (MockServer::start().await, MockServer::start().await);
    for (server, granted) in [(&production, "production-token"), (&sandbox, "sandbox-token")] {
        Mock::given(method("POST"))
            .and(path("/identity/v1/oauth2/token"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"access_token": granted, "expires_in": 7200})),
            )
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path(EBAY_FULFILLMENTS))
            .and(header("authorization", format!("Bearer {granted}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"fulfillments": [], "total": 0})))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path(EBAY_FULFILLMENTS))
            .and(header("authorization", format!("Bearer {granted}").as_str()))
            .respond_with(
                ResponseTemplate::new(201)
                    .insert_header("Location", format!("https://api.ebay.com{EBAY_FULFILLMENTS}/1ZEB09")),
            )
            .mount(server)
            .await;
        let client = EbayClient::new(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&server.uri()),
            None,
            credentials.clone(),
            tokens.clone(),
        );
        let order = order("12-34", vec![line("L1", 1, "SKU-1", &[])], &["1ZEB09"]);
        client.export(&order, true).await.unwrap();
    }
}

#[test]
fn credentials_and_token_caches_show_no_secret() {
    let credentials =
        EbayCredentials { client_id: "id".into(), client_secret: "secret-1".into(), refresh_token: "refresh-1".into() };
    let shown = format!("{credentials:?} {:?}", TokenCache::default());
    assert!(!shown.contains("secret-1") && !shown.contains("refresh-1"), "{shown}");
}
