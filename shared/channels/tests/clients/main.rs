//! The channel clients against local fakes, in one test binary (one link): what a retry adopts and
//! sends (`adoption`), and that no answer can crash a client (`channel_answers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adoption;
mod amazon_reads;
mod channel_answers;
mod ebay_reads;
mod port;
