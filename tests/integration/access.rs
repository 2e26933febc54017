//! Authentication, roles and tenant isolation: another tenant's or vendor's record is a 404,
//! never its data; internal failures never reach a caller.

use http::{Method, StatusCode};
use serde_json::json;
use shipsync_tools::provision::Credentials;

use crate::harness::{TestApp, errors, shipment_body};

#[tokio::test]
async fn missing_or_wrong_credentials_answer_401() {
    let app = TestApp::new().await;
    let wrong_password = Credentials { key: app.retailer_user.key.clone(), password: "not-it".into() };
    let unknown_key = Credentials { key: "ak_nobody".into(), password: app.retailer_user.password.clone() };
    for user in [None, Some(&wrong_password), Some(&unknown_key)] {
        let (status, json) = app.call_as(user, Method::GET, "/shipments.json", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(errors(&json).len(), 1);
    }
    let (status, _) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn vendors_see_and_ship_only_their_own_purchase_orders() {
    let app = TestApp::new().await;
    let own = app.purchase_order(&app.vendor, "PO-OWN", "Own Customer", &[2]).await;
    let theirs = app.purchase_order(&app.other_vendor, "PO-THEIRS", "Their Customer", &[2]).await;
    let vendor = Some(&app.vendor_user);

    // Create: on its own order yes, on another vendor's order it is as if the order did not exist.
    let (status, mine) = app
        .call_as(
            vendor,
            Method::POST,
            &format!("/purchase_orders/{}/shipments.json", own.id),
            Some(shipment_body(&[(own.items[0].id.get(), 1)], &["V-1"])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let (status, json) = app
        .call_as(
            vendor,
            Method::POST,
            &format!("/purchase_orders/{}/shipments.json", theirs.id),
            Some(shipment_body(&[(theirs.items[0].id.get(), 1)], &["V-2"])),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(errors(&json), [format!("purchase order {} not found", theirs.id)]);
    let other = app.create_shipment(&theirs, shipment_body(&[(theirs.items[0].id.get(), 1)], &["O-1"])).await;

    // Read: another vendor's shipment and order are not found.
    for uri in [format!("/shipments/{}.json", other["id"]), format!("/purchase_orders/{}.json", theirs.id)] {
        let (status, json) = app.call_as(vendor, Method::GET, &uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!json.to_string().contains("Their Customer"));
    }
    let (status, _) = app
        .call_as(
            vendor,
            Method::PUT,
            &format!("/shipments/{}.json", other["id"]),
            Some(json!({"shipment": {"vendor_invoice_reference": "X"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // List: only its own, even when it asks for the other vendor.
    let (_, list) = app.call_as(vendor, Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 1);
    assert_eq!(list["shipments"][0]["id"], mine["shipment"]["id"]);
    let asking = format!("/shipments.json?search[vendor_id]={}", app.other_vendor.id);
    let (_, list) = app.call_as(vendor, Method::GET, &asking, None).await;
    assert_eq!(list["metadata"]["total_count"], 0);
    let by_number = "/shipments.json?search[purchase_order_number]=PO-THEIRS";
    let (_, list) = app.call_as(vendor, Method::GET, by_number, None).await;
    assert_eq!(list["metadata"]["total_count"], 0);
    let (_, orders) = app.call_as(vendor, Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(orders["metadata"]["total_count"], 1);
    assert_eq!(orders["purchase_orders"][0]["public_reference"], "PO-OWN");

    // The retailer sees both.
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 2);
}

#[tokio::test]
async fn another_retailers_records_are_not_found() {
    let app = TestApp::new().await;
    let other = app.another_tenant().await;
    let po = other.purchase_order(&other.vendor, "PO-1", "Secret Customer", &[1]).await;
    let shipment = other.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["S-1"])).await;
    for uri in [format!("/shipments/{}.json", shipment["id"]), format!("/purchase_orders/{}.json", po.id)] {
        let (status, json) = app.call(Method::GET, &uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!json.to_string().contains("Secret"));
    }
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/purchase_orders/{}/shipments.json", po.id),
            Some(shipment_body(&[(po.items[0].id.get(), 1)], &["S-2"])),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let asking = format!("/shipments.json?search[retailer_id]={}", other.retailer.id);
    let (_, list) = app.call(Method::GET, &asking, None).await;
    assert_eq!(list["metadata"]["total_count"], 0);
    let (_, list) = app.call(Method::GET, "/shipments.json?search[purchase_order_number]=PO-1", None).await;
    assert_eq!(list["metadata"]["total_count"], 0);
}

#[tokio::test]
async fn unknown_paths_ids_and_methods_are_refused_plainly() {
    let app = TestApp::new().await;
    for (method, uri, expected) in [
        (Method::GET, "/shipments/999999.json", StatusCode::NOT_FOUND),
        (Method::GET, "/shipments/abc.json", StatusCode::NOT_FOUND),
        (Method::GET, "/shipments/99999999999999999999.json", StatusCode::NOT_FOUND),
        (Method::GET, "/purchase_orders/0.json", StatusCode::NOT_FOUND),
        (Method::GET, "/nothing/here", StatusCode::NOT_FOUND),
        (Method::DELETE, "/shipments/1.json", StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, "/shipments.json", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let (status, json) = app.call(method.clone(), uri, None).await;
        assert_eq!(status, expected, "{method} {uri}");
        assert_eq!(errors(&json).len(), 1);
    }
}

#[tokio::test]
async fn a_dynamodb_outage_answers_503_without_internals() {
    let app = TestApp::new().await;
    // A port nothing listens on: every SDK call fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let store = shipsync_tools::store_at(&endpoint, app.table.table_name()).await;
    let api = shipments_api::ShipmentsApi::new(store, app.aws.export_planner());
    let token = base64_credentials(&app.retailer_user);
    let request = http::Request::builder()
        .uri("/shipments.json")
        .header("authorization", token)
        .body(bytes::Bytes::new())
        .expect("request");
    let response = api.handle(request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    let body = response.body().to_lowercase();
    assert_eq!(body, r#"{"errors":["service temporarily unavailable, please retry"]}"#);
}

fn base64_credentials(user: &Credentials) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.key, user.password)))
}
