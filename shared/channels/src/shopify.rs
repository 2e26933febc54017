//! Shopify, through the GraphQL Admin API: read the order's fulfillment orders, then one
//! `fulfillmentCreate` per location. `fulfillmentCreate` has no idempotency key, so every export
//! that may repeat an earlier attempt first reads the order's fulfillments and counts what
//! fulfillments carrying our tracking numbers already hold.

use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipsync_domain::orders::IncomingFulfillment;
use tracing::{info, warn};

use crate::port::PageReader;
use crate::{
    Channel, ChannelError, ChannelFuture, ExportOrder, Fulfillment, OrdersPage, success_body, transport_error,
};

/// The Admin API version shipsync is written against.
pub const SHOPIFY_API_VERSION: &str = "2025-10";

const ORDER_QUERY: &str = "query ShipsyncOrder($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 100) {
      id
      status
      trackingInfo(first: 20) { number }
      fulfillmentLineItems(first: 100) { nodes { quantity lineItem { id } } }
    }
    fulfillmentOrders(first: 50) {
      nodes {
        id
        status
        assignedLocation { location { id } }
        lineItems(first: 100) { nodes { id remainingQuantity lineItem { id } } }
      }
    }
  }
}";

/// Whether an order is cancelled already, and the refunds it holds (a retried cancellation
/// finds its own by the reference in the note).
const CANCEL_STATE_QUERY: &str = "query ShipsyncCancelState($id: ID!) {
  order(id: $id) {
    id
    cancelledAt
    refunds(first: 100) { id note }
  }
}";

/// Cancels a whole order: refunded to the original payment, restocked.
const ORDER_CANCEL: &str = "mutation ShipsyncCancelOrder($orderId: ID!, $reason: OrderCancelReason!, $notifyCustomer: Boolean, $staffNote: String) {
  orderCancel(orderId: $orderId, reason: $reason, refundMethod: { originalPaymentMethodsRefund: true }, restock: true, notifyCustomer: $notifyCustomer, staffNote: $staffNote) {
    job { id }
    orderCancelUserErrors { field message code }
  }
}";

/// Cancels units of lines: a refund whose line items are restocked as `CANCEL`, made once per
/// idempotency key (Shopify makes the key mandatory for refunds).
const REFUND_CANCEL: &str = "mutation ShipsyncCancelUnits($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund { id }
    userErrors { field message }
  }
}";

/// An order's fulfillment line items (what a return names) and its returns (what they take
/// back already, and a retry's own, found by the reference in its note).
const RETURN_STATE_QUERY: &str = "query ShipsyncReturnState($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 100) {
      id
      status
      fulfillmentLineItems(first: 100) { nodes { id quantity lineItem { id } } }
    }
    returns(first: 50) {
      nodes {
        id
        status
        returnLineItems(first: 100) {
          nodes { ... on ReturnLineItem { quantity returnReasonNote fulfillmentLineItem { id } } }
        }
      }
    }
  }
}";

const RETURN_CREATE: &str = "mutation ShipsyncReturnCreate($returnInput: ReturnInput!) {
  returnCreate(returnInput: $returnInput) {
    return { id status }
    userErrors { field message }
  }
}";

/// An order's fulfillments, as the channel's own record of what shipped.
const FULFILLMENTS_QUERY: &str = "query ShipsyncFulfillments($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 100) {
      id
      status
      trackingInfo(first: 20) { number company }
      fulfillmentLineItems(first: 100) { nodes { quantity lineItem { id } } }
    }
  }
}";

const FULFILLMENT_CREATE: &str = "mutation ShipsyncFulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}";

const ORDERS_QUERY: &str = "query ShipsyncOrders($query: String!, $after: String) {
  orders(first: 50, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      updatedAt
      cancelledAt
      shippingAddress { name }
      customer { firstName lastName }
      lineItems(first: 100) {
        pageInfo { hasNextPage endCursor }
        nodes { id sku name quantity currentQuantity originalUnitPriceSet { shopMoney { amount } } }
      }
    }
  }
}";

/// The rest of an order's lines, when it has more than the orders query reads.
const ORDER_LINES_QUERY: &str = "query ShipsyncOrderLines($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id sku name quantity currentQuantity originalUnitPriceSet { shopMoney { amount } } }
    }
  }
}";

/// An order holds at most this many pages of lines (Shopify allows far fewer lines): a channel
/// that keeps answering "more" cannot hold the poller forever.
const MAX_LINE_PAGES: usize = 100;

