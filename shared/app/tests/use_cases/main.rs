//! The use cases against the in-memory ports: every rule that needs no emulator, in
//! milliseconds. The moto tier (`tests/integration`) covers the adapters and whole flows.

mod fixtures;
mod intake;
