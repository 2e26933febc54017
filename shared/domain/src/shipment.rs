//! Shipments: the delivery of some of a purchase order's items, by one carrier, in one or more
//! packages. This module holds the rules for creating and changing them.

use crate::ValidationErrors;
use crate::carrier::{Carrier, CarrierRef};
use crate::export::{ExportState, ShipmentExport};
use crate::ids::{
    CarrierId, OrderItemId, PurchaseOrderId, RetailerId, ShipmentId, ShipmentItemId, StoreId, TrackingId, VendorId,
    check_id,
};
use crate::money::parse_cost_text;
use crate::purchase_order::{FulfillmentChange, PurchaseOrder};
use crate::tenant::FeeSettings;
use crate::tracking::TrackingNumber;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::tracking::MAX_TRACKING_LENGTH;
/// Longest serial code (an IMEI has 15 digits; some serials are longer).
pub const MAX_SERIAL_CODE_LENGTH: usize = 64;
/// The most packages (tracking numbers) a shipment may have.
pub const MAX_TRACKINGS: usize = 50;
/// Longest invoice reference.
pub const MAX_REFERENCE_LENGTH: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: ShipmentId,
    pub purchase_order_id: PurchaseOrderId,
    pub retailer_id: RetailerId,
    pub vendor_id: VendorId,
    pub store_id: StoreId,
    pub purchase_order_public_reference: String,
    /// The channel's order id, copied from the purchase order so that an export needs no more
    /// than the shipment (`None`: the order has none, or the shipment predates the copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_order_id: Option<crate::vocabulary::ChannelOrderId>,
    /// Copied from the purchase order so that shipments can be searched by it.
    pub customer_name: String,
    pub carrier: Carrier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_invoice_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipper_invoice_reference: Option<String>,
    #[serde(default, skip_serializing_if = "ShipmentCosts::is_empty")]
    pub costs: ShipmentCosts,
    pub items: Vec<ShipmentItem>,
    pub trackings: Vec<Tracking>,
    /// The carrier's service (`Ground`, `Priority Mail`...), sent where a channel takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_method: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the vendor invoice reference was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoiced_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "SyncState::is_empty")]
    pub sync: SyncState,
    #[serde(default)]
    pub export: ShipmentExport,
    /// What the carrier last reported (it only moves forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_status: Option<crate::tracking::TrackingStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_status_at: Option<DateTime<Utc>>,
    /// Its store had a tracking provider when it was made: the provider's scans reach it, so its
    /// tracking numbers are indexed for them (written only then: an index record costs a write).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracked_by_provider: bool,
    /// What happened to it, oldest first ([`crate::history`]): written with each change.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "ev")]
    pub events: Vec<crate::history::ShipmentEvent>,
    /// Bumped on every write; writes are conditional on it.
    pub version: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCosts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_shipping: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_handling: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_tax: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipper_shipping: Option<Decimal>,
}

impl ShipmentCosts {
    /// No cost given (stored records leave it out).
    pub fn is_empty(&self) -> bool {
        *self == ShipmentCosts::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentItem {
    pub id: ShipmentItemId,
    pub order_item_id: OrderItemId,
    pub quantity: u32,
    /// Wholesale cost per unit, as on the purchase order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Decimal>,
    pub order_item_name: String,
    pub sku: String,
    /// The order line's id in the channel, copied from the order item (as the shipment's
    /// `channel_order_id` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_line_item_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial_codes: Vec<String>,
    /// The package (one of the shipment's tracking numbers) holding these units; `None`:
    /// not said, and the units are spread over the packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<TrackingNumber>,
    /// The channel says each unit needs its IMEI on the confirmation (Back Market's phones).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_imei: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub id: TrackingId,
    pub tracking: TrackingNumber,
}

/// Where a shipment stands with the systems it is copied to. Once it has gone to one of them,
/// the fields that system received are locked, because most channels cannot edit a shipment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting_synced_at: Option<DateTime<Utc>>,
}

impl SyncState {
    /// Copied nowhere yet (stored records leave it out).
    pub fn is_empty(&self) -> bool {
        *self == SyncState::default()
    }

    /// Carrier, items and tracking numbers are locked once the channel has them.
    pub fn shipping_details_locked(&self) -> bool {
        self.exported_at.is_some()
    }

    /// Costs and invoice references are locked once accounting has them.
    pub fn accounting_details_locked(&self) -> bool {
        self.accounting_synced_at.is_some()
    }
}

/// Why a shipment's carrier, items and tracking numbers can no longer change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShippingLock {
    /// The channel has it.
    Exported,
    /// An attempt holds it now.
    Exporting,
    /// An attempt started before (its answer may have been lost, or some of it got through):
    /// the retry must find in the channel exactly what that attempt sent, so nothing the channel
    /// may have can change. Only an IMEI or serial number may still be added to an item that has
    /// none (a Back Market confirmation waiting for it was never sent).
    Attempted,
}

impl ShippingLock {
    pub fn reason(self) -> &'static str {
        match self {
            ShippingLock::Exported => "is readonly: the shipment has been exported to its channel",
            ShippingLock::Exporting => "is readonly: the shipment is being exported to its channel",
            ShippingLock::Attempted => {
                "is readonly: an export to its channel has started, and the channel may have it already"
            }
        }
    }
}