/// No `Debug`: it holds the store's token.
#[derive(Clone)]
pub struct ShopifyClient {
    http: reqwest::Client,
    endpoint: String,
    access_token: String,
}

impl ShopifyClient {
    /// A client for a shop: `base_url` replaces `https://{shop_domain}` (a local fake in tests).
    /// A store's settings reach a client only through [`crate::ChannelEndpoints`], which checks
    /// the shop's host.
    pub fn new(http: reqwest::Client, shop_domain: &str, base_url: Option<&str>, access_token: String) -> Self {
        match base_url {
            Some(url) => Self::at(http, url, access_token),
            None => Self::at(http, &format!("https://{}", shop_domain.trim().trim_end_matches('/')), access_token),
        }
    }

    /// A client for the shop at `base` (`https://my-shop.myshopify.com`).
    pub fn at(http: reqwest::Client, base: &str, access_token: String) -> Self {
        let base = base.trim_end_matches('/');
        Self { http, endpoint: format!("{base}/admin/api/{SHOPIFY_API_VERSION}/graphql.json"), access_token }
    }

    /// Creates the fulfillments for a shipment. With `check_existing`, fulfillments already
    /// carrying its tracking numbers count as done, so a retry never fulfils twice.
    async fn create_fulfillments(
        &self,
        order: &ExportOrder,
        check_existing: bool,
    ) -> Result<Fulfillment, ChannelError> {
        let order_id = gid("Order", order.channel_order_id.as_str());
        let data = self.graphql(ORDER_QUERY, json!({ "id": order_id })).await?;
        let found = &data["order"];
        if found.is_null() {
            return Err(ChannelError::permanent(format!("Shopify has no order {order_id}")));
        }

        let mut needed: BTreeMap<String, u32> = BTreeMap::new();
        for line in &order.lines {
            *needed.entry(gid("LineItem", &line.channel_line_item_id)).or_default() += line.quantity;
        }
        let mut adopted_ids = Vec::new();
        if check_existing {
            for fulfillment in found["fulfillments"].as_array().into_iter().flatten().filter(|f| holds_items(f)) {
                let ours = fulfillment["trackingInfo"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|info| info["number"].as_str())
                    .any(|number| order.tracking_numbers.iter().any(|own| own == number));
                if !ours {
                    continue;
                }
                for item in fulfillment["fulfillmentLineItems"]["nodes"].as_array().into_iter().flatten() {
                    if let (Some(line), Some(quantity)) = (item["lineItem"]["id"].as_str(), item["quantity"].as_u64())
                        && let Some(left) = needed.get_mut(line)
                    {
                        *left = left.saturating_sub(u32::try_from(quantity).unwrap_or(u32::MAX));
                    }
                }
                if let Some(id) = fulfillment["id"].as_str() {
                    adopted_ids.push(id.to_owned());
                }
            }
            needed.retain(|_, left| *left > 0);
            if !adopted_ids.is_empty() {
                info!(order = %order_id, fulfillments = ?adopted_ids, "found fulfillments carrying our tracking numbers");
            }
        }

        let by_location = allocate(found, &needed)?;
        let mut created_ids = Vec::new();
        for (location, fulfillment_orders) in by_location {
            let input = fulfillment_input(order, &fulfillment_orders);
            let data = self.graphql(FULFILLMENT_CREATE, json!({ "fulfillment": input })).await?;
            let payload = &data["fulfillmentCreate"];
            let errors: Vec<String> = payload["userErrors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|error| error["message"].as_str().map(str::to_owned))
                .collect();
            if !errors.is_empty() {
                return Err(ChannelError::permanent(format!("Shopify refused the fulfillment: {}", errors.join("; "))));
            }
            let id = payload["fulfillment"]["id"]
                .as_str()
                .ok_or_else(|| ChannelError::retryable("Shopify answered fulfillmentCreate without a fulfillment"))?;
            info!(order = %order_id, location = %location, fulfillment = %id, "fulfillment created");
            created_ids.push(id.to_owned());
        }
        let adopted = !adopted_ids.is_empty();
        Ok(Fulfillment { channel_ids: adopted_ids.into_iter().chain(created_ids).collect(), adopted })
    }

    /// A page of the orders updated at or after `since`, oldest change first.
    async fn orders_updated_since(
        &self,
        since: DateTime<Utc>,
        after: Option<&str>,
    ) -> Result<OrdersPage, ChannelError> {
        let filter = format!("updated_at:>='{}'", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let data = self.graphql(ORDERS_QUERY, json!({ "query": filter, "after": after })).await?;
        let orders = &data["orders"];
        let mut read = PageReader::default();
        for node in orders["nodes"].as_array().into_iter().flatten() {
            let mut node = node.clone();
            // Every line, however many pages: a line not read would look removed.
            self.read_all_lines(&mut node).await?;
            let order = order_from_graphql(&node);
            read.add("Shopify", "id", node, order);
        }
        let next = (orders["pageInfo"]["hasNextPage"] == true)
            .then(|| orders["pageInfo"]["endCursor"].as_str().map(str::to_owned))
            .flatten();
        Ok(read.page(next))
    }

    /// The fulfillments Shopify holds for an order (cancelled ones too, marked so).
    async fn order_fulfillments(
        &self,
        channel_order_id: &ChannelOrderId,
    ) -> Result<Vec<IncomingFulfillment>, ChannelError> {
        let order_id = gid("Order", channel_order_id.as_str());
        let data = self.graphql(FULFILLMENTS_QUERY, json!({ "id": order_id })).await?;
        let found = &data["order"];
        if found.is_null() {
            return Err(ChannelError::permanent(format!("Shopify has no order {order_id}")));
        }
        Ok(found["fulfillments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|fulfillment| incoming_fulfillment(&order_id, fulfillment))
            .collect())
    }

    /// Follows an order's `lineItems` pages until the last, appending their nodes to the first page's.
    async fn read_all_lines(&self, node: &mut Value) -> Result<(), ChannelError> {
        let mut page_info = node["lineItems"]["pageInfo"].clone();
        let Some(id) = node["id"].as_str().map(str::to_owned) else { return Ok(()) };
        for _ in 0..MAX_LINE_PAGES {
            if page_info["hasNextPage"] != true {
                return Ok(());
            }
            let after = page_info["endCursor"]
                .as_str()
                .ok_or_else(|| {
                    ChannelError::retryable(format!("Shopify said order {id} has more lines but gave no cursor"))
                })?
                .to_owned();
            let data = self.graphql(ORDER_LINES_QUERY, json!({ "id": id, "after": after })).await?;
            let lines = &data["order"]["lineItems"];
            let more = lines["nodes"]
                .as_array()
                .ok_or_else(|| ChannelError::retryable(format!("Shopify answered no lines for order {id}")))?
                .clone();
            if let Some(nodes) = node["lineItems"]["nodes"].as_array_mut() {
                nodes.extend(more);
            }
            page_info = lines["pageInfo"].clone();
        }
        Err(ChannelError::retryable(format!("order {id} has more than {MAX_LINE_PAGES} pages of lines")))
    }

    /// One GraphQL call; HTTP and GraphQL failures become retryable or permanent errors.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, ChannelError> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("X-Shopify-Access-Token", &self.access_token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        let text = success_body(response, str::to_owned).await?;
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            ChannelError::retryable(format!("Shopify answered something that is not JSON: {text:.200}"))
        })?;
        if let Some(errors) = body["errors"].as_array().filter(|errors| !errors.is_empty()) {
            return Err(graphql_error(errors, &body["extensions"]["cost"]));
        }
        if !body["errors"].is_null() && !body["errors"].is_array() {
            // `errors` as a string or object (Shopify does this for auth failures): refused as it says.
            let message = body["errors"].as_str().map_or_else(|| body["errors"].to_string(), str::to_owned);
            return Err(ChannelError::permanent(format!("Shopify refused the request: {message:.300}")));
        }
        Ok(body["data"].clone())
    }
}

