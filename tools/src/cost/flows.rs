//! The flows the cost model prices, each run through the functions' public entry points on a
//! local deployment whose clients record every call: a shipment created through the API with an
//! export delay and exported to a fake Shopify; a Shopify webhook delivery and its processing; a
//! carrier webhook delivery and its processing; a polled order and its processing; and one-page
//! searches over a retailer's many shipments. What AWS itself does on the way (a schedule firing
//! into the export queue, Lambda's event source receiving and deleting messages) is made by the
//! local runner on clients recorded as [`Origin::Aws`], and priced as AWS bills it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use base64::Engine;
use chrono::{DateTime, Utc};
use exporter::Exporter;
use order_poller::OrderPoller;
use order_processor::OrderProcessor;
use serde_json::{Value, json};
use shipments_api::ShipmentsApi;
use shipsync_channels::ChannelEndpoints;
use shipsync_domain::export::ExportSettings;
use shipsync_domain::orders::Product;
use shipsync_domain::purchase_order::{NewOrderItem, NewPurchaseOrder, PurchaseOrder};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore, FeeSettings, Retailer, Vendor};
use shopify_webhooks::ShopifyWebhooks;

use super::units::{Units, call_units};
use super::{Call, Item, Origin, Recorder, prices};
use crate::fake_shopify::{FakeLine, FakeOrder, FakeShopify};
use crate::local_aws::LocalAws;
use crate::provision::{self, Credentials};
use crate::runner::Runner;

const ACCESS_TOKEN: &str = "shpat_cost_token";
const WEBHOOK_SECRET: &str = "whsec_cost_secret";
const SHOP_DOMAIN: &str = "cost.myshopify.com";
const SKU: &str = "COST-1";
/// The secret the tracked store's EasyPost account signs its webhooks with.
const TRACKING_WEBHOOK_SECRET: &str = "ep_cost_webhook_secret";
/// The store's export delay: a shipment's export is scheduled, as most are.
const EXPORT_DELAY_MINUTES: u32 = 5;

type Failed = String;

fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Failed {
    move |error| format!("{what}: {error}")
}

/// A function's invocations in a flow and the time they took (the recorder's own reads left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LambdaUse {
    pub invocations: u64,
    pub duration: Duration,
}

/// One flow run `count` times: every call it made, and what else AWS bills for it.
#[derive(Debug, Clone)]
pub struct FlowReport {
    pub name: &'static str,
    /// What one run is: "shipment", "delivery", "polled order".
    pub unit: &'static str,
    /// The same, plural.
    pub units: &'static str,
    pub count: usize,
    pub calls: Vec<Call>,
    /// By function (`shipments-api`, ...).
    pub lambdas: BTreeMap<&'static str, LambdaUse>,
    pub api_gateway_requests: u64,
    pub scheduler_invocations: u64,
}

/// Dollars of a flow's runs, by service.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dollars {
    pub dynamodb: f64,
    pub lambda: f64,
    /// Lambda's duration on x86_64 instead of arm64 would add this.
    pub lambda_x86_extra: f64,
    pub api_gateway: f64,
    pub sqs: f64,
    pub scheduler: f64,
    pub kms: f64,
}

impl Dollars {
    pub fn total(&self) -> f64 {
        self.dynamodb + self.lambda + self.api_gateway + self.sqs + self.scheduler + self.kms
    }
}

/// Whether AWS bills a call: the local runner's schedule bookkeeping (listing, reading and
/// deleting schedules, finding a queue's URL) stands in for what AWS does unbilled.
fn billed(call: &Call) -> bool {
    match (call.origin, call.service.as_str()) {
        (Origin::Function, "Scheduler") => false,
        (Origin::Function, _) => true,
        (Origin::Aws, "SQS") => call.operation != "GetQueueUrl",
        (Origin::Aws, _) => false,
    }
}

impl FlowReport {
    /// Calls a run made, by (origin, service, operation), billed or not.
    pub fn calls_by_operation(&self) -> BTreeMap<(Origin, String, String), usize> {
        let mut counts = BTreeMap::new();
        for call in &self.calls {
            *counts.entry((call.origin, call.service.clone(), call.operation.clone())).or_default() += 1;
        }
        counts
    }

    /// Calls the functions made, by service: the figure the targets count.
    pub fn function_calls_by_service(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in self.calls.iter().filter(|call| call.origin == Origin::Function) {
            *counts.entry(call.service.clone()).or_default() += 1;
        }
        counts
    }

    pub fn units(&self) -> Units {
        let mut units = Units::default();
        for call in &self.calls {
            units += call_units(call);
        }
        units
    }

