//! Fake marketplaces for the local stack and its test: one small HTTP server answering exactly
//! the calls shipsync's Amazon, eBay and Back Market clients and its EasyPost tracker client
//! make, each channel under its own path prefix (a store's `base_url`, `tracking_base_url`):
//!
//! - `/amazon`: Login with Amazon (`POST /auth/o2/token`), Orders API v2026-01-01
//!   (`searchOrders`, `getOrder`) and `confirmShipment` (`POST /orders/v0/orders/{id}/shipmentConfirmation`, 204);
//! - `/ebay`: OAuth (`POST /identity/v1/oauth2/token`), Sell Fulfillment `getOrders` (its
//!   `lastmodifieddate` filter, `limit`, `offset`), `getOrder`, and an order's shipping
//!   fulfillments (`GET`, and `POST` answering 201 with a `Location`);
//! - `/backmarket`: `GET /ws/orders?date_modification&page`, `GET /ws/orders/{id}`, and
//!   `POST /ws/orders/{id}` with `new_state` 2 (validate a line) or 3 (ship it);
//! - `/walmart`: client-credentials tokens (`POST /v3/token`), `GET /v3/orders` (by
//!   `lastModifiedStartDate`, paged by `nextCursor`), `GET /v3/orders/{id}`, and
//!   `POST /v3/orders/{id}/acknowledge` and `…/shipping` (refused before acknowledgment, for a
//!   carrier Walmart does not list without a tracking URL, or for more units than are open);
//! - `/woocommerce`: a WooCommerce site with Order Fulfillments on: `GET /wp-json/wc/v3/orders`
//!   (by `modified_after`, paged with `X-WP-TotalPages`), one order, and an order's fulfillments
//!   (`GET`, and `POST` answering 201; refused for an unknown item or more units than ordered);
//! - `/groupon`: the supplier API, `GET get_orders` (lines not yet taken), `POST mark_exported`
//!   and `POST tracking_notification` (refused for a line not taken, an unknown carrier code or
//!   more units than ordered);
//! - `/wish`: Merchant API v3: `GET /api/v3/oauth/refresh_token` (a new token pair, revoking
//!   the access tokens issued before, as Wish does), `GET /api/v3/orders` (by `updated_at_min`,
//!   oldest first with `sort_by=updated_at.asc`), one order, and `PUT /api/v3/orders/{id}/tracking`
//!   (refused without `origin_country`, for a carrier Wish does not list, or a tracking number
//!   that is not letters and digits); refusals as HTTP 400 `{code, message}`;
//! - `/custom`: a custom channel's receiver, `POST /custom/shipments` (the signature checked,
//!   a repeated `Idempotency-Key` answered 409 with the shipment it has) and
//!   `GET /custom/shipments?idempotency_key=` (200 with it, or 404);
//! - `/easypost`: `POST /v2/trackers`, a repeat answered with the existing tracker.
//!
//! Any marketplace can be told to throttle its next calls (`throttle_next`): it answers 429 in
//! the channel's own shape (Amazon's `x-amzn-RateLimit-Limit`, Walmart's threshold error, Wish's
//! `Wish-Rate-Limit-Reset`, `Retry-After` elsewhere).
//!
//! It holds the orders it is given and changes them as the channel would (a confirmed package
//! shows in the order, a line shipped changes state, each change moves the order's modification
//! time), refuses credentials other than this module's, and records and logs what it receives.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The Amazon app and seller authorisation the fake accepts (a local fake's, no secret).
pub const AMAZON_CLIENT_ID: &str = "amzn1.application-oa2-client.local-demo";
pub const AMAZON_CLIENT_SECRET: &str = "local-demo-lwa-secret";
pub const AMAZON_REFRESH_TOKEN: &str = "Atzr|local-demo";
/// The marketplace the fake's Amazon orders are in (amazon.com).
pub const AMAZON_MARKETPLACE_ID: &str = "ATVPDKIKX0DER";
/// The eBay app keyset and user refresh token the fake accepts.
pub const EBAY_CLIENT_ID: &str = "LocalDem-shipsync-PRD-local";
pub const EBAY_CLIENT_SECRET: &str = "PRD-local-demo-secret";
pub const EBAY_REFRESH_TOKEN: &str = "v^1.1#i^1#local-demo";
/// The Back Market API token the fake accepts (Back Market hands it out already encoded).
pub const BACK_MARKET_TOKEN: &str = "bG9jYWwtZGVtbzpiYWNrbWFya2V0";
/// The Walmart client credentials the fake accepts.
pub const WALMART_CLIENT_ID: &str = "local-demo-walmart-client";
pub const WALMART_CLIENT_SECRET: &str = "local-demo-walmart-secret";
/// The supplier and token the fake Groupon accepts.
pub const GROUPON_SUPPLIER_ID: &str = "local-demo-supplier";
pub const GROUPON_TOKEN: &str = "local-demo-groupon-token";
/// The Wish app and the merchant's first refresh token the fake accepts (it rotates at each renewal).
pub const WISH_CLIENT_ID: &str = "5f00000000000000000c11e7";
pub const WISH_CLIENT_SECRET: &str = "local-demo-wish-secret";
pub const WISH_REFRESH_TOKEN: &str = "local-demo-wish-refresh-1";
/// The REST API keys the fake WooCommerce site accepts.
pub const WOOCOMMERCE_CONSUMER_KEY: &str = "ck_localdemo";
pub const WOOCOMMERCE_CONSUMER_SECRET: &str = "cs_localdemo";
/// The secret the fake custom channel's receiver checks shipments' signatures with.
pub const CUSTOM_SIGNING_SECRET: &str = "local-demo-custom-signing-secret";
/// The EasyPost API key the fake accepts.
pub const EASYPOST_API_KEY: &str = "EZTKlocaldemo";

/// Back Market's orderline states (as `shipsync_channels`' Back Market client reads them).
const AWAITING_VALIDATION: u64 = 1;
const VALIDATED: u64 = 2;
const SHIPPED: u64 = 3;

/// Orders on one Back Market page.
const BACK_MARKET_PAGE: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Marketplace {
    Amazon,
    Ebay,
    BackMarket,
    Walmart,
    WooCommerce,
    Groupon,
    Wish,
    /// A custom channel's receiver (its orders are posted to shipsync, not polled).
    Custom,
}

impl Marketplace {
    pub const ALL: [Marketplace; 8] = [
        Marketplace::Amazon,
        Marketplace::Ebay,
        Marketplace::BackMarket,
        Marketplace::Walmart,
        Marketplace::WooCommerce,
        Marketplace::Groupon,
        Marketplace::Wish,
        Marketplace::Custom,
    ];

    /// The path prefix the marketplace answers under.
    pub fn prefix(self) -> &'static str {
        match self {
            Marketplace::Amazon => "/amazon",
            Marketplace::Ebay => "/ebay",
            Marketplace::BackMarket => "/backmarket",
            Marketplace::Walmart => "/walmart",
            Marketplace::WooCommerce => "/woocommerce",
            Marketplace::Groupon => "/groupon",
            Marketplace::Wish => "/wish",
            Marketplace::Custom => "/custom",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Marketplace::Amazon => "Amazon",
            Marketplace::Ebay => "eBay",
            Marketplace::BackMarket => "Back Market",
            Marketplace::Walmart => "Walmart",
            Marketplace::WooCommerce => "WooCommerce",
            Marketplace::Groupon => "Groupon",
            Marketplace::Wish => "Wish",
            Marketplace::Custom => "custom channel",
        }
    }
}

/// An order waiting at a fake marketplace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketOrder {
    /// The channel's order id (Amazon `111-…`, eBay `12-…`, Back Market digits).
    pub id: String,
    pub customer_name: String,
    pub lines: Vec<MarketLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketLine {
    /// The channel's line id (Amazon `orderItemId`, eBay `lineItemId`, Back Market orderline `id`).
    pub id: String,
    pub sku: String,
    pub title: String,
    pub quantity: u32,
    /// The price of one unit, as the channel writes it (`"15.00"`).
    pub unit_price: String,
    /// Back Market: the listing's category (`Smartphones` lines need an IMEI).
    pub category: Option<String>,
}

/// A confirmation a marketplace received: one Amazon package, one eBay shipping fulfillment, or
/// one Back Market line shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub marketplace: Marketplace,
    pub order_id: String,
    /// Amazon's `packageReferenceId`, eBay's fulfillment id, Back Market's line SKU.
    pub reference: String,
    pub tracking_number: String,
    pub carrier: String,
    /// The lines and units it covers.
    pub lines: Vec<(String, u32)>,
    /// The request's body as it was sent.
    pub body: Value,
}

/// A Back Market order line validated (accepted) by the seller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub order_id: String,
    pub sku: String,
}

/// A tracker the fake EasyPost holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub id: String,
    pub tracking_code: String,
    pub carrier: Option<String>,
}

/// A package or fulfillment as an Amazon or eBay order holds it.
#[derive(Debug, Clone)]
struct Package {
    reference: String,
    tracking_number: String,
    carrier: String,
    shipped_at: String,
    lines: Vec<(String, u32)>,
}

/// A Walmart line status: its name, its units, and the tracking number and carrier they shipped under.
type WalmartStatus = (&'static str, u32, Option<(String, String)>);

#[derive(Debug, Clone)]
struct HeldOrder {
    order: MarketOrder,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Amazon's packages or eBay's shipping fulfillments.
    packages: Vec<Package>,
    /// Back Market: each line's state and serial codes, and the order's tracking.
    line_states: Vec<u64>,
    imeis: Vec<String>,
    serial_numbers: Vec<String>,
    tracking_number: String,
    tracking_url: String,
    shipper: String,
    /// Walmart: each line's statuses.
    walmart_statuses: Vec<Vec<WalmartStatus>>,
}

impl HeldOrder {
    fn new(order: MarketOrder, at: DateTime<Utc>) -> Self {
        let count = order.lines.len();
        Self {
            created_at: at,
            updated_at: at,
            packages: Vec::new(),
            line_states: vec![AWAITING_VALIDATION; count],
            imeis: vec![String::new(); count],
            serial_numbers: vec![String::new(); count],
            tracking_number: String::new(),
            tracking_url: String::new(),
            shipper: String::new(),
            walmart_statuses: order.lines.iter().map(|line| vec![("Created", line.quantity, None)]).collect(),
            order,
        }
    }

    /// Units of a line in packages so far.
    fn packed(&self, line_id: &str) -> u32 {
        self.packages
            .iter()
            .flat_map(|package| &package.lines)
            .filter(|(id, _)| id == line_id)
            .map(|(_, quantity)| quantity)
            .sum()
    }
}

#[derive(Default)]
struct Markets {
    orders: BTreeMap<(Marketplace, String), HeldOrder>,
    confirmations: Vec<Confirmation>,
    acceptances: Vec<Acceptance>,
    trackers: Vec<Tracker>,
    /// Access tokens handed out, by marketplace.
    tokens: Vec<(Marketplace, String)>,
    /// Every request, as `METHOD /prefix/path`, oldest first.
    calls: Vec<String>,
    next_id: u64,
    /// The Wish merchant's current refresh token (`None`: the first, [`WISH_REFRESH_TOKEN`]).
    wish_refresh_token: Option<String>,
    /// Calls still to be throttled, by marketplace ([`FakeMarketplaces::throttle_next`]).
    throttled: BTreeMap<Marketplace, u32>,
}

impl Markets {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn orders_of(&self, marketplace: Marketplace) -> impl Iterator<Item = &HeldOrder> {
        self.orders.iter().filter(move |((held_by, _), _)| *held_by == marketplace).map(|(_, held)| held)
    }

    fn issue_token(&mut self, marketplace: Marketplace, prefix: &str) -> String {
        let token = format!("{prefix}{}", self.next());
        self.tokens.push((marketplace, token.clone()));
        token
    }

    fn token_valid(&self, marketplace: Marketplace, token: Option<&str>) -> bool {
        token.is_some_and(|token| self.tokens.iter().any(|(by, issued)| *by == marketplace && issued == token))
    }
}

/// Running fake marketplaces; they stop when dropped.
pub struct FakeMarketplaces {
    url: String,
    markets: Arc<Mutex<Markets>>,
    server: JoinHandle<()>,
}

impl Drop for FakeMarketplaces {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(markets: &Mutex<Markets>) -> MutexGuard<'_, Markets> {
    // A panic while answering leaves the markets as they were between two calls: still usable.
    markets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the fake answers: a status, a JSON body or none, and a `Location` where one is due.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    location: Option<String>,
    /// Further headers (WooCommerce's `X-WP-TotalPages`).
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Self {
        Self { status, body: Some(body), location: None, headers: Vec::new() }
    }

    fn empty(status: StatusCode) -> Self {
        Self { status, body: None, location: None, headers: Vec::new() }
    }
}

/// A request as the fake reads it.
struct Call<'a> {
    method: &'a Method,
    /// The path under the marketplace's prefix.
    path: &'a str,
    query: Vec<(String, String)>,
    headers: &'a http::HeaderMap,
    body: &'a Bytes,
    /// Where the marketplace answers (for `Location` and `next` URLs).
    base: String,
}