impl ShopifyClient {
    /// Cancels a whole order (`orderCancel`) or units of its lines (`refundCreate` with
    /// `restockType: CANCEL`). With `check_first`, a cancelled order or a refund carrying the
    /// cancellation's reference is adopted.
    async fn cancel_units(
        &self,
        cancellation: &crate::CancelOrder,
        check_first: bool,
    ) -> Result<Vec<String>, ChannelError> {
        let order_id = gid("Order", cancellation.channel_order_id.as_str());
        if check_first {
            let data = self.graphql(CANCEL_STATE_QUERY, json!({ "id": order_id })).await?;
            let order = &data["order"];
            if order.is_null() {
                return Err(ChannelError::permanent(format!("Shopify has no order {order_id}")));
            }
            if cancellation.whole_order && !order["cancelledAt"].is_null() {
                info!(order = %order_id, "order already cancelled at Shopify: adopted");
                return Ok(vec![order_id]);
            }
            let ours = order["refunds"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|refund| refund["note"].as_str().is_some_and(|note| note.contains(&cancellation.reference)));
            if let Some(id) = ours.and_then(|refund| refund["id"].as_str()) {
                info!(order = %order_id, refund = id, "cancellation's refund found at Shopify: adopted");
                return Ok(vec![id.to_owned()]);
            }
        }
        let note = cancel_note(cancellation);
        if cancellation.whole_order {
            let variables = json!({
                "orderId": order_id,
                "reason": shopify_cancel_reason(cancellation.reason),
                "notifyCustomer": cancellation.notify_customer,
                "staffNote": note,
            });
            let data = self.graphql(ORDER_CANCEL, variables).await?;
            let payload = &data["orderCancel"];
            refused_if_any(&payload["orderCancelUserErrors"], "orderCancel")?;
            let job = payload["job"]["id"].as_str().unwrap_or(&order_id).to_owned();
            info!(order = %order_id, job = %job, "order cancelled at Shopify");
            return Ok(vec![job]);
        }
        let lines: Vec<Value> = cancellation
            .lines
            .iter()
            .map(|(line, quantity)| {
                json!({ "lineItemId": gid("LineItem", line), "quantity": quantity, "restockType": "CANCEL" })
            })
            .collect();
        let input = json!({
            "orderId": order_id,
            "note": note,
            "notify": cancellation.notify_customer,
            "refundLineItems": lines,
        });
        let data = self.graphql(REFUND_CANCEL, json!({ "input": input, "key": cancellation.reference })).await?;
        let payload = &data["refundCreate"];
        refused_if_any(&payload["userErrors"], "refundCreate")?;
        let id = payload["refund"]["id"]
            .as_str()
            .ok_or_else(|| ChannelError::retryable("Shopify answered refundCreate without a refund"))?;
        info!(order = %order_id, refund = id, "units cancelled at Shopify");
        Ok(vec![id.to_owned()])
    }
}

