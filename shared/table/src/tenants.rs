//! Retailers, their carriers, vendors and stores, and API users.

use shipsync_domain::access::ApiUser;
use shipsync_domain::carrier::{Carrier, default_carriers};
use shipsync_domain::ids::{RetailerId, VendorId};
use shipsync_domain::tenant::{ChannelStore, Retailer, Vendor};

use crate::codec::{Item, item, key, record, s};
use crate::keys::{self, API_USER, CARRIERS_END, PK, RETAILER_PROFILE, SK};
use crate::{Table, TableError};

impl Table {
    /// Writes a record that must not exist yet.
    pub(crate) async fn put_new(&self, item: Item, what: String) -> Result<(), TableError> {
        crate::codec::check_fits(&item)?;
        let pk = item.get(PK).cloned();
        self.count_call();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        self.forget_key(pk.as_ref());
        crate::error::conditional_write(result, "PutItem", || TableError::AlreadyExists(what))
    }

    pub(crate) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, TableError> {
        // Not through `get_item`: one more async layer under every read exceeds the compiler's
        // layout depth in the Lambda binaries.
        self.count_call();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(TableError::unavailable("GetItem"))?;
        output.item.map(record).transpose()
    }

    /// One item as DynamoDB holds it.
    pub(crate) async fn get_item(&self, pk: String, sk: &str) -> Result<Option<crate::codec::Item>, TableError> {
        self.count_call();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(TableError::unavailable("GetItem"))?;
        Ok(output.item)
    }

    pub async fn put_retailer(&self, retailer: &Retailer) -> Result<(), TableError> {
        let item = item(keys::retailer(retailer.id), RETAILER_PROFILE, retailer)?;
        self.put_new(item, format!("retailer {}", retailer.id)).await
    }

    /// A retailer's profile and every carrier it can use (the defaults, then its own), in one query.
    pub async fn retailer_with_carriers(&self, id: RetailerId) -> Result<Option<(Retailer, Vec<Carrier>)>, TableError> {
        let memory_key = format!("{}/{RETAILER_PROFILE}+CARRIERS", keys::retailer(id));
        self.cache.get_or_read(memory_key, || self.read_retailer_with_carriers(id)).await
    }

    async fn read_retailer_with_carriers(
        &self,
        id: RetailerId,
    ) -> Result<Option<(Retailer, Vec<Carrier>)>, TableError> {
        self.count_call();
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk < :end")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::retailer(id)))
            .expression_attribute_values(":end", s(CARRIERS_END))
            .send()
            .await
            .map_err(TableError::unavailable("Query"))?;
        let mut retailer = None;
        let mut carriers = default_carriers();
        for item in output.items.unwrap_or_default() {
            let is_profile = item.get(SK).and_then(|v| v.as_s().ok()).is_some_and(|sk| sk == RETAILER_PROFILE);
            if is_profile {
                retailer = Some(record::<Retailer>(item)?);
            } else {
                carriers.push(record::<Carrier>(item)?);
            }
        }
        Ok(retailer.map(|retailer| (retailer, carriers)))
    }

    pub async fn put_carrier(&self, retailer_id: RetailerId, carrier: &Carrier) -> Result<(), TableError> {
        let item = item(keys::retailer(retailer_id), &keys::carrier(carrier.id.get()), carrier)?;
        self.put_new(item, format!("carrier {}", carrier.id)).await
    }

    pub async fn put_vendor(&self, vendor: &Vendor) -> Result<(), TableError> {
        let item = item(keys::retailer(vendor.retailer_id), &keys::vendor(vendor.id), vendor)?;
        self.put_new(item, format!("vendor {}", vendor.id)).await
    }

    pub async fn vendor(&self, retailer_id: RetailerId, id: VendorId) -> Result<Option<Vendor>, TableError> {
        self.get_cached(keys::retailer(retailer_id), &keys::vendor(id)).await
    }

    pub async fn put_store(&self, store: &ChannelStore) -> Result<(), TableError> {
        // The seller is claimed first: a store never points at a seller another store holds.
        self.claim_amazon_seller(store).await?;
        let item = item(keys::retailer(store.retailer_id), &keys::store(store.id.get()), store)?;
        self.put_new(item, format!("store {}", store.id)).await?;
        self.put_store_ref(store).await
    }

    pub async fn put_api_user(&self, user: &ApiUser) -> Result<(), TableError> {
        let item = item(keys::api_user(&user.key), API_USER, user)?;
        self.put_new(item, format!("API user {}", user.key)).await
    }

    /// Any record's data as JSON, whichever way it is stored (for operators: `shipsync-admin show`).
    pub async fn record_json(&self, pk: &str, sk: &str) -> Result<Option<serde_json::Value>, TableError> {
        self.get(pk.to_owned(), sk).await
    }

    pub async fn api_user(&self, key: &str) -> Result<Option<ApiUser>, TableError> {
        self.get_cached(keys::api_user(key), API_USER).await
    }
}
