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

/// The carrier-tracking service a store registers its tracking numbers with, so that the
/// first scan ("in transit") reaches shipsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingProvider {
    Easypost,
    Aftership,
    Shippo,
}

impl TrackingProvider {
    pub fn name(self) -> &'static str {
        match self {
            TrackingProvider::Easypost => "easypost",
            TrackingProvider::Aftership => "aftership",
            TrackingProvider::Shippo => "shippo",
        }
    }
}

/// What a carrier-tracking provider reported about one parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierScan {
    /// easypost, aftership or shippo.
    pub provider: String,
    /// The provider's event id (for the logs: a repeated scan is applied again, as a no-op).
    pub event_id: String,
    pub tracking_number: TrackingNumber,
    pub status: TrackingStatus,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

/// Longest tracking number accepted (the longest carriers use are about 35 characters).
pub const MAX_TRACKING_LENGTH: usize = 100;

/// A parcel's tracking number as it was given: trimmed, printable, not blank, not too long.
/// Parsed where it enters (the API, a carrier's webhook, a channel's fulfillment); stored and
/// sent as the plain string. Two numbers name the same parcel when their [`key`](Self::key)s are
/// equal, whatever their case and spacing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackingNumber(String);

impl TrackingNumber {
    /// The number as stored: trimmed; refused when blank, longer than [`MAX_TRACKING_LENGTH`]
    /// characters or holding control characters (the message completes the field's name).
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = text.trim();
        if number.is_empty() {
            Err("must not be blank".to_owned())
        } else if number.chars().count() > MAX_TRACKING_LENGTH {
            Err(format!("must be at most {MAX_TRACKING_LENGTH} characters"))
        } else if number.chars().any(char::is_control) {
            Err("must not contain control characters".to_owned())
        } else {
            Ok(TrackingNumber(number.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How the number is compared and looked up: without spaces, in capitals, so that a
    /// carrier's `1z999aa1 0123456784` finds the shipment entered as `1Z999AA10123456784`.
    pub fn key(&self) -> String {
        self.0.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase()
    }

    /// Whether both numbers name the same parcel.
    pub fn same_parcel(&self, other: &TrackingNumber) -> bool {
        self.key() == other.key()
    }
}

impl std::fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TrackingNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for TrackingNumber {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TrackingNumber {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The sorted lookup keys of some tracking numbers: two lists of one parcel set compare equal.
pub fn tracking_keys<'a>(numbers: impl IntoIterator<Item = &'a TrackingNumber>) -> Vec<String> {
    let mut keys: Vec<String> = numbers.into_iter().map(TrackingNumber::key).collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_trims_and_refuses_what_no_carrier_issues() {
        assert_eq!(TrackingNumber::parse("  1Z999AA1 ").unwrap().as_str(), "1Z999AA1");
        assert_eq!(TrackingNumber::parse("   ").unwrap_err(), "must not be blank");
        assert_eq!(TrackingNumber::parse("a\u{7}b").unwrap_err(), "must not contain control characters");
        assert!(TrackingNumber::parse(&"é".repeat(MAX_TRACKING_LENGTH)).is_ok());
        assert_eq!(
            TrackingNumber::parse(&"1".repeat(MAX_TRACKING_LENGTH + 1)).unwrap_err(),
            format!("must be at most {MAX_TRACKING_LENGTH} characters")
        );
    }

    #[test]
    fn case_and_spaces_do_not_make_another_parcel() {
        let spaced = TrackingNumber::parse("1z 999aa1").unwrap();
        let plain = TrackingNumber::parse("1Z999AA1").unwrap();
        assert!(spaced.same_parcel(&plain));
        assert_eq!(spaced.key(), "1Z999AA1");
        // Kept as given: only comparisons ignore case and spaces.
        assert_eq!(spaced.to_string(), "1z 999aa1");
        assert!(!spaced.same_parcel(&TrackingNumber::parse("1Z999AA2").unwrap()));
        assert_eq!(tracking_keys([&plain, &spaced]), ["1Z999AA1", "1Z999AA1"]);
    }

    #[test]
    fn serializes_as_the_plain_string() {
        let number = TrackingNumber::parse("1Z999AA1").unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"1Z999AA1\"");
        assert_eq!(serde_json::from_str::<TrackingNumber>("\"1Z999AA1\"").unwrap(), number);
    }
}
