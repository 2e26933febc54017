//! `GET /purchase_orders.json` and `GET /purchase_orders/{id}.json`.

use http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TestApp, shipment_body};

#[tokio::test]
async fn purchase_orders_show_items_and_fulfilled_quantities() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-P1", "Pat Order", &[3, 1]).await;
    app.purchase_order(&app.other_vendor, "PO-P2", "Other", &[1]).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["P1"])).await;

    let (status, json) = app.call(Method::GET, &format!("/purchase_orders/{}.json", po.id), None).await;
    assert_eq!(status, StatusCode::OK);
    let order = &json["purchase_order"];
    assert_eq!(order["public_reference"], "PO-P1");
    assert_eq!(order["customer_name"], "Pat Order");
    assert_eq!(order["vendor_id"], app.vendor.id.get());
    assert_eq!(order["store_id"], app.shop.id.get());
    assert_eq!(order["fully_fulfilled"], false);
    assert_eq!(
        order["order_items"][0],
        json!({"id": po.items[0].id.get(), "sku": "SKU-PO-P1-0", "name": "Item 0 of PO-P1", "quantity": 3,
               "quantity_fulfilled": 2, "quantity_unfulfilled": 1, "quantity_cancelled": 0, "cost": "19.99",
               "channel_line_item_id": "gid://shopify/LineItem/0"})
    );

    let (_, list) = app.call(Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(
        list["metadata"],
        json!({"total_count": 2, "total_count_exact": true, "has_next_page": false, "page": 1, "per_page": 250,
               "next_cursor": null})
    );
    let (_, paged) = app.call(Method::GET, "/purchase_orders.json?per_page=1&page=2", None).await;
    assert_eq!(paged["purchase_orders"][0]["public_reference"], "PO-P2");
    assert_eq!(paged["metadata"]["has_next_page"], false);
}

/// A purchase order lists its shipments itself (no index): each shipment's id is added in the
/// transaction that writes it, and a table from before that is linked by a one-off.
#[tokio::test]
async fn a_purchase_orders_shipments_are_found_through_it_and_old_ones_are_linked_once() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-LINK", "Linked", &[3]).await;
    let first = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["LINK-1"])).await;
    let second = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["LINK-2"])).await;
    let ids =
        |shipments: Vec<shipsync_domain::shipment::Shipment>| shipments.iter().map(|s| s.id.get()).collect::<Vec<_>>();
    let expected = vec![first["id"].as_u64().expect("id"), second["id"].as_u64().expect("id")];
    assert_eq!(ids(app.table.shipments_of_purchase_order(po.id).await.expect("read")), expected, "oldest first");
    // An edit of the purchase order keeps its list.
    let mut edited = app.table.purchase_order(po.id).await.expect("read").expect("po");
    edited.version += 1;
    edited.customer_name = "Linked Again".into();
    app.table.update_purchase_order(&edited).await.expect("update");
    assert_eq!(ids(app.table.shipments_of_purchase_order(po.id).await.expect("read")), expected);

    // As a table written before the list: the attribute is not there.
    let key: std::collections::HashMap<_, _> = [
        ("pk".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(format!("PO#{}", po.id))),
        ("sk".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S("PO".into())),
    ]
    .into();
    app.table
        .client()
        .update_item()
        .table_name(app.table.table_name())
        .set_key(Some(key))
        .update_expression("REMOVE shipment_ids")
        .send()
        .await
        .expect("remove");
    assert!(app.table.shipments_of_purchase_order(po.id).await.expect("read").is_empty());
    assert_eq!(app.table.link_purchase_order_shipments().await.expect("link"), 2);
    assert_eq!(ids(app.table.shipments_of_purchase_order(po.id).await.expect("read")), expected);
    let (_, found) = app
        .call(Method::GET, "/shipments.json?search[purchase_order_number]=PO-LINK&search[tracking]=link-2", None)
        .await;
    assert_eq!(found["metadata"]["total_count"], 1, "{found}");
    assert_eq!(found["shipments"][0]["id"], second["id"]);
}
