//! One-offs for tables written by earlier versions, each a scan run by hand, never by a request:
//! - vendor listing keys that did not hold the retailer: rewrites `VENDOR#<id>#SHIPMENTS` and
//!   `VENDOR#<id>#POS` to `RETAILER#<id>#VENDOR#<id>#...`. Until it runs, such records are
//!   missing from vendor-scoped listings (never shown to anyone else)
//!   (`shipsync-admin rekey-vendor-listings`);
//! - tracking-number records that did not hold the store: moves `TRACKING#<number>` to
//!   `TRACKING#<store>#<number>`. Until it runs, a scan posted to the store's URL does not find
//!   the shipments made before (`shipsync-admin rekey-tracking-numbers`).

use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::Shipment;

use crate::codec::{Item, record, s};
use crate::keys::{self, PK, PURCHASE_ORDER, SHIPMENT, SK};
use crate::schema::BY_VENDOR_CREATED;
use crate::{Table, TableError};
use shipsync_domain::ids::ShipmentId;

/// The listing key an old item should have now, if it is one of the re-keyed kinds.
fn new_listing_key(item: &Item) -> Result<Option<String>, TableError> {
    let kind = item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str);
    Ok(match kind {
        Some(SHIPMENT) => {
            let shipment: Shipment = record(item.clone())?;
            Some(keys::vendor_shipments(shipment.retailer_id, shipment.vendor_id))
        }
        Some(PURCHASE_ORDER) => {
            let po: PurchaseOrder = record(item.clone())?;
            Some(keys::vendor_purchase_orders(po.retailer_id, po.vendor_id))
        }
        _ => None,
    })
}

impl Table {
    /// Rewrites every old-style vendor listing key; returns how many records changed. Safe to
    /// run again, and alongside traffic (each rewrite is conditional on the key it read).
    pub async fn rekey_vendor_listings(&self) -> Result<u64, TableError> {
        let mut rewritten = 0;
        let mut start_key = None;
        loop {
            let (items, next) = self
                .scan_page(
                    "begins_with(#listing, :old)",
                    ("#listing", BY_VENDOR_CREATED.partition_key),
                    (":old", s("VENDOR#")),
                    start_key,
                )
                .await?;
            for item in items {
                let (Some(old), Some(new)) =
                    (item.get(BY_VENDOR_CREATED.partition_key).cloned(), new_listing_key(&item)?)
                else {
                    continue;
                };
                let key = [PK, SK].into_iter().filter_map(|name| Some((name.to_owned(), item.get(name)?.clone())));
                self.count_call();
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key.collect()))
                    .update_expression("SET #listing = :new")
                    .condition_expression("#listing = :old")
                    .expression_attribute_names("#listing", BY_VENDOR_CREATED.partition_key)
                    .expression_attribute_values(":old", old)
                    .expression_attribute_values(":new", s(new))
                    .send()
                    .await;
                match result {
                    Ok(_) => rewritten += 1,
                    // Written meanwhile by a request, which set the new key itself.
                    Err(error)
                        if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(error) => return Err(TableError::unavailable("UpdateItem")(error)),
                }
            }
            start_key = next;
            if start_key.is_none() {
                return Ok(rewritten);
            }
        }
    }

    /// Moves every tracking-number record of the old form (`TRACKING#<number>`, one a carrier
    /// scan could reach from any store) to its shipment's store (`TRACKING#<store>#<number>`);
    /// returns how many moved. A record whose shipment no longer carries the number is left (it
    /// finds nothing either way). Safe to run again, and alongside traffic: the new record is
    /// what a shipment's next write puts anyway.
    pub async fn rekey_tracking_numbers(&self) -> Result<u64, TableError> {
        let mut moved = 0;
        let mut start_key = None;
        loop {
            let (items, next) = self
                .scan_page("begins_with(#pk, :tracking)", ("#pk", PK), (":tracking", s("TRACKING#")), start_key)
                .await?;
            let mut ids: Vec<ShipmentId> = items
                .iter()
                .filter_map(|item| item.get(SK)?.as_s().ok()?.strip_prefix("SHIPMENT#")?.parse().ok())
                .map(ShipmentId::new_unchecked)
                .collect();
            // A shipment with several numbers has several records: each read once.
            ids.sort();
            ids.dedup();
            let shipments = if ids.is_empty() { Vec::new() } else { self.shipments(&ids).await? };
            for item in items {
                let Some(pk) = item.get(PK).and_then(|v| v.as_s().ok()).cloned() else { continue };
                let Some(old_number) = pk.strip_prefix("TRACKING#") else { continue };
                let sk = item.get(SK).and_then(|v| v.as_s().ok());
                let Some(shipment) = shipments.iter().find(|shipment| sk == Some(&keys::shipment(shipment.id))) else {
                    continue;
                };
                let numbers: Vec<String> = shipment.trackings.iter().map(|t| t.tracking.key()).collect();
                // Already of the new form, or a number the shipment no longer carries.
                if numbers.iter().any(|number| pk == keys::tracking(shipment.store_id, number))
                    || !numbers.iter().any(|number| number == old_number)
                {
                    continue;
                }
                let mut moved_item = item.clone();
                moved_item.insert(PK.to_owned(), s(keys::tracking(shipment.store_id, old_number)));
                self.put(moved_item).await?;
                let key = [PK, SK].into_iter().filter_map(|name| Some((name.to_owned(), item.get(name)?.clone())));
                self.count_call();
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key.collect()))
                    .send()
                    .await
                    .map_err(TableError::unavailable("DeleteItem"))?;
                moved += 1;
            }
            start_key = next;
            if start_key.is_none() {
                return Ok(moved);
            }
        }
    }
}

