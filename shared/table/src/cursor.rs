//! Where a search stopped reading, handed to the caller as an opaque `cursor` to go on from.
//!
//! A cursor holds the index entry reading stopped at (its index sort key and the record's key)
//! and a digest of the index partition it was read from. It never chooses the partition: a
//! search's partition always comes from the caller, and a cursor is used only if its digest names
//! that same partition and its keys have the shape that partition's entries have. Anything else is
//! refused before any read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::DateTime;
use sha2::{Digest, Sha256};
use shipsync_domain::ValidationErrors;
use shipsync_domain::search::TimeRange;
use shipsync_domain::time::sortable_time;

use crate::codec::s;
use crate::keys::{self, PK, PURCHASE_ORDER, SHIPMENT, SK};
use crate::schema::{BY_ATTENTION, IndexDefinition};

/// The longest cursor text accepted: real ones are about 160 characters.
pub const MAX_CURSOR_CHARS: usize = 512;

/// The layout of a cursor's contents; a cursor of another layout is refused.
const CURSOR_VERSION: u8 = 1;

/// A place in one index partition: the entry a search read last. Its fields are what the text
/// carries, public so tests can forge cursors; a search checks every one before using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    /// Digest of the index and partition it was read from (see [`partition_digest`]).
    pub partition: String,
    pub index_sort_key: String,
    pub pk: String,
    pub sk: String,
}

/// Why a cursor cannot be used: not one shipsync made, or made for another search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not valid for this search")]
pub struct InvalidCursor;

impl From<InvalidCursor> for ValidationErrors {
    fn from(_: InvalidCursor) -> Self {
        ValidationErrors::single("cursor", "is not valid for this search")
    }
}

impl SearchCursor {
    /// The cursor's text: base64url (no padding) of a small JSON array.
    pub fn encode(&self) -> String {
        let contents = serde_json::json!([CURSOR_VERSION, self.partition, self.index_sort_key, self.pk, self.sk]);
        base64url_encode(contents.to_string().as_bytes())
    }

    /// Reads a cursor's text. Only its form is checked here; a search checks it fits.
    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        if text.is_empty() || text.len() > MAX_CURSOR_CHARS {
            return Err(InvalidCursor);
        }
        let bytes = base64url_decode(text).ok_or(InvalidCursor)?;
        let (version, partition, index_sort_key, pk, sk): (u8, String, String, String, String) =
            serde_json::from_slice(&bytes).map_err(|_| InvalidCursor)?;
        if version != CURSOR_VERSION {
            return Err(InvalidCursor);
        }
        Ok(Self { partition, index_sort_key, pk, sk })
    }

    /// The cursor at an index entry as a query returns it (its keys and the index sort key).
    pub(crate) fn at_entry(
        index: IndexDefinition,
        partition: &str,
        entry: &HashMap<String, AttributeValue>,
    ) -> Option<Self> {
        let text = |name: &str| entry.get(name).and_then(|v| v.as_s().ok()).cloned();
        Some(Self {
            partition: partition_digest(index, partition),
            index_sort_key: text(index.sort_key)?,
            pk: text(PK)?,
            sk: text(SK)?,
        })
    }

    /// Whether this cursor was made by a search of `partition` of `index` over `key_range`:
    /// the same partition digest, and keys of the shape that partition's entries have.
    pub(crate) fn fits(&self, index: IndexDefinition, partition: &str, key_range: TimeRange) -> bool {
        self.partition == partition_digest(index, partition)
            && entry_keys_fit(index, partition, &self.index_sort_key, &self.pk, &self.sk)
            && key_range.min.is_none_or(|min| self.index_sort_key >= keys::time_floor(min))
            && key_range.max.is_none_or(|max| self.index_sort_key <= keys::time_ceiling(max))
    }

    /// The query's exclusive start key: the partition is the caller's, never the cursor's.
    pub(crate) fn start_key(&self, index: IndexDefinition, partition: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (index.partition_key.to_owned(), s(partition)),
            (index.sort_key.to_owned(), s(self.index_sort_key.as_str())),
            (PK.to_owned(), s(self.pk.as_str())),
            (SK.to_owned(), s(self.sk.as_str())),
        ])
    }
}