impl Shipment {
    /// Whether carrier, items and tracking numbers are locked, and why: from the moment a first
    /// export attempt starts (the exporter's claim), not only once the channel confirmed it.
    pub fn shipping_details_lock(&self) -> Option<ShippingLock> {
        if self.sync.shipping_details_locked() {
            Some(ShippingLock::Exported)
        } else if matches!(self.export.state, ExportState::Exporting { .. }) {
            Some(ShippingLock::Exporting)
        } else if self.export.attempts > 0 {
            Some(ShippingLock::Attempted)
        } else {
            None
        }
    }

    /// SKUs of the items that lack an IMEI the channel asks for (Back Market's smartphones,
    /// as its order lines say): one code per unit.
    pub fn missing_imeis(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|item| lacks_imei(item.needs_imei, item.quantity, &item.serial_codes))
            .map(|item| item.sku.as_str())
            .collect()
    }
}

/// Whether a line of `quantity` units with these serial codes lacks an IMEI its channel asks for
/// (`needs_imei`: what the channel said about the line): every unit needs its own. A code that
/// is no IMEI (a serial number) does not count: the channel refuses it, and an export released
/// for it would fail after its first attempt, when the items can no longer be edited.
pub fn lacks_imei(needs_imei: bool, quantity: u32, serial_codes: &[String]) -> bool {
    needs_imei && serial_codes.iter().filter(|code| is_imei(code)).count() < quantity as usize
}

/// Whether a serial code is an IMEI: 15 digits.
pub fn is_imei(code: &str) -> bool {
    let code = code.trim();
    code.len() == 15 && code.chars().all(|c| c.is_ascii_digit())
}

/// The longest shipping method accepted.
pub const MAX_SHIPPING_METHOD_LENGTH: usize = 100;

/// A field of a request: left out, set to nothing (`null` or `""`), or given a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// The writable fields of a shipment, as a create or update request gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentInput {
    pub shipper_id: Option<u64>,
    pub shipper_name: Option<String>,
    pub shipper_scac_code: Option<String>,
    pub vendor_invoice_reference: Patch<String>,
    pub shipper_invoice_reference: Patch<String>,
    /// Costs as the request wrote them (a JSON number or string), parsed here.
    pub vendor_shipping_cost: Patch<String>,
    pub vendor_handling_cost: Patch<String>,
    pub vendor_tax_cost: Patch<String>,
    pub shipper_shipping_cost: Patch<String>,
    pub items: Option<Vec<ItemInput>>,
    pub trackings: Option<Vec<TrackingInput>>,
    pub shipping_method: Patch<String>,
    /// Create only: export automatically (`true`) or only on request (`false`), whatever the store says.
    pub export: Option<bool>,
    /// Create only: whether the channel notifies the customer, whatever the vendor and store say.
    pub notify_customer: Option<bool>,
}

/// Readonly ids a client may send back in a shipment request: they must be the record's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoedIds {
    pub shipment: Option<u64>,
    pub purchase_order: Option<u64>,
}

impl EchoedIds {
    /// Checks them against the shipment's id (`None` for a new one) and its purchase order.
    pub fn check(
        &self,
        shipment_id: Option<crate::ids::ShipmentId>,
        purchase_order_id: crate::ids::PurchaseOrderId,
    ) -> Result<(), ValidationErrors> {
        if let Some(given) = self.shipment
            && shipment_id.is_none_or(|id| id.get() != given)
        {
            return Err(ValidationErrors::single("id", "is readonly: assigned by shipsync"));
        }
        if let Some(given) = self.purchase_order
            && purchase_order_id.get() != given
        {
            return Err(ValidationErrors::single(
                "purchase_order_id",
                "is readonly: a shipment stays on its purchase order",
            ));
        }
        Ok(())
    }
}

/// One entry of `shipment_items_attributes`. With an `id` it changes (or, with `_destroy`,
/// removes) an item of the shipment; without, it adds one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemInput {
    pub id: Option<u64>,
    pub order_item_id: Option<u64>,
    pub quantity: Option<i64>,
    pub serial_codes: Option<Vec<String>>,
    /// The tracking number of the package holding the item's units (`""`: not said).
    pub package_tracking: Option<String>,
    pub destroy: bool,
}

/// One entry of `shipment_trackings_attributes`, with the same conventions as [`ItemInput`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingInput {
    pub id: Option<u64>,
    pub tracking: Option<String>,
    pub destroy: bool,
}

/// What a shipment is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ShipmentContext<'a> {
    pub purchase_order: &'a PurchaseOrder,
    pub carriers: &'a [Carrier],
    pub fees: FeeSettings,
    pub now: DateTime<Utc>,
    /// How long after a shipment's export its channel takes a tracking correction (Walmart's
    /// 4 hours); `None`: tracking is readonly once exported.
    pub tracking_corrections: Option<chrono::Duration>,
}

const ITEMS: &str = "shipment_items_attributes";
const TRACKINGS: &str = "shipment_trackings_attributes";

/// A checked request, waiting only for the ids of the records it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentDraft {
    /// The shipment as it will be; new items and trackings have no id yet.
    shipment: Shipment,
    new_item_ids: Vec<usize>,
    new_tracking_ids: Vec<usize>,
    needs_shipment_id: bool,
    /// How the purchase order's fulfilled quantities change.
    pub fulfillment_change: FulfillmentChange,
}