    /// Items a Query examined and items read by key, over all runs.
    pub fn items_read(&self) -> (usize, usize) {
        let examined = self.calls.iter().filter_map(|c| c.scan).map(|s| s.scanned_count).sum();
        let by_key = self.calls.iter().map(|c| c.items_read.len()).sum();
        (examined, by_key)
    }

    /// What all runs cost, by service.
    pub fn dollars(&self, memory: &BTreeMap<String, u64>) -> Dollars {
        let units = self.units();
        let sqs_requests: f64 = self
            .calls
            .iter()
            .filter(|call| call.service == "SQS" && billed(call))
            // Each 64 KB chunk of a request's payload is billed as one request.
            .map(|call| call.payload_bytes.div_ceil(64 * 1024).max(1) as f64)
            // From +0.0: an empty float sum is -0.0, printed "-0.00".
            .fold(0.0, |total, requests| total + requests);
        let kms_requests = self.calls.iter().filter(|call| call.service == "KMS" && billed(call)).count() as f64;
        let mut lambda = 0.0;
        let mut gb_seconds = 0.0;
        for (function, used) in &self.lambdas {
            let megabytes = memory.get(*function).copied().unwrap_or(128) as f64;
            gb_seconds += megabytes / 1024.0 * used.duration.as_secs_f64();
            lambda += used.invocations as f64 * prices::LAMBDA_REQUESTS.each();
        }
        Dollars {
            dynamodb: units.read * prices::DYNAMODB_READ.each() + units.total_write() * prices::DYNAMODB_WRITE.each(),
            lambda: lambda + gb_seconds * prices::LAMBDA_ARM64.each(),
            lambda_x86_extra: gb_seconds * (prices::LAMBDA_X86_64.each() - prices::LAMBDA_ARM64.each()),
            api_gateway: self.api_gateway_requests as f64 * prices::API_GATEWAY_HTTP.each(),
            sqs: sqs_requests * prices::SQS_REQUESTS.each(),
            scheduler: self.scheduler_invocations as f64 * prices::SCHEDULER_INVOCATIONS.each(),
            kms: kms_requests * prices::KMS_REQUESTS.each(),
        }
    }

    /// The flow's figures per run, as the benchmark prints them.
    pub fn print(&self, memory: &BTreeMap<String, u64>) {
        let per = self.count.max(1) as f64;
        println!("{} ({} runs; figures per {}):", self.name, self.count, self.unit);
        let function_calls: usize = self.function_calls_by_service().values().sum();
        let mut by_function: BTreeMap<&str, usize> = BTreeMap::new();
        for call in self.calls.iter().filter(|call| call.origin == Origin::Function) {
            *by_function.entry(call.phase.as_str()).or_default() += 1;
        }
        let by_function: Vec<String> =
            by_function.iter().map(|(phase, count)| format!("{phase} {:.2}", *count as f64 / per)).collect();
        println!(
            "  AWS calls by shipsync's functions: {:.2} ({})",
            function_calls as f64 / per,
            by_function.join(", ")
        );
        for ((origin, service, operation), count) in self.calls_by_operation() {
            let by = match origin {
                Origin::Function => "function",
                Origin::Aws if billed_operation(&service, &operation) => "AWS-side, billed",
                Origin::Aws => "local runner's bookkeeping, not billed",
            };
            println!("    {service:<9} {operation:<22} {:>6.2}  ({by})", count as f64 / per);
        }
        if self.scheduler_invocations > 0 {
            println!(
                "    Scheduler invocations (AWS firing the schedule): {:.2}",
                self.scheduler_invocations as f64 / per
            );
        }
        if std::env::var_os("SHIPSYNC_COST_CALLS").is_some() {
            for call in &self.calls {
                let units = call_units(call);
                println!(
                    "      [{}] {:?} {} {} index={:?} consistent={} transactional={} failed={} read={} write={}+{} writes={:?} read_sizes={:?} scan={:?}",
                    call.phase,
                    call.origin,
                    call.service,
                    call.operation,
                    call.index,
                    call.consistent,
                    call.transactional,
                    call.failed,
                    units.read,
                    units.write,
                    units.index_write,
                    call.writes,
                    call.items_read,
                    call.scan
                );
            }
        }
        let units = self.units();
        println!(
            "  DynamoDB: {:.2} read units, {:.2} write units ({:.2} table + {:.2} index)",
            units.read / per,
            units.total_write() / per,
            units.write / per,
            units.index_write / per
        );
        for (function, used) in &self.lambdas {
            println!(
                "  Lambda {function}: {:.2} invocations, {:.1} ms each (moto's latency included), {} MB",
                used.invocations as f64 / per,
                used.duration.as_secs_f64() * 1000.0 / used.invocations.max(1) as f64,
                memory.get(*function).copied().unwrap_or(128)
            );
        }
        let dollars = self.dollars(memory);
        let million = 1e6 / per;
        println!(
            "  $ per million {}: {:.2} = DynamoDB {:.2} + Lambda {:.2} + API Gateway {:.2} + SQS {:.2} + Scheduler {:.2} + KMS {:.2} (Lambda on x86_64: +{:.2})",
            self.units,
            dollars.total() * million,
            dollars.dynamodb * million,
            dollars.lambda * million,
            dollars.api_gateway * million,
            dollars.sqs * million,
            dollars.scheduler * million,
            dollars.kms * million,
            dollars.lambda_x86_extra * million,
        );
    }
}

