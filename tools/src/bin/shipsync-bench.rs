//! Benchmarks that print figures (no assertions): the Shopify webhook endpoint's time to
//! acknowledge a delivery and its AWS calls, and the order processor's throughput and calls per
//! event, against a local moto (no network between the handler and the caller).
//!
//! Then the cost model (`shipsync_tools::cost`): each flow run `--shipments` times with every AWS
//! call recorded, priced by DynamoDB's unit rules and the on-demand price list, and one-page
//! searches for a retailer with `--search-size` shipments.
//!
//! usage: shipsync-bench [--deliveries 1000] [--process 200] [--shipments 50] [--search-size 100000] [--quick]
//!                       [--cold-start target/release [--runs 9] [--cold-start-only]]
//! (moto slows as its table grows, so the processor is timed on the first `--process` events;
//! `--quick`, for CI: 50 deliveries, 20 processed, 5 runs of each flow, 2,000 shipments searched)
//! `--cold-start`: first, each function's start beside an empty `lambda_http` function
//! (`shipsync_tools::coldstart`; `scripts/bench-cold-start` builds the release binaries).

use std::time::{Duration, Instant};

use order_processor::OrderProcessor;
use shipsync_domain::export::ExportSettings;
use shipsync_domain::orders::Product;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, FeeSettings};
use shipsync_tools::args::Args;
use shipsync_tools::cost::flows::{CostBench, SearchBench};
use shipsync_tools::cost::prices;
use shipsync_tools::local_aws::LocalAws;
use shipsync_tools::moto::MotoServer;
use shipsync_tools::provision;
use shipsync_tools::runner::Runner;
use shopify_webhooks::ShopifyWebhooks;

