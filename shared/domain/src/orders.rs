//! Orders from sales channels: how an order becomes one purchase order per vendor, how later
//! versions of it change those purchase orders, and how a fulfillment made in the channel is
//! matched to shipsync's shipments (Duoplane's reverse-sync rules).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::export::ExportState;
use crate::ids::{OrderItemId, PurchaseOrderId, RetailerId, ShipmentId, StoreId, VendorId};
use crate::purchase_order::{NewOrderItem, PurchaseOrder};
use crate::shipment::Shipment;
use crate::tracking::{TrackingNumber, tracking_keys};
use crate::vocabulary::{ChannelOrderId, Sku};

/// An order as a channel sends it (by webhook or by polling), reduced to what shipsync uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingOrder {
    /// The order's id in the channel.
    pub channel_order_id: ChannelOrderId,
    /// The order number people use (Shopify's `name` without `#`).
    pub number: String,
    pub customer_name: String,
    /// When the channel last changed the order: older versions are ignored.
    pub updated_at: DateTime<Utc>,
    pub cancelled: bool,
    pub lines: Vec<IncomingLine>,
    /// The buyer asked the channel to cancel (Amazon, eBay) and the seller must decide there:
    /// the reason, listed in order health until the order is cancelled or shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested: Option<String>,
    /// Shipments the channel already holds for the order (marketplaces, read with the order):
    /// applied by reverse sync after the order itself, so their lines are known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fulfillments: Vec<IncomingFulfillment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingLine {
    pub channel_line_item_id: String,
    pub sku: Option<Sku>,
    pub name: String,
    /// What is still ordered: removed or cancelled units are not counted.
    pub quantity: u32,
    pub unit_price: Option<Decimal>,
    /// The channel waits for the seller to accept the line before it may ship (Back Market's
    /// orderline state 1): shipsync accepts it once the line is routed to a vendor.
    // Left out when false: an order of a thousand lines must still fit one queue message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_acceptance: bool,
    /// The channel says each unit needs its IMEI on the ship confirmation (Back Market's
    /// smartphones): the confirmation waits for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_imei: bool,
}

/// Which vendor ships a SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub vendor_id: VendorId,
    pub name: String,
    /// The vendor's wholesale cost per unit, copied onto purchase order items.
    pub cost: Option<Decimal>,
}

/// How an order divides: the lines of each vendor, and the lines no product claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderSplit {
    pub by_vendor: BTreeMap<VendorId, Vec<(IncomingLine, Option<Decimal>)>>,
    pub unknown: Vec<IncomingLine>,
}

/// Splits an order's lines among vendors by SKU; a line without a known SKU is kept apart.
pub fn split_order(order: &IncomingOrder, product: impl Fn(&Sku) -> Option<Product>) -> OrderSplit {
    let mut split = OrderSplit::default();
    for line in &order.lines {
        match line.sku.as_ref().and_then(|sku| Sku::received(sku.as_str())).and_then(|sku| product(&sku)) {
            Some(found) => split.by_vendor.entry(found.vendor_id).or_default().push((line.clone(), found.cost)),
            None => split.unknown.push(line.clone()),
        }
    }
    split
}

/// The number of a vendor's purchase order for a channel order: `S<store>-<order number>-V<vendor>`.
/// Stable, so that reprocessing or a repeated event finds the same purchase order, and unique per
/// store: two stores of one retailer both have an order #1001, and each gets its purchase orders.
/// (The store id is digits ended by `-`, the vendor id digits at the end: no two inputs share a number.)
pub fn purchase_order_number(store: StoreId, order_number: &str, vendor: VendorId) -> String {
    format!("S{store}-{}-V{vendor}", order_number.trim().trim_start_matches('#'))
}

/// The longest SKU an order line may carry: a product's key is `PRODUCT#<sku>`, and DynamoDB's
/// sort keys hold 1,024 bytes.
pub const MAX_SKU_BYTES: usize = 512;

pub use crate::vocabulary::MAX_ID_BYTES;

