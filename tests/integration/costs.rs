//! AWS calls per flow, recorded by the cost model's SDK interceptor (`shipsync_tools::cost`) on
//! the harness's moto: each flow's calls per operation may not grow past the figures below
//! (what was measured when they were set; lower them as calls are saved, never raise them
//! without saying why). The figures are printed, with the flows' request units.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use shipsync_tools::cost::Origin;
use shipsync_tools::cost::flows::{CostBench, FlowReport};
use shipsync_tools::cost::prices;
use shipsync_tools::local_aws::LocalAws;
use shipsync_tools::moto::MotoServer;

/// Runs of each flow measured, after one that warms the containers up (as deployed ones are):
/// the first request of a container also reads the settings it then remembers.
const RUNS: usize = 3;

/// At most these calls by shipsync's functions per shipment, created through the API with an
/// export delay and exported (AWS's own schedule firing and SQS event source not included):
/// six in all, the target (it was 15).
const SHIPMENT_CALLS: &[(&str, &str, usize)] = &[
    ("DynamoDB", "GetItem", 2),
    ("DynamoDB", "PutItem", 2),
    ("DynamoDB", "TransactWriteItems", 1),
    ("Scheduler", "CreateSchedule", 1),
];

/// Per Shopify `orders/create` delivery and its processing.
const SHOPIFY_WEBHOOK_CALLS: &[(&str, &str, usize)] = &[
    ("DynamoDB", "BatchGetItem", 1),
    ("DynamoDB", "GetItem", 1),
    ("DynamoDB", "PutItem", 1),
    ("DynamoDB", "Query", 2),
    ("DynamoDB", "TransactWriteItems", 1),
    ("DynamoDB", "UpdateItem", 1),
    ("SQS", "SendMessage", 1),
];

/// Per carrier (EasyPost) delivery and its processing.
const CARRIER_WEBHOOK_CALLS: &[(&str, &str, usize)] =
    &[("DynamoDB", "BatchGetItem", 1), ("DynamoDB", "PutItem", 1), ("DynamoDB", "Query", 1), ("SQS", "SendMessage", 1)];

/// Per polled order (one order at a tick) and its processing.
const POLLED_ORDER_CALLS: &[(&str, &str, usize)] = &[
    ("DynamoDB", "BatchGetItem", 1),
    ("DynamoDB", "GetItem", 3),
    ("DynamoDB", "PutItem", 3),
    ("DynamoDB", "Query", 3),
    ("DynamoDB", "TransactWriteItems", 1),
    ("DynamoDB", "UpdateItem", 1),
    ("SQS", "SendMessage", 1),
];

/// The targets per shipment (warm): at most 6 AWS calls and 12 write units.
const MAX_SHIPMENT_CALLS: usize = 6;
const MAX_SHIPMENT_WRITE_UNITS: f64 = 12.0;
/// A webhook delivery, in the webhook function itself (warm): at most 2 AWS calls.
const MAX_WEBHOOK_CALLS: usize = 2;

/// The functions' calls of `flow`, by (service, operation), over all its runs.
fn function_calls(flow: &FlowReport) -> BTreeMap<(String, String), usize> {
    flow.calls_by_operation()
        .into_iter()
        .filter(|((origin, _, _), _)| *origin == Origin::Function)
        .map(|((_, service, operation), count)| ((service, operation), count))
        .collect()
}

/// Every operation the flow's functions call is listed, and called at most its figure per run.
fn assert_at_most(flow: &FlowReport, limits: &[(&str, &str, usize)]) {
    let memory = prices::function_memory().expect("the template's memory sizes");
    flow.print(&memory);
    for ((service, operation), count) in function_calls(flow) {
        let limit = limits.iter().find(|(s, o, _)| *s == service && *o == operation).map_or(0, |(_, _, limit)| *limit);
        assert!(
            count <= limit * flow.count,
            "{}: {count} {service} {operation} calls over {} runs, at most {limit} a run",
            flow.name,
            flow.count
        );
    }
}

/// The calls `function` made in `flow`, per run.
fn calls_of(flow: &FlowReport, function: &str) -> f64 {
    let calls = flow.calls.iter().filter(|call| call.origin == Origin::Function && call.phase == function).count();
    calls as f64 / flow.count as f64
}

