//! Shipments, written together with their purchase order's fulfilled quantities.

use crate::cursor::SearchCursor;
use crate::search::{Filter, SearchPage};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, ShipmentId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::search::{Paging, TimeRange};
use shipsync_domain::search::{search_name_text, search_tracking_text};
use shipsync_domain::shipment::Shipment;
use shipsync_domain::time::sortable_time;

use crate::codec::{Item, compact_item, item, n, s};
use crate::keys::{self, PK, SHIPMENT};
use crate::purchase_orders::{PURCHASE_ORDER_SHIPMENTS, put_purchase_order_if_unchanged};
use crate::schema::{BY_ATTENTION, BY_EXPORT_DUE, BY_RETAILER_CREATED, BY_RETAILER_UPDATED, BY_VENDOR_CREATED};
use crate::{Table, TableError};
use shipsync_domain::export::ExportState;

use shipsync_domain::tracking::TrackingNumber;

/// The record that a channel fulfillment was applied, and as which shipment.
#[derive(serde::Serialize, serde::Deserialize)]
struct AppliedFulfillment {
    shipment_id: ShipmentId,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TrackingEntry {
    shipment_id: ShipmentId,
    retailer_id: RetailerId,
}

/// Separates tracking numbers in `tracking_search`; no normalized number contains it.
const TRACKING_SEPARATOR: &str = "\n";

fn shipment_item(shipment: &Shipment) -> Result<Item, TableError> {
    let mut item = compact_item(keys::shipment(shipment.id), SHIPMENT, shipment)?;
    let id = shipment.id.get();
    let created = keys::by_time(shipment.created_at, id);
    let attributes = [
        (BY_RETAILER_CREATED.partition_key, s(keys::retailer_shipments(shipment.retailer_id))),
        (BY_RETAILER_CREATED.sort_key, s(&created)),
        (BY_VENDOR_CREATED.partition_key, s(keys::vendor_shipments(shipment.retailer_id, shipment.vendor_id))),
        (BY_VENDOR_CREATED.sort_key, s(&created)),
        (BY_RETAILER_UPDATED.partition_key, s(keys::retailer_shipments(shipment.retailer_id))),
        (BY_RETAILER_UPDATED.sort_key, s(keys::by_time(shipment.updated_at, id))),
        ("version", n(shipment.version)),
        ("vendor_id", n(shipment.vendor_id)),
        ("customer_search", s(search_name_text(&shipment.customer_name))),
        (
            "tracking_search",
            s(shipment
                .trackings
                .iter()
                .map(|t| search_tracking_text(t.tracking.as_str()))
                .collect::<Vec<_>>()
                .join(TRACKING_SEPARATOR)),
        ),
        ("created_at", s(sortable_time(shipment.created_at))),
        ("updated_at", s(sortable_time(shipment.updated_at))),
    ];
    item.extend(attributes.into_iter().map(|(name, value)| (name.to_owned(), value)));
    if let Some(reference) = &shipment.vendor_invoice_reference {
        item.insert("vendor_invoice_reference".into(), s(reference));
    }
    if let Some(time) = shipment.invoiced_at {
        item.insert("invoiced_at".into(), s(sortable_time(time)));
    }
    if let ExportState::Failed { failed_at, .. } = &shipment.export.state {
        item.insert(BY_ATTENTION.partition_key.into(), s(keys::retailer_attention(shipment.retailer_id)));
        item.insert(BY_ATTENTION.sort_key.into(), s(keys::by_time(*failed_at, id)));
    }
    // Every write of a shipment goes through here, so the sweeper's index follows its export
    // state: the keys are there while it is scheduled or exporting, and gone once it is not.
    if let Some(sweep_at) = shipment.export.state.sweep_at() {
        item.insert(BY_EXPORT_DUE.partition_key.into(), s(keys::export_due(shipment.id)));
        item.insert(BY_EXPORT_DUE.sort_key.into(), s(keys::by_time(sweep_at, id)));
    }
    Ok(item)
}

impl Table {
    /// The transaction step that writes a shipment which must not exist yet.
    fn put_new_shipment(&self, shipment: &Shipment) -> Result<TransactWriteItem, TableError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(shipment_item(shipment)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|error| TableError::Corrupt { key: keys::shipment(shipment.id), reason: error.to_string() })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Records a new shipment and its purchase order's new fulfilled quantities in one atomic
    /// write. Fails with [`TableError::Conflict`] if the purchase order changed since it was read
    /// (`purchase_order.version` is one more than the version read).
    pub async fn create_shipment(&self, shipment: &Shipment, purchase_order: &PurchaseOrder) -> Result<(), TableError> {
        let tracking_steps = self.tracking_index_steps(shipment)?;
        let mut steps = vec![
            self.put_new_shipment(shipment)?,
            put_purchase_order_if_unchanged(&self.table, purchase_order, Some(shipment.id))?,
        ];
        steps.extend(tracking_steps);
        self.transact(steps, |_| TableError::Conflict("purchase order")).await
    }