const SECRET: &str = "bench-secret";

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1))?;
    if let Some(release_dir) = args.value("cold-start") {
        let moto = MotoServer::start(0).await.map_err(|e| e.to_string())?;
        let runs = args.parsed("runs", 9)?;
        println!("{}", shipsync_tools::coldstart::cold_start_report(release_dir.as_ref(), runs, &moto.endpoint).await?);
        if args.flag("cold-start-only") {
            return Ok(());
        }
    }
    let quick = args.flag("quick");
    let deliveries: usize = args.parsed("deliveries", if quick { 50 } else { 1000 })?;
    let to_process: usize = args.parsed("process", if quick { 20 } else { 200 })?;
    let runs: usize = args.parsed("shipments", if quick { 5 } else { 50 })?;
    let search_size: usize = args.parsed("search-size", if quick { 2_000 } else { 100_000 })?;
    let moto = MotoServer::start(0).await.map_err(|e| e.to_string())?;
    let aws = LocalAws::provision(&moto.endpoint, "shipsync-bench", 30).await.map_err(|e| e.to_string())?;
    let table = aws.table.clone();
    let failed = |e: provision::ProvisionError| e.to_string();
    let retailer = provision::create_retailer(&table, "Bench", FeeSettings::default()).await.map_err(failed)?;
    let vendor = provision::create_vendor(&table, retailer.id, "Vendor").await.map_err(failed)?;
    let connection = ChannelConnection {
        shop_domain: Some("bench.myshopify.com".into()),
        base_url: None,
        ..ChannelConnection::default()
    };
    let shop = provision::create_store(
        &table,
        retailer.id,
        "Shop",
        ChannelKind::Shopify,
        ExportSettings::default(),
        connection,
    )
    .await
    .map_err(failed)?;
    let credentials = ChannelCredentials([("webhook_secret".to_owned(), SECRET.to_owned())].into());
    table.save_credentials(retailer.id, shop.id, &credentials).await.map_err(|e| e.to_string())?;
    let product = Product {
        sku: shipsync_domain::vocabulary::Sku::parse("BENCH-1")?,
        vendor_id: vendor.id,
        name: "Bench item".into(),
        cost: None,
    };
    table.save_product(retailer.id, &product).await.map_err(|e| e.to_string())?;

    let webhooks = ShopifyWebhooks::new(table.clone(), aws.sqs.clone(), aws.order_queue_url.clone());
    let mut times = Vec::with_capacity(deliveries);
    let calls_before = table.calls_made();
    for n in 0..deliveries {
        let body = serde_json::json!({
            "id": 900_000 + n, "name": format!("#B{n}"), "updated_at": "2026-11-21T10:00:00Z", "cancelled_at": null,
            "shipping_address": {"name": "Bench Customer"},
            "line_items": [{"id": 800_000 + n, "sku": "BENCH-1", "name": "Bench item", "quantity": 1, "current_quantity": 1}]
        })
        .to_string();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("/webhooks/shopify/{}", shop.id))
            .header("x-shopify-topic", "orders/create")
            .header("x-shopify-shop-domain", "bench.myshopify.com")
            .header("x-shopify-webhook-id", format!("bench-{n}"))
            .header("x-shopify-hmac-sha256", shopify_webhooks::sign(body.as_bytes(), SECRET))
            .body(bytes::Bytes::from(body))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let response = webhooks.handle(request).await;
        times.push(started.elapsed());
        if response.status() != 200 {
            return Err(format!("delivery {n} answered {}: {}", response.status(), response.body()));
        }
    }
    let webhook_calls = table.calls_made() - calls_before;
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!("webhook acknowledgement over {deliveries} local deliveries (handler → moto, no network in front):");
    println!("  median {:?}, p99 {:?}, max {:?}", at(0.5), at(0.99), times.last().copied().unwrap_or_default());
    println!(
        "  AWS calls per delivery: {:.1} DynamoDB (store reference and store, credentials, delivery check, delivery record) + 1 KMS Decrypt (the webhook secret) + 1 SQS SendMessage",
        webhook_calls as f64 / deliveries as f64
    );

    // Carrier scans: EasyPost `tracker.updated`, signed with a store's own secret and posted to
    // that store's URL, each a new event.
    let tracked = provision::create_store_tracked(
        &table,
        retailer.id,
        "Tracked shop",
        ChannelKind::Shopify,
        ExportSettings::default(),
        ChannelConnection { shop_domain: Some("tracked.myshopify.com".into()), ..ChannelConnection::default() },
        shipsync_domain::tenant::TrackingSettings {
            provider: Some(shipsync_domain::tracking::TrackingProvider::Easypost),
            ..Default::default()
        },
    )
    .await
    .map_err(failed)?;
    let tracked_credentials = ChannelCredentials(
        [
            ("tracking_api_key".to_owned(), "EZBENCH".to_owned()),
            ("tracking_webhook_secret".to_owned(), SECRET.to_owned()),
        ]
        .into(),
    );
    table.save_credentials(retailer.id, tracked.id, &tracked_credentials).await.map_err(|e| e.to_string())?;
    let carriers = carrier_webhooks::CarrierWebhooks::new(table.clone(), aws.sqs.clone(), aws.order_queue_url.clone());
    let mut times = Vec::with_capacity(deliveries);
    let calls_before = table.calls_made();
    for n in 0..deliveries {
        let body = serde_json::json!({
            "id": format!("evt_{n}"), "object": "Event", "description": "tracker.updated",
            "result": {"tracking_code": format!("1ZBENCH{n}"), "status": "in_transit", "updated_at": "2026-11-21T10:00:00Z"}
        })
        .to_string();
        let signature =
            carrier_webhooks::providers::sign(carrier_webhooks::Provider::EasyPost, body.as_bytes(), SECRET, 0);
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("/carrier_webhooks/easypost/{}", tracked.id))
            .header("x-hmac-signature", signature)
            .body(bytes::Bytes::from(body))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let response = carriers.handle(request).await;
        times.push(started.elapsed());
        if response.status() != 200 {
            return Err(format!("scan {n} answered {}: {}", response.status(), response.body()));
        }
    }
    let scan_calls = table.calls_made() - calls_before;
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!("carrier webhook acknowledgement over {deliveries} local EasyPost deliveries:");
    println!("  median {:?}, p99 {:?}, max {:?}", at(0.5), at(0.99), times.last().copied().unwrap_or_default());
    println!(
        "  AWS calls per scan: {:.1} DynamoDB (store reference and store, its webhook secrets) + 1 KMS Decrypt + 1 SQS SendMessage; \
         the processor then reads the tracking index (1 Query + 1 BatchGetItem) and writes each matching shipment once",
        scan_calls as f64 / deliveries as f64
    );

    // On the benchmark's table, whose calls it counts.
    let exporter = exporter::Exporter::new(
        table.clone(),
        aws.sqs.clone(),
        shipsync_channels::http_client(exporter::CHANNEL_TIMEOUT).map_err(|e| e.to_string())?,
        &aws.exporter_config(),
    );
    let runner = Runner::new(aws.clone(), exporter, OrderProcessor::new(table.clone(), aws.export_planner()));
    let calls_before = table.calls_made();
    let started = Instant::now();
    let mut processed = 0;
    while processed < to_process.min(deliveries) {
        let batch = runner.deliver_order_events().await.map_err(|e| e.to_string())?;
        if batch == 0 && started.elapsed() > Duration::from_secs(600) {
            break;
        }
        processed += batch;
    }
    let elapsed = started.elapsed();
    println!("order processor over {processed} orders/create events (batches of 10, one consumer):");
    println!(
        "  {:.0} events/s, {:.1} DynamoDB calls per new order (one purchase order each)",
        processed as f64 / elapsed.as_secs_f64(),
        (table.calls_made() - calls_before) as f64 / processed.max(1) as f64
    );
    cost_model(&moto.endpoint, runs, search_size).await
}

