//! Records of channel orders, products, order problems, store lookups and webhook deliveries.

use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, StoreId};
use shipsync_domain::orders::{
    KeptPayload, MAX_KEPT_BYTES, OrderProblem, OrderRecord, PollState, PolledStore, Product, sha256_hex,
};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::search::{Paging, TimeRange};
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::ChannelStore;

use crate::codec::{Item, item, key, n, record, s};
use crate::cursor::SearchCursor;
use crate::keys::{self, PK};
use crate::purchase_orders::CHANNEL_ORDER_IDS;
use crate::schema::BY_ATTENTION;
use crate::search::{Filter, SearchPage};
use crate::{Table, TableError};

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct StoreRef {
    retailer_id: RetailerId,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OrderRef {
    retailer_id: RetailerId,
    store_id: StoreId,
    channel_order_id: ChannelOrderId,
}

/// Something on the attention index: a failed export or an order problem.
#[derive(Debug, Clone, PartialEq)]
pub enum Attention {
    FailedExport(Box<Shipment>),
    Problem(OrderProblem),
}

/// The attribute holding a kept payload's bytes.
const PAYLOAD_BODY: &str = "body";

impl Table {
    /// Finds a store by its id alone (webhook URLs carry only that).
    pub async fn channel_store_by_id(&self, id: StoreId) -> Result<Option<ChannelStore>, TableError> {
        let found: Option<StoreRef> = self.get_cached(keys::store_ref(id), keys::STORE_REF).await?;
        match found {
            Some(found) => self.channel_store(found.retailer_id, id).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn put_store_ref(&self, store: &ChannelStore) -> Result<(), TableError> {
        self.put(item(keys::store_ref(store.id), keys::STORE_REF, &StoreRef { retailer_id: store.retailer_id })?)
            .await?;
        // Every store is listed for the poller, which skips those that do not poll.
        self.put(item(
            keys::POLLING.to_owned(),
            &keys::store(store.id.get()),
            &PolledStore { retailer_id: store.retailer_id, store_id: store.id },
        )?)
        .await
    }

    /// Routes an Amazon seller's notifications in a marketplace to this store: claimed once, by
    /// one store (another retailer naming the same seller cannot take its notifications over).
    pub(crate) async fn claim_amazon_seller(&self, store: &ChannelStore) -> Result<(), TableError> {
        let (Some(seller), Some(marketplace)) = (&store.connection.seller_id, &store.connection.marketplace_id) else {
            return Ok(());
        };
        if store.channel != shipsync_domain::tenant::ChannelKind::Amazon {
            return Ok(());
        }
        let pk = keys::amazon_seller(seller, marketplace);
        let mut record =
            item(pk, keys::STORE_REF, &PolledStore { retailer_id: store.retailer_id, store_id: store.id })?;
        let owner = format!("{}#{}", store.retailer_id, store.id);
        record.insert("owner".into(), AttributeValue::S(owner.clone()));
        crate::codec::check_fits(&record)?;
        self.count_call();
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(#pk) OR #owner = :owner")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(TableError::AlreadyExists(format!(
                    "Amazon seller {seller} in marketplace {marketplace} (connected to another store)"
                )))
            }
            Err(error) => Err(TableError::unavailable("PutItem")(error)),
        }
    }

    /// Frees the seller `before` named if `after` (the same store, saved) names another: only
    /// the store's own claim is deleted.
    pub(crate) async fn release_amazon_seller(
        &self,
        before: &ChannelStore,
        after: &ChannelStore,
    ) -> Result<(), TableError> {
        let named = |store: &ChannelStore| {
            (store.channel == shipsync_domain::tenant::ChannelKind::Amazon)
                .then(|| store.connection.seller_id.clone().zip(store.connection.marketplace_id.clone()))
                .flatten()
        };
        let Some((seller, marketplace)) = named(before) else { return Ok(()) };
        if named(after).as_ref() == Some(&(seller.clone(), marketplace.clone())) {
            return Ok(());
        }
        self.count_call();
        let owner = format!("{}#{}", before.retailer_id, before.id);
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::amazon_seller(&seller, &marketplace), keys::STORE_REF)))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Not the store's (anymore): nothing of its own to free.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(error) => Err(TableError::unavailable("DeleteItem")(error)),
        }
    }

    /// The store an Amazon seller's notifications in a marketplace go to.
    pub async fn amazon_store(&self, seller_id: &str, marketplace_id: &str) -> Result<Option<PolledStore>, TableError> {
        self.get(keys::amazon_seller(seller_id, marketplace_id), keys::STORE_REF).await
    }

    /// Every store the poller looks at.
    pub async fn polled_stores(&self) -> Result<Vec<PolledStore>, TableError> {
        self.partition_prefix(keys::POLLING.to_owned(), "STORE#").await
    }

    pub async fn poll_state(&self, store: StoreId) -> Result<PollState, TableError> {
        Ok(self.get(keys::poll_state(store), keys::POLL_STATE).await?.unwrap_or_default())
    }

    pub async fn save_poll_state(&self, store: StoreId, state: &PollState) -> Result<(), TableError> {
        self.put(item(keys::poll_state(store), keys::POLL_STATE, state)?).await
    }

    pub async fn save_product(&self, retailer: RetailerId, product: &Product) -> Result<(), TableError> {
        self.put(item(keys::retailer(retailer), &keys::product(product.sku.as_str()), product)?).await
    }

    pub async fn products(&self, retailer: RetailerId) -> Result<Vec<Product>, TableError> {
        self.partition_prefix(keys::retailer(retailer), "PRODUCT#").await
    }

    /// The products of these SKUs, in one batch read; unknown SKUs are absent.
    pub async fn products_by_sku(
        &self,
        retailer: RetailerId,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, Product>, TableError> {
        let keys: Vec<(String, String)> =
            skus.iter().map(|sku| (keys::retailer(retailer), keys::product(sku.as_str()))).collect();
        let found: Vec<Product> = self.batch_get(keys).await?;
        Ok(found.into_iter().map(|product| (product.sku.clone(), product)).collect())
    }

    /// A channel order's record and its purchase orders, read consistently.
    pub async fn order_record(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> Result<(Option<OrderRecord>, Vec<PurchaseOrderId>), TableError> {
        let item =
            self.item_now(keys::retailer(retailer), &keys::channel_order(store, channel_order_id.as_str())).await?;
        let Some(mut found) = item else { return Ok((None, Vec::new())) };
        let ids = purchase_order_ids(found.remove(CHANNEL_ORDER_IDS));
        let record = if found.contains_key(crate::codec::DATA) { Some(record(found)?) } else { None };
        Ok((record, ids))
    }

    /// The order record shipsync id `id` names.
    pub async fn order_record_by_id(&self, id: u64) -> Result<Option<(OrderRecord, Vec<PurchaseOrderId>)>, TableError> {
        let found: Option<OrderRef> = self.get(keys::order_ref(id), keys::ORDER_REF).await?;
        let Some(found) = found else { return Ok(None) };
        let (record, ids) = self.order_record(found.retailer_id, found.store_id, &found.channel_order_id).await?;
        Ok(record.map(|record| (record, ids)))
    }

    /// The order record shipsync id `id` names, if it is this retailer's: another retailer's is
    /// as absent as a missing one (and its record is not read).
    pub async fn retailer_order_record_by_id(
        &self,
        retailer_id: RetailerId,
        id: u64,
    ) -> Result<Option<(OrderRecord, Vec<PurchaseOrderId>)>, TableError> {
        let found: Option<OrderRef> = self.get(keys::order_ref(id), keys::ORDER_REF).await?;
        let Some(found) = found.filter(|found| found.retailer_id == retailer_id) else { return Ok(None) };
        let (record, ids) = self.order_record(found.retailer_id, found.store_id, &found.channel_order_id).await?;
        Ok(record.filter(|record| record.retailer_id == retailer_id).map(|record| (record, ids)))
    }

    /// Writes an order record (its purchase order list is kept), if nobody wrote it since
    /// `record.version - 1`; [`TableError::Conflict`] otherwise.
    pub async fn save_order_record(&self, record: &OrderRecord) -> Result<(), TableError> {
        let data: AttributeValue = serde_dynamo::to_attribute_value(record).map_err(|error| TableError::Corrupt {
            key: record.channel_order_id.to_string(),
            reason: error.to_string(),
        })?;
        // Checked as the whole item would stand (its purchase order list is small beside the order).
        let mut whole = key(
            keys::retailer(record.retailer_id),
            &keys::channel_order(record.store_id, record.channel_order_id.as_str()),
        );
        whole.insert(crate::codec::DATA.into(), data.clone());
        crate::codec::check_fits(&whole)?;
        let condition = if record.version == 1 { "attribute_not_exists(#version)" } else { "#version = :read" };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::retailer(record.retailer_id),
                &keys::channel_order(record.store_id, record.channel_order_id.as_str()),
            )))
            .update_expression("SET #data = :data, #version = :version")
            .condition_expression(condition)
            .expression_attribute_names("#data", crate::codec::DATA)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":data", data)
            .expression_attribute_values(":version", n(record.version))
            .return_values(ReturnValue::None);
        if record.version > 1 {
            request = request.expression_attribute_values(":read", n(record.version - 1));
        }
        self.count_call();
        match request.send().await {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Err(TableError::Conflict("order"));
            }
            Err(error) => return Err(TableError::unavailable("UpdateItem")(error)),
        }
        if record.version == 1 {
            let reference = OrderRef {
                retailer_id: record.retailer_id,
                store_id: record.store_id,
                channel_order_id: record.channel_order_id.clone(),
            };
            self.put(item(keys::order_ref(record.id), keys::ORDER_REF, &reference)?).await?;
        }
        Ok(())
    }

    /// Writes a changed purchase order if nobody changed it since it was read.
    /// Writes a changed purchase order if nobody changed it since it was read: one item, so one
    /// conditional update rather than a transaction.
    pub async fn update_purchase_order(&self, po: &PurchaseOrder) -> Result<(), TableError> {
        crate::purchase_orders::update_purchase_order_alone(self, po).await
    }

    /// Lists a problem (again: the same key replaces it) where people look.
    pub async fn put_problem(&self, retailer: RetailerId, problem: &OrderProblem) -> Result<(), TableError> {
        let mut record = item(keys::retailer(retailer), &keys::problem(&problem.key), problem)?;
        record.insert(BY_ATTENTION.partition_key.into(), s(keys::retailer_attention(retailer)));
        record.insert(BY_ATTENTION.sort_key.into(), s(format!("{}#{}", keys::by_time(problem.since, 0), problem.key)));
        self.put(record).await
    }

    /// The problems listed whose key starts with `key_prefix`, in one query.
    pub async fn problems_with_prefix(
        &self,
        retailer: RetailerId,
        key_prefix: &str,
    ) -> Result<Vec<OrderProblem>, TableError> {
        self.partition_prefix(keys::retailer(retailer), &keys::problem(key_prefix)).await
    }

    pub async fn delete_problem(&self, retailer: RetailerId, problem_key: &str) -> Result<(), TableError> {
        self.count_call();
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::retailer(retailer), &keys::problem(problem_key))))
            .send()
            .await
            .map_err(TableError::unavailable("DeleteItem"))?;
        Ok(())
    }

    /// Keeps a payload that could not be applied beside the problem `problem_key` (whole, or its
    /// first bytes if it would not fit one item).
    pub async fn keep_payload(
        &self,
        retailer: RetailerId,
        problem_key: &str,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<KeptPayload, TableError> {
        let kept = KeptPayload {
            problem_key: problem_key.to_owned(),
            received_at,
            size: body.len(),
            sha256: sha256_hex(body),
            truncated: body.len() > MAX_KEPT_BYTES,
        };
        let mut record = item(keys::retailer(retailer), &keys::kept_payload(problem_key), &kept)?;
        let bytes = body.get(..MAX_KEPT_BYTES).unwrap_or(body);
        record.insert(PAYLOAD_BODY.into(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes)));
        self.put(record).await?;
        Ok(kept)
    }

    /// A kept payload and its bytes.
    pub async fn kept_payload(
        &self,
        retailer: RetailerId,
        problem_key: &str,
    ) -> Result<Option<(KeptPayload, Vec<u8>)>, TableError> {
        self.count_call();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::retailer(retailer), &keys::kept_payload(problem_key))))
            .send()
            .await
            .map_err(TableError::unavailable("GetItem"))?;
        let Some(mut found) = output.item else { return Ok(None) };
        let bytes = match found.remove(PAYLOAD_BODY) {
            Some(AttributeValue::B(blob)) => blob.into_inner(),
            _ => Vec::new(),
        };
        Ok(Some((record(found)?, bytes)))
    }

    /// A page of what needs a person: failed exports and order problems, oldest first (after
    /// `after`, a cursor an earlier page handed out).
    pub async fn attention(
        &self,
        retailer: RetailerId,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<Attention>, TableError> {
        let page: SearchPage<Item> = self
            .search_index_items(
                BY_ATTENTION,
                keys::retailer_attention(retailer),
                TimeRange::default(),
                Filter::default(),
                paging,
                after,
            )
            .await?;
        page.try_map(|item| {
            let is_shipment = item.get(PK).and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.starts_with("SHIPMENT#"));
            if is_shipment {
                record::<Shipment>(item).map(|s| Attention::FailedExport(Box::new(s)))
            } else {
                record::<OrderProblem>(item).map(Attention::Problem)
            }
        })
    }
}

fn purchase_order_ids(list: Option<AttributeValue>) -> Vec<PurchaseOrderId> {
    list.and_then(|list| list.as_l().ok().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|value| value.as_n().ok().and_then(|text| text.parse().ok()))
        .map(PurchaseOrderId::new_unchecked)
        .collect()
}
