//! Operator tools: the local stack (`shipsync-local`, with its fake Shopify and fake marketplaces), the admin command
//! (`shipsync-admin`), the benchmark (`shipsync-bench`), and the moto harness the tests share with them.

pub mod args;
pub mod coldstart;
pub mod cost;
pub mod demo;
pub mod fake_marketplaces;
pub mod fake_shopify;
pub mod local_aws;
pub mod local_server;
pub mod moto;
pub mod provision;
pub mod runner;

use shipsync_table::Table;

/// A store on a DynamoDB endpoint (moto, locally) with static test credentials.
pub async fn store_at(endpoint: &str, table: &str) -> Table {
    let config = local_aws::sdk_config(endpoint).await;
    Table::new(aws_sdk_dynamodb::Client::new(&config), table)
}