impl Call<'_> {
    fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body).into_owned().collect()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body).ok()
    }
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

impl FakeMarketplaces {
    pub fn start(listener: TcpListener) -> std::io::Result<FakeMarketplaces> {
        let url = format!("http://{}", listener.local_addr()?);
        let markets = Arc::new(Mutex::new(Markets::default()));
        let server = tokio::spawn(serve(listener, Arc::clone(&markets), url.clone()));
        Ok(FakeMarketplaces { url, markets, server })
    }

    /// Where a marketplace answers: its stores' `base_url`.
    pub fn url(&self, marketplace: Marketplace) -> String {
        format!("{}{}", self.url, marketplace.prefix())
    }

    /// Where the fake EasyPost answers: a store's `tracking_base_url`.
    pub fn easypost_url(&self) -> String {
        format!("{}/easypost", self.url)
    }

    /// Opens an order at a marketplace, modified `at` (Back Market's lines await validation).
    /// Answers the marketplace's next `calls` requests as over its rate limit (HTTP 429 in the
    /// channel's own shape and headers).
    pub fn throttle_next(&self, marketplace: Marketplace, calls: u32) {
        lock(&self.markets).throttled.insert(marketplace, calls);
    }

    pub fn add_order(&self, marketplace: Marketplace, order: MarketOrder, at: DateTime<Utc>) {
        lock(&self.markets).orders.insert((marketplace, order.id.clone()), HeldOrder::new(order, at));
    }

    /// Every confirmation received so far, oldest first.
    pub fn confirmations(&self) -> Vec<Confirmation> {
        lock(&self.markets).confirmations.clone()
    }

    /// Every Back Market line validated so far, oldest first.
    pub fn acceptances(&self) -> Vec<Acceptance> {
        lock(&self.markets).acceptances.clone()
    }

    /// Every request received so far (`POST /amazon/auth/o2/token`), oldest first: what a flow costs.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.markets).calls.clone()
    }

    /// Every tracker EasyPost holds, oldest first.
    pub fn trackers(&self) -> Vec<Tracker> {
        lock(&self.markets).trackers.clone()
    }
}

async fn serve(listener: TcpListener, markets: Arc<Mutex<Markets>>, url: String) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                warn!(%error, "fake marketplaces stopped accepting");
                return;
            }
        };
        let (markets, url) = (Arc::clone(&markets), url.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (markets, url) = (Arc::clone(&markets), url.clone());
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
                    let reply = answer(&markets, &url, &parts, &body);
                    let mut response = hyper::Response::builder().status(reply.status);
                    if let Some(location) = reply.location {
                        response = response.header(http::header::LOCATION, location);
                    }
                    for (name, value) in reply.headers {
                        response = response.header(name, value);
                    }
                    let text = match reply.body {
                        Some(body) => {
                            response = response.header(http::header::CONTENT_TYPE, "application/json");
                            body.to_string()
                        }
                        None => String::new(),
                    };
                    Ok::<_, Infallible>(response.body(Full::new(Bytes::from(text))).unwrap_or_default())
                }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                warn!(%error, "fake marketplaces: connection ended with an error");
            }
        });
    }
}

/// The answer to one request, by the prefix its path starts with.
fn answer(markets: &Mutex<Markets>, url: &str, request: &http::request::Parts, body: &Bytes) -> Reply {
    let path = request.uri.path();
    let query: Vec<(String, String)> = request
        .uri
        .query()
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let Some((prefix, rest)) =
        ["/amazon", "/ebay", "/backmarket", "/walmart", "/woocommerce", "/groupon", "/wish", "/custom", "/easypost"]
            .into_iter()
            .find_map(|prefix| path.strip_prefix(prefix).map(|rest| (prefix, rest)))
    else {
        return Reply::json(StatusCode::NOT_FOUND, json!({"errors": format!("no fake marketplace answers {path}")}));
    };
    let call = Call {
        method: &request.method,
        path: rest,
        query,
        headers: &request.headers,
        body,
        base: format!("{url}{prefix}"),
    };
    let mut markets = lock(markets);
    markets.calls.push(format!("{} {path}", request.method));
    if let Some(marketplace) = Marketplace::ALL.into_iter().find(|marketplace| marketplace.prefix() == prefix)
        && let Some(left) = markets.throttled.get_mut(&marketplace).filter(|left| **left > 0)
    {
        *left -= 1;
        warn!(marketplace = marketplace.name(), "fake marketplace: throttled");
        return throttled(marketplace);
    }
    match prefix {
        "/amazon" => amazon(&mut markets, &call),
        "/ebay" => ebay(&mut markets, &call),
        "/backmarket" => back_market(&mut markets, &call),
        "/walmart" => walmart(&mut markets, &call),
        "/custom" => custom_receiver(&mut markets, &call),
        "/woocommerce" => woocommerce(&mut markets, &call),
        "/groupon" => groupon(&mut markets, &call),
        "/wish" => wish(&mut markets, &call),
        _ => easypost(&mut markets, &call),
    }
}

/// A marketplace's answer to a call over its rate limit, as the channel documents it (a wait of
/// a second where it gives one, so that callers retry soon).
fn throttled(marketplace: Marketplace) -> Reply {
    let (body, headers): (Value, Vec<(&'static str, String)>) = match marketplace {
        Marketplace::Amazon => (
            json!({"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource."}]}),
            vec![("x-amzn-RateLimit-Limit", "1.0".into())],
        ),
        Marketplace::Ebay => (
            json!({"errors": [{"errorId": 2001, "domain": "API_REQUEST", "category": "REQUEST",
                "message": "Too many requests. The request limit has been reached for the resource."}]}),
            vec![("Retry-After", "1".into())],
        ),
        Marketplace::BackMarket => (
            json!({"error": {"code": "throttled", "message": "Request was throttled."}}),
            vec![("Retry-After", "1".into())],
        ),
        Marketplace::Walmart => (
            json!({"errors": {"error": [{"code": "REQUEST_THRESHOLD_VIOLATED.GMP_ORDER_API",
                "description": "Request threshold violated", "info": "Too many requests", "severity": "ERROR",
                "category": "DATA", "causes": [], "errorIdentifiers": {}}]}}),
            vec![("x-current-token-count", "0".into()), ("Retry-After", "1".into())],
        ),
        Marketplace::WooCommerce => (
            json!({"code": "rest_too_many_requests", "message": "Too many requests.", "data": {"status": 429}}),
            vec![("Retry-After", "1".into())],
        ),
        Marketplace::Groupon => {
            (json!({"success": false, "reason": "Rate limit exceeded"}), vec![("Retry-After", "1".into())])
        }
        Marketplace::Wish => (
            json!({"code": 1016, "message": "Too many requests", "data": {}}),
            vec![("Wish-Rate-Limit-Remaining", "0".into()), ("Wish-Rate-Limit-Reset", "1".into())],
        ),
        Marketplace::Custom => (json!({"error": "too many requests"}), vec![("Retry-After", "1".into())]),
    };
    Reply { headers, ..Reply::json(StatusCode::TOO_MANY_REQUESTS, body) }
}

fn not_found() -> Reply {
    Reply::json(StatusCode::NOT_FOUND, json!({"errors": [{"code": "NotFound", "message": "Not found"}]}))
}

// ---------------------------------------------------------------------------------------------
// Amazon

/// Amazon's error envelope.
fn amazon_error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"errors": [{"code": code, "message": message, "details": ""}]}))
}

fn amazon(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.method == Method::POST && call.path == "/auth/o2/token" {
        let form = call.form();
        let granted = field(&form, "grant_type") == Some("refresh_token")
            && field(&form, "refresh_token") == Some(AMAZON_REFRESH_TOKEN)
            && field(&form, "client_id") == Some(AMAZON_CLIENT_ID)
            && field(&form, "client_secret") == Some(AMAZON_CLIENT_SECRET);
        if !granted {
            let refused = json!({"error": "invalid_client", "error_description": "Client authentication failed"});
            return Reply::json(StatusCode::UNAUTHORIZED, refused);
        }
        let token = markets.issue_token(Marketplace::Amazon, "Atza|local-demo-");
        return Reply::json(
            StatusCode::OK,
            json!({"access_token": token, "refresh_token": AMAZON_REFRESH_TOKEN, "token_type": "bearer", "expires_in": 3600}),
        );
    }
    if !markets.token_valid(Marketplace::Amazon, call.header("x-amz-access-token")) {
        return amazon_error(StatusCode::FORBIDDEN, "Unauthorized", "Access to requested resource is denied.");
    }
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["orders", "2026-01-01", "orders"]) => search_orders(markets, call),
        (&Method::GET, ["orders", "2026-01-01", "orders", id]) => {
            let included = call.query("includedData").unwrap_or_default().to_owned();
            match markets.orders.get(&(Marketplace::Amazon, (*id).to_owned())) {
                Some(held) => Reply::json(StatusCode::OK, json!({"order": amazon_order(held, &included)})),
                None => amazon_error(StatusCode::NOT_FOUND, "NotFound", &format!("Order {id} not found")),
            }
        }
        (&Method::POST, ["orders", "v0", "orders", id, "shipmentConfirmation"]) => confirm_shipment(markets, id, call),
        _ => not_found(),
    }
}

/// `searchOrders`: the merchant orders of the marketplace updated at or after `lastUpdatedAfter`,
/// oldest first, `maxResultsPerPage` a page.
fn search_orders(markets: &Markets, call: &Call<'_>) -> Reply {
    let Some(after) = call.query("lastUpdatedAfter").and_then(|after| DateTime::parse_from_rfc3339(after).ok()) else {
        return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", "lastUpdatedAfter must be an ISO 8601 time");
    };
    let in_marketplace =
        call.query("marketplaceIds").is_some_and(|ids| ids.split(',').any(|id| id == AMAZON_MARKETPLACE_ID));
    let merchant = call.query("fulfilledBy").is_none_or(|by| by == "MERCHANT");
    let per_page = call.query("maxResultsPerPage").and_then(|n| n.parse::<usize>().ok()).unwrap_or(100).clamp(1, 100);
    let start = call.query("paginationToken").and_then(|token| token.parse::<usize>().ok()).unwrap_or(0);
    let mut orders: Vec<&HeldOrder> = markets
        .orders_of(Marketplace::Amazon)
        .filter(|held| in_marketplace && merchant && held.updated_at >= after)
        .collect();
    orders.sort_by_key(|held| held.updated_at);
    let included = call.query("includedData").unwrap_or_default();
    let page: Vec<Value> = orders.iter().skip(start).take(per_page).map(|held| amazon_order(held, included)).collect();
    let mut answer = json!({"orders": page, "lastUpdatedBefore": amazon_time(Utc::now())});
    if start + per_page < orders.len() {
        answer["pagination"] = json!({"nextToken": (start + per_page).to_string()});
    }
    Reply::json(StatusCode::OK, answer)
}

