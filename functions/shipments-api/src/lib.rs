//! The Duoplane-compatible Shipment API. `handle` turns one HTTP request into one response; the
//! Lambda (`main.rs`) and the local stack both call it, so they behave the same.

mod cancellations;
pub mod console;
mod dto;
mod labels;
pub mod openapi;
mod orders;
mod purchase_orders;
mod returns;
mod shipments;
mod stores;

use std::sync::Arc;

use http::Method;
use shipsync_app::Failure;
use shipsync_domain::access::{Principal, has_issued_key_shape, key_for_log};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, basic_credentials, path_segments};
use shipsync_planner::{ExportPlanner, PlannerConfig};
use shipsync_platform::{ConfigError, required_env};
use shipsync_table::{CredentialAccess, Table};
use tracing::warn;

use shipsync_app::cancellations::CancellationDesk;
use shipsync_app::settings::StoreSettings;
use shipsync_app::shipments::ShipmentDesk;
use shipsync_domain::time::{Clock, system_clock};

/// What the API is built from: read from the environment when deployed, set by the local stack
/// and the tests.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// `SHIPSYNC_CREDENTIALS_KEY_ID`: seals channel credentials (the API never opens them).
    pub credentials_key_id: String,
    /// Where new shipments' exports are queued or scheduled.
    pub planner: PlannerConfig,
    /// `SHIPSYNC_LABELS_BUCKET`: where label files are kept.
    pub labels_bucket: String,
    /// `SHIPSYNC_RENDER_QUEUE_URL`: where HTML labels wait for the renderer.
    pub render_queue_url: String,
    /// `SHIPSYNC_MAIL_QUEUE_URL`: where purchase order emails wait for the mailer.
    pub mail_queue_url: String,
    /// `SHIPSYNC_MAIL_FROM`: set when the deployment sends email (empty: it sends none).
    pub mail_from: Option<String>,
    /// `SHIPSYNC_CONSOLE_SECRET`: signs console sessions (unset: the console is off).
    pub console_secret: Option<String>,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env("SHIPSYNC_TABLE")?,
            credentials_key_id: required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?,
            planner: PlannerConfig::from_env().map_err(|missing| ConfigError::Missing(missing.0))?,
            labels_bucket: required_env("SHIPSYNC_LABELS_BUCKET")?,
            render_queue_url: required_env("SHIPSYNC_RENDER_QUEUE_URL")?,
            mail_queue_url: required_env("SHIPSYNC_MAIL_QUEUE_URL")?,
            mail_from: std::env::var("SHIPSYNC_MAIL_FROM").ok().filter(|from| !from.trim().is_empty()),
            console_secret: std::env::var("SHIPSYNC_CONSOLE_SECRET").ok().filter(|secret| !secret.trim().is_empty()),
        })
    }
}

/// Everything a request needs, built once per cold start.
#[derive(Clone)]
pub struct ShipmentsApi {
    table: Table,
    planner: ExportPlanner,
    clock: Clock,
    /// The shipment use cases, on the same table, planner and clock.
    desk: ShipmentDesk<Table, ExportPlanner>,
    /// The cancellation use cases, on the same table, planner and clock.
    cancellations: CancellationDesk<Table, ExportPlanner>,
    /// The channel store use cases. A store may name its channel's address (`base_url`, a local
    /// fake) only where the local stack and tests allow it; elsewhere channel hosts are fixed, so
    /// credentials go nowhere else.
    settings: StoreSettings<Table>,
    /// Where label files go and where HTML labels wait for the renderer (`None`: a test's API
    /// without them answers label requests 503).
    labels: Option<(shipsync_files::LabelBucket, shipsync_files::RenderQueueSqs)>,
    /// Where purchase order emails are queued (`None`: the deployment sends no email).
    mail: Option<shipsync_files::MailQueueSqs>,
    /// Signs console sessions (`None`: no console secret, the console is off).
    console_sessions: Option<console::session::Sessions>,
}

