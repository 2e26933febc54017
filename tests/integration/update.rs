//! Updating shipments: writable fields, nested items and trackings, quantities kept in step
//! with the purchase order, and the fields that lock once a shipment is exported or invoiced.

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::ids::ShipmentId;

use crate::harness::{TestApp, errors, shipment_body};

async fn put(app: &TestApp, shipment: &Value, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, &format!("/shipments/{}.json", shipment["id"]), Some(json!({ "shipment": body }))).await
}

async fn fulfilled(app: &TestApp, po: &shipsync_domain::purchase_order::PurchaseOrder) -> Vec<u32> {
    let stored = app.table.purchase_order(po.id).await.expect("read").expect("po");
    stored.items.iter().map(|item| item.quantity_fulfilled).collect()
}

/// Marks a shipment as sent somewhere, as the exporter (or accounting sync) will.
async fn mark_synced(app: &TestApp, shipment: &Value, exported: bool, accounting: bool) {
    let id = ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id");
    let mut stored = app.table.shipment(id).await.expect("read").expect("shipment");
    if exported {
        stored.sync.exported_at = Some(app.now());
    }
    if accounting {
        stored.sync.accounting_synced_at = Some(app.now());
    }
    stored.version += 1;
    app.table.update_shipment(&stored, None).await.expect("write");
}