/// Whether shipsync can apply an order at all: every text that becomes part of a key fits in one.
/// An order that fails is kept and listed in order health, never retried forever.
pub fn check_applicable(order: &IncomingOrder) -> Result<(), String> {
    let too_long = |field: &str, value: &str, max: usize| {
        (value.len() > max).then(|| format!("{field} is {} bytes long; at most {max} fit in a key", value.len()))
    };
    let mut problems: Vec<String> = [
        too_long("channel_order_id", order.channel_order_id.as_str(), MAX_ID_BYTES),
        too_long("number", &order.number, MAX_ID_BYTES),
    ]
    .into_iter()
    .flatten()
    .collect();
    if order.channel_order_id.as_str().trim().is_empty() {
        problems.push("channel_order_id is empty".into());
    }
    if order.number.trim().trim_start_matches('#').is_empty() {
        problems.push("number is empty".into());
    }
    for (index, line) in order.lines.iter().enumerate() {
        problems.extend(too_long(
            &format!("lines[{index}].channel_line_item_id"),
            &line.channel_line_item_id,
            MAX_ID_BYTES,
        ));
        if let Some(sku) = &line.sku {
            problems.extend(too_long(&format!("lines[{index}].sku"), sku.as_str(), MAX_SKU_BYTES));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

/// New order items for lines a purchase order does not have yet.
pub fn new_items(po: Option<&PurchaseOrder>, lines: &[(IncomingLine, Option<Decimal>)]) -> Vec<NewOrderItem> {
    lines
        .iter()
        .filter(|(line, _)| {
            po.is_none_or(|po| {
                !po.items.iter().any(|item| item.channel_line_item_id.as_deref() == Some(&line.channel_line_item_id))
            })
        })
        .filter(|(line, _)| line.quantity > 0)
        .map(|(line, cost)| NewOrderItem {
            sku: line.sku.as_ref().map(Sku::to_string).unwrap_or_default(),
            name: line.name.clone(),
            quantity: line.quantity,
            cost: *cost,
            channel_line_item_id: Some(line.channel_line_item_id.clone()),
            needs_imei: line.needs_imei,
        })
        .collect()
}

/// How many units of a purchase order item the channel still wants: `None` when the order does
/// not mention its line. Only an explicit quantity (a decrease to it) or the order's cancellation
/// cancels units; a line the order does not carry (a page not read, a partial payload) is left as it is.
pub fn wanted_quantity(order: &IncomingOrder, channel_line_item_id: Option<&str>) -> Option<u32> {
    if order.cancelled {
        return Some(0);
    }
    let line = channel_line_item_id?;
    order.lines.iter().find(|candidate| candidate.channel_line_item_id == line).map(|found| found.quantity)
}

/// Applies a later version of the order to a vendor's purchase order: quantities that were
/// decreased or cancelled at the channel are cancelled here (never below what has shipped), a
/// cancelled order cancels everything unshipped. Returns whether anything changed.
pub fn apply_order_changes(po: &mut PurchaseOrder, order: &IncomingOrder, now: DateTime<Utc>) -> bool {
    let mut changed = false;
    for item in &mut po.items {
        let Some(wanted) = wanted_quantity(order, item.channel_line_item_id.as_deref()) else { continue };
        let keep = wanted.max(item.quantity_fulfilled);
        if keep < item.quantity {
            item.quantity_cancelled += item.quantity - keep;
            item.quantity = keep;
            changed = true;
        }
    }
    if po.customer_name != order.customer_name && !order.customer_name.is_empty() {
        po.customer_name = order.customer_name.clone();
        changed = true;
    }
    if changed {
        po.updated_at = now;
    }
    changed
}

/// Whether `incoming` is a version of an order already applied (`applied`) or older: it is
/// ignored. A version of the same time counts only if it cancels (or revives) the order.
pub fn is_stale_version(applied: &IncomingOrder, incoming: &IncomingOrder) -> bool {
    applied.updated_at > incoming.updated_at
        || (applied.updated_at == incoming.updated_at && applied.cancelled == incoming.cancelled)
}

/// The items of a purchase order that the order now wants fewer of than have shipped (or all
/// of them, once the order is cancelled): a shipment carrying them carries cancelled units, and
/// its planned export must stop. A line the order does not mention wants what it wanted.
pub fn items_cancelled_after_shipping<'a>(
    po: &'a PurchaseOrder,
    order: &IncomingOrder,
) -> Vec<&'a crate::purchase_order::OrderItem> {
    po.items
        .iter()
        .filter(|item| {
            order.cancelled
                || wanted_quantity(order, item.channel_line_item_id.as_deref())
                    .is_some_and(|want| want < item.quantity_fulfilled)
        })
        .collect()
}

/// A fulfillment made in the channel (reported by its webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingFulfillment {
    pub channel_fulfillment_id: String,
    pub channel_order_id: ChannelOrderId,
    /// Channel line item id and quantity.
    pub lines: Vec<(String, u32)>,
    pub tracking_numbers: Vec<TrackingNumber>,
    pub tracking_company: Option<String>,
    pub cancelled: bool,
}