#[tokio::test]
async fn each_flow_makes_at_most_its_aws_calls() {
    let bench = CostBench::start(&crate::harness::moto().endpoint, &crate::harness::unique_table())
        .await
        .expect("the cost bench");
    bench.shipments(1).await.expect("warming up");
    let shipments = bench.shipments(RUNS).await.expect("shipments");
    assert_at_most(&shipments, SHIPMENT_CALLS);
    let calls = calls_of(&shipments, "shipments-api") + calls_of(&shipments, "exporter");
    assert!(calls <= MAX_SHIPMENT_CALLS as f64, "{calls} AWS calls per shipment");
    let writes = shipments.units().total_write() / RUNS as f64;
    assert!(writes <= MAX_SHIPMENT_WRITE_UNITS, "{writes} write units per shipment: {:?}", shipments.units());
    // Writes are priced: a shipment's creation alone writes its item and index entries.
    assert!(writes >= 4.0, "{:?}", shipments.units());
    // AWS delivered each export: one schedule fired, invoking the exporter with no queue between.
    assert_eq!(shipments.scheduler_invocations, RUNS as u64);
    let aws_side = |flow: &FlowReport, operation: &str| {
        flow.calls.iter().filter(|c| c.origin == Origin::Aws && c.operation == operation).count()
    };
    assert_eq!((aws_side(&shipments, "ReceiveMessage"), aws_side(&shipments, "DeleteMessageBatch")), (0, 0));
    assert_eq!(shipments.lambdas.get("exporter").map(|used| used.invocations), Some(RUNS as u64));

    bench.shopify_webhooks(1).await.expect("warming up");
    let shopify = bench.shopify_webhooks(RUNS).await.expect("Shopify webhooks");
    assert_at_most(&shopify, SHOPIFY_WEBHOOK_CALLS);
    assert!(calls_of(&shopify, "shopify-webhooks") <= MAX_WEBHOOK_CALLS as f64);
    bench.carrier_webhooks(1).await.expect("warming up");
    let carriers = bench.carrier_webhooks(RUNS).await.expect("carrier webhooks");
    assert_at_most(&carriers, CARRIER_WEBHOOK_CALLS);
    assert!(calls_of(&carriers, "carrier-webhooks") <= MAX_WEBHOOK_CALLS as f64);
    bench.polled_orders(1).await.expect("warming up");
    let polled = bench.polled_orders(RUNS).await.expect("polled orders");
    assert_at_most(&polled, POLLED_ORDER_CALLS);
}

/// The benchmark searches 100,000 shipments on a moto that keeps each Query's sort until the
/// next write (`MotoServer::start_for_large_searches`): its figures are only true if it answers
/// every query as stock moto does, after writes that move, remove and add index entries too.
#[tokio::test]
async fn the_benchmarks_search_moto_answers_every_query_as_stock_moto_does() {
    let remembering = MotoServer::start_for_large_searches().await.expect("moto for large searches");
    let stock = crate::harness::fresh_aws().await;
    let fast = LocalAws::provision(&remembering.endpoint, &crate::harness::unique_table(), 1).await.expect("AWS");
    for aws in [&stock, &fast] {
        for n in 0..60 {
            put_index_entry(aws, n, &format!("2026-11-{:02}T10:00:00Z", 1 + n % 28)).await;
        }
    }
    let before = [query_pages(&stock).await, query_pages(&fast).await];
    assert_eq!(before[0], before[1], "before any write");
    assert_eq!(before[0][0].iter().map(Vec::len).sum::<usize>(), 60, "the forward walk sees every entry");
    for aws in [&stock, &fast] {
        // Moves an entry to the end, removes one, adds one: each changes the sorted order.
        put_index_entry(aws, 5, "2026-12-31T23:00:00Z").await;
        let table = aws.table.table_name();
        let key = |name: &str, value: String| (name.to_owned(), AttributeValue::S(value));
        aws.table
            .client()
            .delete_item()
            .table_name(table)
            .set_key(Some([key("pk", "SHIPMENT#9".into()), key("sk", "SHIPMENT".into())].into()))
            .send()
            .await
            .expect("delete");
        put_index_entry(aws, 100, "2026-11-15T10:00:00Z").await;
    }
    let after = [query_pages(&stock).await, query_pages(&fast).await];
    assert_eq!(after[0], after[1], "after writes");
    assert_ne!(before[1], after[1], "the writes changed what the queries see");
}

/// An index entry of `by_retailer_created` for shipment `n`, created at `created`; one in seven
/// is Nora Needle's.
async fn put_index_entry(aws: &LocalAws, n: u64, created: &str) {
    let text = |value: String| AttributeValue::S(value);
    let customer = if n.is_multiple_of(7) { "nora needle" } else { "bill smith" };
    aws.table
        .client()
        .put_item()
        .table_name(aws.table.table_name())
        .item("pk", text(format!("SHIPMENT#{n}")))
        .item("sk", text("SHIPMENT".into()))
        .item("gsi1pk", text("RETAILER#1#SHIPMENTS".into()))
        .item("gsi1sk", text(format!("{created}#{n:016}")))
        .item("customer_search", text(customer.into()))
        .send()
        .await
        .expect("put");
}

/// Every page (of 7) of three walks over the index: forward, backward, and filtered on the
/// customer; each page as its keys, in order.
async fn query_pages(aws: &LocalAws) -> Vec<Vec<Vec<String>>> {
    let mut walks = Vec::new();
    for (forward, filtered) in [(true, false), (false, false), (true, true)] {
        let mut pages = Vec::new();
        let mut start = None;
        loop {
            let output = aws
                .table
                .client()
                .query()
                .table_name(aws.table.table_name())
                .index_name("by_retailer_created")
                .key_condition_expression("gsi1pk = :p")
                .set_filter_expression(filtered.then(|| "contains(customer_search, :c)".to_owned()))
                .set_expression_attribute_values(Some(
                    [(":p".to_owned(), AttributeValue::S("RETAILER#1#SHIPMENTS".into()))]
                        .into_iter()
                        .chain(filtered.then(|| (":c".to_owned(), AttributeValue::S("needle".into()))))
                        .collect(),
                ))
                .scan_index_forward(forward)
                .limit(7)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("query");
            let keys = output.items().iter().map(|item| format!("{:?}", item.get("gsi1sk"))).collect();
            pages.push(keys);
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        walks.push(pages);
    }
    walks
}