/// A short digest naming an index partition, so a cursor from another search (another retailer's,
/// another vendor's, another index) is refused rather than read as a place in this one.
pub(crate) fn partition_digest(index: IndexDefinition, partition: &str) -> String {
    let digest = Sha256::digest(format!("{}\n{partition}", index.name).as_bytes());
    digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// Whether an entry's keys have the shape entries of this partition have: the listing indexes'
/// sort key is `<time>#<id, 16 digits>` for the record `SHIPMENT#<id>` (or `PO#<id>` in a
/// purchase-order partition); the attention index also holds problems, `<time>#0…0#<key>` for
/// `PROBLEM#<key>` in the retailer's own partition.
fn entry_keys_fit(index: IndexDefinition, partition: &str, index_sort_key: &str, pk: &str, sk: &str) -> bool {
    let Some((time, rest)) = index_sort_key.split_once('#') else { return false };
    let is_time = DateTime::parse_from_rfc3339(time).is_ok_and(|parsed| sortable_time(parsed.into()) == time);
    let (id_text, problem) = match rest.split_once('#') {
        Some((id, problem)) => (id, Some(problem)),
        None => (rest, None),
    };
    let Some(id) = (id_text.len() == 16 && id_text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id_text.parse::<u64>().ok())
        .flatten()
    else {
        return false;
    };
    if !is_time {
        return false;
    }
    match problem {
        None => {
            let kind = if partition.ends_with("#POS") { PURCHASE_ORDER } else { SHIPMENT };
            id > 0 && pk == format!("{kind}#{id}") && sk == kind
        }
        Some(problem) => {
            index == BY_ATTENTION
                && id == 0
                && partition.strip_suffix("#ATTENTION") == Some(pk)
                && sk == keys::problem(problem)
        }
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, byte)| group | u32::from(*byte) << (16 - 8 * i));
        for position in 0..=chunk.len() {
            let sextet = (group >> (18 - 6 * position)) & 63;
            text.push(char::from(BASE64URL[sextet as usize]));
        }
    }
    text
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| BASE64URL.iter().position(|&d| d == c).and_then(|p| u32::try_from(p).ok());
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut group = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            group |= sextet(c)? << (18 - 6 * i);
        }
        let whole = chunk.len() - 1;
        // Bits past the last whole byte must be zero, so each text has one meaning.
        if group & ((1u32 << (24 - 8 * whole)) - 1) != 0 {
            return None;
        }
        for i in 0..whole {
            bytes.push(((group >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{BY_RETAILER_CREATED, BY_VENDOR_CREATED};

    fn shipment_cursor(partition: &str, id: u64) -> SearchCursor {
        SearchCursor {
            partition: partition_digest(BY_RETAILER_CREATED, partition),
            index_sort_key: format!("2026-01-02T03:04:05.000000Z#{id:016}"),
            pk: format!("SHIPMENT#{id}"),
            sk: "SHIPMENT".into(),
        }
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for length in 0..40 {
            let bytes: Vec<u8> = (0..length).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url_encode(&bytes);
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(base64url_decode(&text), Some(bytes));
        }
        assert_eq!(base64url_encode(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw");
    }

    #[test]
    fn a_cursor_round_trips_and_fits_its_own_search_only() {
        let cursor = shipment_cursor("RETAILER#7#SHIPMENTS", 42);
        let decoded = SearchCursor::decode(&cursor.encode()).expect("decodes");
        assert_eq!(decoded, cursor);
        assert!(decoded.fits(BY_RETAILER_CREATED, "RETAILER#7#SHIPMENTS", TimeRange::default()));
        assert!(!decoded.fits(BY_RETAILER_CREATED, "RETAILER#8#SHIPMENTS", TimeRange::default()));
        assert!(!decoded.fits(BY_VENDOR_CREATED, "RETAILER#7#SHIPMENTS", TimeRange::default()));
        let later = TimeRange { min: Some(chrono::Utc::now()), max: None };
        assert!(!decoded.fits(BY_RETAILER_CREATED, "RETAILER#7#SHIPMENTS", later));
    }

    #[test]
    fn keys_of_another_shape_do_not_fit() {
        let partition = "RETAILER#7#SHIPMENTS";
        let fits = |cursor: &SearchCursor| cursor.fits(BY_RETAILER_CREATED, partition, TimeRange::default());
        let mut other_record = shipment_cursor(partition, 42);
        other_record.pk = "SHIPMENT#43".into();
        assert!(!fits(&other_record));
        let mut other_kind = shipment_cursor(partition, 42);
        other_kind.pk = "RETAILER#7".into();
        other_kind.sk = "#PROFILE".into();
        assert!(!fits(&other_kind));
        let mut bad_time = shipment_cursor(partition, 42);
        bad_time.index_sort_key = format!("yesterday#{:016}", 42);
        assert!(!fits(&bad_time));
        let mut short_id = shipment_cursor(partition, 42);
        short_id.index_sort_key = "2026-01-02T03:04:05.000000Z#42".into();
        assert!(!fits(&short_id));
    }

    #[test]
    fn problems_fit_only_the_retailers_own_attention_partition() {
        let partition = keys::retailer_attention(shipsync_domain::ids::RetailerId::new_unchecked(7));
        let problem = |pk: &str| SearchCursor {
            partition: partition_digest(BY_ATTENTION, &partition),
            index_sort_key: format!("2026-01-02T03:04:05.000000Z#{:016}#unknown_sku#1#2", 0),
            pk: pk.into(),
            sk: "PROBLEM#unknown_sku#1#2".into(),
        };
        assert!(problem("RETAILER#7").fits(BY_ATTENTION, &partition, TimeRange::default()));
        assert!(!problem("RETAILER#8").fits(BY_ATTENTION, &partition, TimeRange::default()));
    }

    #[test]
    fn malformed_text_is_refused() {
        let too_long = "A".repeat(MAX_CURSOR_CHARS + 1);
        let wrong_version = base64url_encode(br#"[2,"a","b","c","d"]"#);
        let wrong_shape = base64url_encode(br#"{"pk":"RETAILER#1"}"#);
        for text in ["", "!!!!", "A", "YW55=", too_long.as_str(), wrong_version.as_str(), wrong_shape.as_str()] {
            assert_eq!(SearchCursor::decode(text), Err(InvalidCursor), "{text}");
        }
    }
}