/// What to do with a fulfillment made in the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseSync {
    /// Shipsync made it (or already linked it): nothing to do.
    Known(ShipmentId),
    /// An unexported shipment matches it exactly: link them, and cancel the planned export.
    Link(ShipmentId),
    /// All its items are on one purchase order and unfulfilled: create a linked shipment.
    Create { purchase_order_id: PurchaseOrderId, items: Vec<(OrderItemId, u32)> },
    /// Neither: ignore it, and say why where people look.
    Ignore(String),
}

/// Duoplane's rules for a fulfillment created in the channel.
pub fn match_fulfillment(
    fulfillment: &IncomingFulfillment,
    purchase_orders: &[PurchaseOrder],
    shipments: &[Shipment],
) -> ReverseSync {
    let ours = |shipment: &Shipment| match &shipment.export.state {
        ExportState::Exported { channel_ids, .. } => channel_ids.contains(&fulfillment.channel_fulfillment_id),
        _ => false,
    };
    if let Some(shipment) = shipments.iter().find(|s| ours(s)) {
        return ReverseSync::Known(shipment.id);
    }
    // Each fulfilled line, as (purchase order, order item, quantity).
    let mut located = Vec::new();
    for (line_id, quantity) in &fulfillment.lines {
        let found = purchase_orders.iter().find_map(|po| {
            po.items
                .iter()
                .find(|item| item.channel_line_item_id.as_deref() == Some(line_id))
                .map(|item| (po, item.id, *quantity))
        });
        match found {
            Some(entry) => located.push(entry),
            None => return ReverseSync::Ignore(format!("line item {line_id} is on no purchase order")),
        }
    }
    let Some((first_po, _, _)) = located.first() else {
        return ReverseSync::Ignore("the fulfillment has no line items".into());
    };
    let numbers = tracking_keys(&fulfillment.tracking_numbers);
    let wanted: BTreeMap<OrderItemId, u32> = located.iter().fold(BTreeMap::new(), |mut map, (_, item, quantity)| {
        *map.entry(*item).or_default() += quantity;
        map
    });
    // A shipment being exported, or already exported, with the same tracking is ours too: the
    // webhook can arrive before the exporter has recorded the channel's id.
    let exact = |shipment: &Shipment| {
        let items: BTreeMap<OrderItemId, u32> = shipment.items.iter().fold(BTreeMap::new(), |mut map, item| {
            *map.entry(item.order_item_id).or_default() += item.quantity;
            map
        });
        items == wanted && tracking_keys(shipment.trackings.iter().map(|t| &t.tracking)) == numbers
    };
    if let Some(shipment) = shipments.iter().find(|s| exact(s)) {
        return match shipment.export.state {
            ExportState::Exported { .. } | ExportState::Exporting { .. } => ReverseSync::Known(shipment.id),
            _ => ReverseSync::Link(shipment.id),
        };
    }
    // One location's part of a shipment shipsync is exporting (or exported, or tried to): the
    // exporter makes one fulfillment per location, each with all of the shipment's tracking
    // numbers and the items of that location, and the webhook can come before the ids are recorded.
    let part_of_ours = |shipment: &Shipment| {
        let started = matches!(shipment.export.state, ExportState::Exported { .. } | ExportState::Exporting { .. })
            || shipment.export.attempts > 0;
        let shipped = |item: &OrderItemId| {
            shipment.items.iter().filter(|held| held.order_item_id == *item).map(|held| held.quantity).sum::<u32>()
        };
        // Some of its packages: Shopify sends every number on each location's fulfillment, the
        // marketplaces one package (number) per confirmation.
        let own = tracking_keys(shipment.trackings.iter().map(|t| &t.tracking));
        started
            && !numbers.is_empty()
            && numbers.iter().all(|number| own.contains(number))
            && wanted.iter().all(|(item, quantity)| *quantity <= shipped(item))
    };
    if let Some(shipment) = shipments.iter().find(|s| part_of_ours(s)) {
        return ReverseSync::Known(shipment.id);
    }
    if located.iter().any(|(po, _, _)| po.id != first_po.id) {
        return ReverseSync::Ignore(
            "its items span several purchase orders: create one shipment per purchase order in shipsync".into(),
        );
    }
    for (item_id, quantity) in &wanted {
        let unfulfilled = first_po.item(*item_id).map_or(0, |item| item.unfulfilled());
        if *quantity > unfulfilled {
            return ReverseSync::Ignore(format!(
                "order item {item_id} of purchase order {} is already fulfilled (asked {quantity}, {unfulfilled} left)",
                first_po.public_reference
            ));
        }
    }
    ReverseSync::Create { purchase_order_id: first_po.id, items: wanted.into_iter().collect() }
}

