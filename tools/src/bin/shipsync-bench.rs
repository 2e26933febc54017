//! Benchmarks that print figures (no assertions): the Shopify webhook endpoint's time to
//! acknowledge a delivery and its AWS calls, and the order processor's throughput and calls per
//! event, against a local moto (no network between the handler and the caller).
//!
//! usage: shipsync-bench [--deliveries 1000] [--process 200] [--cold-start target/release [--runs 9]]
//! (moto slows as its table grows, so the processor is timed on the first `--process` events)

use std::time::{Duration, Instant};

use order_processor::OrderProcessor;
use shipsync_domain::export::ExportSettings;
use shipsync_domain::orders::Product;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, FeeSettings};
use shipsync_tools::args::Args;
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
    }
    let deliveries: usize = args.parsed("deliveries", 1000)?;
    let to_process: usize = args.parsed("process", 200)?;
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

    // Carrier scans: EasyPost `tracker.updated`, signed, each a new event.
    table.set_carrier_webhook_secret("easypost", SECRET).await.map_err(|e| e.to_string())?;
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
            .uri("/carrier_webhooks/easypost")
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
        "  AWS calls per scan: {:.1} DynamoDB (provider secret, event check, event record) + 1 SQS SendMessage; \
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
    Ok(())
}
