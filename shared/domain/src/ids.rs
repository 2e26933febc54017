//! Numeric identifiers. Every id is below 2^53 so that JavaScript clients read it exactly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The largest integer a JSON number carries exactly in every client (2^53 - 1).
pub const MAX_JSON_SAFE_ID: u64 = (1 << 53) - 1;

/// Why a text is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is not a positive whole number")]
    NotANumber,
    #[error("is larger than {MAX_JSON_SAFE_ID}")]
    TooLarge,
}

/// Checks that a number can serve as an id.
pub fn check_id(value: u64) -> Result<u64, IdError> {
    match value {
        0 => Err(IdError::NotANumber),
        v if v > MAX_JSON_SAFE_ID => Err(IdError::TooLarge),
        v => Ok(v),
    }
}

macro_rules! numeric_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a number already known to be a valid id (one we assigned ourselves).
            pub const fn new_unchecked(value: u64) -> Self {
                Self(value)
            }
            pub fn new(value: u64) -> Result<Self, IdError> {
                check_id(value).map(Self)
            }
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                let value: u64 = text.parse().map_err(|_| IdError::NotANumber)?;
                Self::new(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

numeric_id! {
    /// A retailer: the tenant that owns stores, vendors, orders and shipments.
    RetailerId;
    /// A vendor (dropshipper) that fulfils a retailer's purchase orders.
    VendorId;
    /// One of a retailer's sales channels.
    StoreId;
    /// A purchase order: one vendor's part of one channel order.
    PurchaseOrderId;
    /// A line of a purchase order.
    OrderItemId;
    /// A carrier (shipper).
    CarrierId;
    /// A shipment.
    ShipmentId;
    /// A line of a shipment.
    ShipmentItemId;
    /// One package (tracking number) of a shipment.
    TrackingId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_and_json_safe() {
        assert_eq!("42".parse::<ShipmentId>().map(ShipmentId::get), Ok(42));
        assert_eq!("0".parse::<ShipmentId>(), Err(IdError::NotANumber));
        assert_eq!("-3".parse::<ShipmentId>(), Err(IdError::NotANumber));
        assert_eq!("abc".parse::<ShipmentId>(), Err(IdError::NotANumber));
        assert_eq!((MAX_JSON_SAFE_ID + 1).to_string().parse::<ShipmentId>(), Err(IdError::TooLarge));
        assert!(MAX_JSON_SAFE_ID.to_string().parse::<ShipmentId>().is_ok());
    }
}
