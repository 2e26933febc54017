//! Exporting shipments to Shopify: the plan (queue or schedule), the exporter, and a wiremock
//! Shopify that checks the exact GraphQL requests. Every shipment reaches Shopify once, at the
//! right time, with the right notification, and never twice.

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::{ExportSettings, ExportState, ExportWhen};
use shipsync_domain::ids::ShipmentId;
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::tenant::FeeSettings;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::{SHOPIFY_TOKEN, TestApp, errors, shipment_body};

const GRAPHQL_PATH: &str = "/admin/api/2025-10/graphql.json";

/// A Shopify that knows the orders it is told about.
struct FakeShopify {
    server: MockServer,
}

impl FakeShopify {
    async fn start() -> Self {
        Self { server: MockServer::start().await }
    }

    fn url(&self) -> String {
        self.server.uri()
    }

    /// Answers the order query for `po` with one open fulfillment order per location given
    /// (item index to location), and the fulfillments given.
    async fn order(&self, po: &PurchaseOrder, locations: &[u32], fulfillments: Value) {
        let mut by_location: std::collections::BTreeMap<u32, Vec<Value>> = Default::default();
        for (index, item) in po.items.iter().enumerate() {
            let location = locations.get(index).copied().unwrap_or(1);
            by_location.entry(location).or_default().push(json!({
                "id": format!("gid://shopify/FulfillmentOrderLineItem/{index}"),
                "remainingQuantity": item.quantity - item.quantity_fulfilled,
                "lineItem": { "id": format!("gid://shopify/LineItem/{index}") }
            }));
        }
        let fulfillment_orders: Vec<Value> = by_location
            .into_iter()
            .map(|(location, items)| {
                json!({
                    "id": format!("gid://shopify/FulfillmentOrder/{location}"),
                    "status": "OPEN",
                    "assignedLocation": { "location": { "id": format!("gid://shopify/Location/{location}") } },
                    "lineItems": { "nodes": items }
                })
            })
            .collect();
        let body = json!({ "data": { "order": {
            "id": format!("gid://shopify/Order/{}", po.public_reference),
            "fulfillments": fulfillments,
            "fulfillmentOrders": { "nodes": fulfillment_orders }
        }}});
        Mock::given(method("POST"))
            .and(path(GRAPHQL_PATH))
            .and(header("X-Shopify-Access-Token", SHOPIFY_TOKEN))
            .and(body_string_contains("ShipsyncOrder"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&self.server)
            .await;
    }

    /// Answers `fulfillmentCreate` with a new fulfillment.
    async fn accepts_fulfillments(&self) {
        Mock::given(method("POST"))
            .and(path(GRAPHQL_PATH))
            .and(header("X-Shopify-Access-Token", SHOPIFY_TOKEN))
            .and(body_string_contains("ShipsyncFulfillmentCreate"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": { "fulfillmentCreate": {
                "fulfillment": { "id": "gid://shopify/Fulfillment/900", "status": "SUCCESS" },
                "userErrors": []
            }}})))
            .mount(&self.server)
            .await;
    }

    /// The `fulfillmentCreate` requests Shopify received, as their `fulfillment` variable.
    async fn fulfillments_created(&self) -> Vec<Value> {
        self.graphql_requests("ShipsyncFulfillmentCreate")
            .await
            .into_iter()
            .map(|b| b["variables"]["fulfillment"].clone())
            .collect()
    }

    async fn graphql_requests(&self, operation: &str) -> Vec<Value> {
        let requests: Vec<Request> = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter_map(|request| serde_json::from_slice::<Value>(&request.body).ok())
            .filter(|body| body["query"].as_str().is_some_and(|q| q.contains(operation)))
            .collect()
    }
}

/// The `FulfillmentInput` shipsync must send for `quantities` of `po`'s items.
fn expected_input(quantities: &[(usize, u32)], numbers: &[&str], notify: bool) -> Value {
    json!({
        "lineItemsByFulfillmentOrder": [{
            "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1",
            "fulfillmentOrderLineItems": quantities.iter().map(|(index, quantity)| json!({
                "id": format!("gid://shopify/FulfillmentOrderLineItem/{index}"), "quantity": quantity
            })).collect::<Vec<_>>()
        }],
        // UPS is a standard carrier: its public tracking page goes with each number.
        "trackingInfo": {
            "company": "UPS",
            "numbers": numbers,
            "urls": numbers.iter().map(|n| format!("https://www.ups.com/track?tracknum={n}")).collect::<Vec<_>>(),
        },
        "notifyCustomer": notify,
    })
}

