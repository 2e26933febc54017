//! eBay Sell Fulfillment `createShippingFulfillment` against a wiremock eBay: the exact request,
//! OAuth refresh-token flow, and a retry that lists the order's fulfillments first and adopts the
//! package eBay already has (its fulfillment id is the tracking number).

use http::Method;
use serde_json::json;
use shipsync_domain::export::{CarrierMapping, ExportSettings, ShipConfirmation};
use shipsync_domain::ids::CarrierId;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind};
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

const ORDER: &str = "12-34567-89012";

async fn ebay_app(ebay: &MockServer) -> (TestApp, shipsync_domain::purchase_order::PurchaseOrder) {
    let app = TestApp::new().await;
    let settings = ExportSettings {
        ship_confirmation: Some(ShipConfirmation::TrackingAssigned),
        carrier_mappings: vec![CarrierMapping {
            shipper_id: CarrierId::new_unchecked(1),
            channel_carrier: "UPS".into(),
            tracking_url_template: None,
        }],
        ..ExportSettings::default()
    };
    let connection = ChannelConnection { base_url: Some(ebay.uri()), ..ChannelConnection::default() };
    let credentials =
        [("ebay_client_id", "client"), ("ebay_client_secret", "secret"), ("refresh_token", "v^1.1#refresh")];
    let po = app
        .channel_order(ChannelKind::Ebay, settings, connection, &credentials, ORDER, ("EB-1", 1, "10000000001"))
        .await;
    Mock::given(method("POST"))
        .and(path("/identity/v1/oauth2/token"))
        .and(header("authorization", "Basic Y2xpZW50OnNlY3JldA=="))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "v^1.1#token", "expires_in": 7200, "token_type": "User Access Token"}),
        ))
        .expect(1)
        .mount(ebay)
        .await;
    (app, po)
}

fn expected() -> serde_json::Value {
    json!({
        "lineItems": [{"lineItemId": "10000000001", "quantity": 1}],
        "shippedDate": "2026-03-02T12:00:00.000Z",
        "shippingCarrierCode": "UPS",
        "trackingNumber": "1ZEB01"
    })
}

#[tokio::test]
async fn a_package_becomes_one_fulfillment_with_an_alphanumeric_tracking_number() {
    let ebay = MockServer::start().await;
    let (app, po) = ebay_app(&ebay).await;
    let fulfillments = format!("/sell/fulfillment/v1/order/{ORDER}/shipping_fulfillment");
    Mock::given(method("POST"))
        .and(path(fulfillments.clone()))
        .and(header("authorization", "Bearer v^1.1#token"))
        .and(body_json(expected()))
        .respond_with(
            ResponseTemplate::new(201).insert_header("Location", format!("https://api.ebay.com{fulfillments}/1ZEB01")),
        )
        .expect(1)
        .mount(&ebay)
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z-EB 01"])).await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported", "{state}");
    assert_eq!(state["shipment"]["exported_channel_ids"], json!(["1ZEB01"]));
}

#[tokio::test]
async fn a_retry_adopts_the_fulfillment_ebay_already_has() {
    let ebay = MockServer::start().await;
    let (app, po) = ebay_app(&ebay).await;
    let fulfillments = format!("/sell/fulfillment/v1/order/{ORDER}/shipping_fulfillment");
    // eBay created it but the answer was lost (a 503 here): the retry must not create it again.
    Mock::given(method("POST"))
        .and(path(fulfillments.clone()))
        .and(body_json(expected()))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&ebay)
        .await;
    Mock::given(method("GET"))
        .and(path(fulfillments.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"fulfillments": [{"fulfillmentId": "1ZEB01", "shipmentTrackingNumber": "1ZEB01", "shippingCarrierCode": "UPS"}], "total": 1})))
        .mount(&ebay)
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZEB01"])).await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported", "{state}");
    assert_eq!(state["shipment"]["exported_channel_ids"], json!(["1ZEB01"]));
}
