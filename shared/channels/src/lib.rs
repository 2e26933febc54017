//! Sales channels behind one port, [`Channel`]: each turns a shipment to export into the
//! channel's own calls and its answers into a [`Fulfillment`] or a [`ChannelError`] that says
//! whether a retry can help, and reads the channel's orders and fulfillments. [`Channels`]
//! connects a store to its channel; [`settings`] holds each channel's typed credentials.

mod amazon;
mod backmarket;
mod custom;
mod ebay;
mod endpoints;
mod groupon;
mod port;
pub mod settings;
mod shopify;
pub mod shopify_webhooks;
mod trackers;
mod walmart;
mod wish;
mod woocommerce;

pub use amazon::{
    AMAZON_ORDERS_API, AmazonClient, AmazonOrderChange, AmazonTokens, OrderChangeSubscription, TokenCache,
    package_reference, parse_amazon_order_change,
};
pub use backmarket::BackMarketClient;
pub use custom::{
    CUSTOM_WEBHOOK_SIGNATURE_HEADER, CustomClient, PublicOnlyResolver, cancellation_payload, idempotency_key,
    is_public_address, public_only_http_client, read_custom_order, shipment_payload, shipment_signature,
};
pub use ebay::EbayClient;
pub use endpoints::{ChannelEndpoints, EndpointError, amazon_endpoint};
pub use groupon::{GrouponClient, groupon_carrier};
pub use port::{Channel, ChannelFuture, Channels, OrdersPage, SettingsError, UnreadableOrder};
pub use settings::{
    AmazonCredentials, BackMarketCredentials, CustomCredentials, EbayCredentials, GrouponCredentials,
    ShopifyCredentials, ShopifyWebhookSecrets, TrackingCredentials, WalmartCredentials, WishCredentials,
    WooCommerceCredentials, credential_names, validate_carrier_mappings, validate_settings, validate_store_settings,
    validate_tracking,
};
pub use shopify::{SHOPIFY_API_VERSION, ShopifyClient};
pub use trackers::{AFTERSHIP_API_VERSION, Registered, TrackerClient, TrackerRegistry, carrier_code};
pub use walmart::{WALMART_CARRIERS, WalmartClient, walmart_carrier};
pub use wish::{WISH_ENDPOINT, WISH_RENEW_AHEAD, WishClient, wish_carrier};
pub use woocommerce::{WOOCOMMERCE_SIGNATURE_HEADER, WooCommerceClient, read_woocommerce_order};

use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::ChannelOrderId;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shipsync_domain::carrier::StandardCarrier;
use shipsync_domain::export::{notify_customer, tracking_url};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::ChannelStore;

/// A return as a channel receives it, to open there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnOrder {
    pub channel_order_id: ChannelOrderId,
    /// Each line's id in the channel and the units coming back.
    pub lines: Vec<(String, u32)>,
    pub reason: String,
    /// shipsync's reference for it (`shipsync-return-<id>`), left in the channel's note so a
    /// retry finds it.
    pub reference: String,
}

impl ReturnOrder {
    /// The payload for a return (`po`: its purchase order, for the lines' channel ids).
    pub fn for_return(
        ret: &shipsync_domain::returns::Return,
        po: &shipsync_domain::purchase_order::PurchaseOrder,
    ) -> Result<Self, String> {
        let channel_order_id = po
            .channel_order_id
            .clone()
            .ok_or_else(|| format!("purchase order {} has no channel order", po.public_reference))?;
        let mut lines: Vec<(String, u32)> = Vec::new();
        for line in &ret.lines {
            let id = po
                .item(line.order_item_id)
                .and_then(|item| item.channel_line_item_id.clone())
                .ok_or_else(|| format!("item {} has no channel line id", line.order_item_id))?;
            match lines.iter_mut().find(|(known, _)| *known == id) {
                Some((_, total)) => *total += line.quantity,
                None => lines.push((id, line.quantity)),
            }
        }
        Ok(Self {
            channel_order_id,
            lines,
            reason: ret.reason.clone(),
            reference: format!("shipsync-return-{}", ret.id),
        })
    }
}