fn billed_operation(service: &str, operation: &str) -> bool {
    service == "SQS" && operation != "GetQueueUrl"
}

/// A deployment whose functions' clients are recorded, with one retailer, vendor and Shopify
/// store (its orders at a local fake Shopify), and the clock every function reads.
pub struct CostBench {
    recorder: Recorder,
    setup: LocalAws,
    functions: LocalAws,
    clock: Arc<Mutex<DateTime<Utc>>>,
    shop: FakeShopify,
    retailer: Retailer,
    vendor: Vendor,
    store: ChannelStore,
    /// A second store with a tracking provider: its shipments are found by its carrier scans.
    tracked_store: ChannelStore,
    user: Credentials,
    api: ShipmentsApi,
    runner: Runner,
    webhooks: ShopifyWebhooks,
    carriers: carrier_webhooks::CarrierWebhooks,
    poller: OrderPoller,
    next_order: Mutex<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn basic_auth(user: &Credentials) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.key, user.password));
    format!("Basic {token}")
}

impl CostBench {
    /// Provisions `name`'s resources on the emulator at `endpoint`, with a store whose exports
    /// wait `EXPORT_DELAY_MINUTES`.
    pub async fn start(endpoint: &str, name: &str) -> Result<Self, Failed> {
        let setup = LocalAws::provision(endpoint, name, 30).await.map_err(failed("provisioning"))?;
        Self::on(
            setup,
            ExportSettings { shipment_export_delay_minutes: EXPORT_DELAY_MINUTES, ..ExportSettings::default() },
        )
        .await
    }

