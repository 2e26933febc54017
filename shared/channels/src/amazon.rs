//! Amazon SP-API. Exports: `confirmShipment`, one call per package, each with a
//! `packageReferenceId` derived from the shipment and the package, so that a retry edits the same
//! package instead of adding one. Reads: Orders API v2026-01-01 (`searchOrders`, `getOrder`; the
//! v0 reads are deprecated), whose orders carry their items, cancellation requests and the
//! packages already confirmed, so one call reads all of it. Login with Amazon tokens are cached
//! until they are about to expire.

mod notifications;
pub use notifications::OrderChangeSubscription;

use shipsync_domain::vocabulary::ChannelOrderId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::Sku;
use tracing::info;

use crate::port::{PageReader, first_name, fulfillment_lines, required_text, required_time};
use crate::settings::AmazonCredentials;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, first_error_message, json_or_missing,
    packages, path_segment, success_body, transport_error,
};

use crate::endpoints::AMAZON_NA_ENDPOINT;
pub const LWA_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";

/// The Orders API version shipsync reads orders with.
pub const AMAZON_ORDERS_API: &str = "/orders/2026-01-01/orders";

/// What an order read carries besides its items (`includedData`, comma-separated as the model's
/// arrays are): the names (RECIPIENT, BUYER), buyer cancel requests (CANCELLATION), status and
/// units shipped (FULFILLMENT), and the packages confirmed so far (PACKAGES, merchant orders).
const INCLUDED_DATA: &str = "BUYER,RECIPIENT,CANCELLATION,FULFILLMENT,PACKAGES";

/// The fulfillment statuses of orders a seller ships (or whose cancellation shipsync applies).
const SHIPPABLE_STATUSES: &str = "UNSHIPPED,PARTIALLY_SHIPPED,SHIPPED,CANCELLED";

/// Whether Amazon says the order may be shipped (or was cancelled): not pending payment,
/// availability, or unfulfillable.
fn shippable(node: &Value) -> bool {
    node["fulfillment"]["fulfillmentStatus"]
        .as_str()
        .is_none_or(|status| SHIPPABLE_STATUSES.split(',').any(|ok| ok == status))
}

/// A token is renewed this long before Amazon says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// No token is kept longer than a day, whatever the channel says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// OAuth access tokens by token endpoint, client and refresh token (so a sandbox switch or another
/// channel never reuses a token), shared by every client of one process, kept until a minute
/// before they expire.
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<String, (String, Instant)>>>);

/// Tokens are secrets: a cache shows only how many it holds.
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.lock().map_or(0, |cache| cache.len());
        formatter.debug_struct("TokenCache").field("tokens", &held).finish()
    }
}

impl TokenCache {
    /// The key of one grant: the token endpoint, the client and its refresh token.
    pub(crate) fn key(token_url: &str, client_id: &str, refresh_token: &str) -> String {
        format!("{token_url}\u{0}{client_id}\u{0}{refresh_token}")
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let cache = self.0.lock().ok()?;
        cache.get(key).filter(|(_, until)| Instant::now() < *until).map(|(token, _)| token.clone())
    }

    /// Keeps a token for what the channel says it lasts, at most [`MAX_TOKEN_LIFETIME`]: a huge
    /// `expires_in` must not overflow the clock (`Instant + Duration` panics).
    pub(crate) fn put(&self, key: String, token: String, expires_in: Duration) {
        let lasts = expires_in.min(MAX_TOKEN_LIFETIME).saturating_sub(TOKEN_MARGIN);
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(key, (token, Instant::now() + lasts));
        }
    }
}

/// The tokens of Login with Amazon.
pub type AmazonTokens = TokenCache;

#[derive(Debug, Clone)]
pub struct AmazonClient {
    http: reqwest::Client,
    endpoint: String,
    token_url: String,
    marketplace_id: String,
    credentials: AmazonCredentials,
    tokens: AmazonTokens,
}