    /// Creates the shipment a channel fulfillment stands for (reverse sync) together with the
    /// record that the fulfillment was applied, in one transaction conditional on that record
    /// not existing: whatever races (a `fulfillments/create` and a `fulfillments/update`, a
    /// delivery twice), one fulfillment makes at most one shipment. [`TableError::Conflict`] if
    /// it was applied meanwhile or the purchase order changed.
    pub async fn create_shipment_from_channel(
        &self,
        shipment: &Shipment,
        purchase_order: &PurchaseOrder,
        store: shipsync_domain::ids::StoreId,
        channel_fulfillment_id: &str,
    ) -> Result<(), TableError> {
        let key = keys::channel_fulfillment(store, channel_fulfillment_id);
        let applied = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(
                key.clone(),
                keys::CHANNEL_FULFILLMENT,
                &AppliedFulfillment { shipment_id: shipment.id },
            )?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|error| TableError::Corrupt { key, reason: error.to_string() })?;
        let mut steps = vec![
            TransactWriteItem::builder().put(applied).build(),
            self.put_new_shipment(shipment)?,
            put_purchase_order_if_unchanged(&self.table, purchase_order, Some(shipment.id))?,
        ];
        steps.extend(self.tracking_index_steps(shipment)?);
        self.transact(steps, |step| {
            TableError::Conflict(if step == 0 { "channel fulfillment" } else { "purchase order" })
        })
        .await
    }

    /// The shipment a channel fulfillment was applied as, if reverse sync made one (read
    /// consistently: the other side of a race may have just written it).
    pub async fn channel_fulfillment_applied(
        &self,
        store: shipsync_domain::ids::StoreId,
        channel_fulfillment_id: &str,
    ) -> Result<Option<ShipmentId>, TableError> {
        let item =
            self.item_now(keys::channel_fulfillment(store, channel_fulfillment_id), keys::CHANNEL_FULFILLMENT).await?;
        let found: Option<AppliedFulfillment> = item.map(crate::codec::record).transpose()?;
        Ok(found.map(|applied| applied.shipment_id))
    }

