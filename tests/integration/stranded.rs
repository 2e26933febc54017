//! Nothing stranded: the flow is killed at each step (after planning, after the shipment write,
//! after the claim, after the channel's success before the outcome is recorded), every message
//! that would carry it on is lost, and the sweeper still brings every shipment to its channel
//! exactly once. Also: the exporter's time budget, queue-before-write for the manual export and
//! the IMEI release, and no schedule left behind by a create that lost its race.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use base64::Engine;
use chrono::Duration;
use exporter::Exporter;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipments_api::ShipmentsApi;
use shipsync_channels::ChannelEndpoints;
use shipsync_domain::export::{CarrierMapping, ExportSettings, ExportState, ShipConfirmation};
use shipsync_domain::ids::{CarrierId, ShipmentId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, FeeSettings};
use shipsync_planner::ExportPlanner;
use shipsync_table::{KmsCipher, Table};
use shipsync_tools::runner::Runner;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::harness::{TestApp, errors, moto, shipment_body};

const GRAPHQL_PATH: &str = "/admin/api/2025-10/graphql.json";

/// A fulfillment Shopify created: its order gid, tracking numbers, and (line index, quantity).
type Created = (String, Vec<String>, Vec<(usize, u32)>);

/// A Shopify that remembers what it was sent: its orders' fulfillments and remaining quantities
/// follow the `fulfillmentCreate` calls it accepted, as the real one's do.
#[derive(Clone, Default)]
struct ShopifyState {
    /// Order gid to its lines' quantities.
    orders: BTreeMap<String, Vec<u32>>,
    /// Fulfillments created: order gid, tracking numbers, (line index, quantity).
    fulfillments: Vec<Created>,
}

#[derive(Clone)]
struct RememberingShopify {
    state: Arc<Mutex<ShopifyState>>,
    delay: std::time::Duration,
}

impl RememberingShopify {
    fn order_id(po: &PurchaseOrder) -> String {
        format!("gid://shopify/Order/{}", po.public_reference)
    }

    fn order(&self, order: &str) -> Value {
        let state = self.state.lock().expect("state");
        let Some(quantities) = state.orders.get(order) else { return json!({ "data": { "order": null } }) };
        let number = order.rsplit('/').next().unwrap_or_default();
        let ours: Vec<&Created> = state.fulfillments.iter().filter(|(of, _, _)| of == order).collect();
        let fulfilled = |index: usize| -> u32 {
            ours.iter().flat_map(|(_, _, lines)| lines).filter(|(i, _)| *i == index).map(|(_, q)| q).sum()
        };
        let fulfillments: Vec<Value> = state
            .fulfillments
            .iter()
            .enumerate()
            .filter(|(_, (of, _, _))| of == order)
            .map(|(n, (_, numbers, lines))| {
                json!({
                    "id": format!("gid://shopify/Fulfillment/{}", n + 1),
                    "status": "SUCCESS",
                    "trackingInfo": numbers.iter().map(|number| json!({ "number": number })).collect::<Vec<_>>(),
                    "fulfillmentLineItems": { "nodes": lines.iter().map(|(index, quantity)| json!({
                        "quantity": quantity, "lineItem": { "id": format!("gid://shopify/LineItem/{index}") }
                    })).collect::<Vec<_>>() }
                })
            })
            .collect();
        let lines: Vec<Value> = quantities
            .iter()
            .enumerate()
            .map(|(index, quantity)| {
                json!({
                    "id": format!("gid://shopify/FulfillmentOrderLineItem/{number}-{index}"),
                    "remainingQuantity": quantity - fulfilled(index),
                    "lineItem": { "id": format!("gid://shopify/LineItem/{index}") }
                })
            })
            .collect();
        json!({ "data": { "order": {
            "id": order,
            "fulfillments": fulfillments,
            "fulfillmentOrders": { "nodes": [{
                "id": format!("gid://shopify/FulfillmentOrder/{number}"),
                "status": "OPEN",
                "assignedLocation": { "location": { "id": "gid://shopify/Location/1" } },
                "lineItems": { "nodes": lines }
            }]}
        }}})
    }

