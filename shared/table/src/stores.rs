//! Stores (sales channels), their credentials, and the channel orders that group purchase orders.

use shipsync_domain::vocabulary::ChannelOrderId;
use std::collections::BTreeMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, StoreId};
use shipsync_domain::secrets::{ChannelCredentials, CipherError, CredentialContext, SecretPurpose};
use shipsync_domain::tenant::{ChannelStore, Vendor};

use crate::codec::{item, record, s};
use crate::keys::{self, PK, SK};
use crate::{Table, TableError};

/// The attribute holding the sealed API credentials (KMS ciphertext, binary, purpose `channel`).
pub const CIPHERTEXT: &str = "ciphertext";
/// The attribute holding the sealed webhook secrets (purpose `webhook`): the only ones the
/// webhook function may open.
pub const WEBHOOK_CIPHERTEXT: &str = "webhook_ciphertext";

/// The attribute holding a credential renewal's lease: until when one container renews.
pub const RENEWAL_LEASE: &str = "renewing_until";

/// A lease's time as stored: comparable as text.
fn lease_text(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What stays readable of a credentials record: the names, never a value.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SealedCredentials {
    names: Vec<String>,
}

fn no_cipher(key: &str) -> TableError {
    TableError::Unavailable {
        operation: "credentials",
        source: format!("{key}: no credential cipher is configured").into(),
    }
}

fn cipher_failure<'a>(key: &'a str, operation: &'static str) -> impl FnOnce(CipherError) -> TableError + 'a {
    move |error| match error {
        CipherError::Refused(reason) => TableError::Corrupt { key: key.to_owned(), reason },
        CipherError::Unavailable(reason) => TableError::Unavailable { operation, source: reason.into() },
    }
}

/// The purchase orders one channel order was split into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelOrder {
    pub purchase_order_ids: Vec<PurchaseOrderId>,
}

impl Table {
    pub async fn channel_store(
        &self,
        retailer_id: RetailerId,
        id: StoreId,
    ) -> Result<Option<ChannelStore>, TableError> {
        self.get_cached(keys::retailer(retailer_id), &keys::store(id.get())).await
    }

    /// Replaces a store's settings.
    pub async fn save_channel_store(&self, store: &ChannelStore) -> Result<(), TableError> {
        // As stored now, not as this container remembers it: its seller is released below.
        let before: Option<ChannelStore> =
            self.get(keys::retailer(store.retailer_id), &keys::store(store.id.get())).await?;
        // The seller is claimed first: a store never points at a seller another store holds.
        self.claim_amazon_seller(store).await?;
        let item = item(keys::retailer(store.retailer_id), &keys::store(store.id.get()), store)?;
        self.put(item).await?;
        self.put_store_ref(store).await?;
        // A seller the store no longer names is free for the store that does.
        match before {
            Some(before) => self.release_amazon_seller(&before, store).await,
            None => Ok(()),
        }
    }

    pub async fn channel_stores(&self, retailer_id: RetailerId) -> Result<Vec<ChannelStore>, TableError> {
        self.partition_prefix(keys::retailer(retailer_id), "STORE#").await
    }

    /// Seals a store's credentials (KMS, bound to the retailer, the store and their purpose) and
    /// replaces the stored ones, in one write. API credentials and webhook secrets are sealed
    /// apart, so that opening one never opens the other. Only the names stay readable, so the API
    /// can say which are set.
    pub async fn save_credentials(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
    ) -> Result<(), TableError> {
        let sk = keys::store_secret(store);
        let record_key = format!("{}/{sk}", keys::retailer(retailer_id));
        let names = SealedCredentials { names: credentials.0.keys().cloned().collect() };
        let mut item = item(keys::retailer(retailer_id), &sk, &names)?;
        for (purpose, attribute) in [(SecretPurpose::Channel, CIPHERTEXT), (SecretPurpose::Webhook, WEBHOOK_CIPHERTEXT)]
        {
            let part: BTreeMap<&String, &String> =
                credentials.0.iter().filter(|(name, _)| SecretPurpose::of(name) == purpose).collect();
            let ciphertext =
                self.seal(CredentialContext::store(retailer_id, store, purpose), &part, &record_key).await?;
            item.insert(attribute.to_owned(), AttributeValue::B(Blob::new(ciphertext)));
        }
        self.put(item).await
    }