async fn app_with(settings: ExportSettings, shopify: &FakeShopify) -> TestApp {
    TestApp::with(FeeSettings::default(), settings, Some(&shopify.url())).await
}

async fn shipment_state(app: &TestApp, shipment: &Value) -> Value {
    let (status, json) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(status, StatusCode::OK);
    json["shipment"].clone()
}

#[tokio::test]
async fn a_delayed_export_is_scheduled_at_created_plus_delay_and_goes_out_then() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 30, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1001", "Bill Smith", &[2]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["1Z001"])).await;
    assert_eq!(shipment["export_state"], "scheduled");
    assert_eq!(shipment["export_due_at"], "2026-03-02T12:30:00.000Z");

    // One one-time schedule, named after the shipment and due time, as the issue asks.
    let schedules =
        app.aws.scheduler.list_schedules().group_name(&app.aws.planner.schedule_group).send().await.expect("list");
    assert_eq!(schedules.schedules().len(), 1);
    let name = schedules.schedules()[0].name().expect("name");
    assert_eq!(
        name,
        format!(
            "export-{}-{}",
            shipment["id"],
            chrono::DateTime::parse_from_rfc3339("2026-03-02T12:30:00Z").expect("t").timestamp()
        )
    );
    let schedule = app
        .aws
        .scheduler
        .get_schedule()
        .group_name(&app.aws.planner.schedule_group)
        .name(name)
        .send()
        .await
        .expect("get");
    assert_eq!(schedule.schedule_expression(), Some("at(2026-03-02T12:30:00)"));
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(schedule.flexible_time_window().map(|w| w.mode().as_str()), Some("OFF"));
    assert_eq!(schedule.action_after_completion().map(|a| a.as_str()), Some("DELETE"));
    let target = schedule.target().expect("target");
    assert_eq!(target.arn(), app.aws.planner.exporter_arn);
    assert!(target.dead_letter_config().is_some() && target.retry_policy().is_some());
    assert_eq!(
        serde_json::from_str::<Value>(target.input().unwrap_or_default()).expect("input"),
        json!({"shipment_id": shipment["id"], "reason": "scheduled"})
    );

    // Not before it is due.
    app.advance(Duration::minutes(29));
    app.run_exports().await;
    assert!(shopify.fulfillments_created().await.is_empty());
    app.advance(Duration::minutes(1));
    app.run_exports().await;
    assert_eq!(shopify.fulfillments_created().await, [expected_input(&[(0, 2)], &["1Z001"], true)]);
    let exported = shipment_state(&app, &shipment).await;
    assert_eq!(exported["export_state"], "exported");
    assert_eq!(exported["exported_channel_ids"], json!(["gid://shopify/Fulfillment/900"]));
    assert_eq!(exported["exported_at"], "2026-03-02T12:30:00.000Z");
    let order_query = &shopify.graphql_requests("ShipsyncOrder").await[0];
    assert_eq!(order_query["variables"], json!({"id": "gid://shopify/Order/1001"}));
    // The schedule was deleted after it fired; an exported shipment's tracking is now locked.
    let after =
        app.aws.scheduler.list_schedules().group_name(&app.aws.planner.schedule_group).send().await.expect("list");
    assert!(after.schedules().is_empty());
    let (status, json) = app
        .call(
            Method::PUT,
            &format!("/shipments/{}.json", shipment["id"]),
            Some(json!({"shipment": {"shipment_trackings_attributes": [{"tracking": "NEW"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        errors(&json),
        ["shipment_trackings_attributes is readonly: the shipment has been exported to its channel"]
    );
}

#[tokio::test]
async fn with_export_off_nothing_goes_out_until_the_manual_export() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app = app_with(
        ExportSettings { export_shipments: false, shipment_export_delay_minutes: 60, ..ExportSettings::default() },
        &shopify,
    )
    .await;
    let po = app.purchase_order(&app.vendor, "1002", "Ann", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z002"])).await;
    assert_eq!(shipment["export_state"], "manual");
    app.advance(Duration::days(2));
    assert_eq!(app.run_exports().await, 0);
    assert!(shopify.fulfillments_created().await.is_empty());

    let uri = format!("/shipments/{}/export.json", shipment["id"]);
    let (status, json) = app.call(Method::POST, &uri, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(json["shipment"]["export_state"], "scheduled");
    app.run_exports().await;
    assert_eq!(shopify.fulfillments_created().await.len(), 1);
    let (status, json) = app.call(Method::POST, &uri, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(errors(&json), ["export the shipment has already been exported to its channel"]);
}

#[tokio::test]
async fn the_notification_is_the_shipments_else_the_vendors_else_the_stores() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app = app_with(ExportSettings { send_tracking: false, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1003", "Notified", &[4]).await;
    shopify.order(&po, &[1], json!([])).await;
    let item = po.items[0].id.get();

    // The store says no.
    app.create_shipment(&po, shipment_body(&[(item, 1)], &["N1"])).await;
    app.run_exports().await;
    // The vendor says yes.
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/vendors/{}.json", app.vendor.id),
            Some(json!({"vendor": {"notify_customer": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The exporter's container sees a settings change within a minute (SETTINGS_TTL); the test
    // does not wait for it.
    app.table.forget_settings(app.retailer.id);
    app.create_shipment(&po, shipment_body(&[(item, 1)], &["N2"])).await;
    app.run_exports().await;
    // The shipment says no, over the vendor.
    let mut body = shipment_body(&[(item, 1)], &["N3"]);
    body["shipment"]["notify_customer"] = json!(false);
    let quiet = app.create_shipment(&po, body).await;
    assert_eq!(quiet["notify_customer"], false);
    app.run_exports().await;
    // The vendor follows the store again.
    app.call(
        Method::PUT,
        &format!("/vendors/{}.json", app.vendor.id),
        Some(json!({"vendor": {"notify_customer": null}})),
    )
    .await;
    app.table.forget_settings(app.retailer.id);
    let mut body = shipment_body(&[(item, 1)], &["N4"]);
    body["shipment"]["notify_customer"] = json!(true);
    app.create_shipment(&po, body).await;
    app.run_exports().await;

    let notified: Vec<(Value, Value)> = shopify
        .fulfillments_created()
        .await
        .iter()
        .map(|input| (input["trackingInfo"]["numbers"][0].clone(), input["notifyCustomer"].clone()))
        .collect();
    assert_eq!(
        notified,
        [
            (json!("N1"), json!(false)),
            (json!("N2"), json!(true)),
            (json!("N3"), json!(false)),
            (json!("N4"), json!(true))
        ]
    );
}

#[tokio::test]
async fn edits_made_during_the_delay_are_exported() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 15, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1004", "Edith", &[3]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["TYPO"])).await;
    app.advance(Duration::minutes(5));
    let fix = json!({"shipment": {
        "shipment_trackings_attributes": [{"id": shipment["shipment_trackings_attributes"][0]["id"], "tracking": "1Z-FIXED"}],
        "shipment_items_attributes": [{"id": shipment["shipment_items_attributes"][0]["id"], "quantity": 3}]
    }});
    let (status, json) = app.call(Method::PUT, &format!("/shipments/{}.json", shipment["id"]), Some(fix)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["shipment"]["export_due_at"], "2026-03-02T12:15:00.000Z", "an edit keeps the plan");
    app.advance(Duration::minutes(10));
    // The fake answers with the order as it was created (3 remaining), as Shopify would.
    app.run_exports().await;
    assert_eq!(shopify.fulfillments_created().await, [expected_input(&[(0, 3)], &["1Z-FIXED"], true)]);
}

#[tokio::test]
async fn the_same_message_delivered_twice_gives_one_fulfillment() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app = app_with(ExportSettings::default(), &shopify).await;
    let po = app.purchase_order(&app.vendor, "1005", "Twice", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z005"])).await;
    // SQS delivers at least once: the same request arrives again.
    let body = json!({"shipment_id": shipment["id"], "reason": "scheduled"}).to_string();
    for _ in 0..2 {
        app.aws
            .sqs
            .send_message()
            .queue_url(&app.aws.planner.queue_url)
            .message_body(&body)
            .send()
            .await
            .expect("send");
    }
    assert_eq!(app.run_exports().await, 3);
    assert_eq!(shopify.fulfillments_created().await.len(), 1);
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
}

#[tokio::test]
async fn a_crash_after_shopifys_success_then_a_retry_gives_one_fulfillment() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app = app_with(ExportSettings { export_shipments: false, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1006", "Crash", &[2]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["1Z006"])).await;
    // The first attempt claimed it and Shopify created the fulfillment; then the Lambda died
    // before writing the outcome: the claim is left behind and the message comes back.
    let id = ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id");
    let stored = app.table.shipment(id).await.expect("read").expect("shipment");
    app.table.update_shipment(&stored.claim_export(app.now()), None).await.expect("claim");
    shopify
        .order(
            &po,
            &[1],
            json!([{
                "id": "gid://shopify/Fulfillment/555",
                "trackingInfo": [{"number": "1Z006"}],
                "fulfillmentLineItems": {"nodes": [{"quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/0"}}]}
            }]),
        )
        .await;
    let body = json!({"shipment_id": id, "reason": "manual"}).to_string();
    app.aws.sqs.send_message().queue_url(&app.aws.planner.queue_url).message_body(&body).send().await.expect("send");

    // While the claim is fresh, the redelivery waits.
    app.run_exports().await;
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exporting");
    // Once it is stale, the retry asks Shopify first and adopts what it finds.
    app.advance(Duration::minutes(3));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.run_exports().await;
    assert!(shopify.fulfillments_created().await.is_empty(), "no second fulfillment");
    let state = shipment_state(&app, &shipment).await;
    assert_eq!(state["export_state"], "exported");
    assert_eq!(state["exported_channel_ids"], json!(["gid://shopify/Fulfillment/555"]));
}

#[tokio::test]
async fn after_a_lost_attempt_carrier_items_and_tracking_stay_locked_until_the_retry() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app = app_with(ExportSettings { export_shipments: false, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1016", "Lost", &[2]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z016"])).await;
    // A first attempt claimed it and reached Shopify, but its answer was lost (a timeout): the
    // exporter recorded a retry, and Shopify has a fulfillment with the shipment as it was.
    let id = ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id");
    let stored = app.table.shipment(id).await.expect("read").expect("shipment");
    let claimed = stored.claim_export(app.now());
    app.table.update_shipment(&claimed, None).await.expect("claim");
    app.table.update_shipment(&claimed.export_retry(app.now(), "timed out".into()), None).await.expect("retry");
    shopify
        .order(
            &po,
            &[1],
            json!([{
                "id": "gid://shopify/Fulfillment/616",
                "status": "SUCCESS",
                "trackingInfo": [{"number": "1Z016"}],
                "fulfillmentLineItems": {"nodes": [{"quantity": 1, "lineItem": {"id": "gid://shopify/LineItem/0"}}]}
            }]),
        )
        .await;
    let why = "is readonly: an export to its channel has started, and the channel may have it already";
    let tracking_id = &shipment["shipment_trackings_attributes"][0]["id"];
    let item_id = &shipment["shipment_items_attributes"][0]["id"];
    for (body, field) in [
        (
            json!({"shipment_trackings_attributes": [{"id": tracking_id, "tracking": "1Z999"}]}),
            "shipment_trackings_attributes",
        ),
        (json!({"shipment_items_attributes": [{"id": item_id, "quantity": 2}]}), "shipment_items_attributes"),
        (json!({"shipper_id": 2}), "shipper_id"),
    ] {
        let (status, json) =
            app.call(Method::PUT, &format!("/shipments/{id}.json"), Some(json!({ "shipment": body }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert_eq!(json["errors"], json!([format!("{field} {why}")]));
    }
    // The retry finds in Shopify exactly what the lost attempt sent, and adopts it.
    app.call(Method::POST, &format!("/shipments/{id}/export.json"), None).await;
    app.run_exports().await;
    assert!(shopify.fulfillments_created().await.is_empty(), "no second fulfillment");
    let state = shipment_state(&app, &shipment).await;
    assert_eq!(state["export_state"], "exported");
    assert_eq!(state["exported_channel_ids"], json!(["gid://shopify/Fulfillment/616"]));
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_wait_shopify_asks_for() {
    let shopify = FakeShopify::start().await;
    let app = app_with(ExportSettings::default(), &shopify).await;
    let po = app.purchase_order(&app.vendor, "1007", "Slow", &[2]).await;
    // First an HTTP 429 with Retry-After, then a GraphQL "Throttled", then success.
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .respond_with(
            ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_string("Exceeded 2 calls per second"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&shopify.server)
        .await;
    let throttled = json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": {"requestedQueryCost": 52, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 2, "restoreRate": 50.0}}}
    });
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(throttled))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&shopify.server)
        .await;
    shopify.order(&po, &[1], json!([])).await;
    shopify.accepts_fulfillments().await;
    let started = std::time::Instant::now();
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["1Z007"])).await;
    app.run_exports().await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "waited for Retry-After and the throttle");
    let requests = shopify.server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 5, "429, order, throttled create, order again, create");
    assert_eq!(shopify.fulfillments_created().await.len(), 2, "the throttled call and the one that succeeded");
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
}

#[tokio::test]
async fn user_errors_fail_the_export_with_shopifys_message_and_list_it() {
    let shopify = FakeShopify::start().await;
    let app = app_with(ExportSettings::default(), &shopify).await;
    let po = app.purchase_order(&app.vendor, "1008", "Refused", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    Mock::given(method("POST"))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"fulfillmentCreate": {
            "fulfillment": null,
            "userErrors": [{"field": ["fulfillment"], "message": "Fulfillment order 1 has an unfulfillable status= closed."}]
        }}})))
        .mount(&shopify.server)
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z008"])).await;
    app.run_exports().await;
    let state = shipment_state(&app, &shipment).await;
    assert_eq!(state["export_state"], "export_failed");
    assert_eq!(
        state["export_error"],
        "Shopify refused the fulfillment: Fulfillment order 1 has an unfulfillable status= closed."
    );
    let (_, failed) = app.call(Method::GET, "/exports/failed.json", None).await;
    assert_eq!(failed["metadata"]["total_count"], 1);
    assert_eq!(failed["shipments"][0]["id"], shipment["id"]);
    // Fixed at the channel, a person exports it again.
    let (status, _) = app.call(Method::POST, &format!("/shipments/{}/export.json", shipment["id"]), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, failed) = app.call(Method::GET, "/exports/failed.json", None).await;
    assert_eq!(failed["metadata"]["total_count"], 0);
}

#[tokio::test]
async fn an_order_shipped_whole_waits_for_its_last_shipment() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let settings = ExportSettings { export_when: ExportWhen::OrderFullyShipped, ..ExportSettings::default() };
    let app = app_with(settings, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1009", "Whole", &[1, 1]).await;
    shopify.order(&po, &[1, 2], json!([])).await;
    let first = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["W1"])).await;
    assert_eq!(first["export_state"], "waiting_for_order");
    app.run_exports().await;
    assert!(shopify.fulfillments_created().await.is_empty());
    let last = app.create_shipment(&po, shipment_body(&[(po.items[1].id.get(), 1)], &["W2"])).await;
    app.run_exports().await;
    let created = shopify.fulfillments_created().await;
    assert_eq!(created.len(), 2, "{created:?}");
    // Each package went from its own location's fulfillment order.
    let orders: Vec<Value> =
        created.iter().map(|c| c["lineItemsByFulfillmentOrder"][0]["fulfillmentOrderId"].clone()).collect();
    assert!(
        orders.contains(&json!("gid://shopify/FulfillmentOrder/1"))
            && orders.contains(&json!("gid://shopify/FulfillmentOrder/2"))
    );
    for shipment in [first, last] {
        assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
    }
}

