//! Amazon SP-API `confirmShipment` against a wiremock Amazon: the exact request, one call per
//! package with a stable `packageReferenceId` (a retry edits, never duplicates), the carrier code
//! from the mapping or `Other` with the name, 429s honoured, Login with Amazon tokens cached.

use http::Method;
use serde_json::json;
use shipsync_domain::export::{CarrierMapping, ExportSettings, ShipConfirmation};
use shipsync_domain::ids::CarrierId;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind};
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

const ORDER: &str = "113-1234567-1234567";

async fn amazon_app(
    amazon: &MockServer,
    mappings: Vec<CarrierMapping>,
) -> (TestApp, shipsync_domain::purchase_order::PurchaseOrder) {
    let app = TestApp::new().await;
    let settings = ExportSettings {
        ship_confirmation: Some(ShipConfirmation::TrackingAssigned),
        carrier_mappings: mappings,
        ..ExportSettings::default()
    };
    let connection = ChannelConnection {
        base_url: Some(amazon.uri()),
        auth_url: Some(format!("{}/auth/o2/token", amazon.uri())),
        marketplace_id: Some("ATVPDKIKX0DER".into()),
        ..ChannelConnection::default()
    };
    let credentials = [
        ("lwa_client_id", "amzn1.application-oa2-client.x"),
        ("lwa_client_secret", "lwa-secret"),
        ("refresh_token", "Atzr|refresh"),
    ];
    let po = app
        .channel_order(ChannelKind::Amazon, settings, connection, &credentials, ORDER, ("AMZ-1", 3, "68828574383266"))
        .await;
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=Atzr%7Crefresh"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "Atza|token", "token_type": "bearer", "expires_in": 3600})),
        )
        .expect(1)
        .mount(amazon)
        .await;
    (app, po)
}

fn confirmation(reference: &str, carrier: serde_json::Value, tracking: &str, quantity: u32) -> serde_json::Value {
    let mut detail = json!({
        "packageReferenceId": reference, "trackingNumber": tracking, "shipDate": "2026-03-02T12:00:00Z",
        "orderItems": [{"orderItemId": "68828574383266", "quantity": quantity}]
    });
    for (key, value) in carrier.as_object().cloned().unwrap_or_default() {
        detail[key] = value;
    }
    json!({"marketplaceId": "ATVPDKIKX0DER", "packageDetail": detail})
}

#[tokio::test]
async fn each_package_is_confirmed_once_with_a_stable_reference() {
    let amazon = MockServer::start().await;
    let mapping = CarrierMapping {
        shipper_id: CarrierId::new_unchecked(1),
        channel_carrier: "UPS".into(),
        tracking_url_template: None,
    };
    let (app, po) = amazon_app(&amazon, vec![mapping]).await;
    let url = format!("/orders/v0/orders/{ORDER}/shipmentConfirmation");
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 3)], &["1ZA", "1ZB"])).await;
    let id = shipment["id"].as_u64().expect("id");
    let first = confirmation(&format!("{id}000"), json!({"carrierCode": "UPS"}), "1ZA", 2);
    let second = confirmation(&format!("{id}001"), json!({"carrierCode": "UPS"}), "1ZB", 1);
    // The second package is throttled once, then accepted: its retry carries the same reference.
    Mock::given(method("POST"))
        .and(path(url.clone()))
        .and(body_json(&second))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&amazon)
        .await;
    for body in [&first, &second] {
        Mock::given(method("POST"))
            .and(path(url.clone()))
            .and(header("x-amz-access-token", "Atza|token"))
            .and(body_json(body))
            .respond_with(ResponseTemplate::new(204))
            .with_priority(2)
            .mount(&amazon)
            .await;
    }
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{id}.json"), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported", "{state}");
    assert_eq!(state["shipment"]["exported_channel_ids"], json!([format!("{id}000"), format!("{id}001")]));
    let confirmations: Vec<serde_json::Value> = amazon
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == url)
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect();
    // First package, second (429), first again (the retry re-sends it: an edit), second.
    assert_eq!(confirmations, [first.clone(), second.clone(), first, second]);
}

#[tokio::test]
async fn an_unmapped_carrier_goes_as_other_with_its_name_and_refusals_fail_the_export() {
    let amazon = MockServer::start().await;
    let (app, po) = amazon_app(&amazon, vec![]).await;
    let url = format!("/orders/v0/orders/{ORDER}/shipmentConfirmation");
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["9400111"]);
    body["shipment"]["shipper_name"] = json!("US Postal");
    let shipment = app.create_shipment(&po, body).await;
    let id = shipment["id"].as_u64().expect("id");
    let expected =
        confirmation(&format!("{id}000"), json!({"carrierCode": "Other", "carrierName": "US Postal"}), "9400111", 1);
    Mock::given(method("POST"))
        .and(path(url))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"errors": [{"code": "InvalidInput", "message": "Unable to find package to update", "details": ""}]}),
        ))
        .mount(&amazon)
        .await;
    app.run_exports().await;
    let (_, state) = app.call(Method::GET, &format!("/shipments/{id}.json"), None).await;
    assert_eq!(state["shipment"]["export_state"], "export_failed");
    assert!(
        state["shipment"]["export_error"].as_str().is_some_and(|e| e.contains("Unable to find package to update")),
        "{state}"
    );
}