/// A cancellation as a channel receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOrder {
    pub channel_order_id: ChannelOrderId,
    /// Each line's id in the channel and the units cancelled.
    pub lines: Vec<(String, u32)>,
    /// Each line's units cancelled in all once this cancellation is in (for channels that
    /// count cancelled units per line: a retry sends only what the channel does not show).
    pub cancelled_after: Vec<(String, u32)>,
    /// Every unit of the order is cancelled and none shipped: the channel cancels the order.
    pub whole_order: bool,
    pub reason: shipsync_domain::cancellations::CancelReason,
    pub note: String,
    pub notify_customer: bool,
    /// shipsync's reference for it (`shipsync-cancellation-<id>`): the idempotency key where the
    /// channel takes one, and the mark that finds it again where it keeps a note.
    pub reference: String,
}

impl CancelOrder {
    /// The payload for a cancellation. Err: a line without its channel id.
    pub fn for_cancellation(cancellation: &shipsync_domain::cancellations::Cancellation) -> Result<Self, String> {
        let channel_order_id = cancellation
            .channel_order_id
            .clone()
            .ok_or_else(|| format!("purchase order {} has no channel order", cancellation.purchase_order_number))?;
        let lines = cancellation
            .lines
            .iter()
            .map(|line| {
                line.channel_line_item_id
                    .clone()
                    .map(|id| (id, line.quantity))
                    .ok_or_else(|| format!("item {} has no channel line id", line.order_item_id))
            })
            .collect::<Result<_, _>>()?;
        let cancelled_after = cancellation
            .lines
            .iter()
            .filter_map(|line| Some((line.channel_line_item_id.clone()?, line.cancelled_after)))
            .collect();
        Ok(Self {
            channel_order_id,
            lines,
            cancelled_after,
            whole_order: cancellation.whole_order,
            reason: cancellation.reason,
            note: cancellation.note.clone(),
            notify_customer: cancellation.notify_customer,
            reference: format!("shipsync-cancellation-{}", cancellation.id),
        })
    }
}

/// A shipment as a channel receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOrder {
    /// The shipment's id: where a channel needs a stable reference of its own (Amazon's packages).
    pub shipment_id: u64,
    /// When it shipped (the shipment's creation).
    pub shipped_at: DateTime<Utc>,
    /// The order's id in the channel.
    pub channel_order_id: ChannelOrderId,
    pub lines: Vec<ExportLine>,
    pub tracking_numbers: Vec<TrackingNumber>,
    /// The carrier as the channel names it.
    pub carrier: String,
    /// The channel's code for the carrier, where the store maps one (Amazon: `UPS`; else `Other` + name).
    pub carrier_code: Option<String>,
    /// One URL per tracking number, when the store has a URL template for the carrier.
    pub tracking_urls: Vec<String>,
    pub notify_customer: bool,
    /// The shipping service (Amazon's `shippingMethod`), when the shipment names one.
    pub shipping_method: Option<String>,
}

