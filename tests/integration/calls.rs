//! DynamoDB calls per API operation: a figure the README and the issue notes report. It is
//! counted, not timed, so it is exact and can be held to.

use http::Method;
use serde_json::json;

use crate::harness::{TestApp, shipment_body};

#[tokio::test]
async fn dynamodb_calls_per_operation() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-CALLS", "Count Calls", &[5]).await;
    let mut measure = {
        let store = app.table.clone();
        let mut last = store.calls_made();
        move || {
            let now = store.calls_made();
            let made = now - last;
            last = now;
            made
        }
    };
    // A warm API container: it has read the API user and the store before.
    app.call(Method::GET, &format!("/stores/{}.json", app.shop.id), None).await;
    measure();
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["CALLS-1"])).await;
    let create = measure();
    app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    let get = measure();
    app.call(
        Method::PUT,
        &format!("/shipments/{}.json", shipment["id"]),
        Some(json!({"shipment": {"vendor_invoice_reference": "INV"}})),
    )
    .await;
    let update = measure();
    app.call(
        Method::PUT,
        &format!("/shipments/{}.json", shipment["id"]),
        Some(json!({"shipment": {"shipment_items_attributes": [{"order_item_id": po.items[0].id.get(), "quantity": 1}]}})),
    )
    .await;
    measure();
    app.call(Method::GET, "/shipments.json?search[customer_name]=count", None).await;
    let search = measure();
    app.call(
        Method::GET,
        "/shipments.json?search[purchase_order_number]=PO-CALLS&include_shipment_purchase_order=1",
        None,
    )
    .await;
    let search_by_number = measure();
    println!(
        "DynamoDB calls per operation: create {create}, get {get}, update {update}, one-page search {search}, \
         search by purchase order number with the order embedded {search_by_number}"
    );
    // A warm container remembers the API user, the retailer with its carriers and the store
    // (shared/table/src/cache.rs). Create: order, id block (one call per 64 ids), transaction.
    assert_eq!(create, 3);
    let second = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["CALLS-2"])).await;
    assert_eq!(measure(), 2, "a second create: the order and the transaction, the ids from the block");
    assert!(second["id"].as_u64() > shipment["id"].as_u64());
    // Get: the shipment.
    assert_eq!(get, 1);
    // Update: shipment, order, transaction.
    assert_eq!(update, 3);
    // Search: one index query, one batch read of the page.
    assert_eq!(search, 2);
    // By number: the number's record, the order, one index query, the page, the page's orders.
    assert_eq!(search_by_number, 5);
}

/// Write units are counted per started kilobyte of the larger of an item's old and new image,
/// twice in a transaction: a shipment that fits 1 KB costs half what one of 1.4 KB does on
/// every write. A typical one (one item with its serial, one package, a channel's ids) must fit.
#[tokio::test]
async fn a_typical_shipment_and_its_order_each_fit_one_write_unit() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-SIZE-1001", "Alexandra Montgomery-Whitfield", &[2]).await;
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &["1Z999AA10123456784"]);
    body["shipment"]["shipment_items_attributes"][0]["serial_codes"] = json!(["356938035643809"]);
    let shipment = app.create_shipment(&po, body).await;
    let raw = |pk: String, sk: &'static str| {
        let table = app.table.clone();
        async move {
            let key = [
                ("pk".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(pk)),
                ("sk".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(sk.to_owned())),
            ];
            let found = table
                .client()
                .get_item()
                .table_name(table.table_name())
                .set_key(Some(key.into_iter().collect()))
                .send()
                .await
                .expect("get");
            found.item.expect("the item")
        }
    };
    let shipment_item = raw(format!("SHIPMENT#{}", shipment["id"]), "SHIPMENT").await;
    let po_item = raw(format!("PO#{}", po.id), "PO").await;
    let (shipment_bytes, po_bytes) = (shipsync_table::item_size(&shipment_item), shipsync_table::item_size(&po_item));
    println!("item sizes: shipment {shipment_bytes} bytes, its purchase order {po_bytes} bytes");
    assert!(shipment_bytes <= 1024, "a typical shipment is {shipment_bytes} bytes: {shipment_item:?}");
    assert!(po_bytes <= 1024, "a typical purchase order is {po_bytes} bytes: {po_item:?}");
}