fn amazon_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An Orders API v2026-01-01 `Order`, with what `includedData` asks for.
fn amazon_order(held: &HeldOrder, included: &str) -> Value {
    let includes = |data: &str| included.split(',').any(|asked| asked.trim() == data);
    let ordered: u32 = held.order.lines.iter().map(|line| line.quantity).sum();
    let shipped: u32 = held.order.lines.iter().map(|line| held.packed(&line.id)).sum();
    let status = match shipped {
        0 => "UNSHIPPED",
        _ if shipped < ordered => "PARTIALLY_SHIPPED",
        _ => "SHIPPED",
    };
    let items: Vec<Value> = held
        .order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let fulfilled = held.packed(&line.id).min(line.quantity);
            json!({
                "orderItemId": line.id,
                "quantityOrdered": line.quantity,
                "product": {"asin": format!("B0LOCAL{index:03}"), "sellerSku": line.sku, "title": line.title,
                            "price": {"unitPrice": {"amount": line.unit_price, "currencyCode": "USD"}}},
                "fulfillment": {"quantityFulfilled": fulfilled, "quantityUnfulfilled": line.quantity - fulfilled},
            })
        })
        .collect();
    let mut order = json!({
        "orderId": held.order.id,
        "createdTime": amazon_time(held.created_at),
        "lastUpdatedTime": amazon_time(held.updated_at),
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": AMAZON_MARKETPLACE_ID},
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
        "orderItems": items,
    });
    if includes("BUYER") {
        order["buyer"] = json!({"buyerName": held.order.customer_name});
    }
    if includes("RECIPIENT") {
        order["recipient"] = json!({"deliveryAddress": {"name": held.order.customer_name}});
    }
    if includes("PACKAGES") {
        order["packages"] = held
            .packages
            .iter()
            .map(|package| {
                json!({
                    "packageReferenceId": package.reference,
                    "carrier": package.carrier,
                    "trackingNumber": package.tracking_number,
                    "shipTime": package.shipped_at,
                    "packageItems": package.lines.iter().map(|(item, quantity)| json!({"orderItemId": item, "quantity": quantity})).collect::<Vec<_>>(),
                })
            })
            .collect();
    }
    order
}

/// `confirmShipment`: one package; the same `packageReferenceId` again edits it. Refused
/// (changing nothing) for another marketplace, an unknown item or more units than ordered.
fn confirm_shipment(markets: &mut Markets, order_id: &str, call: &Call<'_>) -> Reply {
    let Some(body) = call.json() else {
        return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", "the body is not JSON");
    };
    let Some(held) = markets.orders.get_mut(&(Marketplace::Amazon, order_id.to_owned())) else {
        return amazon_error(StatusCode::NOT_FOUND, "NotFound", &format!("Order {order_id} not found"));
    };
    if body["marketplaceId"].as_str() != Some(AMAZON_MARKETPLACE_ID) {
        return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", "marketplaceId is not the order's marketplace");
    }
    let detail = &body["packageDetail"];
    let text = |name: &str| detail[name].as_str().map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned);
    let (Some(reference), Some(carrier_code), Some(tracking), Some(shipped_at)) =
        (text("packageReferenceId"), text("carrierCode"), text("trackingNumber"), text("shipDate"))
    else {
        let message = "packageDetail needs packageReferenceId, carrierCode, trackingNumber and shipDate";
        return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", message);
    };
    let carrier = if carrier_code == "Other" { text("carrierName").unwrap_or_default() } else { carrier_code };
    let mut lines = Vec::new();
    for item in detail["orderItems"].as_array().into_iter().flatten() {
        let (Some(id), Some(quantity)) =
            (item["orderItemId"].as_str(), item["quantity"].as_u64().and_then(|q| u32::try_from(q).ok()))
        else {
            return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", "orderItems need orderItemId and quantity");
        };
        lines.push((id.to_owned(), quantity));
    }
    // What the other packages hold: this one replaces its earlier self.
    let others: Vec<Package> = held.packages.iter().filter(|package| package.reference != reference).cloned().collect();
    for (id, quantity) in &lines {
        let Some(line) = held.order.lines.iter().find(|line| &line.id == id) else {
            return amazon_error(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &format!("orderItemId {id} is not in the order"),
            );
        };
        let elsewhere: u32 =
            others.iter().flat_map(|package| &package.lines).filter(|(other, _)| other == id).map(|(_, q)| q).sum();
        if *quantity == 0 || elsewhere + quantity > line.quantity {
            let message = format!("quantity {quantity} of orderItemId {id} is more than is left to ship");
            return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", &message);
        }
    }
    if lines.is_empty() {
        return amazon_error(StatusCode::BAD_REQUEST, "InvalidInput", "orderItems must list the package's items");
    }
    let package = Package {
        reference: reference.clone(),
        tracking_number: tracking.clone(),
        carrier: carrier.clone(),
        shipped_at,
        lines: lines.clone(),
    };
    held.packages = others;
    held.packages.push(package);
    held.updated_at = Utc::now();
    info!(order = order_id, package = %reference, tracking = %tracking, carrier = %carrier, "fake Amazon: shipment confirmed");
    markets.confirmations.push(Confirmation {
        marketplace: Marketplace::Amazon,
        order_id: order_id.to_owned(),
        reference,
        tracking_number: tracking,
        carrier,
        lines,
        body,
    });
    Reply::empty(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// eBay

fn ebay_error(status: StatusCode, id: u32, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"errorId": id, "domain": "API_FULFILLMENT", "category": "REQUEST", "message": message}]}),
    )
}

fn ebay(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.method == Method::POST && call.path == "/identity/v1/oauth2/token" {
        let form = call.form();
        let granted = call.header("authorization") == Some(basic(EBAY_CLIENT_ID, EBAY_CLIENT_SECRET).as_str())
            && field(&form, "grant_type") == Some("refresh_token")
            && field(&form, "refresh_token") == Some(EBAY_REFRESH_TOKEN)
            && field(&form, "scope").is_some_and(|scope| scope.contains("sell.fulfillment"));
        if !granted {
            let refused = json!({"error": "invalid_client", "error_description": "client authentication failed"});
            return Reply::json(StatusCode::UNAUTHORIZED, refused);
        }
        let token = markets.issue_token(Marketplace::Ebay, "v^1.1#i^1#local-demo-user-");
        return Reply::json(
            StatusCode::OK,
            json!({"access_token": token, "expires_in": 7200, "token_type": "User Access Token"}),
        );
    }
    let bearer = call.header("authorization").and_then(|value| value.strip_prefix("Bearer "));
    if !markets.token_valid(Marketplace::Ebay, bearer) {
        return Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"errorId": 1001, "domain": "OAuth", "category": "REQUEST", "message": "Invalid access token"}]}),
        );
    }
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["sell", "fulfillment", "v1", "order"]) => get_orders(markets, call),
        (&Method::GET, ["sell", "fulfillment", "v1", "order", id]) => {
            match markets.orders.get(&(Marketplace::Ebay, (*id).to_owned())) {
                Some(held) => Reply::json(StatusCode::OK, ebay_order(held, &call.base)),
                None => ebay_error(StatusCode::NOT_FOUND, 32100, "Invalid order ID"),
            }
        }
        (&Method::GET, ["sell", "fulfillment", "v1", "order", id, "shipping_fulfillment"]) => {
            match markets.orders.get(&(Marketplace::Ebay, (*id).to_owned())) {
                Some(held) => {
                    let listed: Vec<Value> = held.packages.iter().map(ebay_fulfillment).collect();
                    Reply::json(StatusCode::OK, json!({"total": listed.len(), "fulfillments": listed}))
                }
                None => ebay_error(StatusCode::NOT_FOUND, 32100, "Invalid order ID"),
            }
        }
        (&Method::POST, ["sell", "fulfillment", "v1", "order", id, "shipping_fulfillment"]) => {
            create_shipping_fulfillment(markets, id, call)
        }
        _ => not_found(),
    }
}

fn ebay_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `getOrders` with `filter=lastmodifieddate:[from..]` (or `[from..to]`), oldest first.
fn get_orders(markets: &Markets, call: &Call<'_>) -> Reply {
    let range = call.query("filter").and_then(|filter| {
        filter.split(',').find_map(|part| part.trim().strip_prefix("lastmodifieddate:[")?.strip_suffix(']'))
    });
    let parse = |text: &str| DateTime::parse_from_rfc3339(text.trim()).ok().map(|at| at.with_timezone(&Utc));
    let (from, to) = match range.and_then(|range| range.split_once("..")) {
        Some((from, to)) => (parse(from), if to.trim().is_empty() { None } else { parse(to) }),
        None => (None, None),
    };
    let Some(from) = from else {
        return ebay_error(
            StatusCode::BAD_REQUEST,
            30850,
            "The filter lastmodifieddate:[from..] is missing or invalid",
        );
    };
    let limit = call.query("limit").and_then(|n| n.parse::<usize>().ok()).unwrap_or(50).clamp(1, 200);
    let offset = call.query("offset").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    let mut orders: Vec<&HeldOrder> = markets
        .orders_of(Marketplace::Ebay)
        .filter(|held| held.updated_at >= from && to.is_none_or(|to| held.updated_at <= to))
        .collect();
    orders.sort_by_key(|held| held.updated_at);
    let page: Vec<Value> = orders.iter().skip(offset).take(limit).map(|held| ebay_listed(held, &call.base)).collect();
    let href = |offset: usize| format!("{}/sell/fulfillment/v1/order?limit={limit}&offset={offset}", call.base);
    let mut answer =
        json!({"href": href(offset), "limit": limit, "offset": offset, "total": orders.len(), "orders": page});
    if offset + limit < orders.len() {
        answer["next"] = json!(href(offset + limit));
    }
    Reply::json(StatusCode::OK, answer)
}

/// An order as `getOrders` lists it: `cancelRequests` always empty.
fn ebay_listed(held: &HeldOrder, base: &str) -> Value {
    let mut order = ebay_order(held, base);
    order["cancelStatus"]["cancelRequests"] = json!([]);
    order
}

/// A Sell Fulfillment `Order` as `getOrder` answers it.
fn ebay_order(held: &HeldOrder, base: &str) -> Value {
    let ordered: u32 = held.order.lines.iter().map(|line| line.quantity).sum();
    let shipped: u32 = held.order.lines.iter().map(|line| held.packed(&line.id)).sum();
    let status = match shipped {
        0 => "NOT_STARTED",
        _ if shipped < ordered => "IN_PROGRESS",
        _ => "FULFILLED",
    };
    let lines: Vec<Value> = held
        .order
        .lines
        .iter()
        .map(|line| {
            let total = line
                .unit_price
                .parse::<rust_decimal::Decimal>()
                .map(|price| (price * rust_decimal::Decimal::from(line.quantity)).round_dp(2).to_string())
                .unwrap_or_default();
            // eBay marks a line FULFILLED as soon as any of its units is in a fulfillment.
            let fulfilled = if held.packed(&line.id) > 0 { "FULFILLED" } else { "NOT_STARTED" };
            json!({"lineItemId": line.id, "legacyItemId": "110000000001", "sku": line.sku, "title": line.title,
                   "quantity": line.quantity, "lineItemCost": {"value": total, "currency": "USD"},
                   "lineItemFulfillmentStatus": fulfilled})
        })
        .collect();
    let order_url = format!("{base}/sell/fulfillment/v1/order/{}", held.order.id);
    json!({
        "orderId": held.order.id,
        "legacyOrderId": format!("{}-0", held.order.id.replace('-', "")),
        "creationDate": ebay_time(held.created_at),
        "lastModifiedDate": ebay_time(held.updated_at),
        "orderFulfillmentStatus": status,
        "orderPaymentStatus": "PAID",
        "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
        "buyer": {"username": held.order.customer_name.to_lowercase().replace(' ', "_")},
        "fulfillmentStartInstructions": [{"shippingStep": {"shipTo": {"fullName": held.order.customer_name}}}],
        "fulfillmentHrefs": held.packages.iter().map(|package| format!("{order_url}/shipping_fulfillment/{}", package.reference)).collect::<Vec<_>>(),
        "lineItems": lines,
    })
}