    fn create(&self, input: &Value) -> Value {
        let mut state = self.state.lock().expect("state");
        let mut order = String::new();
        let mut lines = Vec::new();
        for by_order in input["lineItemsByFulfillmentOrder"].as_array().into_iter().flatten() {
            let number = by_order["fulfillmentOrderId"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or("");
            order = format!("gid://shopify/Order/{number}");
            for line in by_order["fulfillmentOrderLineItems"].as_array().into_iter().flatten() {
                let id = line["id"].as_str().unwrap_or_default();
                let index = id.rsplit('-').next().and_then(|i| i.parse().ok()).expect("line index");
                lines.push((index, u32::try_from(line["quantity"].as_u64().expect("quantity")).expect("quantity")));
            }
        }
        let numbers = input["trackingInfo"]["numbers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        state.fulfillments.push((order, numbers, lines));
        let id = format!("gid://shopify/Fulfillment/{}", state.fulfillments.len());
        json!({ "data": { "fulfillmentCreate": { "fulfillment": { "id": id, "status": "SUCCESS" }, "userErrors": [] } } })
    }

    /// How many `fulfillmentCreate` calls each order got.
    fn creates_by_order(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (order, _, _) in &self.state.lock().expect("state").fulfillments {
            *counts.entry(order.clone()).or_default() += 1;
        }
        counts
    }

    fn creates(&self) -> usize {
        self.state.lock().expect("state").fulfillments.len()
    }
}

impl Respond for RememberingShopify {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let query = body["query"].as_str().unwrap_or_default();
        let answer = if query.contains("ShipsyncFulfillmentCreate") {
            self.create(&body["variables"]["fulfillment"])
        } else if query.contains("ShipsyncOrder") {
            self.order(body["variables"]["id"].as_str().unwrap_or_default())
        } else {
            return ResponseTemplate::new(400);
        };
        ResponseTemplate::new(200).set_body_json(answer).set_delay(self.delay)
    }
}

async fn remembering_shopify(delay: std::time::Duration) -> (MockServer, RememberingShopify) {
    let server = MockServer::start().await;
    let shopify = RememberingShopify { state: Arc::default(), delay };
    Mock::given(method("POST")).and(path(GRAPHQL_PATH)).respond_with(shopify.clone()).mount(&server).await;
    (server, shopify)
}

/// Kills the process at a DynamoDB call: from then on every call fails, as nothing more is
/// written by a Lambda that died.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At the n-th transaction (it is not written).
    AtWrite(u32),
    /// Right after the n-th transaction was written.
    AfterWrite(u32),
}

#[derive(Debug)]
struct KillSwitch {
    kill: Kill,
    writes: AtomicU32,
    dead: AtomicBool,
}

impl Intercept for KillSwitch {
    fn name(&self) -> &'static str {
        "KillSwitch"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let died = || -> Result<(), BoxError> { Err("the process died here".into()) };
        if self.dead.load(Ordering::SeqCst) {
            return died();
        }
        if let Kill::AfterWrite(n) = self.kill
            && self.writes.load(Ordering::SeqCst) == n
        {
            self.dead.store(true, Ordering::SeqCst);
            return died();
        }
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        // A shipment's writes: transactions (create, edits) and single conditional puts (its
        // export's claim and outcome).
        if target.ends_with(".TransactWriteItems") || target.ends_with(".PutItem") {
            let written = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if let Kill::AtWrite(n) = self.kill
                && written == n
            {
                self.dead.store(true, Ordering::SeqCst);
                return died();
            }
        }
        Ok(())
    }
}

/// The app's table through a client that dies as told.
async fn dying_store(app: &TestApp, kill: Kill) -> Table {
    let config = shipsync_tools::local_aws::sdk_config(&moto().endpoint).await;
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&config)
        .interceptor(KillSwitch { kill, writes: AtomicU32::new(0), dead: AtomicBool::new(false) })
        .build();
    let cipher = KmsCipher::new(app.aws.kms.clone(), app.aws.credentials_key_id.clone());
    Table::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), app.table.table_name()).with_cipher(Arc::new(cipher))
}

