//! Creating shipments: the seed's sample request, every validation rule, malformed bodies, and
//! concurrent creates racing for the last unit.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, errors, shipment_body};

#[tokio::test]
async fn the_sample_request_creates_a_shipment_with_every_field() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "987654", "Bill Smith", &[1, 2]).await;
    let body = json!({"shipment": {
        "shipper_name": "UPS",
        "vendor_shipping_cost": "",
        "vendor_handling_cost": "",
        "vendor_invoice_reference": "AB1234",
        "shipper_shipping_cost": 5.0,
        "shipment_items_attributes": [
            {"order_item_id": po.items[0].id.get(), "quantity": 1},
            {"order_item_id": po.items[1].id.get(), "quantity": 2}
        ],
        "shipment_trackings_attributes": [{"tracking": "1234"}, {"tracking": "5678"}]
    }});
    let shipment = app.create_shipment(&po, body).await;

    assert!(shipment["id"].as_u64().is_some_and(|id| id > 0));
    assert_eq!(shipment["purchase_order_id"], po.id.get());
    assert_eq!(shipment["purchase_order_public_reference"], "987654");
    assert_eq!(shipment["created_at"], "2026-03-02T12:00:00.000Z");
    assert_eq!(shipment["updated_at"], "2026-03-02T12:00:00.000Z");
    assert_eq!(
        (shipment["shipper_id"].clone(), shipment["shipper_name"].clone(), shipment["shipper_scac_code"].clone()),
        (json!(1), json!("UPS"), json!("UPSN"))
    );
    assert_eq!(shipment["vendor_invoice_reference"], "AB1234");
    assert_eq!(shipment["shipper_shipping_cost"], "5.00");
    assert_eq!(shipment["vendor_shipping_cost"], Value::Null);
    assert_eq!(shipment["vendor_handling_cost"], Value::Null);
    assert_eq!(shipment["vendor_tax_cost"], Value::Null);
    assert_eq!(shipment["shipper_invoice_reference"], Value::Null);
    let trackings = shipment["shipment_trackings_attributes"].as_array().expect("trackings");
    assert_eq!(trackings.iter().map(|t| t["tracking"].clone()).collect::<Vec<_>>(), [json!("1234"), json!("5678")]);
    assert!(trackings.iter().all(|t| t["id"].as_u64().is_some()));
    let items = shipment["shipment_items_attributes"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["order_item_id"], po.items[0].id.get());
    assert_eq!(items[0]["quantity"], 1);
    assert_eq!(items[0]["cost"], "19.99");
    assert_eq!(items[0]["order_item_name"], "Item 0 of 987654");
    assert_eq!(items[0]["serial_codes"], json!([]));
    assert!(items.iter().all(|i| i["id"].as_u64().is_some()));

    // The same write marked the quantities fulfilled.
    let (_, po_json) = app.call(Method::GET, &format!("/purchase_orders/{}.json", po.id), None).await;
    let fulfilled: Vec<Value> = po_json["purchase_order"]["order_items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["quantity_fulfilled"].clone())
        .collect();
    assert_eq!(fulfilled, [json!(1), json!(2)]);
    assert_eq!(po_json["purchase_order"]["fully_fulfilled"], true);

    // And it reads back the same.
    let (status, read) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["shipment"], shipment);
}

#[tokio::test]
async fn carriers_are_named_by_id_name_or_scac_code() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-C", "Ann", &[5]).await;
    let item = po.items[0].id.get();
    for (field, value, expected) in [
        ("shipper_id", json!(17), 17),
        ("shipper_id", json!("2"), 2),
        ("shipper_name", json!("dhl ecommerce"), 395),
        ("shipper_scac_code", json!("FEDX"), 2),
    ] {
        let mut body = shipment_body(&[(item, 1)], &[&format!("T-{field}-{expected}")]);
        body["shipment"].as_object_mut().expect("object").remove("shipper_name");
        body["shipment"][field] = value;
        let shipment = app.create_shipment(&po, body).await;
        assert_eq!(shipment["shipper_id"], expected);
    }
}