impl AmazonClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<&str>,
        token_url: Option<&str>,
        marketplace_id: String,
        credentials: AmazonCredentials,
        tokens: AmazonTokens,
    ) -> Self {
        Self {
            http,
            endpoint: endpoint.unwrap_or(AMAZON_NA_ENDPOINT).trim_end_matches('/').to_owned(),
            token_url: token_url.unwrap_or(LWA_TOKEN_URL).to_owned(),
            marketplace_id,
            credentials,
            tokens,
        }
    }

    /// Confirms the shipment, one package per tracking number, shipped when the shipment was
    /// created. Returns the package reference ids.
    async fn confirm_shipment(&self, order: &ExportOrder) -> Result<Fulfillment, ChannelError> {
        let ship_date = order.shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let token = self.access_token().await?;
        let packages = packages(order);
        let mut references = Vec::with_capacity(packages.len());
        for package in packages {
            let reference = package_reference(order.shipment_id, package.index);
            let mut detail = json!({
                "packageReferenceId": reference,
                "carrierCode": order.carrier_code.clone().unwrap_or_else(|| "Other".to_owned()),
                "trackingNumber": package.tracking,
                "shipDate": ship_date,
                "orderItems": package.items.iter().map(|(item, quantity)| json!({"orderItemId": item, "quantity": quantity})).collect::<Vec<_>>(),
            });
            if order.carrier_code.is_none() {
                detail["carrierName"] = json!(order.carrier);
            }
            if let Some(method) = &order.shipping_method {
                detail["shippingMethod"] = json!(method);
            }
            let body = json!({ "marketplaceId": self.marketplace_id, "packageDetail": detail });
            let url = format!("{}/orders/v0/orders/{}/shipmentConfirmation", self.endpoint, order.channel_order_id);
            let response = self
                .http
                .post(&url)
                .header("x-amz-access-token", &token)
                .json(&body)
                .send()
                .await
                .map_err(|error| transport_error(&error))?;
            success_body(response, |text| format!("Amazon: {}", first_error_message(text))).await?;
            info!(order = %order.channel_order_id, package = %reference, "shipment confirmed on Amazon");
            references.push(reference);
        }
        // Re-sending a package with the same reference edits it: a retry never duplicates.
        Ok(Fulfillment { channel_ids: references, adopted: false })
    }

    /// A page of the merchant-fulfilled orders of the store's marketplace updated at or after
    /// `since` (`searchOrders`, 100 a page); `page` is the previous page's `nextToken`.
    async fn orders_updated_since(&self, since: DateTime<Utc>, page: Option<&str>) -> Result<OrdersPage, ChannelError> {
        let after = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut query: Vec<(&str, &str)> = vec![
            ("lastUpdatedAfter", after.as_str()),
            ("marketplaceIds", self.marketplace_id.as_str()),
            ("fulfilledBy", "MERCHANT"),
            // Not `PENDING`/`PENDING_AVAILABILITY` (unpaid or pre-order: not to be shipped yet) nor
            // `UNFULFILLABLE`: such an order is read once Amazon moves it on, which updates it.
            ("fulfillmentStatuses", SHIPPABLE_STATUSES),
            ("maxResultsPerPage", "100"),
            ("includedData", INCLUDED_DATA),
        ];
        if let Some(token) = page {
            // The filters stay as they were; the token says where the next page starts.
            query.push(("paginationToken", token));
        }
        let body = self
            .read(&format!("{}{AMAZON_ORDERS_API}", self.endpoint), &query)
            .await?
            .ok_or_else(|| ChannelError::permanent("Amazon answered searchOrders with 404"))?;
        let listed = body["orders"]
            .as_array()
            .ok_or_else(|| ChannelError::retryable("Amazon answered searchOrders without orders"))?;
        let mut page = PageReader::default();
        for node in listed {
            page.add("Amazon", "orderId", node.clone(), amazon_order(node));
        }
        let next = body["pagination"]["nextToken"].as_str().filter(|token| !token.is_empty()).map(str::to_owned);
        Ok(page.page(next))
    }

    /// One order (`getOrder`) as the channel holds it: `None` when Amazon does not know it.
    async fn one_order(&self, channel_order_id: &ChannelOrderId) -> Result<Option<Value>, ChannelError> {
        let url = format!("{}{AMAZON_ORDERS_API}/{}", self.endpoint, path_segment(channel_order_id.as_str()));
        let Some(body) = self.read(&url, &[("includedData", INCLUDED_DATA)]).await? else { return Ok(None) };
        if !body["order"].is_object() {
            return Err(ChannelError::retryable(format!(
                "Amazon answered getOrder {channel_order_id} without an order"
            )));
        }
        Ok(Some(body["order"].clone()))
    }

    /// A read: the JSON body, `None` on 404, else the error the status means.
    async fn read(&self, url: &str, query: &[(&str, &str)]) -> Result<Option<Value>, ChannelError> {
        let token = self.access_token().await?;
        let url = reqwest::Url::parse_with_params(url, query)
            .map_err(|_| ChannelError::permanent(format!("{url} is not a URL Amazon can be called at")))?;
        let response = self
            .http
            .get(url)
            .header("x-amz-access-token", &token)
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        json_or_missing(response, "Amazon").await
    }

    async fn access_token(&self) -> Result<String, ChannelError> {
        let key = TokenCache::key(&self.token_url, &self.credentials.client_id, &self.credentials.refresh_token);
        if let Some(token) = self.tokens.get(&key) {
            return Ok(token);
        }
        let (token, lasts) = self
            .login_with_amazon(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.credentials.refresh_token.as_str()),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret.as_str()),
            ])
            .await?;
        self.tokens.put(key, token.clone(), lasts);
        Ok(token)
    }

    /// A Login with Amazon token for `form`'s grant, and how long it lasts.
    pub(super) async fn login_with_amazon(&self, form: &[(&str, &str)]) -> Result<(String, Duration), ChannelError> {
        let response =
            self.http.post(&self.token_url).form(form).send().await.map_err(|error| transport_error(&error))?;
        let text = success_body(response, |text| format!("Login with Amazon: {text}")).await?;
        let body: Value =
            serde_json::from_str(&text).map_err(|_| ChannelError::retryable("Login with Amazon answered no JSON"))?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| ChannelError::permanent("Login with Amazon gave no access_token"))?;
        Ok((token.to_owned(), Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600))))
    }
}

