//! The order poller: orders changed since the cursor (less an overlap) are fetched page by page
//! from a wiremock Shopify and fed to the same processor as webhooks.

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::tenant::FeeSettings;
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::TestApp;

fn order(id: u64, number: &str, updated_at: &str, sku: &str) -> Value {
    json!({
        "id": format!("gid://shopify/Order/{id}"), "name": format!("#{number}"), "updatedAt": updated_at, "cancelledAt": null,
        "shippingAddress": {"name": "Polly Poll"}, "customer": {"firstName": "Polly", "lastName": "Poll"},
        "lineItems": {"nodes": [{"id": format!("gid://shopify/LineItem/{id}1"), "sku": sku, "name": sku, "quantity": 2, "currentQuantity": 2,
            "originalUnitPriceSet": {"shopMoney": {"amount": "10.0"}}}]}
    })
}

fn page(orders: Vec<Value>, next: Option<&str>) -> Value {
    json!({"data": {"orders": {"pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}, "nodes": orders}}})
}

async fn graphql_variables(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|body| body["variables"].clone())
        .collect()
}

#[tokio::test]
async fn orders_changed_since_the_cursor_are_fetched_and_processed() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    app.call(
        Method::POST,
        "/products.json",
        Some(json!({"product": {"sku": "POLL-1", "vendor_id": app.vendor.id.get()}})),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/admin/api/2025-10/graphql.json"))
        .and(body_string_contains("ShipsyncOrders"))
        .and(body_partial_json(json!({"variables": {"after": "page-2"}})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![order(2, "2002", "2026-03-02T11:50:00Z", "POLL-1")], None)),
        )
        .with_priority(1)
        .mount(&shopify)
        .await;
    Mock::given(method("POST"))
        .and(path("/admin/api/2025-10/graphql.json"))
        .and(body_string_contains("ShipsyncOrders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![order(1, "2001", "2026-03-02T11:40:00Z", "POLL-1")], Some("page-2"))),
        )
        .with_priority(2)
        .mount(&shopify)
        .await;

    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued), (1, 2), "{report:?}");
    app.run_orders().await;
    for number in ["2001", "2002"] {
        let po = app
            .table
            .purchase_order_by_number(app.retailer.id, &format!("S{}-{number}-V{}", app.shop.id, app.vendor.id))
            .await
            .expect("read");
        assert_eq!(po.map(|po| po.items[0].quantity), Some(2), "{number}");
    }
    let first = graphql_variables(&shopify).await;
    assert_eq!(first[0], json!({"query": "updated_at:>='2026-03-01T12:00:00Z'", "after": null}));
    assert_eq!(first[1]["after"], "page-2");

    // Not again before the store's interval (10 minutes by default) has passed.
    app.advance(Duration::minutes(5));
    assert_eq!(app.poller.tick().await.expect("tick").stores_polled, 0);
    // Then from the newest change seen, less the overlap; orders seen before change nothing.
    app.advance(Duration::minutes(5));
    let report = app.poller.tick().await.expect("tick");
    assert_eq!(report.stores_polled, 1);
    let variables = graphql_variables(&shopify).await;
    assert_eq!(variables[2], json!({"query": "updated_at:>='2026-03-02T11:45:00Z'", "after": null}));
    app.run_orders().await;
    let (_, list) = app.call(Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 2);

    // Polling off: the store is left alone.
    app.call(
        Method::PUT,
        &format!("/stores/{}.json", app.shop.id),
        Some(json!({"store": {"poll_orders_every_minutes": 0}})),
    )
    .await;
    // The poller's container sees a settings change within a minute (SETTINGS_TTL); the test
    // does not wait for it.
    app.table.forget_settings(app.retailer.id);
    app.advance(Duration::hours(1));
    assert_eq!(app.poller.tick().await.expect("tick").stores_polled, 0);
}

/// Lines `from..to` of polled order `id`, as GraphQL nodes.
fn line_nodes(id: u64, from: u64, to: u64) -> Vec<Value> {
    (from..to)
        .map(|n| {
            json!({"id": format!("gid://shopify/LineItem/{id}{n:04}"), "sku": "POLL-1", "name": format!("Line {n}"),
            "quantity": 1, "currentQuantity": 1, "originalUnitPriceSet": {"shopMoney": {"amount": "1.0"}}})
        })
        .collect()
}

fn lines_page(nodes: Vec<Value>, next: Option<&str>) -> Value {
    json!({"pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}, "nodes": nodes})
}

#[tokio::test]
async fn an_order_of_more_than_100_lines_is_read_to_its_last_line() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    app.call(
        Method::POST,
        "/products.json",
        Some(json!({"product": {"sku": "POLL-1", "vendor_id": app.vendor.id.get()}})),
    )
    .await;
    let mut long = order(9, "2009", "2026-03-02T11:40:00Z", "POLL-1");
    long["lineItems"] = lines_page(line_nodes(9, 0, 100), Some("lines-100"));
    Mock::given(body_string_contains("ShipsyncOrders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![long], None)))
        .expect(1)
        .mount(&shopify)
        .await;
    for (after, from, to, next) in [("lines-100", 100, 200, Some("lines-200")), ("lines-200", 200, 230, None)] {
        Mock::given(body_string_contains("ShipsyncOrderLines"))
            .and(body_partial_json(json!({"variables": {"id": "gid://shopify/Order/9", "after": after}})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    json!({"data": {"order": {"lineItems": lines_page(line_nodes(9, from, to), next)}}}),
                ),
            )
            .expect(1)
            .mount(&shopify)
            .await;
    }
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.orders_queued, report.failures.len()), (1, 0), "{report:?}");
    app.run_orders().await;
    let po = app
        .table
        .purchase_order_by_number(app.retailer.id, &format!("S{}-2009-V{}", app.shop.id, app.vendor.id))
        .await
        .expect("read")
        .expect("purchase order");
    assert_eq!(po.items.len(), 230, "every line, none cancelled");
    assert!(po.items.iter().all(|item| item.quantity == 1 && item.quantity_cancelled == 0));
}

#[tokio::test]
async fn one_stores_failure_leaves_the_others_polling_and_is_listed_until_it_recovers() {
    use shipsync_domain::tenant::{ChannelConnection, ChannelKind};
    let good = MockServer::start().await;
    let failing = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&good.uri())).await;
    Mock::given(body_string_contains("ShipsyncOrders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![order(1, "3001", "2026-03-02T11:40:00Z", "POLL-1")], None)),
        )
        .mount(&good)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&failing).await;
    let mut made = Vec::new();
    for (name, uri) in [("down", failing.uri()), ("unreadable", good.uri())] {
        let connection = ChannelConnection {
            shop_domain: Some(format!("{name}.myshopify.com")),
            base_url: Some(uri),
            ..ChannelConnection::default()
        };
        made.push(
            shipsync_tools::provision::create_store(
                &app.table,
                app.retailer.id,
                name,
                ChannelKind::Shopify,
                ExportSettings::default(),
                connection,
            )
            .await
            .expect("store"),
        );
    }
    let (down, unreadable) = (made[0].clone(), made[1].clone());
    for shop in [&down, &unreadable] {
        let credentials = [("access_token".to_owned(), "shpat_other".to_owned())].into_iter().collect();
        app.table
            .save_credentials(app.retailer.id, shop.id, &shipsync_domain::secrets::ChannelCredentials(credentials))
            .await
            .expect("credentials");
    }
    // A store record that no longer reads (a manual edit, a bug).
    app.table
        .client()
        .put_item()
        .table_name(app.table.table_name())
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("RETAILER#{}", app.retailer.id)))
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("STORE#{}", unreadable.id)))
        .item("data", aws_sdk_dynamodb::types::AttributeValue::S("garbage".into()))
        .send()
        .await
        .expect("corrupt the store");

    let report = app.poller.tick().await.expect("a failing store does not fail the tick");
    assert_eq!((report.stores_polled, report.orders_queued), (1, 1), "{report:?}");
    assert_eq!(report.failures.len(), 2, "{report:?}");
    let cursor = app.table.poll_state(app.shop.id).await.expect("state").cursor;
    assert_eq!(cursor, Some("2026-03-02T11:40:00Z".parse().expect("time")), "the good store advanced");
    assert_eq!(app.table.poll_state(down.id).await.expect("state").cursor, None, "the failing one did not");
    let failures = |health: &Value| -> Vec<u64> {
        health["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["kind"] == "poll_failed")
            .filter_map(|p| p["store_id"].as_u64())
            .collect()
    };
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    let mut listed = failures(&health);
    listed.sort_unstable();
    assert_eq!(listed, vec![down.id.get(), unreadable.id.get()], "{health}");
    let since = health["problems"][0]["since"].clone();

    // Still down a minute later: listed once, since the first failure.
    app.advance(Duration::minutes(1));
    assert_eq!(app.poller.tick().await.expect("tick").failures.len(), 2);
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(failures(&health).len(), 2);
    assert_eq!(health["problems"][0]["since"], since);

    // The shop comes back: it is polled and its problem cleared; the unreadable one stays listed.
    failing.reset().await;
    Mock::given(body_string_contains("ShipsyncOrders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], None)))
        .mount(&failing)
        .await;
    app.advance(Duration::minutes(1));
    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.failures.len()), (1, 1), "{report:?}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(failures(&health), vec![unreadable.id.get()], "{health}");
}

/// A polling state that does not read is listed, and left as it is: a failure never writes a
/// fresh state over one it could not read (that would throw away the cursor).
#[tokio::test]
async fn an_unreadable_polling_state_is_listed_and_never_written_over() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::new().await;
    let key = |name: &str, value: String| (name.to_owned(), AttributeValue::S(value));
    let corrupt: std::collections::HashMap<String, AttributeValue> =
        [key("pk", format!("POLLSTATE#{}", app.shop.id)), key("sk", "STATE".into()), key("data", "garbage".into())]
            .into();
    let table = app.table.table_name();
    app.table.client().put_item().table_name(table).set_item(Some(corrupt.clone())).send().await.expect("corrupt");

    let report = app.poller.tick().await.expect("a failing store does not fail the tick");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert!(health["problems"].as_array().is_some_and(|p| p.iter().any(|p| p["kind"] == "poll_failed")), "{health}");
    let kept = app
        .table
        .client()
        .get_item()
        .table_name(table)
        .set_key(Some(
            corrupt.iter().filter(|(name, _)| *name != "data").map(|(k, v)| (k.clone(), v.clone())).collect(),
        ))
        .send()
        .await
        .expect("get")
        .item;
    assert_eq!(kept, Some(corrupt), "the unreadable state is left for a person, not replaced");
}