impl ShopifyClient {
    /// Opens a return (`returnCreate`): each line's units taken from the order's fulfillment
    /// line items for it, less what its other returns take back. The order is read first on
    /// every attempt: a return whose note carries the reference is this one, adopted.
    async fn open_return(&self, ret: &crate::ReturnOrder) -> Result<String, ChannelError> {
        let order_id = gid("Order", ret.channel_order_id.as_str());
        let data = self.graphql(RETURN_STATE_QUERY, json!({ "id": order_id })).await?;
        let order = &data["order"];
        if order.is_null() {
            return Err(ChannelError::permanent(format!("Shopify has no order {order_id}")));
        }
        let returns = order["returns"]["nodes"].as_array().cloned().unwrap_or_default();
        let return_lines = |found: &Value| found["returnLineItems"]["nodes"].as_array().cloned().unwrap_or_default();
        if let Some(ours) = returns.iter().find(|found| {
            return_lines(found)
                .iter()
                .any(|line| line["returnReasonNote"].as_str().is_some_and(|note| note.contains(&ret.reference)))
        }) {
            let id = ours["id"].as_str().unwrap_or_default().to_owned();
            info!(order = %order_id, %id, "the return is at Shopify already: adopted");
            return Ok(id);
        }
        // Units each fulfillment line item has that no live return takes back yet.
        let mut taken: HashMap<String, u64> = HashMap::new();
        for found in returns.iter().filter(|found| !matches!(found["status"].as_str(), Some("CANCELED" | "DECLINED"))) {
            for line in return_lines(found) {
                if let (Some(id), Some(quantity)) =
                    (line["fulfillmentLineItem"]["id"].as_str(), line["quantity"].as_u64())
                {
                    *taken.entry(id.to_owned()).or_default() += quantity;
                }
            }
        }
        let mut available: Vec<(String, String, u64)> = Vec::new();
        for fulfillment in order["fulfillments"].as_array().into_iter().flatten().filter(|f| holds_items(f)) {
            for item in fulfillment["fulfillmentLineItems"]["nodes"].as_array().into_iter().flatten() {
                let (Some(id), Some(line), Some(quantity)) =
                    (item["id"].as_str(), item["lineItem"]["id"].as_str(), item["quantity"].as_u64())
                else {
                    continue;
                };
                let left = quantity.saturating_sub(taken.get(id).copied().unwrap_or(0));
                if left > 0 {
                    available.push((id.to_owned(), line.to_owned(), left));
                }
            }
        }
        let note = return_note(ret);
        let mut lines = Vec::new();
        for (line, quantity) in &ret.lines {
            let line = gid("LineItem", line);
            let mut wanted = u64::from(*quantity);
            for (item, _, left) in available.iter_mut().filter(|(_, of, _)| *of == line) {
                let take = wanted.min(*left);
                if take == 0 {
                    continue;
                }
                *left -= take;
                wanted -= take;
                lines.push(json!({"fulfillmentLineItemId": item, "quantity": take, "returnReason": "OTHER",
                    "returnReasonNote": note}));
            }
            if wanted > 0 {
                return Err(ChannelError::permanent(format!(
                    "Shopify shows {} fewer fulfilled unit(s) of {line} than the return takes back",
                    wanted
                )));
            }
        }
        let input = json!({"orderId": order_id, "returnLineItems": lines});
        let data = self.graphql(RETURN_CREATE, json!({ "returnInput": input })).await?;
        let payload = &data["returnCreate"];
        refused_if_any(&payload["userErrors"], "returnCreate")?;
        let id = payload["return"]["id"]
            .as_str()
            .ok_or_else(|| ChannelError::retryable("Shopify answered returnCreate without a return"))?;
        info!(order = %order_id, %id, "return opened at Shopify");
        Ok(id.to_owned())
    }
}