impl Channel for AmazonClient {
    /// Every attempt sends the same package references, so a retry edits what an earlier one
    /// sent: nothing to look up first.
    fn export<'a>(&'a self, order: &'a ExportOrder, _check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.confirm_shipment(order))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_updated_since(since, page))
    }

    /// The packages `getOrder` lists (cancelled ones marked so).
    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(async move {
            let node = self
                .one_order(channel_order_id)
                .await?
                .ok_or_else(|| ChannelError::permanent(format!("Amazon has no order {channel_order_id}")))?;
            Ok(amazon_packages(&node))
        })
    }

    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        Box::pin(async move {
            let Some(node) = self.one_order(channel_order_id).await? else { return Ok(None) };
            if !shippable(&node) {
                // A pending order is not to be shipped yet: Amazon notifies again when it moves on.
                return Ok(None);
            }
            amazon_order(&node).map(Some).map_err(|reason| {
                ChannelError::permanent(format!("Amazon's order {channel_order_id} cannot be read: {reason}"))
            })
        })
    }
}

/// An Orders API v2026-01-01 `Order` as shipsync reads it; or which field is wrong.
fn amazon_order(node: &Value) -> Result<IncomingOrder, String> {
    let text = required_text;
    let order_id = text(&node["orderId"], "orderId")?;
    let updated_at = required_time(&node["lastUpdatedTime"], "lastUpdatedTime")?;
    let items = node["orderItems"].as_array().ok_or("orderItems is required")?;
    let mut lines = Vec::with_capacity(items.len());
    let mut cancel_requested = None;
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("orderItems[{index}].{name}");
        let ordered = item["quantityOrdered"]
            .as_u64()
            .and_then(|quantity| u32::try_from(quantity).ok())
            .ok_or_else(|| format!("{} must be a whole number, 0 or more", field("quantityOrdered")))?;
        let cancellation = &item["cancellation"];
        // What is still ordered: an executed cancellation leaves only what had shipped. Amazon
        // cancels whole items (the acknowledgement feed and the buyer both cancel items, not
        // units), so units are not inferred from the shipped and to-ship counts, which a pending
        // order may leave at 0.
        let quantity = if cancellation["cancellationExecution"].is_object() {
            item["fulfillment"]["quantityFulfilled"]
                .as_u64()
                .and_then(|quantity| u32::try_from(quantity).ok())
                .unwrap_or(0)
                .min(ordered)
        } else {
            ordered
        };
        let request = &cancellation["cancellationRequest"];
        if cancel_requested.is_none() && request.is_object() && !cancellation["cancellationExecution"].is_object() {
            let reason = request["cancelReason"].as_str().map(str::trim).filter(|reason| !reason.is_empty());
            let requester = request["requester"].as_str().unwrap_or("BUYER");
            cancel_requested = Some(match reason {
                Some(reason) => format!("{} asked to cancel: {reason}", requester.to_lowercase()),
                None => format!("{} asked to cancel", requester.to_lowercase()),
            });
        }
        let product = &item["product"];
        lines.push(IncomingLine {
            channel_line_item_id: text(&item["orderItemId"], &field("orderItemId"))?,
            sku: product["sellerSku"].as_str().and_then(Sku::received),
            name: product["title"].as_str().unwrap_or_default().to_owned(),
            quantity,
            unit_price: decimal(&product["price"]["unitPrice"]["amount"]),
            awaiting_acceptance: false,
            needs_imei: false,
        });
    }
    let cancelled = node["fulfillment"]["fulfillmentStatus"].as_str() == Some("CANCELLED");
    let customer_name =
        first_name([node["recipient"]["deliveryAddress"]["name"].as_str(), node["buyer"]["buyerName"].as_str()]);
    Ok(IncomingOrder {
        channel_order_id: ChannelOrderId::received(order_id.clone()),
        number: order_id,
        customer_name,
        updated_at,
        cancelled,
        lines,
        cancel_requested: if cancelled { None } else { cancel_requested },
        fulfillments: amazon_packages(node),
    })
}

