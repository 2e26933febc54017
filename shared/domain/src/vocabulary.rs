//! The names shipsync and the channels share: a product's SKU and a channel's order id. Each is
//! parsed where it enters and kept as the plain string (stored records and JSON do not change).

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_KEY_PART_BYTES, MAX_SKU_CHARS};

/// The longest order id (and order number, line item id) a channel may send: each is part of keys
/// (purchase order numbers, order records, problems) that share DynamoDB's 1,024 bytes.
pub const MAX_ID_BYTES: usize = 255;

/// A stock keeping unit: which product an order line is. Part of a product's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    /// A SKU a retailer gives a product: trimmed, not blank, at most [`MAX_SKU_CHARS`] characters
    /// and [`MAX_KEY_PART_BYTES`] bytes (the message completes the field's name).
    pub fn parse(text: &str) -> Result<Self, String> {
        let sku = text.trim();
        if sku.is_empty() {
            Err("is required".to_owned())
        } else if sku.chars().count() > MAX_SKU_CHARS {
            Err(format!("must be at most {MAX_SKU_CHARS} characters"))
        } else if sku.len() > MAX_KEY_PART_BYTES {
            Err(format!("must be at most {MAX_KEY_PART_BYTES} bytes"))
        } else {
            Ok(Sku(sku.to_owned()))
        }
    }

    /// The SKU of a channel's order line, trimmed; `None` for a blank one (the line has no SKU).
    /// Its size is not refused here: [`check_applicable`](crate::orders::check_applicable) lists
    /// an order whose SKU cannot be a key, so that a person sees it.
    pub fn received(text: &str) -> Option<Self> {
        let sku = text.trim();
        (!sku.is_empty()).then(|| Sku(sku.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An order's id in its channel (Shopify's `gid://shopify/Order/…`, an eBay or Amazon order id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelOrderId(String);

impl ChannelOrderId {
    /// An id given to shipsync (a purchase order's, a command line's): trimmed, not blank, at most
    /// [`MAX_ID_BYTES`] bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let id = text.trim();
        if id.is_empty() {
            Err("must not be blank".to_owned())
        } else if id.len() > MAX_ID_BYTES {
            Err(format!("is {} bytes long; at most {MAX_ID_BYTES} fit in a key", id.len()))
        } else {
            Ok(ChannelOrderId(id.to_owned()))
        }
    }

    /// The id exactly as a channel sent it in an order or fulfillment. Not refused here:
    /// [`check_applicable`](crate::orders::check_applicable) keeps an order whose id cannot be a
    /// key and lists it, rather than dropping it where no person would see it.
    pub fn received(text: impl Into<String>) -> Self {
        ChannelOrderId(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_traits {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_traits!(Sku);
text_traits!(ChannelOrderId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_sku_is_trimmed_and_fits_in_a_key() {
        assert_eq!(Sku::parse(" TENT-2P ").unwrap().as_str(), "TENT-2P");
        assert_eq!(Sku::parse("  ").unwrap_err(), "is required");
        assert!(Sku::parse(&"A".repeat(MAX_SKU_CHARS)).is_ok());
        assert_eq!(Sku::parse(&"A".repeat(MAX_SKU_CHARS + 1)).unwrap_err(), "must be at most 255 characters");
        // 200 four-byte characters are within the character limit but not a key's bytes.
        assert_eq!(Sku::parse(&"😀".repeat(200)).unwrap_err(), "must be at most 512 bytes");
    }

    #[test]
    fn a_channel_line_without_a_sku_has_none() {
        assert_eq!(Sku::received(" TENT ").unwrap(), "TENT");
        assert_eq!(Sku::received(" "), None);
        // Too long for a key, it is still the line's SKU: the order is listed, not dropped.
        assert_eq!(Sku::received(&"S".repeat(600)).unwrap().as_str().len(), 600);
    }

    #[test]
    fn a_channel_order_id_is_not_blank_and_fits_in_a_key() {
        assert_eq!(ChannelOrderId::parse(" gid://shopify/Order/1 ").unwrap(), "gid://shopify/Order/1");
        assert_eq!(ChannelOrderId::parse("").unwrap_err(), "must not be blank");
        assert!(ChannelOrderId::parse(&"9".repeat(MAX_ID_BYTES)).is_ok());
        assert_eq!(
            ChannelOrderId::parse(&"9".repeat(MAX_ID_BYTES + 1)).unwrap_err(),
            "is 256 bytes long; at most 255 fit in a key"
        );
        assert_eq!(ChannelOrderId::received(" 1 ").as_str(), " 1 ");
    }

    #[test]
    fn both_serialize_as_the_plain_string() {
        let sku = Sku::parse("TENT").unwrap();
        assert_eq!(serde_json::to_string(&sku).unwrap(), "\"TENT\"");
        assert_eq!(serde_json::from_str::<Sku>("\"TENT\"").unwrap(), sku);
        let id = ChannelOrderId::parse("820982911946154508").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"820982911946154508\"");
        assert_eq!(serde_json::from_str::<ChannelOrderId>("\"820982911946154508\"").unwrap(), id);
    }
}