fn ebay_fulfillment(package: &Package) -> Value {
    json!({
        "fulfillmentId": package.reference,
        "shipmentTrackingNumber": package.tracking_number,
        "shippingCarrierCode": package.carrier,
        "shippedDate": package.shipped_at,
        "lineItems": package.lines.iter().map(|(id, quantity)| json!({"lineItemId": id, "quantity": quantity})).collect::<Vec<_>>(),
    })
}

/// `createShippingFulfillment`: named after its tracking number, 201 with its `Location`.
/// Refused (changing nothing) for a tracking number that is not letters and digits, a tracking
/// number the order already has, an unknown line or more units than ordered.
fn create_shipping_fulfillment(markets: &mut Markets, order_id: &str, call: &Call<'_>) -> Reply {
    let Some(body) = call.json() else {
        return ebay_error(StatusCode::BAD_REQUEST, 32000, "the body is not JSON");
    };
    let Some(held) = markets.orders.get_mut(&(Marketplace::Ebay, order_id.to_owned())) else {
        return ebay_error(StatusCode::NOT_FOUND, 32100, "Invalid order ID");
    };
    let tracking = body["trackingNumber"].as_str().unwrap_or_default().to_owned();
    if tracking.is_empty() || !tracking.chars().all(|c| c.is_ascii_alphanumeric()) {
        return ebay_error(StatusCode::BAD_REQUEST, 32400, "trackingNumber must be letters and digits only");
    }
    if held.packages.iter().any(|package| package.tracking_number == tracking) {
        return ebay_error(StatusCode::CONFLICT, 32500, &format!("the order already has a fulfillment {tracking}"));
    }
    let carrier = body["shippingCarrierCode"].as_str().unwrap_or_default().to_owned();
    let shipped_at = body["shippedDate"].as_str().unwrap_or_default().to_owned();
    if carrier.is_empty() || shipped_at.is_empty() {
        return ebay_error(StatusCode::BAD_REQUEST, 32300, "shippingCarrierCode and shippedDate are required");
    }
    let mut lines = Vec::new();
    for item in body["lineItems"].as_array().into_iter().flatten() {
        let (Some(id), Some(quantity)) =
            (item["lineItemId"].as_str(), item["quantity"].as_u64().and_then(|q| u32::try_from(q).ok()))
        else {
            return ebay_error(StatusCode::BAD_REQUEST, 32300, "lineItems need lineItemId and quantity");
        };
        let Some(line) = held.order.lines.iter().find(|line| line.id == id) else {
            return ebay_error(StatusCode::BAD_REQUEST, 32300, &format!("lineItemId {id} is not in the order"));
        };
        if quantity == 0 || held.packed(id) + quantity > line.quantity {
            return ebay_error(StatusCode::BAD_REQUEST, 32300, &format!("quantity of lineItemId {id} is too large"));
        }
        lines.push((id.to_owned(), quantity));
    }
    if lines.is_empty() {
        return ebay_error(StatusCode::BAD_REQUEST, 32300, "lineItems must not be empty");
    }
    held.packages.push(Package {
        reference: tracking.clone(),
        tracking_number: tracking.clone(),
        carrier: carrier.clone(),
        shipped_at,
        lines: lines.clone(),
    });
    held.updated_at = Utc::now();
    info!(order = order_id, fulfillment = %tracking, carrier = %carrier, "fake eBay: shipping fulfillment created");
    markets.confirmations.push(Confirmation {
        marketplace: Marketplace::Ebay,
        order_id: order_id.to_owned(),
        reference: tracking.clone(),
        tracking_number: tracking.clone(),
        carrier,
        lines,
        body,
    });
    Reply {
        status: StatusCode::CREATED,
        body: None,
        location: Some(format!("{}/sell/fulfillment/v1/order/{order_id}/shipping_fulfillment/{tracking}", call.base)),
        headers: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Back Market

fn back_market_error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": status.as_u16(), "message": message}}))
}

fn back_market(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.header("authorization") != Some(format!("Basic {BACK_MARKET_TOKEN}").as_str()) {
        return back_market_error(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["ws", "orders"]) => list_back_market_orders(markets, call),
        (&Method::GET, ["ws", "orders", id]) => {
            match markets.orders.get(&(Marketplace::BackMarket, (*id).to_owned())) {
                Some(held) => Reply::json(StatusCode::OK, back_market_order(held)),
                None => back_market_error(StatusCode::NOT_FOUND, "Not found."),
            }
        }
        (&Method::POST, ["ws", "orders", id]) => update_back_market_order(markets, id, call),
        _ => not_found(),
    }
}

/// Back Market's times: UTC here, without a zone.
fn back_market_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `GET /ws/orders?date_modification=…&page=n`: orders modified since then, 50 a page.
fn list_back_market_orders(markets: &Markets, call: &Call<'_>) -> Reply {
    let since = call
        .query("date_modification")
        .and_then(|text| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok())
        .map(|at| at.and_utc());
    let page = call.query("page").map_or(Some(1), |page| page.parse::<usize>().ok().filter(|page| *page > 0));
    let Some(page) = page else {
        return back_market_error(StatusCode::NOT_FOUND, "Invalid page.");
    };
    let mut orders: Vec<&HeldOrder> = markets
        .orders_of(Marketplace::BackMarket)
        .filter(|held| since.is_none_or(|since| held.updated_at >= since))
        .collect();
    orders.sort_by_key(|held| held.updated_at);
    let results: Vec<Value> = orders
        .iter()
        .skip((page - 1) * BACK_MARKET_PAGE)
        .take(BACK_MARKET_PAGE)
        .map(|held| back_market_order(held))
        .collect();
    let link = |page: usize| {
        let mut url = format!("{}/ws/orders?page={page}", call.base);
        if let Some(since) = call.query("date_modification") {
            url.push_str("&date_modification=");
            url.extend(form_urlencoded::byte_serialize(since.as_bytes()));
        }
        url
    };
    let next = (page * BACK_MARKET_PAGE < orders.len()).then(|| link(page + 1));
    let previous = (page > 1).then(|| link(page - 1));
    Reply::json(StatusCode::OK, json!({"count": orders.len(), "next": next, "previous": previous, "results": results}))
}

fn back_market_order(held: &HeldOrder) -> Value {
    let (first, last) = held.order.customer_name.split_once(' ').unwrap_or((held.order.customer_name.as_str(), ""));
    let state = if held.line_states.iter().all(|state| *state >= SHIPPED) {
        9
    } else if held.line_states.iter().all(|state| *state >= VALIDATED) {
        3
    } else {
        1
    };
    let number = |id: &str| id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n));
    let lines: Vec<Value> = held
        .order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let mut orderline = json!({
                "id": number(&line.id), "listing": line.sku, "product": line.title,
                "state": held.line_states.get(index).copied().unwrap_or(AWAITING_VALIDATION),
                "quantity": line.quantity, "price": line.unit_price, "shipping_price": "0.00",
                "imei": held.imeis.get(index).cloned().unwrap_or_default(),
                "serial_number": held.serial_numbers.get(index).cloned().unwrap_or_default(),
                "condition": 10,
            });
            if let Some(category) = &line.category {
                orderline["snapshot"] = json!({"product": {"category_3": {"category_name": category}}});
            }
            orderline
        })
        .collect();
    json!({
        "order_id": number(&held.order.id),
        "state": state,
        "date_creation": back_market_time(held.created_at),
        "date_modification": back_market_time(held.updated_at),
        "tracking_number": held.tracking_number,
        "tracking_url": held.tracking_url,
        "shipper": held.shipper,
        "shipping_address": {"first_name": first, "last_name": last, "country": "FR"},
        "country_code": "FR",
        "currency": "EUR",
        "orderlines": lines,
    })
}

/// `POST /ws/orders/{id}`: `new_state` 2 validates the lines of `sku` that await it; 3 ships a
/// validated line of `sku` with the order's tracking and the unit's IMEI or serial number.
fn update_back_market_order(markets: &mut Markets, order_id: &str, call: &Call<'_>) -> Reply {
    let Some(body) = call.json() else {
        return back_market_error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let Some(held) = markets.orders.get_mut(&(Marketplace::BackMarket, order_id.to_owned())) else {
        return back_market_error(StatusCode::NOT_FOUND, "Not found.");
    };
    let sku = body["sku"].as_str().unwrap_or_default().to_owned();
    let of_sku: Vec<usize> =
        held.order.lines.iter().enumerate().filter(|(_, line)| line.sku == sku).map(|(index, _)| index).collect();
    if of_sku.is_empty() {
        return back_market_error(StatusCode::BAD_REQUEST, &format!("no orderline of listing {sku:?} in the order"));
    }
    let in_state = |held: &HeldOrder, state: u64| {
        of_sku.iter().copied().find(|index| held.line_states.get(*index).copied() == Some(state))
    };
    match body["new_state"].as_u64() {
        Some(VALIDATED) => {
            let Some(index) = in_state(held, AWAITING_VALIDATION) else {
                return back_market_error(StatusCode::BAD_REQUEST, &format!("no orderline of {sku} awaits validation"));
            };
            held.line_states[index] = VALIDATED;
            held.updated_at = Utc::now();
            info!(order = order_id, sku = %sku, "fake Back Market: order line accepted");
            markets.acceptances.push(Acceptance { order_id: order_id.to_owned(), sku });
        }
        Some(SHIPPED) => {
            let Some(index) = in_state(held, VALIDATED) else {
                return back_market_error(StatusCode::BAD_REQUEST, &format!("no validated orderline of {sku} to ship"));
            };
            let text = |name: &str| body[name].as_str().map(str::trim).unwrap_or_default().to_owned();
            let (tracking, shipper) = (text("tracking_number"), text("shipper"));
            if tracking.is_empty() || shipper.is_empty() {
                return back_market_error(StatusCode::BAD_REQUEST, "tracking_number and shipper are required");
            }
            let imei = text("imei");
            if imei.chars().count() > 15 {
                return back_market_error(StatusCode::BAD_REQUEST, "imei is at most 15 characters");
            }
            let line = &held.order.lines[index];
            let needs_imei =
                line.quantity == 1 && line.category.as_deref().is_some_and(|c| c.to_lowercase().contains("phone"));
            if needs_imei && imei.is_empty() {
                return back_market_error(StatusCode::BAD_REQUEST, &format!("the IMEI of {sku} is required"));
            }
            let lines = vec![(line.id.clone(), line.quantity)];
            held.line_states[index] = SHIPPED;
            held.imeis[index] = imei.clone();
            held.serial_numbers[index] = text("serial_number");
            held.tracking_number = tracking.clone();
            held.tracking_url = text("tracking_url");
            held.shipper = shipper.clone();
            held.updated_at = Utc::now();
            info!(order = order_id, sku = %sku, tracking = %tracking, shipper = %shipper, imei = %imei, "fake Back Market: order line shipped");
            markets.confirmations.push(Confirmation {
                marketplace: Marketplace::BackMarket,
                order_id: order_id.to_owned(),
                reference: sku,
                tracking_number: tracking,
                carrier: shipper,
                lines,
                body,
            });
        }
        _ => return back_market_error(StatusCode::BAD_REQUEST, "new_state must be 2 (validate) or 3 (ship)"),
    }
    let Some(held) = markets.orders.get(&(Marketplace::BackMarket, order_id.to_owned())) else { return not_found() };
    Reply::json(StatusCode::OK, back_market_order(held))
}

// ---------------------------------------------------------------------------------------------
// Walmart

/// Walmart's error envelope (as its gateway writes it).
fn walmart_error(status: StatusCode, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({"errors": {"error": [{"code": code, "description": description, "severity": "ERROR", "category": "DATA"}]}}),
    )
}

