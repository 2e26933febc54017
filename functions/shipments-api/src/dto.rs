//! The API's JSON, as Duoplane writes it, and its translation to and from the domain.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny};
use serde::{Deserialize, Serialize};
use shipsync_domain::export::ExportState;
use shipsync_domain::money::format_cost;
use shipsync_domain::purchase_order::{OrderItem, PurchaseOrder};
use shipsync_domain::shipment::{ItemInput, Patch, Shipment, ShipmentInput, TrackingInput};
use shipsync_domain::tenant::FeeSettings;
use shipsync_domain::time::format_api_time;
use shipsync_domain::vocabulary::ChannelOrderId;
use shipsync_table::{SearchCursor, SearchPage};

/// `{"shipment": {...}}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentEnvelope {
    pub shipment: ShipmentBody,
}

/// A shipment as a create or update request writes it. The readonly fields of a response are
/// accepted too, so that a client may send back what it read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentBody {
    #[serde(default, deserialize_with = "flexible_id")]
    pub shipper_id: Option<u64>,
    #[serde(default)]
    pub shipper_name: Option<String>,
    #[serde(default)]
    pub shipper_scac_code: Option<String>,
    #[serde(default, deserialize_with = "text_patch")]
    pub vendor_invoice_reference: Patch<String>,
    #[serde(default, deserialize_with = "text_patch")]
    pub shipper_invoice_reference: Patch<String>,
    #[serde(default, deserialize_with = "cost_patch")]
    pub vendor_shipping_cost: Patch<String>,
    #[serde(default, deserialize_with = "cost_patch")]
    pub vendor_handling_cost: Patch<String>,
    #[serde(default, deserialize_with = "cost_patch")]
    pub vendor_tax_cost: Patch<String>,
    #[serde(default, deserialize_with = "cost_patch")]
    pub shipper_shipping_cost: Patch<String>,
    #[serde(default)]
    pub shipment_items_attributes: Option<Vec<ItemBody>>,
    #[serde(default)]
    pub shipment_trackings_attributes: Option<Vec<TrackingBody>>,
    /// The carrier's service (`Ground`); sent where the channel takes one (Amazon).
    #[serde(default, deserialize_with = "text_patch")]
    pub shipping_method: Patch<String>,
    /// Create only: export automatically or not, whatever the store says.
    #[serde(default)]
    pub export: Option<bool>,
    /// Create only: whether the channel notifies the customer, whatever the vendor and store say.
    #[serde(default)]
    pub notify_customer: Option<bool>,

    // Readonly: checked against the record (id, purchase order) or ignored (the rest).
    #[serde(default, deserialize_with = "flexible_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "flexible_id")]
    pub purchase_order_id: Option<u64>,
    #[serde(default, rename = "purchase_order_public_reference")]
    _purchase_order_public_reference: Option<IgnoredAny>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
    #[serde(default, rename = "invoiced_at")]
    _invoiced_at: Option<IgnoredAny>,
    #[serde(default, rename = "retailer_id")]
    _retailer_id: Option<IgnoredAny>,
    #[serde(default, rename = "vendor_id")]
    _vendor_id: Option<IgnoredAny>,
    #[serde(default, rename = "exported_at")]
    _exported_at: Option<IgnoredAny>,
    #[serde(default, rename = "export_state")]
    _export_state: Option<IgnoredAny>,
    #[serde(default, rename = "export_due_at")]
    _export_due_at: Option<IgnoredAny>,
    #[serde(default, rename = "export_error")]
    _export_error: Option<IgnoredAny>,
    #[serde(default, rename = "exported_channel_ids")]
    _exported_channel_ids: Option<IgnoredAny>,
    #[serde(default, rename = "tracking_status")]
    _tracking_status: Option<IgnoredAny>,
    #[serde(default, rename = "trackers_pending")]
    _trackers_pending: Option<IgnoredAny>,
    #[serde(default, rename = "tracking_correction")]
    _tracking_correction: Option<IgnoredAny>,
    #[serde(default, rename = "accounting_synced_at")]
    _accounting_synced_at: Option<IgnoredAny>,
    #[serde(default, rename = "purchase_order")]
    _purchase_order: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    #[serde(default, deserialize_with = "flexible_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "flexible_id")]
    pub order_item_id: Option<u64>,
    #[serde(default, deserialize_with = "flexible_integer")]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub serial_codes: Option<Vec<String>>,
    /// The tracking number of the package holding these units.
    #[serde(default)]
    pub package_tracking: Option<String>,
    #[serde(default, rename = "_destroy", deserialize_with = "flexible_bool")]
    pub destroy: bool,
    // Readonly, copied from the order item.
    #[serde(default, rename = "cost")]
    _cost: Option<IgnoredAny>,
    #[serde(default, rename = "order_item_name")]
    _order_item_name: Option<IgnoredAny>,
    #[serde(default, rename = "sku")]
    _sku: Option<IgnoredAny>,
    #[serde(default, rename = "needs_imei")]
    _needs_imei: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingBody {
    #[serde(default, deserialize_with = "flexible_id")]
    pub id: Option<u64>,
    #[serde(default)]
    pub tracking: Option<String>,
    #[serde(default, rename = "_destroy", deserialize_with = "flexible_bool")]
    pub destroy: bool,
}

