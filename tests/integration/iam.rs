//! IAM, proven: every function runs its real flows as an IAM user that holds exactly the policy
//! `infra/template.yaml` gives it, on a moto server that enforces IAM on every request. A
//! permission the code needs and the template lacks fails here. Set-up (table, queues, tenants,
//! seed data) and what AWS itself does (firing schedules, feeding queues) run as an admin.
//!
//! Table-driven by function: a new function in the template needs one more row in `FLOWS`
//! (`every_function_of_the_template_has_an_iam_flow` fails until it has one), and a new
//! permission in the template is picked up from the template. Where moto's checks differ from
//! AWS's, see `policy.rs`.

mod deployment;
mod policy;

use std::future::Future;
use std::pin::Pin;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use self::deployment::{IamApp, Without};
use crate::harness::{SHOPIFY_WEBHOOK_SECRET, TestApp, shipment_body};

type FlowResult = Result<(), String>;
type Flow = fn(Without) -> Pin<Box<dyn Future<Output = FlowResult>>>;

/// One function of the template: its flows end to end, and the actions without which they fail.
struct Row {
    function: &'static str,
    flow: Flow,
    /// Each of these, removed from the function's policy, must make the flow fail. Every action
    /// the template grants is here but `iam:PassRole`, which moto never checks
    /// (`every_action_the_template_grants_is_one_a_flow_needs`).
    needs: &'static [&'static str],
}

const FLOWS: &[Row] = &[
    Row {
        function: "shipments-api",
        flow: |w| Box::pin(shipments_api(w)),
        needs: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
            "scheduler:CreateSchedule",
            "scheduler:DeleteSchedule",
            "kms:Encrypt",
            "s3:PutObject",
            "s3:GetObject",
        ],
    },
    Row {
        function: "vendor-mailer",
        flow: |w| Box::pin(vendor_mailer(w)),
        needs: &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "s3:GetObject", "ses:SendEmail"],
    },
    Row {
        function: "exporter",
        flow: |w| Box::pin(exporter(w)),
        needs: &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "sqs:ChangeMessageVisibility",
            "sqs:SendMessage",
            "kms:Decrypt",
        ],
    },
    Row {
        function: "shopify-webhooks",
        flow: |w| Box::pin(shopify_webhooks(w)),
        needs: &["dynamodb:GetItem", "dynamodb:PutItem", "sqs:SendMessage", "kms:Decrypt"],
    },
    Row {
        function: "order-processor",
        flow: |w| Box::pin(order_processor(w)),
        needs: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
        ],
    },
    Row {
        function: "order-poller",
        flow: |w| Box::pin(order_poller(w)),
        needs: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
            "kms:Decrypt",
            "kms:Encrypt",
        ],
    },
    Row {
        function: "carrier-webhooks",
        flow: |w| Box::pin(carrier_webhooks(w)),
        needs: &["dynamodb:GetItem", "kms:Decrypt", "sqs:SendMessage"],
    },
    Row { function: "sweeper", flow: |w| Box::pin(sweeper(w)), needs: &["dynamodb:Query", "sqs:SendMessage"] },
    Row {
        function: "label-renderer",
        flow: |w| Box::pin(label_renderer(w)),
        needs: &["dynamodb:GetItem", "dynamodb:PutItem", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
    },
];

#[test]
fn every_function_of_the_template_has_an_iam_flow() {
    let mut in_template: Vec<String> = policy::function_policies().into_iter().map(|p| p.package).collect();
    let mut with_flow: Vec<String> = FLOWS.iter().map(|row| row.function.to_owned()).collect();
    in_template.sort();
    with_flow.sort();
    assert_eq!(in_template, with_flow, "every function in infra/template.yaml needs a row in iam::FLOWS");
}