impl ExportOrder {
    /// The channel payload for a shipment as it stands now: the channel ids it carries (copied
    /// from its purchase order when it was made; `po` is read only for a shipment made before
    /// they were copied), the store's carrier mapping and the notification its settings (and the
    /// vendor's) call for. Err: what the order lacks for the channel to know the shipment.
    pub fn for_shipment(
        shipment: &Shipment,
        po: Option<&PurchaseOrder>,
        store: &ChannelStore,
        vendor_notify: Option<bool>,
    ) -> Result<ExportOrder, String> {
        let channel_order_id =
            shipment.channel_order_id.clone().or_else(|| po.and_then(|po| po.channel_order_id.clone())).ok_or_else(
                || format!("purchase order {} has no channel order id", shipment.purchase_order_public_reference),
            )?;
        let mut lines = Vec::with_capacity(shipment.items.len());
        for item in &shipment.items {
            let line = item
                .channel_line_item_id
                .clone()
                .or_else(|| po?.item(item.order_item_id)?.channel_line_item_id.clone())
                .ok_or_else(|| {
                    format!("order item {} ({}) has no channel line item id", item.order_item_id, item.sku)
                })?;
            lines.push(ExportLine {
                channel_line_item_id: line,
                quantity: item.quantity,
                sku: item.sku.clone(),
                serial_codes: item.serial_codes.clone(),
                package: item.package.clone(),
                needs_imei: item.needs_imei,
            });
        }
        let mapping = store.export.mapping_for(shipment.carrier.id);
        let tracking_numbers: Vec<TrackingNumber> = shipment.trackings.iter().map(|t| t.tracking.clone()).collect();
        // The store's template for the carrier, else the carrier's own tracking page if it is
        // a standard carrier; else none (a channel without a URL shows the number alone).
        let tracking_urls = match mapping.and_then(|m| m.tracking_url_template.as_deref()) {
            Some(template) => tracking_numbers.iter().map(|number| tracking_url(template, number.as_str())).collect(),
            None => StandardCarrier::recognise(&shipment.carrier)
                .map(|carrier| tracking_numbers.iter().map(|number| carrier.tracking_url(number.as_str())).collect())
                .unwrap_or_default(),
        };
        Ok(ExportOrder {
            shipment_id: shipment.id.get(),
            shipped_at: shipment.created_at,
            channel_order_id,
            lines,
            carrier: mapping.map_or_else(|| shipment.carrier.name.clone(), |m| m.channel_carrier.clone()),
            carrier_code: mapping.map(|m| m.channel_carrier.clone()),
            tracking_numbers,
            tracking_urls,
            notify_customer: notify_customer(
                shipment.export.notify_override,
                vendor_notify,
                store.export.send_tracking,
            ),
            shipping_method: shipment.shipping_method.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLine {
    /// The order line's id in the channel.
    pub channel_line_item_id: String,
    pub quantity: u32,
    pub sku: String,
    /// IMEIs or serial numbers of the units shipped.
    pub serial_codes: Vec<String>,
    /// The package (tracking number) these units are in, when the shipment says; otherwise
    /// units are spread over its packages.
    pub package: Option<TrackingNumber>,
    /// The channel said each unit needs its IMEI on the confirmation (Back Market's smartphones).
    pub needs_imei: bool,
}

/// What the channel recorded: its ids for the fulfillments that carry the shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfillment {
    pub channel_ids: Vec<String>,
    /// Whether some of it was already there (found by tracking number) and adopted.
    pub adopted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Worth trying again (rate limit, server error, timeout), after `retry_after` if the channel said.
    #[error("{message}")]
    Retryable { message: String, retry_after: Option<Duration> },
    /// The channel refused the shipment: a person must fix something.
    #[error("{message}")]
    Permanent { message: String },
    /// The channel's client cannot do this yet (Amazon's order intake, say): permanent, since
    /// no retry can help until shipsync learns it.
    #[error("{what} is not supported yet")]
    Unsupported { what: String },
}

impl ChannelError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ChannelError::Retryable { message: message.into(), retry_after: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ChannelError::Permanent { message: message.into() }
    }
}

/// The HTTP client channel calls go through: bounded by `timeout`, and never following a
/// redirect (which would carry the channel's token header to wherever it points). A client
/// that cannot be built fails the cold start: there is no weaker one to fall back to.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, HttpClientError> {
    Ok(http_client_builder()?.timeout(timeout).redirect(reqwest::redirect::Policy::none()).build()?)
}

/// Why the channels' HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// A client builder with shipsync's TLS: rustls with ring, trusting Mozilla's root certificates
/// as compiled into `webpki-roots` (every channel and carrier API, and every AWS endpoint, is
/// served under one of them). reqwest's own default reads and parses each root in
/// `/etc/ssl/certs` at every client's construction, which cost a cold start tens of milliseconds.
pub fn http_client_builder() -> Result<reqwest::ClientBuilder, HttpClientError> {
    http_client_builder_trusting(Vec::new())
}

/// As [`http_client_builder`], trusting `extra_roots` too (each checked to be a usable root).
pub fn http_client_builder_trusting(
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<reqwest::ClientBuilder, HttpClientError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for root in extra_roots {
        roots.add(root)?;
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A preconfigured config keeps its own ALPN: HTTP/1.1 only (no HTTP/2 code in the binaries;
    // one call at a time per connection is all a Lambda needs).
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls))
}

/// The longest wait a channel can ask for: longer asks (`Retry-After: 1e20`, a date next year)
/// are cut to this, so that no answer can overflow a timer or hold a message for days.
pub const MAX_CHANNEL_WAIT: Duration = Duration::from_secs(15 * 60);

/// A wait a channel asked for, in seconds, made safe: NaN means none, a negative wait is no
/// wait, and anything over [`MAX_CHANNEL_WAIT`] (infinity included) is cut to it. Every wait a
/// channel's answer sets goes through here.
pub fn channel_wait(seconds: f64) -> Option<Duration> {
    if seconds.is_nan() {
        return None;
    }
    let limit = MAX_CHANNEL_WAIT.as_secs_f64();
    // Clamped first, so that `from_secs_f64` (which panics on overflow) only sees 0..=900.
    Some(Duration::from_secs_f64(seconds.clamp(0.0, limit)))
}

/// The wait a response asks for: `Retry-After` (seconds or an HTTP date), else Amazon's
/// `x-amzn-RateLimit-Limit` (requests per second) on a 429; clamped by [`channel_wait`].
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, chrono::Utc::now())
}