#[tokio::test]
async fn the_sample_update_changes_costs_and_invoice_reference() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-U", "Up Date", &[2]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["U1"])).await;
    app.advance(Duration::minutes(5));
    let (status, json) =
        put(&app, &shipment, json!({"vendor_shipping_cost": "3.5", "vendor_invoice_reference": "AB1234"})).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let updated = &json["shipment"];
    assert_eq!(updated["vendor_shipping_cost"], "3.50");
    assert_eq!(updated["vendor_invoice_reference"], "AB1234");
    assert_eq!(updated["invoiced_at"], "2026-03-02T12:05:00.000Z");
    assert_eq!(updated["updated_at"], "2026-03-02T12:05:00.000Z");
    assert_eq!(updated["created_at"], shipment["created_at"]);
    let (_, read) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(read["shipment"], *updated);

    // null clears a field; the carrier can change while nothing is exported.
    let (status, json) = put(
        &app,
        &shipment,
        json!({"vendor_shipping_cost": null, "vendor_invoice_reference": null, "shipper_scac_code": "USPS"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["shipment"]["vendor_shipping_cost"], Value::Null);
    assert_eq!(json["shipment"]["invoiced_at"], Value::Null);
    assert_eq!(json["shipment"]["shipper_name"], "US Postal");
}

#[tokio::test]
async fn items_and_trackings_change_and_the_purchase_order_follows() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-I", "Items", &[3, 2]).await;
    let (a, b) = (po.items[0].id.get(), po.items[1].id.get());
    let shipment = app.create_shipment(&po, shipment_body(&[(a, 1)], &["OLD-1", "OLD-2"])).await;
    assert_eq!(fulfilled(&app, &po).await, [1, 0]);
    let item_id = &shipment["shipment_items_attributes"][0]["id"];
    let trackings = &shipment["shipment_trackings_attributes"];

    let (status, json) = put(&app, &shipment, json!({
        "shipment_items_attributes": [{"id": item_id, "quantity": 3}, {"order_item_id": b, "quantity": 2, "serial_codes": ["SN-1", "SN-2"]}],
        "shipment_trackings_attributes": [{"id": trackings[0]["id"], "_destroy": true}, {"id": trackings[1]["id"], "tracking": "NEW-2"}, {"tracking": "NEW-3"}]
    })).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let updated = &json["shipment"];
    let items: Vec<(Value, Value)> = updated["shipment_items_attributes"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["order_item_id"].clone(), i["quantity"].clone()))
        .collect();
    assert_eq!(items, [(json!(a), json!(3)), (json!(b), json!(2))]);
    assert_eq!(updated["shipment_items_attributes"][1]["serial_codes"], json!(["SN-1", "SN-2"]));
    let numbers: Vec<Value> =
        updated["shipment_trackings_attributes"].as_array().expect("t").iter().map(|t| t["tracking"].clone()).collect();
    assert_eq!(numbers, [json!("NEW-2"), json!("NEW-3")]);
    assert_eq!(fulfilled(&app, &po).await, [3, 2]);

    // Removing an item gives its quantity back to the order.
    let (status, json) = put(
        &app,
        &shipment,
        json!({"shipment_items_attributes": [{"id": updated["shipment_items_attributes"][1]["id"], "_destroy": "1"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(fulfilled(&app, &po).await, [3, 0]);
}

#[tokio::test]
async fn an_update_cannot_overfulfil_or_empty_a_shipment_and_then_changes_nothing() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-O", "Over", &[2]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["O1"])).await;
    let item_id = &shipment["shipment_items_attributes"][0]["id"];
    let before = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await.1;
    for (body, field) in [
        (
            json!({"shipment_items_attributes": [{"id": item_id, "quantity": 3}]}),
            "shipment_items_attributes[0].quantity",
        ),
        (json!({"shipment_items_attributes": [{"id": item_id, "_destroy": true}]}), "shipment_items_attributes"),
        (
            json!({"shipment_trackings_attributes": [{"id": shipment["shipment_trackings_attributes"][0]["id"], "_destroy": true}]}),
            "shipment_trackings_attributes",
        ),
        (json!({"shipment_items_attributes": [{"id": 1, "quantity": 1}]}), "shipment_items_attributes[0].id"),
        (json!({"shipper_name": "Pony Express"}), "shipper_name"),
        (json!({"id": 1}), "id"),
        (json!({"purchase_order_id": 1}), "purchase_order_id"),
    ] {
        let (status, json) = put(&app, &shipment, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {json}");
        assert!(errors(&json).iter().any(|m| m.starts_with(field)), "{body} → {json}");
    }
    let after = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await.1;
    assert_eq!(before, after);
    assert_eq!(fulfilled(&app, &po).await, [1]);
}

#[tokio::test]
async fn sending_back_what_was_read_changes_nothing() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-E", "Echo", &[2]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["E1"])).await;
    app.advance(Duration::minutes(1));
    let mut echo = shipment.clone();
    // A client sends one way of naming the carrier.
    let fields = echo.as_object_mut().expect("object");
    fields.remove("shipper_name");
    fields.remove("shipper_scac_code");
    let (status, json) = put(&app, &shipment, echo).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["shipment"], shipment, "nothing changed, not even updated_at");
}

#[tokio::test]
async fn exported_shipments_lock_carrier_items_and_tracking() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-X", "Exported", &[3]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["X1"])).await;
    mark_synced(&app, &shipment, true, false).await;
    let item_id = &shipment["shipment_items_attributes"][0]["id"];
    for (body, message) in [
        (json!({"shipper_id": 2}), "shipper_id is readonly: the shipment has been exported to its channel"),
        (
            json!({"shipment_items_attributes": [{"id": item_id, "quantity": 2}]}),
            "shipment_items_attributes is readonly: the shipment has been exported to its channel",
        ),
        (
            json!({"shipment_items_attributes": [{"id": item_id, "serial_codes": ["IMEI"]}]}),
            "shipment_items_attributes is readonly: the shipment has been exported to its channel",
        ),
        (
            json!({"shipment_trackings_attributes": [{"tracking": "X2"}]}),
            "shipment_trackings_attributes is readonly: the shipment has been exported to its channel",
        ),
    ] {
        let (status, json) = put(&app, &shipment, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(errors(&json), [message]);
    }
    // Sending the same values, and changing costs, is still fine.
    let (status, json) = put(&app, &shipment, json!({"shipper_id": 1, "vendor_tax_cost": "1.10", "shipment_items_attributes": [{"id": item_id, "quantity": 1}]})).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["shipment"]["vendor_tax_cost"], "1.10");
    assert!(json["shipment"]["exported_at"].is_string());
}

#[tokio::test]
async fn accounting_sync_locks_costs_and_invoice_references() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-A", "Accounting", &[3]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["A1"])).await;
    mark_synced(&app, &shipment, false, true).await;
    for field in ["vendor_shipping_cost", "vendor_handling_cost", "vendor_tax_cost", "shipper_shipping_cost"] {
        let (status, json) = put(&app, &shipment, json!({ field: "9.99" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(errors(&json), [format!("{field} is readonly: the shipment has been synced to accounting")]);
    }
    for field in ["vendor_invoice_reference", "shipper_invoice_reference"] {
        let (status, json) = put(&app, &shipment, json!({ field: "INV-9" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(errors(&json), [format!("{field} is readonly: the shipment has been synced to accounting")]);
    }
    let (status, _) = put(&app, &shipment, json!({"shipment_trackings_attributes": [{"tracking": "A2"}]})).await;
    assert_eq!(status, StatusCode::OK, "tracking is still editable before export");
}