    /// Takes the renewal of a store's shared channel token until `until`, unless another
    /// container holds a lease that has not run out (`Ok(false)`). Leases compare as text: both
    /// are written by [`lease_text`], in UTC, to the millisecond.
    pub async fn lease_credential_renewal(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, TableError> {
        self.count_call();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(crate::codec::key(keys::retailer(retailer_id), &keys::store_secret(store))))
            .update_expression("SET #lease = :until")
            .condition_expression("attribute_exists(#pk) AND (attribute_not_exists(#lease) OR #lease < :now)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#lease", RENEWAL_LEASE)
            .expression_attribute_values(":until", AttributeValue::S(lease_text(until)))
            .expression_attribute_values(":now", AttributeValue::S(lease_text(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(error) => Err(TableError::unavailable("UpdateItem")(error)),
        }
    }

    /// Ends this container's lease (taken until `lease`) without a renewal; another's stays.
    pub async fn release_credential_renewal(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        lease: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), TableError> {
        self.count_call();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(crate::codec::key(keys::retailer(retailer_id), &keys::store_secret(store))))
            .update_expression("REMOVE #lease")
            .condition_expression("#lease = :lease")
            .expression_attribute_names("#lease", RENEWAL_LEASE)
            .expression_attribute_values(":lease", AttributeValue::S(lease_text(lease)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(error) => Err(TableError::unavailable("UpdateItem")(error)),
        }
    }

    /// Seals renewed API credentials in place of the stored ones, keeping the webhook secrets
    /// as sealed, in one write conditioned on the lease taken until `lease` (which the write
    /// ends). `Ok(false)`: the lease is no longer this container's, and nothing was written.
    pub async fn save_renewed_credentials(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
        lease: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, TableError> {
        let sk = keys::store_secret(store);
        let record_key = format!("{}/{sk}", keys::retailer(retailer_id));
        let Some(mut stored) = self.item_now(keys::retailer(retailer_id), &sk).await? else {
            return Ok(false);
        };
        let webhook = stored.remove(WEBHOOK_CIPHERTEXT);
        let held: SealedCredentials = record(stored)?;
        let channel_part: BTreeMap<&String, &String> =
            credentials.0.iter().filter(|(name, _)| SecretPurpose::of(name) == SecretPurpose::Channel).collect();
        let mut names: Vec<String> =
            held.names.into_iter().filter(|name| SecretPurpose::of(name) == SecretPurpose::Webhook).collect();
        names.extend(channel_part.keys().map(|name| (*name).clone()));
        names.sort();
        let mut item = item(keys::retailer(retailer_id), &sk, &SealedCredentials { names })?;
        let ciphertext = self
            .seal(CredentialContext::store(retailer_id, store, SecretPurpose::Channel), &channel_part, &record_key)
            .await?;
        item.insert(CIPHERTEXT.to_owned(), AttributeValue::B(Blob::new(ciphertext)));
        if let Some(webhook) = webhook {
            item.insert(WEBHOOK_CIPHERTEXT.to_owned(), webhook);
        }
        crate::codec::check_fits(&item)?;
        self.count_call();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#lease = :lease")
            .expression_attribute_names("#lease", RENEWAL_LEASE)
            .expression_attribute_values(":lease", AttributeValue::S(lease_text(lease)))
            .send()
            .await;
        self.forget_settings(retailer_id);
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(error) => Err(TableError::unavailable("PutItem")(error)),
        }
    }

    pub(crate) async fn seal(
        &self,
        context: CredentialContext,
        secrets: &BTreeMap<&String, &String>,
        record_key: &str,
    ) -> Result<Vec<u8>, TableError> {
        let cipher = self.cipher.as_ref().ok_or_else(|| no_cipher(record_key))?;
        let plaintext = serde_json::to_vec(secrets)
            .map_err(|error| TableError::Corrupt { key: record_key.to_owned(), reason: error.to_string() })?;
        cipher.encrypt(context, &plaintext).await.map_err(cipher_failure(record_key, "KMS Encrypt"))
    }

    /// A store's API credentials, opened: only for functions whose cipher may decrypt them (those
    /// that call channels). A record that does not open for this store (copied from another, or
    /// sealed under another key) is refused as [`TableError::Corrupt`].
    pub async fn credentials(&self, retailer_id: RetailerId, store: StoreId) -> Result<ChannelCredentials, TableError> {
        self.open_cached(retailer_id, store, SecretPurpose::Channel).await
    }

    /// A store's webhook secrets, opened: all the webhook function may see. Which of them sign
    /// what is the channel's to say (`shipsync_channels::ShopifyWebhookSecrets`).
    pub async fn webhook_credentials(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
    ) -> Result<ChannelCredentials, TableError> {
        self.open_cached(retailer_id, store, SecretPurpose::Webhook).await
    }

    /// Opened credentials are kept like other settings: a warm container decrypts a store's
    /// credentials once a minute at most, not on every export or webhook.
    async fn open_cached(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        purpose: SecretPurpose,
    ) -> Result<ChannelCredentials, TableError> {
        let memory_key = format!("{}/{}#{purpose:?}", keys::retailer(retailer_id), keys::store_secret(store));
        self.cache.get_or_read(memory_key, || self.open(retailer_id, store, purpose)).await
    }

    async fn open(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        purpose: SecretPurpose,
    ) -> Result<ChannelCredentials, TableError> {
        let sk = keys::store_secret(store);
        let record_key = format!("{}/{sk}", keys::retailer(retailer_id));
        let Some(mut found) = self.get_item(keys::retailer(retailer_id), &sk).await? else {
            return Ok(ChannelCredentials::default());
        };
        let cipher = self.cipher.as_ref().ok_or_else(|| no_cipher(&record_key))?;
        let attribute = match purpose {
            SecretPurpose::Channel => CIPHERTEXT,
            SecretPurpose::Webhook => WEBHOOK_CIPHERTEXT,
        };
        let ciphertext = match found.remove(attribute) {
            Some(AttributeValue::B(blob)) => blob.into_inner(),
            _ => {
                return Err(TableError::Corrupt {
                    key: record_key,
                    reason: "no sealed credentials (stored before encryption: set them again)".into(),
                });
            }
        };
        let context = CredentialContext::store(retailer_id, store, purpose);
        let plaintext =
            cipher.decrypt(context, &ciphertext).await.map_err(cipher_failure(&record_key, "KMS Decrypt"))?;
        let map = serde_json::from_slice(&plaintext)
            .map_err(|error| TableError::Corrupt { key: record_key, reason: error.to_string() })?;
        Ok(ChannelCredentials(map))
    }

    /// Seals every store's credentials that an earlier version stored in plaintext (no
    /// ciphertext beside them). Needs only a cipher that
    /// encrypts. Returns how many records it sealed.
    pub async fn seal_plaintext_credentials(&self) -> Result<usize, TableError> {
        let mut sealed = 0;
        for entry in self.polled_stores().await? {
            let pk = keys::retailer(entry.retailer_id);
            let Some(found) = self.get_item(pk, &keys::store_secret(entry.store_id)).await? else {
                continue;
            };
            if found.contains_key(CIPHERTEXT) {
                continue;
            }
            let plaintext: ChannelCredentials = record(found)?;
            self.save_credentials(entry.retailer_id, entry.store_id, &plaintext).await?;
            sealed += 1;
        }
        Ok(sealed)
    }

    /// The names of a store's credentials, without opening them (for `credentials_set`).
    pub async fn credential_names(&self, retailer_id: RetailerId, store: StoreId) -> Result<Vec<String>, TableError> {
        let sealed: Option<SealedCredentials> =
            self.get_cached(keys::retailer(retailer_id), &keys::store_secret(store)).await?;
        Ok(sealed.map(|sealed| sealed.names).unwrap_or_default())
    }

    pub async fn save_vendor(&self, vendor: &Vendor) -> Result<(), TableError> {
        self.put(item(keys::retailer(vendor.retailer_id), &keys::vendor(vendor.id), vendor)?).await
    }

    pub async fn vendors(&self, retailer_id: RetailerId) -> Result<Vec<Vendor>, TableError> {
        self.partition_prefix(keys::retailer(retailer_id), "VENDOR#").await
    }

    /// The purchase orders of a channel order, read consistently (just-written quantities count).
    pub async fn channel_order(
        &self,
        retailer_id: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> Result<ChannelOrder, TableError> {
        let item =
            self.item_now(keys::retailer(retailer_id), &keys::channel_order(store, channel_order_id.as_str())).await?;
        let ids = item
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
    pub(crate) async fn put(&self, item: crate::codec::Item) -> Result<(), TableError> {
        crate::codec::check_fits(&item)?;
        let pk = item.get(crate::keys::PK).cloned();
        self.count_call();
        let result = self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await;
        // Forgotten once written (whatever the outcome): a read racing the write in this
        // container cannot keep the old value.
        self.forget_key(pk.as_ref());
        result.map_err(TableError::unavailable("PutItem"))?;
        Ok(())
    }

    /// Every record of a partition whose sort key starts with `prefix`.
    pub(crate) async fn partition_prefix<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<T>, TableError> {
        self.partition_prefix_read(pk, prefix, false).await
    }

    /// [`Table::partition_prefix`] as it stands after every write so far (a consistent read):
    /// for the reads that decide a write which may race another.
    pub(crate) async fn partition_prefix_now<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<T>, TableError> {
        self.partition_prefix_read(pk, prefix, true).await
    }

    async fn partition_prefix_read<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
        consistent: bool,
    ) -> Result<Vec<T>, TableError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            self.count_call();
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .consistent_read(consistent)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(TableError::unavailable("Query"))?;
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