fn retry_after_at(headers: &reqwest::header::HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(value) = text("retry-after") {
        if let Ok(seconds) = value.parse::<f64>() {
            return channel_wait(seconds);
        }
        if let Ok(date) = chrono::DateTime::parse_from_rfc2822(value) {
            let millis = (date.with_timezone(&chrono::Utc) - now).num_milliseconds();
            // i64 milliseconds to f64 loses precision only far beyond the clamp.
            return channel_wait(millis as f64 / 1000.0);
        }
        return None;
    }
    let rate = text("x-amzn-ratelimit-limit")?.parse::<f64>().ok()?;
    // One request's share of the rate; a rate of 0 asks for the longest wait.
    (rate >= 0.0).then(|| channel_wait(1.0 / rate)).flatten()
}

/// Turns a transport failure into a retryable error: whether the request reached the channel is
/// unknown, so the retry must look for the fulfillment first (the exporter's claim sees to that).
pub fn transport_error(error: &reqwest::Error) -> ChannelError {
    ChannelError::retryable(format!("request to the channel {}", failure_kind(error)))
}

/// How a request that got no answer failed, in words.
pub(crate) fn failure_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    }
}

/// A read's answer: its JSON body, `None` on 404 (the channel does not know the record), else
/// the error its status means (`channel` names it in messages).
pub(crate) async fn json_or_missing(
    response: reqwest::Response,
    channel: &str,
) -> Result<Option<serde_json::Value>, ChannelError> {
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let text = success_body(response, |text| format!("{channel}: {}", first_error_message(text))).await?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|_| ChannelError::retryable(format!("{channel} answered something that is not JSON: {text:.200}")))
}

/// A response's body if its status is a success; otherwise the error its status means, with the
/// channel's own message (`describe` turns the body into it), waiting as `Retry-After` says.
pub(crate) async fn success_body(
    response: reqwest::Response,
    describe: impl Fn(&str) -> String,
) -> Result<String, ChannelError> {
    let status = response.status();
    let wait = if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        retry_after(response.headers())
    } else {
        None
    };
    let text = response.text().await.map_err(|error| transport_error(&error))?;
    if status.is_success() { Ok(text) } else { Err(status_error(status, wait, &describe(&text))) }
}