/// Amazon's `ORDER_CHANGE` notification, as Amazon puts it on the deployment's queue.
fn order_change(notification_id: &str, seller: &str, order_id: &str) -> Value {
    json!({
        "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
        "EventTime": "2026-03-02T11:58:00.000Z",
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel", "SellerId": seller, "AmazonOrderId": order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": "2026-03-02T11:57:00.000Z", "ChangeReason": "OrderStatusChange"},
            "Summary": {"MarketplaceId": "ATVPDKIKX0DER", "OrderStatus": "Unshipped", "FulfillmentType": "MFN"}
        }},
        "NotificationMetadata": {"SubscriptionId": "sub-1", "PublishTime": "2026-03-02T11:58:01.000Z",
                                 "NotificationId": notification_id}
    })
}

/// A batch as the Lambda receives it from the notification queue.
fn sqs_batch(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            json!({"messageId": format!("m-{index}"), "receiptHandle": "r", "body": body.to_string(),
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:amazon", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn an_amazon_notification_reads_the_order_it_names_once_per_delivery_and_routes_by_seller() {
    let app = TestApp::new().await;
    let amazon = MockServer::start().await;
    let product = json!({"product": {"sku": "AMZ-1", "vendor_id": app.vendor.id.get()}});
    assert_eq!(app.call(Method::POST, "/products.json", Some(product)).await.0, StatusCode::CREATED);
    // An Amazon store of seller A3TH9S8BH6GOGM, set up as an admin (its fake's address is a base_url).
    let connection = shipsync_domain::tenant::ChannelConnection {
        base_url: Some(amazon.uri()),
        marketplace_id: Some("ATVPDKIKX0DER".into()),
        seller_id: Some("A3TH9S8BH6GOGM".into()),
        ..Default::default()
    };
    let store = shipsync_tools::provision::create_store(
        &app.table,
        app.retailer.id,
        "Amazon",
        shipsync_domain::tenant::ChannelKind::Amazon,
        shipsync_domain::export::ExportSettings::default(),
        connection,
    )
    .await
    .expect("an Amazon store");
    let credentials = std::collections::BTreeMap::from(
        [("lwa_client_id", "amzn-id"), ("lwa_client_secret", "amzn-secret"), ("refresh_token", "Atzr")]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    app.table
        .save_credentials(app.retailer.id, store.id, &shipsync_domain::secrets::ChannelCredentials(credentials))
        .await
        .expect("credentials");
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "Atza|1", "expires_in": 3600})))
        .mount(&amazon)
        .await;
    let order = json!({"orderId": "111-0000001-0000001", "createdTime": "2026-03-02T11:00:00Z",
        "lastUpdatedTime": "2026-03-02T11:57:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "recipient": {"deliveryAddress": {"name": "Jane Roe"}},
        "orderItems": [{"orderItemId": "OI-1", "quantityOrdered": 2,
                        "product": {"asin": "B0", "sellerSku": "AMZ-1", "title": "Amazon item"}}]});
    Mock::given(method("GET"))
        .and(path("/orders/2026-01-01/orders/111-0000001-0000001"))
        .and(header("x-amz-access-token", "Atza|1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "order": order })))
        .expect(2)
        .mount(&amazon)
        .await;

    // The same notification delivered twice, and one for a seller no store has.
    let known = order_change("n-1", "A3TH9S8BH6GOGM", "111-0000001-0000001");
    let stranger = order_change("n-2", "ANOTHERSELLER", "111-0000002-0000002");
    let batch = sqs_batch(&[known.clone(), known, stranger]);
    let response = app.poller.handle(batch).await.expect("a batch");
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(app.run_orders().await, 2, "each delivery queues the order it read");
    let orders = app.call(Method::GET, "/purchase_orders.json", None).await.1;
    let amazon_orders: Vec<&Value> = orders["purchase_orders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|po| po["channel_order_id"] == "111-0000001-0000001")
        .collect();
    assert_eq!(amazon_orders.len(), 1, "one purchase order however often it is notified: {orders}");

    // A notification that cannot be read comes back (and, after its last try, rests in the
    // alarmed dead-letter queue).
    let broken = sqs_batch(&[json!({"NotificationType": "ORDER_CHANGE", "Payload": {}})]);
    let response = app.poller.handle(broken).await.expect("a batch");
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-0", "{response}");

    // Another retailer cannot claim the seller for its own store.
    let other = app.another_tenant().await;
    let claim = shipsync_domain::tenant::ChannelConnection {
        marketplace_id: Some("ATVPDKIKX0DER".into()),
        seller_id: Some("A3TH9S8BH6GOGM".into()),
        ..Default::default()
    };
    let taken = shipsync_tools::provision::create_store(
        &other.table,
        other.retailer.id,
        "Not mine",
        shipsync_domain::tenant::ChannelKind::Amazon,
        shipsync_domain::export::ExportSettings::default(),
        claim,
    )
    .await;
    assert!(taken.is_err(), "the seller is another store's: {taken:?}");

    // Once the store names another seller, the first is free for the store that does.
    let mut moved = store.clone();
    moved.connection.seller_id = Some("ANEWSELLER1".into());
    app.table.save_channel_store(&moved).await.expect("the store moves to another seller");
    let freed = shipsync_tools::provision::create_store(
        &other.table,
        other.retailer.id,
        "Mine now",
        shipsync_domain::tenant::ChannelKind::Amazon,
        shipsync_domain::export::ExportSettings::default(),
        shipsync_domain::tenant::ChannelConnection {
            marketplace_id: Some("ATVPDKIKX0DER".into()),
            seller_id: Some("A3TH9S8BH6GOGM".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(freed.is_ok(), "the seller was freed: {freed:?}");
}
