//! Returns (RMAs) through the API against moto: never more units than shipped, also when two
//! returns race for the last one; states moved forward by the retailer, `received` by the vendor;
//! listed oldest first with paging and a state filter; a vendor sees its own only.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, shipment_body};

fn items(po_item: u64, quantity: u32) -> Value {
    json!({"return": {"items": [{"order_item_id": po_item, "quantity": quantity}], "reason": "arrived damaged"}})
}

async fn move_to(app: &TestApp, as_vendor: bool, id: &Value, state: &str) -> (StatusCode, Value) {
    let user = if as_vendor { &app.vendor_user } else { &app.retailer_user };
    let body = json!({"return": {"state": state}});
    app.call_as(Some(user), Method::PUT, &format!("/returns/{id}.json"), Some(body)).await
}

#[tokio::test]
async fn a_return_takes_no_more_than_shipped_and_moves_forward_by_role() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "RMA-1", "Ada Lovelace", &[3]).await;
    let item = po.items[0].id.get();
    app.create_shipment(&po, shipment_body(&[(item, 2)], &["1ZRMA0001"])).await;
    let path = format!("/purchase_orders/{}/returns.json", po.id);
    let (status, refused) = app.call(Method::POST, &path, Some(items(item, 3))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "3 ordered, 2 shipped: {refused}");
    assert!(refused.to_string().contains("must be between 1 and 2"), "{refused}");
    let (status, refused) = app.call_as(Some(&app.vendor_user), Method::POST, &path, Some(items(item, 1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    let (status, opened) = app.call(Method::POST, &path, Some(items(item, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let ret = &opened["return"];
    assert_eq!((ret["state"].clone(), ret["items"][0]["quantity"].clone()), (json!("requested"), json!(2)));
    let (status, _) = app.call(Method::POST, &path, Some(items(item, 1))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "both shipped units are coming back already");

    let id = &ret["id"];
    assert_eq!(move_to(&app, true, id, "authorized").await.0, StatusCode::UNPROCESSABLE_ENTITY, "not the vendor's");
    assert_eq!(move_to(&app, false, id, "refunded").await.0, StatusCode::UNPROCESSABLE_ENTITY, "no skipping");
    assert_eq!(move_to(&app, false, id, "authorized").await.0, StatusCode::OK);
    let (status, received) = move_to(&app, true, id, "received").await;
    assert_eq!(status, StatusCode::OK, "{received}");
    let history: Vec<(Value, Value)> = received["return"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|step| (step["state"].clone(), step["by"].clone()))
        .collect();
    assert_eq!(
        history,
        [
            (json!("requested"), json!("retailer")),
            (json!("authorized"), json!("retailer")),
            (json!("received"), json!("vendor"))
        ]
    );
    assert_eq!(move_to(&app, false, id, "refunded").await.0, StatusCode::OK);
    assert_eq!(move_to(&app, false, id, "closed").await.0, StatusCode::OK);
    let (status, closed) = move_to(&app, false, id, "authorized").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{closed}");
    let (status, read) = app.call_as(Some(&app.vendor_user), Method::GET, &format!("/returns/{id}.json"), None).await;
    assert_eq!((status, read["return"]["state"].clone()), (StatusCode::OK, json!("closed")));
}

#[tokio::test]
async fn two_returns_racing_for_the_last_unit_cannot_both_take_it() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "RMA-2", "Ada Lovelace", &[1]).await;
    let item = po.items[0].id.get();
    app.create_shipment(&po, shipment_body(&[(item, 1)], &["1ZRMA0002"])).await;
    let path = format!("/purchase_orders/{}/returns.json", po.id);
    let other = app.another_api_container();
    let (first, second) = tokio::join!(
        app.call(Method::POST, &path, Some(items(item, 1))),
        app.call_on(&other, Method::POST, &path, Some(items(item, 1)))
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY], "{first:?} {second:?}");
}

#[tokio::test]
async fn returns_are_listed_by_page_and_state_and_a_vendor_sees_its_own() {
    let app = TestApp::new().await;
    let mut opened = Vec::new();
    for (index, vendor) in [&app.vendor, &app.vendor, &app.other_vendor].into_iter().enumerate() {
        let po = app.purchase_order(vendor, &format!("RMA-L{index}"), "Ada Lovelace", &[1]).await;
        app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &[&format!("1ZRMAL{index}")])).await;
        app.advance(chrono::Duration::minutes(1));
        let (status, json) = app
            .call(
                Method::POST,
                &format!("/purchase_orders/{}/returns.json", po.id),
                Some(items(po.items[0].id.get(), 1)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        opened.push(json["return"]["id"].clone());
    }
    assert_eq!(move_to(&app, false, &opened[0], "authorized").await.0, StatusCode::OK);
    let (_, all) = app.call(Method::GET, "/returns.json", None).await;
    let ids: Vec<Value> = all["returns"].as_array().expect("returns").iter().map(|ret| ret["id"].clone()).collect();
    assert_eq!(ids, opened, "oldest first, as purchase orders are: {all}");
    let (_, page) = app.call(Method::GET, "/returns.json?per_page=2&page=2", None).await;
    assert_eq!(page["returns"].as_array().map(Vec::len), Some(1), "{page}");
    let (_, authorized) = app.call(Method::GET, "/returns.json?search[state]=authorized", None).await;
    assert_eq!(authorized["returns"][0]["id"], opened[0], "{authorized}");
    assert_eq!(authorized["returns"].as_array().map(Vec::len), Some(1));
    let (status, refused) = app.call(Method::GET, "/returns.json?search[state]=lost", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (_, own) = app.call_as(Some(&app.vendor_user), Method::GET, "/returns.json", None).await;
    let own_ids: Vec<Value> = own["returns"].as_array().expect("returns").iter().map(|ret| ret["id"].clone()).collect();
    assert_eq!(own_ids, opened[..2], "the vendor's own: {own}");
    let (status, _) =
        app.call_as(Some(&app.vendor_user), Method::GET, &format!("/returns/{}.json", opened[2]), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another vendor's return");
}