#[tokio::test]
async fn an_edit_that_ships_the_rest_of_the_order_releases_its_waiting_shipments() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let settings = ExportSettings { export_when: ExportWhen::OrderFullyShipped, ..ExportSettings::default() };
    let app = app_with(settings, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1012", "Whole by edit", &[2]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["WE1"])).await;
    assert_eq!(shipment["export_state"], "waiting_for_order");
    // The vendor corrects the quantity: the whole order has now shipped, in this one shipment.
    let item = shipment["shipment_items_attributes"][0]["id"].clone();
    let edit = json!({"shipment": {"shipment_items_attributes": [{"id": item, "quantity": 2}]}});
    let (status, edited) = app.call(Method::PUT, &format!("/shipments/{}.json", shipment["id"]), Some(edit)).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    app.run_exports().await;
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
    assert_eq!(shopify.fulfillments_created().await.len(), 1);
}

#[tokio::test]
async fn one_shipment_from_two_locations_becomes_two_fulfillments() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app = app_with(ExportSettings::default(), &shopify).await;
    let po = app.purchase_order(&app.vendor, "1010", "Split", &[1, 2]).await;
    shopify.order(&po, &[1, 2], json!([])).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1), (po.items[1].id.get(), 2)], &["L1", "L2"]))
        .await;
    app.run_exports().await;
    let created = shopify.fulfillments_created().await;
    assert_eq!(created.len(), 2);
    assert_eq!(
        created[0]["lineItemsByFulfillmentOrder"],
        json!([{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1", "fulfillmentOrderLineItems": [{"id": "gid://shopify/FulfillmentOrderLineItem/0", "quantity": 1}]}])
    );
    assert_eq!(
        created[1]["lineItemsByFulfillmentOrder"],
        json!([{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/2", "fulfillmentOrderLineItems": [{"id": "gid://shopify/FulfillmentOrderLineItem/1", "quantity": 2}]}])
    );
    assert_eq!(
        created[0]["trackingInfo"],
        json!({"company": "UPS", "numbers": ["L1", "L2"],
               "urls": ["https://www.ups.com/track?tracknum=L1", "https://www.ups.com/track?tracknum=L2"]})
    );
}

#[tokio::test]
async fn an_export_that_keeps_failing_is_dead_lettered_and_shown_failed() {
    let shopify = FakeShopify::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream connect error"))
        .mount(&shopify.server)
        .await;
    let app = app_with(ExportSettings::default(), &shopify).await;
    let po = app.purchase_order(&app.vendor, "1011", "Down", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z011"])).await;
    for _ in 0..shipsync_tools::local_aws::MAX_RECEIVES {
        app.run_exports().await;
        let state = shipment_state(&app, &shipment).await;
        if state["export_state"] == "export_failed" {
            break;
        }
        assert_eq!(state["export_state"], "scheduled");
        assert!(state["export_error"].as_str().is_some_and(|e| e.contains("503")), "{state}");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let state = shipment_state(&app, &shipment).await;
    assert_eq!(state["export_state"], "export_failed");
    assert!(state["export_error"].as_str().is_some_and(|e| e.starts_with("gave up after 5 deliveries")), "{state}");
    // The message itself rests in the dead-letter queue.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.run_exports().await;
    let dead = app.aws.sqs.receive_message().queue_url(&app.aws.export_dead_letter_url).send().await.expect("receive");
    assert_eq!(dead.messages().len(), 1);
    let (_, failed) = app.call(Method::GET, "/exports/failed.json", None).await;
    assert_eq!(failed["metadata"]["total_count"], 1);
}

#[tokio::test]
async fn aws_calls_from_creation_to_export() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    // A first shipment warms the container up, as a deployed one would be.
    let warm_up = app.purchase_order(&app.vendor, "1011", "Warm", &[1]).await;
    shopify.order(&warm_up, &[1], json!([])).await;
    app.create_shipment(&warm_up, shipment_body(&[(warm_up.items[0].id.get(), 1)], &["1Z011"])).await;
    app.advance(Duration::minutes(5));
    app.run_exports().await;
    let po = app.purchase_order(&app.vendor, "1012", "Counted", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let (dynamodb_before, planner_before) = (app.table.calls_made(), app.planner.calls_made());
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z012"])).await;
    let create_dynamodb = app.table.calls_made() - dynamodb_before;
    let create_planner = app.planner.calls_made() - planner_before;
    app.advance(Duration::minutes(5));
    let before_export = app.table.calls_made();
    app.run_exports().await;
    let export_dynamodb = app.table.calls_made() - before_export;
    println!(
        "AWS calls for one shipment, created with a delay and exported (warm): create {create_dynamodb} DynamoDB + \
         {create_planner} Scheduler; exporter {export_dynamodb} DynamoDB; delivery by AWS: 1 schedule fired, \
         1 SQS message received and deleted"
    );
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
    // The order and the transaction (the API user, retailer, carriers and store are remembered,
    // the id comes from the container's block), then the schedule.
    assert_eq!((create_dynamodb, create_planner), (2, 1));
    // Shipment, claim, outcome: the store, vendor and opened credentials are remembered, and the
    // order's channel ids travel on the shipment. Six AWS calls from creation to export.
    assert_eq!(export_dynamodb, 3);
    let state =
        app.table.shipment(ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id")).await.expect("read");
    assert!(matches!(state.map(|s| s.export.state), Some(ExportState::Exported { .. })));
}

#[tokio::test]
async fn a_shipment_whose_export_cannot_be_planned_is_not_created() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "1013", "Unplanned", &[1]).await;
    let mut config = app.aws.planner.clone();
    config.queue_url = format!("{}/123456789012/no-such-queue", crate::harness::moto().endpoint);
    let broken = shipsync_planner::ExportPlanner::new(app.aws.sqs.clone(), app.aws.scheduler.clone(), config);
    let api = shipments_api::ShipmentsApi::new(app.table.clone(), broken);
    let body = shipment_body(&[(po.items[0].id.get(), 1)], &["1Z013"]).to_string();
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", app.retailer_user.key, app.retailer_user.password));
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/purchase_orders/{}/shipments.json", po.id))
        .header("authorization", format!("Basic {token}"))
        .body(bytes::Bytes::from(body))
        .expect("request");
    let response = api.handle(request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", response.body());
    // Nothing was written: a retry starts from scratch.
    let (_, list) = app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 0);
    assert_eq!(app.table.purchase_order(po.id).await.expect("read").expect("po").items[0].quantity_fulfilled, 0);
}

/// A warm container remembers a store's opened credentials for a minute. A token rotated in the
/// meantime (by the API in another container) must not fail an export for good: a refusal is
/// checked against the store's current credentials, and the export goes out once with them.
#[tokio::test]
async fn an_export_refused_with_remembered_credentials_goes_out_with_the_current_ones() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    // The revoked token is refused as Shopify refuses one.
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .and(header("X-Shopify-Access-Token", "shpat_revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        ))
        .mount(&shopify.server)
        .await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1301", "Rotated", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let token = |value: &str| {
        shipsync_domain::secrets::ChannelCredentials([("access_token".to_owned(), value.to_owned())].into())
    };
    // This container opened the old token...
    app.table.save_credentials(app.retailer.id, app.shop.id, &token("shpat_revoked")).await.expect("save");
    app.table.credentials(app.retailer.id, app.shop.id).await.expect("open");
    // ...and another container (its own memory) rotated it since.
    let elsewhere = app.table.clone().with_settings_ttl(std::time::Duration::ZERO);
    elsewhere.save_credentials(app.retailer.id, app.shop.id, &token(SHOPIFY_TOKEN)).await.expect("rotate");

    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z1301"])).await;
    app.advance(Duration::minutes(5));
    app.run_exports().await;
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
    assert_eq!(shopify.fulfillments_created().await.len(), 1, "once, with the current token");
}

/// A refusal the current settings confirm is recorded as before (one read of them more).
#[tokio::test]
async fn an_export_refused_with_the_current_credentials_too_is_failed_once() {
    let shopify = FakeShopify::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"errors": "[API] Invalid API key"})))
        .mount(&shopify.server)
        .await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1302", "Refused", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z1302"])).await;
    app.advance(Duration::minutes(5));
    app.run_exports().await;
    let state = shipment_state(&app, &shipment).await;
    assert_eq!(state["export_state"], "export_failed", "{state}");
    assert!(state["export_error"].as_str().is_some_and(|e| e.contains("401")), "{state}");
    let calls = shopify.server.received_requests().await.unwrap_or_default().len();
    assert_eq!(calls, 1, "the same settings are not tried twice");
}