/// Sends a create request that must be refused with 422 naming `field`, and checks that it
/// changed nothing.
async fn refused(app: &TestApp, po: &shipsync_domain::purchase_order::PurchaseOrder, body: Value, field: &str) {
    let (status, json) =
        app.call(Method::POST, &format!("/purchase_orders/{}/shipments.json", po.id), Some(body.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {json}");
    let messages = errors(&json);
    assert!(messages.iter().any(|m| m.starts_with(field)), "expected an error naming {field}, got {messages:?}");
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 0, "a refused request created nothing");
    let stored = app.table.purchase_order(po.id).await.expect("read").expect("po");
    assert_eq!(stored, *po, "a refused request changed nothing");
}

#[tokio::test]
async fn every_validation_rule_is_refused_with_422_naming_the_field() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-V", "Val Idation", &[1, 2]).await;
    let (a, b) = (po.items[0].id.get(), po.items[1].id.get());
    let other_po = app.purchase_order(&app.vendor, "PO-W", "Other", &[1]).await;

    refused(&app, &po, shipment_body(&[], &["T1"]), "shipment_items_attributes").await;
    refused(&app, &po, shipment_body(&[(a, 1)], &[]), "shipment_trackings_attributes").await;
    let mut no_items = shipment_body(&[], &["T1"]);
    no_items["shipment"].as_object_mut().expect("object").remove("shipment_items_attributes");
    refused(&app, &po, no_items, "shipment_items_attributes").await;

    let mut no_carrier = shipment_body(&[(a, 1)], &["T1"]);
    no_carrier["shipment"].as_object_mut().expect("object").remove("shipper_name");
    refused(&app, &po, no_carrier, "shipper_id").await;
    let mut two_carriers = shipment_body(&[(a, 1)], &["T1"]);
    two_carriers["shipment"]["shipper_id"] = json!(1);
    refused(&app, &po, two_carriers, "shipper_id").await;
    let mut unknown_carrier = shipment_body(&[(a, 1)], &["T1"]);
    unknown_carrier["shipment"]["shipper_name"] = json!("Pony Express");
    refused(&app, &po, unknown_carrier, "shipper_name").await;
    let mut unknown_scac = shipment_body(&[(a, 1)], &["T1"]);
    unknown_scac["shipment"].as_object_mut().expect("object").remove("shipper_name");
    unknown_scac["shipment"]["shipper_scac_code"] = json!("ZZZZ");
    refused(&app, &po, unknown_scac, "shipper_scac_code").await;

    refused(
        &app,
        &po,
        shipment_body(&[(other_po.items[0].id.get(), 1)], &["T1"]),
        "shipment_items_attributes[0].order_item_id",
    )
    .await;
    refused(&app, &po, shipment_body(&[(a, 1), (b, 0)], &["T1"]), "shipment_items_attributes[1].quantity").await;
    refused(&app, &po, shipment_body(&[(a, -1)], &["T1"]), "shipment_items_attributes[0].quantity").await;
    refused(&app, &po, shipment_body(&[(a, 1), (b, 3)], &["T1"]), "shipment_items_attributes[1].quantity").await;
    refused(&app, &po, shipment_body(&[(a, 1)], &["T1", "t1"]), "shipment_trackings_attributes").await;
    refused(&app, &po, shipment_body(&[(a, 1)], &["  "]), "shipment_trackings_attributes[0].tracking").await;

    let mut bad_cost = shipment_body(&[(a, 1)], &["T1"]);
    bad_cost["shipment"]["vendor_tax_cost"] = json!("twelve");
    refused(&app, &po, bad_cost, "vendor_tax_cost").await;
    let mut negative_cost = shipment_body(&[(a, 1)], &["T1"]);
    negative_cost["shipment"]["shipper_shipping_cost"] = json!(-4);
    refused(&app, &po, negative_cost, "shipper_shipping_cost").await;

    let mut too_many_serials = shipment_body(&[(a, 1)], &["T1"]);
    too_many_serials["shipment"]["shipment_items_attributes"][0]["serial_codes"] = json!(["A", "B"]);
    refused(&app, &po, too_many_serials, "shipment_items_attributes[0].serial_codes").await;

    // Once one shipment takes an item, a second may not take more than what is left.
    app.create_shipment(&po, shipment_body(&[(b, 2)], &["T9"])).await;
    let (status, json) = app
        .call(
            Method::POST,
            &format!("/purchase_orders/{}/shipments.json", po.id),
            Some(shipment_body(&[(b, 1)], &["T10"])),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        errors(&json),
        [format!("shipment_items_attributes[0].quantity 1 exceeds the 0 still unfulfilled of order item {b}")]
    );
}