fn test_clock(app: &TestApp) -> shipsync_domain::time::Clock {
    let clock = Arc::clone(&app.clock);
    Arc::new(move || *clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

fn exporter_on(app: &TestApp, table: Table) -> Exporter {
    let http = shipsync_channels::http_client(std::time::Duration::from_secs(2)).expect("http client");
    Exporter::new(table, app.aws.sqs.clone(), http, &app.aws.exporter_config())
        .with_clock(test_clock(app))
        .with_endpoints(ChannelEndpoints::honouring_store_overrides())
}

/// Feeds the export queue once to an exporter whose store dies as told.
async fn deliver_to_dying_exporter(app: &TestApp, kill: Kill) {
    let exporter = exporter_on(app, dying_store(app, kill).await);
    let runner = Runner::new(
        app.aws.clone(),
        exporter,
        order_processor::OrderProcessor::new(app.table.clone(), app.aws.export_planner()),
    );
    runner.deliver_batch().await.expect("deliver");
}

/// Every export request queued or in flight is lost (the worst case: only the sweeper is left).
async fn lose_every_queued_request(app: &TestApp) {
    // In-flight messages come back after the test queues' one-second visibility timeout.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    loop {
        let received = app
            .aws
            .sqs
            .receive_message()
            .queue_url(&app.aws.planner.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        if received.messages().is_empty() {
            break;
        }
        for message in received.messages() {
            app.aws
                .sqs
                .delete_message()
                .queue_url(&app.aws.planner.queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

async fn schedules(app: &TestApp) -> Vec<String> {
    let listed =
        app.aws.scheduler.list_schedules().group_name(&app.aws.planner.schedule_group).send().await.expect("list");
    listed.schedules().iter().filter_map(|s| s.name().map(str::to_owned)).collect()
}

async fn delete_schedules_of(app: &TestApp, shipment: &Value) {
    for name in schedules(app).await {
        if name.starts_with(&format!("export-{}-", shipment["id"])) {
            app.aws
                .scheduler
                .delete_schedule()
                .group_name(&app.aws.planner.schedule_group)
                .name(name)
                .send()
                .await
                .expect("delete schedule");
        }
    }
}

async fn send_request(app: &TestApp, shipment: &Value) {
    let body = json!({"shipment_id": shipment["id"], "reason": "scheduled"}).to_string();
    app.aws.sqs.send_message().queue_url(&app.aws.planner.queue_url).message_body(body).send().await.expect("send");
}

async fn stored(app: &TestApp, shipment: &Value) -> Shipment {
    let id = ShipmentId::new(shipment["id"].as_u64().expect("id")).expect("id");
    app.table.shipment(id).await.expect("read").expect("shipment")
}

/// Sends a request to `api` as the app's retailer user.
async fn call_api(
    api: &ShipmentsApi,
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", app.retailer_user.key, app.retailer_user.password));
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Basic {token}"))
        .header("content-type", "application/json")
        .body(bytes::Bytes::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .expect("request");
    let response = api.handle(request).await;
    let json = serde_json::from_str(response.body()).unwrap_or(Value::Null);
    (response.status(), json)
}

/// The API with a planner whose queue does not exist: every request to queue fails.
fn api_that_cannot_queue(app: &TestApp) -> ShipmentsApi {
    let mut config = app.aws.planner.clone();
    config.queue_url = format!("{}/123456789012/no-such-queue", moto().endpoint);
    let broken = ExportPlanner::new(app.aws.sqs.clone(), app.aws.scheduler.clone(), config);
    ShipmentsApi::new(app.table.clone(), broken).with_clock(test_clock(app))
}

#[tokio::test]
async fn a_flow_killed_at_any_step_ends_exported_exactly_once_after_the_sweeper_runs() {
    let (server, shopify) = remembering_shopify(std::time::Duration::ZERO).await;
    let settings = ExportSettings { shipment_export_delay_minutes: 10, ..ExportSettings::default() };
    let app = TestApp::with(FeeSettings::default(), settings, Some(&server.uri())).await;
    let mut orders = Vec::new();
    for number in ["2001", "2002", "2003", "2004"] {
        let po = app.purchase_order(&app.vendor, number, "Kill", &[1]).await;
        shopify.state.lock().expect("state").orders.insert(RememberingShopify::order_id(&po), vec![1]);
        orders.push(po);
    }
    let body = |po: &PurchaseOrder, tracking: &str| shipment_body(&[(po.items[0].id.get(), 1)], &[tracking]);

    // 1. Killed after planning: the schedule exists, the shipment was never written. The
    //    client's retry creates it (with its own plan); the orphan plan finds nothing to export.
    let dying_api =
        ShipmentsApi::new(dying_store(&app, Kill::AtWrite(1)).await, app.planner.clone()).with_clock(test_clock(&app));
    let uri = format!("/purchase_orders/{}/shipments.json", orders[0].id);
    let (status, _) = call_api(&dying_api, &app, Method::POST, &uri, Some(body(&orders[0], "K1"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(schedules(&app).await.len(), 1, "the plan was made before the write died");
    let planned_only = app.create_shipment(&orders[0], body(&orders[0], "K1")).await;

    // 2. Killed after the shipment write: it is written and scheduled, but its delivery is lost.
    let written_only = app.create_shipment(&orders[1], body(&orders[1], "K2")).await;
    delete_schedules_of(&app, &written_only).await;

    // 3. and 4. go through the exporter by hand.
    let claimed_only = app.create_shipment(&orders[2], body(&orders[2], "K3")).await;
    let sent_only = app.create_shipment(&orders[3], body(&orders[3], "K4")).await;
    delete_schedules_of(&app, &claimed_only).await;
    delete_schedules_of(&app, &sent_only).await;

    app.advance(Duration::minutes(10));
    // The surviving schedules fire: the retried create goes out, the orphan finds no shipment.
    app.run_exports().await;
    assert_eq!(shopify.creates(), 1);
    assert!(matches!(stored(&app, &planned_only).await.export.state, ExportState::Exported { .. }));

    // 3. Killed after the claim, before the channel was called.
    send_request(&app, &claimed_only).await;
    deliver_to_dying_exporter(&app, Kill::AfterWrite(1)).await;
    assert!(matches!(stored(&app, &claimed_only).await.export.state, ExportState::Exporting { .. }));
    assert_eq!(shopify.creates(), 1, "it died before calling Shopify");

    // 4. Killed after Shopify's success, before the outcome was recorded.
    send_request(&app, &sent_only).await;
    deliver_to_dying_exporter(&app, Kill::AtWrite(2)).await;
    assert!(matches!(stored(&app, &sent_only).await.export.state, ExportState::Exporting { .. }));
    assert_eq!(shopify.creates(), 2, "Shopify has it; shipsync does not know");

    // Every message that would have carried them on is lost.
    lose_every_queued_request(&app).await;
    assert_eq!(
        app.runner.sweep().await.expect("sweep"),
        0,
        "nothing is overdue yet: claims are fresh, due + grace is ahead"
    );

    // A claim keeps its schedule's sweep time (due + grace), so that taking it does not rewrite
    // the sweeper's index entry: expired claims wait for that time like a lost delivery does
    // (their own queue message, had it not been lost, would have come back after its visibility
    // timeout).
    app.advance(Duration::minutes(3));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0, "the claims expired, but due + grace is ahead");
    assert!(matches!(stored(&app, &written_only).await.export.state, ExportState::Scheduled { .. }));
    // Then the sweeper re-queues all three (twice here: re-queueing is idempotent, the claim lets
    // one attempt through and a dead attempt's retry asks Shopify first).
    app.advance(Duration::minutes(13));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 3);
    assert_eq!(app.runner.sweep().await.expect("sweep"), 3);
    app.run_exports().await;
    let adopted = stored(&app, &sent_only).await;
    assert!(
        matches!(&adopted.export.state, ExportState::Exported { channel_ids, .. } if channel_ids == &["gid://shopify/Fulfillment/2"]),
        "{:?}",
        adopted.export.state
    );
    for shipment in [&planned_only, &written_only, &claimed_only, &sent_only] {
        assert!(matches!(stored(&app, shipment).await.export.state, ExportState::Exported { .. }), "{shipment}");
    }
    let expected: BTreeMap<String, usize> = orders.iter().map(|po| (RememberingShopify::order_id(po), 1)).collect();
    assert_eq!(shopify.creates_by_order(), expected, "every shipment reached Shopify exactly once");
    // Exported shipments leave the sweeper's index: nothing more to sweep, ever.
    app.advance(Duration::days(1));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0);
}

#[tokio::test]
async fn the_sweeper_leaves_alone_what_is_not_overdue_and_what_waits_for_something_else() {
    let (server, shopify) = remembering_shopify(std::time::Duration::ZERO).await;
    let settings = ExportSettings { shipment_export_delay_minutes: 30, ..ExportSettings::default() };
    let app = TestApp::with(FeeSettings::default(), settings, Some(&server.uri())).await;
    let po = app.purchase_order(&app.vendor, "2101", "Patient", &[3]).await;
    shopify.state.lock().expect("state").orders.insert(RememberingShopify::order_id(&po), vec![3]);
    let item = po.items[0].id.get();
    let scheduled = app.create_shipment(&po, shipment_body(&[(item, 1)], &["P1"])).await;
    let mut manual = shipment_body(&[(item, 1)], &["P2"]);
    manual["shipment"]["export"] = json!(false);
    let manual = app.create_shipment(&po, manual).await;
    assert_eq!(manual["export_state"], "manual");
    // Due at 12:30: not before 12:45 (the grace lets the schedule and the queue's retries work).
    app.advance(Duration::minutes(44));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0);
    delete_schedules_of(&app, &scheduled).await;
    app.advance(Duration::minutes(2));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 1);
    app.run_exports().await;
    assert_eq!(shopify.creates(), 1);
    assert!(matches!(stored(&app, &scheduled).await.export.state, ExportState::Exported { .. }));
    assert_eq!(stored(&app, &manual).await.export.state, ExportState::Manual);
    app.advance(Duration::days(30));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0, "a manual shipment waits for a person, not the sweeper");
}

fn message(id: &str, shipment: &Value) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(json!({"shipment_id": shipment["id"], "reason": "scheduled"}).to_string());
    message
}

#[tokio::test]
async fn the_exporter_takes_no_record_it_has_no_time_left_for_and_reports_the_rest_failed() {
    // Each Shopify call takes 300 ms: a record (order query, then fulfillmentCreate) about 600.
    let (server, shopify) = remembering_shopify(std::time::Duration::from_millis(300)).await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&server.uri())).await;
    let mut shipments = Vec::new();
    for number in ["2201", "2202", "2203"] {
        let po = app.purchase_order(&app.vendor, number, "Hurry", &[1]).await;
        shopify.state.lock().expect("state").orders.insert(RememberingShopify::order_id(&po), vec![1]);
        shipments.push(app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &[number])).await);
    }
    lose_every_queued_request(&app).await;
    let exporter = exporter_on(&app, app.table.clone()).with_record_budget(std::time::Duration::from_secs(2));
    let batch = || {
        let mut event = SqsEvent::default();
        event.records = shipments.iter().enumerate().map(|(n, s)| message(&format!("m{n}"), s)).collect();
        event
    };
    let failed = |response: aws_lambda_events::event::sqs::SqsBatchResponse| -> Vec<String> {
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    };

    // A deadline already closer than one record's budget: nothing is started.
    let response =
        exporter.handle_until(batch(), std::time::SystemTime::now() + std::time::Duration::from_secs(1)).await;
    assert_eq!(failed(response), ["m0", "m1", "m2"]);
    assert_eq!(shopify.creates(), 0);
    for shipment in &shipments {
        let untouched = stored(&app, shipment).await;
        assert!(matches!(untouched.export.state, ExportState::Scheduled { .. }) && untouched.export.attempts == 0);
    }

    // Time for the first record only: the others come back untouched.
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_millis(2400);
    let response = exporter.handle_until(batch(), deadline).await;
    assert_eq!(failed(response), ["m1", "m2"]);
    assert_eq!(shopify.creates(), 1);
    assert!(matches!(stored(&app, &shipments[0]).await.export.state, ExportState::Exported { .. }));
    for shipment in &shipments[1..] {
        assert_eq!(stored(&app, shipment).await.export.attempts, 0, "not started");
    }

    // Delivered again with time enough, they go out; the first is not exported twice.
    let response =
        exporter.handle_until(batch(), std::time::SystemTime::now() + std::time::Duration::from_secs(60)).await;
    assert!(failed(response).is_empty());
    assert_eq!(shopify.creates(), 3);
}