/// A return's note at Shopify (255 characters at most): the reason, then the reference a retry
/// finds it by.
fn return_note(ret: &crate::ReturnOrder) -> String {
    let tail = format!(" [{}]", ret.reference);
    let room = 255usize.saturating_sub(tail.chars().count());
    let reason: String = ret.reason.chars().take(room).collect();
    format!("{reason}{tail}")
}

/// The note a cancellation leaves at the channel: its reason, the retailer's note and the
/// reference a retry finds it by.
pub(crate) fn cancel_note(cancellation: &crate::CancelOrder) -> String {
    let mut note = format!("Cancelled by shipsync ({})", cancellation.reason.name());
    if !cancellation.note.is_empty() {
        note.push_str(": ");
        note.push_str(&cancellation.note);
    }
    note.push_str(&format!(" [{}]", cancellation.reference));
    note
}

fn shopify_cancel_reason(reason: shipsync_domain::cancellations::CancelReason) -> &'static str {
    use shipsync_domain::cancellations::CancelReason;
    match reason {
        CancelReason::OutOfStock => "INVENTORY",
        CancelReason::CustomerRequested => "CUSTOMER",
        CancelReason::Fraud => "FRAUD",
        // DECLINED is Shopify's for a declined payment: the rest are OTHER, the note says which.
        CancelReason::AddressUndeliverable | CancelReason::PricingError | CancelReason::Other => "OTHER",
    }
}

/// A mutation's user errors refuse it for good.
fn refused_if_any(errors: &Value, mutation: &str) -> Result<(), ChannelError> {
    let messages: Vec<&str> = errors.as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
    if messages.is_empty() {
        Ok(())
    } else {
        Err(ChannelError::permanent(format!("Shopify refused {mutation}: {}", messages.join("; "))))
    }
}

impl Channel for ShopifyClient {
    fn create_return<'a>(&'a self, ret: &'a crate::ReturnOrder, _check_first: bool) -> ChannelFuture<'a, String> {
        // Every attempt reads the order's returns first.
        Box::pin(self.open_return(ret))
    }

    fn cancel<'a>(&'a self, cancellation: &'a crate::CancelOrder, check_first: bool) -> ChannelFuture<'a, Vec<String>> {
        Box::pin(self.cancel_units(cancellation, check_first))
    }

    fn export<'a>(&'a self, order: &'a ExportOrder, check_first: bool) -> ChannelFuture<'a, Fulfillment> {
        Box::pin(self.create_fulfillments(order, check_first))
    }

    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage> {
        Box::pin(self.orders_updated_since(since, page))
    }

    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>> {
        Box::pin(self.order_fulfillments(channel_order_id))
    }
}