#[tokio::test]
async fn costs_accept_numbers_numeric_strings_and_blanks() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-COST", "Cost", &[3]).await;
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["C1"]);
    body["shipment"]["vendor_shipping_cost"] = json!("3.5");
    body["shipment"]["vendor_handling_cost"] = json!(2);
    body["shipment"]["vendor_tax_cost"] = json!("");
    body["shipment"]["shipper_shipping_cost"] = json!(0.1);
    let shipment = app.create_shipment(&po, body).await;
    assert_eq!(shipment["vendor_shipping_cost"], "3.50");
    assert_eq!(shipment["vendor_handling_cost"], "2.00");
    assert_eq!(shipment["vendor_tax_cost"], Value::Null);
    assert_eq!(shipment["shipper_shipping_cost"], "0.10");
}

#[tokio::test]
async fn fee_types_that_are_off_are_left_out_and_cannot_be_set() {
    use shipsync_domain::tenant::FeeSettings;
    let app = TestApp::with_fees(FeeSettings { shipping: false, handling: true, tax: false }).await;
    let po = app.purchase_order(&app.vendor, "PO-FEES", "Fee", &[3]).await;
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["F1"]);
    body["shipment"]["vendor_shipping_cost"] = json!("");
    body["shipment"]["vendor_handling_cost"] = json!("1.25");
    let shipment = app.create_shipment(&po, body.clone()).await;
    let fields = shipment.as_object().expect("object");
    assert!(!fields.contains_key("vendor_shipping_cost"));
    assert!(!fields.contains_key("vendor_tax_cost"));
    assert_eq!(shipment["vendor_handling_cost"], "1.25");
    body["shipment"]["vendor_tax_cost"] = json!("2");
    body["shipment"]["shipment_trackings_attributes"] = json!([{"tracking": "F2"}]);
    let (status, json) =
        app.call(Method::POST, &format!("/purchase_orders/{}/shipments.json", po.id), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(errors(&json), ["vendor_tax_cost cannot be set: taxes are not enabled for this retailer"]);
}

#[tokio::test]
async fn malformed_bodies_answer_400_and_change_nothing() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-M", "Mal Formed", &[2]).await;
    let uri = format!("/purchase_orders/{}/shipments.json", po.id);
    let item = po.items[0].id.get();
    let cases: Vec<(String, &str)> = vec![
        ("{\"shipment\": {".into(), "malformed JSON"),
        (String::new(), "request body is empty"),
        ("[]".into(), "malformed JSON"),
        ("{}".into(), "malformed JSON"),
        (json!({"shipment": "UPS"}).to_string(), "shipment"),
        (
            json!({"shipment": {"shipment_items_attributes": {"order_item_id": item}}}).to_string(),
            "shipment.shipment_items_attributes",
        ),
        (
            json!({"shipment": {"shipment_items_attributes": [{"order_item_id": item, "quantity": "two"}]}})
                .to_string(),
            "shipment.shipment_items_attributes[0].quantity",
        ),
        (
            json!({"shipment": {"shipment_items_attributes": [{"order_item_id": item, "quantity": 1.5}]}}).to_string(),
            "shipment.shipment_items_attributes[0].quantity",
        ),
        (json!({"shipment": {"shipper_shipping_cost": true}}).to_string(), "shipment.shipper_shipping_cost"),
        (json!({"shipment": {"shipper_id": -1}}).to_string(), "shipment.shipper_id"),
        (json!({"shipment": {"tracking_number": "1Z"}}).to_string(), "shipment"),
        (
            json!({"shipment": {"shipment_trackings_attributes": [{"tracking": 12}]}}).to_string(),
            "shipment.shipment_trackings_attributes[0].tracking",
        ),
        ("\u{0}\u{1}garbage".into(), "malformed JSON"),
    ];
    for (body, expected) in cases {
        let (status, json) = app.raw_call(Some(&app.retailer_user), Method::POST, &uri, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?} → {json}");
        let messages = errors(&json);
        assert!(messages.len() == 1 && messages[0].starts_with(expected), "{body:?} → {messages:?}");
    }
    let huge = format!("{{\"shipment\": {{\"vendor_invoice_reference\": \"{}\"}}}}", "x".repeat(1 << 20));
    let (status, _) = app.raw_call(Some(&app.retailer_user), Method::POST, &uri, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.table.purchase_order(po.id).await.expect("read"), Some(po));
}

