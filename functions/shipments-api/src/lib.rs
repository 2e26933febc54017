//! The Duoplane-compatible Shipment API. `handle` turns one HTTP request into one response; the
//! Lambda (`main.rs`) and the local stack both call it, so they behave the same.

mod dto;
mod exports;
mod orders;
mod purchase_orders;
mod shipments;
mod stores;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::Method;
use shipsync_domain::access::Principal;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, basic_credentials, path_segments, store_failure};
use shipsync_planner::ExportPlanner;
use shipsync_store::Store;
use tracing::warn;

/// Where the time comes from; tests set it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How many times a write that lost a race is re-read and tried again before answering 409.
const WRITE_ATTEMPTS: usize = 5;

/// Everything a request needs, built once per cold start.
#[derive(Clone)]
pub struct ShipmentsApi {
    store: Store,
    planner: ExportPlanner,
    clock: Clock,
    /// Whether stores may use the local channel: only the local stack sets it.
    allow_local_channel: bool,
    /// Whether a store may name its channel's address (`base_url`, a local fake): only the local
    /// stack and tests set it. Elsewhere channel hosts are fixed, so credentials go nowhere else.
    allow_store_base_url: bool,
}

impl ShipmentsApi {
    pub fn new(store: Store, planner: ExportPlanner) -> Self {
        Self { store, planner, clock: Arc::new(Utc::now), allow_local_channel: false, allow_store_base_url: false }
    }

    /// Accepts a store's `base_url` (its channel's address, a local fake): for the local stack
    /// and tests only, whose exporter and poller honour it.
    pub fn allowing_store_base_url(mut self) -> Self {
        self.allow_store_base_url = true;
        self
    }

    /// Offers the local channel (records exports in the table): for the local stack only.
    pub fn allowing_local_channel(mut self) -> Self {
        self.allow_local_channel = true;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Answers one request. Never panics on what a request carries, never leaks internals.
    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        match self.route(&request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let principal = self.authenticate(request).await?;
        let segments = path_segments(request);
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = request.method();
        match (segments.as_slice(), method) {
            (["purchase_orders", id, "shipments"], &Method::POST) => {
                self.create_shipment(&principal, id, request).await
            }
            (["purchase_orders"], &Method::GET) => self.list_purchase_orders(&principal, request).await,
            (["purchase_orders", id], &Method::GET) => self.get_purchase_order(&principal, id).await,
            (["shipments"], &Method::GET) => self.search_shipments(&principal, request).await,
            (["shipments", id], &Method::GET) => self.get_shipment(&principal, id).await,
            (["shipments", id], &Method::PUT | &Method::PATCH) => self.update_shipment(&principal, id, request).await,
            (["shipments", id, "export"], &Method::POST) => self.export_shipment(&principal, id).await,
            (["stores"], &Method::POST) => self.create_store(&principal, request).await,
            (["stores"], &Method::GET) => self.list_stores(&principal).await,
            (["stores", id], &Method::GET) => self.get_store(&principal, id).await,
            (["stores", id], &Method::PUT | &Method::PATCH) => self.update_store(&principal, id, request).await,
            (["vendors"], &Method::GET) => self.list_vendors(&principal).await,
            (["vendors", id], &Method::PUT | &Method::PATCH) => self.update_vendor(&principal, id, request).await,
            (["exports", "failed"], &Method::GET) => self.failed_exports(&principal, request).await,
            (["products"], &Method::POST) => self.save_product(&principal, request).await,
            (["products"], &Method::GET) => self.list_products(&principal).await,
            (["order_health"], &Method::GET) => self.order_health(&principal, request).await,
            (["orders", id, "reprocess"], &Method::POST) => self.reprocess_order(&principal, id).await,
            (
                ["purchase_orders", _, "shipments"]
                | ["purchase_orders"]
                | ["purchase_orders", _]
                | ["shipments"]
                | ["shipments", _]
                | ["shipments", _, "export"]
                | ["stores"]
                | ["stores", _]
                | ["vendors"]
                | ["vendors", _]
                | ["exports", "failed"]
                | ["products"]
                | ["order_health"]
                | ["orders", _, "reprocess"],
                _,
            ) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound(format!("no such resource: {}", request.uri().path()))),
        }
    }

    /// Checks HTTP Basic credentials against the stored digest.
    async fn authenticate(&self, request: &ApiRequest) -> Result<Principal, ApiError> {
        let (key, password) = basic_credentials(request)?;
        let user = self.store.api_user(&key).await.map_err(store_failure)?;
        match user {
            Some(user) if user.password_matches(&password) => Ok(user.principal()),
            _ => {
                warn!(api_key = %key, "rejected credentials");
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// Parses an id from the path; anything that is not an id cannot name a record: 404.
fn path_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("{what} {text} not found")))
}