fn walmart(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.header("wm_svc.name").is_none() || call.header("wm_qos.correlation_id").is_none_or(str::is_empty) {
        return walmart_error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_HEADER.GMP_GATEWAY_API",
            "WM_SVC.NAME and WM_QOS.CORRELATION_ID are required",
        );
    }
    if call.method == Method::POST && call.path == "/v3/token" {
        let form = call.form();
        if call.header("authorization") != Some(basic(WALMART_CLIENT_ID, WALMART_CLIENT_SECRET).as_str())
            || field(&form, "grant_type") != Some("client_credentials")
        {
            return walmart_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized client");
        }
        let token = markets.issue_token(Marketplace::Walmart, "eyJ-local-demo-");
        return Reply::json(StatusCode::OK, json!({"access_token": token, "token_type": "Bearer", "expires_in": 900}));
    }
    if !markets.token_valid(Marketplace::Walmart, call.header("wm_sec.access_token")) {
        return walmart_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized token");
    }
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let order = |markets: &Markets, id: &str| {
        markets.orders.get(&(Marketplace::Walmart, id.to_owned())).map(|held| json!({"order": walmart_order(held)}))
    };
    let missing = |id: &str| {
        walmart_error(StatusCode::NOT_FOUND, "CONTENT_NOT_FOUND.GMP_ORDER_API", &format!("No order {id} found"))
    };
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["v3", "orders"]) => list_walmart_orders(markets, call),
        (&Method::GET, ["v3", "orders", id]) => {
            order(markets, id).map_or_else(|| missing(id), |o| Reply::json(StatusCode::OK, o))
        }
        (&Method::POST, ["v3", "orders", id, "acknowledge"]) => {
            let Some(held) = markets.orders.get_mut(&(Marketplace::Walmart, (*id).to_owned())) else {
                return missing(id);
            };
            for statuses in &mut held.walmart_statuses {
                for status in statuses.iter_mut().filter(|status| status.0 == "Created") {
                    status.0 = "Acknowledged";
                }
            }
            held.updated_at = Utc::now();
            info!(order = id, "fake Walmart: order acknowledged");
            markets.acceptances.push(Acceptance { order_id: (*id).to_owned(), sku: String::new() });
            order(markets, id).map_or_else(|| missing(id), |o| Reply::json(StatusCode::OK, o))
        }
        (&Method::POST, ["v3", "orders", id, "shipping"]) => ship_walmart_lines(markets, id, call),
        _ => walmart_error(StatusCode::NOT_FOUND, "CONTENT_NOT_FOUND.GMP_GATEWAY_API", "Not found"),
    }
}

/// Orders a page of the fake's `GET /v3/orders` holds unless `limit` says fewer.
const WALMART_PAGE: usize = 200;

/// `GET /v3/orders`: orders modified at or after `lastModifiedStartDate`, oldest first; more
/// than a page leaves a `nextCursor` (a query string) that goes on from where the page ended.
fn list_walmart_orders(markets: &Markets, call: &Call<'_>) -> Reply {
    let since = match call.query("lastModifiedStartDate").map(DateTime::parse_from_rfc3339) {
        Some(Ok(since)) => Some(since.with_timezone(&Utc)),
        Some(Err(_)) => {
            return walmart_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_PARAM.GMP_ORDER_API",
                "lastModifiedStartDate is not a date",
            );
        }
        None => None,
    };
    let limit = call.query("limit").and_then(|limit| limit.parse::<usize>().ok()).unwrap_or(100).clamp(1, WALMART_PAGE);
    let offset = call.query("soIndex").and_then(|index| index.parse::<usize>().ok()).unwrap_or(0);
    let mut orders: Vec<&HeldOrder> = markets
        .orders_of(Marketplace::Walmart)
        .filter(|held| since.is_none_or(|since| held.updated_at >= since))
        .collect();
    orders.sort_by_key(|held| held.updated_at);
    let page: Vec<Value> = orders.iter().skip(offset).take(limit).map(|held| walmart_order(held)).collect();
    let mut meta = json!({"totalCount": orders.len(), "limit": limit});
    if offset + limit < orders.len() {
        let mut cursor = format!("?limit={limit}&hasMoreElements=true&soIndex={}", offset + limit);
        if let Some(since) = call.query("lastModifiedStartDate") {
            cursor.push_str("&lastModifiedStartDate=");
            cursor.extend(form_urlencoded::byte_serialize(since.as_bytes()));
        }
        meta["nextCursor"] = json!(cursor);
    }
    Reply::json(StatusCode::OK, json!({"list": {"meta": meta, "elements": {"order": page}}}))
}

/// A purchase order as Walmart's Orders API writes it (times in epoch milliseconds, amounts as text).
fn walmart_order(held: &HeldOrder) -> Value {
    let lines: Vec<Value> = held
        .order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let statuses: Vec<Value> = held
                .walmart_statuses
                .get(index)
                .into_iter()
                .flatten()
                .map(|(status, units, shipped)| {
                    let mut entry = json!({"status": status, "statusQuantity": {"unitOfMeasurement": "EACH", "amount": units.to_string()}});
                    if let Some((tracking, carrier)) = shipped {
                        entry["trackingInfo"] = json!({"shipDateTime": held.updated_at.timestamp_millis(),
                            "carrierName": {"carrier": carrier}, "methodCode": "Standard", "trackingNumber": tracking});
                    }
                    entry
                })
                .collect();
            let price: f64 = line.unit_price.parse().unwrap_or_default();
            json!({"lineNumber": line.id, "item": {"productName": line.title, "sku": line.sku},
                   "charges": {"charge": [{"chargeType": "PRODUCT", "chargeName": "ItemPrice",
                       "chargeAmount": {"currency": "USD", "amount": price * f64::from(line.quantity)}}]},
                   "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": line.quantity.to_string()},
                   "statusDate": held.updated_at.timestamp_millis(),
                   "orderLineStatuses": {"orderLineStatus": statuses},
                   "fulfillment": {"fulfillmentOption": "S2H", "shipMethod": "STANDARD"}})
        })
        .collect();
    json!({
        "purchaseOrderId": held.order.id,
        "customerOrderId": format!("5{}", held.order.id),
        "customerEmailId": "relay@relay.walmart.com",
        "orderDate": held.created_at.timestamp_millis(),
        "shippingInfo": {"phone": "5555550100", "estimatedDeliveryDate": held.created_at.timestamp_millis() + 432_000_000,
            "estimatedShipDate": held.created_at.timestamp_millis() + 86_400_000, "methodCode": "Standard",
            "postalAddress": {"name": held.order.customer_name, "address1": "1 Main St", "city": "Bentonville",
                "state": "AR", "postalCode": "72712", "country": "USA", "addressType": "RESIDENTIAL"}},
        "orderLines": {"orderLine": lines},
    })
}

/// `POST /v3/orders/{id}/shipping`: each line's statuses ship that many of its acknowledged
/// units. All of it is checked before anything changes: an order not acknowledged, an unknown
/// line, more units than are open, a carrier Walmart does not list without a tracking URL, or a
/// method Walmart does not know refuses the whole request.
fn ship_walmart_lines(markets: &mut Markets, order_id: &str, call: &Call<'_>) -> Reply {
    let Some(body) = call.json() else {
        return walmart_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_CONTENT.GMP_ORDER_API", "the body is not JSON");
    };
    let Some(held) = markets.orders.get(&(Marketplace::Walmart, order_id.to_owned())) else {
        return walmart_error(StatusCode::NOT_FOUND, "CONTENT_NOT_FOUND.GMP_ORDER_API", "No order found");
    };
    let refuse = |description: String| {
        walmart_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_CONTENT.GMP_ORDER_API", &description)
    };
    let mut shipped: Vec<(usize, u32, String, String)> = Vec::new();
    for line in body["orderShipment"]["orderLines"]["orderLine"].as_array().into_iter().flatten() {
        let number = line["lineNumber"].as_str().unwrap_or_default();
        let Some(index) = held.order.lines.iter().position(|held_line| held_line.id == number) else {
            return refuse(format!("line {number:?} is not in order {order_id}"));
        };
        if line["sellerOrderId"].as_str().is_none_or(str::is_empty) {
            return refuse(format!("line {number}: sellerOrderId is required"));
        }
        let statuses = held.walmart_statuses.get(index).cloned().unwrap_or_default();
        if statuses.iter().any(|(status, _, _)| *status == "Created") {
            return refuse(format!("order {order_id} must be acknowledged before it ships"));
        }
        let mut open: u32 =
            statuses.iter().filter(|(status, _, _)| *status == "Acknowledged").map(|(_, units, _)| units).sum();
        for status in line["orderLineStatuses"]["orderLineStatus"].as_array().into_iter().flatten() {
            let units = status["statusQuantity"]["amount"].as_str().and_then(|amount| amount.parse::<u32>().ok());
            let info = &status["trackingInfo"];
            let tracking = info["trackingNumber"].as_str().map(str::trim).unwrap_or_default();
            let listed = info["carrierName"]["carrier"].as_str();
            let other = info["carrierName"]["otherCarrier"].as_str();
            let carrier = match (listed, other) {
                (Some(carrier), None) if shipsync_channels::WALMART_CARRIERS.contains(&carrier) => carrier,
                (None, Some(carrier)) if info["trackingURL"].as_str().is_some_and(|url| !url.is_empty()) => carrier,
                _ => {
                    return refuse(format!(
                        "line {number}: carrierName must name one of Walmart's carriers, or otherCarrier with a trackingURL"
                    ));
                }
            };
            let method_known = ["Standard", "Express", "OneDay", "Freight", "WhiteGlove", "Value"]
                .contains(&info["methodCode"].as_str().unwrap_or_default());
            if status["status"] != "Shipped" || tracking.is_empty() || !info["shipDateTime"].is_i64() || !method_known {
                return refuse(format!(
                    "line {number}: status Shipped, trackingNumber, shipDateTime (ms) and methodCode are required"
                ));
            }
            match units {
                Some(units) if units > 0 && units <= open => open -= units,
                _ => return refuse(format!("line {number}: more units than are open to ship")),
            }
            shipped.push((index, units.unwrap_or_default(), tracking.to_owned(), carrier.to_owned()));
        }
    }
    if shipped.is_empty() {
        return refuse("orderShipment.orderLines.orderLine is required".to_owned());
    }
    let Some(held) = markets.orders.get_mut(&(Marketplace::Walmart, order_id.to_owned())) else { return not_found() };
    let mut confirmed = Vec::new();
    for (index, units, tracking, carrier) in shipped {
        let Some(statuses) = held.walmart_statuses.get_mut(index) else { continue };
        if let Some(acknowledged) =
            statuses.iter_mut().find(|(status, open, _)| *status == "Acknowledged" && *open >= units)
        {
            acknowledged.1 -= units;
        }
        statuses.retain(|(status, units, _)| *status != "Acknowledged" || *units > 0);
        statuses.push(("Shipped", units, Some((tracking.clone(), carrier.clone()))));
        let line = held.order.lines[index].id.clone();
        info!(order = order_id, line = %line, units, tracking = %tracking, carrier = %carrier, "fake Walmart: order line shipped");
        confirmed.push(Confirmation {
            marketplace: Marketplace::Walmart,
            order_id: order_id.to_owned(),
            reference: line.clone(),
            tracking_number: tracking,
            carrier,
            lines: vec![(line, units)],
            body: body.clone(),
        });
    }
    held.updated_at = Utc::now();
    let answer = json!({"order": walmart_order(held)});
    markets.confirmations.extend(confirmed);
    Reply::json(StatusCode::OK, answer)
}

