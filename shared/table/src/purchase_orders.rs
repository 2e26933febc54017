//! Purchase orders.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, ShipmentId, VendorId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::search::{Paging, TimeRange};

use crate::codec::{Item, compact_item, item, key, n, s};
use crate::cursor::SearchCursor;
use crate::keys::{self, PK, PURCHASE_ORDER};
use crate::schema::{BY_RETAILER_CREATED, BY_VENDOR_CREATED};
use crate::search::{Filter, SearchPage};
use crate::{Table, TableError};

/// The attribute of a channel order record that lists its purchase orders.
pub(crate) const CHANNEL_ORDER_IDS: &str = "purchase_order_ids";

/// The record that keeps purchase order numbers unique within a retailer.
#[derive(serde::Serialize, serde::Deserialize)]
struct ReferenceRecord {
    purchase_order_id: PurchaseOrderId,
}

pub(crate) fn purchase_order_item(po: &PurchaseOrder) -> Result<Item, TableError> {
    let mut item = compact_item(keys::purchase_order(po.id), PURCHASE_ORDER, po)?;
    let sort = keys::by_time(po.created_at, po.id.get());
    item.insert(BY_RETAILER_CREATED.partition_key.into(), s(keys::retailer_purchase_orders(po.retailer_id)));
    item.insert(BY_RETAILER_CREATED.sort_key.into(), s(&sort));
    item.insert(BY_VENDOR_CREATED.partition_key.into(), s(keys::vendor_purchase_orders(po.retailer_id, po.vendor_id)));
    item.insert(BY_VENDOR_CREATED.sort_key.into(), s(sort));
    item.insert("version".into(), n(po.version));
    item.insert("vendor_id".into(), n(po.vendor_id));
    Ok(item)
}

/// The attribute of a purchase order that holds its shipments' ids (a number set): the table
/// adds a shipment's id in the same transaction that writes the shipment, so a purchase order's
/// shipments are one read away with no index of their own.
pub(crate) const PURCHASE_ORDER_SHIPMENTS: &str = "shipment_ids";

/// A transaction step that writes a purchase order only if nobody changed it since it was read
/// (and adds `new_shipment` to its shipments). An update, not a put: the set of its shipments is
/// the table's, not the record's, and must survive every write of the record.
pub(crate) fn put_purchase_order_if_unchanged(
    table: &str,
    po: &PurchaseOrder,
    new_shipment: Option<ShipmentId>,
) -> Result<TransactWriteItem, TableError> {
    let (expression, names, values) = purchase_order_update(po, new_shipment)?;
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::purchase_order(po.id), PURCHASE_ORDER)))
        .update_expression(expression)
        .condition_expression("#version = :read")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(|error| TableError::Corrupt { key: keys::purchase_order(po.id), reason: error.to_string() })?;
    Ok(TransactWriteItem::builder().update(update).build())
}

type Expression = (String, HashMap<String, String>, HashMap<String, AttributeValue>);

/// [`put_purchase_order_if_unchanged`] on its own: a plain conditional update.
pub(crate) async fn update_purchase_order_alone(table: &Table, po: &PurchaseOrder) -> Result<(), TableError> {
    let (expression, names, values) = purchase_order_update(po, None)?;
    table.count_call();
    let result = table
        .client
        .update_item()
        .table_name(&table.table)
        .set_key(Some(key(keys::purchase_order(po.id), PURCHASE_ORDER)))
        .update_expression(expression)
        .condition_expression("#version = :read")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .send()
        .await;
    crate::error::conditional_write(result, "UpdateItem", || TableError::Conflict("purchase order"))
}

/// `SET` every attribute of the purchase order's item but its keys (and `ADD` the new shipment),
/// with `:read` the version it must have now. An item DynamoDB would refuse is refused here,
/// in a transaction as alone (transactions check only their puts).
fn purchase_order_update(po: &PurchaseOrder, new_shipment: Option<ShipmentId>) -> Result<Expression, TableError> {
    let item = purchase_order_item(po)?;
    crate::codec::check_fits(&item)?;
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut sets = Vec::new();
    for (position, (name, value)) in item.into_iter().enumerate() {
        if name == PK || name == crate::keys::SK {
            continue;
        }
        let alias = if name == "version" { "#version".to_owned() } else { format!("#a{position}") };
        sets.push(format!("{alias} = :a{position}"));
        values.insert(format!(":a{position}"), value);
        names.insert(alias, name);
    }
    values.insert(":read".into(), n(po.version - 1));
    let mut expression = format!("SET {}", sets.join(", "));
    if let Some(shipment) = new_shipment {
        expression.push_str(" ADD #shipments :shipment");
        names.insert("#shipments".into(), PURCHASE_ORDER_SHIPMENTS.into());
        values.insert(":shipment".into(), AttributeValue::Ns(vec![shipment.to_string()]));
    }
    Ok((expression, names, values))
}

