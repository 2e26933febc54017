//! The test harness: one moto server per test run, a fresh table per test, fixtures, and a
//! client that sends requests through the API's handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use exporter::Exporter;
use http::{Method, StatusCode};
use order_poller::OrderPoller;
use order_processor::OrderProcessor;
use rust_decimal::Decimal;
use serde_json::Value;
use shipments_api::ShipmentsApi;
use shipsync_channels::ChannelEndpoints;
use shipsync_domain::export::ExportSettings;
use shipsync_domain::purchase_order::{NewOrderItem, NewPurchaseOrder, PurchaseOrder};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::ChannelConnection;
use shipsync_domain::tenant::{ChannelKind, ChannelStore, FeeSettings, Retailer, Vendor};
use shipsync_domain::tracking::TrackingProvider;
use shipsync_planner::ExportPlanner;
use shipsync_table::Table;
use shipsync_tools::local_aws::LocalAws;
use shipsync_tools::moto::MotoServer;
use shipsync_tools::runner::Runner;
use shopify_webhooks::ShopifyWebhooks;
use std::collections::BTreeMap;

use carrier_webhooks::{CarrierWebhooks, Provider, providers};

/// The access token every test store's Shopify credentials hold.
pub const SHOPIFY_TOKEN: &str = "shpat_test_token";
/// The secret Shopify signs the test stores' webhooks with.
pub const SHOPIFY_WEBHOOK_SECRET: &str = "whsec_test_secret";
/// The key a test store registers tracking numbers with (see [`TestApp::track_with`]).
pub const TRACKING_API_KEY: &str = "EZAK_test_key";
use shipsync_tools::provision::{self, Credentials};

/// The one moto server of this test run.
pub fn moto() -> &'static MotoServer {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    MOTO.get_or_init(|| MotoServer::start_blocking(0).unwrap_or_else(|error| panic!("moto: {error}")))
}

