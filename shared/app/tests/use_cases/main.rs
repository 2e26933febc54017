//! The use cases against the in-memory ports: every rule that needs no emulator, in
//! milliseconds. The moto tier (`tests/integration`) covers the adapters and whole flows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod exports;
mod fixtures;
mod intake;
mod marketplaces;
mod polling;
mod settings;
mod shipments;