/// A fulfillment from the fulfillments query; `None` for one without an id or with an unreadable line.
fn incoming_fulfillment(order_id: &str, fulfillment: &Value) -> Option<IncomingFulfillment> {
    let lines = fulfillment["fulfillmentLineItems"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let quantity = item["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok())?;
            Some((item["lineItem"]["id"].as_str()?.to_owned(), quantity))
        })
        .collect::<Option<Vec<_>>>()?;
    let tracking = fulfillment["trackingInfo"].as_array().cloned().unwrap_or_default();
    Some(IncomingFulfillment {
        channel_fulfillment_id: fulfillment["id"].as_str()?.to_owned(),
        channel_order_id: ChannelOrderId::received(order_id),
        lines,
        // A number shipsync could not store names no parcel: it is left out, as a missing one is.
        tracking_numbers: tracking
            .iter()
            .filter_map(|info| info["number"].as_str().and_then(|number| TrackingNumber::parse(number).ok()))
            .collect(),
        tracking_company: tracking.iter().find_map(|info| info["company"].as_str().map(str::to_owned)),
        cancelled: fulfillment["status"].as_str() == Some("CANCELLED"),
    })
}

/// Whether a fulfillment (from the order query) holds its items: a cancelled or failed one does
/// not, so its tracking numbers prove nothing and its items must be fulfilled again.
fn holds_items(fulfillment: &Value) -> bool {
    !matches!(fulfillment["status"].as_str(), Some("CANCELLED" | "ERROR" | "FAILURE"))
}

/// Top-level GraphQL errors by `extensions.code`: Shopify's own trouble (THROTTLED, with the
/// wait the cost extension implies, INTERNAL_SERVER_ERROR, timeouts) is worth a retry; anything
/// else (ACCESS_DENIED, a bad query...) is refused for good, with Shopify's message.
fn graphql_error(errors: &[Value], cost: &Value) -> ChannelError {
    let code = |error: &Value| error["extensions"]["code"].as_str().unwrap_or_default().to_ascii_uppercase();
    let messages: Vec<&str> = errors.iter().filter_map(|error| error["message"].as_str()).collect();
    let excerpt: String = messages.join("; ").chars().take(300).collect();
    let throttled =
        errors.iter().any(|error| code(error) == "THROTTLED" || error["message"].as_str() == Some("Throttled"));
    if throttled {
        let wait = throttle_wait(cost);
        warn!(?wait, "Shopify throttled the request");
        return ChannelError::Retryable { message: "Shopify throttled the request".into(), retry_after: wait };
    }
    let retryable = errors
        .iter()
        .any(|error| matches!(code(error).as_str(), "INTERNAL_SERVER_ERROR" | "SERVICE_UNAVAILABLE" | "TIMEOUT"));
    if retryable {
        return ChannelError::retryable(format!("Shopify failed the request: {excerpt}"));
    }
    ChannelError::permanent(format!("Shopify refused the request: {excerpt}"))
}