impl ShipmentBody {
    pub fn into_input(self) -> ShipmentInput {
        ShipmentInput {
            shipper_id: self.shipper_id,
            shipper_name: self.shipper_name,
            shipper_scac_code: self.shipper_scac_code,
            vendor_invoice_reference: self.vendor_invoice_reference,
            shipper_invoice_reference: self.shipper_invoice_reference,
            vendor_shipping_cost: self.vendor_shipping_cost,
            vendor_handling_cost: self.vendor_handling_cost,
            vendor_tax_cost: self.vendor_tax_cost,
            shipper_shipping_cost: self.shipper_shipping_cost,
            items: self.shipment_items_attributes.map(|items| {
                items
                    .into_iter()
                    .map(|item| ItemInput {
                        id: item.id,
                        order_item_id: item.order_item_id,
                        quantity: item.quantity,
                        serial_codes: item.serial_codes,
                        package_tracking: item.package_tracking,
                        destroy: item.destroy,
                    })
                    .collect()
            }),
            export: self.export,
            notify_customer: self.notify_customer,
            shipping_method: self.shipping_method,
            trackings: self.shipment_trackings_attributes.map(|trackings| {
                trackings
                    .into_iter()
                    .map(|tracking| TrackingInput {
                        id: tracking.id,
                        tracking: tracking.tracking,
                        destroy: tracking.destroy,
                    })
                    .collect()
            }),
        }
    }
}

/// A number or a numeric string, as Rails-style clients send ids; `null` is absent.
fn flexible_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match flexible_integer(deserializer)? {
        None => Ok(None),
        Some(value) => u64::try_from(value).map(Some).map_err(|_| de::Error::custom("an id must not be negative")),
    }
}

enum NumberOrText {
    Integer(i64),
    Text(String),
    Other(serde_json::Number),
}

/// Reads a number or a string (or `null`), with an error that says what was expected.
fn number_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NumberOrText>, D::Error> {
    use serde_json::Value;
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => Ok(Some(match number.as_i64() {
            Some(integer) => NumberOrText::Integer(integer),
            None => NumberOrText::Other(number),
        })),
        Some(Value::String(text)) => Ok(Some(NumberOrText::Text(text))),
        Some(Value::Bool(_)) => Err(de::Error::custom("expected a number or a numeric string, got a boolean")),
        Some(Value::Array(_)) => Err(de::Error::custom("expected a number or a numeric string, got an array")),
        Some(Value::Object(_)) => Err(de::Error::custom("expected a number or a numeric string, got an object")),
    }
}

/// A whole number, or a string holding one; `null` is absent.
fn flexible_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match number_or_text(deserializer)? {
        None => Ok(None),
        Some(NumberOrText::Integer(value)) => Ok(Some(value)),
        Some(NumberOrText::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(NumberOrText::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected a whole number, got {text:?}"))),
        Some(NumberOrText::Other(number)) => Err(de::Error::custom(format!("expected a whole number, got {number}"))),
    }
}

/// `true`/`false`, `1`/`0` or their strings, as Rails reads `_destroy`.
fn flexible_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolLike {
        Bool(bool),
        Integer(i64),
        Text(String),
    }
    match Option::<BoolLike>::deserialize(deserializer)? {
        None => Ok(false),
        Some(BoolLike::Bool(value)) => Ok(value),
        Some(BoolLike::Integer(value)) => Ok(value != 0),
        Some(BoolLike::Text(text)) => match text.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" | "" => Ok(false),
            other => Err(de::Error::custom(format!("expected true or false, got {other:?}"))),
        },
    }
}

/// A text field of an update: absent keeps it, `null` clears it.
fn text_patch<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Patch<String>, D::Error> {
    Ok(match Option::<String>::deserialize(deserializer)? {
        None => Patch::Clear,
        Some(text) => Patch::Set(text),
    })
}

/// A cost: a JSON number, a numeric string, `""` or `null` (no cost). The domain parses the text.
fn cost_patch<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Patch<String>, D::Error> {
    Ok(match number_or_text(deserializer)? {
        None => Patch::Clear,
        Some(NumberOrText::Integer(value)) => Patch::Set(value.to_string()),
        Some(NumberOrText::Other(number)) => Patch::Set(number.to_string()),
        Some(NumberOrText::Text(text)) => Patch::Set(text),
    })
}