impl ShipmentDraft {
    /// How many ids [`ShipmentDraft::finish`] consumes.
    pub fn ids_needed(&self) -> usize {
        usize::from(self.needs_shipment_id) + self.new_item_ids.len() + self.new_tracking_ids.len()
    }

    /// Whether the request changes anything at all.
    pub fn is_unchanged_from(&self, current: &Shipment) -> bool {
        !self.needs_shipment_id
            && self.new_item_ids.is_empty()
            && self.new_tracking_ids.is_empty()
            && Shipment { updated_at: current.updated_at, version: current.version, ..self.shipment.clone() }
                == *current
    }

    /// The finished shipment, with new ids taken in order from `ids`.
    pub fn finish(self, ids: &mut impl Iterator<Item = u64>) -> Result<Shipment, ValidationErrors> {
        let mut next = || ids.next().ok_or_else(|| ValidationErrors::single("id", "no id left to assign"));
        let mut shipment = self.shipment;
        if self.needs_shipment_id {
            shipment.id = ShipmentId::new_unchecked(next()?);
        }
        for index in self.new_item_ids {
            shipment.items[index].id = ShipmentItemId::new_unchecked(next()?);
        }
        for index in self.new_tracking_ids {
            shipment.trackings[index].id = TrackingId::new_unchecked(next()?);
        }
        Ok(shipment)
    }
}

/// Checks a create request against the purchase order and builds the shipment it asks for.
pub fn draft_new_shipment(
    context: ShipmentContext<'_>,
    input: &ShipmentInput,
) -> Result<ShipmentDraft, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let po = context.purchase_order;
    let carrier = resolve_carrier(input, context.carriers, &mut errors);
    if carrier.is_none() && !errors.mentions_carrier() {
        errors.push("shipper_id", "is required: give one of shipper_id, shipper_name or shipper_scac_code");
    }
    let mut costs = ShipmentCosts::default();
    apply_costs(&mut costs, input, context.fees, &mut errors);
    let vendor_invoice_reference =
        reference(&input.vendor_invoice_reference, "vendor_invoice_reference", None, &mut errors);
    let shipper_invoice_reference =
        reference(&input.shipper_invoice_reference, "shipper_invoice_reference", None, &mut errors);

    let mut items = Vec::new();
    match &input.items {
        Some(entries) if !entries.is_empty() => {
            for (index, entry) in entries.iter().enumerate() {
                let field = format!("{ITEMS}[{index}]");
                refuse_update_markers(&field, entry.id, entry.destroy, &mut errors);
                if let Some(item) = new_item(entry, &field, po, &items, &mut errors) {
                    items.push(item);
                }
            }
        }
        _ => errors.push(ITEMS, "must contain at least one item"),
    }
    let trackings = match &input.trackings {
        Some(entries) if !entries.is_empty() => {
            let mut trackings = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                let field = format!("{TRACKINGS}[{index}]");
                refuse_update_markers(&field, entry.id, entry.destroy, &mut errors);
                match entry.tracking.as_deref().map(TrackingNumber::parse) {
                    Some(Ok(number)) => trackings.push(Tracking { id: TrackingId::new_unchecked(0), tracking: number }),
                    Some(Err(message)) => errors.push(format!("{field}.tracking"), message),
                    None => errors.push(format!("{field}.tracking"), "is required"),
                }
            }
            trackings
        }
        _ => {
            errors.push(TRACKINGS, "must contain at least one tracking number");
            Vec::new()
        }
    };
    check_trackings(&trackings, &mut errors);
    check_distinct_serial_codes(&items, &mut errors);
    check_packages(&items, &trackings, &mut errors);
    let shipping_method =
        reference_limited(&input.shipping_method, "shipping_method", None, MAX_SHIPPING_METHOD_LENGTH, &mut errors);
    let fulfillment_change = fulfillment_change(&[], &items);
    check_quantities(po, &fulfillment_change, &items, |id| quantity_field(input, &[], id), &mut errors);

    let (Some(carrier), true) = (carrier, errors.is_empty()) else {
        return Err(errors);
    };
    let new_item_ids = (0..items.len()).collect();
    let new_tracking_ids = (0..trackings.len()).collect();
    let invoiced_at = vendor_invoice_reference.as_ref().map(|_| context.now);
    Ok(ShipmentDraft {
        shipment: Shipment {
            id: ShipmentId::new_unchecked(0),
            purchase_order_id: po.id,
            retailer_id: po.retailer_id,
            vendor_id: po.vendor_id,
            store_id: po.store_id,
            purchase_order_public_reference: po.public_reference.clone(),
            channel_order_id: po.channel_order_id.clone(),
            customer_name: po.customer_name.clone(),
            carrier,
            vendor_invoice_reference,
            shipper_invoice_reference,
            costs,
            items,
            trackings,
            shipping_method,
            created_at: context.now,
            updated_at: context.now,
            invoiced_at,
            sync: SyncState::default(),
            export: ShipmentExport {
                export_override: input.export,
                notify_override: input.notify_customer,
                ..ShipmentExport::default()
            },
            tracking_status: None,
            tracking_status_at: None,
            tracked_by_provider: false,
            events: Vec::new(),
            version: 1,
        },
        new_item_ids,
        new_tracking_ids,
        needs_shipment_id: true,
        fulfillment_change,
    })
}