#[tokio::test]
async fn concurrent_creates_racing_for_the_last_unit_let_exactly_one_win() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-RACE", "Race", &[1]).await;
    let item = po.items[0].id.get();
    let uri = format!("/purchase_orders/{}/shipments.json", po.id);
    let attempt = |n: u32| app.call(Method::POST, &uri, Some(shipment_body(&[(item, 1)], &[&format!("RACE-{n}")])));
    // All four are in flight at once: each reads the order before any of them writes.
    let (first, second, third, fourth) = tokio::join!(attempt(1), attempt(2), attempt(3), attempt(4));
    let results = [first, second, third, fourth];
    let created = results.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    let refused = results.iter().filter(|(status, _)| *status == StatusCode::UNPROCESSABLE_ENTITY).count();
    assert_eq!((created, refused), (1, 3), "{results:?}");
    let stored = app.table.purchase_order(po.id).await.expect("read").expect("po");
    assert_eq!(stored.items[0].quantity_fulfilled, 1);
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 1);
}

#[tokio::test]
async fn a_retailers_own_carriers_can_be_used_by_it_alone() {
    let app = TestApp::new().await;
    let carrier = shipsync_tools::provision::create_carrier(&app.table, app.retailer.id, "Royal Mail", Some("rmal"))
        .await
        .expect("carrier");
    let po = app.purchase_order(&app.vendor, "PO-RM", "Rose Mail", &[2]).await;
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["RM1"]);
    body["shipment"]["shipper_name"] = json!("royal mail");
    let shipment = app.create_shipment(&po, body).await;
    assert_eq!(shipment["shipper_id"], carrier.id.get());
    assert_eq!(shipment["shipper_scac_code"], "RMAL");

    let other = app.another_tenant().await;
    let their_po = other.purchase_order(&other.vendor, "PO-RM", "Rose Mail", &[2]).await;
    let mut body = shipment_body(&[(their_po.items[0].id.get(), 1)], &["RM2"]);
    body["shipment"]["shipper_scac_code"] = json!("RMAL");
    body["shipment"].as_object_mut().expect("object").remove("shipper_name");
    let (status, json) =
        other.call(Method::POST, &format!("/purchase_orders/{}/shipments.json", their_po.id), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(errors(&json), [r#"shipper_scac_code "RMAL" does not match a carrier of this retailer"#]);
}

/// A warm API container remembers a retailer's carriers for a minute; a carrier added since in
/// another container (the admin command, another API instance) is usable at once: a carrier
/// refused by the remembered list is looked up again before the request is refused.
#[tokio::test]
async fn a_carrier_added_elsewhere_a_moment_ago_is_accepted() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "CARRIER-NEW", "Fresh Carrier", &[2]).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["FRESH-1"])).await;
    let elsewhere = app.table.clone().with_settings_ttl(std::time::Duration::ZERO);
    shipsync_tools::provision::create_carrier(&elsewhere, app.retailer.id, "Parcelforce", Some("PFWW"))
        .await
        .expect("carrier");
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["FRESH-2"]);
    body["shipment"]["shipper_name"] = json!("Parcelforce");
    let (status, json) =
        app.call(Method::POST, &format!("/purchase_orders/{}/shipments.json", po.id), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["shipment"]["shipper_scac_code"], "PFWW");
    // A carrier that exists nowhere is still refused, naming the field.
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["FRESH-3"]);
    body["shipment"]["shipper_name"] = json!("No Such Carrier");
    let (status, json) =
        app.call(Method::POST, &format!("/purchase_orders/{}/shipments.json", po.id), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert!(errors(&json).iter().any(|e| e.starts_with("shipper_name")), "{json}");
}