/// What shipsync knows of a channel order: its number, the last version applied, its purchase orders.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderRecord {
    /// shipsync's id for the order (for `POST /orders/{id}/reprocess.json`).
    pub id: u64,
    pub retailer_id: RetailerId,
    pub store_id: StoreId,
    pub channel_order_id: ChannelOrderId,
    pub number: String,
    /// The last version applied; older events are ignored.
    pub order: IncomingOrder,
    /// Bumped on every write; writes are conditional on it.
    pub version: u64,
}

/// A payload shipsync could not apply, kept for a person beside its problem: the raw bytes (all
/// of them, or the first [`MAX_KEPT_BYTES`] when the item would not fit), its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptPayload {
    pub problem_key: String,
    pub received_at: DateTime<Utc>,
    /// The payload's whole size in bytes.
    pub size: usize,
    /// Hex SHA-256 of the whole payload.
    pub sha256: String,
    /// Whether only the first [`MAX_KEPT_BYTES`] are kept.
    pub truncated: bool,
}

impl KeptPayload {
    /// How a problem's reason describes it.
    pub fn describe(&self) -> String {
        let kept = if self.truncated { format!("; only its first {MAX_KEPT_BYTES} bytes") } else { String::new() };
        format!("{} bytes, SHA-256 {}{kept}", self.size, self.sha256)
    }
}

/// The most bytes of a payload kept in one item (DynamoDB holds 400 KB, with the metadata).
pub const MAX_KEPT_BYTES: usize = 350 * 1024;

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A store on the poller's list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolledStore {
    pub retailer_id: RetailerId,
    pub store_id: StoreId,
}

/// Where a store's polling stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PollState {
    /// Orders changed at or after this time are fetched next (less an overlap).
    pub cursor: Option<DateTime<Utc>>,
    pub last_polled_at: Option<DateTime<Utc>>,
    /// Since when fetches have been failing (listed in order health until one succeeds).
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
    /// A listing left unfinished by the last tick (a large backlog), resumed by the next one;
    /// the cursor moves only once a listing is read to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<PollResume>,
}

/// Where an unfinished listing goes on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PollResume {
    /// The time the listing asks from.
    pub since: DateTime<Utc>,
    /// The channel's cursor for the next page.
    pub page: String,
    /// The latest `updated_at` read so far: the cursor once the listing ends.
    pub newest: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests;