// ---------------------------------------------------------------------------------------------
// WooCommerce

fn woocommerce_error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"code": code, "message": message, "data": {"status": status.as_u16()}}))
}

fn woocommerce(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.header("authorization") != Some(basic(WOOCOMMERCE_CONSUMER_KEY, WOOCOMMERCE_CONSUMER_SECRET).as_str()) {
        return woocommerce_error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
        );
    }
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["wp-json", "wc", "v3", "orders"]) => list_woocommerce_orders(markets, call),
        (&Method::GET, ["wp-json", "wc", "v3", "orders", id]) => {
            match markets.orders.get(&(Marketplace::WooCommerce, (*id).to_owned())) {
                Some(held) => Reply::json(StatusCode::OK, woocommerce_order(held)),
                None => {
                    woocommerce_error(StatusCode::NOT_FOUND, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
                }
            }
        }
        (&Method::GET, ["wp-json", "wc", "v3", "orders", id, "fulfillments"]) => {
            match markets.orders.get(&(Marketplace::WooCommerce, (*id).to_owned())) {
                Some(held) => Reply::json(
                    StatusCode::OK,
                    json!(held.packages.iter().map(|p| woocommerce_fulfillment(id, p)).collect::<Vec<_>>()),
                ),
                None => {
                    woocommerce_error(StatusCode::NOT_FOUND, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
                }
            }
        }
        (&Method::POST, ["wp-json", "wc", "v3", "orders", id, "fulfillments"]) => {
            create_woocommerce_fulfillment(markets, id, call)
        }
        _ => woocommerce_error(
            StatusCode::NOT_FOUND,
            "rest_no_route",
            "No route was found matching the URL and request method.",
        ),
    }
}

/// `GET /wp-json/wc/v3/orders?modified_after=…&page=n&per_page=…`: oldest modified first.
fn list_woocommerce_orders(markets: &Markets, call: &Call<'_>) -> Reply {
    let since = call
        .query("modified_after")
        .and_then(|text| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S").ok())
        .map(|at| at.and_utc());
    let per_page = call.query("per_page").and_then(|n| n.parse::<usize>().ok()).unwrap_or(10).clamp(1, 100);
    let page = call.query("page").and_then(|n| n.parse::<usize>().ok()).unwrap_or(1).max(1);
    let mut orders: Vec<&HeldOrder> = markets
        .orders_of(Marketplace::WooCommerce)
        .filter(|held| since.is_none_or(|since| held.updated_at > since))
        .collect();
    orders.sort_by_key(|held| held.updated_at);
    let listed: Vec<Value> =
        orders.iter().skip((page - 1) * per_page).take(per_page).map(|held| woocommerce_order(held)).collect();
    let mut reply = Reply::json(StatusCode::OK, json!(listed));
    reply.headers.push(("x-wp-total", orders.len().to_string()));
    reply.headers.push(("x-wp-totalpages", orders.len().div_ceil(per_page).to_string()));
    reply
}

fn woocommerce_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// An order as WooCommerce's REST API writes it.
fn woocommerce_order(held: &HeldOrder) -> Value {
    let (first, last) = held.order.customer_name.split_once(' ').unwrap_or((held.order.customer_name.as_str(), ""));
    let id = |text: &str| text.parse::<u64>().map_or_else(|_| json!(text), |n| json!(n));
    let shipped_all = held.order.lines.iter().all(|line| held.packed(&line.id) >= line.quantity);
    json!({
        "id": id(&held.order.id), "number": held.order.id,
        "status": if shipped_all { "completed" } else { "processing" },
        "date_created_gmt": woocommerce_time(held.created_at), "date_modified_gmt": woocommerce_time(held.updated_at),
        "currency": "USD", "billing": {"first_name": first, "last_name": last},
        "shipping": {"first_name": first, "last_name": last, "country": "US"},
        "line_items": held.order.lines.iter().map(|line| json!({"id": id(&line.id), "sku": line.sku, "name": line.title,
            "quantity": line.quantity, "price": line.unit_price.parse::<f64>().unwrap_or_default()})).collect::<Vec<_>>(),
    })
}

fn woocommerce_fulfillment(order_id: &str, package: &Package) -> Value {
    let items: Vec<Value> =
        package.lines.iter().map(|(line, qty)| json!({"item_id": line.parse::<u64>().ok(), "qty": qty})).collect();
    json!({"id": package.reference.parse::<u64>().ok(), "entity_type": "WC_Order", "entity_id": order_id,
        "status": "fulfilled", "is_fulfilled": true, "date_updated": package.shipped_at, "date_deleted": null,
        "meta_data": [{"id": 0, "key": "_items", "value": items}, {"id": 0, "key": "_tracking_number", "value": package.tracking_number},
            {"id": 0, "key": "_shipment_provider", "value": package.carrier}]})
}

/// `POST …/orders/{id}/fulfillments`: a fulfillment of its `_items`, refused (changing nothing)
/// without items, for an item not in the order, or for more units than are left to ship.
fn create_woocommerce_fulfillment(markets: &mut Markets, order_id: &str, call: &Call<'_>) -> Reply {
    let Some(body) = call.json() else {
        return woocommerce_error(StatusCode::BAD_REQUEST, "rest_invalid_json", "Invalid JSON body passed.");
    };
    let next = markets.next();
    let Some(held) = markets.orders.get_mut(&(Marketplace::WooCommerce, order_id.to_owned())) else {
        return woocommerce_error(StatusCode::NOT_FOUND, "woocommerce_rest_order_invalid_id", "Invalid order ID.");
    };
    let meta = |key: &str| {
        body["meta_data"]
            .as_array()
            .and_then(|entries| entries.iter().find(|entry| entry["key"] == key))
            .map(|entry| entry["value"].clone())
    };
    let mut lines = Vec::new();
    for item in meta("_items").and_then(|items| items.as_array().cloned()).unwrap_or_default() {
        let line = match &item["item_id"] {
            Value::Number(id) => id.to_string(),
            Value::String(id) => id.clone(),
            _ => String::new(),
        };
        let qty = item["qty"].as_u64().and_then(|qty| u32::try_from(qty).ok()).unwrap_or(0);
        let Some(ordered) = held.order.lines.iter().find(|held_line| held_line.id == line) else {
            return woocommerce_error(
                StatusCode::BAD_REQUEST,
                "woocommerce_fulfillment_invalid_item",
                &format!("No item {line} in the order."),
            );
        };
        if qty == 0 || held.packed(&line) + qty > ordered.quantity {
            return woocommerce_error(
                StatusCode::BAD_REQUEST,
                "woocommerce_fulfillment_invalid_quantity",
                &format!("Item {line}: more than is left to fulfill."),
            );
        }
        lines.push((line, qty));
    }
    if lines.is_empty() {
        return woocommerce_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_fulfillment_invalid_items",
            "The fulfillment should contain at least one item.",
        );
    }
    let tracking = meta("_tracking_number").and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default();
    let carrier = meta("_shipment_provider").and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default();
    let package = Package {
        reference: next.to_string(),
        tracking_number: tracking.clone(),
        carrier: carrier.clone(),
        shipped_at: woocommerce_time(Utc::now()),
        lines: lines.clone(),
    };
    held.packages.push(package.clone());
    held.updated_at = Utc::now();
    info!(order = order_id, fulfillment = next, tracking = %tracking, carrier = %carrier, "fake WooCommerce: fulfillment created");
    markets.confirmations.push(Confirmation {
        marketplace: Marketplace::WooCommerce,
        order_id: order_id.to_owned(),
        reference: next.to_string(),
        tracking_number: tracking,
        carrier,
        lines,
        body,
    });
    Reply::json(StatusCode::CREATED, woocommerce_fulfillment(order_id, &package))
}

// ---------------------------------------------------------------------------------------------
// Wish

fn wish_refusal(code: u32, message: &str) -> Reply {
    Reply::json(StatusCode::BAD_REQUEST, json!({"code": code, "message": message, "data": {}}))
}

fn wish_data(data: Value) -> Reply {
    Reply::json(StatusCode::OK, json!({"code": 0, "message": "", "data": data}))
}

/// Carrier names the fake Wish lists (`shipping_carriers`).
const WISH_CARRIERS: [&str; 6] = ["UPS", "USPS", "FedEx", "DHL", "CanadaPost", "RoyalMail"];

fn wish_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn wish(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.path == "/api/v3/oauth/refresh_token" {
        return renew_wish_token(markets, call);
    }
    let bearer = call.header("authorization").and_then(|value| value.strip_prefix("Bearer "));
    if bearer.is_none() {
        return wish_refusal(1006, "No access token found");
    }
    if !markets.token_valid(Marketplace::Wish, bearer) {
        return wish_refusal(1008, "Access token revoked");
    }
    let order_path = call.path.strip_prefix("/api/v3/orders/");
    match (call.method, call.path, order_path.map(|rest| rest.split_once('/'))) {
        (&Method::GET, "/api/v3/orders", _) => {
            let from = call
                .query("updated_at_min")
                .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
                .map_or(DateTime::UNIX_EPOCH, |time| time.to_utc());
            let limit = call.query("limit").and_then(|limit| limit.parse::<usize>().ok()).unwrap_or(50);
            if call.query("sort_by") != Some("updated_at.asc") {
                return wish_refusal(1001, "the fake lists oldest first only: sort_by=updated_at.asc");
            }
            let mut listed: Vec<&HeldOrder> =
                markets.orders_of(Marketplace::Wish).filter(|held| held.updated_at >= from).collect();
            listed.sort_by_key(|held| held.updated_at);
            let data: Vec<Value> = listed.into_iter().take(limit).map(wish_order).collect();
            wish_data(json!(data))
        }
        (&Method::GET, _, Some(None)) => {
            let id = order_path.unwrap_or_default();
            match markets.orders.get(&(Marketplace::Wish, id.to_owned())) {
                Some(held) => wish_data(wish_order(held)),
                None => {
                    Reply::json(StatusCode::NOT_FOUND, json!({"code": 1004, "message": "Order not found", "data": {}}))
                }
            }
        }
        (&Method::PUT, _, Some(Some((id, "tracking")))) => ship_wish_order(markets, id, call),
        _ => not_found(),
    }
}

/// A new token pair for the merchant's current refresh token; every access token issued before
/// is revoked, and the refresh token rotates.
fn renew_wish_token(markets: &mut Markets, call: &Call<'_>) -> Reply {
    let current = markets.wish_refresh_token.clone().unwrap_or_else(|| WISH_REFRESH_TOKEN.to_owned());
    if call.query("client_id") != Some(WISH_CLIENT_ID)
        || call.query("client_secret") != Some(WISH_CLIENT_SECRET)
        || call.query("grant_type") != Some("refresh_token")
    {
        return wish_refusal(10001, "Incorrect client credentials");
    }
    if call.query("refresh_token") != Some(current.as_str()) {
        return wish_refusal(1006, "Invalid refresh token");
    }
    markets.tokens.retain(|(by, _)| *by != Marketplace::Wish);
    let access_token = markets.issue_token(Marketplace::Wish, "wish-access-");
    let refresh_token = format!("local-demo-wish-refresh-{}", markets.next());
    markets.wish_refresh_token = Some(refresh_token.clone());
    info!("fake Wish: token renewed (the older ones revoked)");
    wish_data(json!({"access_token": access_token, "refresh_token": refresh_token,
        "expiry_time": wish_time(Utc::now() + chrono::Duration::days(30)), "merchant_id": "5f0000000000000000000001",
        "scopes": ["orders:read", "orders:write"]}))
}