/// An order from the GraphQL Admin API, as the webhooks' events carry it; or which field is wrong.
fn order_from_graphql(node: &Value) -> Result<shipsync_domain::orders::IncomingOrder, String> {
    use shipsync_domain::orders::{IncomingLine, IncomingOrder};
    let text =
        |value: &Value, field: &str| value.as_str().map(str::to_owned).ok_or_else(|| format!("{field} is required"));
    let updated_at = chrono::DateTime::parse_from_rfc3339(&text(&node["updatedAt"], "updatedAt")?)
        .map_err(|_| "updatedAt is not a time".to_owned())?
        .with_timezone(&chrono::Utc);
    let customer = &node["customer"];
    let customer_name = node["shippingAddress"]["name"]
        .as_str()
        .map(str::to_owned)
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| {
            [customer["firstName"].as_str(), customer["lastName"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        });
    let lines = node["lineItems"]["nodes"]
        .as_array()
        .ok_or("lineItems.nodes is required")?
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let given = if line["currentQuantity"].is_null() { &line["quantity"] } else { &line["currentQuantity"] };
            let quantity = given
                .as_u64()
                .and_then(|quantity| u32::try_from(quantity).ok())
                .ok_or_else(|| format!("lineItems[{index}].quantity must be a whole number, 0 or more"))?;
            Ok(IncomingLine {
                channel_line_item_id: text(&line["id"], &format!("lineItems[{index}].id"))?,
                sku: line["sku"].as_str().and_then(Sku::received),
                name: line["name"].as_str().unwrap_or_default().to_owned(),
                quantity,
                unit_price: line["originalUnitPriceSet"]["shopMoney"]["amount"].as_str().and_then(|a| a.parse().ok()),
                awaiting_acceptance: false,
                needs_imei: false,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(IncomingOrder {
        channel_order_id: ChannelOrderId::received(text(&node["id"], "id")?),
        number: text(&node["name"], "name")?.trim_start_matches('#').to_owned(),
        customer_name: customer_name.trim().to_owned(),
        updated_at,
        cancelled: !node["cancelledAt"].is_null(),
        lines,
        cancel_requested: None,
        fulfillments: Vec::new(),
    })
}

/// How long until the bucket holds enough for the query, from the cost extension (at least a
/// second; clamped by [`crate::channel_wait`] whatever the numbers say).
fn throttle_wait(cost: &Value) -> Option<Duration> {
    let requested = cost["requestedQueryCost"].as_f64()?;
    let available = cost["throttleStatus"]["currentlyAvailable"].as_f64()?;
    let rate = cost["throttleStatus"]["restoreRate"].as_f64().filter(|rate| *rate > 0.0)?;
    crate::channel_wait(((requested - available) / rate).max(1.0))
}

/// A Shopify global id from either a gid or a bare number.
fn gid(kind: &str, id: &str) -> String {
    let id = id.trim();
    if id.starts_with("gid://") { id.to_owned() } else { format!("gid://shopify/{kind}/{id}") }
}

/// Fulfillment-order line items to fulfil, grouped by location, then by fulfillment order.
type Allocation = BTreeMap<String, BTreeMap<String, Vec<(String, u32)>>>;

/// Takes the quantities needed from the open fulfillment orders' remaining quantities.
fn allocate(order: &Value, needed: &BTreeMap<String, u32>) -> Result<Allocation, ChannelError> {
    let mut left: HashMap<&str, u32> = needed.iter().map(|(line, quantity)| (line.as_str(), *quantity)).collect();
    let mut allocation = Allocation::new();
    for fulfillment_order in order["fulfillmentOrders"]["nodes"].as_array().into_iter().flatten() {
        let status = fulfillment_order["status"].as_str().unwrap_or_default();
        if status != "OPEN" && status != "IN_PROGRESS" {
            continue;
        }
        let (Some(id), location) = (
            fulfillment_order["id"].as_str(),
            fulfillment_order["assignedLocation"]["location"]["id"].as_str().unwrap_or("unknown"),
        ) else {
            continue;
        };
        for item in fulfillment_order["lineItems"]["nodes"].as_array().into_iter().flatten() {
            let (Some(item_id), Some(line), Some(remaining)) =
                (item["id"].as_str(), item["lineItem"]["id"].as_str(), item["remainingQuantity"].as_u64())
            else {
                continue;
            };
            let Some(want) = left.get_mut(line) else { continue };
            let take = (*want).min(u32::try_from(remaining).unwrap_or(u32::MAX));
            if take == 0 {
                continue;
            }
            *want -= take;
            allocation
                .entry(location.to_owned())
                .or_default()
                .entry(id.to_owned())
                .or_default()
                .push((item_id.to_owned(), take));
        }
    }
    let missing: Vec<String> = left
        .iter()
        .filter(|(_, quantity)| **quantity > 0)
        .map(|(line, quantity)| format!("{quantity} of line item {line}"))
        .collect();
    if missing.is_empty() {
        Ok(allocation)
    } else {
        Err(ChannelError::permanent(format!(
            "Shopify has no open fulfillment order for {} (already fulfilled, or assigned to a fulfillment service)",
            missing.join(", ")
        )))
    }
}

/// The `FulfillmentInput` for the fulfillment orders of one location.
fn fulfillment_input(order: &ExportOrder, fulfillment_orders: &BTreeMap<String, Vec<(String, u32)>>) -> Value {
    let line_items: Vec<Value> = fulfillment_orders
        .iter()
        .map(|(id, items)| {
            json!({
                "fulfillmentOrderId": id,
                "fulfillmentOrderLineItems": items.iter().map(|(item, quantity)| json!({"id": item, "quantity": quantity})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut tracking = json!({ "company": order.carrier, "numbers": order.tracking_numbers });
    if !order.tracking_urls.is_empty() {
        tracking["urls"] = json!(order.tracking_urls);
    }
    json!({
        "lineItemsByFulfillmentOrder": line_items,
        "trackingInfo": tracking,
        "notifyCustomer": order.notify_customer,
    })
}

#[cfg(test)]
mod tests;
