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

fn shopify_return(id: u64, order: &str, line: &str, quantity: u32) -> Value {
    json!({"id": id, "admin_graphql_api_id": format!("gid://shopify/Return/{id}"), "status": "requested",
        "order": {"id": 1, "admin_graphql_api_id": format!("gid://shopify/Order/{order}")},
        "return_line_items": [{"id": id * 10, "quantity": quantity, "return_reason": "size_too_small",
            "customer_note": "too tight",
            "fulfillment_line_item": {"id": 99, "line_item": {"id": 1, "admin_graphql_api_id": line}}}]})
}

async fn returns_of(app: &TestApp) -> Vec<Value> {
    let (_, listed) = app.call(Method::GET, "/returns.json", None).await;
    listed["returns"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_return_asked_for_in_shopify_is_taken_once_and_moves_as_shopify_says() {
    use crate::webhooks::deliver_signed;
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "2001", "Ada Lovelace", &[2, 1]).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["1ZRMA2001"])).await;
    let request = shopify_return(501, "2001", "gid://shopify/LineItem/0", 1);
    for delivery in ["r-1", "r-1-again"] {
        let (status, _) = deliver_signed(&app, "returns/request", &request, delivery).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.run_orders().await;
    let listed = returns_of(&app).await;
    assert_eq!(listed.len(), 1, "taken once however often it came: {listed:?}");
    let ret = &listed[0];
    assert_eq!(
        (ret["state"].clone(), ret["channel_sync"].clone(), ret["channel_return_id"].clone()),
        (json!("requested"), json!("from_channel"), json!("gid://shopify/Return/501"))
    );
    assert_eq!(ret["items"][0]["quantity"], json!(1));
    assert_eq!(ret["reason"], json!("size_too_small: too tight"));

    // Approved in Shopify, then (out of order) the request again, then closed.
    let mut approve = request.clone();
    approve["status"] = json!("open");
    deliver_signed(&app, "returns/approve", &approve, "r-2").await;
    deliver_signed(&app, "returns/request", &request, "r-3").await;
    app.run_orders().await;
    assert_eq!(returns_of(&app).await[0]["state"], json!("authorized"));
    deliver_signed(&app, "returns/close", &json!({"id": 501, "order_id": 2001, "status": "closed"}), "r-4").await;
    app.run_orders().await;
    let closed = &returns_of(&app).await[0];
    assert_eq!(closed["state"], json!("closed"), "{closed}");
    assert_eq!(closed["channel_sync"], json!("from_channel"), "never pushed back to Shopify");

    // A return of units that never shipped in shipsync is listed for a person, not taken.
    let unshipped = shopify_return(502, "2001", "gid://shopify/LineItem/1", 1);
    deliver_signed(&app, "returns/request", &unshipped, "r-5").await;
    app.run_orders().await;
    assert_eq!(returns_of(&app).await.len(), 1);
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    let kinds: Vec<Value> =
        health["problems"].as_array().into_iter().flatten().map(|problem| problem["kind"].clone()).collect();
    assert_eq!(kinds, [json!("channel_return_ignored")], "{health}");
}

#[tokio::test]
async fn a_return_authorized_in_shipsync_is_opened_at_shopify_once() {
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let shopify = MockServer::start().await;
    let app = TestApp::with(
        shipsync_domain::tenant::FeeSettings::default(),
        shipsync_domain::export::ExportSettings { export_shipments: false, ..Default::default() },
        Some(&shopify.uri()),
    )
    .await;
    let po = app.purchase_order(&app.vendor, "2002", "Grace Hopper", &[2]).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["1ZRMA2002"])).await;
    let (_, opened) = app
        .call(Method::POST, &format!("/purchase_orders/{}/returns.json", po.id), Some(items(po.items[0].id.get(), 1)))
        .await;
    let id = opened["return"]["id"].as_u64().expect("an id");
    let graphql = format!("/admin/api/{}/graphql.json", shipsync_channels::SHOPIFY_API_VERSION);
    let order = |returns: Value| {
        json!({"data": {"order": {"id": "gid://shopify/Order/2002",
            "fulfillments": [{"id": "gid://shopify/Fulfillment/1", "status": "SUCCESS", "fulfillmentLineItems": {"nodes": [
                {"id": "gid://shopify/FulfillmentLineItem/5", "quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/0"}}]}}],
            "returns": {"nodes": returns}}}})
    };
    let note = format!("arrived damaged [shipsync-return-{id}]");
    Mock::given(method("POST"))
        .and(path(graphql.clone()))
        .and(body_string_contains("ShipsyncReturnState"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order(json!([]))))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&shopify)
        .await;
    Mock::given(method("POST"))
        .and(path(graphql.clone()))
        .and(body_string_contains("ShipsyncReturnState"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order(json!([{"id": "gid://shopify/Return/900",
            "status": "OPEN", "returnLineItems": {"nodes": [{"quantity": 1, "returnReasonNote": note,
                "fulfillmentLineItem": {"id": "gid://shopify/FulfillmentLineItem/5"}}]}}]))))
        .with_priority(2)
        .mount(&shopify)
        .await;
    // The creation's answer is lost, though Shopify made the return.
    Mock::given(method("POST"))
        .and(path(graphql.clone()))
        .and(body_string_contains("ShipsyncReturnCreate"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&shopify)
        .await;

    let (status, authorized) = move_to(&app, false, &json!(id), "authorized").await;
    assert_eq!(status, StatusCode::OK, "{authorized}");
    assert_eq!(authorized["return"]["channel_sync"], json!("pushing"));
    assert_eq!(app.run_exports().await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.run_exports().await, 1, "delivered again");
    let (_, read) = app.call(Method::GET, &format!("/returns/{id}.json"), None).await;
    assert_eq!(
        (read["return"]["channel_sync"].clone(), read["return"]["channel_return_id"].clone()),
        (json!("pushed"), json!("gid://shopify/Return/900")),
        "{read}"
    );
    let created: Vec<Value> = shopify
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|request| serde_json::from_slice::<Value>(&request.body).ok())
        .filter(|body| body["query"].as_str().is_some_and(|query| query.contains("ShipsyncReturnCreate")))
        .collect();
    assert_eq!(created.len(), 1, "made once: the retry found it");
    assert_eq!(
        created[0]["variables"],
        json!({"returnInput": {"orderId": "gid://shopify/Order/2002", "returnLineItems": [{
            "fulfillmentLineItemId": "gid://shopify/FulfillmentLineItem/5", "quantity": 1,
            "returnReason": "OTHER", "returnReasonNote": note}]}})
    );
    // The vendor receives the goods; nothing more goes to Shopify.
    assert_eq!(move_to(&app, true, &json!(id), "received").await.0, StatusCode::OK);
    app.run_exports().await;
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], json!(0), "{health}");
}
