//! A custom channel: any marketplace without an API shipsync knows (UntilGone, a seller's own
//! shop). Orders come in as shipsync's documented JSON, posted and signed to
//! `POST /webhooks/custom/{store_id}` ([`read_custom_order`] reads them). Shipments go out as a
//! signed JSON `POST` to the store's `shipment_url` ([`CustomClient`]), once per shipment:
//!
//! - `Idempotency-Key: shipsync-shipment-<id>`: the same on every attempt, so a receiver that
//!   keeps the keys it has seen takes a retry as the shipment it already has;
//! - `X-Shipsync-Timestamp` and `X-Shipsync-Signature: v1=<hex HMAC-SHA256(signing_secret,
//!   "<timestamp>.<body>")>`, so the receiver knows it is the store's shipsync and not a replay;
//! - a retry first asks `GET <shipment_url>?idempotency_key=<key>` (signed the same way over an
//!   empty body): 200 means the receiver has it (adopted, not sent again), 404 that it does not,
//!   anything else that it offers no such read, and the key alone guards the retry.
//!
//! 2xx is success (the body's `id`, if any, is the channel's id), 409 is "already have it"
//! (adopted), 429 and 5xx are retried (`Retry-After` honoured), any other answer is a refusal
//! listed for a person with the receiver's message.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use shipsync_domain::orders::{IncomingLine, IncomingOrder};
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::info;

use crate::port::unsupported;
use crate::{Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, packages, success_body};

/// The header a custom channel's order webhooks carry their signature in: base64 of
/// HMAC-SHA256 over the raw body with the store's `webhook_secret` (as Shopify signs).
pub const CUSTOM_WEBHOOK_SIGNATURE_HEADER: &str = "x-shipsync-hmac-sha256";

/// The idempotency key of a shipment's export: the same on every attempt.
pub fn idempotency_key(shipment_id: u64) -> String {
    format!("shipsync-shipment-{shipment_id}")
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: what `X-Shipsync-Signature` holds.
pub fn shipment_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest: String = mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("v1={digest}")
}

/// No `Debug`: it holds the store's signing secret.
#[derive(Clone)]
pub struct CustomClient {
    http: reqwest::Client,
    url: String,
    signing_secret: String,
}

impl CustomClient {
    /// `http` should refuse private addresses wherever the URL is the seller's ([`public_only_resolver`]).
    pub fn new(http: reqwest::Client, url: String, signing_secret: String) -> Self {
        Self { http, url, signing_secret }
    }

