//! The channel port: a store connects to its channel only with settings that can work, each
//! channel reads its fulfillments into shipsync's shape, and what a channel cannot do yet is
//! refused for good, never faked.

use serde_json::json;
use shipsync_channels::{ChannelEndpoints, ChannelError, Channels, SHOPIFY_API_VERSION, SettingsError};
use shipsync_domain::ids::{RetailerId, StoreId};
use shipsync_domain::orders::IncomingFulfillment;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore};
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn store(channel: ChannelKind, connection: ChannelConnection) -> ChannelStore {
    ChannelStore {
        id: StoreId::new_unchecked(7),
        retailer_id: RetailerId::new_unchecked(1),
        name: "Store".into(),
        channel,
        export: Default::default(),
        connection,
        ingestion: Default::default(),
        tracking: Default::default(),
    }
}

fn credentials(pairs: &[(&str, &str)]) -> ChannelCredentials {
    ChannelCredentials(pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect())
}

fn local(server: &MockServer) -> ChannelConnection {
    ChannelConnection { base_url: Some(server.uri()), ..ChannelConnection::default() }
}

fn channels() -> Channels {
    Channels::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        ChannelEndpoints::honouring_store_overrides(),
    )
}

#[test]
fn a_store_whose_settings_cannot_work_is_not_connected() {
    let fixed = Channels::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        ChannelEndpoints::fixed(),
    );
    let shop = ChannelConnection { shop_domain: Some("my-shop.myshopify.com".into()), ..ChannelConnection::default() };
    let error = fixed.connect(&store(ChannelKind::Shopify, shop.clone()), &credentials(&[])).err().expect("refused");
    assert_eq!(error.to_string(), "credentials.access_token is required for a Shopify store");
    assert!(fixed.connect(&store(ChannelKind::Shopify, shop), &credentials(&[("access_token", "t")])).is_ok());
    let elsewhere = ChannelConnection { shop_domain: Some("attacker.example".into()), ..ChannelConnection::default() };
    let refused = fixed.connect(&store(ChannelKind::Shopify, elsewhere), &credentials(&[("access_token", "t")]));
    assert!(matches!(refused.err(), Some(SettingsError::Endpoint(_))));
    let amazon = credentials(&[("lwa_client_id", "id"), ("lwa_client_secret", "s"), ("refresh_token", "r")]);
    let error = fixed
        .connect(&store(ChannelKind::Amazon, ChannelConnection::default()), &amazon)
        .err()
        .expect("no marketplace");
    assert!(error.to_string().starts_with("marketplace_id is required"), "{error}");
    let error = fixed
        .connect(&store(ChannelKind::Ebay, ChannelConnection::default()), &credentials(&[("ebay_client_id", "id")]))
        .err()
        .expect("incomplete");
    assert_eq!(
        error.to_string(),
        "credentials.ebay_client_secret is required for an eBay store; credentials.refresh_token is required for an eBay store"
    );
    let back_market = fixed
        .connect(&store(ChannelKind::BackMarket, ChannelConnection::default()), &credentials(&[("api_token", "bm")]));
    assert!(back_market.is_ok());
}

#[tokio::test]
async fn shopify_reads_an_orders_fulfillments() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/admin/api/{SHOPIFY_API_VERSION}/graphql.json")))
        .and(header("X-Shopify-Access-Token", "shpat"))
        .and(body_string_contains("ShipsyncFulfillments"))
        .and(body_partial_json(json!({"variables": {"id": "gid://shopify/Order/1"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"order": {
            "id": "gid://shopify/Order/1",
            "fulfillments": [
                {"id": "gid://shopify/Fulfillment/800", "status": "SUCCESS",
                 "trackingInfo": [{"number": "1Z001", "company": "UPS"}, {"number": "1Z002", "company": "UPS"}],
                 "fulfillmentLineItems": {"nodes": [{"quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/1"}}]}},
                {"id": "gid://shopify/Fulfillment/801", "status": "CANCELLED", "trackingInfo": [],
                 "fulfillmentLineItems": {"nodes": [{"quantity": 1, "lineItem": {"id": "gid://shopify/LineItem/2"}}]}}
            ]
        }}})))
        .mount(&server)
        .await;
    let channel = channels()
        .connect(&store(ChannelKind::Shopify, local(&server)), &credentials(&[("access_token", "shpat")]))
        .expect("connected");
    let fulfillments = channel
        .fulfillments(&shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id"))
        .await
        .expect("listed");
    assert_eq!(
        fulfillments,
        [
            IncomingFulfillment {
                channel_fulfillment_id: "gid://shopify/Fulfillment/800".into(),
                channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("gid://shopify/Order/1")
                    .expect("an order id"),
                lines: vec![("gid://shopify/LineItem/1".into(), 2)],
                tracking_numbers: ["1Z001", "1Z002"].map(tracking).to_vec(),
                tracking_company: Some("UPS".into()),
                cancelled: false,
            },
            IncomingFulfillment {
                channel_fulfillment_id: "gid://shopify/Fulfillment/801".into(),
                channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("gid://shopify/Order/1")
                    .expect("an order id"),
                lines: vec![("gid://shopify/LineItem/2".into(), 1)],
                tracking_numbers: vec![],
                tracking_company: None,
                cancelled: true,
            },
        ]
    );
}

#[tokio::test]
async fn ebay_reads_an_orders_shipping_fulfillments() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/identity/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "v^1", "expires_in": 7200})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sell/fulfillment/v1/order/12-34/shipping_fulfillment"))
        .and(header("authorization", "Bearer v^1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"fulfillments": [
            {"fulfillmentId": "1ZEB01", "shipmentTrackingNumber": "1ZEB01", "shippingCarrierCode": "UPS",
             "shippedDate": "2026-03-02T12:00:00.000Z", "lineItems": [{"lineItemId": "L1", "quantity": 1}]}
        ], "total": 1})))
        .mount(&server)
        .await;
    let ebay = credentials(&[("ebay_client_id", "id"), ("ebay_client_secret", "s"), ("refresh_token", "r")]);
    let channel = channels().connect(&store(ChannelKind::Ebay, local(&server)), &ebay).expect("connected");
    assert_eq!(
        channel
            .fulfillments(&shipsync_domain::vocabulary::ChannelOrderId::parse("12-34").expect("an order id"))
            .await
            .expect("listed"),
        [IncomingFulfillment {
            channel_fulfillment_id: "1ZEB01".into(),
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("12-34").expect("an order id"),
            lines: vec![("L1".into(), 1)],
            tracking_numbers: vec![tracking("1ZEB01")],
            tracking_company: Some("UPS".into()),
            cancelled: false,
        }]
    );
}

#[tokio::test]
async fn what_a_channel_cannot_do_yet_is_refused_without_a_call() {
    let server = MockServer::start().await;
    let shop = ChannelConnection { shop_domain: Some("shop.myshopify.com".into()), ..local(&server) };
    let shopify = channels()
        .connect(&store(ChannelKind::Shopify, shop), &credentials(&[("access_token", "t")]))
        .expect("connected");
    let error =
        shopify.order(&shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id")).await.err();
    assert!(matches!(error, Some(ChannelError::Unsupported { .. })), "{error:?}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty(), "nothing was called");
}

fn tracking(number: &str) -> shipsync_domain::tracking::TrackingNumber {
    shipsync_domain::tracking::TrackingNumber::parse(number).expect("a tracking number")
}