/// What a channel told shipsync about an order, as queued for the order processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// An order was created or changed (`orders/create`, `orders/updated`, a poll).
    OrderChanged { order: IncomingOrder },
    /// An order was cancelled (`orders/cancelled`).
    OrderCancelled { order: IncomingOrder },
    /// A fulfillment was created or changed in the channel (`fulfillments/create`, `fulfillments/update`).
    FulfillmentChanged { fulfillment: IncomingFulfillment },
    /// A carrier-tracking provider reported a parcel's progress, to the store whose provider account
    /// tracks it (the message names the store: only its shipments are looked at).
    CarrierScanned { scan: crate::tracking::CarrierScan },
    /// A return was asked for, approved, declined or closed in the channel (`returns/*`).
    ReturnChanged { ret: crate::returns::IncomingReturn },
}

impl ChannelEvent {
    /// Whether shipsync can apply the event at all (see [`check_applicable`]): checked where it
    /// comes in, so that it is kept and listed rather than queued and retried forever.
    pub fn check_applicable(&self) -> Result<(), String> {
        let fits = |field: &str, value: &str| {
            if value.len() > MAX_ID_BYTES {
                Err(format!("{field} is {} bytes long; at most {MAX_ID_BYTES} fit in a key", value.len()))
            } else {
                Ok(())
            }
        };
        match self {
            ChannelEvent::OrderChanged { order } | ChannelEvent::OrderCancelled { order } => {
                check_applicable(order)?;
                order.fulfillments.iter().try_for_each(|fulfillment| fulfillment_fits(fulfillment, &fits))
            }
            ChannelEvent::FulfillmentChanged { fulfillment } => fulfillment_fits(fulfillment, &fits),
            ChannelEvent::CarrierScanned { scan } => fits("tracking_number", scan.tracking_number.as_str()),
            ChannelEvent::ReturnChanged { ret } => {
                fits("channel_return_id", &ret.channel_return_id)?;
                if let Some(order) = &ret.channel_order_id {
                    fits("channel_order_id", order.as_str())?;
                }
                ret.lines.iter().try_for_each(|(line, _)| fits("lines.channel_line_item_id", line))
            }
        }
    }
}

/// Whether a channel fulfillment's ids fit in keys.
fn fulfillment_fits(
    fulfillment: &IncomingFulfillment,
    fits: &impl Fn(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    fits("channel_fulfillment_id", &fulfillment.channel_fulfillment_id)?;
    fits("channel_order_id", fulfillment.channel_order_id.as_str())?;
    fulfillment.lines.iter().try_for_each(|(line, _)| fits("lines.channel_line_item_id", line))
}

/// The order processor's queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEventMessage {
    /// The store the event is about; a carrier scan is about no store in particular.
    pub retailer_id: Option<RetailerId>,
    pub store_id: Option<StoreId>,
    /// Where it came from: the webhook delivery id, or the poll.
    pub source: String,
    pub event: ChannelEvent,
}