impl Table {
    /// A one-off for tables written before purchase orders held their shipments' ids (the
    /// `by_purchase_order` index was dropped for it): adds every shipment's id to its purchase
    /// order's `shipment_ids`. Returns how many shipments it linked. Safe to run again and
    /// alongside traffic (adding to a set is idempotent; a purchase order that is gone is
    /// skipped). Run it before deploying the template without the index.
    pub async fn link_purchase_order_shipments(&self) -> Result<u64, TableError> {
        let mut linked = 0;
        let mut start_key = None;
        loop {
            let (items, next) =
                self.scan_page("#sk = :shipment", ("#sk", SK), (":shipment", s(SHIPMENT)), start_key).await?;
            for item in items {
                let shipment: Shipment = record(item)?;
                self.count_call();
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(crate::codec::key(keys::purchase_order(shipment.purchase_order_id), PURCHASE_ORDER)))
                    .update_expression("ADD #shipments :shipment")
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#shipments", crate::purchase_orders::PURCHASE_ORDER_SHIPMENTS)
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(
                        ":shipment",
                        aws_sdk_dynamodb::types::AttributeValue::Ns(vec![shipment.id.to_string()]),
                    )
                    .send()
                    .await;
                match result {
                    Ok(_) => linked += 1,
                    Err(error)
                        if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(error) => return Err(TableError::unavailable("UpdateItem")(error)),
                }
            }
            start_key = next;
            if start_key.is_none() {
                return Ok(linked);
            }
        }
    }
}

impl Table {
    /// One page of a whole-table scan, keeping the items `filter` accepts (one name, one value):
    /// the one-offs above, run by hand, never by a request.
    async fn scan_page(
        &self,
        filter: &str,
        (alias, name): (&str, &str),
        (value_alias, value): (&str, aws_sdk_dynamodb::types::AttributeValue),
        start_key: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), TableError> {
        self.count_call();
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(filter)
            .expression_attribute_names(alias, name)
            .expression_attribute_values(value_alias, value)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(TableError::unavailable("Scan"))?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }
}