    fn signed(&self, request: reqwest::RequestBuilder, body: &[u8], key: &str) -> reqwest::RequestBuilder {
        let timestamp = Utc::now().timestamp();
        request
            .header("Idempotency-Key", key)
            .header("X-Shipsync-Timestamp", timestamp.to_string())
            .header("X-Shipsync-Signature", shipment_signature(&self.signing_secret, timestamp, body))
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Whether the receiver already has the shipment: `Some(id)` if it says so, `None` if it does
    /// not or offers no such read.
    async fn held(&self, key: &str) -> Result<Option<String>, ChannelError> {
        let url = reqwest::Url::parse_with_params(&self.url, [("idempotency_key", key)])
            .map_err(|_| ChannelError::permanent("the store's shipment_url is not a URL"))?;
        let response =
            self.signed(self.http.get(url), b"", key).send().await.map_err(|e| crate::transport_error(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            success_body(response, |text| format!("the receiver: {}", receiver_message(text))).await?;
            return Ok(None);
        }
        if !status.is_success() {
            return Ok(None);
        }
        let text = response.text().await.unwrap_or_default();
        Ok(Some(channel_id(&text).unwrap_or_else(|| key.to_owned())))
    }

    async fn post(&self, order: &ExportOrder, check_first: bool) -> Result<Fulfillment, ChannelError> {
        let key = idempotency_key(order.shipment_id);
        let (id, adopted) = self.post_once(&key, &shipment_payload(order), check_first).await?;
        Ok(Fulfillment { channel_ids: vec![id], adopted })
    }

    /// Posts a cancellation to the store's `shipment_url`, signed and keyed like a shipment
    /// (`Idempotency-Key: shipsync-cancellation-<id>`), adopted the same ways on a retry.
    async fn post_cancellation(
        &self,
        cancellation: &crate::CancelOrder,
        check_first: bool,
    ) -> Result<Vec<String>, ChannelError> {
        let (id, _) = self.post_once(&cancellation.reference, &cancellation_payload(cancellation), check_first).await?;
        Ok(vec![id])
    }

    /// Posts `payload` under the idempotency `key`, once: with `check_first`, a receiver that
    /// says it has the key is taken at its word; a 409 says the same. The receiver's id (the
    /// key when it gives none), and whether it was adopted rather than made.
    async fn post_once(&self, key: &str, payload: &Value, check_first: bool) -> Result<(String, bool), ChannelError> {
        if check_first && let Some(id) = self.held(key).await? {
            info!(%key, %id, "the receiver already has it: adopted");
            return Ok((id, true));
        }
        let body = serde_json::to_vec(payload).map_err(|_| ChannelError::permanent("could not be written as JSON"))?;
        let response = self
            .signed(self.http.post(&self.url), &body, key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| crate::transport_error(&e))?;
        if response.status() == reqwest::StatusCode::CONFLICT {
            let text = response.text().await.unwrap_or_default();
            return Ok((channel_id(&text).unwrap_or_else(|| key.to_owned()), true));
        }
        let text = success_body(response, |text| format!("the receiver: {}", receiver_message(text))).await?;
        info!(%key, "posted to the custom channel");
        Ok((channel_id(&text).unwrap_or_else(|| key.to_owned()), false))
    }
}

/// A cancellation as a custom channel receives it (documented in the README).
pub fn cancellation_payload(cancellation: &crate::CancelOrder) -> Value {
    json!({"cancellation": {
        "reference": cancellation.reference,
        "order_id": cancellation.channel_order_id.as_str(),
        "whole_order": cancellation.whole_order,
        "reason": cancellation.reason.name(),
        "note": cancellation.note,
        "notify_customer": cancellation.notify_customer,
        "lines": cancellation.lines.iter().map(|(line, quantity)| json!({"line_id": line, "quantity": quantity})).collect::<Vec<_>>(),
    }})
}

/// The `id` a receiver answered, if it answered one (text or number, at most 255 bytes).
fn channel_id(text: &str) -> Option<String> {
    let body: Value = serde_json::from_str(text).ok()?;
    let id = match &body["id"] {
        Value::String(id) => id.trim().to_owned(),
        Value::Number(id) => id.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= shipsync_domain::orders::MAX_ID_BYTES).then_some(id)
}

/// The receiver's own words for a refusal: `error`, `message` or `errors[0]`, else the body.
fn receiver_message(text: &str) -> String {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    [&body["error"], &body["message"], &body["errors"][0]]
        .into_iter()
        .find_map(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect())
}

/// The shipment as a custom channel receives it (documented in the README).
pub fn shipment_payload(order: &ExportOrder) -> Value {
    let packages: Vec<Value> = packages(order)
        .into_iter()
        .map(|package| {
            let url = order.tracking_urls.get(package.index);
            json!({
                "tracking_number": package.tracking,
                "tracking_url": url,
                "lines": package.items.iter().map(|(line, quantity)| json!({"line_id": line, "quantity": quantity})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"shipment": {
        "id": order.shipment_id,
        "idempotency_key": idempotency_key(order.shipment_id),
        "order_id": order.channel_order_id.as_str(),
        "shipped_at": order.shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "carrier": order.carrier,
        "shipping_method": order.shipping_method,
        "notify_customer": order.notify_customer,
        "tracking_numbers": order.tracking_numbers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "lines": order.lines.iter().map(|line| json!({
            "line_id": line.channel_line_item_id,
            "sku": line.sku,
            "quantity": line.quantity,
            "serial_codes": line.serial_codes,
        })).collect::<Vec<_>>(),
        "packages": packages,
    }})
}

impl Channel for CustomClient {
    fn cancel<'a>(&'a self, cancellation: &'a crate::CancelOrder, check_first: bool) -> ChannelFuture<'a, Vec<String>> {
        Box::pin(self.post_cancellation(cancellation, check_first))
    }

    fn export<'a>(&'a self, order: &'a ExportOrder, check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.post(order, check_first))
    }

    /// Orders come in by webhook: there is nothing to poll.
    fn orders_since<'a>(&'a self, _since: DateTime<Utc>, _page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(std::future::ready(Ok(OrdersPage { orders: Vec::new(), unreadable: Vec::new(), next: None })))
    }

    /// A custom channel reports no shipments of its own.
    fn fulfillments<'a>(
        &'a self,
        _channel_order_id: &'a ChannelOrderId,
    ) -> ChannelFuture<'a, Vec<shipsync_domain::orders::IncomingFulfillment>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn order<'a>(&'a self, _channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        unsupported("reading one order of a custom channel (its orders are posted to shipsync)")
    }
}

/// An order a custom channel posts (`{"order": {...}}`, documented in the README), or the first
/// problem found, naming its field.
pub fn read_custom_order(payload: &Value) -> Result<IncomingOrder, String> {
    let order = payload.get("order").filter(|order| order.is_object()).ok_or("order is required (an object)")?;
    let text = |field: &str| -> Result<String, String> {
        match &order[field] {
            Value::String(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Null => Err(format!("order.{field} is required")),
            _ => Err(format!("order.{field} must be text")),
        }
    };
    let id = text("id")?;
    let number = match &order["number"] {
        Value::Null => id.clone(),
        _ => text("number")?,
    };
    let updated_at = order["updated_at"]
        .as_str()
        .ok_or("order.updated_at is required (RFC 3339, such as 2026-12-07T10:00:00Z)")
        .and_then(|time| {
            DateTime::parse_from_rfc3339(time.trim())
                .map(|time| time.to_utc())
                .map_err(|_| "order.updated_at is not an RFC 3339 time (such as 2026-12-07T10:00:00Z)")
        })?;
    let cancelled = match &order["cancelled"] {
        Value::Null => false,
        Value::Bool(cancelled) => *cancelled,
        _ => return Err("order.cancelled must be true or false".into()),
    };
    let lines = order["lines"]
        .as_array()
        .filter(|lines| !lines.is_empty())
        .ok_or("order.lines is required (at least one line)")?;
    let mut read = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let field = |name: &str| format!("order.lines[{index}].{name}");
        let line_id = match &line["id"] {
            Value::String(id) if !id.trim().is_empty() => id.trim().to_owned(),
            Value::Number(id) => id.to_string(),
            _ => return Err(format!("{} is required (text)", field("id"))),
        };
        if read.iter().any(|seen: &IncomingLine| seen.channel_line_item_id == line_id) {
            return Err(format!("{} {line_id:?} is given twice", field("id")));
        }
        let quantity = line["quantity"]
            .as_u64()
            .and_then(|quantity| u32::try_from(quantity).ok())
            .ok_or_else(|| format!("{} must be a whole number, 0 or more", field("quantity")))?;
        let sku = match &line["sku"] {
            Value::String(sku) => Sku::received(sku),
            Value::Null => None,
            _ => return Err(format!("{} must be text", field("sku"))),
        };
        let unit_price = match &line["unit_price"] {
            Value::Null => None,
            Value::String(price) => {
                Some(price.trim().parse().map_err(|_| format!("{} is not a price", field("unit_price")))?)
            }
            Value::Number(price) => {
                Some(price.to_string().parse().map_err(|_| format!("{} is not a price", field("unit_price")))?)
            }
            _ => return Err(format!("{} must be a price such as \"19.99\"", field("unit_price"))),
        };
        read.push(IncomingLine {
            channel_line_item_id: line_id,
            sku,
            name: line["name"].as_str().unwrap_or_default().trim().to_owned(),
            quantity,
            unit_price,
            awaiting_acceptance: false,
            needs_imei: false,
        });
    }
    let cancel_requested = match &order["cancel_requested"] {
        Value::Null | Value::Bool(false) => None,
        Value::String(reason) if !reason.trim().is_empty() => Some(reason.trim().to_owned()),
        Value::Bool(true) => Some("the customer asked to cancel".to_owned()),
        _ => return Err("order.cancel_requested must be a reason (text), or left out".into()),
    };
    Ok(IncomingOrder {
        channel_order_id: ChannelOrderId::received(id),
        number,
        customer_name: order["customer_name"].as_str().unwrap_or_default().trim().to_owned(),
        updated_at,
        cancelled,
        lines: read,
        cancel_requested,
        fulfillments: Vec::new(),
    })
}

/// Whether an address is one a seller's URL may reach: not loopback, private, link-local (the
/// cloud's metadata service), shared, documentation, multicast or unspecified.
pub fn is_public_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A DNS resolver that answers only public addresses: a seller's host name that resolves to
/// the deployment's own network (the Lambda runtime on loopback, a VPC address, the metadata
/// service) fails to connect instead of reaching it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|address| is_public_address(address.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

/// How long a receiver may take to answer.
pub const RECEIVER_TIMEOUT: Duration = Duration::from_secs(20);

/// The client shipments to sellers' own receivers go through: shipsync's TLS, no redirects
/// (a redirect could lead anywhere), and [`PublicOnlyResolver`]. IP literals never reach it: a
/// store's `shipment_url` must name a host.
pub fn public_only_http_client() -> Result<reqwest::Client, crate::HttpClientError> {
    Ok(crate::http_client_builder()?
        .timeout(RECEIVER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(PublicOnlyResolver))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public_address(private.parse().expect("an address")), "{private}");
        }
        for public in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert!(is_public_address(public.parse().expect("an address")), "{public}");
        }
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let signature = shipment_signature("secret", 1_765_000_000, b"{}");
        assert!(signature.starts_with("v1=") && signature.len() == 67, "{signature}");
        assert_ne!(signature, shipment_signature("secret", 1_765_000_001, b"{}"));
        assert_ne!(signature, shipment_signature("other", 1_765_000_000, b"{}"));
        assert_eq!(idempotency_key(1011), "shipsync-shipment-1011");
    }

    #[test]
    fn an_order_names_the_field_it_lacks() {
        let good = json!({"order": {"id": "UG-1001", "updated_at": "2026-12-07T10:00:00Z", "customer_name": "Ann",
            "lines": [{"id": "1", "sku": "SKU-1", "name": "Lamp", "quantity": 2, "unit_price": "19.99"}]}});
        let order = read_custom_order(&good).expect("readable");
        assert_eq!((order.number.as_str(), order.lines[0].quantity), ("UG-1001", 2));
        let broken = |path: &str, value: Value| {
            let mut payload = good.clone();
            let mut at = &mut payload["order"];
            let parts: Vec<&str> = path.split('.').collect();
            for part in &parts[..parts.len() - 1] {
                at = match part.parse::<usize>() {
                    Ok(index) => &mut at[index],
                    Err(_) => &mut at[*part],
                };
            }
            at[parts[parts.len() - 1]] = value;
            read_custom_order(&payload).expect_err("refused")
        };
        assert_eq!(broken("id", Value::Null), "order.id is required");
        assert!(broken("updated_at", json!("yesterday")).starts_with("order.updated_at is not"));
        assert_eq!(broken("lines.0.quantity", json!(-1)), "order.lines[0].quantity must be a whole number, 0 or more");
        assert_eq!(broken("lines.0.unit_price", json!("cheap")), "order.lines[0].unit_price is not a price");
        assert_eq!(broken("cancelled", json!("yes")), "order.cancelled must be true or false");
        assert_eq!(read_custom_order(&json!([])).expect_err("no order"), "order is required (an object)");
    }
}
