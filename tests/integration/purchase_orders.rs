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
               "quantity_fulfilled": 2, "quantity_unfulfilled": 1, "cost": "19.99",
               "channel_line_item_id": "gid://shopify/LineItem/0"})
    );

    let (_, list) = app.call(Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(
        list["metadata"],
        json!({"total_count": 2, "total_count_exact": true, "has_next_page": false, "page": 1, "per_page": 250})
    );
    let (_, paged) = app.call(Method::GET, "/purchase_orders.json?per_page=1&page=2", None).await;
    assert_eq!(paged["purchase_orders"][0]["public_reference"], "PO-P2");
    assert_eq!(paged["metadata"]["has_next_page"], false);
}
