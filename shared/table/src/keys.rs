//! Key values for every record kind. See `schema.rs` for the layout they make up.

use chrono::{DateTime, Utc};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, ShipmentId, VendorId};
use shipsync_domain::time::sortable_time;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

pub fn retailer(id: RetailerId) -> String {
    format!("RETAILER#{id}")
}
pub const RETAILER_PROFILE: &str = "#PROFILE";
/// Every sort key of a retailer's partition below this one is its profile or a carrier.
pub const CARRIERS_END: &str = "CARRIER$";
pub fn carrier(id: u64) -> String {
    format!("CARRIER#{id}")
}
pub fn vendor(id: VendorId) -> String {
    format!("VENDOR#{id}")
}
pub fn store(id: u64) -> String {
    format!("STORE#{id}")
}
pub fn store_secret(id: shipsync_domain::ids::StoreId) -> String {
    format!("STORESECRET#{id}")
}
pub fn channel_order(store: shipsync_domain::ids::StoreId, channel_order_id: &str) -> String {
    format!("ORDER#{store}#{channel_order_id}")
}
pub fn store_ref(id: shipsync_domain::ids::StoreId) -> String {
    format!("STOREREF#{id}")
}
pub const STORE_REF: &str = "STORE";
/// The Amazon store a seller's notifications in a marketplace go to: one per seller and marketplace.
pub fn amazon_seller(seller_id: &str, marketplace_id: &str) -> String {
    format!("AMAZONSELLER#{seller_id}#{marketplace_id}")
}
/// A channel fulfillment reverse sync applied (made a shipment of): one per store and id.
pub fn channel_fulfillment(store: shipsync_domain::ids::StoreId, fulfillment: &str) -> String {
    format!("CHANNELFULFILLMENT#{store}#{fulfillment}")
}
pub const CHANNEL_FULFILLMENT: &str = "APPLIED";
pub fn product(sku: &str) -> String {
    format!("PRODUCT#{sku}")
}
pub fn problem(key: &str) -> String {
    format!("PROBLEM#{key}")
}
/// A payload kept beside the problem of this key.
pub fn kept_payload(problem_key: &str) -> String {
    format!("PAYLOAD#{problem_key}")
}
/// A purchase order's labels, under its retailer.
pub fn labels(retailer: RetailerId, po: PurchaseOrderId) -> String {
    format!("LABELS#{retailer}#{po}")
}
pub fn label(id: u64) -> String {
    format!("LABEL#{id:016}")
}
/// A purchase order's returns, under its retailer.
pub fn returns(retailer: RetailerId, po: PurchaseOrderId) -> String {
    format!("RETURNS#{retailer}#{po}")
}
pub fn return_record(id: u64) -> String {
    format!("RETURN#{id:016}")
}
/// A return's purchase order, found by the return's id under its retailer.
pub fn return_ref(id: u64) -> String {
    format!("RETURNREF#{id}")
}
pub fn retailer_returns(id: RetailerId) -> String {
    format!("RETAILER#{id}#RETURNS")
}
pub fn vendor_returns(retailer: RetailerId, vendor: VendorId) -> String {
    format!("RETAILER#{retailer}#VENDOR#{vendor}#RETURNS")
}
/// A purchase order's email, sent for the request made at this time (milliseconds).
pub fn mail_sent(requested_at: i64) -> String {
    format!("MAILSENT#{requested_at:016}")
}
pub fn order_ref(id: u64) -> String {
    format!("ORDERREF#{id}")
}
pub const ORDER_REF: &str = "ORDER";
pub const POLLING: &str = "POLLING";
pub fn poll_state(store: shipsync_domain::ids::StoreId) -> String {
    format!("POLLSTATE#{store}")
}
pub const POLL_STATE: &str = "STATE";
/// A tracking number's index partition within one store: a carrier scan comes to one store's
/// URL and can find only that store's shipments.
pub fn tracking(store: shipsync_domain::ids::StoreId, number: &str) -> String {
    format!("TRACKING#{store}#{number}")
}
/// Partition of the attention index: what needs a person (failed exports, later order problems).
pub fn retailer_attention(id: RetailerId) -> String {
    format!("RETAILER#{id}#ATTENTION")
}
/// Partition of the export-due index: one of a few shards, by shipment id.
pub fn export_due_shard(shard: u64) -> String {
    format!("EXPORTDUE#{shard}")
}
pub fn export_due(shipment: ShipmentId) -> String {
    export_due_shard(shipment.get() % crate::schema::EXPORT_DUE_SHARDS)
}
pub fn purchase_order_reference(reference: &str) -> String {
    format!("POREF#{reference}")
}

pub fn api_user(key: &str) -> String {
    format!("APIUSER#{key}")
}
pub const API_USER: &str = "APIUSER";

pub fn purchase_order(id: PurchaseOrderId) -> String {
    format!("PO#{id}")
}
pub const PURCHASE_ORDER: &str = "PO";

pub fn shipment(id: ShipmentId) -> String {
    format!("SHIPMENT#{id}")
}
pub const SHIPMENT: &str = "SHIPMENT";

pub const SEQUENCE: &str = "SEQUENCE";
pub const SEQUENCE_IDS: &str = "ids";

/// Partition keys of the listing indexes. Each starts with the retailer: a query for a partition
/// can only ever find that retailer's records, whatever vendor id a request names (vendor ids
/// are sequential across tenants).
pub fn retailer_shipments(id: RetailerId) -> String {
    format!("RETAILER#{id}#SHIPMENTS")
}
pub fn vendor_shipments(retailer: RetailerId, vendor: VendorId) -> String {
    format!("RETAILER#{retailer}#VENDOR#{vendor}#SHIPMENTS")
}
pub fn retailer_purchase_orders(id: RetailerId) -> String {
    format!("RETAILER#{id}#POS")
}
pub fn vendor_purchase_orders(retailer: RetailerId, vendor: VendorId) -> String {
    format!("RETAILER#{retailer}#VENDOR#{vendor}#POS")
}

/// Sort key of the listing indexes: the time, then the id, so that equal times keep an order.
pub fn by_time(time: DateTime<Utc>, id: u64) -> String {
    format!("{}#{id:016}", sortable_time(time))
}

/// The first sort key at or after `time`.
pub fn time_floor(time: DateTime<Utc>) -> String {
    sortable_time(time)
}

/// The last sort key at or before `time`.
pub fn time_ceiling(time: DateTime<Utc>) -> String {
    // '~' sorts after every digit, so every id at exactly `time` is included.
    format!("{}#~", sortable_time(time))
}
/// A purchase order's cancellations, under its retailer.
pub fn cancellations(retailer: RetailerId, po: PurchaseOrderId) -> String {
    format!("CANCELS#{retailer}#{po}")
}
pub fn cancellation(id: u64) -> String {
    format!("CANCEL#{id:016}")
}
/// A cancellation's purchase order, found by the cancellation's id under its retailer (sorted
/// after [`CARRIERS_END`]: the retailer's profile and carriers are read as one range below it).
pub fn cancellation_ref(id: u64) -> String {
    format!("REF#CANCELLATION#{id}")
}
/// A return made in a channel, per purchase order shipsync split it into: what makes taking it
/// once however often its notices come.
pub fn channel_return(store: shipsync_domain::ids::StoreId, channel_return_id: &str, po: PurchaseOrderId) -> String {
    format!("CHANNELRETURN#{store}#{channel_return_id}#{po}")
}
pub fn channel_return_prefix(store: shipsync_domain::ids::StoreId, channel_return_id: &str) -> String {
    format!("CHANNELRETURN#{store}#{channel_return_id}#")
}