/// A table no other test uses.
pub fn unique_table() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("shipsync-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A new table, queues and schedule group. Failed messages come back after a second.
pub async fn fresh_aws() -> LocalAws {
    LocalAws::provision(&moto().endpoint, &unique_table(), 1).await.expect("local AWS resources")
}

/// A retailer with everything a test needs, and the API wired to a controllable clock.
pub struct TestApp {
    pub table: Table,
    pub aws: LocalAws,
    pub api: ShipmentsApi,
    /// The Shopify webhook endpoint.
    pub webhooks: ShopifyWebhooks,
    /// The order poller, on the test's clock.
    pub poller: OrderPoller,
    /// The API's planner (it shares its call counter).
    pub planner: ExportPlanner,
    /// Fires schedules and feeds the export queue to the exporter, on the test's clock.
    pub runner: Runner,
    pub clock: Arc<Mutex<DateTime<Utc>>>,
    pub retailer: Retailer,
    pub vendor: Vendor,
    pub other_vendor: Vendor,
    pub shop: ChannelStore,
    pub retailer_user: Credentials,
    pub vendor_user: Credentials,
}

pub fn start_time() -> DateTime<Utc> {
    "2026-03-02T12:00:00Z".parse().expect("time")
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_fees(FeeSettings::default()).await
    }

    pub async fn with_fees(fees: FeeSettings) -> Self {
        Self::with(fees, ExportSettings::default(), None).await
    }

    /// A retailer whose Shopify store has these export settings and, if given, this address
    /// (a wiremock Shopify).
    pub async fn with(fees: FeeSettings, export: ExportSettings, shopify: Option<&str>) -> Self {
        let aws = fresh_aws().await;
        let retailer = provision::create_retailer(&aws.table, "Test Retailer", fees).await.expect("retailer");
        Self::for_retailer(aws, retailer, export, shopify).await
    }

    /// A retailer on resources already provisioned, e.g. by an admin on the moto that enforces
    /// IAM (`crate::iam`).
    pub async fn on_aws(aws: LocalAws, export: ExportSettings, shopify: Option<&str>) -> Self {
        let retailer =
            provision::create_retailer(&aws.table, "Test Retailer", FeeSettings::default()).await.expect("retailer");
        Self::for_retailer(aws, retailer, export, shopify).await
    }

    /// A second tenant on the same table as `self`.
    pub async fn another_tenant(&self) -> Self {
        let retailer =
            provision::create_retailer(&self.table, "Other Retailer", FeeSettings::default()).await.expect("retailer");
        Self::for_retailer(self.aws.clone(), retailer, ExportSettings::default(), None).await
    }

    async fn for_retailer(aws: LocalAws, retailer: Retailer, export: ExportSettings, shopify: Option<&str>) -> Self {
        let table = aws.table.clone();
        let vendor = provision::create_vendor(&table, retailer.id, "Acme").await.expect("vendor");
        let other_vendor = provision::create_vendor(&table, retailer.id, "Globex").await.expect("vendor");
        let connection = ChannelConnection {
            shop_domain: Some("test-shop.myshopify.com".into()),
            base_url: shopify.map(str::to_owned),
            ..ChannelConnection::default()
        };
        let shop = provision::create_store(&table, retailer.id, "Shop", ChannelKind::Shopify, export, connection)
            .await
            .expect("store");
        let credentials = BTreeMap::from([
            ("access_token".to_owned(), SHOPIFY_TOKEN.to_owned()),
            ("webhook_secret".to_owned(), SHOPIFY_WEBHOOK_SECRET.to_owned()),
        ]);
        table.save_credentials(retailer.id, shop.id, &ChannelCredentials(credentials)).await.expect("credentials");
        let retailer_user = provision::create_api_user(&table, retailer.id, None, "UTC").await.expect("user");
        let vendor_user =
            provision::create_api_user(&table, retailer.id, Some(vendor.id), "America/New_York").await.expect("user");
        let clock = Arc::new(Mutex::new(start_time()));
        let reading = Arc::clone(&clock);
        let now: shipsync_domain::time::Clock =
            Arc::new(move || *reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let planner = aws.export_planner();
        // As deployed: the API can seal credentials but not open them, and refuses a base_url.
        let api = ShipmentsApi::new(aws.encrypt_only_table(), planner.clone())
            .with_clock(Arc::clone(&now))
            .with_labels(aws.label_bucket(), aws.render_queue())
            .with_mail(aws.mail_queue());
        // The tests' deployment sends a store's channel calls to its base_url (a wiremock).
        let endpoints = ChannelEndpoints::honouring_store_overrides();
        // As deployed, on the test's table (its call counter) and with channel calls cut at 2 s.
        let http = shipsync_channels::http_client(std::time::Duration::from_secs(2)).expect("http client");
        let exporter = Exporter::new(table.clone(), aws.sqs.clone(), http, &aws.exporter_config())
            .with_clock(Arc::clone(&now))
            .with_endpoints(endpoints);
        let processor = OrderProcessor::new(table.clone(), aws.export_planner())
            .with_mail(shipsync_planner::OrderQueue::new(aws.sqs.clone(), aws.mail_queue_url.clone()))
            .with_clock(Arc::clone(&now));
        let webhooks = ShopifyWebhooks::new(table.clone(), aws.sqs.clone(), aws.order_queue_url.clone())
            .with_clock(Arc::clone(&now));
        let poller = OrderPoller::new(
            table.clone(),
            aws.sqs.clone(),
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            aws.order_queue_url.clone(),
        )
        .with_clock(Arc::clone(&now))
        .with_endpoints(endpoints);
        let sweeper =
            sweeper::Sweeper::new(table.clone(), aws.sqs.clone(), aws.planner.queue_url.clone()).with_clock(now);
        let runner = Runner::new(aws.clone(), exporter, processor).with_sweeper(sweeper);
        Self {
            table,
            aws,
            api,
            webhooks,
            poller,
            planner,
            runner,
            clock,
            retailer,
            vendor,
            other_vendor,
            shop,
            retailer_user,
            vendor_user,
        }
    }

    /// The test's clock, for a function a test builds itself.
    pub fn test_clock(&self) -> shipsync_domain::time::Clock {
        let reading = Arc::clone(&self.clock);
        Arc::new(move || *reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The same app, its API's filtered searches examining at most `entries` index entries a
    /// request (`Table::with_search_budget`), so tests reach the budget with little data.
    pub fn with_search_budget(mut self, entries: u64) -> Self {
        let table = self.aws.encrypt_only_table().with_search_budget(entries);
        self.api = ShipmentsApi::new(table, self.planner.clone())
            .with_clock(self.test_clock())
            .with_labels(self.aws.label_bucket(), self.aws.render_queue())
            .with_mail(self.aws.mail_queue());
        self
    }

    /// Moves the API's clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Does what AWS would until nothing is left to do now: fires due schedules (each invokes
    /// the exporter) and feeds the export queue to the exporter. Returns how many requests the
    /// exporter was handed.
    pub async fn run_exports(&self) -> usize {
        let mut delivered = self.runner.fire_due_schedules(self.now()).await.expect("fire schedules");
        for _ in 0..20 {
            let batch = self.runner.deliver_batch().await.expect("deliver");
            if batch == 0 {
                break;
            }
            delivered += batch;
        }
        delivered
    }

    /// Feeds the render queue to the label renderer until it is empty.
    pub async fn run_renders(&self) -> usize {
        let mut delivered = 0;
        for _ in 0..20 {
            let batch = self.runner.deliver_renders().await.expect("deliver renders");
            if batch == 0 {
                break;
            }
            delivered += batch;
        }
        delivered
    }

    /// Feeds the mail queue to the vendor mailer until it is empty.
    pub async fn run_mail(&self) -> usize {
        let mut delivered = 0;
        for _ in 0..20 {
            let batch = self.runner.deliver_mail().await.expect("deliver mail");
            if batch == 0 {
                break;
            }
            delivered += batch;
        }
        delivered
    }

    /// Feeds the order queue to the order processor until it is empty.
    pub async fn run_orders(&self) -> usize {
        let mut delivered = 0;
        for _ in 0..20 {
            let batch = self.runner.deliver_order_events().await.expect("deliver order events");
            if batch == 0 {
                break;
            }
            delivered += batch;
        }
        delivered
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A purchase order of `vendor` with one item per quantity given.
    pub async fn purchase_order(
        &self,
        vendor: &Vendor,
        number: &str,
        customer: &str,
        quantities: &[u32],
    ) -> PurchaseOrder {
        let items = quantities
            .iter()
            .enumerate()
            .map(|(index, quantity)| NewOrderItem {
                sku: format!("SKU-{number}-{index}"),
                name: format!("Item {index} of {number}"),
                quantity: *quantity,
                cost: Some(Decimal::new(1999, 2)),
                channel_line_item_id: Some(format!("gid://shopify/LineItem/{index}")),
                needs_imei: false,
            })
            .collect();
        let order = NewPurchaseOrder {
            retailer_id: self.retailer.id,
            vendor_id: vendor.id,
            store_id: self.shop.id,
            public_reference: number.to_owned(),
            channel_order_id: Some(
                shipsync_domain::vocabulary::ChannelOrderId::parse(&format!("gid://shopify/Order/{number}"))
                    .expect("an order id"),
            ),
            customer_name: customer.to_owned(),
            items,
        };
        provision::create_purchase_order(&self.table, order).await.expect("purchase order")
    }

    /// A store of another channel with these credentials, and a purchase order on it for the
    /// channel order `order_id`, of one line `(sku, quantity, channel line item id)`.
    pub async fn channel_order(
        &self,
        channel: ChannelKind,
        settings: ExportSettings,
        connection: ChannelConnection,
        credentials: &[(&str, &str)],
        order_id: &str,
        (sku, quantity, line): (&str, u32, &str),
    ) -> PurchaseOrder {
        let store =
            provision::create_store(&self.table, self.retailer.id, channel.name(), channel, settings, connection)
                .await
                .expect("store");
        let credentials = credentials.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.table
            .save_credentials(self.retailer.id, store.id, &ChannelCredentials(credentials))
            .await
            .expect("credentials");
        let order = NewPurchaseOrder {
            retailer_id: self.retailer.id,
            vendor_id: self.vendor.id,
            store_id: store.id,
            public_reference: order_id.to_owned(),
            channel_order_id: Some(shipsync_domain::vocabulary::ChannelOrderId::parse(order_id).expect("an order id")),
            customer_name: format!("{} buyer", channel.name()),
            items: vec![NewOrderItem {
                sku: sku.to_owned(),
                name: sku.to_owned(),
                quantity,
                cost: None,
                channel_line_item_id: Some(line.to_owned()),
                // As Back Market's orders read: a one-unit line without a category is a phone.
                needs_imei: channel == ChannelKind::BackMarket && quantity == 1,
            }],
        };
        provision::create_purchase_order(&self.table, order).await.expect("purchase order")
    }

    /// Sends a request through the handler, as the retailer user unless told otherwise.
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(Some(&self.retailer_user), method, uri, body).await
    }

    pub async fn call_as(
        &self,
        user: Option<&Credentials>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|value| value.to_string()).unwrap_or_default();
        self.raw_call(user, method, uri, body).await
    }

    /// As [`TestApp::call`], on another container's API: its own memory of settings, the same
    /// table and clock.
    pub async fn call_on(
        &self,
        api: &ShipmentsApi,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|value| value.to_string()).unwrap_or_default();
        self.raw_call_on(api, Some(&self.retailer_user), method, uri, body).await
    }

    /// The API of another container of this deployment.
    pub fn another_api_container(&self) -> ShipmentsApi {
        ShipmentsApi::new(self.aws.encrypt_only_table(), self.aws.export_planner())
            .with_clock(self.test_clock())
            .with_labels(self.aws.label_bucket(), self.aws.render_queue())
            .with_mail(self.aws.mail_queue())
    }

    pub async fn raw_call(
        &self,
        user: Option<&Credentials>,
        method: Method,
        uri: &str,
        body: String,
    ) -> (StatusCode, Value) {
        self.raw_call_on(&self.api, user, method, uri, body).await
    }

    async fn raw_call_on(
        &self,
        api: &ShipmentsApi,
        user: Option<&Credentials>,
        method: Method,
        uri: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let mut request =
            http::Request::builder().method(method.clone()).uri(uri).header("content-type", "application/json");
        if let Some(user) = user {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.key, user.password));
            request = request.header("authorization", format!("Basic {token}"));
        }
        let request = request.body(Bytes::from(body)).expect("request");
        let response = api.handle(request).await;
        let status = response.status();
        let json = serde_json::from_str(response.body())
            .unwrap_or_else(|error| panic!("response is not JSON ({error}): {}", response.body()));
        // Every answer a test receives is held to the API's OpenAPI document.
        if let Err(problem) = crate::contract::check(&method, uri, status, &json) {
            panic!("{method} {uri} answered {status} against the OpenAPI document: {problem}\n{json}");
        }
        (status, json)
    }

    /// Makes the test store register its tracking numbers with `provider` (its tracking API at
    /// `tracker_url`, a wiremock) and hear of their movement at its own carrier webhook URL,
    /// signed with `webhook_secret`, as a retailer sets it up. Its Shopify credentials stay.
    pub async fn track_with(&self, provider: TrackingProvider, tracker_url: &str, webhook_secret: &str) {
        let mut store = self.table.channel_store(self.retailer.id, self.shop.id).await.expect("read").expect("store");
        store.tracking.provider = Some(provider);
        store.connection.tracking_base_url = Some(tracker_url.to_owned());
        let credentials = ChannelCredentials(BTreeMap::from(
            [
                ("access_token", SHOPIFY_TOKEN),
                ("webhook_secret", SHOPIFY_WEBHOOK_SECRET),
                ("tracking_api_key", TRACKING_API_KEY),
                ("tracking_webhook_secret", webhook_secret),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        ));
        shipsync_channels::validate_store_settings(&store, &credentials).expect("settings a retailer could save");
        self.table.save_channel_store(&store).await.expect("store");
        self.table.save_credentials(self.retailer.id, store.id, &credentials).await.expect("credentials");
    }

    /// Posts a carrier webhook to `/carrier_webhooks/{provider}/{store}`, signed now with `secret`
    /// as the provider signs (`None`: unsigned).
    pub async fn post_scan(
        &self,
        provider: Provider,
        store: impl std::fmt::Display,
        secret: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let body = body.to_string();
        let mut request =
            http::Request::builder().method(Method::POST).uri(format!("/carrier_webhooks/{}/{store}", provider.name()));
        if let Some(secret) = secret {
            let signature = providers::sign(provider, body.as_bytes(), secret, Utc::now().timestamp());
            request = request.header(providers::signature_header(provider), signature);
        }
        let request = request.body(Bytes::from(body)).expect("request");
        let endpoint = CarrierWebhooks::new(self.table.clone(), self.aws.sqs.clone(), self.aws.order_queue_url.clone());
        let response = endpoint.handle(request).await;
        (response.status(), serde_json::from_str(response.body()).unwrap_or(Value::Null))
    }

    /// Creates a shipment and returns it; panics unless the API answered 201.
    pub async fn create_shipment(&self, po: &PurchaseOrder, body: Value) -> Value {
        let (status, json) =
            self.call(Method::POST, &format!("/purchase_orders/{}/shipments.json", po.id), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["shipment"].clone()
    }
}

/// A create request for the given (order item, quantity) pairs and tracking numbers.
pub fn shipment_body(items: &[(u64, i64)], trackings: &[&str]) -> Value {
    serde_json::json!({"shipment": {
        "shipper_name": "UPS",
        "shipment_items_attributes": items.iter().map(|(id, q)| serde_json::json!({"order_item_id": id, "quantity": q})).collect::<Vec<_>>(),
        "shipment_trackings_attributes": trackings.iter().map(|t| serde_json::json!({"tracking": t})).collect::<Vec<_>>(),
    }})
}

/// The first error message of an error response.
pub fn errors(json: &Value) -> Vec<String> {
    json["errors"]
        .as_array()
        .map(|list| list.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Posts an EasyPost `tracker.updated` scan for `tracking` (as `status`) to a store's own carrier
/// webhook URL, signed with the store's `tracking_webhook_secret`; the endpoint's answer.
pub async fn post_easypost_scan(
    app: &TestApp,
    store: shipsync_domain::ids::StoreId,
    secret: &str,
    tracking: &str,
    status: &str,
) -> (StatusCode, String) {
    use carrier_webhooks::{CarrierWebhooks, Provider, providers};
    let body = serde_json::json!({"id": format!("evt_{tracking}_{status}"), "object": "Event",
        "description": "tracker.updated", "result": {"object": "Tracker", "tracking_code": tracking,
        "status": status, "updated_at": "2026-03-02T13:00:00Z"}})
    .to_string();
    let signature = providers::sign(Provider::EasyPost, body.as_bytes(), secret, chrono::Utc::now().timestamp());
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/carrier_webhooks/easypost/{store}"))
        .header(providers::signature_header(Provider::EasyPost), signature)
        .body(bytes::Bytes::from(body))
        .expect("request");
    let endpoint = CarrierWebhooks::new(app.table.clone(), app.aws.sqs.clone(), app.aws.order_queue_url.clone());
    let response = endpoint.handle(request).await;
    (response.status(), response.body().clone())
}
