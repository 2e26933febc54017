//! Turning records into DynamoDB items and back. A record's fields live under `data`; keys and
//! search attributes sit beside it at the top level.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

use crate::TableError;
use crate::keys::{PK, SK};

pub type Item = HashMap<String, AttributeValue>;

pub const DATA: &str = "data";

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// An item with its keys and the record under `data`.
pub fn item<T: Serialize>(pk: String, sk: &str, record: &T) -> Result<Item, TableError> {
    let data = serde_dynamo::to_attribute_value(record)
        .map_err(|error| TableError::Corrupt { key: format!("{pk}/{sk}"), reason: error.to_string() })?;
    Ok(HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk)), (DATA.to_owned(), data)]))
}

/// An item with its record under `data` as deflated JSON (a binary attribute), for a record
/// written several times in its life: DynamoDB charges every write by the started kilobyte, and
/// a shipment's fields (their names repeated in every item) shrink to about half. Read back by
/// [`record`] like any other; `shipsync-admin show` prints one as JSON.
pub fn compact_item<T: Serialize>(pk: String, sk: &str, record: &T) -> Result<Item, TableError> {
    let json = serde_json::to_vec(record)
        .map_err(|error| TableError::Corrupt { key: format!("{pk}/{sk}"), reason: error.to_string() })?;
    // What could not be read back is never written.
    if json.len() > MAX_UNPACKED_BYTES {
        return Err(TableError::TooLarge {
            key: format!("{pk}/{sk}"),
            reason: format!("{} bytes of JSON, over the {MAX_UNPACKED_BYTES} a record may unpack to", json.len()),
        });
    }
    let packed = miniz_oxide::deflate::compress_to_vec(&json, 6);
    let data = AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(packed));
    Ok(HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk)), (DATA.to_owned(), data)]))
}

/// The largest record a compact item may unpack to (DynamoDB's item limit, with room: a
/// corrupt or hostile value cannot make a reader allocate without bound).
const MAX_UNPACKED_BYTES: usize = 4 * 1024 * 1024;

/// The record under `data` of an item: a map, or deflated JSON ([`compact_item`]).
pub fn record<T: DeserializeOwned>(mut item: Item) -> Result<T, TableError> {
    let key = describe(&item);
    let data = item
        .remove(DATA)
        .ok_or_else(|| TableError::Corrupt { key: key.clone(), reason: "no data attribute".into() })?;
    if let AttributeValue::B(packed) = data {
        let json = miniz_oxide::inflate::decompress_to_vec_with_limit(packed.as_ref(), MAX_UNPACKED_BYTES).map_err(
            |error| TableError::Corrupt { key: key.clone(), reason: format!("data does not unpack: {error}") },
        )?;
        return serde_json::from_slice(&json).map_err(|error| TableError::Corrupt { key, reason: error.to_string() });
    }
    serde_dynamo::from_attribute_value(data).map_err(|error| TableError::Corrupt { key, reason: error.to_string() })
}

/// `pk/sk` of an item, for messages.
pub fn describe(item: &Item) -> String {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
    format!("{}/{}", text(PK), text(SK))
}

/// DynamoDB's largest item, in bytes (names and values counted as DynamoDB counts them).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's longest partition and sort key values, in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// An attribute value's size as DynamoDB counts it (numbers at their textual length, an upper bound).
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => list.iter().map(String::len).sum(),
        AttributeValue::Bs(list) => list.iter().map(|blob| blob.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|value| 1 + value_size(value)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(name, value)| 1 + name.len() + value_size(value)).sum::<usize>(),
        _ => 1,
    }
}

/// An item's size as DynamoDB counts it.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// Refuses, before it is sent, an item DynamoDB would refuse (moto would store it).
pub fn check_fits(item: &Item) -> Result<(), TableError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map_or(0, String::len);
    let too_large = |reason: String| Err(TableError::TooLarge { key: describe(item), reason });
    if text(PK) > MAX_PARTITION_KEY_BYTES {
        return too_large(format!("its partition key is {} bytes (at most {MAX_PARTITION_KEY_BYTES})", text(PK)));
    }
    if text(SK) > MAX_SORT_KEY_BYTES {
        return too_large(format!("its sort key is {} bytes (at most {MAX_SORT_KEY_BYTES})", text(SK)));
    }
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return too_large(format!("the item is {size} bytes (at most {MAX_ITEM_BYTES})"));
    }
    Ok(())
}

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_over_dynamodbs_limits_are_refused_before_they_are_sent() {
        let small = item("RETAILER#1".into(), "ORDER#1", &serde_json::json!({"lines": ["a", "b"]})).unwrap();
        assert!(check_fits(&small).is_ok());
        let big =
            item("RETAILER#1".into(), "ORDER#1", &serde_json::json!({"note": "x".repeat(MAX_ITEM_BYTES)})).unwrap();
        assert!(matches!(check_fits(&big), Err(TableError::TooLarge { .. })));
        let long_key = key("RETAILER#1".into(), &format!("PRODUCT#{}", "s".repeat(MAX_SORT_KEY_BYTES)));
        assert!(matches!(check_fits(&long_key), Err(TableError::TooLarge { .. })));
        // Deflates far below the item limit, yet would unpack past what a reader accepts.
        let repetitive = "a".repeat(MAX_UNPACKED_BYTES + 1);
        assert!(matches!(compact_item("PK".into(), "SK", &repetitive), Err(TableError::TooLarge { .. })));
        // Nested values count their names and a few bytes each.
        let nested = item("P".into(), "S", &serde_json::json!({"ab": [1, 2]})).unwrap();
        assert!(item_size(&nested) > "pkPskSdataab12".len());
    }
}
