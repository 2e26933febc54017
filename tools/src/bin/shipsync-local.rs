//! The local stack: moto for DynamoDB, SQS and Scheduler, the resources as the template declares
//! them, demo data, the shipments API served on a local port through the Lambda's own handler, a
//! fake Shopify the demo Shopify stores export to, a fake Amazon, eBay, Back Market and EasyPost
//! the demo marketplace stores are polled from, export to and register trackers with, the order
//! poller, and a runner that fires due schedules and feeds the queues to their functions.

use std::process::ExitCode;

use exporter::Exporter;
use order_poller::OrderPoller;
use order_processor::OrderProcessor;
use shipments_api::ShipmentsApi;
use shipsync_channels::ChannelEndpoints;
use shipsync_tools::args::Args;
use shipsync_tools::fake_marketplaces::{FakeMarketplaces, Marketplace};
use shipsync_tools::local_aws::LocalAws;
use shipsync_tools::local_server::LocalApps;
use shipsync_tools::moto::MotoServer;
use shipsync_tools::runner::Runner;
use shipsync_tools::{demo, local_server};
use shopify_webhooks::ShopifyWebhooks;
use tokio::net::TcpListener;

const USAGE: &str =
    "usage: shipsync-local [--port 3000] [--shopify-port PORT] [--marketplaces-port PORT] [--table shipsync-local] [--endpoint URL]
  --port               where the API listens (127.0.0.1)
  --shopify-port       where the fake Shopify listens (the API's port + 1 unless given)
  --marketplaces-port  where the fake Amazon, eBay, Back Market and EasyPost listen (the API's port + 2 unless given)
  --table              the DynamoDB table name
  --endpoint           use this running emulator instead of starting moto";

#[tokio::main]
async fn main() -> ExitCode {
    shipsync_platform::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shipsync-local: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1))?;
    let port: u16 = args.parsed("port", 3000)?;
    let table_name = args.value("table").unwrap_or("shipsync-local").to_owned();
    let listener =
        TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    // A fixed port, so that the demo stores' base_url still reaches it when a table is reused.
    let shopify_port: u16 = args.parsed("shopify-port", port.saturating_add(1))?;
    let shopify_listener = TcpListener::bind(("127.0.0.1", shopify_port))
        .await
        .map_err(|e| format!("cannot listen on port {shopify_port} for the fake Shopify: {e}"))?;
    let shopify = demo::fake_shopify(shopify_listener).map_err(|e| format!("starting the fake Shopify: {e}"))?;
    let marketplaces_port: u16 = args.parsed("marketplaces-port", port.saturating_add(2))?;
    let marketplaces_listener = TcpListener::bind(("127.0.0.1", marketplaces_port))
        .await
        .map_err(|e| format!("cannot listen on port {marketplaces_port} for the fake marketplaces: {e}"))?;
    let marketplaces =
        demo::fake_marketplaces(marketplaces_listener).map_err(|e| format!("starting the fake marketplaces: {e}"))?;

    let (endpoint, _moto) = match args.value("endpoint") {
        Some(endpoint) => (endpoint.to_owned(), None),
        None => {
            let moto = MotoServer::start(0).await.map_err(|e| e.to_string())?;
            (moto.endpoint.clone(), Some(moto))
        }
    };
    // Failed exports come back after 10 s here, not the deployed queue's minutes.
    let aws = LocalAws::provision(&endpoint, &table_name, 10).await.map_err(|e| e.to_string())?;
    let table = aws.table.clone();

    let empty = table.is_empty().await.map_err(|e| format!("reading table {table_name}: {e:?}"))?;
    let mut broken = None;
    if empty {
        let demo =
            demo::seed(&table, shopify.url(), &marketplaces).await.map_err(|e| format!("creating demo data: {e}"))?;
        print_welcome(port, &endpoint, shopify.url(), &marketplaces, &demo);
        broken = demo
            .purchase_orders
            .iter()
            .find(|po| po.public_reference == demo::BROKEN_ORDER)
            .cloned()
            .zip(Some(demo.retailer_user.clone()));
        // The marketplace orders become purchase orders once polled: their commands follow then.
        tokio::spawn(announce_marketplace_orders(table.clone(), port, demo));
    } else {
        println!("shipsync local stack: table {table_name} already has data; API on http://127.0.0.1:{port}");
    }

    // The local stack honours a store's base_url (a local fake of a channel); no Lambda does.
    let endpoints = ChannelEndpoints::honouring_store_overrides();
    // Every function built as its Lambda builds it (each one's `build`), on the local emulator.
    let exporter =
        Exporter::build(&aws.exporter_config(), &aws.sdk).map_err(|e| e.to_string())?.with_endpoints(endpoints);
    let runner = Runner::new(aws.clone(), exporter, OrderProcessor::build(&aws.processor_config(), &aws.sdk));
    let apps = LocalApps {
        api: ShipmentsApi::build(&aws.api_config(), &aws.sdk).allowing_store_base_url(),
        // ShipmentsApi::build serves the console with the deployment's console secret.
        webhooks: ShopifyWebhooks::build(&aws.intake_config(), &aws.sdk),
        carrier_webhooks: carrier_webhooks::CarrierWebhooks::build(&aws.intake_config(), &aws.sdk),
    };
    if let Some((po, user)) = broken {
        ship_the_broken_order(&apps.api, &po, &user).await;
    }
    let poller =
        OrderPoller::build(&aws.intake_config(), &aws.sdk).map_err(|e| e.to_string())?.with_endpoints(endpoints);
    let polling = async {
        loop {
            if let Err(problem) = poller.tick().await {
                tracing::warn!(%problem, "polling");
            }
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    };
    tokio::select! {
        () = polling => Ok(()),
        served = local_server::serve(listener, apps) => served.map_err(|e| e.to_string()),
        () = runner.run() => Ok(()),
    }
}

fn print_welcome(port: u16, endpoint: &str, shopify: &str, marketplaces: &FakeMarketplaces, demo: &demo::Demo) {
    let base = format!("http://127.0.0.1:{port}");
    let po = &demo.purchase_orders[0];
    let user = &demo.retailer_user;
    let vendor = &demo.vendor_user;
    println!(
        r#"
shipsync local stack is up.
  API:          {base}
  DynamoDB:     {endpoint} (moto, in memory: data lasts until this command stops)
  Shopify:      {shopify} (a fake: the demo stores export to it; it logs each fulfillment it gets)
  Amazon:       {amazon} (a fake, like eBay, Back Market and EasyPost: each logs what it gets)
  eBay:         {ebay}
  Back Market:  {back_market}
  Walmart:      {walmart}
  WooCommerce:  {woocommerce}
  Groupon:      {groupon}
  Wish:         {wish} (its store has no token yet: the poller's first tick obtains one)
  EasyPost:     {easypost} (the marketplace stores' tracking provider)
  Retailer:     {retailer} (id {retailer_id})
  Retailer API user:  key {key}  password {password}
  Console:      {base}/console/  (sign in with the retailer API user above: order health shows the demo's
                failed export, PO-1004, whose order is gone from the fake Shopify; press Export now to try it again)
  Vendor API user ({vendor_name}):  key {vendor_key}  password {vendor_password}  (time zone America/New_York)

Create a shipment on purchase order {number} (expect HTTP 201):

curl -s -u '{key}:{password}' -X POST {base}/purchase_orders/{po_id}/shipments.json \
  -H 'Content-Type: application/json' \
  -d '{{"shipment": {{"shipper_name": "UPS", "vendor_invoice_reference": "AB1234", "shipper_shipping_cost": 5.0,
       "shipment_items_attributes": [{{"order_item_id": {item1}, "quantity": 1}}, {{"order_item_id": {item2}, "quantity": 2}}],
       "shipment_trackings_attributes": [{{"tracking": "1Z999AA10123456784"}}]}}}}'

It is planned for one minute from now (the demo store's delay). Watch it go out to the fake Shopify:
      curl -s -u '{key}:{password}' {base}/shipments/<id>.json   (export_state: scheduled, then exported)
      or export it at once: curl -s -u '{key}:{password}' -X POST {base}/shipments/<id>/export.json
Then: curl -sg -u '{key}:{password}' '{base}/shipments.json?search[tracking]=1Z999'
      curl -sg -u '{key}:{password}' '{base}/purchase_orders.json'
A Shopify order by webhook (signed with the demo store's secret), split into purchase orders per vendor:
      scripts/send-shopify-webhook {store_id} {secret} orders/create tools/demo/orders_create.json {port}
      curl -sg -u '{key}:{password}' '{base}/purchase_orders.json?per_page=10&page=1'
  and the fulfillment webhook that follows once its shipment went out (it creates no duplicate):
      scripts/send-shopify-webhook {store_id} {secret} fulfillments/create tools/demo/fulfillments_create.json {port}
A store that confirms on movement: a shipment on {marketplace_number} waits for the carrier:
      curl -s -u '{key}:{password}' -X POST {base}/purchase_orders/{marketplace_po}/shipments.json -H 'Content-Type: application/json' \
        -d '{{"shipment": {{"shipper_name": "UPS", "shipment_items_attributes": [{{"order_item_id": {marketplace_item}, "quantity": 1}}], "shipment_trackings_attributes": [{{"tracking": "1ZMOVE0001"}}]}}}}'
      (export_state: waiting_for_movement), then a signed EasyPost scan puts it in transit and it goes out within seconds:
      scripts/send-carrier-webhook {marketplace_store} {marketplace_secret} 1ZMOVE0001 in_transit {port}
  (posted to that store's own URL, /carrier_webhooks/easypost/{marketplace_store}, signed with its tracking_webhook_secret)
A custom channel (store {custom_store}, UntilGone): post it an order as the marketplace would, signed with its webhook secret:
      scripts/send-custom-webhook {custom_store} {custom_secret} tools/demo/custom_order.json {port}
  it becomes purchase order {custom_number}; a shipment on it goes at once to the fake receiver
  ({custom_receiver}), which logs "fake custom channel: shipment received" (see the README's custom channel).
A shipping label (or packing slip) as HTML, rendered to PDF by the renderer (Debian's Chromium), then listed with a download link:
      curl -s -u '{key}:{password}' -X POST {base}/purchase_orders/{po_id}/labels.json -H 'Content-Type: application/json' \
        -d '{{"label": {{"format": "html", "html": "<h1>Packing slip {number}</h1>"}}}}'
      curl -s -u '{key}:{password}' {base}/purchase_orders/{po_id}/labels.json   (state: ready, download_url)
Once it has shipped, a return on it (RMA), then moved on (the vendor user marks it received):
      curl -s -u '{key}:{password}' -X POST {base}/purchase_orders/{po_id}/returns.json -H 'Content-Type: application/json' \
        -d '{{"return": {{"items": [{{"order_item_id": {item1}, "quantity": 1}}], "reason": "arrived damaged"}}}}'
      curl -s -u '{key}:{password}' -X PUT {base}/returns/<id>.json -H 'Content-Type: application/json' -d '{{"return": {{"state": "authorized"}}}}'
  authorized, it goes to the fake Shopify as a return (it logs "fake Shopify: return opened"; channel_sync: pushed).
Units that will not ship, cancelled and sent to the fake Shopify once (it logs "fake Shopify: units cancelled"):
      curl -s -u '{key}:{password}' -X POST {base}/purchase_orders/{po_id}/cancellations.json -H 'Content-Type: application/json' \
        -d '{{"cancellation": {{"items": [{{"order_item_id": {item2}, "quantity": 1}}], "reason": "out_of_stock", "note": "discontinued"}}}}'
  as the vendor user it waits for the retailer (order health lists it; POST {base}/cancellations/<id>/approve.json):
      curl -s -u '{vendor_key}:{vendor_password}' -X POST {base}/purchase_orders/{po_id}/cancellations.json -H 'Content-Type: application/json' \
        -d '{{"cancellation": {{"items": [{{"order_item_id": {item2}, "quantity": 1}}], "reason": "out_of_stock"}}}}'
      curl -s -u '{key}:{password}' {base}/order_health.json
Amazon, eBay, Back Market, Walmart, WooCommerce, Groupon and Wish each hold an order for the demo stores {marketplace_stores}: the order poller
takes them in now (and every 10 minutes). Once their purchase orders exist, the commands that ship them
are printed below.
Press Ctrl-C to stop.
"#,
        amazon = marketplaces.url(Marketplace::Amazon),
        ebay = marketplaces.url(Marketplace::Ebay),
        back_market = marketplaces.url(Marketplace::BackMarket),
        walmart = marketplaces.url(Marketplace::Walmart),
        woocommerce = marketplaces.url(Marketplace::WooCommerce),
        groupon = marketplaces.url(Marketplace::Groupon),
        wish = marketplaces.url(Marketplace::Wish),
        custom_store = demo.custom.store.id,
        custom_secret = demo.custom.webhook_secret,
        custom_number = demo.custom.purchase_order_number,
        custom_receiver = demo.custom.store.connection.shipment_url.clone().unwrap_or_default(),
        easypost = marketplaces.easypost_url(),
        marketplace_stores = demo
            .marketplaces
            .iter()
            .map(|market| format!("{} (store {})", market.marketplace.name(), market.store.id))
            .collect::<Vec<_>>()
            .join(", "),
        marketplace_number = demo.marketplace_po.public_reference,
        marketplace_po = demo.marketplace_po.id,
        marketplace_item = demo.marketplace_po.items[0].id,
        marketplace_store = demo.marketplace_po.store_id,
        marketplace_secret = demo.marketplace_tracking_secret,
        store_id = demo.store.id,
        secret = demo.webhook_secret,
        retailer = demo.retailer.name,
        retailer_id = demo.retailer.id,
        key = user.key,
        password = user.password,
        vendor_name = demo.vendors[0].name,
        vendor_key = vendor.key,
        vendor_password = vendor.password,
        number = po.public_reference,
        po_id = po.id,
        item1 = po.items[0].id,
        item2 = po.items[1].id,
    );
}

/// Waits for each marketplace order's purchase order (the poller's first tick, then the order
/// processor), and prints the commands that ship it: a shipment on it, then the carrier's first scan.
async fn announce_marketplace_orders(table: shipsync_table::Table, port: u16, demo: demo::Demo) {
    let mut waiting: Vec<&demo::MarketplaceDemo> = demo.marketplaces.iter().collect();
    // Polling starts at once and its orders are processed in seconds: ten minutes is plenty.
    for _ in 0..600 {
        let mut still = Vec::new();
        for market in waiting {
            match table.purchase_order_by_number(demo.retailer.id, &market.purchase_order_number).await {
                Ok(Some(po)) => println!("{}", demo::marketplace_walk(market, &po, &demo, port)),
                Ok(None) => still.push(market),
                Err(error) => {
                    tracing::warn!(error = ?error, "reading a marketplace purchase order");
                    still.push(market);
                }
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    for market in waiting {
        println!(
            "{} order {} has no purchase order yet: see the log for the poller's problem (or GET /order_health.json)",
            market.marketplace.name(),
            market.order.id
        );
    }
}

/// Ships the demo purchase order whose Shopify order is gone, and exports it at once, through
/// the API as a person would: its export fails at the fake Shopify, so the console has a real
/// failed export to show (and "Export now" to press once the cause is understood).
async fn ship_the_broken_order(
    api: &ShipmentsApi,
    po: &shipsync_domain::purchase_order::PurchaseOrder,
    user: &shipsync_tools::provision::Credentials,
) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.key, user.password));
    let call = |method: http::Method, path: String, body: String| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Basic {auth}"))
            .header("content-type", "application/json")
            .body(bytes::Bytes::from(body))
    };
    let body = format!(
        r#"{{"shipment": {{"shipper_name": "UPS", "shipment_items_attributes": [{{"order_item_id": {}, "quantity": 1}}], "shipment_trackings_attributes": [{{"tracking": "1Z999AA10123459999"}}]}}}}"#,
        po.items[0].id
    );
    let Ok(request) = call(http::Method::POST, format!("/purchase_orders/{}/shipments.json", po.id), body) else {
        return;
    };
    let created = api.handle(request).await;
    let id =
        serde_json::from_str::<serde_json::Value>(created.body()).ok().and_then(|json| json["shipment"]["id"].as_u64());
    let Some(id) = id else {
        tracing::warn!(status = %created.status(), "the demo's broken order was not shipped");
        return;
    };
    if let Ok(request) = call(http::Method::POST, format!("/shipments/{id}/export.json"), String::new()) {
        api.handle(request).await;
    }
}