/// The export queue's messages visible now (received, then left to come back at once).
async fn queued_exports(app: &TestApp) -> Vec<Value> {
    let received = app
        .aws
        .sqs
        .receive_message()
        .queue_url(&app.aws.planner.queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    received.messages().iter().map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("json")).collect()
}

#[tokio::test]
async fn a_due_schedule_invokes_the_exporter_itself_and_queues_nothing() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1031", "Direct", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z031"])).await;
    app.advance(Duration::minutes(5));
    assert_eq!(app.runner.fire_due_schedules(app.now()).await.expect("fire"), 1);
    assert_eq!(shopify.fulfillments_created().await.len(), 1);
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
    assert!(queued_exports(&app).await.is_empty(), "nothing went through the queue");
    let schedules =
        app.aws.scheduler.list_schedules().group_name(&app.aws.planner.schedule_group).send().await.expect("list");
    assert!(schedules.schedules().is_empty(), "the fired schedule is gone");
}

#[tokio::test]
async fn a_schedule_delivered_twice_gives_one_fulfillment() {
    let shopify = FakeShopify::start().await;
    shopify.accepts_fulfillments().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1032", "Twice Direct", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z032"])).await;
    app.advance(Duration::minutes(5));
    // Lambda's asynchronous invocations are at least once: the same request comes again.
    let request: shipsync_domain::export::ExportRequest =
        serde_json::from_value(json!({"shipment_id": shipment["id"], "reason": "scheduled"})).expect("request");
    app.runner.exporter().handle_scheduled(request).await.expect("first");
    app.runner.exporter().handle_scheduled(request).await.expect("second");
    assert_eq!(app.run_exports().await, 1, "the schedule itself fires too");
    assert_eq!(shopify.fulfillments_created().await.len(), 1);
    assert!(queued_exports(&app).await.is_empty());
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
}