/// A Wish order: one product variation (the held order's first line).
fn wish_order(held: &HeldOrder) -> Value {
    let line = held.order.lines.first();
    let tracking: Vec<Value> = held
        .packages
        .iter()
        .rev()
        .map(|package| {
            json!({"tracking_number": package.tracking_number, "origin_country": "US",
                "shipping_provider": {"name": package.carrier}})
        })
        .collect();
    json!({"id": held.order.id, "state": if held.packages.is_empty() { "APPROVED" } else { "SHIPPED" },
        "transaction_id": format!("tx-{}", held.order.id),
        "released_at": wish_time(held.created_at), "updated_at": wish_time(held.updated_at),
        "product_information": {"id": "p-1", "variation_id": "v-1", "sku": line.map(|l| l.sku.clone()),
            "name": line.map(|l| l.title.clone())},
        "order_payment": {"general_payment_details": {"product_quantity": line.map_or(0, |l| l.quantity),
            "product_price": {"amount": line.map(|l| l.unit_price.clone()), "currency_code": "USD"}}},
        "full_address": {"shipping_detail": {"name": held.order.customer_name, "street_address1": "1 Main St",
            "city": "Austin", "state": "TX", "zipcode": "73301", "country_code": "US"}},
        "tracking_information": tracking})
}

fn ship_wish_order(markets: &mut Markets, id: &str, call: &Call<'_>) -> Reply {
    let Some(body) = call.json() else { return wish_refusal(1001, "the body must be JSON") };
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let (tracking, provider, origin) = (text("tracking_number"), text("shipping_provider"), text("origin_country"));
    if tracking.is_empty() || !tracking.chars().all(|c| c.is_ascii_alphanumeric()) {
        return wish_refusal(1001, "tracking_number must be letters and digits");
    }
    if origin.len() != 2 {
        return wish_refusal(1001, "origin_country is required (ISO 3166 alpha-2)");
    }
    if !WISH_CARRIERS.contains(&provider.as_str()) {
        return wish_refusal(1001, &format!("shipping_provider {provider:?} is not one of Wish's carriers"));
    }
    let Some(held) = markets.orders.get_mut(&(Marketplace::Wish, id.to_owned())) else {
        return Reply::json(StatusCode::NOT_FOUND, json!({"code": 1004, "message": "Order not found", "data": {}}));
    };
    let quantity = held.order.lines.first().map_or(0, |line| line.quantity);
    let line_id = held.order.id.clone();
    held.packages.push(Package {
        reference: tracking.clone(),
        tracking_number: tracking.clone(),
        carrier: provider.clone(),
        shipped_at: Utc::now().to_rfc3339(),
        lines: vec![(line_id.clone(), quantity)],
    });
    held.updated_at = Utc::now();
    let order = wish_order(held);
    info!(order = id, tracking = %tracking, "fake Wish: tracking received");
    markets.confirmations.push(Confirmation {
        marketplace: Marketplace::Wish,
        order_id: id.to_owned(),
        reference: tracking.clone(),
        tracking_number: tracking,
        carrier: provider,
        lines: vec![(line_id, quantity)],
        body,
    });
    wish_data(order)
}

// Groupon

fn groupon_refusal(reason: &str) -> Reply {
    Reply::json(StatusCode::OK, json!({"success": false, "reason": reason}))
}

/// Groupon's carrier codes the fake takes.
const GROUPON_CARRIERS: [&str; 6] = ["ups", "fedex", "usps", "dhl", "dhlglobalmail", "ontrac"];

fn groupon(markets: &mut Markets, call: &Call<'_>) -> Reply {
    let form = call.form();
    let field_of = |name: &str| call.query(name).or_else(|| field(&form, name)).map(str::to_owned);
    if field_of("supplier_id").as_deref() != Some(GROUPON_SUPPLIER_ID)
        || field_of("token").as_deref() != Some(GROUPON_TOKEN)
    {
        return Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"success": false, "reason": "Invalid supplier_id or token"}),
        );
    }
    match (call.method, call.path) {
        (&Method::GET, "/get_orders") => {
            let data: Vec<Value> = markets
                .orders_of(Marketplace::Groupon)
                .filter_map(|held| {
                    let lines: Vec<Value> = held
                        .order
                        .lines
                        .iter()
                        .enumerate()
                        .filter(|(index, _)| held.line_states.get(*index) == Some(&AWAITING_VALIDATION))
                        .map(|(_, line)| {
                            json!({"ci_lineitemid": line.id.parse::<u64>().ok(), "sku": line.sku,
                            "name": line.title, "quantity": line.quantity, "unit_price": line.unit_price})
                        })
                        .collect();
                    (!lines.is_empty()).then(|| {
                        json!({"orderid": held.order.id,
                        "date": held.created_at.format("%m/%d/%Y %H:%M").to_string(),
                        "customer": {"name": held.order.customer_name, "city": "Chicago", "country": "US"},
                        "line_items": lines})
                    })
                })
                .collect();
            Reply::json(StatusCode::OK, json!({"success": true, "data": data}))
        }
        (&Method::POST, "/mark_exported") => {
            let ids: Vec<String> = field_of("ci_lineitem_ids")
                .and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
                .unwrap_or_default()
                .iter()
                .map(|id| id.as_u64().map_or_else(|| id.as_str().unwrap_or_default().to_owned(), |n| n.to_string()))
                .collect();
            if ids.is_empty() {
                return groupon_refusal("ci_lineitem_ids must be a JSON array of line item ids");
            }
            let mut accepted = Vec::new();
            for id in &ids {
                let found = markets.orders.iter_mut().filter(|((by, _), _)| *by == Marketplace::Groupon).find_map(
                    |(_, held)| {
                        let index = held.order.lines.iter().position(|line| &line.id == id)?;
                        Some((held, index))
                    },
                );
                let Some((held, index)) = found else { return groupon_refusal(&format!("No line item {id}")) };
                if let Some(state) = held.line_states.get_mut(index) {
                    *state = VALIDATED;
                }
                held.updated_at = Utc::now();
                accepted.push(Acceptance { order_id: held.order.id.clone(), sku: held.order.lines[index].sku.clone() });
            }
            info!(lines = ?ids, "fake Groupon: order lines marked exported");
            markets.acceptances.extend(accepted);
            Reply::json(StatusCode::OK, json!({"success": true}))
        }
        (&Method::POST, "/tracking_notification") => {
            let Some(entries) =
                field_of("tracking_info").and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
            else {
                return groupon_refusal("tracking_info must be a JSON array");
            };
            let mut confirmed = Vec::new();
            for entry in &entries {
                let id = entry["ci_lineitem_id"]
                    .as_u64()
                    .map_or_else(|| entry["ci_lineitem_id"].as_str().unwrap_or_default().to_owned(), |n| n.to_string());
                let carrier = entry["carrier"].as_str().unwrap_or_default().to_owned();
                let tracking = entry["tracking"].as_str().unwrap_or_default().to_owned();
                let quantity = entry["quantity"].as_u64().and_then(|q| u32::try_from(q).ok()).unwrap_or(0);
                if !GROUPON_CARRIERS.contains(&carrier.as_str()) || tracking.is_empty() {
                    return groupon_refusal(&format!(
                        "line item {id}: carrier must be one of {GROUPON_CARRIERS:?}, with a tracking number"
                    ));
                }
                let Some(held) = markets
                    .orders
                    .iter()
                    .filter(|((by, _), _)| *by == Marketplace::Groupon)
                    .map(|(_, held)| held)
                    .find(|held| held.order.lines.iter().any(|line| line.id == id))
                else {
                    return groupon_refusal(&format!("No line item {id}"));
                };
                let index = held.order.lines.iter().position(|line| line.id == id).unwrap_or_default();
                if held.line_states.get(index) != Some(&VALIDATED) {
                    return groupon_refusal(&format!("line item {id} was not marked exported"));
                }
                if quantity == 0 || held.packed(&id) + quantity > held.order.lines[index].quantity {
                    return groupon_refusal(&format!("line item {id}: more units than were ordered"));
                }
                confirmed.push((held.order.id.clone(), id, carrier, tracking, quantity));
            }
            let body = json!({"tracking_info": entries});
            for (order_id, line, carrier, tracking, quantity) in confirmed {
                if let Some(held) = markets.orders.get_mut(&(Marketplace::Groupon, order_id.clone())) {
                    held.packages.push(Package {
                        reference: tracking.clone(),
                        tracking_number: tracking.clone(),
                        carrier: carrier.clone(),
                        shipped_at: Utc::now().to_rfc3339(),
                        lines: vec![(line.clone(), quantity)],
                    });
                    held.updated_at = Utc::now();
                }
                info!(order = %order_id, line = %line, tracking = %tracking, carrier = %carrier, "fake Groupon: tracking received");
                markets.confirmations.push(Confirmation {
                    marketplace: Marketplace::Groupon,
                    order_id,
                    reference: line.clone(),
                    tracking_number: tracking,
                    carrier,
                    lines: vec![(line, quantity)],
                    body: body.clone(),
                });
            }
            Reply::json(StatusCode::OK, json!({"success": true}))
        }
        _ => Reply::json(StatusCode::NOT_FOUND, json!({"success": false, "reason": "Unknown method"})),
    }
}

// ---------------------------------------------------------------------------------------------
// A custom channel's receiver

/// Checks `X-Shipsync-Signature` (`v1=` hex HMAC-SHA256 of `<timestamp>.<body>`) as a receiver
/// would, and that the timestamp is within five minutes.
fn custom_signed(call: &Call<'_>) -> bool {
    let Some(timestamp) = call.header("x-shipsync-timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return false;
    };
    let fresh = (Utc::now().timestamp() - timestamp).abs() <= 300;
    let expected = shipsync_channels::shipment_signature(CUSTOM_SIGNING_SECRET, timestamp, call.body);
    fresh && call.header("x-shipsync-signature") == Some(expected.as_str())
}

fn custom_receiver(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.path != "/shipments" {
        return Reply::json(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    }
    if !custom_signed(call) {
        return Reply::json(StatusCode::UNAUTHORIZED, json!({"error": "bad signature"}));
    }
    let held = |markets: &Markets, key: &str| {
        markets
            .confirmations
            .iter()
            .find(|sent| sent.marketplace == Marketplace::Custom && sent.reference == key)
            .map(|sent| sent.body["received_as"].clone())
    };
    match *call.method {
        Method::GET => {
            let key = call.query("idempotency_key").unwrap_or_default();
            match held(markets, key) {
                Some(id) => Reply::json(StatusCode::OK, json!({"id": id})),
                None => Reply::json(StatusCode::NOT_FOUND, json!({"error": "no such shipment"})),
            }
        }
        Method::POST => {
            let Some(key) = call.header("idempotency-key").map(str::to_owned) else {
                return Reply::json(StatusCode::BAD_REQUEST, json!({"error": "Idempotency-Key is required"}));
            };
            if let Some(id) = held(markets, &key) {
                return Reply::json(StatusCode::CONFLICT, json!({"id": id, "error": "already received"}));
            }
            let Some(mut body) = call.json() else {
                return Reply::json(StatusCode::BAD_REQUEST, json!({"error": "the body is not JSON"}));
            };
            let shipment = &body["shipment"];
            let lines: Vec<(String, u32)> = shipment["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|line| {
                    Some((line["line_id"].as_str()?.to_owned(), u32::try_from(line["quantity"].as_u64()?).ok()?))
                })
                .collect();
            let order_id = shipment["order_id"].as_str().unwrap_or_default().to_owned();
            let tracking = shipment["tracking_numbers"][0].as_str().unwrap_or_default().to_owned();
            let carrier = shipment["carrier"].as_str().unwrap_or_default().to_owned();
            let id = format!("rcv_{}", markets.next());
            body["received_as"] = json!(id);
            info!(order = %order_id, tracking = %tracking, carrier = %carrier, key = %key, "fake custom channel: shipment received");
            markets.confirmations.push(Confirmation {
                marketplace: Marketplace::Custom,
                order_id,
                reference: key,
                tracking_number: tracking,
                carrier,
                lines,
                body,
            });
            Reply::json(StatusCode::CREATED, json!({"id": id}))
        }
        _ => Reply::json(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "GET or POST"})),
    }
}

