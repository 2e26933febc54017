//! Turning records into DynamoDB items and back. A record's fields live under `data`; keys and
//! search attributes sit beside it at the top level.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

use crate::StoreError;
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
pub fn item<T: Serialize>(pk: String, sk: &str, record: &T) -> Result<Item, StoreError> {
    let data = serde_dynamo::to_attribute_value(record)
        .map_err(|error| StoreError::Corrupt { key: format!("{pk}/{sk}"), reason: error.to_string() })?;
    Ok(HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk)), (DATA.to_owned(), data)]))
}

/// The record under `data` of an item.
pub fn record<T: DeserializeOwned>(mut item: Item) -> Result<T, StoreError> {
    let key = describe(&item);
    let data = item
        .remove(DATA)
        .ok_or_else(|| StoreError::Corrupt { key: key.clone(), reason: "no data attribute".into() })?;
    serde_dynamo::from_attribute_value(data).map_err(|error| StoreError::Corrupt { key, reason: error.to_string() })
}

/// `pk/sk` of an item, for messages.
pub fn describe(item: &Item) -> String {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
    format!("{}/{}", text(PK), text(SK))
}

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}