#[tokio::test]
async fn a_scheduled_export_the_channel_throttles_is_queued_with_the_wait_it_asked_for() {
    let shopify = FakeShopify::start().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1033", "Throttled Direct", &[1]).await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        // Longer than the exporter waits in process (`IN_PROCESS_WAIT`), so the queue holds it.
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "11").set_body_string("Exceeded"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&shopify.server)
        .await;
    shopify.order(&po, &[1], json!([])).await;
    shopify.accepts_fulfillments().await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z033"])).await;
    app.advance(Duration::minutes(5));
    assert_eq!(app.runner.fire_due_schedules(app.now()).await.expect("fire"), 1, "the invocation succeeds");
    assert!(shopify.fulfillments_created().await.is_empty());
    // In the queue, held for the 11 seconds Shopify asked for.
    assert!(queued_exports(&app).await.is_empty(), "not visible before the wait");
    tokio::time::sleep(std::time::Duration::from_millis(11_500)).await;
    assert_eq!(queued_exports(&app).await, [json!({"shipment_id": shipment["id"], "reason": "scheduled"})]);
    app.advance(Duration::seconds(12));
    assert_eq!(app.run_exports().await, 1);
    assert_eq!(shopify.fulfillments_created().await.len(), 1);
    assert_eq!(shipment_state(&app, &shipment).await["export_state"], "exported");
}