/// A decimal Amazon sends as a string (or, leniently, a number).
fn decimal(value: &Value) -> Option<rust_decimal::Decimal> {
    match value {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.to_string().parse().ok(),
        _ => None,
    }
}

/// The packages of an order (`packages[]`, merchant orders): one fulfillment each, a cancelled
/// package marked so; a package without a reference or with an unreadable item is left out.
fn amazon_packages(node: &Value) -> Vec<IncomingFulfillment> {
    let Some(order_id) = node["orderId"].as_str() else { return Vec::new() };
    node["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| {
            let lines = fulfillment_lines(&package["packageItems"], "orderItemId")?;
            Some(IncomingFulfillment {
                channel_fulfillment_id: package["packageReferenceId"].as_str()?.to_owned(),
                channel_order_id: ChannelOrderId::received(order_id),
                lines,
                // A number shipsync could not store names no parcel: it is left out, as a missing one is.
                tracking_numbers: package["trackingNumber"]
                    .as_str()
                    .and_then(|number| TrackingNumber::parse(number).ok())
                    .into_iter()
                    .collect(),
                tracking_company: package["carrier"].as_str().map(str::to_owned),
                cancelled: package["packageStatus"]["status"].as_str() == Some("CANCELLED"),
            })
        })
        .collect()
}

