//! Returns: under their retailer and purchase order, listed by the retailer's and the vendor's
//! creation indexes, found by id through a reference under the retailer. A purchase order's
//! returns share a counter whose version every new return moves, in the same transaction: two
//! returns made at once cannot both take the last unit.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, VendorId};
use shipsync_domain::returns::Return;
use shipsync_domain::search::{Paging, TimeRange};

use crate::codec::{Item, compact_item, item, n, record, s};
use crate::cursor::SearchCursor;
use crate::keys::{self, PK, SK};
use crate::schema::{BY_RETAILER_CREATED, BY_VENDOR_CREATED};
use crate::search::{Filter, SearchPage};
use crate::{Table, TableError};

/// The sort key of a purchase order's return counter (beside its `RETURN#` records).
const COUNTER: &str = "COUNTER";

/// A purchase order's returns and the counter's version they were read at.
#[derive(Debug, Clone, Default)]
pub struct PurchaseOrderReturns {
    pub returns: Vec<Return>,
    pub version: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChannelReturnRecord {
    purchase_order_id: PurchaseOrderId,
    return_id: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ReturnRef {
    purchase_order_id: PurchaseOrderId,
}

fn return_item(ret: &Return) -> Result<Item, TableError> {
    let mut item =
        compact_item(keys::returns(ret.retailer_id, ret.purchase_order_id), &keys::return_record(ret.id), ret)?;
    let sort = keys::by_time(ret.created_at, ret.id);
    item.insert(BY_RETAILER_CREATED.partition_key.into(), s(keys::retailer_returns(ret.retailer_id)));
    item.insert(BY_RETAILER_CREATED.sort_key.into(), s(&sort));
    item.insert(BY_VENDOR_CREATED.partition_key.into(), s(keys::vendor_returns(ret.retailer_id, ret.vendor_id)));
    item.insert(BY_VENDOR_CREATED.sort_key.into(), s(sort));
    item.insert("version".into(), n(ret.version));
    Ok(item)
}

fn put(
    table: &str,
    item: Item,
    condition: &str,
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, TableError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item)).condition_expression(condition);
    for (name, value) in values {
        put = put.expression_attribute_values(name, value);
    }
    let put = put
        .build()
        .map_err(|error| TableError::Rejected { operation: "TransactWriteItems", source: Box::new(error) })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl Table {
    /// A purchase order's returns, as they stand after every write so far, with the counter's version.
    pub async fn purchase_order_returns(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<PurchaseOrderReturns, TableError> {
        let pk = keys::returns(retailer, po);
        let version = match self.item_now(pk.clone(), COUNTER).await? {
            Some(counter) => {
                counter.get("version").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
            }
            None => 0,
        };
        let mut returns: Vec<Return> = self.partition_prefix_now(pk, "RETURN#").await?;
        returns.retain(|ret| ret.retailer_id == retailer && ret.purchase_order_id == po);
        Ok(PurchaseOrderReturns { returns, version })
    }

    /// Writes a new return, its reference, and the purchase order's counter moved on from
    /// `read_version`, in one transaction: [`TableError::Conflict`] when another return was made
    /// since the returns were read. A return made in a channel also writes its channel
    /// reference ([`TableError::AlreadyExists`] when that return was taken already).
    pub async fn create_return(&self, ret: &Return, read_version: u64) -> Result<(), TableError> {
        let pk = keys::returns(ret.retailer_id, ret.purchase_order_id);
        let mut counter = Item::new();
        counter.insert(PK.into(), s(&pk));
        counter.insert(SK.into(), s(COUNTER));
        counter.insert("version".into(), n(read_version + 1));
        let counter_condition = if read_version == 0 { "attribute_not_exists(pk)" } else { "version = :read" };
        let reference = item(
            keys::retailer(ret.retailer_id),
            &keys::return_ref(ret.id),
            &ReturnRef { purchase_order_id: ret.purchase_order_id },
        )?;
        let table = self.table_name();
        let mut steps = vec![
            put(table, return_item(ret)?, "attribute_not_exists(pk)", vec![])?,
            put(table, reference, "attribute_not_exists(pk)", vec![])?,
            put(
                table,
                counter,
                counter_condition,
                if read_version == 0 { vec![] } else { vec![(":read", n(read_version))] },
            )?,
        ];
        if let shipsync_domain::returns::ReturnSync::FromChannel { channel_return_id } = &ret.channel {
            let taken = item(
                keys::retailer(ret.retailer_id),
                &keys::channel_return(ret.store_id, channel_return_id, ret.purchase_order_id),
                &ChannelReturnRecord { purchase_order_id: ret.purchase_order_id, return_id: ret.id },
            )?;
            steps.push(put(table, taken, "attribute_not_exists(pk)", vec![])?);
        }
        self.transact(steps, |step| match step {
            2 => TableError::Conflict("the purchase order's returns"),
            3 => {
                TableError::AlreadyExists(format!("the channel's return for purchase order {}", ret.purchase_order_id))
            }
            _ => TableError::AlreadyExists(format!("return {}", ret.id)),
        })
        .await
    }

    /// The returns shipsync made of a channel's return (one per purchase order it spans), as
    /// they stand after every write so far.
    pub async fn channel_returns(
        &self,
        retailer: RetailerId,
        store: shipsync_domain::ids::StoreId,
        channel_return_id: &str,
    ) -> Result<Vec<Return>, TableError> {
        let taken: Vec<ChannelReturnRecord> = self
            .partition_prefix_now(keys::retailer(retailer), &keys::channel_return_prefix(store, channel_return_id))
            .await?;
        let mut found = Vec::new();
        for taken in taken {
            let pk = keys::returns(retailer, taken.purchase_order_id);
            let item = self.item_now(pk, &keys::return_record(taken.return_id)).await?;
            if let Some(ret) = item.map(record::<Return>).transpose()?.filter(|ret| ret.retailer_id == retailer) {
                found.push(ret);
            }
        }
        Ok(found)
    }

    /// A return of this retailer by id; another retailer's is as absent as a missing one.
    pub async fn retailer_return(&self, retailer: RetailerId, id: u64) -> Result<Option<Return>, TableError> {
        let Some(reference) = self.item_now(keys::retailer(retailer), &keys::return_ref(id)).await? else {
            return Ok(None);
        };
        let reference: ReturnRef = record(reference)?;
        let found =
            self.item_now(keys::returns(retailer, reference.purchase_order_id), &keys::return_record(id)).await?;
        Ok(found.map(record::<Return>).transpose()?.filter(|ret| ret.retailer_id == retailer))
    }

    /// Replaces a return if nobody changed it since it was read (its version one less).
    pub async fn update_return(&self, ret: &Return) -> Result<(), TableError> {
        let item = return_item(ret)?;
        crate::codec::check_fits(&item)?;
        self.count_call();
        let result = self
            .client()
            .put_item()
            .table_name(self.table_name())
            .set_item(Some(item))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", n(ret.version - 1))
            .send()
            .await;
        crate::error::conditional_write(result, "PutItem", || TableError::Conflict("the return"))
    }

    /// A page of the retailer's returns (a vendor's only, for a vendor), oldest first.
    pub async fn list_returns(
        &self,
        retailer: RetailerId,
        vendor: Option<VendorId>,
        state: Option<shipsync_domain::returns::ReturnState>,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<Return>, TableError> {
        let (index, partition) = match vendor {
            Some(vendor) => (BY_VENDOR_CREATED, keys::vendor_returns(retailer, vendor)),
            None => (BY_RETAILER_CREATED, keys::retailer_returns(retailer)),
        };
        let mut page: SearchPage<Return> =
            self.search_index(index, partition, TimeRange::default(), Filter::default(), paging, after).await?;
        crate::purchase_orders::retain_own(&mut page.records, |ret| ret.retailer_id == retailer, "return");
        if let Some(state) = state {
            page.records.retain(|ret| ret.state == state);
        }
        Ok(page)
    }
}
