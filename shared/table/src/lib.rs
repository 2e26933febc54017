//! DynamoDB persistence for shipsync, the [`Table`]: one table, six indexes (five listing indexes
//! and the sweeper's `by_export_due`), and writes that are atomic and conditional so that
//! concurrent requests can never over-fulfil an order or lose an update.
//!
//! Every record kind, its keys and every access pattern are listed in [`schema`] (`schema.rs`);
//! the key values are made in `keys.rs`, and a test keeps the two in step.

mod cipher;
mod codec;
mod error;
mod keys;
mod orders;
mod ports;
mod purchase_orders;
mod rekey;
pub mod schema;
mod search;
mod sequence;
mod shipments;
mod stores;
mod sweep;
mod tenants;

pub use cipher::KmsCipher;
pub use error::TableError;
pub use orders::{Attention, EXPIRES_AT, PollState, PolledStore};
pub use search::SearchPage;
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
}

impl Table {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), calls: Arc::default(), cipher: None }
    }

    /// The cipher channel credentials are sealed (and opened) with.
    pub fn with_cipher(mut self, cipher: Arc<dyn CredentialCipher>) -> Self {
        self.cipher = Some(cipher);
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
}

impl Table {
    /// The underlying client, for set-up work such as creating the table locally.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
