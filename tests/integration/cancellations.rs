//! Merchant-driven cancellations through the API against moto and a wiremock Shopify that checks
//! the exact mutations: units cancelled in one write with the purchase order, pushed once (a lost
//! answer followed by a retry that adopts what Shopify holds, never a second refund), the whole
//! order cancelled with `orderCancel`, a vendor's request waiting for the retailer in order
//! health, and bad requests refused with nothing changed.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::tenant::FeeSettings;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, errors};

fn graphql_path() -> String {
    format!("/admin/api/{}/graphql.json", shipsync_channels::SHOPIFY_API_VERSION)
}

fn cancel(items: &[(u64, i64)], reason: &str) -> Value {
    let items: Vec<Value> =
        items.iter().map(|(item, quantity)| json!({"order_item_id": item, "quantity": quantity})).collect();
    json!({"cancellation": {"items": items, "reason": reason, "note": "supplier discontinued it"}})
}

/// The fields a 422 names (each message starts with its field).
fn fields(json: &Value) -> Vec<String> {
    errors(json).iter().map(|message| message.split(' ').next().unwrap_or_default().to_owned()).collect()
}

async fn operations(server: &MockServer, name: &str) -> Vec<Value> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter_map(|request| serde_json::from_slice::<Value>(&request.body).ok())
        .filter(|body| body["query"].as_str().is_some_and(|query| query.contains(name)))
        .collect()
}

