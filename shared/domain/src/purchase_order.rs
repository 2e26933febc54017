//! Purchase orders: one vendor's part of one channel order, with the quantities still to ship.

use crate::ValidationErrors;
use crate::ids::{OrderItemId, PurchaseOrderId, RetailerId, StoreId, VendorId};
use crate::vocabulary::ChannelOrderId;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseOrder {
    pub id: PurchaseOrderId,
    pub retailer_id: RetailerId,
    pub vendor_id: VendorId,
    pub store_id: StoreId,
    /// The purchase order number, unique within the retailer.
    pub public_reference: String,
    /// The order's id in its sales channel.
    pub channel_order_id: Option<ChannelOrderId>,
    /// The name on the shipping address.
    pub customer_name: String,
    pub items: Vec<OrderItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every write; writes are conditional on it, so concurrent changes never interleave.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub id: OrderItemId,
    pub sku: String,
    pub name: String,
    /// What is to be shipped: ordered less what the channel cancelled.
    pub quantity: u32,
    pub quantity_fulfilled: u32,
    /// Units cancelled at the channel (no longer in `quantity`).
    #[serde(default)]
    pub quantity_cancelled: u32,
    /// Wholesale cost per unit, copied onto shipment items.
    pub cost: Option<Decimal>,
    /// The line item's id in the sales channel, needed to export shipments.
    pub channel_line_item_id: Option<String>,
    /// The channel says each unit needs its IMEI on the confirmation (Back Market's phones).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_imei: bool,
}

impl OrderItem {
    pub fn unfulfilled(&self) -> u32 {
        self.quantity.saturating_sub(self.quantity_fulfilled)
    }
}

/// A change to fulfilled quantities: order item to signed difference.
pub type FulfillmentChange = BTreeMap<OrderItemId, i64>;

impl PurchaseOrder {
    pub fn item(&self, id: OrderItemId) -> Option<&OrderItem> {
        self.items.iter().find(|item| item.id == id)
    }

    pub fn is_fully_fulfilled(&self) -> bool {
        self.items.iter().all(|item| item.unfulfilled() == 0)
    }

    /// Applies a change to fulfilled quantities; refuses one that would fulfil more than was
    /// ordered or less than nothing, and then changes nothing.
    pub fn apply_fulfillment(&mut self, change: &FulfillmentChange) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut updated = self.items.clone();
        for (item_id, delta) in change {
            let Some(item) = updated.iter_mut().find(|item| item.id == *item_id) else {
                errors.push("order_item_id", format!("{item_id} is not an item of purchase order {}", self.id));
                continue;
            };
            let fulfilled = i64::from(item.quantity_fulfilled) + delta;
            match u32::try_from(fulfilled) {
                Ok(value) if value <= item.quantity => item.quantity_fulfilled = value,
                _ => errors.push(
                    "quantity",
                    format!("for order item {item_id} exceeds the {} still unfulfilled", item.unfulfilled()),
                ),
            }
        }
        errors.into_result(())?;
        self.items = updated;
        Ok(())
    }
}

/// What is needed to record a purchase order (from a channel order, or the demo data).
#[derive(Debug, Clone)]
pub struct NewPurchaseOrder {
    pub retailer_id: RetailerId,
    pub vendor_id: VendorId,
    pub store_id: StoreId,
    pub public_reference: String,
    pub channel_order_id: Option<ChannelOrderId>,
    pub customer_name: String,
    pub items: Vec<NewOrderItem>,
}

#[derive(Debug, Clone)]
pub struct NewOrderItem {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub cost: Option<Decimal>,
    pub channel_line_item_id: Option<String>,
    /// The channel says each unit needs its IMEI (see [`OrderItem::needs_imei`]).
    pub needs_imei: bool,
}

impl NewOrderItem {
    /// The order item, nothing of it fulfilled yet.
    pub fn into_item(self, id: OrderItemId) -> OrderItem {
        OrderItem {
            id,
            sku: self.sku.trim().to_owned(),
            name: self.name,
            quantity: self.quantity,
            quantity_fulfilled: 0,
            quantity_cancelled: 0,
            cost: self.cost,
            channel_line_item_id: self.channel_line_item_id,
            needs_imei: self.needs_imei,
        }
    }
}

impl NewPurchaseOrder {
    /// Checks the order and builds it with the ids given (one for the order, then one per item).
    pub fn build(
        self,
        mut ids: impl Iterator<Item = u64>,
        now: DateTime<Utc>,
    ) -> Result<PurchaseOrder, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.public_reference.trim().is_empty() {
            errors.push("public_reference", "must not be blank");
        }
        if self.items.is_empty() {
            errors.push("order_items", "must contain at least one item");
        }
        for (index, item) in self.items.iter().enumerate() {
            if item.quantity == 0 {
                errors.push(format!("order_items[{index}].quantity"), "must be at least 1");
            }
            if item.sku.trim().is_empty() {
                errors.push(format!("order_items[{index}].sku"), "must not be blank");
            }
        }
        errors.into_result(())?;
        let mut next = || ids.next().ok_or_else(|| ValidationErrors::single("id", "no id left to assign"));
        let id = PurchaseOrderId::new_unchecked(next()?);
        let mut items = Vec::with_capacity(self.items.len());
        for item in self.items {
            items.push(item.into_item(OrderItemId::new_unchecked(next()?)));
        }
        Ok(PurchaseOrder {
            id,
            retailer_id: self.retailer_id,
            vendor_id: self.vendor_id,
            store_id: self.store_id,
            public_reference: self.public_reference.trim().to_owned(),
            channel_order_id: self.channel_order_id,
            customer_name: self.customer_name.trim().to_owned(),
            items,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }

    /// How many ids [`NewPurchaseOrder::build`] consumes.
    pub fn ids_needed(&self) -> usize {
        1 + self.items.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn order(quantities: &[u32]) -> PurchaseOrder {
        NewPurchaseOrder {
            retailer_id: RetailerId::new_unchecked(1),
            vendor_id: VendorId::new_unchecked(2),
            store_id: StoreId::new_unchecked(3),
            public_reference: "PO-1".into(),
            channel_order_id: Some(ChannelOrderId::parse("1001").expect("an order id")),
            customer_name: "Bill Smith".into(),
            items: quantities
                .iter()
                .enumerate()
                .map(|(index, quantity)| NewOrderItem {
                    sku: format!("SKU-{index}"),
                    name: format!("Item {index}"),
                    quantity: *quantity,
                    cost: Some(Decimal::new(1250, 2)),
                    channel_line_item_id: None,
                    needs_imei: false,
                })
                .collect(),
        }
        .build(100.., DateTime::UNIX_EPOCH)
        .unwrap_or_else(|errors| panic!("bad fixture: {errors}"))
    }

    #[test]
    fn fulfillment_stays_within_what_was_ordered() {
        let mut po = order(&[2, 1]);
        let first = po.items[0].id;
        assert!(po.apply_fulfillment(&FulfillmentChange::from([(first, 2)])).is_ok());
        assert_eq!(po.items[0].unfulfilled(), 0);
        let before = po.clone();
        assert!(po.apply_fulfillment(&FulfillmentChange::from([(first, 1)])).is_err());
        assert!(po.apply_fulfillment(&FulfillmentChange::from([(po.items[1].id, -1)])).is_err());
        assert_eq!(po, before, "a refused change changes nothing");
        assert!(po.apply_fulfillment(&FulfillmentChange::from([(first, -2)])).is_ok());
        assert_eq!(po.items[0].quantity_fulfilled, 0);
    }
}