/// Something in an order that a person must fix, listed in order health until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderProblem {
    /// Stable for the same problem, so that a repeated event does not list it twice.
    pub key: String,
    pub kind: ProblemKind,
    /// shipsync's id for the order, once it has one (`POST /orders/{id}/reprocess.json`).
    #[serde(default)]
    pub order_id: Option<u64>,
    pub store_id: StoreId,
    /// The order's id in the channel, clipped to fit a key; empty when a problem names no order
    /// (a poll that failed), so it stays text.
    pub channel_order_id: String,
    pub order_number: String,
    pub reason: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    UnknownSku,
    ChannelFulfillmentIgnored,
    UnreadableEvent,
    /// A signed payload or a queued event that cannot be applied (malformed, too large, a value
    /// that does not fit): kept, with its size and SHA-256, for a person.
    UnapplicablePayload,
    /// A purchase order's number is taken by another purchase order.
    PurchaseOrderNumberTaken,
    /// Fetching a store's orders failed; its cursor stays until a fetch succeeds.
    PollFailed,
    /// The buyer asked the channel to cancel: the seller decides there.
    CancelRequested,
    /// The channel refused to accept order lines shipsync routed (Back Market's validation).
    AcceptanceFailed,
    /// The tracking provider refused a tracking number: no scan will come for it.
    TrackerRefused,
    /// A shipment waited for its first carrier scan longer than its store allows.
    NoCarrierScan,
    /// A store's channel token could not be renewed (Wish's): its calls stop once it expires.
    TokenRenewalFailed,
    /// The channel did not take a shipment's corrected tracking numbers (Walmart's window).
    TrackingCorrectionRefused,
    /// A vendor asked to cancel units and the retailer must approve or decline.
    CancellationAwaitingApproval,
    /// A cancellation made in shipsync did not reach its channel.
    CancellationPushFailed,
    /// A cancellation made in shipsync must be made in the channel by hand (no API for it).
    CancelAtChannel,
    /// A return authorized in shipsync did not reach its channel.
    ReturnPushFailed,
    /// A return made in the channel could not be taken (units not shipped in shipsync, say).
    ChannelReturnIgnored,
}

impl ProblemKind {
    /// The name order health shows.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::UnknownSku => "unknown_sku",
            ProblemKind::ChannelFulfillmentIgnored => "channel_fulfillment_ignored",
            ProblemKind::UnreadableEvent => "dead_lettered_event",
            ProblemKind::UnapplicablePayload => "unapplicable_payload",
            ProblemKind::PurchaseOrderNumberTaken => "purchase_order_number_taken",
            ProblemKind::PollFailed => "poll_failed",
            ProblemKind::TokenRenewalFailed => "token_renewal_failed",
            ProblemKind::TrackingCorrectionRefused => "tracking_correction_refused",
            ProblemKind::CancellationAwaitingApproval => "cancellation_awaiting_approval",
            ProblemKind::CancellationPushFailed => "cancellation_push_failed",
            ProblemKind::CancelAtChannel => "cancel_at_channel",
            ProblemKind::ReturnPushFailed => "return_push_failed",
            ProblemKind::ChannelReturnIgnored => "channel_return_ignored",
            ProblemKind::CancelRequested => "cancel_requested",
            ProblemKind::AcceptanceFailed => "acceptance_failed",
            ProblemKind::TrackerRefused => "tracker_refused",
            ProblemKind::NoCarrierScan => "no_carrier_scan",
        }
    }
}

impl OrderProblem {
    /// The key of a shipment's "no carrier scan yet" problem.
    pub fn no_scan_key(shipment: ShipmentId) -> String {
        format!("no_carrier_scan:{shipment}")
    }

    /// The key of an order's "buyer asked to cancel" problem.
    pub fn cancel_requested_key(store: StoreId, channel_order_id: &ChannelOrderId) -> String {
        format!("cancel_requested:{store}:{channel_order_id}")
    }

    /// What the keys of one order's unknown-SKU problems start with.
    pub fn unknown_sku_prefix(store: StoreId, channel_order_id: &ChannelOrderId) -> String {
        format!("unknown_sku:{store}:{channel_order_id}:")
    }

    pub fn unknown_sku(
        store: StoreId,
        order_id: u64,
        order: &IncomingOrder,
        line: &IncomingLine,
        now: DateTime<Utc>,
    ) -> Self {
        let sku = line.sku.as_ref().map_or("", Sku::as_str);
        Self {
            key: format!("{}{}", Self::unknown_sku_prefix(store, &order.channel_order_id), line.channel_line_item_id),
            kind: ProblemKind::UnknownSku,
            order_id: Some(order_id),
            store_id: store,
            channel_order_id: order.channel_order_id.to_string(),
            order_number: order.number.clone(),
            reason: if sku.is_empty() {
                format!("line {} ({}) has no SKU", line.channel_line_item_id, line.name)
            } else {
                format!("SKU {sku:?} ({}) is not a product of any vendor: add it, then reprocess the order", line.name)
            },
            since: now,
        }
    }
}