/// What an Amazon `ORDER_CHANGE` notification names: a trigger to read the order again
/// (`Channel::order`), not the order itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonOrderChange {
    /// `NotificationMetadata.NotificationId`: the same notification delivered twice has the same id.
    pub notification_id: String,
    /// `SellerId`: which seller account (store) the order is in.
    pub seller_id: String,
    /// `Summary.MarketplaceId`.
    pub marketplace_id: String,
    pub amazon_order_id: ChannelOrderId,
}

/// Reads an `ORDER_CHANGE` notification as Amazon delivers it to SQS (the notification itself as
/// the message body) or through EventBridge (the notification in `detail`). Err: what is missing.
pub fn parse_amazon_order_change(body: &str) -> Result<AmazonOrderChange, String> {
    let message: Value = serde_json::from_str(body).map_err(|_| "the notification is not JSON".to_owned())?;
    let notification = if message["detail"].is_object() { &message["detail"] } else { &message };
    let kind = notification["NotificationType"].as_str().or_else(|| message["detail-type"].as_str());
    if kind.is_some_and(|kind| kind != "ORDER_CHANGE") {
        return Err(format!("NotificationType is {}, not ORDER_CHANGE", kind.unwrap_or_default()));
    }
    let change = &notification["Payload"]["OrderChangeNotification"];
    let text = |value: &Value, field: &str| {
        value
            .as_str()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("{field} is required"))
    };
    Ok(AmazonOrderChange {
        notification_id: text(
            &notification["NotificationMetadata"]["NotificationId"],
            "NotificationMetadata.NotificationId",
        )?,
        seller_id: text(&change["SellerId"], "Payload.OrderChangeNotification.SellerId")?,
        marketplace_id: text(
            &change["Summary"]["MarketplaceId"],
            "Payload.OrderChangeNotification.Summary.MarketplaceId",
        )?,
        amazon_order_id: ChannelOrderId::parse(&text(
            &change["AmazonOrderId"],
            "Payload.OrderChangeNotification.AmazonOrderId",
        )?)
        .map_err(|problem| format!("Payload.OrderChangeNotification.AmazonOrderId {problem}"))?,
    })
}

/// A package's reference: positive and numeric, as Amazon requires, and the same on every retry.
pub fn package_reference(shipment_id: u64, package: usize) -> String {
    format!("{shipment_id}{package:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportLine, packages};

    #[test]
    fn units_spread_over_packages_and_references_are_stable() {
        let order = ExportOrder {
            shipment_id: 1012,
            shipped_at: chrono::Utc::now(),
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("111-1").expect("an order id"),
            lines: vec![
                ExportLine {
                    channel_line_item_id: "A".into(),
                    quantity: 2,
                    sku: "a".into(),
                    serial_codes: vec![],
                    package: None,
                    needs_imei: false,
                },
                ExportLine {
                    channel_line_item_id: "B".into(),
                    quantity: 1,
                    sku: "b".into(),
                    serial_codes: vec![],
                    package: None,
                    needs_imei: false,
                },
            ],
            tracking_numbers: ["T1", "T2"]
                .map(|number| shipsync_domain::tracking::TrackingNumber::parse(number).expect("a tracking number"))
                .to_vec(),
            carrier: "UPS".into(),
            carrier_code: Some("UPS".into()),
            tracking_urls: vec![],
            notify_customer: true,
            shipping_method: None,
        };
        let packed = packages(&order);
        assert_eq!((packed[0].index, packed[0].tracking.as_str()), (0, "T1"));
        assert_eq!(packed[0].items, [("A".into(), 1), ("B".into(), 1)]);
        assert_eq!((packed[1].index, packed[1].tracking.as_str()), (1, "T2"));
        assert_eq!(packed[1].items, [("A".into(), 1)]);
        assert_eq!(package_reference(1012, 1), "1012001");
    }
}