async fn problems(app: &TestApp) -> Vec<(Value, Value)> {
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    health["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|problem| (problem["kind"].clone(), problem["reason"].clone()))
        .collect()
}

#[tokio::test]
async fn units_are_cancelled_at_once_and_reach_shopify_once_even_after_a_lost_answer() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    let po = app.purchase_order(&app.vendor, "1001", "Ada Lovelace", &[3, 1]).await;
    let (first, second) = (po.items[0].id.get(), po.items[1].id.get());
    let path = format!("/purchase_orders/{}/cancellations.json", po.id);

    // Bad requests name their field and change nothing.
    let (status, refused) = app.call(Method::POST, &path, Some(cancel(&[(first, 4)], "out_of_stock"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(fields(&refused), ["items[0].quantity"]);
    let (status, refused) = app.call(Method::POST, &path, Some(cancel(&[(second, 1)], "bored"))).await;
    assert_eq!((status, fields(&refused)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["reason".to_owned()]));
    let (status, refused) =
        app.call(Method::POST, &path, Some(json!({"cancellation": {"items": [], "colour": 1}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field: {refused}");
    assert!(refused.to_string().contains("colour"), "{refused}");
    assert_eq!(app.run_exports().await, 0, "nothing was queued");

    // The first refund's answer is lost (Shopify may have made it); the retry asks first.
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(graphql_path()))
        .and(body_string_contains("ShipsyncCancelUnits"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&shopify)
        .await;
    let (status, created) = app.call(Method::POST, &path, Some(cancel(&[(first, 2)], "out_of_stock"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let cancellation = &created["cancellation"];
    assert_eq!(
        (cancellation["state"].clone(), cancellation["whole_order"].clone(), cancellation["requested_by"].clone()),
        (json!("pushing"), json!(false), json!("retailer"))
    );
    let id = cancellation["id"].as_u64().expect("an id");
    let (_, read) = app.call(Method::GET, &format!("/purchase_orders/{}.json", po.id), None).await;
    let item = &read["purchase_order"]["order_items"][0];
    assert_eq!(
        (item["quantity"].clone(), item["quantity_cancelled"].clone(), item["quantity_unfulfilled"].clone()),
        (json!(1), json!(2), json!(1)),
        "cancelled in the same write: {read}"
    );
    let (status, again) = app.call(Method::POST, &path, Some(cancel(&[(first, 2)], "out_of_stock"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the same units cannot be cancelled twice: {again}");

    Mock::given(method("POST"))
        .and(wiremock::matchers::path(graphql_path()))
        .and(body_string_contains("ShipsyncCancelState"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"order": {
            "id": "gid://shopify/Order/1001", "cancelledAt": null,
            "refunds": [{"id": "gid://shopify/Refund/77",
                "note": format!("Cancelled by shipsync (out_of_stock): supplier discontinued it [shipsync-cancellation-{id}]")}]
        }}})))
        .mount(&shopify)
        .await;
    assert_eq!(app.run_exports().await, 1, "delivered once; the lost answer leaves it on the queue");
    let (_, waiting) = app.call(Method::GET, &format!("/cancellations/{id}.json"), None).await;
    assert_eq!(waiting["cancellation"]["state"], json!("pushing"), "{waiting}");
    assert!(waiting["cancellation"]["channel_message"].as_str().is_some_and(|m| m.contains("502")), "{waiting}");
    // The queue's visibility timeout (1 s here) passes and the request comes back.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.run_exports().await, 1, "delivered again");
    let sent = operations(&shopify, "ShipsyncCancelUnits").await;
    assert_eq!(sent.len(), 1, "one refund call only: the retry adopted Shopify's refund");
    assert_eq!(
        sent[0]["variables"],
        json!({"key": format!("shipsync-cancellation-{id}"), "input": {
            "orderId": "gid://shopify/Order/1001",
            "note": format!("Cancelled by shipsync (out_of_stock): supplier discontinued it [shipsync-cancellation-{id}]"),
            "notify": true,
            "refundLineItems": [{"lineItemId": "gid://shopify/LineItem/0", "quantity": 2, "restockType": "CANCEL"}]
        }})
    );
    assert!(sent[0]["query"].as_str().is_some_and(|query| query.contains("@idempotent(key: $key)")));
    let (_, pushed) = app.call(Method::GET, &format!("/cancellations/{id}.json"), None).await;
    assert_eq!(pushed["cancellation"]["state"], json!("pushed"), "{pushed}");
    assert_eq!(pushed["cancellation"]["channel_ids"], json!(["gid://shopify/Refund/77"]));

    // Delivered again (at least once): nothing more reaches Shopify.
    let update = json!({"cancellation": {"retailer_id": po.retailer_id, "purchase_order_id": po.id, "id": id}});
    app.aws
        .sqs
        .send_message()
        .queue_url(&app.aws.planner.queue_url)
        .message_body(update.to_string())
        .send()
        .await
        .expect("queued again");
    app.run_exports().await;
    assert_eq!(operations(&shopify, "ShipsyncCancelUnits").await.len(), 1);
    assert!(problems(&app).await.is_empty(), "nothing for a person: {:?}", problems(&app).await);
}

#[tokio::test]
async fn a_vendor_asks_the_retailer_approves_and_shopify_cancels_the_whole_order() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    let po = app.purchase_order(&app.vendor, "1002", "Grace Hopper", &[2]).await;
    let item = po.items[0].id.get();
    let path = format!("/purchase_orders/{}/cancellations.json", po.id);
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(graphql_path()))
        .and(body_string_contains("ShipsyncCancelOrder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"orderCancel": {
            "job": {"id": "gid://shopify/Job/5"}, "orderCancelUserErrors": []}}})))
        .mount(&shopify)
        .await;

    let mut asked = cancel(&[(item, 2)], "out_of_stock");
    asked["cancellation"]["notify_customer"] = json!(false);
    let (status, refused) = app.call_as(Some(&app.vendor_user), Method::POST, &path, Some(asked)).await;
    assert_eq!((status, fields(&refused)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["notify_customer".to_owned()]));

    let (status, requested) =
        app.call_as(Some(&app.vendor_user), Method::POST, &path, Some(cancel(&[(item, 2)], "out_of_stock"))).await;
    assert_eq!(status, StatusCode::CREATED, "{requested}");
    assert_eq!(requested["cancellation"]["state"], json!("awaiting_approval"));
    assert_eq!(requested["cancellation"]["requested_by"], json!("vendor"));
    let id = requested["cancellation"]["id"].as_u64().expect("an id");
    let (_, read) = app.call(Method::GET, &format!("/purchase_orders/{}.json", po.id), None).await;
    assert_eq!(read["purchase_order"]["order_items"][0]["quantity_cancelled"], json!(0), "nothing until approved");
    let listed = problems(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, json!("cancellation_awaiting_approval"));
    assert_eq!(app.run_exports().await, 0, "nothing to push yet");

    let approve = format!("/cancellations/{id}/approve.json");
    let (status, _) = app.call_as(Some(&app.vendor_user), Method::POST, &approve, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the retailer approves");
    let (status, approved) = app.call(Method::POST, &approve, None).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(
        (approved["cancellation"]["state"].clone(), approved["cancellation"]["whole_order"].clone()),
        (json!("pushing"), json!(true))
    );
    let (status, twice) = app.call(Method::POST, &approve, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "approved once: {twice}");
    assert!(problems(&app).await.is_empty(), "the request left order health with its approval");

    app.run_exports().await;
    let sent = operations(&shopify, "ShipsyncCancelOrder").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["variables"],
        json!({"orderId": "gid://shopify/Order/1002", "reason": "INVENTORY", "notifyCustomer": true,
            "staffNote": format!("Cancelled by shipsync (out_of_stock): supplier discontinued it [shipsync-cancellation-{id}]")})
    );
    let (_, read) = app.call(Method::GET, &format!("/cancellations/{id}.json"), None).await;
    assert_eq!(read["cancellation"]["state"], json!("pushed"), "{read}");
    let (_, listed) = app.call_as(Some(&app.vendor_user), Method::GET, &path, None).await;
    assert_eq!(listed["cancellations"].as_array().map(Vec::len), Some(1), "{listed}");

    // A declined request changes nothing; a refusal by Shopify is listed for a person.
    let po = app.purchase_order(&app.vendor, "1003", "Grace Hopper", &[1]).await;
    let path = format!("/purchase_orders/{}/cancellations.json", po.id);
    let (_, requested) = app
        .call_as(Some(&app.vendor_user), Method::POST, &path, Some(cancel(&[(po.items[0].id.get(), 1)], "fraud")))
        .await;
    let declined_id = requested["cancellation"]["id"].as_u64().expect("an id");
    let (status, declined) = app.call(Method::POST, &format!("/cancellations/{declined_id}/decline.json"), None).await;
    assert_eq!((status, declined["cancellation"]["state"].clone()), (StatusCode::OK, json!("declined")));
    assert!(problems(&app).await.is_empty());
    let (_, read) = app.call(Method::GET, &format!("/purchase_orders/{}.json", po.id), None).await;
    assert_eq!(read["purchase_order"]["order_items"][0]["quantity_unfulfilled"], json!(1));
}

#[tokio::test]
async fn a_refusal_is_listed_and_pushed_again_on_request() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    let po = app.purchase_order(&app.vendor, "1004", "Alan Turing", &[2]).await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(graphql_path()))
        .and(body_string_contains("ShipsyncCancelUnits"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"refundCreate": {
            "refund": null, "userErrors": [{"field": ["refundLineItems"], "message": "Line item is fulfilled"}]}}})))
        .up_to_n_times(1)
        .mount(&shopify)
        .await;
    let path = format!("/purchase_orders/{}/cancellations.json", po.id);
    let (_, created) =
        app.call(Method::POST, &path, Some(cancel(&[(po.items[0].id.get(), 1)], "customer_requested"))).await;
    let id = created["cancellation"]["id"].as_u64().expect("an id");
    app.run_exports().await;
    let (_, read) = app.call(Method::GET, &format!("/cancellations/{id}.json"), None).await;
    assert_eq!(read["cancellation"]["state"], json!("push_failed"), "{read}");
    assert!(read["cancellation"]["channel_message"].as_str().is_some_and(|m| m.contains("Line item is fulfilled")));
    let listed = problems(&app).await;
    assert_eq!(listed.iter().map(|(kind, _)| kind.clone()).collect::<Vec<_>>(), [json!("cancellation_push_failed")]);

    Mock::given(method("POST"))
        .and(wiremock::matchers::path(graphql_path()))
        .and(body_string_contains("ShipsyncCancelState"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"order": {
            "id": "gid://shopify/Order/1004", "cancelledAt": null, "refunds": []}}})))
        .mount(&shopify)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(graphql_path()))
        .and(body_string_contains("ShipsyncCancelUnits"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"refundCreate": {
            "refund": {"id": "gid://shopify/Refund/80"}, "userErrors": []}}})))
        .mount(&shopify)
        .await;
    let (status, again) = app.call(Method::POST, &format!("/cancellations/{id}/push.json"), None).await;
    assert_eq!((status, again["cancellation"]["state"].clone()), (StatusCode::OK, json!("pushing")), "{again}");
    app.run_exports().await;
    let (_, read) = app.call(Method::GET, &format!("/cancellations/{id}.json"), None).await;
    assert_eq!(read["cancellation"]["channel_ids"], json!(["gid://shopify/Refund/80"]), "{read}");
    assert!(problems(&app).await.is_empty());
    assert_eq!(operations(&shopify, "ShipsyncCancelUnits").await.len(), 2, "refused once, made once");
}
