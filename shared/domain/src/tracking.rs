//! What carriers report about parcels, reduced to the steps shipsync acts on.

use serde::{Deserialize, Serialize};

/// A parcel's progress. Statuses only move forward: a late report of an earlier step is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    Unknown,
    PreTransit,
    InTransit,
    OutForDelivery,
    /// Returned, failed, or otherwise in trouble after it moved.
    Exception,
    Delivered,
}

impl TrackingStatus {
    /// Order of progress.
    pub fn rank(self) -> u8 {
        match self {
            TrackingStatus::Unknown => 0,
            TrackingStatus::PreTransit => 1,
            TrackingStatus::InTransit => 2,
            TrackingStatus::OutForDelivery | TrackingStatus::Exception => 3,
            TrackingStatus::Delivered => 4,
        }
    }

    /// Whether the carrier has the parcel moving (or any later step, if the first scan was missed).
    pub fn is_moving(self) -> bool {
        self.rank() >= TrackingStatus::InTransit.rank()
    }

    pub fn name(self) -> &'static str {
        match self {
            TrackingStatus::Unknown => "unknown",
            TrackingStatus::PreTransit => "pre_transit",
            TrackingStatus::InTransit => "in_transit",
            TrackingStatus::OutForDelivery => "out_for_delivery",
            TrackingStatus::Exception => "exception",
            TrackingStatus::Delivered => "delivered",
        }
    }
}

/// What a carrier-tracking provider reported about one parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierScan {
    /// easypost, aftership or shippo.
    pub provider: String,
    /// The provider's event id, for de-duplication.
    pub event_id: String,
    pub tracking_number: String,
    pub status: TrackingStatus,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

/// How a tracking number is looked up: without spaces, in capitals, so that a carrier's
/// `1z999aa1 0123456784` finds the shipment entered as `1Z999AA10123456784`.
pub fn tracking_lookup_key(number: &str) -> String {
    number.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase()
}
