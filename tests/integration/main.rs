//! shipsync's integration tests: every request goes through the API handler and the real AWS
//! SDK to a moto server that the harness starts on a free port.

// A test fails by panicking; its helpers may too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod amazon;
mod backmarket;
mod calls;
mod cancellations;
mod carriers;
mod console;
mod contract;
mod costs;
mod create;
mod credentials;
mod custom_channel;
mod ebay;
mod export;
mod groupon;
mod harness;
mod iam;
mod infra;
mod isolation;
mod labels;
mod limits;
mod local_stack;
mod marketplaces;
mod polling;
mod purchase_orders;
mod returns;
mod search;
mod search_budget;
mod stores;
mod stranded;
mod update;
mod walmart;
mod webhooks;
mod wish;
mod woocommerce;
