//! The channel clients against local fakes, in one test binary (one link): what a retry adopts and
//! sends (`adoption`), that no answer can crash a client (`channel_answers`), and what each
//! carrier-tracking service receives (`trackers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adoption;
mod channel_answers;
mod port;
mod trackers;