/// Checks an update request against the shipment's state and purchase order, and builds the
/// shipment as it will be. Locked fields may be sent unchanged; a change to one is refused.
pub fn draft_shipment_update(
    current: &Shipment,
    context: ShipmentContext<'_>,
    input: &ShipmentInput,
) -> Result<ShipmentDraft, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let po = context.purchase_order;
    let mut shipment = current.clone();

    if let Some(carrier) = resolve_carrier(input, context.carriers, &mut errors) {
        shipment.carrier = carrier;
    }
    apply_costs(&mut shipment.costs, input, context.fees, &mut errors);
    shipment.vendor_invoice_reference = reference(
        &input.vendor_invoice_reference,
        "vendor_invoice_reference",
        current.vendor_invoice_reference.clone(),
        &mut errors,
    );
    shipment.shipper_invoice_reference = reference(
        &input.shipper_invoice_reference,
        "shipper_invoice_reference",
        current.shipper_invoice_reference.clone(),
        &mut errors,
    );
    if shipment.vendor_invoice_reference != current.vendor_invoice_reference {
        shipment.invoiced_at = shipment.vendor_invoice_reference.as_ref().map(|_| context.now);
    }

    let mut new_item_ids = Vec::new();
    if let Some(entries) = &input.items {
        let mut items = current.items.clone();
        let mut removed = BTreeSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let field = format!("{ITEMS}[{index}]");
            match entry.id {
                Some(id) => {
                    let Some(position) = items.iter().position(|item| item.id.get() == id) else {
                        errors.push(format!("{field}.id"), format!("{id} is not an item of this shipment"));
                        continue;
                    };
                    if entry.destroy {
                        removed.insert(position);
                    } else {
                        change_item(&mut items[position], entry, &field, &mut errors);
                    }
                }
                None if entry.destroy => {
                    errors.push(format!("{field}.id"), "is required to remove an item");
                }
                None => {
                    if let Some(item) = new_item(entry, &field, po, &items, &mut errors) {
                        new_item_ids.push(items.len());
                        items.push(item);
                    }
                }
            }
        }
        // Removing shifts positions, so new items' positions are recomputed after it.
        let kept: Vec<(bool, ShipmentItem)> = items
            .into_iter()
            .enumerate()
            .filter(|(position, _)| !removed.contains(position))
            .map(|(position, item)| (new_item_ids.contains(&position), item))
            .collect();
        new_item_ids = kept.iter().enumerate().filter(|(_, (new, _))| *new).map(|(i, _)| i).collect();
        shipment.items = kept.into_iter().map(|(_, item)| item).collect();
        if shipment.items.is_empty() {
            errors.push(ITEMS, "must keep at least one item");
        }
    }

    let mut new_tracking_ids = Vec::new();
    if let Some(entries) = &input.trackings {
        let mut trackings: Vec<Option<Tracking>> = current.trackings.iter().cloned().map(Some).collect();
        for (index, entry) in entries.iter().enumerate() {
            let field = format!("{TRACKINGS}[{index}]");
            let number = match (&entry.tracking, entry.destroy) {
                (Some(text), false) => match TrackingNumber::parse(text) {
                    Ok(number) => Some(number),
                    Err(message) => {
                        errors.push(format!("{field}.tracking"), message);
                        continue;
                    }
                },
                _ => None,
            };
            match entry.id {
                Some(id) => {
                    let Some(slot) = trackings.iter_mut().find(|t| t.as_ref().is_some_and(|t| t.id.get() == id)) else {
                        errors.push(format!("{field}.id"), format!("{id} is not a tracking number of this shipment"));
                        continue;
                    };
                    if entry.destroy {
                        *slot = None;
                    } else if let (Some(tracking), Some(number)) = (slot.as_mut(), number) {
                        tracking.tracking = number;
                    }
                }
                None if entry.destroy => errors.push(format!("{field}.id"), "is required to remove a tracking number"),
                None => match number {
                    Some(number) => {
                        new_tracking_ids.push(trackings.len());
                        trackings.push(Some(Tracking { id: TrackingId::new_unchecked(0), tracking: number }));
                    }
                    None => errors.push(format!("{field}.tracking"), "is required"),
                },
            }
        }
        let kept: Vec<(bool, Tracking)> = trackings
            .into_iter()
            .enumerate()
            .filter_map(|(position, tracking)| tracking.map(|t| (new_tracking_ids.contains(&position), t)))
            .collect();
        new_tracking_ids = kept.iter().enumerate().filter(|(_, (new, _))| *new).map(|(i, _)| i).collect();
        shipment.trackings = kept.into_iter().map(|(_, tracking)| tracking).collect();
        if shipment.trackings.is_empty() {
            errors.push(TRACKINGS, "must keep at least one tracking number");
        }
        check_trackings(&shipment.trackings, &mut errors);
        // A number changed in place renames the package its items name (left as it was by the
        // request), so that correcting a parcel's number needs no edit of its items.
        for was in &current.trackings {
            let Some(now) = shipment.trackings.iter().find(|now| now.id == was.id) else { continue };
            if now.tracking.same_parcel(&was.tracking) {
                continue;
            }
            for item in &mut shipment.items {
                let untouched =
                    current.items.iter().any(|before| before.id == item.id && before.package == item.package);
                if untouched && item.package.as_ref().is_some_and(|package| package.same_parcel(&was.tracking)) {
                    item.package = Some(now.tracking.clone());
                }
            }
        }
    }
    check_distinct_serial_codes(&shipment.items, &mut errors);
    check_packages(&shipment.items, &shipment.trackings, &mut errors);
    shipment.shipping_method = reference_limited(
        &input.shipping_method,
        "shipping_method",
        current.shipping_method.clone(),
        MAX_SHIPPING_METHOD_LENGTH,
        &mut errors,
    );
    if input.export.is_some_and(|given| Some(given) != current.export.export_override) {
        errors.push("export", "can only be set when the shipment is created; use the export action to export now");
    }
    if input.notify_customer.is_some_and(|given| Some(given) != current.export.notify_override) {
        errors.push("notify_customer", "can only be set when the shipment is created");
    }

    let fulfillment_change = fulfillment_change(&current.items, &shipment.items);
    check_quantities(
        po,
        &fulfillment_change,
        &shipment.items,
        |id| quantity_field(input, &current.items, id),
        &mut errors,
    );
    let correction = check_locks(current, &shipment, context, &mut errors);
    errors.into_result(())?;
    if let Some(correction) = correction {
        shipment.export.correction = correction;
    }

    shipment.version = current.version + 1;
    shipment.updated_at = context.now;
    Ok(ShipmentDraft { shipment, new_item_ids, new_tracking_ids, needs_shipment_id: false, fulfillment_change })
}

