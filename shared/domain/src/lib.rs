//! The shipsync domain: what a shipment, a purchase order and a carrier are, and the rules that
//! decide what may be created, changed and searched. Pure Rust: no AWS, Lambda or HTTP here, so
//! every rule is a plain function that a unit test can call.

pub mod access;
pub mod cancellations;
pub mod carrier;
pub mod error;
pub mod export;
pub mod history;
pub mod ids;
pub mod labels;
pub mod limits;
pub mod mail;
pub mod money;
pub mod orders;
pub mod purchase_order;
pub mod returns;
pub mod search;
pub mod secrets;
pub mod shipment;
pub mod tenant;
pub mod time;
pub mod tracking;
pub mod vocabulary;

pub use error::{FieldError, ValidationErrors};