// ---------------------------------------------------------------------------------------------
// EasyPost

fn easypost_error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": message, "errors": []}}))
}

fn easypost(markets: &mut Markets, call: &Call<'_>) -> Reply {
    if call.header("authorization") != Some(basic(EASYPOST_API_KEY, "").as_str()) {
        return easypost_error(StatusCode::UNAUTHORIZED, "APIKEY.INACTIVE", "The API key is not valid");
    }
    if call.method != Method::POST || call.path != "/v2/trackers" {
        return easypost_error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource could not be found.");
    }
    let body = call.json().unwrap_or(Value::Null);
    let tracker = &body["tracker"];
    let Some(code) = tracker["tracking_code"].as_str().map(str::trim).filter(|code| !code.is_empty()) else {
        return easypost_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "PARAMETER.REQUIRED",
            "tracker.tracking_code is required",
        );
    };
    let carrier = tracker["carrier"].as_str().map(str::to_owned);
    // The same code and carrier within three months: the tracker EasyPost already has.
    let existing = markets.trackers.iter().find(|held| held.tracking_code == code && held.carrier == carrier).cloned();
    let tracker = match existing {
        Some(tracker) => tracker,
        None => {
            let tracker =
                Tracker { id: format!("trk_localdemo{:06}", markets.next()), tracking_code: code.to_owned(), carrier };
            info!(tracker = %tracker.id, tracking = %tracker.tracking_code, carrier = ?tracker.carrier, "fake EasyPost: tracker registered");
            markets.trackers.push(tracker.clone());
            tracker
        }
    };
    let now = amazon_time(Utc::now());
    Reply::json(
        StatusCode::OK,
        json!({"id": tracker.id, "object": "Tracker", "mode": "test", "tracking_code": tracker.tracking_code,
               "status": "unknown", "carrier": tracker.carrier.unwrap_or_default(), "tracking_details": [],
               "created_at": now, "updated_at": now}),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use shipsync_channels::{
        AmazonClient, AmazonCredentials, BackMarketClient, Channel, ChannelError, EbayClient, EbayCredentials,
        ExportLine, ExportOrder, TokenCache, TrackerClient, TrackerRegistry,
    };
    use shipsync_domain::carrier::StandardCarrier;
    use shipsync_domain::tracking::TrackingNumber;
    use shipsync_domain::vocabulary::ChannelOrderId;

    fn line(id: &str, sku: &str, quantity: u32, category: Option<&str>) -> MarketLine {
        MarketLine {
            id: id.into(),
            sku: sku.into(),
            title: format!("Item {sku}"),
            quantity,
            unit_price: "15.00".into(),
            category: category.map(str::to_owned),
        }
    }

    fn export(order_id: &str, line_id: &str, sku: &str, quantity: u32, tracking: &str) -> ExportOrder {
        ExportOrder {
            shipment_id: 7,
            shipped_at: Utc::now(),
            channel_order_id: ChannelOrderId::parse(order_id).expect("an order id"),
            lines: vec![ExportLine {
                channel_line_item_id: line_id.into(),
                quantity,
                sku: sku.into(),
                serial_codes: vec!["356938035643809".into()],
                package: None,
                needs_imei: false,
            }],
            tracking_numbers: vec![TrackingNumber::parse(tracking).expect("a tracking number")],
            carrier: "UPS".into(),
            carrier_code: None,
            tracking_urls: vec![],
            notify_customer: true,
            shipping_method: None,
        }
    }

    async fn started() -> FakeMarketplaces {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        FakeMarketplaces::start(listener).expect("start")
    }

    fn amazon(fake: &FakeMarketplaces, secret: &str) -> AmazonClient {
        let credentials = AmazonCredentials {
            client_id: AMAZON_CLIENT_ID.into(),
            client_secret: secret.into(),
            refresh_token: AMAZON_REFRESH_TOKEN.into(),
        };
        let base = fake.url(Marketplace::Amazon);
        let token = format!("{base}/auth/o2/token");
        AmazonClient::new(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&base),
            Some(&token),
            AMAZON_MARKETPLACE_ID.into(),
            credentials,
            TokenCache::default(),
        )
    }

    /// Amazon's client reads the order, confirms a package (204), sees it on the order, edits it
    /// on a retry (one package), and is refused more than was ordered and a wrong secret.
    #[tokio::test]
    async fn the_amazon_client_reads_and_confirms_as_at_amazon() {
        let fake = started().await;
        let since = Utc::now() - chrono::Duration::hours(1);
        let order = MarketOrder {
            id: "111-0000001-0000001".into(),
            customer_name: "Jane Roe".into(),
            lines: vec![line("OI-1", "LAMP-LED", 2, None)],
        };
        fake.add_order(Marketplace::Amazon, order, since + chrono::Duration::minutes(1));
        let client = amazon(&fake, AMAZON_CLIENT_SECRET);
        let page = client.orders_since(since, None).await.expect("a page");
        assert_eq!(page.next, None);
        let [read] = page.orders.as_slice() else { panic!("one order: {page:?}") };
        assert_eq!((read.number.as_str(), read.customer_name.as_str()), ("111-0000001-0000001", "Jane Roe"));
        assert_eq!((read.lines[0].channel_line_item_id.as_str(), read.lines[0].quantity), ("OI-1", 2));
        assert!(
            client.orders_since(Utc::now() + chrono::Duration::hours(1), None).await.expect("a page").orders.is_empty()
        );

        let shipped = export("111-0000001-0000001", "OI-1", "LAMP-LED", 2, "1Z999AA10000000001");
        let first = client.export(&shipped, false).await.expect("confirmed");
        let again = client.export(&shipped, true).await.expect("edited");
        assert_eq!(first.channel_ids, again.channel_ids);
        let received = fake.confirmations();
        assert_eq!(received.len(), 2, "two calls");
        assert_eq!((received[0].carrier.as_str(), received[0].lines.clone()), ("UPS", vec![("OI-1".to_owned(), 2)]));
        let packages = client.fulfillments(&shipped.channel_order_id).await.expect("packages");
        assert_eq!(packages.len(), 1, "the retry edited the package: {packages:?}");
        assert_eq!(packages[0].channel_fulfillment_id, first.channel_ids[0]);

        let mut more = export("111-0000001-0000001", "OI-1", "LAMP-LED", 1, "1Z999AA10000000002");
        more.shipment_id = 8;
        assert!(matches!(client.export(&more, false).await, Err(ChannelError::Permanent { .. })));
        let stranger = amazon(&fake, "wrong");
        assert!(stranger.orders_since(since, None).await.is_err());
    }

    /// eBay's client reads by modification date, creates a fulfillment (201, Location), adopts it
    /// on a retry, and reads it back as the order's fulfillment.
    #[tokio::test]
    async fn the_ebay_client_reads_fulfils_and_adopts_as_at_ebay() {
        let fake = started().await;
        let since = Utc::now() - chrono::Duration::hours(1);
        let order = MarketOrder {
            id: "12-04000-00001".into(),
            customer_name: "Jo Bloggs".into(),
            lines: vec![line("10001", "TENT-2P", 1, None)],
        };
        fake.add_order(Marketplace::Ebay, order, since + chrono::Duration::minutes(1));
        let credentials = EbayCredentials {
            client_id: EBAY_CLIENT_ID.into(),
            client_secret: EBAY_CLIENT_SECRET.into(),
            refresh_token: EBAY_REFRESH_TOKEN.into(),
        };
        let client = EbayClient::new(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&fake.url(Marketplace::Ebay)),
            None,
            credentials,
            TokenCache::default(),
        );
        let page = client.orders_since(since, None).await.expect("a page");
        let [read] = page.orders.as_slice() else { panic!("one order: {page:?}") };
        assert_eq!((read.customer_name.as_str(), read.lines[0].quantity), ("Jo Bloggs", 1));
        assert_eq!(page.next, None);

        let shipped = export("12-04000-00001", "10001", "TENT-2P", 1, "9400 1000 0000 0000 0000 01");
        let first = client.export(&shipped, false).await.expect("fulfilled");
        assert_eq!(first.channel_ids, ["9400100000000000000001"]);
        let again = client.export(&shipped, true).await.expect("adopted");
        assert!(again.adopted);
        assert_eq!(fake.confirmations().len(), 1);
        let read = client.order(&shipped.channel_order_id).await.expect("read").expect("an order");
        assert_eq!(read.fulfillments.len(), 1);
        assert_eq!(read.fulfillments[0].channel_fulfillment_id, "9400100000000000000001");
    }

    /// Back Market's client reads a line awaiting validation, accepts it, then ships it with its
    /// IMEI; a second export finds it shipped (adopted).
    #[tokio::test]
    async fn the_back_market_client_accepts_and_ships_as_at_back_market() {
        let fake = started().await;
        let since = Utc::now() - chrono::Duration::hours(1);
        let order = MarketOrder {
            id: "4600001".into(),
            customer_name: "Jeanne Dupont".into(),
            lines: vec![line("46000011", "PHONE-X", 1, Some("Smartphones"))],
        };
        fake.add_order(Marketplace::BackMarket, order, since + chrono::Duration::minutes(1));
        let client = BackMarketClient::new(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&fake.url(Marketplace::BackMarket)),
            BACK_MARKET_TOKEN.into(),
        );
        let page = client.orders_since(since, None).await.expect("a page");
        let [read] = page.orders.as_slice() else { panic!("one order: {page:?}") };
        assert!(read.lines[0].awaiting_acceptance && read.lines[0].needs_imei, "{read:?}");
        client.accept_lines(&read.channel_order_id, &read.lines).await.expect("accepted");
        assert_eq!(fake.acceptances(), [Acceptance { order_id: "4600001".into(), sku: "PHONE-X".into() }]);

        let shipped = export("4600001", "46000011", "PHONE-X", 1, "4600000001");
        let first = client.export(&shipped, false).await.expect("shipped");
        assert!(!first.adopted);
        assert!(client.export(&shipped, true).await.expect("found shipped").adopted);
        let received = fake.confirmations();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].body["imei"], "356938035643809");
        let read = client.order(&shipped.channel_order_id).await.expect("read").expect("an order");
        assert_eq!(read.fulfillments[0].tracking_numbers[0].as_str(), "4600000001");
        let stranger = BackMarketClient::new(
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&fake.url(Marketplace::BackMarket)),
            "other".into(),
        );
        assert!(stranger.orders_since(since, None).await.is_err());
    }

    /// EasyPost's client registers a number once: a repeat gets the same tracker.
    #[tokio::test]
    async fn the_easypost_client_registers_a_tracker_once() {
        let fake = started().await;
        let tracker = TrackerClient::new(
            shipsync_domain::tracking::TrackingProvider::Easypost,
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&fake.easypost_url()),
            EASYPOST_API_KEY.into(),
        );
        let number = TrackingNumber::parse("1Z999AA10000000001").expect("a tracking number");
        let first = tracker.register(&number, Some(StandardCarrier::Ups)).await.expect("registered");
        let again = tracker.register(&number, Some(StandardCarrier::Ups)).await.expect("registered");
        assert_eq!(first.tracker_id, again.tracker_id);
        assert_eq!(
            fake.trackers(),
            [Tracker {
                id: first.tracker_id.clone().expect("an id"),
                tracking_code: "1Z999AA10000000001".into(),
                carrier: Some("UPS".into())
            }]
        );
        let stranger = TrackerClient::new(
            shipsync_domain::tracking::TrackingProvider::Easypost,
            shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
            Some(&fake.easypost_url()),
            "EZAKother".into(),
        );
        assert!(matches!(stranger.register(&number, None).await, Err(ChannelError::Permanent { .. })));
    }
}