/// `id` and `_destroy` address existing records: a create has none.
fn refuse_update_markers(field: &str, id: Option<u64>, destroy: bool, errors: &mut ValidationErrors) {
    if id.is_some() {
        errors.push(format!("{field}.id"), "must not be given when creating a shipment");
    }
    if destroy {
        errors.push(format!("{field}._destroy"), "must not be given when creating a shipment");
    }
}

/// Refuses changes to the fields that a channel or accounting already received. A tracking
/// correction the channel takes (each number replaced in place, within its window after the
/// export) passes: `Some(correction)` is what the shipment must then send (`Some(None)`: the
/// numbers are back to what the channel holds, nothing to send).
fn check_locks(
    current: &Shipment,
    updated: &Shipment,
    context: ShipmentContext<'_>,
    errors: &mut ValidationErrors,
) -> Option<Option<crate::export::TrackingCorrection>> {
    let mut correction = None;
    if let Some(lock) = current.shipping_details_lock() {
        let why = lock.reason();
        if updated.carrier.id != current.carrier.id {
            errors.push("shipper_id", why);
        }
        let corrected = (lock == ShippingLock::Exported && updated.trackings != current.trackings)
            .then(|| tracking_correction(current, updated, context))
            .flatten();
        let items_changed = match lock {
            ShippingLock::Attempted => !only_serial_codes_added(&current.items, &updated.items),
            // A corrected number renames the package its items name.
            ShippingLock::Exported if corrected.is_some() => {
                !same_items_renamed(&current.items, &updated.items, &current.trackings, &updated.trackings)
            }
            ShippingLock::Exported | ShippingLock::Exporting => updated.items != current.items,
        };
        if items_changed {
            errors.push(ITEMS, why);
        }
        match corrected {
            Some(Ok(next)) => correction = Some(next),
            Some(Err(closed)) => errors.push(TRACKINGS, format!("{why} ({closed})")),
            None if updated.trackings != current.trackings => errors.push(TRACKINGS, why),
            None => {}
        }
        if updated.shipping_method != current.shipping_method {
            errors.push("shipping_method", why);
        }
    }
    if current.sync.accounting_details_locked() {
        let why = "is readonly: the shipment has been synced to accounting";
        let costs = [
            ("vendor_shipping_cost", current.costs.vendor_shipping, updated.costs.vendor_shipping),
            ("vendor_handling_cost", current.costs.vendor_handling, updated.costs.vendor_handling),
            ("vendor_tax_cost", current.costs.vendor_tax, updated.costs.vendor_tax),
            ("shipper_shipping_cost", current.costs.shipper_shipping, updated.costs.shipper_shipping),
        ];
        for (field, before, after) in costs {
            if before != after {
                errors.push(field, why);
            }
        }
        if updated.vendor_invoice_reference != current.vendor_invoice_reference {
            errors.push("vendor_invoice_reference", why);
        }
        if updated.shipper_invoice_reference != current.shipper_invoice_reference {
            errors.push("shipper_invoice_reference", why);
        }
    }
    correction
}

