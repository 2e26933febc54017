//! The channel clients against local fakes, in one test binary (one link): what a retry adopts and
//! sends (`adoption`), that no answer can crash a client (`channel_answers`), how each
//! marketplace's orders are read, accepted and confirmed (`amazon_reads`, `ebay_reads`,
//! `back_market_reads`), and what each carrier-tracking service receives (`trackers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adoption;
mod amazon_notifications;
mod amazon_reads;
mod back_market_reads;
mod cancellations;
mod channel_answers;
mod ebay_reads;
mod port;
mod trackers;
