//! DynamoDB persistence for shipsync: one table, four indexes, and writes that are atomic and
//! conditional so that concurrent requests can never over-fulfil an order or lose an update.
//!
//! The layout and every access pattern are described in `schema.rs`.

mod codec;
mod error;
mod keys;
mod orders;
mod purchase_orders;
pub mod schema;
mod search;
mod sequence;
mod shipments;
mod stores;
mod tenants;

pub use error::StoreError;
pub use orders::{Attention, EXPIRES_AT, KeptPayload, MAX_KEPT_BYTES, OrderRecord, PollState, PolledStore, sha256_hex};
pub use search::SearchPage;
pub use stores::{ChannelCredentials, ChannelOrder};

use aws_sdk_dynamodb::Client;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The shipsync table, through the AWS SDK.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    calls: Arc<AtomicU64>,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), calls: Arc::default() }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// How many DynamoDB calls this store has made: the figure the benchmarks report.
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl Store {
    /// The underlying client, for set-up work such as creating the table locally.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