/// The first `errors[].message` of a JSON error body (Amazon, eBay), or the body itself.
pub(crate) fn first_error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|body| body["errors"][0]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect())
}

/// Maps an HTTP status that is not a success.
pub fn status_error(status: reqwest::StatusCode, retry_after: Option<Duration>, body: &str) -> ChannelError {
    let excerpt: String = body.chars().take(300).collect();
    let message = format!("channel answered HTTP {}: {excerpt}", status.as_u16());
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ChannelError::Retryable { message, retry_after }
    } else {
        ChannelError::Permanent { message }
    }
}

/// An id as one segment of a URL's path: letters, digits and `-_.~` as they are, anything else
/// escaped, so that no id can reach another resource. A segment of dots alone (or none) would
/// climb the path, and URL parsers read `%2E` as a dot there too: its characters are escaped
/// twice, so the channel reads an id it does not have.
pub(crate) fn path_segment(id: &str) -> String {
    if id.bytes().all(|byte| byte == b'.') {
        return format!("%25{}", id.bytes().map(|_| "2E%25").collect::<String>()) + "00";
    }
    id.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// One package of a shipment as a channel receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    /// Its place among the shipment's tracking numbers (after them, for a package a line names
    /// that the shipment does not list): stable across retries, so Amazon's reference is too.
    pub index: usize,
    /// Its tracking number; empty for a shipment without one.
    pub tracking: String,
    /// Channel line item ids and the units of each in the package.
    pub items: Vec<(String, u32)>,
}