/// The correction an exported shipment's new tracking numbers call for, where its channel takes
/// one: `Ok(None)` when the numbers are back to what the channel holds; `Err(why not)` once the
/// window has closed; `None` when the change is no correction (numbers added or removed) or the
/// channel takes none.
fn tracking_correction(
    current: &Shipment,
    updated: &Shipment,
    context: ShipmentContext<'_>,
) -> Option<Result<Option<crate::export::TrackingCorrection>, String>> {
    let window = context.tracking_corrections?;
    let ExportState::Exported { exported_at, .. } = &current.export.state else { return None };
    let same_records = current.trackings.len() == updated.trackings.len()
        && current.trackings.iter().all(|was| updated.trackings.iter().any(|now| now.id == was.id));
    if !same_records {
        return None;
    }
    let closes = *exported_at + window;
    if context.now >= closes {
        return Some(Err(format!(
            "its channel took tracking corrections until {}, {} hours after the export",
            closes.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            window.num_hours()
        )));
    }
    // What the channel holds for each record: as the pending correction says, else as exported.
    let held = |tracking: &Tracking| {
        current
            .export
            .correction
            .as_ref()
            .and_then(|pending| pending.holds(tracking.id))
            .unwrap_or_else(|| tracking.tracking.clone())
    };
    let replaced: Vec<(TrackingId, TrackingNumber)> = current
        .trackings
        .iter()
        .filter_map(|was| {
            let now = updated.trackings.iter().find(|now| now.id == was.id)?;
            let holds = held(was);
            (!now.tracking.same_parcel(&holds)).then_some((was.id, holds))
        })
        .collect();
    Some(Ok((!replaced.is_empty()).then(|| crate::export::TrackingCorrection {
        requested_at: context.now,
        channel_holds: replaced,
        sending_since: None,
        attempts: current.export.correction.as_ref().map_or(0, |pending| pending.attempts),
        refused: None,
    })))
}

/// Whether `after` is `before` with the packages its items name renamed as the tracking records
/// were (a record keeps its id when its number is corrected).
fn same_items_renamed(
    before: &[ShipmentItem],
    after: &[ShipmentItem],
    trackings_before: &[Tracking],
    trackings_after: &[Tracking],
) -> bool {
    let renamed = |package: &Option<TrackingNumber>| {
        package.as_ref().map(|number| {
            trackings_before
                .iter()
                .find(|was| was.tracking.same_parcel(number))
                .and_then(|was| trackings_after.iter().find(|now| now.id == was.id))
                .map_or_else(|| number.clone(), |now| now.tracking.clone())
        })
    };
    before.len() == after.len()
        && before
            .iter()
            .zip(after)
            .all(|(was, now)| ShipmentItem { package: renamed(&was.package), ..was.clone() } == *now || was == now)
}

/// Whether `after` is `before` with, at most, serial codes given to items that had none, or
/// that still lack the IMEI their channel asks for (a confirmation without it is refused before
/// anything is sent, so the channel has none of it).
fn only_serial_codes_added(before: &[ShipmentItem], after: &[ShipmentItem]) -> bool {
    before.len() == after.len()
        && before.iter().zip(after).all(|(was, now)| {
            let open = was.serial_codes.is_empty() || lacks_imei(was.needs_imei, was.quantity, &was.serial_codes);
            was == now || (open && ShipmentItem { serial_codes: was.serial_codes.clone(), ..now.clone() } == *was)
        })
}

impl ValidationErrors {
    /// Whether a problem names the carrier fields (an unknown carrier, say).
    pub fn mentions_carrier(&self) -> bool {
        ["shipper_id", "shipper_name", "shipper_scac_code"].iter().any(|field| self.mentions(field))
    }
}

/// Resolves the carrier a request names, if it names one; exactly one way of naming is allowed.
fn resolve_carrier(input: &ShipmentInput, carriers: &[Carrier], errors: &mut ValidationErrors) -> Option<Carrier> {
    let blank = |text: &Option<String>| text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    let mut given = Vec::new();
    if let Some(id) = input.shipper_id {
        match check_id(id) {
            Ok(id) => given.push(CarrierRef::Id(CarrierId::new_unchecked(id))),
            Err(problem) => {
                errors.push("shipper_id", problem.to_string());
                return None;
            }
        }
    }
    if let Some(name) = blank(&input.shipper_name) {
        given.push(CarrierRef::Name(name));
    }
    if let Some(code) = blank(&input.shipper_scac_code) {
        given.push(CarrierRef::Scac(code));
    }
    match given.as_slice() {
        [] => None,
        [reference] => {
            let found = reference.resolve(carriers).cloned();
            if found.is_none() {
                errors.push(
                    reference.field(),
                    format!("{} does not match a carrier of this retailer", reference.describe()),
                );
            }
            found
        }
        several => {
            let fields: Vec<&str> = several.iter().map(CarrierRef::field).collect();
            errors.push(
                fields[0],
                format!("give only one of shipper_id, shipper_name or shipper_scac_code, not {}", fields.join(" and ")),
            );
            None
        }
    }
}

fn apply_costs(costs: &mut ShipmentCosts, input: &ShipmentInput, fees: FeeSettings, errors: &mut ValidationErrors) {
    let fields = [
        (
            "vendor_shipping_cost",
            &input.vendor_shipping_cost,
            &mut costs.vendor_shipping,
            fees.shipping,
            "shipping fees",
        ),
        (
            "vendor_handling_cost",
            &input.vendor_handling_cost,
            &mut costs.vendor_handling,
            fees.handling,
            "handling fees",
        ),
        ("vendor_tax_cost", &input.vendor_tax_cost, &mut costs.vendor_tax, fees.tax, "taxes"),
        ("shipper_shipping_cost", &input.shipper_shipping_cost, &mut costs.shipper_shipping, true, ""),
    ];
    for (field, patch, target, enabled, fee_type) in fields {
        match patch {
            Patch::Keep => {}
            Patch::Clear => *target = None,
            Patch::Set(text) => match parse_cost_text(text) {
                Ok(Some(_)) if !enabled => {
                    errors.push(field, format!("cannot be set: {fee_type} are not enabled for this retailer"))
                }
                Ok(value) => *target = value,
                Err(message) => errors.push(field, message),
            },
        }
    }
}

