//! Stores (sales channels), their credentials, and the channel orders that group purchase orders.

use std::collections::BTreeMap;

use shipsync_domain::ids::{PurchaseOrderId, RetailerId, StoreId};
use shipsync_domain::tenant::{Store as ChannelStore, Vendor};

use crate::codec::{item, record, s};
use crate::keys::{self, PK, SK};
use crate::{Store, StoreError};

/// A store's channel credentials. Kept in their own record, read only by the exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelCredentials(pub BTreeMap<String, String>);

/// The purchase orders one channel order was split into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelOrder {
    pub purchase_order_ids: Vec<PurchaseOrderId>,
}

impl Store {
    pub async fn channel_store(
        &self,
        retailer_id: RetailerId,
        id: StoreId,
    ) -> Result<Option<ChannelStore>, StoreError> {
        self.get(keys::retailer(retailer_id), &keys::store(id.get())).await
    }

    /// Replaces a store's settings.
    pub async fn save_channel_store(&self, store: &ChannelStore) -> Result<(), StoreError> {
        let item = item(keys::retailer(store.retailer_id), &keys::store(store.id.get()), store)?;
        self.put(item).await?;
        self.put_store_ref(store).await
    }

    pub async fn channel_stores(&self, retailer_id: RetailerId) -> Result<Vec<ChannelStore>, StoreError> {
        self.partition_prefix(keys::retailer(retailer_id), "STORE#").await
    }

    pub async fn save_credentials(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
    ) -> Result<(), StoreError> {
        self.put(item(keys::retailer(retailer_id), &keys::store_secret(store), credentials)?).await
    }

    pub async fn credentials(&self, retailer_id: RetailerId, store: StoreId) -> Result<ChannelCredentials, StoreError> {
        Ok(self.get(keys::retailer(retailer_id), &keys::store_secret(store)).await?.unwrap_or_default())
    }

    pub async fn save_vendor(&self, vendor: &Vendor) -> Result<(), StoreError> {
        self.put(item(keys::retailer(vendor.retailer_id), &keys::vendor(vendor.id), vendor)?).await
    }

    pub async fn vendors(&self, retailer_id: RetailerId) -> Result<Vec<Vendor>, StoreError> {
        self.partition_prefix(keys::retailer(retailer_id), "VENDOR#").await
    }

    /// The purchase orders of a channel order, read consistently (just-written quantities count).
    pub async fn channel_order(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        channel_order_id: &str,
    ) -> Result<ChannelOrder, StoreError> {
        self.count_call();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(crate::codec::key(
                keys::retailer(retailer_id),
                &keys::channel_order(store, channel_order_id),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable("GetItem"))?;
        let ids = output
            .item
            .and_then(|mut item| item.remove(crate::purchase_orders::CHANNEL_ORDER_IDS))
            .and_then(|list| list.as_l().ok().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|value| value.as_n().ok().and_then(|text| text.parse().ok()))
            .map(PurchaseOrderId::new_unchecked)
            .collect();
        Ok(ChannelOrder { purchase_order_ids: ids })
    }

    /// Writes a record whatever was there.
    pub(crate) async fn put(&self, item: crate::codec::Item) -> Result<(), StoreError> {
        crate::codec::check_fits(&item)?;
        self.count_call();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::unavailable("PutItem"))?;
        Ok(())
    }

    /// Every record of a partition whose sort key starts with `prefix`.
    pub(crate) async fn partition_prefix<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            self.count_call();
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable("Query"))?;
            for item in output.items.unwrap_or_default() {
                records.push(record(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(records);
            }
        }
    }
}