impl ShipmentsApi {
    /// The API as deployed (its Lambda, the local stack): credentials are write-only here, the
    /// API may seal them, never open them (nor may its role).
    pub fn build(config: &ApiConfig, aws: &aws_config::SdkConfig) -> Self {
        let table =
            Table::connect(aws, &config.table_name, CredentialAccess::Seal { key_id: &config.credentials_key_id });
        let sqs = aws_sdk_sqs::Client::new(aws);
        let api = Self::new(table, ExportPlanner::connect(aws, config.planner.clone())).with_labels(
            shipsync_files::LabelBucket::connect(aws, &config.labels_bucket),
            shipsync_files::RenderQueueSqs::new(sqs.clone(), config.render_queue_url.clone()),
        );
        let api = match &config.mail_from {
            Some(_) => api.with_mail(shipsync_files::MailQueueSqs::new(sqs, config.mail_queue_url.clone())),
            None => api,
        };
        match &config.console_secret {
            Some(secret) => api.with_console_secret(secret),
            None => api,
        }
    }

    /// Queues purchase order emails on `queue` (a deployment that sends email).
    pub fn with_mail(mut self, queue: shipsync_files::MailQueueSqs) -> Self {
        self.mail = Some(queue);
        self
    }

    /// Keeps label files in `bucket` and queues HTML labels on `renders`.
    pub fn with_labels(mut self, bucket: shipsync_files::LabelBucket, renders: shipsync_files::RenderQueueSqs) -> Self {
        self.labels = Some((bucket, renders));
        self
    }

    /// From parts (a test's table).
    pub fn new(table: Table, planner: ExportPlanner) -> Self {
        let clock = system_clock();
        let desk = ShipmentDesk::new(table.clone(), planner.clone(), Arc::clone(&clock));
        let settings = StoreSettings::new(table.clone(), false);
        let cancellations = CancellationDesk::new(table.clone(), planner.clone(), Arc::clone(&clock));
        Self { table, planner, clock, desk, cancellations, settings, labels: None, mail: None, console_sessions: None }
    }

    /// Accepts a store's `base_url` (its channel's address, a local fake): for the local stack
    /// and tests only, whose exporter and poller honour it.
    pub fn allowing_store_base_url(mut self) -> Self {
        self.settings = StoreSettings::new(self.table.clone(), true);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.desk = ShipmentDesk::new(self.table.clone(), self.planner.clone(), Arc::clone(&clock));
        self.cancellations = CancellationDesk::new(self.table.clone(), self.planner.clone(), Arc::clone(&clock));
        self.clock = clock;
        self
    }

    /// Serves the console, its sessions signed with `secret` (at least 32 bytes; a shorter one
    /// leaves the console off).
    pub fn with_console_secret(mut self, secret: &str) -> Self {
        self.console_sessions = console::session::Sessions::new(secret);
        if self.console_sessions.is_none() {
            warn!("the console secret is shorter than 32 bytes: the console is off");
        }
        self
    }