fn reference(
    patch: &Patch<String>,
    field: &str,
    current: Option<String>,
    errors: &mut ValidationErrors,
) -> Option<String> {
    reference_limited(patch, field, current, MAX_REFERENCE_LENGTH, errors)
}

/// A text field: kept, cleared, or set (trimmed; blank clears; at most `limit` characters).
fn reference_limited(
    patch: &Patch<String>,
    field: &str,
    current: Option<String>,
    limit: usize,
    errors: &mut ValidationErrors,
) -> Option<String> {
    match patch {
        Patch::Keep => current,
        Patch::Clear => None,
        Patch::Set(text) => {
            let text = text.trim();
            if text.chars().count() > limit {
                errors.push(field, format!("must be at most {limit} characters"));
                return current;
            } else if text.chars().any(char::is_control) && current.as_deref() != Some(text) {
                // A value stored before this rule may be sent back unchanged.
                errors.push(field, "must not contain control characters");
                return current;
            }
            (!text.is_empty()).then(|| text.to_owned())
        }
    }
}

/// Checks a new shipment item and builds it (without its id).
fn new_item(
    entry: &ItemInput,
    field: &str,
    po: &PurchaseOrder,
    existing: &[ShipmentItem],
    errors: &mut ValidationErrors,
) -> Option<ShipmentItem> {
    let Some(order_item_id) = entry.order_item_id else {
        errors.push(format!("{field}.order_item_id"), "is required");
        return None;
    };
    let Some(order_item) = check_id(order_item_id).ok().and_then(|id| po.item(OrderItemId::new_unchecked(id))) else {
        errors.push(
            format!("{field}.order_item_id"),
            format!("{order_item_id} is not an item of purchase order {}", po.id),
        );
        return None;
    };
    let package = package_of(entry.package_tracking.as_deref(), field, errors)?;
    // One order item may be split over packages: once per package.
    if existing.iter().any(|item| item.order_item_id == order_item.id && same_package(&item.package, &package)) {
        errors.push(
            format!("{field}.order_item_id"),
            format!("{order_item_id} is already on this shipment: change that item's quantity instead"),
        );
        return None;
    }
    let Some(quantity) = entry.quantity else {
        errors.push(format!("{field}.quantity"), "is required");
        return None;
    };
    let quantity = check_quantity(quantity, &format!("{field}.quantity"), errors)?;
    let serial_codes = match &entry.serial_codes {
        Some(codes) => check_serial_codes(codes, quantity, &format!("{field}.serial_codes"), errors)?,
        None => Vec::new(),
    };
    Some(ShipmentItem {
        id: ShipmentItemId::new_unchecked(0),
        order_item_id: order_item.id,
        quantity,
        cost: order_item.cost,
        order_item_name: order_item.name.clone(),
        sku: order_item.sku.clone(),
        channel_line_item_id: order_item.channel_line_item_id.clone(),
        serial_codes,
        package,
        needs_imei: order_item.needs_imei,
    })
}

/// The package a request names for an item: `Ok(None)` when it names none (or `""`).
#[allow(clippy::option_option)]
fn package_of(given: Option<&str>, field: &str, errors: &mut ValidationErrors) -> Option<Option<TrackingNumber>> {
    match given.map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => match TrackingNumber::parse(text) {
            Ok(number) => Some(Some(number)),
            Err(message) => {
                errors.push(format!("{field}.package_tracking"), message);
                None
            }
        },
    }
}

fn same_package(a: &Option<TrackingNumber>, b: &Option<TrackingNumber>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_parcel(b),
        (None, None) => true,
        _ => false,
    }
}

/// Items name packages all or none, and each named package is one of the shipment's tracking numbers.
fn check_packages(items: &[ShipmentItem], trackings: &[Tracking], errors: &mut ValidationErrors) {
    let named = items.iter().filter(|item| item.package.is_some()).count();
    if named == 0 {
        return;
    }
    if named < items.len() {
        errors.push(ITEMS, "either every item names its package_tracking or none does");
    }
    for (index, item) in items.iter().enumerate() {
        if let Some(package) = &item.package
            && !trackings.iter().any(|tracking| tracking.tracking.same_parcel(package))
        {
            errors.push(
                format!("{ITEMS}[{index}].package_tracking"),
                format!("{:?} is not a tracking number of this shipment", package.as_str()),
            );
        }
    }
}