/// A shipment as responses show it (Duoplane's Shipment object).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ShipmentView {
    pub id: u64,
    pub purchase_order_id: u64,
    pub purchase_order_public_reference: String,
    pub retailer_id: u64,
    pub vendor_id: u64,
    pub created_at: String,
    pub updated_at: String,
    pub shipper_id: u64,
    pub shipper_name: String,
    pub shipper_scac_code: Option<String>,
    pub vendor_invoice_reference: Option<String>,
    pub invoiced_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_shipping_cost: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_handling_cost: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_tax_cost: Option<Option<String>>,
    pub shipper_invoice_reference: Option<String>,
    pub shipper_shipping_cost: Option<String>,
    /// When the shipment went to its sales channel; from then on carrier, items and tracking are readonly.
    pub exported_at: Option<String>,
    /// When the shipment went to accounting; from then on costs and invoice references are readonly.
    pub accounting_synced_at: Option<String>,
    /// manual, scheduled, waiting_for_order, exporting, exported or export_failed.
    pub export_state: &'static str,
    /// When a scheduled export is due.
    pub export_due_at: Option<String>,
    /// Why the export failed, or the last problem of one being retried.
    pub export_error: Option<String>,
    /// The channel's ids for what it recorded.
    pub exported_channel_ids: Vec<String>,
    /// The overrides given at creation (`null`: follow the store, then the vendor).
    pub export: Option<bool>,
    pub notify_customer: Option<bool>,
    /// What the carrier last reported: unknown, pre_transit, in_transit, out_for_delivery, exception, delivered.
    pub tracking_status: Option<&'static str>,
    pub shipping_method: Option<String>,
    /// Waiting for movement: the tracking numbers not yet registered with the store's tracking provider.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trackers_pending: Vec<String>,
    /// Tracking corrected after the export, where the channel takes corrections (Walmart,
    /// within 4 hours): `pending` until the channel has it, or `refused` with the channel's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_correction: Option<CorrectionView>,
    pub shipment_trackings_attributes: Vec<TrackingView>,
    pub shipment_items_attributes: Vec<ItemView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<PurchaseOrderView>,
}