/// The shipment's packages, in the order of its tracking numbers. When every line names its
/// package ([`ExportLine::package`]), each package holds exactly its own lines' units; otherwise
/// units are spread over the packages one at a time, so that every package with a tracking
/// number carries something. Packages left empty are left out.
pub(crate) fn packages(order: &ExportOrder) -> Vec<Package> {
    let mut packages: Vec<Package> = order
        .tracking_numbers
        .iter()
        .enumerate()
        .map(|(index, number)| Package { index, tracking: number.to_string(), items: Vec::new() })
        .collect();
    let add = |items: &mut Vec<(String, u32)>, line: &str, units: u32| match items
        .iter_mut()
        .find(|(item, _)| item == line)
    {
        Some((_, quantity)) => *quantity += units,
        None => items.push((line.to_owned(), units)),
    };
    let grouped = !order.lines.is_empty() && order.lines.iter().all(|line| line.package.is_some());
    if grouped {
        for line in order.lines.iter().filter(|line| line.quantity > 0) {
            let Some(own) = &line.package else { continue };
            let found = packages.iter().position(|package| {
                TrackingNumber::parse(&package.tracking).is_ok_and(|number| number.same_parcel(own))
            });
            let slot = found.unwrap_or_else(|| {
                // A package the shipment's list lacks: kept after the listed ones, never dropped.
                packages.push(Package { index: packages.len(), tracking: own.to_string(), items: Vec::new() });
                packages.len() - 1
            });
            if let Some(package) = packages.get_mut(slot) {
                add(&mut package.items, &line.channel_line_item_id, line.quantity);
            }
        }
    } else {
        if packages.is_empty() {
            // No tracking number: one package without one (the domain requires one; never panic).
            packages.push(Package { index: 0, tracking: String::new(), items: Vec::new() });
        }
        let count = packages.len();
        let mut slot = 0;
        for line in &order.lines {
            for _ in 0..line.quantity {
                let Some(package) = packages.get_mut(slot % count) else { break };
                add(&mut package.items, &line.channel_line_item_id, 1);
                slot += 1;
            }
        }
    }
    packages.retain(|package| !package.items.is_empty());
    packages
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_amazon_rates_within_the_clamp() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().with_timezone(&chrono::Utc);
        let wait = |name, value| retry_after_at(&headers(name, value), now);
        assert_eq!(wait("retry-after", "30"), Some(Duration::from_secs(30)));
        assert_eq!(wait("retry-after", "1e20"), Some(MAX_CHANNEL_WAIT));
        assert_eq!(wait("retry-after", "-4"), Some(Duration::ZERO));
        assert_eq!(wait("retry-after", "NaN"), None);
        assert_eq!(wait("retry-after", "Wed, 21 Oct 2015 07:29:30 GMT"), Some(Duration::from_secs(90)));
        assert_eq!(wait("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_CHANNEL_WAIT));
        assert_eq!(wait("retry-after", "Tue, 20 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("retry-after", "soon"), None);
        assert_eq!(wait("x-amzn-ratelimit-limit", "2.0"), Some(Duration::from_millis(500)));
        assert_eq!(wait("x-amzn-ratelimit-limit", "0"), Some(MAX_CHANNEL_WAIT));
        assert_eq!(wait("x-amzn-ratelimit-limit", "0.0000001"), Some(MAX_CHANNEL_WAIT));
    }

    #[test]
    fn a_path_segment_never_leaves_its_place() {
        assert_eq!(path_segment("113-1234567-1234567"), "113-1234567-1234567");
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        for climbing in ["", ".", ".."] {
            let segment = path_segment(climbing);
            let url = reqwest::Url::parse(&format!("https://api.example/v3/orders/{segment}/shipping")).expect("url");
            assert!(url.path().starts_with("/v3/orders/%25"), "{climbing:?} became {}", url.path());
        }
    }

    #[test]
    fn a_shipment_without_tracking_numbers_packs_into_one_package() {
        let order = ExportOrder {
            shipment_id: 1,
            shipped_at: chrono::Utc::now(),
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id"),
            lines: vec![ExportLine {
                channel_line_item_id: "A".into(),
                quantity: 2,
                sku: "a".into(),
                serial_codes: vec![],
                package: None,
                needs_imei: false,
            }],
            tracking_numbers: vec![],
            carrier: "UPS".into(),
            carrier_code: None,
            tracking_urls: vec![],
            notify_customer: false,
            shipping_method: None,
        };
        assert_eq!(packages(&order), [Package { index: 0, tracking: String::new(), items: vec![("A".to_owned(), 2)] }]);
    }

    #[test]
    fn lines_that_name_their_packages_fill_exactly_those() {
        let number = |text: &str| TrackingNumber::parse(text).expect("a tracking number");
        let line = |id: &str, quantity, package: Option<&str>| ExportLine {
            channel_line_item_id: id.into(),
            quantity,
            sku: id.to_lowercase(),
            serial_codes: vec![],
            package: package.map(number),
            needs_imei: false,
        };
        let mut order = ExportOrder {
            shipment_id: 1,
            shipped_at: chrono::Utc::now(),
            channel_order_id: ChannelOrderId::parse("1").expect("an order id"),
            lines: vec![
                line("A", 2, Some("t2")),
                line("B", 1, Some("T1")),
                line("C", 1, Some("T9")),
                line("A", 1, Some("T9")),
            ],
            tracking_numbers: vec![number("T1"), number("T2"), number("T3")],
            carrier: "UPS".into(),
            carrier_code: None,
            tracking_urls: vec![],
            notify_customer: false,
            shipping_method: None,
        };
        let package = |index, tracking: &str, items: &[(&str, u32)]| Package {
            index,
            tracking: tracking.into(),
            items: items.iter().map(|(id, quantity)| ((*id).to_owned(), *quantity)).collect(),
        };
        assert_eq!(
            packages(&order),
            [package(0, "T1", &[("B", 1)]), package(1, "T2", &[("A", 2)]), package(3, "T9", &[("C", 1), ("A", 1)]),],
            "the shipment's order, matched as parcels; T3 holds nothing; T9, not listed, comes after"
        );
        // One line without a package: the units are spread as before.
        order.lines[1].package = None;
        let spread = packages(&order);
        assert_eq!(spread.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(spread[0].items, [("A".to_owned(), 1), ("C".to_owned(), 1)]);
    }
}