#[test]
fn every_action_the_template_grants_is_one_a_flow_needs() {
    for policy in policy::function_policies() {
        let row = FLOWS.iter().find(|row| row.function == policy.package).expect("a row (see the test above)");
        let mut granted: Vec<&str> = policy.actions().into_iter().filter(|action| *action != "iam:PassRole").collect();
        granted.sort_unstable();
        granted.dedup();
        let mut needs = row.needs.to_vec();
        needs.sort_unstable();
        assert_eq!(
            granted, needs,
            "{}: list in `needs` every action the template grants it (and no other), so that the negative \
             test shows each one is used",
            policy.package
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_runs_its_flows_with_exactly_its_template_policy() {
    let runs: Vec<(&Row, Without)> = FLOWS.iter().map(|row| (row, None)).collect();
    let failures: Vec<String> = run_all(&runs).await.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "refused or failed under the template's policies:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_flow_fails_without_any_action_it_needs_so_iam_is_enforced() {
    let runs: Vec<(&Row, Without)> =
        FLOWS.iter().flat_map(|row| row.needs.iter().map(move |action| (row, Some((row.function, *action))))).collect();
    let results = run_all(&runs).await;
    let mut passed = Vec::new();
    for ((row, without), result) in runs.iter().zip(&results) {
        match result {
            Ok(()) => passed.push(format!("{} without {:?}", row.function, without.map(|(_, action)| action))),
            // Shown with --nocapture: each flow fails where the removed action is first needed.
            Err(failure) => eprintln!("{failure}"),
        }
    }
    assert!(passed.is_empty(), "these flows passed without an action they need: {passed:?}");
}

/// Runs the flows on a thread of their own with a large stack: whole function handlers polled
/// inside one another take more than a test thread's 2 MiB in a debug build.
async fn run_all(runs: &[(&'static Row, Without)]) -> Vec<FlowResult> {
    let runs = runs.to_vec();
    let runtime = tokio::runtime::Handle::current();
    let flows = std::thread::Builder::new()
        .name("iam-flows".into())
        .stack_size(32 * 1024 * 1024)
        .spawn(move || runtime.block_on(run_all_here(&runs)))
        .expect("a thread for the flows");
    tokio::task::block_in_place(|| flows.join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs the flows, a few at a time (on this thread: the handlers' futures need not be `Send`);
/// gives each one's result in order, a failure as `function: why`.
async fn run_all_here(runs: &[(&'static Row, Without)]) -> Vec<FlowResult> {
    const AT_ONCE: usize = 6;
    let mut results = Vec::new();
    for batch in runs.chunks(AT_ONCE) {
        let local = tokio::task::LocalSet::new();
        let batch_results = local
            .run_until(async {
                let mut flows = tokio::task::JoinSet::new();
                for (index, (row, without)) in batch.iter().enumerate() {
                    let flow = (row.flow)(*without);
                    let function = row.function;
                    flows.spawn_local(async move { (index, flow.await.map_err(|why| format!("{function}: {why}"))) });
                }
                let mut done = Vec::new();
                while let Some(result) = flows.join_next().await {
                    done.push(result.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic())));
                }
                done.sort_by_key(|(index, _)| *index);
                done.into_iter().map(|(_, result)| result).collect::<Vec<_>>()
            })
            .await;
        results.extend(batch_results);
    }
    results
}

/// A step's answer must have this status; gives its body.
fn expect(step: &str, (status, body): (StatusCode, Value), wanted: StatusCode) -> Result<Value, String> {
    if status == wanted { Ok(body) } else { Err(format!("{step}: {status} (wanted {wanted}) {body}")) }
}

fn ensure(holds: bool, what: impl FnOnce() -> String) -> FlowResult {
    if holds { Ok(()) } else { Err(what()) }
}

async fn queue_depth(app: &TestApp, queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    let attributes = app
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(ApproximateNumberOfMessages)
        .send()
        .await
        .expect("queue attributes, as the admin");
    attributes.attributes().and_then(|a| a.get(&ApproximateNumberOfMessages)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn shopify_fixture(name: &str) -> String {
    let path = format!("{}/fixtures/shopify/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("fixture")
}

/// Delivers a signed Shopify webhook to the tenant's store, as Shopify does.
async fn deliver_webhook(app: &TestApp, topic: &str, body: &str, delivery: &str) -> (StatusCode, Value) {
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/shopify/{}", app.shop.id))
        .header("content-type", "application/json")
        .header("x-shopify-topic", topic)
        .header("x-shopify-webhook-id", delivery)
        .header("x-shopify-shop-domain", "test-shop.myshopify.com")
        .header("x-shopify-hmac-sha256", shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET))
        .body(bytes::Bytes::from(body.to_owned()))
        .expect("request");
    let response = app.webhooks.handle(request).await;
    (response.status(), serde_json::from_str(response.body()).unwrap_or(Value::Null))
}

/// The fixture order's SKUs: the iPods from the tenant's vendor, the wrap (unless left out, to
/// make an unknown SKU) from the other.
async fn catalog(app: &TestApp, with_wrap: bool) -> FlowResult {
    let mut products = vec![("IPOD-342-N", app.vendor.id.get()), ("IPOD-342-P", app.vendor.id.get())];
    if with_wrap {
        products.push(("WRAP-1", app.other_vendor.id.get()));
    }
    for (sku, vendor) in products {
        let body = json!({"product": {"sku": sku, "vendor_id": vendor, "cost": "42.00"}});
        expect("add a product", app.call(Method::POST, "/products.json", Some(body)).await, StatusCode::CREATED)?;
    }
    Ok(())
}

async fn purchase_order_count(app: &TestApp) -> Result<usize, String> {
    let list =
        expect("list purchase orders", app.call(Method::GET, "/purchase_orders.json", None).await, StatusCode::OK)?;
    Ok(list["purchase_orders"].as_array().map_or(0, Vec::len))
}

/// A Shopify that answers every order query with one open fulfillment order of one line, and
/// accepts fulfillments.
async fn fake_shopify() -> MockServer {
    let shopify = MockServer::start().await;
    let order = json!({"data": {"order": {"id": "gid://shopify/Order/1", "fulfillments": [], "fulfillmentOrders": {"nodes": [
        {"id": "gid://shopify/FulfillmentOrder/1", "status": "OPEN", "assignedLocation": {"location": {"id": "gid://shopify/Location/1"}},
         "lineItems": {"nodes": [{"id": "gid://shopify/FulfillmentOrderLineItem/0", "remainingQuantity": 1, "lineItem": {"id": "gid://shopify/LineItem/0"}}]}}]}}}});
    Mock::given(body_string_contains("ShipsyncOrder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order))
        .mount(&shopify)
        .await;
    Mock::given(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/1", "status": "SUCCESS"}, "userErrors": []}}}),
        ))
        .mount(&shopify)
        .await;
    Mock::given(body_string_contains("ShipsyncCancelUnits"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"refundCreate": {"refund": {"id": "gid://shopify/Refund/1"}, "userErrors": []}}}),
        ))
        .mount(&shopify)
        .await;
    shopify
}

async fn export_state(app: &TestApp, id: &Value) -> Result<Value, String> {
    let shipment = expect(
        "read the shipment",
        app.call(Method::GET, &format!("/shipments/{id}.json"), None).await,
        StatusCode::OK,
    )?;
    Ok(shipment["shipment"]["export_state"].clone())
}

/// The Shipment API: store settings, create (scheduled), read, update, search, export now,
/// purchase orders, products, vendors, failed exports, order health, reprocessing an order.
async fn shipments_api(without: Without) -> FlowResult {
    let iam = IamApp::new(ExportSettings::default(), None, without).await;
    let app = &iam.app;
    let store_uri = format!("/stores/{}.json", app.shop.id);
    let settings = json!({"store": {"shipment_export_delay_minutes": 30, "credentials": {"access_token": "shpat_rotated", "webhook_secret": SHOPIFY_WEBHOOK_SECRET}}});
    expect("change store settings", app.call(Method::PUT, &store_uri, Some(settings)).await, StatusCode::OK)?;
    let new_store = json!({"store": {"name": "Second", "channel": "shopify", "shop_domain": "second.myshopify.com",
        "credentials": {"access_token": "shpat_second"}}});
    expect("create a store", app.call(Method::POST, "/stores.json", Some(new_store)).await, StatusCode::CREATED)?;
    expect("list stores", app.call(Method::GET, "/stores.json", None).await, StatusCode::OK)?;
    expect("read a store", app.call(Method::GET, &store_uri, None).await, StatusCode::OK)?;

    let po = app.purchase_order(&app.vendor, "IAM-1", "Ada Lovelace", &[2, 1]).await;
    let create = app
        .call(
            Method::POST,
            &format!("/purchase_orders/{}/shipments.json", po.id),
            Some(shipment_body(&[(po.items[0].id.get(), 1)], &["1ZIAM0001"])),
        )
        .await;
    let created = expect("create a shipment (scheduled)", create, StatusCode::CREATED)?;
    let id = created["shipment"]["id"].clone();
    ensure(created["shipment"]["export_state"] == "scheduled", || format!("not scheduled: {created}"))?;
    let uri = format!("/shipments/{id}.json");
    expect("read a shipment", app.call(Method::GET, &uri, None).await, StatusCode::OK)?;
    let change = json!({"shipment": {"vendor_invoice_reference": "INV-IAM-1"}});
    expect("update a shipment", app.call(Method::PUT, &uri, Some(change)).await, StatusCode::OK)?;
    for search in [
        "/shipments.json?search[purchase_order_number]=IAM-1&include_shipment_purchase_order=1".to_owned(),
        format!("/shipments.json?search[vendor_id]={}", app.vendor.id),
        "/shipments.json?search[updated_at_min]=2026-01-01T00:00:00Z".to_owned(),
        "/shipments.json?search[customer_name]=Ada".to_owned(),
    ] {
        let found = expect(&search, app.call(Method::GET, &search, None).await, StatusCode::OK)?;
        ensure(found["shipments"].as_array().map(Vec::len) == Some(1), || format!("{search}: {found}"))?;
    }
    let export = app.call(Method::POST, &format!("/shipments/{id}/export.json"), None).await;
    expect("export now", export, StatusCode::ACCEPTED)?;
    expect("list purchase orders", app.call(Method::GET, "/purchase_orders.json", None).await, StatusCode::OK)?;
    let po_uri = format!("/purchase_orders/{}.json", po.id);
    expect("read a purchase order", app.call(Method::GET, &po_uri, None).await, StatusCode::OK)?;
    expect("list vendors", app.call(Method::GET, "/vendors.json", None).await, StatusCode::OK)?;
    let notify = json!({"vendor": {"notify_customer": false}});
    let vendor_uri = format!("/vendors/{}.json", app.vendor.id);
    expect("change a vendor", app.call(Method::PUT, &vendor_uri, Some(notify)).await, StatusCode::OK)?;
    expect("failed exports", app.call(Method::GET, "/exports/failed.json", None).await, StatusCode::OK)?;
    // A label stored in the bucket, and read back through the link the API signs with its role.
    let label = json!({"label": {"format": "zpl", "content": "XlhBXkZEMVpJQU0wMDAxXkZTXlha"}});
    let labels_uri = format!("/purchase_orders/{}/labels.json", po.id);
    let attached =
        expect("attach a label", app.call(Method::POST, &labels_uri, Some(label)).await, StatusCode::CREATED)?;
    // The link carries the API role's right to read the file: read it as that role (moto's
    // IAM-enforcing server answers presigned requests with a 500, so not through the link here;
    // `labels.rs` downloads through links on stock moto).
    let key = format!("labels/{}/{}/{}.zpl", app.retailer.id, po.id, attached["label"]["id"]);
    let api_role = iam.aws_of("shipments-api");
    let read = api_role.s3().get_object().bucket(&api_role.labels_bucket).key(&key).send().await;
    ensure(read.is_ok(), || format!("the API's role cannot read {key}: {read:?}"))?;
    expect("list labels", app.call(Method::GET, &labels_uri, None).await, StatusCode::OK)?;

    // An order with an unknown SKU, listed in order health, then reprocessed once it is known.
    catalog(app, false).await?;
    expect("list products", app.call(Method::GET, "/products.json", None).await, StatusCode::OK)?;
    let order = shopify_fixture("orders_create");
    expect("deliver an order", deliver_webhook(app, "orders/create", &order, "iam-api-1").await, StatusCode::OK)?;
    app.run_orders().await;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    let order_id = health["problems"][0]["order_id"].clone();
    ensure(!order_id.is_null(), || format!("no unknown-SKU problem listed: {health}"))?;
    let wrap = json!({"product": {"sku": "WRAP-1", "vendor_id": app.other_vendor.id.get()}});
    expect("add the unknown SKU", app.call(Method::POST, "/products.json", Some(wrap)).await, StatusCode::CREATED)?;
    let reprocess = app.call(Method::POST, &format!("/orders/{order_id}/reprocess.json"), None).await;
    expect("reprocess the order", reprocess, StatusCode::OK)?;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    ensure(health["metadata"]["total_count"] == 0, || format!("the problem was not cleared: {health}"))?;

    // A vendor's cancellation waits in order health, and the retailer's approval clears it.
    let po = app.purchase_order(&app.vendor, "IAM-CANCEL", "Ada Lovelace", &[1]).await;
    let body = json!({"cancellation": {"items": [{"order_item_id": po.items[0].id.get(), "quantity": 1}], "reason": "out_of_stock"}});
    let uri = format!("/purchase_orders/{}/cancellations.json", po.id);
    let asked = app.call_as(Some(&app.vendor_user), Method::POST, &uri, Some(body)).await;
    let asked = expect("a vendor asks to cancel", asked, StatusCode::CREATED)?;
    let approve = format!("/cancellations/{}/approve.json", asked["cancellation"]["id"]);
    let approved = expect("approve it", app.call(Method::POST, &approve, None).await, StatusCode::OK)?;
    ensure(approved["cancellation"]["state"] == "pushing", || format!("not approved: {approved}"))?;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    ensure(health["metadata"]["total_count"] == 0, || format!("the request stayed listed: {health}"))?;

    // Creates racing for the last unit: the losers planned, then withdraw their schedules.
    let po = app.purchase_order(&app.vendor, "IAM-RACE", "Ada Lovelace", &[1]).await;
    let race_uri = format!("/purchase_orders/{}/shipments.json", po.id);
    let attempt = |n: u32| {
        app.call(Method::POST, &race_uri, Some(shipment_body(&[(po.items[0].id.get(), 1)], &[&format!("R{n}")])))
    };
    let (first, second, third) = tokio::join!(attempt(1), attempt(2), attempt(3));
    let won = [&first, &second, &third].iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    ensure(won == 1, || format!("{won} creates won the last unit: {first:?} {second:?} {third:?}"))?;

    // The plan reached AWS: two schedules (the creation and the race's winner), two queued
    // requests (the manual export and the approved cancellation's push).
    let schedules = app
        .aws
        .scheduler
        .list_schedules()
        .group_name(&app.aws.planner.schedule_group)
        .send()
        .await
        .expect("list schedules, as the admin");
    ensure(schedules.schedules().len() == 2, || format!("schedules: {:?}", schedules.schedules()))?;
    let queued = queue_depth(app, &app.aws.planner.queue_url).await;
    ensure(queued == 2, || format!("{queued} exporter requests queued, wanted 2"))
}

/// The exporter: a queued shipment is exported to Shopify; a 429 asking for a minute keeps the
/// message invisible for that minute (ChangeMessageVisibility); a scheduled request throttled so
/// goes to the queue to wait (SendMessage).
async fn exporter(without: Without) -> FlowResult {
    let shopify = fake_shopify().await;
    let iam = IamApp::new(ExportSettings::default(), Some(&shopify.uri()), without).await;
    let app = &iam.app;
    let po = app.purchase_order(&app.vendor, "IAM-2", "Grace Hopper", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZIAM0002"])).await;
    app.run_exports().await;
    let state = export_state(app, &shipment["id"]).await?;
    ensure(state == "exported", || format!("the shipment was not exported: {state}"))?;

    // A cancellation pushed: read, claimed and recorded as pushed.
    let po = app.purchase_order(&app.vendor, "IAM-5", "Grace Hopper", &[2]).await;
    let body =
        json!({"cancellation": {"items": [{"order_item_id": po.items[0].id.get(), "quantity": 1}], "reason": "other"}});
    let uri = format!("/purchase_orders/{}/cancellations.json", po.id);
    let created = expect("cancel a unit", app.call(Method::POST, &uri, Some(body)).await, StatusCode::CREATED)?;
    app.run_exports().await;
    let read = app.call(Method::GET, &format!("/cancellations/{}.json", created["cancellation"]["id"]), None).await;
    let read = expect("read the cancellation", read, StatusCode::OK)?;
    ensure(read["cancellation"]["state"] == "pushed", || format!("the cancellation was not pushed: {read}"))?;

    throttle_the_next_fulfillment(&shopify).await;
    let po = app.purchase_order(&app.vendor, "IAM-3", "Grace Hopper", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZIAM0003"])).await;
    app.run_exports().await;
    // The queue's own visibility timeout here is a second: without the exporter's wait the
    // request would be back by now.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let redelivered = app.run_exports().await;
    ensure(redelivered == 0, || "the exporter could not keep the message invisible as Shopify asked".to_owned())?;
    let state = export_state(app, &shipment["id"]).await?;
    ensure(state != "exported" && state != "export_failed", || format!("after a 429: {state}"))?;

    // A schedule invokes the exporter itself; throttled, its request goes to the queue to wait.
    throttle_the_next_fulfillment(&shopify).await;
    let po = app.purchase_order(&app.vendor, "IAM-4", "Grace Hopper", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZIAM0004"])).await;
    let request = serde_json::from_value(serde_json::json!({"shipment_id": shipment["id"], "reason": "scheduled"}))
        .map_err(|error| error.to_string())?;
    Box::pin(app.runner.exporter().handle_scheduled(request))
        .await
        .map_err(|error| format!("a throttled scheduled export was not queued for its retry: {error}"))
}

/// Shopify answers the next fulfillment with a 429 asking for a minute.
async fn throttle_the_next_fulfillment(shopify: &wiremock::MockServer) {
    Mock::given(method("POST"))
        .and(path("/admin/api/2025-10/graphql.json"))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "60"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(shopify)
        .await;
}

/// Shopify webhooks: a signed delivery is queued (a repeat too: applying is idempotent), and a
/// signed payload that cannot be applied is kept for a person.
async fn shopify_webhooks(without: Without) -> FlowResult {
    let iam = IamApp::new(ExportSettings::default(), None, without).await;
    let app = &iam.app;
    let order = shopify_fixture("orders_create");
    for attempt in ["first", "repeat"] {
        let delivered = deliver_webhook(app, "orders/create", &order, "iam-hook-1").await;
        expect(&format!("deliver an order ({attempt})"), delivered, StatusCode::OK)?;
    }
    let queued = queue_depth(app, &app.aws.order_queue_url).await;
    ensure(queued == 2, || format!("{queued} order events queued, wanted 2"))?;
    let kept = deliver_webhook(app, "orders/create", "{not an order", "iam-hook-2").await;
    let kept = expect("deliver a payload that cannot be applied", kept, StatusCode::OK)?;
    ensure(kept["status"] == "kept", || format!("not kept: {kept}"))
}

/// The order processor: an order becomes purchase orders per vendor, an unknown SKU a problem
/// that a later version with the SKU known clears, a fulfillment is applied, and a carrier scan
/// releases an export waiting for movement.
async fn order_processor(without: Without) -> FlowResult {
    let shopify = fake_shopify().await;
    let iam = IamApp::new(waiting_for_movement(), Some(&shopify.uri()), without).await;
    let app = &iam.app;
    catalog(app, false).await?;
    // The other vendor takes its purchase orders by email: its new one is queued for the mailer.
    let email = json!({"vendor": {"email": "orders@globex.example", "email_purchase_orders": true}});
    let vendor_uri = format!("/vendors/{}.json", app.other_vendor.id);
    expect("email the other vendor", app.call(Method::PUT, &vendor_uri, Some(email)).await, StatusCode::OK)?;
    let order = shopify_fixture("orders_create");
    expect("deliver an order", deliver_webhook(app, "orders/create", &order, "iam-proc-1").await, StatusCode::OK)?;
    app.run_orders().await;
    let count = purchase_order_count(app).await?;
    ensure(count == 1, || format!("{count} purchase orders, wanted 1 (the other vendor's SKU is unknown)"))?;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    ensure(health["metadata"]["total_count"] == 1, || format!("the unknown SKU is not listed: {health}"))?;

    let wrap = json!({"product": {"sku": "WRAP-1", "vendor_id": app.other_vendor.id.get()}});
    expect("add the unknown SKU", app.call(Method::POST, "/products.json", Some(wrap)).await, StatusCode::CREATED)?;
    let mut updated: Value = serde_json::from_str(&order).expect("fixture JSON");
    updated["updated_at"] = json!("2026-03-02T08:05:00-05:00");
    let delivered = deliver_webhook(app, "orders/updated", &updated.to_string(), "iam-proc-2").await;
    expect("deliver the order's update", delivered, StatusCode::OK)?;
    app.run_orders().await;
    let count = purchase_order_count(app).await?;
    ensure(count == 2, || format!("{count} purchase orders, wanted 2 (one per vendor)"))?;
    let mails = queue_depth(app, &app.aws.mail_queue_url).await;
    ensure(mails == 1, || format!("{mails} purchase order emails queued, wanted 1"))?;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    ensure(health["metadata"]["total_count"] == 0, || format!("the problem was not cleared: {health}"))?;

    let fulfillment = shopify_fixture("fulfillments_create");
    let delivered = deliver_webhook(app, "fulfillments/create", &fulfillment, "iam-proc-3").await;
    expect("deliver a fulfillment", delivered, StatusCode::OK)?;
    app.run_orders().await;
    let left =
        queue_depth(app, &app.aws.order_queue_url).await + queue_depth(app, &app.aws.order_dead_letter_url).await;
    ensure(left == 0, || format!("{left} order events not applied"))?;
    scan_releases_an_export(&iam, "IAM-5", false).await
}

fn waiting_for_movement() -> ExportSettings {
    ExportSettings {
        ship_confirmation: Some(shipsync_domain::export::ShipConfirmation::TrackingMovement),
        ..ExportSettings::default()
    }
}

/// A shipment waits for movement until an EasyPost scan in transit, signed with its store's
/// secret and posted to its store's URL (delivered twice if `repeat`: both queued, the second
/// applied as a no-op), makes the order processor queue its export, which then goes out once.
async fn scan_releases_an_export(iam: &IamApp, number: &str, repeat: bool) -> FlowResult {
    const SECRET: &str = "easypost-iam-secret";
    let app = &iam.app;
    let easypost = MockServer::start().await;
    Mock::given(path("/v2/trackers"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "trk_iam", "object": "Tracker"})))
        .mount(&easypost)
        .await;
    app.track_with(shipsync_domain::tracking::TrackingProvider::Easypost, &easypost.uri(), SECRET).await;
    let tracking = format!("1Z{}", number.replace('-', ""));
    let po = app.purchase_order(&app.vendor, number, "Alan Turing", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &[&tracking])).await;
    ensure(shipment["export_state"] == "waiting_for_movement", || format!("{shipment}"))?;
    let scan = json!({
        "id": format!("evt_{number}"), "object": "Event", "description": "tracker.updated", "mode": "production",
        "result": {"id": "trk_iam", "object": "Tracker", "tracking_code": tracking, "status": "in_transit",
            "carrier": "UPS", "updated_at": "2026-03-02T13:00:00Z", "tracking_details": []}
    })
    .to_string();
    let provider = carrier_webhooks::Provider::EasyPost;
    let signature =
        carrier_webhooks::providers::sign(provider, scan.as_bytes(), SECRET, chrono::Utc::now().timestamp());
    for _ in 0..if repeat { 2 } else { 1 } {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/carrier_webhooks/easypost/{}", app.shop.id))
            .header(carrier_webhooks::providers::signature_header(provider), signature.as_str())
            .body(bytes::Bytes::from(scan.clone()))
            .expect("request");
        let response = iam.carrier_webhooks().handle(request).await;
        ensure(response.status() == StatusCode::OK, || format!("scan: {} {}", response.status(), response.body()))?;
    }
    let queued = queue_depth(app, &app.aws.order_queue_url).await;
    let deliveries = if repeat { 2 } else { 1 };
    ensure(queued == deliveries, || format!("{queued} scans queued, wanted {deliveries}"))?;
    app.run_orders().await;
    app.run_exports().await;
    let state = export_state(app, &shipment["id"]).await?;
    ensure(state == "exported", || format!("the scan did not release the export: {state}"))?;
    let left =
        queue_depth(app, &app.aws.order_queue_url).await + queue_depth(app, &app.aws.order_dead_letter_url).await;
    ensure(left == 0, || format!("{left} scans not applied"))
}

/// The order poller: a failed fetch is listed in order health; orders changed since the cursor
/// are fetched and queued, and the listed failure cleared.
async fn order_poller(without: Without) -> FlowResult {
    let shopify = MockServer::start().await;
    let iam = IamApp::new(ExportSettings::default(), Some(&shopify.uri()), without).await;
    let app = &iam.app;
    let product = json!({"product": {"sku": "POLL-1", "vendor_id": app.vendor.id.get()}});
    expect("add a product", app.call(Method::POST, "/products.json", Some(product)).await, StatusCode::CREATED)?;
    let order = json!({
        "id": "gid://shopify/Order/7001", "name": "#7001", "updatedAt": "2026-03-02T11:50:00Z", "cancelledAt": null,
        "shippingAddress": {"name": "Polly Poll"}, "customer": {"firstName": "Polly", "lastName": "Poll"},
        "lineItems": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": [{"id": "gid://shopify/LineItem/70011",
            "sku": "POLL-1", "name": "POLL-1", "quantity": 2, "currentQuantity": 2, "originalUnitPriceSet": {"shopMoney": {"amount": "10.0"}}}]}
    });
    let page = json!({"data": {"orders": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": [order]}}});
    Mock::given(body_string_contains("ShipsyncOrders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&shopify)
        .await;
    // Shopify refuses the first fetch: the failure is listed in order health, and cleared by the
    // next fetch that works.
    Mock::given(body_string_contains("ShipsyncOrders"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&shopify)
        .await;
    let report = app.poller.tick().await.map_err(|error| format!("poll: {error}"))?;
    ensure(report.failures.len() == 1, || format!("the refused fetch is not a failure: {report:?}"))?;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    ensure(health["metadata"]["total_count"] == 1, || format!("the polling failure is not listed: {health}"))?;
    let report = app.poller.tick().await.map_err(|error| format!("poll: {error}"))?;
    ensure((report.stores_polled, report.orders_queued) == (1, 1), || format!("poll: {report:?}"))?;
    let health = expect("order health", app.call(Method::GET, "/order_health.json", None).await, StatusCode::OK)?;
    ensure(health["metadata"]["total_count"] == 0, || format!("the polling failure was not cleared: {health}"))?;
    app.run_orders().await;
    let count = purchase_order_count(app).await?;
    ensure(count == 1, || format!("{count} purchase orders from the polled order, wanted 1"))?;
    back_market_lines_accepted(app).await?;
    wish_token_renewed(app).await
}

/// A Wish store's token is renewed by the poller under a lease, and sealed in place of the old.
async fn wish_token_renewed(app: &TestApp) -> FlowResult {
    let wish = MockServer::start().await;
    let connection = shipsync_domain::tenant::ChannelConnection {
        base_url: Some(wish.uri()),
        origin_country: Some("US".into()),
        ..shipsync_domain::tenant::ChannelConnection::default()
    };
    let store = shipsync_tools::provision::create_store(
        &app.table,
        app.retailer.id,
        "Wish",
        shipsync_domain::tenant::ChannelKind::Wish,
        ExportSettings::default(),
        connection,
    )
    .await
    .map_err(|error| format!("a Wish store: {error}"))?;
    let credentials = std::collections::BTreeMap::from(
        [("wish_client_id", "c1"), ("wish_client_secret", "s1"), ("refresh_token", "r1")]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    app.table
        .save_credentials(app.retailer.id, store.id, &shipsync_domain::secrets::ChannelCredentials(credentials))
        .await
        .map_err(|error| format!("Wish credentials: {error}"))?;
    Mock::given(method("GET"))
        .and(path("/api/v3/oauth/refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "message": "", "data": {
            "access_token": "a2", "refresh_token": "r2", "expiry_time": "2099-01-01T00:00:00.000+00:00",
            "merchant_id": "m", "scopes": ["orders:read", "orders:write"]}})))
        .mount(&wish)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "message": "", "data": []})))
        .mount(&wish)
        .await;
    let report = app.poller.tick().await.map_err(|error| format!("poll: {error}"))?;
    ensure(report.failures.is_empty(), || format!("Wish poll: {report:?}"))?;
    // Read as the admin, which may open them.
    app.table.forget_settings(app.retailer.id);
    let stored = app.table.credentials(app.retailer.id, store.id).await.map_err(|e| format!("open: {e}"))?;
    let pair = (stored.0.get("access_token").cloned(), stored.0.get("refresh_token").cloned());
    ensure(pair == (Some("a2".into()), Some("r2".into())), || format!("the renewed token was not stored: {pair:?}"))
}

/// A Back Market store's polled order line awaiting acceptance is accepted once its SKU routes
/// to a vendor (the poller reads the products for it).
async fn back_market_lines_accepted(app: &TestApp) -> FlowResult {
    let back_market = MockServer::start().await;
    // Set up as an admin: the deployed API refuses a store's base_url.
    let connection = shipsync_domain::tenant::ChannelConnection {
        base_url: Some(back_market.uri()),
        ..shipsync_domain::tenant::ChannelConnection::default()
    };
    let kind = shipsync_domain::tenant::ChannelKind::BackMarket;
    let store = shipsync_tools::provision::create_store(
        &app.table,
        app.retailer.id,
        "Back Market",
        kind,
        ExportSettings::default(),
        connection,
    )
    .await
    .map_err(|error| format!("a Back Market store: {error}"))?;
    let token = std::collections::BTreeMap::from([("api_token".to_owned(), "YmFja21hcmtldA==".to_owned())]);
    app.table
        .save_credentials(app.retailer.id, store.id, &shipsync_domain::secrets::ChannelCredentials(token))
        .await
        .map_err(|error| format!("Back Market credentials: {error}"))?;
    let product = json!({"product": {"sku": "BM-PHONE", "vendor_id": app.vendor.id.get()}});
    expect("add a product", app.call(Method::POST, "/products.json", Some(product)).await, StatusCode::CREATED)?;
    let order = json!({"order_id": 4_700_001, "state": 1, "date_modification": "2026-03-02 11:55:00",
        "shipping_address": {"first_name": "Jeanne", "last_name": "Dupont"},
        "orderlines": [{"id": 47_001, "listing": "BM-PHONE", "product": "Phone", "state": 1, "quantity": 1, "price": "199.00"}]});
    Mock::given(method("GET"))
        .and(path("/ws/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"next": null, "previous": null, "results": [order.clone()]})),
        )
        .mount(&back_market)
        .await;
    Mock::given(method("GET"))
        .and(path("/ws/orders/4700001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order))
        .mount(&back_market)
        .await;
    Mock::given(method("POST"))
        .and(path("/ws/orders/4700001"))
        .and(body_string_contains("\"new_state\":2"))
        // Counted below, not with `expect`: a flow run without a needed action stops short of it.
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&back_market)
        .await;
    let report = app.poller.tick().await.map_err(|error| format!("poll: {error}"))?;
    ensure(report.failures.is_empty() && report.orders_queued == 1, || format!("Back Market poll: {report:?}"))?;
    let accepted = back_market.received_requests().await.unwrap_or_default();
    let accepted = accepted.iter().filter(|request| request.method == http::Method::POST).count();
    ensure(accepted == 1, || format!("{accepted} acceptances sent, wanted 1"))
}

/// The vendor mailer: a purchase order with a label, emailed to its vendor (as the admin's API
/// asks), is sent once with the label attached, and recorded as sent.
async fn vendor_mailer(without: Without) -> FlowResult {
    let iam = IamApp::new(ExportSettings::default(), None, without).await;
    let app = &iam.app;
    let po = app.purchase_order(&app.vendor, "IAM-8", "Ada Lovelace", &[1]).await;
    let admin_api = app.another_api_container();
    let label = json!({"label": {"format": "zpl", "content": "XlhBXkZEWF5GU15YWg=="}});
    let labels_uri = format!("/purchase_orders/{}/labels.json", po.id);
    expect(
        "attach a label",
        app.call_on(&admin_api, Method::POST, &labels_uri, Some(label)).await,
        StatusCode::CREATED,
    )?;
    let vendor = json!({"vendor": {"email": "iam-8@acme.example", "email_purchase_orders": true}});
    let vendor_uri = format!("/vendors/{}.json", app.vendor.id);
    expect("turn emails on", app.call_on(&admin_api, Method::PUT, &vendor_uri, Some(vendor)).await, StatusCode::OK)?;
    let email_uri = format!("/purchase_orders/{}/email.json", po.id);
    expect("email the order", app.call_on(&admin_api, Method::POST, &email_uri, None).await, StatusCode::ACCEPTED)?;
    app.run_mail().await;
    let left = queue_depth(app, &app.aws.mail_queue_url).await + queue_depth(app, &app.aws.mail_dead_letter_url).await;
    ensure(left == 0, || format!("{left} emails not sent"))?;
    let sent = app
        .table
        .client()
        .query()
        .table_name(app.table.table_name())
        .key_condition_expression("pk = :pk AND begins_with(sk, :sent)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("LABELS#{}#{}", app.retailer.id, po.id)),
        )
        .expression_attribute_values(":sent", aws_sdk_dynamodb::types::AttributeValue::S("MAILSENT#".into()))
        .send()
        .await
        .map_err(|error| format!("{error:?}"))?;
    ensure(sent.count() == 1, || format!("{} sent records, wanted 1", sent.count()))
}

/// The label renderer: an HTML label attached (by the admin's API) is rendered to its PDF, its
/// HTML removed, the record marked ready.
async fn label_renderer(without: Without) -> FlowResult {
    let iam = IamApp::new(ExportSettings::default(), None, without).await;
    let app = &iam.app;
    let po = app.purchase_order(&app.vendor, "IAM-7", "Ada Lovelace", &[1]).await;
    let label = json!({"label": {"format": "html", "html": "<h1>SHIP TO Ada Lovelace</h1>"}});
    let uri = format!("/purchase_orders/{}/labels.json", po.id);
    let admin_api = app.another_api_container();
    let attached = app.call_on(&admin_api, Method::POST, &uri, Some(label)).await;
    expect("attach an HTML label", attached, StatusCode::CREATED)?;
    app.run_renders().await;
    let listed = expect("list labels", app.call_on(&admin_api, Method::GET, &uri, None).await, StatusCode::OK)?;
    ensure(listed["labels"][0]["state"] == "ready", || format!("not rendered: {listed}"))?;
    let objects =
        app.aws.s3().list_objects_v2().bucket(&app.aws.labels_bucket).send().await.map_err(|e| format!("{e:?}"))?;
    let keys: Vec<&str> = objects.contents().iter().filter_map(|object| object.key()).collect();
    ensure(keys.len() == 1 && keys[0].ends_with(".pdf"), || format!("the HTML is left beside its PDF: {keys:?}"))
}

/// Carrier webhooks: a scan signed with its store's secret, delivered twice, is queued twice and
/// releases an export waiting for movement once.
async fn carrier_webhooks(without: Without) -> FlowResult {
    let shopify = fake_shopify().await;
    let iam = IamApp::new(waiting_for_movement(), Some(&shopify.uri()), without).await;
    scan_releases_an_export(&iam, "IAM-4", true).await
}

/// The sweeper: a shipment still `scheduled` after its delivery was lost is found through the
/// export-due index once overdue, re-queued, and exported.
async fn sweeper(without: Without) -> FlowResult {
    let shopify = fake_shopify().await;
    let settings = ExportSettings { shipment_export_delay_minutes: 10, ..ExportSettings::default() };
    let iam = IamApp::new(settings, Some(&shopify.uri()), without).await;
    let app = &iam.app;
    let po = app.purchase_order(&app.vendor, "IAM-6", "Edsger Dijkstra", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZIAM0006"])).await;
    ensure(shipment["export_state"] == "scheduled", || format!("{shipment}"))?;
    // Its schedule is lost (deleted by the admin): only the sweeper can move it on.
    let group = &app.aws.planner.schedule_group;
    let listed = app.aws.scheduler.list_schedules().group_name(group).send().await.expect("schedules, as the admin");
    for schedule in listed.schedules() {
        let deleted = app
            .aws
            .scheduler
            .delete_schedule()
            .group_name(group)
            .set_name(schedule.name().map(str::to_owned))
            .send()
            .await;
        deleted.expect("delete a schedule, as the admin");
    }
    app.advance(chrono::Duration::minutes(26));
    let requeued = app.runner.sweep().await.map_err(|error| format!("sweep: {error}"))?;
    ensure(requeued == 1, || format!("{requeued} overdue shipments re-queued, wanted 1"))?;
    let queued = queue_depth(app, &app.aws.planner.queue_url).await;
    ensure(queued == 1, || format!("{queued} export requests queued, wanted 1"))?;
    app.run_exports().await;
    let state = export_state(app, &shipment["id"]).await?;
    ensure(state == "exported", || format!("the re-queued shipment was not exported: {state}"))
}

/// The runner's corrections to moto, which the flows above rely on: a transaction is authorised
/// by the actions of its items, a query of an index by the index's ARN, and a signed GET with a
/// query string is accepted.
#[tokio::test]
async fn the_enforcing_moto_checks_what_aws_checks() {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

    let iam = IamApp::new(ExportSettings::default(), None, None).await;
    let table = iam.app.table.table_name().to_owned();
    let table_arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}");
    let key = |pk: &str| {
        [("pk".to_owned(), AttributeValue::S(pk.to_owned())), ("sk".to_owned(), AttributeValue::S("x".to_owned()))]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    let put_only = deployment::client_for_policy(
        &format!("put-only-{table}"),
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:Query"], "Resource": table_arn}
        ]}),
    )
    .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&put_only);
    let put = |pk: &str| {
        TransactWriteItem::builder()
            .put(Put::builder().table_name(&table).set_item(Some(key(pk))).build().expect("put"))
            .build()
    };
    let update = TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(&table)
                .set_key(Some(key("b")))
                .update_expression("SET n = :n")
                .expression_attribute_values(":n", AttributeValue::N("1".into()))
                .build()
                .expect("update"),
        )
        .build();
    let transaction = dynamodb.transact_write_items().transact_items(put("a")).transact_items(put("c"));
    assert!(transaction.send().await.is_ok(), "PutItem is all a transaction of puts needs");
    let transaction = dynamodb.transact_write_items().transact_items(put("a")).transact_items(update);
    assert!(transaction.send().await.is_err(), "a transaction with an update needs UpdateItem too");

    let index = &shipsync_table::schema::INDEXES[0];
    let query = |on_index: bool| {
        dynamodb
            .query()
            .table_name(&table)
            .set_index_name(on_index.then(|| index.name.to_owned()))
            .key_condition_expression(format!("{} = :k", if on_index { index.partition_key } else { "pk" }))
            .expression_attribute_values(":k", AttributeValue::S("a".into()))
            .send()
    };
    assert!(query(false).await.is_ok(), "the table's ARN allows a query of the table");
    assert!(query(true).await.is_err(), "a query of an index needs the index's ARN");

    let listed = iam.app.aws.scheduler.list_schedules().group_name(&iam.app.aws.planner.schedule_group).send().await;
    assert!(listed.is_ok(), "a signed GET with a query string: {listed:?}");
}