/// A tracking correction not yet at the channel.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CorrectionView {
    pub state: &'static str,
    pub requested_at: String,
    /// The numbers the channel still holds, to be replaced.
    pub channel_holds: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TrackingView {
    pub id: u64,
    pub tracking: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ItemView {
    pub id: u64,
    pub order_item_id: u64,
    pub quantity: u32,
    pub cost: Option<String>,
    pub order_item_name: String,
    pub sku: String,
    pub serial_codes: Vec<String>,
    pub package_tracking: Option<String>,
    /// The channel asks an IMEI per unit (Back Market's phones).
    pub needs_imei: bool,
}

fn cost(value: Option<Decimal>) -> Option<String> {
    value.map(format_cost)
}

/// A fee the retailer has turned off is left out; one that is on shows, even when empty.
fn fee(enabled: bool, value: Option<Decimal>) -> Option<Option<String>> {
    enabled.then(|| cost(value))
}

impl ShipmentView {
    pub fn new(shipment: &Shipment, fees: FeeSettings) -> Self {
        Self {
            id: shipment.id.get(),
            purchase_order_id: shipment.purchase_order_id.get(),
            purchase_order_public_reference: shipment.purchase_order_public_reference.clone(),
            retailer_id: shipment.retailer_id.get(),
            vendor_id: shipment.vendor_id.get(),
            created_at: format_api_time(shipment.created_at),
            updated_at: format_api_time(shipment.updated_at),
            shipper_id: shipment.carrier.id.get(),
            shipper_name: shipment.carrier.name.clone(),
            shipper_scac_code: shipment.carrier.scac_code.clone(),
            vendor_invoice_reference: shipment.vendor_invoice_reference.clone(),
            invoiced_at: shipment.invoiced_at.map(format_api_time),
            vendor_shipping_cost: fee(fees.shipping, shipment.costs.vendor_shipping),
            vendor_handling_cost: fee(fees.handling, shipment.costs.vendor_handling),
            vendor_tax_cost: fee(fees.tax, shipment.costs.vendor_tax),
            shipper_invoice_reference: shipment.shipper_invoice_reference.clone(),
            shipper_shipping_cost: cost(shipment.costs.shipper_shipping),
            exported_at: shipment.sync.exported_at.map(format_api_time),
            accounting_synced_at: shipment.sync.accounting_synced_at.map(format_api_time),
            export_state: shipment.export.state.name(),
            export_due_at: match &shipment.export.state {
                ExportState::Scheduled { due_at } => Some(format_api_time(*due_at)),
                _ => None,
            },
            export_error: match &shipment.export.state {
                ExportState::Failed { message, .. } => Some(message.clone()),
                _ => shipment.export.last_error.clone(),
            },
            exported_channel_ids: match &shipment.export.state {
                ExportState::Exported { channel_ids, .. } => channel_ids.clone(),
                _ => Vec::new(),
            },
            export: shipment.export.export_override,
            notify_customer: shipment.export.notify_override,
            tracking_status: shipment.tracking_status.map(|status| status.name()),
            shipping_method: shipment.shipping_method.clone(),
            trackers_pending: match &shipment.export.state {
                ExportState::WaitingForMovement(watch) => watch.unregistered.iter().map(ToString::to_string).collect(),
                _ => Vec::new(),
            },
            tracking_correction: shipment.export.correction.as_ref().map(|correction| CorrectionView {
                state: if correction.refused.is_some() { "refused" } else { "pending" },
                requested_at: format_api_time(correction.requested_at),
                channel_holds: correction.channel_holds.iter().map(|(_, number)| number.to_string()).collect(),
                error: correction.refused.clone(),
            }),
            shipment_trackings_attributes: shipment
                .trackings
                .iter()
                .map(|t| TrackingView { id: t.id.get(), tracking: t.tracking.to_string() })
                .collect(),
            shipment_items_attributes: shipment
                .items
                .iter()
                .map(|item| ItemView {
                    id: item.id.get(),
                    order_item_id: item.order_item_id.get(),
                    quantity: item.quantity,
                    cost: cost(item.cost),
                    order_item_name: item.order_item_name.clone(),
                    sku: item.sku.clone(),
                    serial_codes: item.serial_codes.clone(),
                    package_tracking: item.package.as_ref().map(ToString::to_string),
                    needs_imei: item.needs_imei,
                })
                .collect(),
            purchase_order: None,
        }
    }
}

/// A purchase order with its items and how much of each is fulfilled.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PurchaseOrderView {
    pub id: u64,
    pub public_reference: String,
    pub retailer_id: u64,
    pub vendor_id: u64,
    pub store_id: u64,
    pub channel_order_id: Option<String>,
    pub customer_name: String,
    pub fully_fulfilled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub order_items: Vec<OrderItemView>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OrderItemView {
    pub id: u64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub quantity_fulfilled: u32,
    pub quantity_unfulfilled: u32,
    /// Units cancelled (at the channel, or by a cancellation in shipsync).
    pub quantity_cancelled: u32,
    pub cost: Option<String>,
    pub channel_line_item_id: Option<String>,
}

impl PurchaseOrderView {
    pub fn new(po: &PurchaseOrder) -> Self {
        Self {
            id: po.id.get(),
            public_reference: po.public_reference.clone(),
            retailer_id: po.retailer_id.get(),
            vendor_id: po.vendor_id.get(),
            store_id: po.store_id.get(),
            channel_order_id: po.channel_order_id.as_ref().map(ChannelOrderId::to_string),
            customer_name: po.customer_name.clone(),
            fully_fulfilled: po.is_fully_fulfilled(),
            created_at: format_api_time(po.created_at),
            updated_at: format_api_time(po.updated_at),
            order_items: po.items.iter().map(OrderItemView::new).collect(),
        }
    }
}

impl OrderItemView {
    fn new(item: &OrderItem) -> Self {
        Self {
            id: item.id.get(),
            sku: item.sku.clone(),
            name: item.name.clone(),
            quantity: item.quantity,
            quantity_fulfilled: item.quantity_fulfilled,
            quantity_unfulfilled: item.unfulfilled(),
            quantity_cancelled: item.quantity_cancelled,
            cost: cost(item.cost),
            channel_line_item_id: item.channel_line_item_id.clone(),
        }
    }
}

/// Paging figures of a list response.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Metadata {
    /// Every match when `total_count_exact`; else at least this many: a search reads the page
    /// and a bounded number of entries past it, never a whole listing.
    pub total_count: u64,
    pub total_count_exact: bool,
    /// Whether the next page number shows more (Duoplane's paging). A filter that could not
    /// fill this page within the search budget may match more all the same: `next_cursor` says.
    pub has_next_page: bool,
    pub page: u32,
    pub per_page: u32,
    /// Where the next page starts, when more may match: send it back as `cursor` (with the same
    /// filters) to go on in bounded steps, even where a rare filter could not fill this page.
    pub next_cursor: Option<String>,
}

impl Metadata {
    /// The figures for a page that shows `shown` of its records.
    pub fn for_page<T>(paging: shipsync_domain::search::Paging, shown: usize, page: &SearchPage<T>) -> Self {
        Self {
            total_count: page.total_count,
            total_count_exact: page.total_count_exact,
            has_next_page: paging.offset() + (shown as u64) < page.total_count,
            page: paging.page,
            per_page: paging.per_page,
            next_cursor: page.next_cursor.as_ref().map(SearchCursor::encode),
        }
    }
}