/// The cost model: every flow's calls, units and dollars, the price list it used, and the
/// searches over a large retailer.
async fn cost_model(endpoint: &str, runs: usize, search_size: usize) -> Result<(), String> {
    let memory = prices::function_memory()?;
    println!();
    println!("cost model: every AWS call recorded by an SDK interceptor, priced by DynamoDB's unit rules");
    println!("(us-east-1, on-demand, past the free tiers; Lambda at each function's template memory, arm64,");
    println!("times the handler's measured duration, which moto's latency inflates):");
    for price in prices::ALL {
        println!(
            "  {:<40} ${} per {} {}  ({}, read {})",
            price.what, price.dollars, price.per, price.unit, price.source, price.read_on
        );
    }
    let bench = CostBench::start(endpoint, "shipsync-bench-cost").await?;
    let shipments = bench.shipments(runs).await?;
    let shopify = bench.shopify_webhooks(runs).await?;
    let carriers = bench.carrier_webhooks(runs).await?;
    let polled = bench.polled_orders(runs).await?;
    for flow in [&shipments, &shopify, &carriers, &polled] {
        println!();
        flow.print(&memory);
    }
    // A moto of its own, which keeps its sorts between writes: the same answers and the same
    // reads, in a fraction of stock moto's time at 100,000 items. The flows above keep stock
    // moto, whose latency is part of their measured Lambda time.
    let search_moto = MotoServer::start_for_large_searches().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let search = SearchBench::seed(&search_moto.endpoint, "shipsync-bench-search", search_size).await?;
    println!();
    let seeded = started.elapsed();
    let started = Instant::now();
    let searches = search.measure().await?;
    println!(
        "one-page searches for a retailer with {search_size} shipments (seeded in {:.0} s, searched in {:.0} s; {} per page):",
        seeded.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        shipsync_domain::search::MAX_PER_PAGE
    );
    for figures in searches {
        figures.print();
    }
    Ok(())
}