#[tokio::test]
async fn a_scheduled_export_that_cannot_be_queued_for_its_retry_fails_the_invocation() {
    let shopify = FakeShopify::start().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 5, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1034", "Nowhere To Go", &[1]).await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("unavailable"))
        .mount(&shopify.server)
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z034"])).await;
    app.advance(Duration::minutes(5));
    let mut config = app.aws.exporter_config();
    config.queue_url = format!("{}-gone", app.aws.planner.queue_url);
    let exporter = exporter::Exporter::new(
        app.table.clone(),
        app.aws.sqs.clone(),
        shipsync_channels::http_client_builder().expect("TLS").build().expect("client"),
        &config,
    )
    .with_endpoints(shipsync_channels::ChannelEndpoints::honouring_store_overrides())
    .with_clock(app.test_clock());
    let request: shipsync_domain::export::ExportRequest =
        serde_json::from_value(json!({"shipment_id": shipment["id"], "reason": "scheduled"})).expect("request");
    let lost = exporter.handle_scheduled(request).await.expect_err("no queue to retry through");
    assert!(lost.to_string().contains(&format!("export of shipment {}", shipment["id"])), "{lost}");
    // Lambda invokes it again; the shipment still waits for an export, never lost.
    assert_ne!(shipment_state(&app, &shipment).await["export_state"], "exported");
}