fn change_item(item: &mut ShipmentItem, entry: &ItemInput, field: &str, errors: &mut ValidationErrors) {
    if let Some(order_item_id) = entry.order_item_id
        && order_item_id != item.order_item_id.get()
    {
        errors.push(format!("{field}.order_item_id"), "cannot be changed: remove the item (_destroy) and add another");
    }
    if let Some(quantity) = entry.quantity
        && let Some(quantity) = check_quantity(quantity, &format!("{field}.quantity"), errors)
    {
        item.quantity = quantity;
    }
    if let Some(codes) = &entry.serial_codes
        && let Some(codes) = check_serial_codes(codes, item.quantity, &format!("{field}.serial_codes"), errors)
    {
        item.serial_codes = codes;
    }
    if entry.package_tracking.is_some()
        && let Some(package) = package_of(entry.package_tracking.as_deref(), field, errors)
    {
        item.package = package;
    }
    if entry.serial_codes.is_none() && item.serial_codes.len() > item.quantity as usize {
        errors.push(
            format!("{field}.serial_codes"),
            format!("has {} codes, more than the quantity of {}", item.serial_codes.len(), item.quantity),
        );
    }
}

fn check_quantity(quantity: i64, field: &str, errors: &mut ValidationErrors) -> Option<u32> {
    match u32::try_from(quantity) {
        Ok(value) if value >= 1 => Some(value),
        _ if quantity < 1 => {
            errors.push(field, "must be at least 1");
            None
        }
        _ => {
            errors.push(field, "is too large");
            None
        }
    }
}

fn check_serial_codes(
    codes: &[String],
    quantity: u32,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<Vec<String>> {
    let mut checked = Vec::with_capacity(codes.len());
    let mut ok = true;
    for (index, code) in codes.iter().enumerate() {
        let code = code.trim();
        if code.is_empty() {
            errors.push(format!("{field}[{index}]"), "must not be blank");
            ok = false;
        } else if code.chars().count() > MAX_SERIAL_CODE_LENGTH || code.chars().any(char::is_control) {
            errors.push(
                format!("{field}[{index}]"),
                format!("must be at most {MAX_SERIAL_CODE_LENGTH} printable characters"),
            );
            ok = false;
        } else {
            checked.push(code.to_owned());
        }
    }
    if codes.len() > quantity as usize {
        errors.push(field, format!("has {} codes, more than the quantity of {quantity}", codes.len()));
        ok = false;
    }
    ok.then_some(checked)
}

/// At most [`MAX_TRACKINGS`] packages, each number once.
fn check_trackings(trackings: &[Tracking], errors: &mut ValidationErrors) {
    if trackings.len() > MAX_TRACKINGS {
        errors.push(TRACKINGS, format!("must have at most {MAX_TRACKINGS} tracking numbers"));
    }
    let mut seen = BTreeSet::new();
    for tracking in trackings {
        if !seen.insert(tracking.tracking.key()) {
            errors.push(TRACKINGS, format!("has {:?} more than once", tracking.tracking.as_str()));
        }
    }
}

fn check_distinct_serial_codes(items: &[ShipmentItem], errors: &mut ValidationErrors) {
    let mut seen = BTreeSet::new();
    for code in items.iter().flat_map(|item| &item.serial_codes) {
        if !seen.insert(code.as_str()) {
            errors.push(ITEMS, format!("has serial code {code:?} more than once"));
        }
    }
}

/// The change in fulfilled quantity per order item when a shipment's items go from `before` to `after`.
pub fn fulfillment_change(before: &[ShipmentItem], after: &[ShipmentItem]) -> FulfillmentChange {
    let mut change: BTreeMap<OrderItemId, i64> = BTreeMap::new();
    for item in before {
        *change.entry(item.order_item_id).or_default() -= i64::from(item.quantity);
    }
    for item in after {
        *change.entry(item.order_item_id).or_default() += i64::from(item.quantity);
    }
    change.retain(|_, delta| *delta != 0);
    change
}

/// Checks that the purchase order can take the change: nothing fulfilled beyond what was ordered.
fn check_quantities(
    po: &PurchaseOrder,
    change: &FulfillmentChange,
    items: &[ShipmentItem],
    field_of: impl Fn(OrderItemId) -> String,
    errors: &mut ValidationErrors,
) {
    for (order_item_id, delta) in change {
        let Some(order_item) = po.item(*order_item_id) else { continue };
        if *delta > i64::from(order_item.unfulfilled()) {
            let requested = items
                .iter()
                .filter(|item| item.order_item_id == *order_item_id)
                .map(|item| i64::from(item.quantity))
                .sum::<i64>();
            // What this shipment may hold: what is unfulfilled plus what it already had.
            let available = i64::from(order_item.unfulfilled()) + requested - delta;
            errors.push(
                field_of(*order_item_id),
                format!("{requested} exceeds the {available} still unfulfilled of order item {order_item_id}"),
            );
        }
    }
}

/// The request field that set the quantity of an order item, for error messages.
fn quantity_field(input: &ShipmentInput, current: &[ShipmentItem], order_item_id: OrderItemId) -> String {
    let entries = input.items.as_deref().unwrap_or_default();
    let position = entries.iter().position(|entry| {
        entry.order_item_id == Some(order_item_id.get())
            || current.iter().any(|item| Some(item.id.get()) == entry.id && item.order_item_id == order_item_id)
    });
    match position {
        Some(index) => format!("{ITEMS}[{index}].quantity"),
        None => ITEMS.to_owned(),
    }
}

#[cfg(test)]
mod tests;
