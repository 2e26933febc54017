//! A shipment's history: every change of its state and every channel call's outcome, kept with
//! the shipment itself, so that each is written in the same write as the change it records (no
//! event without its change, no change without its event). Stored compactly (the shipment is
//! written several times in its life, and DynamoDB charges each write by the started kilobyte);
//! the oldest are dropped past [`MAX_EVENTS`], the creation always kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most events a shipment keeps.
pub const MAX_EVENTS: usize = 60;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Created, with its first plan (the state and due time).
    Created,
    /// Made from a fulfillment someone created in the channel (never exported by shipsync).
    ArrivedFromChannel,
    /// Its details were edited.
    Updated,
    /// Its export is planned for `due_at` (someone asked, its order shipped, or a retry).
    Planned,
    /// An export attempt took it.
    Claimed,
    /// The channel has it (`detail`: the channel's ids).
    Exported,
    /// A retry found the channel had it already, and took that.
    Adopted,
    /// An attempt failed in a way worth retrying (`detail`: why), due again at `due_at`.
    Retried,
    /// A channel call failed and was tried again at once, within the attempt (`detail`: why).
    CallFailed,
    /// The channel refused it, or it kept failing (`detail`: the channel's message).
    Failed,
    /// Its export will not go out (`detail`: why).
    Cancelled,
    /// Linked to the same shipment made in the channel.
    Linked,
    /// The carrier reported it (`detail`: the status).
    Scanned,
    /// The carrier's first movement released its export.
    ReleasedByScan,
    /// Its tracking numbers were registered with the tracking provider (or refused for good).
    TrackersRegistered,
    /// Registering its tracking numbers failed; tried again at `due_at`.
    TrackersRetry,
    /// No first scan came in time: listed in order health.
    MovementTimedOut,
    /// Its corrected tracking numbers are being sent to the channel.
    CorrectionClaimed,
    /// The channel took its corrected tracking numbers.
    CorrectionSent,
    /// Sending the correction failed in a way worth retrying.
    CorrectionRetried,
    /// The channel refused its corrected tracking numbers.
    CorrectionRefused,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::ArrivedFromChannel => "arrived_from_channel",
            EventKind::Updated => "updated",
            EventKind::Planned => "planned",
            EventKind::Claimed => "claimed",
            EventKind::Exported => "exported",
            EventKind::Adopted => "adopted",
            EventKind::Retried => "retried",
            EventKind::CallFailed => "call_failed",
            EventKind::Failed => "failed",
            EventKind::Cancelled => "cancelled",
            EventKind::Linked => "linked",
            EventKind::Scanned => "scanned",
            EventKind::ReleasedByScan => "released_by_scan",
            EventKind::TrackersRegistered => "trackers_registered",
            EventKind::TrackersRetry => "trackers_retry",
            EventKind::MovementTimedOut => "movement_timed_out",
            EventKind::CorrectionClaimed => "correction_claimed",
            EventKind::CorrectionSent => "correction_sent",
            EventKind::CorrectionRetried => "correction_retried",
            EventKind::CorrectionRefused => "correction_refused",
        }
    }
}

/// Who or what made it happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    RetailerUser,
    VendorUser,
    /// The exporter function (a channel call, a tracker registration).
    Exporter,
    /// The order processor (a channel's event, a carrier scan).
    OrderProcessor,
    /// shipsync itself (its order fully shipped, say).
    Shipsync,
}

impl Actor {
    pub fn name(self) -> &'static str {
        match self {
            Actor::RetailerUser => "retailer_user",
            Actor::VendorUser => "vendor_user",
            Actor::Exporter => "exporter",
            Actor::OrderProcessor => "order_processor",
            Actor::Shipsync => "shipsync",
        }
    }
}

/// One entry of a shipment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentEvent {
    #[serde(rename = "t", with = "chrono::serde::ts_milliseconds")]
    pub at: DateTime<Utc>,
    #[serde(rename = "k")]
    pub kind: EventKind,
    #[serde(rename = "b")]
    pub by: Actor,
    /// The state it left the export in (`scheduled`, `exported`...).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The channel's ids or message, or why.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the export (or the next try) is due, where one is planned.
    #[serde(
        rename = "due",
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub due_at: Option<DateTime<Utc>>,
}

/// The longest detail kept (a channel's message can be long).
pub const MAX_DETAIL_CHARS: usize = 300;

impl ShipmentEvent {
    pub fn new(at: DateTime<Utc>, kind: EventKind, by: Actor) -> Self {
        Self { at, kind, by, state: None, detail: None, due_at: None }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let detail: String = detail.into();
        self.detail = Some(detail.chars().take(MAX_DETAIL_CHARS).collect());
        self
    }
}

/// Adds `event` to `events`, dropping the oldest but the first past [`MAX_EVENTS`].
pub fn append(events: &mut Vec<ShipmentEvent>, event: ShipmentEvent) {
    events.push(event);
    if events.len() > MAX_EVENTS {
        events.remove(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_its_first_event_and_the_latest() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
        let mut events = Vec::new();
        append(&mut events, ShipmentEvent::new(at(0), EventKind::Created, Actor::VendorUser));
        for second in 1..=100 {
            append(
                &mut events,
                ShipmentEvent::new(at(second), EventKind::Retried, Actor::Exporter).detail("x".repeat(500)),
            );
        }
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[0].kind, EventKind::Created);
        assert_eq!(events.last().map(|e| e.at), Some(at(100)));
        assert_eq!(events[1].detail.as_ref().map(String::len), Some(MAX_DETAIL_CHARS));
        let stored = serde_json::to_string(&events[0]).unwrap_or_default();
        assert_eq!(stored, r#"{"t":0,"k":"created","b":"vendor_user"}"#, "compact");
    }
}