#[tokio::test]
async fn a_manual_export_that_cannot_be_queued_answers_503_and_writes_nothing() {
    let app = TestApp::with(
        FeeSettings::default(),
        ExportSettings { export_shipments: false, ..ExportSettings::default() },
        None,
    )
    .await;
    let po = app.purchase_order(&app.vendor, "2301", "Manual", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["M1"])).await;
    let before = stored(&app, &shipment).await;
    let uri = format!("/shipments/{}/export.json", shipment["id"]);
    let (status, json) = call_api(&api_that_cannot_queue(&app), &app, Method::POST, &uri, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(stored(&app, &shipment).await, before, "nothing written: no shipment waits for a request never queued");
    // The retry works.
    let (status, json) = app.call(Method::POST, &uri, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(json["shipment"]["export_state"], "scheduled");
}

#[tokio::test]
async fn an_imei_release_that_cannot_be_queued_answers_503_and_writes_nothing() {
    let app = TestApp::new().await;
    let settings = ExportSettings {
        ship_confirmation: Some(ShipConfirmation::TrackingAssigned),
        carrier_mappings: vec![CarrierMapping {
            shipper_id: CarrierId::new_unchecked(1),
            channel_carrier: "UPS".into(),
            tracking_url_template: None,
        }],
        ..ExportSettings::default()
    };
    let po = app
        .channel_order(
            ChannelKind::BackMarket,
            settings,
            ChannelConnection::default(),
            &[("api_token", "bm-token")],
            "4560001",
            ("IPHONE-13-128", 1, "987"),
        )
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZBM9"])).await;
    assert_eq!(shipment["export_due_at"], "2026-03-02T13:00:00.000Z", "waits an hour for the IMEI");
    let before = stored(&app, &shipment).await;
    app.advance(Duration::minutes(10));
    let item = &shipment["shipment_items_attributes"][0]["id"];
    let edit = json!({"shipment": {"shipment_items_attributes": [{"id": item, "serial_codes": ["356938035643809"]}]}});
    let uri = format!("/shipments/{}.json", shipment["id"]);
    let (status, json) = call_api(&api_that_cannot_queue(&app), &app, Method::PUT, &uri, Some(edit.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(stored(&app, &shipment).await, before, "neither the IMEI nor the release was written");
    let (status, json) = app.call(Method::PUT, &uri, Some(edit)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["shipment"]["export_due_at"], "2026-03-02T12:10:00.000Z", "released at once");
    let after = stored(&app, &shipment).await;
    assert_eq!(after.version, before.version + 1, "the edit and the release are one write");
}

#[tokio::test]
async fn creates_that_lose_the_race_for_the_last_unit_leave_no_schedule_behind() {
    let app = TestApp::with(
        FeeSettings::default(),
        ExportSettings { shipment_export_delay_minutes: 30, ..ExportSettings::default() },
        None,
    )
    .await;
    let po = app.purchase_order(&app.vendor, "2401", "Race", &[1]).await;
    let item = po.items[0].id.get();
    let uri = format!("/purchase_orders/{}/shipments.json", po.id);
    let attempt = |n: u32| app.call(Method::POST, &uri, Some(shipment_body(&[(item, 1)], &[&format!("RACE-{n}")])));
    let (first, second, third, fourth) = tokio::join!(attempt(1), attempt(2), attempt(3), attempt(4));
    let results = [first, second, third, fourth];
    let winners: Vec<&Value> =
        results.iter().filter(|(status, _)| *status == StatusCode::CREATED).map(|(_, json)| json).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, json) in results.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{}", errors(json).join("; "));
    }
    let left = schedules(&app).await;
    assert_eq!(left.len(), 1, "only the winner's plan is left: {left:?}");
    assert!(left[0].starts_with(&format!("export-{}-", winners[0]["shipment"]["id"])), "{left:?}");
}

#[test]
fn the_sweeper_runs_every_five_minutes_with_exactly_what_it_needs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("template")).expect("yaml");
    let sweeper = &template["Resources"]["Sweeper"]["Properties"];
    assert_eq!(sweeper["CodeUri"], "../target/lambda/sweeper/");
    assert_eq!(sweeper["Events"]["Tick"]["Type"], "Schedule");
    assert_eq!(sweeper["Events"]["Tick"]["Properties"]["Schedule"], "rate(5 minutes)");
    let variables: Vec<&str> = sweeper["Environment"]["Variables"]
        .as_mapping()
        .expect("variables")
        .keys()
        .filter_map(serde_yaml::Value::as_str)
        .collect();
    assert_eq!(variables, ["SHIPSYNC_TABLE", "SHIPSYNC_EXPORT_QUEUE_URL"]);
    let statements = sweeper["Policies"][0]["Statement"].as_sequence().expect("statements");
    let actions: Vec<&str> = statements.iter().filter_map(|s| s["Action"].as_str()).collect();
    assert_eq!(actions, ["dynamodb:Query", "sqs:SendMessage"], "one index query and one queue, nothing else");
    let index = format!("${{Table.Arn}}/index/{}", shipsync_table::schema::BY_EXPORT_DUE.name);
    assert_eq!(statements[0]["Resource"].as_str(), Some(index.as_str()), "the sweeper's index, no other");
    assert_eq!(statements[1]["Resource"].as_str(), Some("ExportQueue.Arn"));
    assert_eq!(template["Resources"]["SweeperLogs"]["Type"], "AWS::Logs::LogGroup");
    assert_eq!(sweeper["LoggingConfig"]["LogGroup"].as_str(), Some("SweeperLogs"));
}