    async fn on(setup: LocalAws, export: ExportSettings) -> Result<Self, Failed> {
        let recorder = Recorder::new(&setup.sdk).map_err(failed("the recorder"))?;
        let functions = setup.recorded(&recorder, Origin::Function);
        let aws_side = setup.recorded(&recorder, Origin::Aws);
        let table = &setup.table;
        let retailer =
            provision::create_retailer(table, "Cost", FeeSettings::default()).await.map_err(failed("retailer"))?;
        let vendor = provision::create_vendor(table, retailer.id, "Vendor").await.map_err(failed("vendor"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(failed("fake Shopify"))?;
        let shop = FakeShopify::start(listener, ACCESS_TOKEN).map_err(failed("fake Shopify"))?;
        let connection = ChannelConnection {
            shop_domain: Some(SHOP_DOMAIN.into()),
            base_url: Some(shop.url().to_owned()),
            ..ChannelConnection::default()
        };
        let store = provision::create_store(table, retailer.id, "Shop", ChannelKind::Shopify, export, connection)
            .await
            .map_err(failed("store"))?;
        let credentials = BTreeMap::from([
            ("access_token".to_owned(), ACCESS_TOKEN.to_owned()),
            ("webhook_secret".to_owned(), WEBHOOK_SECRET.to_owned()),
        ]);
        table
            .save_credentials(retailer.id, store.id, &ChannelCredentials(credentials))
            .await
            .map_err(failed("credentials"))?;
        // Carrier scans reach only a store with a tracking provider, at its own URL.
        let tracked_connection = ChannelConnection {
            shop_domain: Some("cost-tracked.myshopify.com".into()),
            base_url: Some(shop.url().to_owned()),
            tracking_base_url: Some(shop.url().to_owned()),
            ..ChannelConnection::default()
        };
        let mut tracked_store = provision::create_store(
            table,
            retailer.id,
            "Tracked shop",
            ChannelKind::Shopify,
            ExportSettings { shipment_export_delay_minutes: EXPORT_DELAY_MINUTES, ..ExportSettings::default() },
            tracked_connection,
        )
        .await
        .map_err(failed("tracked store"))?;
        tracked_store.tracking.provider = Some(shipsync_domain::tracking::TrackingProvider::Easypost);
        table.save_channel_store(&tracked_store).await.map_err(failed("tracked store"))?;
        let tracked_credentials = BTreeMap::from([
            ("access_token".to_owned(), ACCESS_TOKEN.to_owned()),
            ("tracking_api_key".to_owned(), "ep_cost_key".to_owned()),
            ("tracking_webhook_secret".to_owned(), TRACKING_WEBHOOK_SECRET.to_owned()),
        ]);
        table
            .save_credentials(retailer.id, tracked_store.id, &ChannelCredentials(tracked_credentials))
            .await
            .map_err(failed("tracked store's credentials"))?;
        let sku = shipsync_domain::vocabulary::Sku::parse(SKU).map_err(failed("sku"))?;
        let product = Product { sku, vendor_id: vendor.id, name: "Cost item".into(), cost: None };
        table.save_product(retailer.id, &product).await.map_err(failed("product"))?;
        let user = provision::create_api_user(table, retailer.id, None, "UTC").await.map_err(failed("API user"))?;

        let clock = Arc::new(Mutex::new(Utc::now()));
        let reading = Arc::clone(&clock);
        let now: shipsync_domain::time::Clock = Arc::new(move || *lock(&reading));
        let endpoints = ChannelEndpoints::honouring_store_overrides();
        let http = shipsync_channels::http_client(exporter::CHANNEL_TIMEOUT).map_err(failed("HTTP client"))?;
        let api =
            ShipmentsApi::new(functions.encrypt_only_table(), functions.export_planner()).with_clock(Arc::clone(&now));
        let exporter =
            Exporter::new(functions.table.clone(), functions.sqs.clone(), http.clone(), &functions.exporter_config())
                .with_clock(Arc::clone(&now))
                .with_endpoints(endpoints);
        let processor =
            OrderProcessor::new(functions.table.clone(), functions.export_planner()).with_clock(Arc::clone(&now));
        let webhooks =
            ShopifyWebhooks::new(functions.table.clone(), functions.sqs.clone(), functions.order_queue_url.clone())
                .with_clock(Arc::clone(&now));
        let carriers = carrier_webhooks::CarrierWebhooks::new(
            functions.table.clone(),
            functions.sqs.clone(),
            functions.order_queue_url.clone(),
        );
        let poller =
            OrderPoller::new(functions.table.clone(), functions.sqs.clone(), http, functions.order_queue_url.clone())
                .with_clock(Arc::clone(&now))
                .with_endpoints(endpoints);
        let runner = Runner::new(aws_side, exporter, processor);
        Ok(Self {
            recorder,
            setup,
            functions,
            clock,
            shop,
            retailer,
            vendor,
            store,
            tracked_store,
            user,
            api,
            runner,
            webhooks,
            carriers,
            poller,
            next_order: Mutex::new(1000),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        *lock(&self.clock)
    }

    fn advance(&self, by: chrono::Duration) {
        *lock(&self.clock) += by;
    }

    fn next_order(&self) -> u64 {
        let mut next = lock(&self.next_order);
        *next += 1;
        *next
    }

    /// Runs `handler` as `function`'s invocation: its time (less the recorder's) goes to `uses`.
    async fn invoke<F: std::future::Future>(
        &self,
        uses: &mut BTreeMap<&'static str, LambdaUse>,
        function: &'static str,
        handler: F,
    ) -> F::Output {
        self.recorder.set_phase(function);
        let overhead = self.recorder.overhead();
        let started = Instant::now();
        let output = handler.await;
        let spent = started.elapsed().saturating_sub(self.recorder.overhead() - overhead);
        let used = uses.entry(function).or_default();
        used.invocations += 1;
        used.duration += spent;
        output
    }

    /// A webhook's answer must be 200, and what it queued is handed to the order processor.
    async fn process_delivery(
        &self,
        lambdas: &mut BTreeMap<&'static str, LambdaUse>,
        what: &str,
        response: &http::Response<String>,
    ) -> Result<(), Failed> {
        if response.status() != 200 {
            return Err(format!("{what} answered {}: {}", response.status(), response.body()));
        }
        if self.feed(lambdas, "order-processor").await? == 0 {
            return Err(format!("{what} queued nothing"));
        }
        Ok(())
    }

    /// Feeds one batch of `queue` (exports or orders) to its consumer as `function`; returns
    /// how many messages it took.
    async fn feed(
        &self,
        uses: &mut BTreeMap<&'static str, LambdaUse>,
        function: &'static str,
    ) -> Result<usize, Failed> {
        self.recorder.set_phase(function);
        let overhead = self.recorder.overhead();
        let handled = self.runner.handler_time();
        let delivered = if function == "exporter" {
            self.runner.deliver_batch().await
        } else {
            self.runner.deliver_order_events().await
        }
        .map_err(failed("feeding a queue"))?;
        if delivered > 0 {
            let spent = (self.runner.handler_time() - handled).saturating_sub(self.recorder.overhead() - overhead);
            let used = uses.entry(function).or_default();
            used.invocations += 1;
            used.duration += spent;
        }
        Ok(delivered)
    }

    async fn purchase_order(&self, number: u64) -> Result<PurchaseOrder, Failed> {
        self.purchase_order_of(&self.store, number).await
    }

    async fn purchase_order_of(&self, store: &ChannelStore, number: u64) -> Result<PurchaseOrder, Failed> {
        let line = format!("gid://shopify/LineItem/{number}1");
        let order = NewPurchaseOrder {
            retailer_id: self.retailer.id,
            vendor_id: self.vendor.id,
            store_id: store.id,
            public_reference: format!("C{number}"),
            channel_order_id: Some(
                shipsync_domain::vocabulary::ChannelOrderId::parse(&format!("gid://shopify/Order/{number}"))
                    .map_err(failed("order id"))?,
            ),
            customer_name: format!("Customer {number}"),
            items: vec![NewOrderItem {
                sku: SKU.into(),
                name: "Cost item".into(),
                quantity: 1,
                cost: None,
                channel_line_item_id: Some(line.clone()),
                needs_imei: false,
            }],
        };
        let po = provision::create_purchase_order(&self.setup.table, order).await.map_err(failed("purchase order"))?;
        self.shop.add_order(FakeOrder {
            id: number.to_string(),
            lines: vec![FakeLine { id: line, sku: SKU.into(), quantity: 1 }],
        });
        Ok(po)
    }

    /// Posts a new shipment of `po` with one tracking number; returns the API's answer.
    async fn create_shipment(&self, po: &PurchaseOrder, tracking: &str) -> http::Response<String> {
        let body = json!({"shipment": {
            "shipper_name": "UPS",
            "shipment_items_attributes": [{"order_item_id": po.items[0].id.get(), "quantity": 1}],
            "shipment_trackings_attributes": [{"tracking": tracking}],
        }})
        .to_string();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("/purchase_orders/{}/shipments.json", po.id))
            .header("content-type", "application/json")
            .header("authorization", basic_auth(&self.user))
            .body(bytes::Bytes::from(body));
        match request {
            Ok(request) => self.api.handle(request).await,
            Err(error) => http::Response::new(error.to_string()),
        }
    }

    /// (a) `count` shipments, each created through the API (its export scheduled
    /// `EXPORT_DELAY_MINUTES` later), its schedule fired, invoking the exporter, which sends it
    /// to the fake Shopify. One at a time: scheduled exports come due apart.
    pub async fn shipments(&self, count: usize) -> Result<FlowReport, Failed> {
        let mut lambdas = BTreeMap::new();
        let mut fired = 0;
        let fulfilled_before = self.shop.fulfillments().len();
        self.recorder.take();
        for _ in 0..count {
            // Made with the unrecorded clients: not part of the flow.
            let number = self.next_order();
            let po = self.purchase_order(number).await?;
            let tracking = format!("1ZCOST{number:08}");
            let response = self.invoke(&mut lambdas, "shipments-api", self.create_shipment(&po, &tracking)).await;
            if response.status() != 201 {
                return Err(format!("creating a shipment answered {}: {}", response.status(), response.body()));
            }
            self.advance(chrono::Duration::minutes(i64::from(EXPORT_DELAY_MINUTES)));
            // The schedule invokes the exporter itself: no queue on the way.
            self.recorder.set_phase("exporter");
            let (overhead, handled) = (self.recorder.overhead(), self.runner.handler_time());
            let now_fired = self.runner.fire_due_schedules(self.now()).await.map_err(failed("firing schedules"))?;
            if now_fired == 0 {
                return Err("no schedule was due after the export delay".into());
            }
            fired += now_fired;
            let used = lambdas.entry("exporter").or_default();
            used.invocations += now_fired as u64;
            used.duration += (self.runner.handler_time() - handled).saturating_sub(self.recorder.overhead() - overhead);
        }
        let exported = self.shop.fulfillments().len() - fulfilled_before;
        if exported != count {
            return Err(format!("{exported} of {count} shipments reached the fake Shopify"));
        }
        Ok(FlowReport {
            name: "shipment created through the API with a 5-minute export delay, exported to Shopify",
            unit: "shipment",
            units: "shipments",
            count,
            calls: self.recorder.take(),
            lambdas,
            api_gateway_requests: count as u64,
            scheduler_invocations: fired as u64,
        })
    }

    /// (b) `count` signed `orders/create` deliveries, each new, each processed as it arrives.
    pub async fn shopify_webhooks(&self, count: usize) -> Result<FlowReport, Failed> {
        let mut lambdas = BTreeMap::new();
        self.recorder.take();
        for n in 0..count {
            let number = self.next_order();
            let body = json!({
                "id": number, "name": format!("#W{number}"), "updated_at": self.now().to_rfc3339(), "cancelled_at": null,
                "shipping_address": {"name": "Webhook Customer"},
                "line_items": [{"id": number * 10 + 1, "sku": SKU, "name": "Cost item", "quantity": 1, "current_quantity": 1}]
            })
            .to_string();
            let request = http::Request::builder()
                .method("POST")
                .uri(format!("/webhooks/shopify/{}", self.store.id))
                .header("x-shopify-topic", "orders/create")
                .header("x-shopify-shop-domain", SHOP_DOMAIN)
                .header("x-shopify-webhook-id", format!("cost-{number}"))
                .header("x-shopify-hmac-sha256", shopify_webhooks::sign(body.as_bytes(), WEBHOOK_SECRET))
                .body(bytes::Bytes::from(body))
                .map_err(failed("request"))?;
            let response = self.invoke(&mut lambdas, "shopify-webhooks", self.webhooks.handle(request)).await;
            self.process_delivery(&mut lambdas, &format!("delivery {n}"), &response).await?;
        }
        Ok(FlowReport {
            name: "Shopify webhook delivery (orders/create, signed) and its processing",
            unit: "delivery",
            units: "deliveries",
            count,
            calls: self.recorder.take(),
            lambdas,
            api_gateway_requests: count as u64,
            scheduler_invocations: 0,
        })
    }

    /// (c) `count` signed EasyPost `in_transit` scans of shipments of the store with a tracking
    /// provider (made first, not counted), posted to its own URL and processed as they arrive.
    pub async fn carrier_webhooks(&self, count: usize) -> Result<FlowReport, Failed> {
        let mut trackings = Vec::new();
        for _ in 0..count.clamp(1, 10) {
            let number = self.next_order();
            let po = self.purchase_order_of(&self.tracked_store, number).await?;
            let tracking = format!("1ZSCAN{number:08}");
            let response = self.create_shipment(&po, &tracking).await;
            if response.status() != 201 {
                return Err(format!("creating a tracked shipment answered {}: {}", response.status(), response.body()));
            }
            trackings.push(tracking);
        }
        let mut lambdas = BTreeMap::new();
        self.recorder.take();
        for n in 0..count {
            let tracking = &trackings[n % trackings.len()];
            let body = json!({
                "id": format!("evt_cost_{}", self.next_order()), "object": "Event", "description": "tracker.updated",
                "result": {"tracking_code": tracking, "status": "in_transit", "updated_at": self.now().to_rfc3339()}
            })
            .to_string();
            let signature = carrier_webhooks::providers::sign(
                carrier_webhooks::Provider::EasyPost,
                body.as_bytes(),
                TRACKING_WEBHOOK_SECRET,
                0,
            );
            let request = http::Request::builder()
                .method("POST")
                .uri(format!("/carrier_webhooks/easypost/{}", self.tracked_store.id))
                .header("x-hmac-signature", signature)
                .body(bytes::Bytes::from(body))
                .map_err(failed("request"))?;
            let response = self.invoke(&mut lambdas, "carrier-webhooks", self.carriers.handle(request)).await;
            self.process_delivery(&mut lambdas, &format!("scan {n}"), &response).await?;
        }
        Ok(FlowReport {
            name: "carrier webhook delivery (EasyPost in_transit, signed) and its processing",
            unit: "delivery",
            units: "deliveries",
            count,
            calls: self.recorder.take(),
            lambdas,
            api_gateway_requests: count as u64,
            scheduler_invocations: 0,
        })
    }

    /// (d) `count` orders, each listed as changed by the fake Shopify at one poller tick (an
    /// hour apart, so the store is due) and then processed.
    pub async fn polled_orders(&self, count: usize) -> Result<FlowReport, Failed> {
        let mut lambdas = BTreeMap::new();
        self.recorder.take();
        for n in 0..count {
            self.advance(chrono::Duration::hours(1));
            let number = self.next_order();
            let updated = (self.now() - chrono::Duration::minutes(1)).to_rfc3339();
            self.shop.list_changed(vec![json!({
                "id": format!("gid://shopify/Order/{number}"), "name": format!("#P{number}"), "updatedAt": updated,
                "cancelledAt": null, "shippingAddress": {"name": "Polly Poll"},
                "customer": {"firstName": "Polly", "lastName": "Poll"},
                "lineItems": {"nodes": [{"id": format!("gid://shopify/LineItem/{number}1"), "sku": SKU, "name": "Cost item",
                    "quantity": 1, "currentQuantity": 1, "originalUnitPriceSet": {"shopMoney": {"amount": "10.0"}}}]}
            })]);
            let report = self.invoke(&mut lambdas, "order-poller", self.poller.tick()).await.map_err(failed("tick"))?;
            if report.orders_queued != 1 {
                return Err(format!("tick {n} queued {} orders: {report:?}", report.orders_queued));
            }
            if self.feed(&mut lambdas, "order-processor").await? == 0 {
                return Err(format!("tick {n}: no order event"));
            }
        }
        Ok(FlowReport {
            name: "polled order (one order changed at a poller tick) and its processing",
            unit: "polled order",
            units: "polled orders",
            count,
            calls: self.recorder.take(),
            lambdas,
            api_gateway_requests: 0,
            scheduler_invocations: 0,
        })
    }

    /// The deployment's recorded clients (for a caller's own measurements).
    pub fn functions(&self) -> &LocalAws {
        &self.functions
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

/// One search request's reads.
#[derive(Debug, Clone)]
pub struct SearchFigures {
    pub what: String,
    pub calls: Vec<Call>,
    pub total_count: u64,
    pub total_count_exact: bool,
    /// How many records the page showed.
    pub shown: usize,
    /// Where the next request goes on from, if more may match.
    pub next_cursor: Option<String>,
}

impl SearchFigures {
    pub fn print(&self) {
        let queries = self.calls.iter().filter(|c| c.operation == "Query").count();
        let index_reads = || self.calls.iter().filter(|c| c.index.is_some()).filter_map(|c| c.scan);
        let examined: usize = index_reads().map(|s| s.scanned_count).sum();
        let examined_bytes: usize = index_reads().map(|s| s.scanned_bytes).sum();
        let by_key: usize = self.calls.iter().map(|c| c.items_read.len()).sum();
        let mut units = Units::default();
        for call in &self.calls {
            units += call_units(call);
        }
        // moto ends a Query page at 1 MB of whole items; DynamoDB at 1 MB of what the index
        // holds, so it needs fewer pages for the same entries.
        let index_pages = examined_bytes.div_ceil(1024 * 1024).max(1);
        println!(
            "  {:<44} {} calls ({queries} Query on moto, about {index_pages} index pages on DynamoDB; {} other), {examined} index entries examined ({:.1} MB), {by_key} items read by key, {:.1} read units; {} shown, total_count {}{}{}",
            self.what,
            self.calls.len(),
            self.calls.len() - queries,
            examined_bytes as f64 / 1e6,
            units.read,
            self.shown,
            self.total_count,
            if self.total_count_exact { "" } else { " or more" },
            if self.next_cursor.is_some() { ", next_cursor" } else { "" }
        );
    }
}

/// (e) One-page searches for a retailer with `size` shipments: the first page, a deep page and
/// the page after the first by its `next_cursor`, of the default search and of a customer-name
/// search (1 shipment in 100 matches); and a name nobody has (the filtered search's worst case),
/// its first page and the next step by cursor.
pub struct SearchBench {
    bench: CostBench,
    pub seeding: Duration,
    pub size: usize,
}

impl SearchBench {
    /// A deployment of its own (`name`), whose retailer gets `size` shipments: one made through
    /// the API and exported, and copies of its item (new ids; the same encoding, index keys and
    /// projections) written by BatchWriteItem with an unrecorded client.
    pub async fn seed(endpoint: &str, name: &str, size: usize) -> Result<Self, Failed> {
        let setup = LocalAws::provision(endpoint, name, 30).await.map_err(failed("provisioning"))?;
        let bench = CostBench::on(setup, ExportSettings::default()).await?;
        let started = Instant::now();
        let number = bench.next_order();
        let po = bench.purchase_order(number).await?;
        let response = bench.create_shipment(&po, "1ZSEARCH0001").await;
        if response.status() != 201 {
            return Err(format!("creating the model shipment answered {}: {}", response.status(), response.body()));
        }
        let created: Value = serde_json::from_str(response.body()).map_err(failed("the API's answer"))?;
        let id = created["shipment"]["id"].as_u64().ok_or("the API's answer has no shipment id")?;
        bench.runner.deliver_batch().await.map_err(failed("exporting the model shipment"))?;
        let client = bench.setup.table.client().clone();
        let table = bench.setup.table.table_name().to_owned();
        let model = client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(format!("SHIPMENT#{id}")))
            .key("sk", AttributeValue::S("SHIPMENT".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("reading the model shipment"))?
            .item
            .ok_or("no item at SHIPMENT#<id>/SHIPMENT: the key layout changed")?;
        // Copies are made a batch at a time, as they are written: 100,000 held at once would
        // take gigabytes.
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = 1;
        loop {
            while tasks.len() < 8 && next < size {
                let last = (next + 25).min(size);
                let batch = (next..last).map(|n| copy_shipment(&model, id, 1_000_000_000 + n as u64, n)).collect();
                next = last;
                tasks.spawn(write_batch(client.clone(), table.clone(), batch));
            }
            match tasks.join_next().await {
                Some(result) => result.map_err(failed("seeding"))??,
                None => break,
            }
        }
        Ok(Self { bench, seeding: started.elapsed(), size })
    }

    async fn search(&self, what: &str, query: &str) -> Result<SearchFigures, Failed> {
        let bench = &self.bench;
        bench.recorder.take();
        bench.recorder.set_phase("shipments-api");
        let request = http::Request::builder()
            .method("GET")
            .uri(format!("/shipments.json{query}"))
            .header("authorization", basic_auth(&bench.user))
            .body(bytes::Bytes::new())
            .map_err(failed("request"))?;
        let response = bench.api.handle(request).await;
        if response.status() != 200 {
            return Err(format!("{what} answered {}: {}", response.status(), response.body()));
        }
        let json: Value = serde_json::from_str(response.body()).map_err(failed("the API's answer"))?;
        let metadata = &json["metadata"];
        Ok(SearchFigures {
            what: what.to_owned(),
            calls: bench.recorder.take(),
            total_count: metadata["total_count"].as_u64().unwrap_or_default(),
            total_count_exact: metadata["total_count_exact"].as_bool().unwrap_or_default(),
            shown: json["shipments"].as_array().map_or(0, Vec::len),
            next_cursor: metadata["next_cursor"].as_str().map(str::to_owned),
        })
    }

    /// A search, then the request its `next_cursor` leads to (if it has one).
    async fn search_and_next(&self, what: &str, query: &str) -> Result<Vec<SearchFigures>, Failed> {
        let first = self.search(&format!("{what}, page 1"), &format!("?{query}")).await?;
        let mut figures = vec![first.clone()];
        if let Some(cursor) = &first.next_cursor {
            let separator = if query.is_empty() { "" } else { "&" };
            figures.push(
                self.search(&format!("{what}, next by cursor"), &format!("?{query}{separator}cursor={cursor}")).await?,
            );
        }
        Ok(figures)
    }

    /// The searches, in order: default (first page, by cursor, deep page), customer name
    /// (first page, by cursor, deep page), a name nobody has (first page, by cursor).
    pub async fn measure(&self) -> Result<Vec<SearchFigures>, Failed> {
        let per_page = shipsync_domain::search::MAX_PER_PAGE as usize;
        let deep = (self.size / per_page / 2).max(2);
        let deep_named = (self.size / 100 / per_page / 2).max(2);
        let mut figures = self.search_and_next("default search", "").await?;
        figures.push(self.search(&format!("default search, page {deep}"), &format!("?page={deep}")).await?);
        figures.extend(self.search_and_next("customer-name search (1 in 100)", "search[customer_name]=needle").await?);
        figures.push(
            self.search(
                &format!("customer-name search (1 in 100), page {deep_named}"),
                &format!("?search[customer_name]=needle&page={deep_named}"),
            )
            .await?,
        );
        figures.extend(self.search_and_next("customer-name search (none)", "search[customer_name]=nobody").await?);
        Ok(figures)
    }
}

/// A copy of a shipment item as shipment `id` (the model is `model_id`): its key, its index
/// sort keys (`<time>#<id, 16 digits>`) and its record's id follow; one copy in 100 has the
/// customer "Nora Needle".
fn copy_shipment(model: &Item, model_id: u64, id: u64, n: usize) -> Item {
    let model_suffix = format!("#{model_id:016}");
    let mut item: Item = HashMap::with_capacity(model.len());
    for (name, value) in model {
        let value = match value {
            AttributeValue::S(text) if text == &format!("SHIPMENT#{model_id}") => {
                AttributeValue::S(format!("SHIPMENT#{id}"))
            }
            AttributeValue::S(text) if text.ends_with(&model_suffix) => {
                AttributeValue::S(format!("{}#{id:016}", &text[..text.len() - model_suffix.len()]))
            }
            AttributeValue::M(data) if name == "data" => {
                let mut data = data.clone();
                data.insert("id".into(), AttributeValue::N(id.to_string()));
                if n.is_multiple_of(100) {
                    data.insert("customer_name".into(), AttributeValue::S("Nora Needle".into()));
                }
                AttributeValue::M(data)
            }
            AttributeValue::S(_) if name == "customer_search" && n.is_multiple_of(100) => {
                AttributeValue::S("nora needle".into())
            }
            other => other.clone(),
        };
        item.insert(name.clone(), value);
    }
    item
}

async fn write_batch(client: aws_sdk_dynamodb::Client, table: String, items: Vec<Item>) -> Result<(), Failed> {
    let mut requests: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(failed("a seed item"))
        })
        .collect::<Result<_, _>>()?;
    while !requests.is_empty() {
        let output =
            client.batch_write_item().request_items(&table, requests).send().await.map_err(failed("BatchWriteItem"))?;
        requests = output.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
    }
    Ok(())
}