/// A shipment's history through a failing and a successful attempt: each change and each
/// channel call's outcome, as `GET /shipments/{id}/events.json` shows them.
#[tokio::test]
async fn a_shipments_history_shows_its_plan_each_attempt_and_the_channels_answer() {
    let shopify = FakeShopify::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL_PATH))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&shopify.server)
        .await;
    shopify.accepts_fulfillments().await;
    let app =
        app_with(ExportSettings { shipment_export_delay_minutes: 30, ..ExportSettings::default() }, &shopify).await;
    let po = app.purchase_order(&app.vendor, "1001", "Ada Lovelace", &[1]).await;
    shopify.order(&po, &[1], json!([])).await;
    let body = shipment_body(&[(po.items[0].id.get(), 1)], &["1ZHIST0001"]);
    let (status, created) = app
        .call_as(
            Some(&app.vendor_user),
            Method::POST,
            &format!("/purchase_orders/{}/shipments.json", po.id),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created = created["shipment"].clone();
    let events_uri = format!("/shipments/{}/events.json", created["id"]);
    let (status, first) = app.call_as(Some(&app.vendor_user), Method::GET, &events_uri, None).await;
    assert_eq!(status, StatusCode::OK, "its vendor reads it too: {first}");
    assert_eq!(first["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (
            first["events"][0]["event"].clone(),
            first["events"][0]["by"].clone(),
            first["events"][0]["export_state"].clone()
        ),
        (json!("created"), json!("vendor_user"), json!("scheduled"))
    );
    assert_eq!(first["events"][0]["due_at"], created["export_due_at"], "the plan's due time");

    // Exported now at the retailer's request: the first call fails, the retry gets through.
    let (status, _) = app.call(Method::POST, &format!("/shipments/{}/export.json", created["id"]), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.run_exports().await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    app.run_exports().await;
    let (_, history) = app.call(Method::GET, &events_uri, None).await;
    let steps: Vec<(String, String, String)> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            let text = |field: &str| event[field].as_str().unwrap_or_default().to_owned();
            (text("event"), text("by"), text("export_state"))
        })
        .collect();
    let step = |event: &str, by: &str, state: &str| (event.to_owned(), by.to_owned(), state.to_owned());
    assert_eq!(
        steps,
        [
            step("created", "vendor_user", "scheduled"),
            step("planned", "retailer_user", "scheduled"),
            step("claimed", "exporter", "exporting"),
            step("call_failed", "exporter", "exporting"),
            step("call_failed", "exporter", "exporting"),
            step("retried", "exporter", "scheduled"),
            step("claimed", "exporter", "exporting"),
            step("exported", "exporter", "exported"),
        ],
        "{history}"
    );
    let events = history["events"].as_array().expect("events");
    assert!(events[5]["detail"].as_str().is_some_and(|detail| detail.contains("503")), "{history}");
    assert_eq!(events[5]["due_at"], events[5]["at"], "due again at once: {history}");
    assert_eq!(events[7]["detail"], json!("gid://shopify/Fulfillment/900"));
    // The history is written with each change: the shipment read now carries the last one.
    assert_eq!(shipment_state(&app, &created).await["export_state"], json!("exported"));
}