    /// Writes a changed shipment (version one more than the version read) and, when its items
    /// changed, its purchase order, atomically; [`TableError::Conflict`] if either changed meanwhile.
    pub async fn update_shipment(
        &self,
        shipment: &Shipment,
        purchase_order: Option<&PurchaseOrder>,
    ) -> Result<(), TableError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(shipment_item(shipment)?))
            .condition_expression("#version = :read")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":read", n(shipment.version - 1))
            .build()
            .map_err(|error| TableError::Corrupt { key: keys::shipment(shipment.id), reason: error.to_string() })?;
        let mut steps = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(po) = purchase_order {
            steps.push(put_purchase_order_if_unchanged(&self.table, po, None)?);
        }
        steps.extend(self.tracking_index_steps(shipment)?);
        self.transact(steps, |step| TableError::Conflict(if step == 0 { "shipment" } else { "purchase order" })).await
    }

    /// Writes a shipment whose details are unchanged (its export state, its carrier status, its
    /// link to the channel): one conditional write of the one item, not a transaction, at half
    /// the write units. [`TableError::Conflict`] if it changed since it was read.
    pub async fn update_shipment_state(&self, shipment: &Shipment) -> Result<(), TableError> {
        let item = shipment_item(shipment)?;
        crate::codec::check_fits(&item)?;
        self.count_call();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#version = :read")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":read", n(shipment.version - 1))
            .send()
            .await;
        crate::error::conditional_write(result, "PutItem", || TableError::Conflict("shipment"))
    }

    pub async fn shipment(&self, id: ShipmentId) -> Result<Option<Shipment>, TableError> {
        self.get(keys::shipment(id), SHIPMENT).await
    }

    /// A shipment of this retailer: another retailer's is as absent as a missing one.
    pub async fn retailer_shipment(
        &self,
        retailer_id: RetailerId,
        id: ShipmentId,
    ) -> Result<Option<Shipment>, TableError> {
        Ok(self.shipment(id).await?.filter(|shipment| shipment.retailer_id == retailer_id))
    }

    /// A page of a retailer's shipments whose export failed, oldest failure first (after
    /// `after`, a cursor an earlier page handed out).
    pub async fn failed_exports(
        &self,
        retailer_id: RetailerId,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<Shipment>, TableError> {
        let partition = keys::retailer_attention(retailer_id);
        let mut page: SearchPage<Shipment> =
            self.search_index(BY_ATTENTION, partition, TimeRange::default(), Filter::default(), paging, after).await?;
        crate::purchase_orders::retain_own(&mut page.records, |s| s.retailer_id == retailer_id, "shipment");
        Ok(page)
    }

    /// Every shipment of a purchase order, oldest first: the ids its record holds, then one batch
    /// read (an order has few shipments).
    pub async fn shipments_of_purchase_order(&self, id: PurchaseOrderId) -> Result<Vec<Shipment>, TableError> {
        // Consistently: a shipment written a moment ago by another request (the one that
        // completes an order, releasing those waiting for it) must be among them.
        let Some(mut found) = self.item_now(keys::purchase_order(id), keys::PURCHASE_ORDER).await? else {
            return Ok(Vec::new());
        };
        let ids: Vec<ShipmentId> = match found.remove(PURCHASE_ORDER_SHIPMENTS) {
            Some(AttributeValue::Ns(numbers)) => numbers
                .iter()
                .filter_map(|number| number.parse().ok().and_then(|id| ShipmentId::new(id).ok()))
                .collect(),
            _ => Vec::new(),
        };
        let keys = ids.iter().map(|id| (keys::shipment(*id), crate::keys::SHIPMENT.to_owned())).collect();
        let items = self.batch_get_items_read(keys, true).await?;
        let mut shipments: Vec<Shipment> = items
            .into_iter()
            .map(crate::codec::record)
            .collect::<Result<Vec<Shipment>, _>>()?
            .into_iter()
            .filter(|shipment| shipment.purchase_order_id == id)
            .collect();
        shipments.sort_by_key(|shipment| (shipment.created_at, shipment.id));
        Ok(shipments)
    }

    /// A purchase order read consistently: a write that just finished is seen.
    pub async fn purchase_order_now(&self, id: PurchaseOrderId) -> Result<Option<PurchaseOrder>, TableError> {
        let item = self.item_now(keys::purchase_order(id), keys::PURCHASE_ORDER).await?;
        item.map(crate::codec::record).transpose()
    }

    /// Index records that find a shipment by its tracking numbers within its store (carrier scans
    /// need it; a scan is posted to one store's URL). An edit that drops a number leaves its
    /// record behind; lookups check the shipment still has it.
    fn tracking_index_steps(&self, shipment: &Shipment) -> Result<Vec<TransactWriteItem>, TableError> {
        // Only a provider's scans look numbers up, and only a store with a provider gets them.
        if !shipment.tracked_by_provider {
            return Ok(Vec::new());
        }
        let mut numbers: Vec<String> = shipment.trackings.iter().map(|t| t.tracking.key()).collect();
        numbers.sort();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|number| {
                let entry = TrackingEntry { shipment_id: shipment.id, retailer_id: shipment.retailer_id };
                let partition = keys::tracking(shipment.store_id, &number);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item(partition.clone(), &keys::shipment(shipment.id), &entry)?))
                    .build()
                    .map_err(|error| TableError::Corrupt { key: partition, reason: error.to_string() })?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    /// The shipments of this store that carry this tracking number now. The store is part of the
    /// key, so another store's shipment with the same number is never read.
    pub async fn shipments_by_tracking(
        &self,
        store: shipsync_domain::ids::StoreId,
        number: &TrackingNumber,
    ) -> Result<Vec<Shipment>, TableError> {
        let wanted = number.key();
        let entries: Vec<TrackingEntry> = self.partition_prefix(keys::tracking(store, &wanted), "SHIPMENT#").await?;
        let ids: Vec<ShipmentId> = entries.iter().map(|entry| entry.shipment_id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let shipments = self.shipments(&ids).await?;
        // The key names the store already; the shipment must say so too (a record left by a
        // shipment that moved stores never reaches another store's scan).
        Ok(shipments
            .into_iter()
            .filter(|s| s.store_id == store && s.trackings.iter().any(|t| t.tracking.same_parcel(number)))
            .collect())
    }

    /// Runs a transaction; a failed condition on step `i` becomes `on_condition(i)`.
    pub(crate) async fn transact(
        &self,
        steps: Vec<TransactWriteItem>,
        on_condition: impl Fn(usize) -> TableError,
    ) -> Result<(), TableError> {
        for put in steps.iter().filter_map(|step| step.put()) {
            crate::codec::check_fits(put.item())?;
        }
        self.count_call();
        let result = self.client.transact_write_items().set_transact_items(Some(steps)).send().await;
        let Err(error) = result else { return Ok(()) };
        if let Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                cancelled,
            ),
        ) = error.as_service_error()
        {
            let failed = cancelled
                .cancellation_reasons()
                .iter()
                .position(|reason| reason.code() == Some("ConditionalCheckFailed"));
            if let Some(step) = failed {
                return Err(on_condition(step));
            }
            // A step DynamoDB refuses as such (an update that would make an item too large) will
            // be refused again: permanent, not an outage to retry.
            if cancelled.cancellation_reasons().iter().any(|reason| reason.code() == Some("ValidationError")) {
                return Err(TableError::Rejected { operation: "TransactWriteItems", source: Box::new(error) });
            }
        }
        Err(TableError::unavailable("TransactWriteItems")(error))
    }
}
