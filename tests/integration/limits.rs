//! Bounded input: every string a request can store or search with has a limit, answered 422
//! naming the field with nothing written (moto does not enforce DynamoDB's key and item sizes,
//! so these are shipsync's own checks); a key that shipsync cannot have issued is refused before
//! any lookup; a larger page than 250 is capped, as Duoplane does.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_tools::provision::Credentials;

use crate::harness::{TestApp, errors, shipment_body};

#[tokio::test]
async fn every_stored_string_has_a_limit_answered_422_naming_the_field() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-1", "Customer", &[2]).await;
    let item = po.items[0].id.get();
    let long = |n: usize| "x".repeat(n);
    // 200 characters but 800 bytes: within a character limit, not within a key's bytes.
    let wide = "😀".repeat(200);
    let store = format!("/stores/{}.json", app.shop.id);
    let create = format!("/purchase_orders/{}/shipments.json", po.id);
    // Sets a field of a shipment body, given its path from `shipment`.
    let with = |mut body: Value, path: &[&str], value: Value| {
        let mut slot = &mut body["shipment"];
        for step in path {
            slot = match step.parse::<usize>() {
                Ok(index) => &mut slot[index],
                Err(_) => &mut slot[*step],
            };
        }
        *slot = value;
        body
    };
    let base = shipment_body(&[(item, 1)], &["T-1"]);
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/stores.json".into(),
            json!({"store": {"name": long(256), "channel": "shopify", "shop_domain": "a.myshopify.com"}}),
            "name",
        ),
        (Method::PUT, store.clone(), json!({"store": {"name": long(256)}}), "name"),
        (
            Method::PUT,
            store.clone(),
            json!({"store": {"shop_domain": format!("{}.myshopify.com", long(300))}}),
            "shop_domain",
        ),
        (
            Method::PUT,
            store.clone(),
            json!({"store": {"carrier_mappings": [{"shipper_id": 1, "channel_carrier": long(101)}]}}),
            "carrier_mappings[0].channel_carrier",
        ),
        (
            Method::PUT,
            store.clone(),
            json!({"store": {"credentials": {"access_token": long(8193)}}}),
            "credentials.access_token",
        ),
        (Method::PUT, store.clone(), json!({"store": {"credentials": {long(65): "x"}}}), "credentials"),
        (
            Method::POST,
            "/products.json".into(),
            json!({"product": {"sku": wide, "vendor_id": app.vendor.id.get()}}),
            "sku",
        ),
        (
            Method::POST,
            "/products.json".into(),
            json!({"product": {"sku": long(256), "vendor_id": app.vendor.id.get()}}),
            "sku",
        ),
        (
            Method::POST,
            "/products.json".into(),
            json!({"product": {"sku": "S-1", "name": long(256), "vendor_id": app.vendor.id.get()}}),
            "name",
        ),
        (
            Method::POST,
            create.clone(),
            with(base.clone(), &["shipment_trackings_attributes", "0", "tracking"], json!(long(101))),
            "shipment_trackings_attributes[0].tracking",
        ),
        (
            Method::POST,
            create.clone(),
            with(base.clone(), &["vendor_invoice_reference"], json!(long(256))),
            "vendor_invoice_reference",
        ),
        (
            Method::POST,
            create.clone(),
            with(base.clone(), &["shipment_items_attributes", "0", "serial_codes"], json!([long(65)])),
            "shipment_items_attributes[0].serial_codes[0]",
        ),
    ];
    for (method, uri, body, field) in cases {
        let (status, json) = app.call(method.clone(), &uri, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {uri} → {json}");
        assert!(errors(&json).iter().any(|e| e.starts_with(&format!("{field} "))), "{field}: {json}");
    }
    // Nothing was written.
    let (_, stores) = app.call(Method::GET, "/stores.json", None).await;
    assert_eq!(stores["stores"].as_array().map(Vec::len), Some(1), "{stores}");
    assert_eq!(stores["stores"][0]["name"], app.shop.name.as_str());
    let (_, products) = app.call(Method::GET, "/products.json", None).await;
    assert_eq!(products["products"], json!([]));
    let (_, shipments) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(shipments["metadata"]["total_count"], 0);

    // Search terms too: a purchase order number is looked up by key, so its bytes count.
    let encoded_wide = "%F0%9F%98%80".repeat(200);
    for (query, field) in [
        (format!("search[customer_name]={}", long(256)), "search[customer_name]"),
        (format!("search[tracking]={}", long(256)), "search[tracking]"),
        (format!("search[vendor_invoice_reference]={}", long(256)), "search[vendor_invoice_reference]"),
        (format!("search[purchase_order_number]={}", long(256)), "search[purchase_order_number]"),
        (format!("search[purchase_order_number]={encoded_wide}"), "search[purchase_order_number]"),
    ] {
        let (status, json) = app.call(Method::GET, &format!("/shipments.json?{query}"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {json}");
        assert!(errors(&json)[0].starts_with(field), "{field}: {json}");
    }
    // At the limit, all is well.
    let (status, json) =
        app.call(Method::GET, &format!("/shipments.json?search[customer_name]={}", long(255)), None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
}

#[tokio::test]
async fn a_key_without_the_issued_shape_answers_401_before_any_lookup() {
    let app = TestApp::new().await;
    let password = app.retailer_user.password.clone();
    let issued = &app.retailer_user.key;
    for key in [
        "ak_nobody".to_owned(),
        issued.to_uppercase(),
        format!("{issued}0"),
        format!("{issued}#APIUSER"),
        "x".repeat(5000),
    ] {
        let user = Credentials { key: key.clone(), password: password.clone() };
        let calls = app.table.calls_made();
        let (status, json) = app.call_as(Some(&user), Method::GET, "/shipments.json", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
        assert_eq!(app.table.calls_made(), calls, "no DynamoDB call for {:.20}", key);
    }
    // A well-shaped key is looked up (and the right one lets the caller in).
    let calls = app.table.calls_made();
    let (status, _) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.table.calls_made() > calls);
}

#[tokio::test]
async fn a_page_larger_than_250_is_capped_not_refused() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-1", "Customer", &[1]).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["T-1"])).await;
    for uri in [
        "/shipments.json?per_page=1000",
        "/purchase_orders.json?per_page=251",
        "/exports/failed.json?per_page=99999999999",
    ] {
        let (status, json) = app.call(Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        assert_eq!(json["metadata"]["per_page"], 250, "{uri}: {json}");
    }
    let (status, json) = app.call(Method::GET, "/shipments.json?per_page=0", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
}
