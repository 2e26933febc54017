//! DynamoDB persistence for shipsync, the [`Table`]: one table, five indexes (four listing indexes
//! and the sweeper's `by_export_due`), and writes that are atomic and conditional so that
//! concurrent requests can never over-fulfil an order or lose an update.
//!
//! Every record kind, its keys and every access pattern are listed in [`schema`] (`schema.rs`);
//! the key values are made in `keys.rs`, and a test keeps the two in step.

mod cache;
mod cancellations;
mod cipher;
mod codec;
mod cursor;
mod error;
mod keys;
mod labels;
mod orders;
mod ports;
mod purchase_orders;
mod rekey;
mod returns;
pub mod schema;
mod search;
mod sequence;
mod shipments;
mod stores;
mod sweep;
mod tenants;

pub use cache::SETTINGS_TTL;
pub use cipher::KmsCipher;
pub use codec::item_size;
pub use cursor::{InvalidCursor, MAX_CURSOR_CHARS, SearchCursor};
pub use error::TableError;
pub use orders::Attention;
pub use search::{SEARCH_BUDGET, SearchPage};
pub use stores::ChannelOrder;

use aws_sdk_dynamodb::Client;
use shipsync_domain::secrets::CredentialCipher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The shipsync table, through the AWS SDK.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    table: String,
    calls: Arc<AtomicU64>,
    /// Seals channel credentials (and opens them, where the function may). Without one,
    /// credentials can be neither saved nor read: nothing is ever stored in plaintext.
    cipher: Option<Arc<dyn CredentialCipher>>,
    /// Settings records (API users, retailers, vendors, stores, opened credentials) kept for a
    /// short while: shared by every clone, as the functions of one container share it.
    cache: cache::SettingsCache,
    /// Ids reserved by this container and not handed out yet (see `allocate_ids`).
    id_reserve: Arc<std::sync::Mutex<Option<std::ops::RangeInclusive<u64>>>>,
    /// How many index entries a filtered search examines per request ([`SEARCH_BUDGET`]).
    search_budget: u64,
}

/// What a function may do with channel credentials; its KMS grant says the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialAccess<'a> {
    /// Neither seal nor open (the order processor, the sweeper).
    None,
    /// Seal only (the API: credentials are write-only).
    Seal { key_id: &'a str },
    /// Seal and open (the functions that call channels or check webhook signatures).
    Open { key_id: &'a str },
}

impl Table {
    /// The table as a function is deployed with: a DynamoDB client from `aws`, and the KMS
    /// cipher its credential access calls for.
    pub fn connect(aws: &aws_config::SdkConfig, name: &str, access: CredentialAccess<'_>) -> Self {
        let table = Self::new(Client::new(aws), name);
        let kms = || aws_sdk_kms::Client::new(aws);
        match access {
            CredentialAccess::None => table,
            CredentialAccess::Seal { key_id } => table.with_cipher(Arc::new(KmsCipher::encrypt_only(kms(), key_id))),
            CredentialAccess::Open { key_id } => table.with_cipher(Arc::new(KmsCipher::new(kms(), key_id))),
        }
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            calls: Arc::default(),
            cipher: None,
            cache: cache::SettingsCache::new(SETTINGS_TTL),
            id_reserve: Arc::default(),
            search_budget: SEARCH_BUDGET,
        }
    }

    /// The cipher channel credentials are sealed (and opened) with.
    pub fn with_cipher(mut self, cipher: Arc<dyn CredentialCipher>) -> Self {
        self.cipher = Some(cipher);
        // Its own memory: credentials another copy opened must not be handed out by one that
        // may not open them (the API's table can only seal).
        self.cache = self.cache.emptied();
        self
    }

    /// Keeps settings records for `ttl` instead of [`SETTINGS_TTL`] (zero: reads every time), as
    /// a separate memory from the table it is made from.
    pub fn with_settings_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.cache = self.cache.with_ttl(ttl);
        self
    }

    /// Lets a filtered search examine `entries` index entries per request instead of
    /// [`SEARCH_BUDGET`] (tests use a small one, to reach it with little data).
    pub fn with_search_budget(mut self, entries: u64) -> Self {
        self.search_budget = entries.max(1);
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// How many DynamoDB calls this table has made: the figure the benchmarks report.
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A settings record, from the container's memory while it is fresh.
    pub(crate) async fn get_cached<T>(&self, pk: String, sk: &str) -> Result<Option<T>, TableError>
    where
        T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let memory_key = format!("{pk}/{sk}");
        // Consistent: a record kept for a minute must not be one a write has already replaced. Only
        // a record found is kept.
        self.cache
            .get_or_read_found(memory_key, || async { self.item_now(pk, sk).await?.map(codec::record).transpose() })
            .await
    }

    /// Forgets what this container remembers of a retailer's settings (see `cache.rs`).
    pub fn forget_settings(&self, retailer: shipsync_domain::ids::RetailerId) {
        self.cache.forget(&format!("{}/", keys::retailer(retailer)));
    }

    /// Forgets the kept settings records of the partition an item was just written to.
    pub(crate) fn forget_key(&self, pk: Option<&aws_sdk_dynamodb::types::AttributeValue>) {
        if let Some(pk) = pk.and_then(|value| value.as_s().ok()) {
            self.cache.forget(&format!("{pk}/"));
        }
    }
}

impl Table {
    /// An item as it stands after every write so far (a consistent read): for the reads that
    /// decide a write which may race another.
    pub(crate) async fn item_now(&self, pk: String, sk: &str) -> Result<Option<codec::Item>, TableError> {
        self.count_call();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(TableError::unavailable("GetItem"))?;
        Ok(output.item)
    }

    /// The underlying client, for set-up work such as creating the table locally.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
