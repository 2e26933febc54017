//! shipsync's use cases. Each is a method of a small struct generic over the ports it needs
//! (`ports`): the domain decides and returns a plan, the use case reads what the domain needs,
//! carries the plan out and writes it back. Function crates adapt events (HTTP requests, SQS
//! messages) to these and nothing more. No AWS or Lambda here, and channels only through their
//! port (`shipsync_channels::Channel`).
//!
//! | use case | where |
//! |---|---|
//! | apply a channel event (order version, cancellation, channel fulfillment, carrier scan) | [`intake::OrderIntake`] |
//! | reprocess an order once its problems are fixed | [`intake::OrderIntake::reprocess`] |
//! | run an export: claim, call the channel, record the outcome, never twice | [`exports::ExportRun`] |
//! | create, update, export on demand a shipment (the API) | [`shipments::ShipmentDesk`] |
//! | fetch orders changed since each store's cursor (channels without webhooks; Shopify's safety net) | [`polling::OrderPolling`] |
//! | create and change a channel store's settings and credentials | [`settings::StoreSettings`] |
//! | release an order's waiting shipments once it has all shipped | [`shipments::release_order_if_shipped`] |
//! | attach shipping labels, list them with download links, render HTML labels to PDF | [`labels::LabelDesk`], [`labels::LabelRendering`] |

pub mod cancellations;
pub mod exports;
pub mod failure;
pub mod intake;
pub mod labels;
pub mod mail;
#[cfg(feature = "memory")]
pub mod memory;
pub mod optimistic;
pub mod polling;
pub mod ports;
pub mod returns;
pub mod settings;
pub mod shipments;

pub use failure::Failure;
