//! How much text a request may store or search with. Every string a request can store has a
//! limit here, checked before anything is written, and answered 422 naming the field.
//!
//! DynamoDB refuses a partition key over 2048 bytes, a sort key over 1024 bytes and an item over
//! 400 KB, and a refused write or read would surface as an outage (503) rather than as the
//! caller's mistake. Emulators do not enforce these limits, so shipsync checks its own, well
//! inside them: text that becomes part of a key is also bounded in bytes (UTF-8 takes up to four
//! bytes a character).

use crate::ValidationErrors;

/// Names people give things: stores, products, vendors.
pub const MAX_NAME_CHARS: usize = 255;
/// A SKU (Shopify allows 255 characters). It is part of a product's sort key.
pub const MAX_SKU_CHARS: usize = 255;
/// A purchase order number or any other reference that is part of a key.
pub const MAX_REFERENCE_CHARS: usize = 255;
/// The most bytes any text may add to a key: with its prefix it stays far below the 1024 bytes
/// of a sort key (and the 2048 of a partition key).
pub const MAX_KEY_PART_BYTES: usize = 512;
/// A search term (`search[customer_name]`, `search[tracking]`, ...).
pub const MAX_SEARCH_TERM_CHARS: usize = 255;
/// A Shopify shop domain (a DNS name has at most 253 characters).
pub const MAX_DOMAIN_CHARS: usize = 253;
/// A URL (a store's `base_url`, a tracking URL template).
pub const MAX_URL_CHARS: usize = 2048;
/// A carrier's name or code as a channel knows it.
pub const MAX_CARRIER_NAME_CHARS: usize = 100;
/// An identifier a channel gives (an Amazon marketplace id, say).
pub const MAX_CHANNEL_ID_CHARS: usize = 64;
/// How many carrier mappings a store may have.
pub const MAX_CARRIER_MAPPINGS: usize = 100;
/// How many credentials a store may hold, and how long each value may be (the longest real ones,
/// eBay refresh tokens, have about 2,000 characters; all of them together must also fit the 4 KiB
/// KMS seals: `secrets::MAX_SEALED_BYTES`). Names are the channel's own, checked by the API.
pub const MAX_CREDENTIALS: usize = 16;
pub const MAX_CREDENTIAL_VALUE_CHARS: usize = 4000;

/// Checks that `text` has at most `max_chars` characters; pushes an error naming `field` if not.
/// Returns whether it fits.
pub fn check_length(errors: &mut ValidationErrors, field: &str, text: &str, max_chars: usize) -> bool {
    if text.chars().count() > max_chars {
        errors.push(field, format!("must be at most {max_chars} characters"));
        return false;
    }
    true
}

/// As [`check_length`], for text that becomes part of a DynamoDB key: also at most
/// [`MAX_KEY_PART_BYTES`] bytes.
pub fn check_key_part(errors: &mut ValidationErrors, field: &str, text: &str, max_chars: usize) -> bool {
    if !check_length(errors, field, text, max_chars) {
        return false;
    }
    if text.len() > MAX_KEY_PART_BYTES {
        errors.push(field, format!("must be at most {MAX_KEY_PART_BYTES} bytes"));
        return false;
    }
    true
}

/// At most `max_bytes` bytes of `text`, cut at a character boundary (for text a channel sends
/// that is only shown, such as an order number in a problem).
pub fn clip_bytes(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Whether text fits in a key part without counting an error (for text a channel sends).
pub fn fits_key_part(text: &str, max_chars: usize) -> bool {
    text.chars().count() <= max_chars && text.len() <= MAX_KEY_PART_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_never_splits_a_character() {
        assert_eq!(clip_bytes("#1001", 255), "#1001");
        // "é" is two bytes: three bytes of "aéb" end before the "b", four after it.
        assert_eq!(clip_bytes("aéb", 2), "a");
        assert_eq!(clip_bytes("aéb", 3), "aé");
        assert_eq!(clip_bytes("", 0), "");
    }

    #[test]
    fn limits_count_characters_and_key_bytes() {
        let mut errors = ValidationErrors::new();
        assert!(check_length(&mut errors, "name", &"é".repeat(MAX_NAME_CHARS), MAX_NAME_CHARS));
        assert!(!check_length(&mut errors, "name", &"a".repeat(MAX_NAME_CHARS + 1), MAX_NAME_CHARS));
        // 200 four-byte characters are within the character limit but not the key's byte limit.
        assert!(!check_key_part(&mut errors, "sku", &"😀".repeat(200), MAX_SKU_CHARS));
        assert!(check_key_part(&mut errors, "sku", &"A".repeat(MAX_SKU_CHARS), MAX_SKU_CHARS));
        let messages = errors.messages();
        assert_eq!(messages, ["name must be at most 255 characters", "sku must be at most 512 bytes"]);
        assert!(!fits_key_part(&"😀".repeat(200), MAX_SKU_CHARS));
        // With its prefix, the longest accepted key part stays within a DynamoDB sort key.
        assert!("PRODUCT#".len() + MAX_KEY_PART_BYTES <= 1024);
    }
}
