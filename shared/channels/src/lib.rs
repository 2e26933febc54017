//! Sales channel clients. Each turns a shipment to export into the channel's own calls and its
//! answers into a [`Fulfillment`] or a [`ChannelError`] that says whether a retry can help.

mod amazon;
mod backmarket;
mod ebay;
mod shopify;
pub mod shopify_webhooks;

pub use amazon::{AmazonClient, AmazonCredentials, AmazonTokens, TokenCache, package_reference};
pub use backmarket::{BackMarketClient, missing_imeis};
pub use ebay::{EbayClient, EbayCredentials};
pub use shopify::{OrdersPage, SHOPIFY_API_VERSION, ShopifyClient, UnreadableOrder};

use std::time::Duration;

/// A shipment as a channel receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOrder {
    /// The order's id in the channel.
    pub channel_order_id: String,
    pub lines: Vec<ExportLine>,
    pub tracking_numbers: Vec<String>,
    /// The carrier as the channel names it.
    pub carrier: String,
    /// The channel's code for the carrier, where the store maps one (Amazon: `UPS`; else `Other` + name).
    pub carrier_code: Option<String>,
    /// One URL per tracking number, when the store has a URL template for the carrier.
    pub tracking_urls: Vec<String>,
    pub notify_customer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLine {
    /// The order line's id in the channel.
    pub channel_line_item_id: String,
    pub quantity: u32,
    pub sku: String,
    /// IMEIs or serial numbers of the units shipped.
    pub serial_codes: Vec<String>,
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
}

impl ChannelError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ChannelError::Retryable { message: message.into(), retry_after: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ChannelError::Permanent { message: message.into() }
    }
}

/// The `Retry-After` header, in seconds, if there is one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Turns a transport failure into a retryable error: whether the request reached the channel is
/// unknown, so the retry must look for the fulfillment first (the exporter's claim sees to that).
pub fn transport_error(error: &reqwest::Error) -> ChannelError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    ChannelError::retryable(format!("request to the channel {kind}"))
}

/// A response's body if its status is a success; otherwise the error its status means, with the
/// channel's own message (`describe` turns the body into it), waiting as `Retry-After` says.
pub(crate) async fn success_body(
    response: reqwest::Response,
    describe: impl Fn(&str) -> String,
) -> Result<String, ChannelError> {
    let status = response.status();
    let wait = retry_after(response.headers());
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

/// The shipment's units spread over its packages (tracking numbers), one unit at a time, so that
/// every package with a tracking number carries something.
pub(crate) fn packages(order: &ExportOrder) -> Vec<(String, Vec<(String, u32)>)> {
    let count = order.tracking_numbers.len().max(1);
    let mut packages: Vec<(String, Vec<(String, u32)>)> =
        order.tracking_numbers.iter().map(|number| (number.clone(), Vec::new())).collect();
    let mut slot = 0;
    for line in &order.lines {
        for _ in 0..line.quantity {
            let items = &mut packages[slot % count].1;
            match items.iter_mut().find(|(item, _)| *item == line.channel_line_item_id) {
                Some((_, quantity)) => *quantity += 1,
                None => items.push((line.channel_line_item_id.clone(), 1)),
            }
            slot += 1;
        }
    }
    packages.retain(|(_, items)| !items.is_empty());
    packages
}