    /// Answers one request. Never panics on what a request carries, never leaks internals.
    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let path = request.uri().path();
        if path == "/console" || path.starts_with("/console/") {
            return Box::pin(self.console(&request)).await;
        }
        if path == "/openapi.json" && request.method() == Method::GET {
            // The contract, for anyone: it holds no one's data.
            return openapi::served();
        }
        // Boxed: the router's future holds the largest of every route's, on the heap rather
        // than on the stack of whatever awaits a request.
        match Box::pin(self.route(&request)).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }

    /// Every route the API serves. The router dispatches from this list and nothing else, so a
    /// test that walks it (the tenant isolation test does) sees every route there is.
    pub fn routes() -> &'static [Route] {
        &ROUTES
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let principal = self.authenticate(request).await?;
        let segments = path_segments(request);
        let (endpoint, id) = match_route(&segments, request.method())
            .map_err(|()| ApiError::NotFound(format!("no such resource: {}", request.uri().path())))?
            .ok_or(ApiError::MethodNotAllowed)?;
        let principal = &principal;
        match endpoint {
            Endpoint::CreateShipment => self.create_shipment(principal, id, request).await,
            Endpoint::ListPurchaseOrders => self.list_purchase_orders(principal, request).await,
            Endpoint::GetPurchaseOrder => self.get_purchase_order(principal, id).await,
            Endpoint::SearchShipments => self.search_shipments(principal, request).await,
            Endpoint::GetShipment => self.get_shipment(principal, id).await,
            Endpoint::ShipmentEvents => Box::pin(self.shipment_events(principal, id)).await,
            Endpoint::UpdateShipment => self.update_shipment(principal, id, request).await,
            Endpoint::ExportShipment => self.export_shipment(principal, id).await,
            Endpoint::CreateStore => self.create_store(principal, request).await,
            Endpoint::ListStores => self.list_stores(principal).await,
            Endpoint::GetStore => self.get_store(principal, id).await,
            Endpoint::UpdateStore => self.update_store(principal, id, request).await,
            Endpoint::ListVendors => self.list_vendors(principal).await,
            Endpoint::UpdateVendor => self.update_vendor(principal, id, request).await,
            Endpoint::FailedExports => self.failed_exports(principal, request).await,
            Endpoint::SaveProduct => self.save_product(principal, request).await,
            Endpoint::ListProducts => self.list_products(principal).await,
            Endpoint::OrderHealth => self.order_health(principal, request).await,
            Endpoint::ReprocessOrder => self.reprocess_order(principal, id).await,
            Endpoint::AttachPurchaseOrderLabel => self.attach_purchase_order_label(principal, id, request).await,
            Endpoint::PurchaseOrderLabels => self.purchase_order_labels(principal, id).await,
            Endpoint::AttachShipmentLabel => self.attach_shipment_label(principal, id, request).await,
            Endpoint::ShipmentLabels => self.shipment_labels(principal, id).await,
            Endpoint::EmailPurchaseOrder => self.email_purchase_order(principal, id).await,
            Endpoint::CreateReturn => self.create_return(principal, id, request).await,
            Endpoint::ListReturns => self.list_returns(principal, request).await,
            Endpoint::GetReturn => self.get_return(principal, id).await,
            // Boxed: each arm's future is part of this one's size, and the deep ones would make
            // every request's future (and a debug build's stack) large.
            Endpoint::UpdateReturn => Box::pin(self.update_return(principal, id, request)).await,
            Endpoint::CreateCancellation => Box::pin(self.create_cancellation(principal, id, request)).await,
            Endpoint::PurchaseOrderCancellations => Box::pin(self.purchase_order_cancellations(principal, id)).await,
            Endpoint::GetCancellation => Box::pin(self.get_cancellation(principal, id)).await,
            Endpoint::ApproveCancellation | Endpoint::DeclineCancellation | Endpoint::PushCancellation => {
                Box::pin(self.decide_cancellation(principal, id, endpoint)).await
            }
        }
    }

    /// Checks HTTP Basic credentials against the stored digest. A key that shipsync cannot have
    /// issued is refused before any lookup; logs show only the start of a rejected key.
    async fn authenticate(&self, request: &ApiRequest) -> Result<Principal, ApiError> {
        let (key, password) = basic_credentials(request)?;
        if !has_issued_key_shape(&key) {
            warn!(api_key = %key_for_log(&key), "rejected credentials: not an issued key");
            return Err(ApiError::Unauthorized);
        }
        let user = self.table.api_user(&key).await.map_err(Failure::from)?;
        match user {
            Some(user) if user.password_matches(&password) => Ok(user.principal()),
            _ => {
                warn!(api_key = %key_for_log(&key), "rejected credentials");
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    CreateShipment,
    ListPurchaseOrders,
    GetPurchaseOrder,
    SearchShipments,
    GetShipment,
    ShipmentEvents,
    UpdateShipment,
    ExportShipment,
    CreateStore,
    ListStores,
    GetStore,
    UpdateStore,
    ListVendors,
    UpdateVendor,
    FailedExports,
    SaveProduct,
    ListProducts,
    OrderHealth,
    ReprocessOrder,
    AttachPurchaseOrderLabel,
    PurchaseOrderLabels,
    AttachShipmentLabel,
    ShipmentLabels,
    EmailPurchaseOrder,
    CreateReturn,
    ListReturns,
    GetReturn,
    UpdateReturn,
    CreateCancellation,
    PurchaseOrderCancellations,
    GetCancellation,
    ApproveCancellation,
    DeclineCancellation,
    PushCancellation,
}

/// One route: a method, a path pattern (`{id}` stands for one path segment, the record's id), and
/// what it does.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub endpoint: Endpoint,
}

const fn route(method: Method, path: &'static str, endpoint: Endpoint) -> Route {
    Route { method, path, endpoint }
}

static ROUTES: [Route; 38] = [
    route(Method::POST, "/purchase_orders/{id}/shipments.json", Endpoint::CreateShipment),
    route(Method::GET, "/purchase_orders.json", Endpoint::ListPurchaseOrders),
    route(Method::GET, "/purchase_orders/{id}.json", Endpoint::GetPurchaseOrder),
    route(Method::GET, "/shipments.json", Endpoint::SearchShipments),
    route(Method::GET, "/shipments/{id}.json", Endpoint::GetShipment),
    route(Method::GET, "/shipments/{id}/events.json", Endpoint::ShipmentEvents),
    route(Method::PUT, "/shipments/{id}.json", Endpoint::UpdateShipment),
    route(Method::PATCH, "/shipments/{id}.json", Endpoint::UpdateShipment),
    route(Method::POST, "/shipments/{id}/export.json", Endpoint::ExportShipment),
    route(Method::POST, "/stores.json", Endpoint::CreateStore),
    route(Method::GET, "/stores.json", Endpoint::ListStores),
    route(Method::GET, "/stores/{id}.json", Endpoint::GetStore),
    route(Method::PUT, "/stores/{id}.json", Endpoint::UpdateStore),
    route(Method::PATCH, "/stores/{id}.json", Endpoint::UpdateStore),
    route(Method::GET, "/vendors.json", Endpoint::ListVendors),
    route(Method::PUT, "/vendors/{id}.json", Endpoint::UpdateVendor),
    route(Method::PATCH, "/vendors/{id}.json", Endpoint::UpdateVendor),
    route(Method::GET, "/exports/failed.json", Endpoint::FailedExports),
    route(Method::POST, "/products.json", Endpoint::SaveProduct),
    route(Method::GET, "/products.json", Endpoint::ListProducts),
    route(Method::GET, "/order_health.json", Endpoint::OrderHealth),
    route(Method::POST, "/orders/{id}/reprocess.json", Endpoint::ReprocessOrder),
    route(Method::POST, "/purchase_orders/{id}/labels.json", Endpoint::AttachPurchaseOrderLabel),
    route(Method::GET, "/purchase_orders/{id}/labels.json", Endpoint::PurchaseOrderLabels),
    route(Method::POST, "/shipments/{id}/labels.json", Endpoint::AttachShipmentLabel),
    route(Method::GET, "/shipments/{id}/labels.json", Endpoint::ShipmentLabels),
    route(Method::POST, "/purchase_orders/{id}/email.json", Endpoint::EmailPurchaseOrder),
    route(Method::POST, "/purchase_orders/{id}/returns.json", Endpoint::CreateReturn),
    route(Method::GET, "/returns.json", Endpoint::ListReturns),
    route(Method::GET, "/returns/{id}.json", Endpoint::GetReturn),
    route(Method::PUT, "/returns/{id}.json", Endpoint::UpdateReturn),
    route(Method::PATCH, "/returns/{id}.json", Endpoint::UpdateReturn),
    route(Method::POST, "/purchase_orders/{id}/cancellations.json", Endpoint::CreateCancellation),
    route(Method::GET, "/purchase_orders/{id}/cancellations.json", Endpoint::PurchaseOrderCancellations),
    route(Method::GET, "/cancellations/{id}.json", Endpoint::GetCancellation),
    route(Method::POST, "/cancellations/{id}/approve.json", Endpoint::ApproveCancellation),
    route(Method::POST, "/cancellations/{id}/decline.json", Endpoint::DeclineCancellation),
    route(Method::POST, "/cancellations/{id}/push.json", Endpoint::PushCancellation),
];

/// The segments of a route's path pattern, as [`path_segments`] cuts a request's path.
fn pattern_segments(path: &str) -> Vec<&str> {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(last) = segments.last_mut() {
        *last = last.strip_suffix(".json").unwrap_or(last);
    }
    segments
}

/// The endpoint for a request's path and method, and the `{id}` segment if the path has one.
/// `Err` when no route has this path; `Ok(None)` when routes have it but not with this method.
fn match_route<'a>(segments: &'a [String], method: &Method) -> Result<Option<(Endpoint, &'a str)>, ()> {
    let mut path_known = false;
    for route in &ROUTES {
        let pattern = pattern_segments(route.path);
        if pattern.len() != segments.len() {
            continue;
        }
        let mut id = "";
        let matches = pattern.iter().zip(segments).all(|(expected, actual)| {
            if *expected == "{id}" {
                id = actual.as_str();
                true
            } else {
                expected == actual
            }
        });
        if !matches {
            continue;
        }
        path_known = true;
        if route.method == *method {
            return Ok(Some((route.endpoint, id)));
        }
    }
    if path_known { Ok(None) } else { Err(()) }
}

/// Parses an id from the path; anything that is not an id cannot name a record: 404.
fn path_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("{what} {text} not found")))
}