impl Table {
    /// Records a new purchase order; its number must be new for the retailer.
    pub async fn create_purchase_order(&self, po: &PurchaseOrder) -> Result<(), TableError> {
        let reference = item(
            keys::retailer(po.retailer_id),
            &keys::purchase_order_reference(&po.public_reference),
            &ReferenceRecord { purchase_order_id: po.id },
        )?;
        let steps = [reference, purchase_order_item(po)?]
            .into_iter()
            .map(|item| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build()
                    .map(|put| TransactWriteItem::builder().put(put).build())
                    .map_err(|error| TableError::Corrupt {
                        key: keys::purchase_order(po.id),
                        reason: error.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut steps = steps;
        if let Some(channel_order_id) = &po.channel_order_id {
            // The channel order lists its purchase orders, to tell when the whole order has shipped.
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::retailer(po.retailer_id),
                    &keys::channel_order(po.store_id, channel_order_id.as_str()),
                )))
                .update_expression("SET #ids = list_append(if_not_exists(#ids, :empty), :new)")
                .expression_attribute_names("#ids", CHANNEL_ORDER_IDS)
                .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":new", AttributeValue::L(vec![n(po.id)]))
                .build()
                .map_err(|error| TableError::Corrupt { key: keys::purchase_order(po.id), reason: error.to_string() })?;
            steps.push(TransactWriteItem::builder().update(update).build());
        }
        self.transact(steps, |_| TableError::AlreadyExists(format!("purchase order number {:?}", po.public_reference)))
            .await
    }

    pub async fn purchase_order(&self, id: PurchaseOrderId) -> Result<Option<PurchaseOrder>, TableError> {
        self.get(keys::purchase_order(id), PURCHASE_ORDER).await
    }

    /// A purchase order by its number within a retailer.
    pub async fn purchase_order_by_number(
        &self,
        retailer_id: RetailerId,
        number: &str,
    ) -> Result<Option<PurchaseOrder>, TableError> {
        let reference: Option<ReferenceRecord> =
            self.get(keys::retailer(retailer_id), &keys::purchase_order_reference(number.trim())).await?;
        match reference {
            Some(reference) => self.retailer_purchase_order(retailer_id, reference.purchase_order_id).await,
            None => Ok(None),
        }
    }

    /// Several purchase orders by id, in one batch read; missing ones are left out.
    pub async fn purchase_orders(&self, ids: &[PurchaseOrderId]) -> Result<Vec<PurchaseOrder>, TableError> {
        let keys = ids.iter().map(|id| (keys::purchase_order(*id), PURCHASE_ORDER.to_owned())).collect();
        self.batch_get(keys).await
    }

    /// A page of a retailer's purchase orders (or one vendor's), oldest first (after `after`, a
    /// cursor an earlier page handed out).
    pub async fn list_purchase_orders(
        &self,
        retailer_id: RetailerId,
        vendor_id: Option<VendorId>,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<PurchaseOrder>, TableError> {
        let (index, partition) = match vendor_id {
            Some(vendor) => (BY_VENDOR_CREATED, keys::vendor_purchase_orders(retailer_id, vendor)),
            None => (BY_RETAILER_CREATED, keys::retailer_purchase_orders(retailer_id)),
        };
        let mut page: SearchPage<PurchaseOrder> =
            self.search_index(index, partition, TimeRange::default(), Filter::default(), paging, after).await?;
        retain_own(&mut page.records, |po| po.retailer_id == retailer_id, "purchase order");
        Ok(page)
    }

    /// A purchase order of this retailer: another retailer's is as absent as a missing one.
    pub async fn retailer_purchase_order(
        &self,
        retailer_id: RetailerId,
        id: PurchaseOrderId,
    ) -> Result<Option<PurchaseOrder>, TableError> {
        Ok(self.purchase_order(id).await?.filter(|po| po.retailer_id == retailer_id))
    }

    /// Several purchase orders of this retailer by id; missing ones and other retailers' are left out.
    pub async fn retailer_purchase_orders(
        &self,
        retailer_id: RetailerId,
        ids: &[PurchaseOrderId],
    ) -> Result<Vec<PurchaseOrder>, TableError> {
        let mut orders = self.purchase_orders(ids).await?;
        retain_own(&mut orders, |po| po.retailer_id == retailer_id, "purchase order");
        Ok(orders)
    }
}

/// Keeps only the caller's retailer's records. The keys already guarantee it; a record that gets
/// here anyway is a bug worth a loud log, never a leak.
pub(crate) fn retain_own<T>(records: &mut Vec<T>, own: impl Fn(&T) -> bool, kind: &str) {
    let before = records.len();
    records.retain(|record| own(record));
    if records.len() != before {
        tracing::error!(kind, dropped = before - records.len(), "another retailer's records reached a listing");
    }
}