#[tokio::test]
async fn requeued_twice_and_delivered_to_two_exporters_at_once_a_shipment_is_exported_once() {
    let (server, shopify) = remembering_shopify(std::time::Duration::from_millis(200)).await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&server.uri())).await;
    let po = app.purchase_order(&app.vendor, "2501", "Twice", &[2]).await;
    shopify.state.lock().expect("state").orders.insert(RememberingShopify::order_id(&po), vec![2]);
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &["T1"])).await;
    // Its request is lost; the sweeper runs twice (two sweeps overlapping, say).
    lose_every_queued_request(&app).await;
    app.advance(Duration::minutes(16));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 1);
    assert_eq!(app.runner.sweep().await.expect("sweep"), 1);
    // Two exporters take one message each, at the same time: the claim lets one through.
    let receive_one = || async {
        let received = app
            .aws
            .sqs
            .receive_message()
            .queue_url(&app.aws.planner.queue_url)
            .max_number_of_messages(1)
            .send()
            .await
            .expect("receive");
        let message = received.messages().first().expect("a message");
        let mut record = SqsMessage::default();
        record.message_id = message.message_id().map(str::to_owned);
        record.body = message.body().map(str::to_owned);
        let mut event = SqsEvent::default();
        event.records.push(record);
        event
    };
    let (first, second) = (receive_one().await, receive_one().await);
    let (one, other) = (exporter_on(&app, app.table.clone()), exporter_on(&app, app.table.clone()));
    let (first, second) = tokio::join!(one.handle(first), other.handle(second));
    // The loser of the claim (or one that found the claim held) tries again later; one that came
    // after the outcome finds nothing to do. Either way Shopify got one fulfillment.
    let failures = first.batch_item_failures.len() + second.batch_item_failures.len();
    assert!(failures <= 1);
    assert_eq!(shopify.creates(), 1);
    let exported = stored(&app, &shipment).await;
    assert!(matches!(exported.export.state, ExportState::Exported { .. }));
    assert_eq!(exported.export.attempts, 1, "one claim, one attempt");
}

/// A shipment waiting for movement whose registration request was lost has its tracking number
/// registered by the sweeper's re-queue; one whose parcel never moves is listed in order health
/// once its store's movement timeout passes, then left alone (listed once, swept no more).
#[tokio::test]
async fn a_lost_registration_and_a_parcel_that_never_moves_are_swept() {
    let export =
        ExportSettings { ship_confirmation: Some(ShipConfirmation::TrackingMovement), ..ExportSettings::default() };
    let app = TestApp::with(FeeSettings::default(), export, None).await;
    let easypost = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .and(wiremock::matchers::body_partial_json(
            json!({"tracker": {"tracking_code": "1ZSWEPT0001", "carrier": "UPS"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "trk_1", "tracking_code": "1ZSWEPT0001"})))
        .expect(1)
        .mount(&easypost)
        .await;
    // The store registers with EasyPost (its fake) and waits an hour for a first scan.
    let mut store = app.shop.clone();
    store.tracking.provider = Some(shipsync_domain::tracking::TrackingProvider::Easypost);
    store.tracking.movement_timeout_hours = 1;
    store.connection.tracking_base_url = Some(easypost.uri());
    app.table.save_channel_store(&store).await.expect("store");
    let credentials = BTreeMap::from(
        [("access_token", "shpat_test"), ("tracking_api_key", "EZAK_test"), ("tracking_webhook_secret", "whsec_ez")]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    app.table
        .save_credentials(app.retailer.id, store.id, &shipsync_domain::secrets::ChannelCredentials(credentials))
        .await
        .expect("credentials");

    let po = app.purchase_order(&app.vendor, "2301", "Still", &[1]).await;
    let created = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZSWEPT0001"])).await;
    assert_eq!(created["export_state"], "waiting_for_movement", "{created}");
    assert_eq!(created["trackers_pending"], json!(["1ZSWEPT0001"]));
    let shipment = created.clone();

    // The registration request is lost; 15 minutes later the sweeper queues it again.
    lose_every_queued_request(&app).await;
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0, "not overdue yet");
    app.advance(Duration::minutes(16));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 1);
    app.run_exports().await;
    let waiting = stored(&app, &shipment).await;
    assert!(
        matches!(&waiting.export.state, ExportState::WaitingForMovement(watch) if watch.unregistered.is_empty()),
        "{:?}",
        waiting.export.state
    );
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0, "registered: nothing due until the deadline");

    // No scan within the hour: listed once, with how long it waited.
    app.advance(Duration::minutes(50));
    assert_eq!(app.runner.sweep().await.expect("sweep"), 1);
    app.run_exports().await;
    let health = app.call(Method::GET, "/order_health.json", None).await.1;
    let listed: Vec<&Value> = health["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|problem| problem["kind"] == "no_carrier_scan")
        .collect();
    assert_eq!(listed.len(), 1, "{health}");
    assert!(listed[0]["reason"].as_str().unwrap_or_default().contains("for 1 hours"), "{health}");
    assert_eq!(app.runner.sweep().await.expect("sweep"), 0, "listed: swept no more");
    easypost.verify().await;
}
