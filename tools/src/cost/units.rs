//! DynamoDB's documented rules: item sizes, read and write request units, index writes.

use aws_sdk_dynamodb::types::AttributeValue;

use super::images::{Projection, TableShape};
use super::{Call, IndexEntry, IndexWrite, Item, ItemWrite};

/// Item size rules, from "Item sizes and formats"
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
/// a string or binary is its name's UTF-8 bytes plus its value's bytes; a number is its name plus
/// one byte per two significant digits plus one byte (leading and trailing zeroes trimmed); null
/// and boolean are the name plus one byte; a list or map is the name plus its elements' sizes
/// plus 3 bytes (a map's element sizes include their names); a set is the sum of its elements.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn number_size(text: &str) -> usize {
    let mantissa = text.trim_start_matches(['-', '+']).split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(text) => number_size(text),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Ss(list) => list.iter().map(String::len).sum(),
        AttributeValue::Ns(list) => list.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(list) => list.iter().map(|blob| blob.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(value_size).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(name, value)| name.len() + value_size(value)).sum::<usize>(),
        _ => 1,
    }
}

const READ_UNIT_BYTES: usize = 4 * 1024;
const WRITE_UNIT_BYTES: usize = 1024;

/// Read request units of one item (or one Query/Scan's total) of `bytes`: 4 KB a unit, at least
/// one; half for an eventually consistent read. Source: "Read request units"
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html#read-write-request-units).
fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Write request units of an item of `bytes`: 1 KB a unit, at least one. Source: "Write request
/// units" (same page as [`read_units`]).
fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// What one index holds of `item`: nothing unless the item has every key attribute of the index
/// (sparse indexes); else the index keys, the table keys and the projected attributes.
fn index_entry(shape: &TableShape, index: &super::images::IndexShape, item: &Item) -> Option<(IndexEntry, Item)> {
    let index_key: Vec<&AttributeValue> = index.key_names.iter().map(|name| item.get(name)).collect::<Option<_>>()?;
    let key = index_key
        .iter()
        .map(|value| match value {
            AttributeValue::S(text) | AttributeValue::N(text) => text.clone(),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("|");
    let copied: Item = item
        .iter()
        .filter(|(name, _)| {
            index.key_names.contains(name)
                || shape.key_names.contains(name)
                || match &index.projection {
                    Projection::All => true,
                    Projection::KeysOnly => false,
                    Projection::Include(names) => names.contains(name),
                }
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Some((IndexEntry { key, size: item_size(&copied) }, copied))
}

/// A write's record from the item's images before and after it.
pub fn item_write(
    shape: &TableShape,
    key: &Item,
    before: Option<&Item>,
    after: Option<&Item>,
    condition_check: bool,
) -> ItemWrite {
    let mut key_text: Vec<String> =
        shape.key_names.iter().filter_map(|name| key.get(name).and_then(|v| v.as_s().ok()).cloned()).collect();
    if key_text.is_empty() {
        key_text = key.values().map(|v| format!("{v:?}")).collect();
    }
    let indexes = shape
        .indexes
        .iter()
        .filter_map(|index| {
            let old = before.and_then(|item| index_entry(shape, index, item));
            let new = after.and_then(|item| index_entry(shape, index, item));
            if old.is_none() && new.is_none() {
                return None;
            }
            let projected_changed = match (&old, &new) {
                (Some((old_entry, old_copy)), Some((new_entry, new_copy))) => {
                    old_entry.key == new_entry.key && old_copy != new_copy
                }
                _ => false,
            };
            Some(IndexWrite {
                index: index.name.clone(),
                before: old.map(|(entry, _)| entry),
                after: new.map(|(entry, _)| entry),
                projected_changed,
            })
        })
        .collect();
    ItemWrite {
        key: key_text.join("/"),
        size_before: before.map(item_size),
        size_after: after.map(item_size),
        indexes,
        condition_check,
    }
}

/// Request units of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    /// Table writes (transactional ones doubled).
    pub write: f64,
    /// Index writes the table writes caused.
    pub index_write: f64,
}

impl Units {
    pub fn total_write(&self) -> f64 {
        self.write + self.index_write
    }
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, other: Self) {
        self.read += other.read;
        self.write += other.write;
        self.index_write += other.index_write;
    }
}

/// Index write units of one item write, from "Global secondary indexes: writes"
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes):
/// a new index entry is one write; a changed index key value two (a delete of the old entry and
/// a put of the new one); an entry whose item lost its index key (or was deleted) one; a kept
/// entry whose projected attributes changed one; each by the entry's size in 1 KB units. Index
/// writes are not doubled for a transaction: the transaction's two underlying writes are the
/// table item's (prepare and commit, "Capacity management for transactions",
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling).
fn index_write_units(write: &ItemWrite) -> f64 {
    write
        .indexes
        .iter()
        .map(|index| match (&index.before, &index.after) {
            (None, Some(new)) => write_units(new.size),
            (Some(old), None) => write_units(old.size),
            (Some(old), Some(new)) if old.key != new.key => write_units(old.size) + write_units(new.size),
            (Some(_), Some(new)) if index.projected_changed => write_units(new.size),
            _ => 0.0,
        })
        .sum()
}

/// Request units of one recorded call (zero for other services than DynamoDB).
///
/// - GetItem: the item's size in 4 KB units (a missing item still one), halved when eventually
///   consistent; BatchGetItem: each item so, summed. TransactGetItems: twice a consistent read.
///   ("Read request units", see [`read_units`]; "Capacity management for transactions".)
/// - Query and Scan: the summed size of every item examined, before any filter or projection,
///   rounded up to 4 KB once for the call ("Query: read consumption",
///   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.ReadConsumption.html).
/// - PutItem, UpdateItem, DeleteItem, each BatchWriteItem request: the larger of the item before
///   and after, in 1 KB units, also when a condition failed ("Write request units":
///   "the larger of the two"; a failed conditional write still consumes). TransactWriteItems:
///   twice that for every item, ConditionCheck included (two underlying writes each).
pub fn call_units(call: &Call) -> Units {
    if call.service != "DynamoDB" {
        return Units::default();
    }
    let mut units = Units::default();
    if let Some(scan) = call.scan {
        units.read += read_units(scan.scanned_bytes, call.consistent);
    }
    for size in &call.items_read {
        units.read +=
            if call.transactional { 2.0 * read_units(*size, true) } else { read_units(*size, call.consistent) };
    }
    let factor = if call.transactional { 2.0 } else { 1.0 };
    for write in &call.writes {
        let larger = write.size_before.unwrap_or(0).max(write.size_after.unwrap_or(0));
        units.write += factor * write_units(larger);
        if !write.condition_check {
            units.index_write += index_write_units(write);
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::images::IndexShape;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn sizes_follow_the_documented_rules() {
        let item: Item = [
            ("pk".to_owned(), s("SHIPMENT#1")),
            ("n".to_owned(), AttributeValue::N("0012300".into())),
            ("b".to_owned(), AttributeValue::Bool(true)),
            ("m".to_owned(), AttributeValue::M([("k".to_owned(), s("vv"))].into())),
            ("l".to_owned(), AttributeValue::L(vec![s("abc"), AttributeValue::Null(true)])),
        ]
        .into();
        // pk 2+10; n 1+(3 digits: 2 bytes +1); b 1+1; m 1+3+(1+2); l 1+3+3+1.
        assert_eq!(item_size(&item), 12 + 4 + 2 + 7 + 8);
        assert_eq!(number_size("-1.5e10"), 2);
        assert_eq!(number_size("0"), 2);
    }

    fn shape() -> TableShape {
        TableShape {
            key_names: vec!["pk".into(), "sk".into()],
            indexes: vec![IndexShape {
                name: "by_due".into(),
                key_names: vec!["gpk".into(), "gsk".into()],
                projection: Projection::Include(vec!["name".into()]),
            }],
        }
    }

    fn record(extra: &[(&str, &str)], body: usize) -> Item {
        let mut item: Item =
            [("pk".to_owned(), s("A")), ("sk".to_owned(), s("B")), ("body".to_owned(), s(&"x".repeat(body)))].into();
        for (name, value) in extra {
            item.insert((*name).to_owned(), s(value));
        }
        item
    }

    fn units_of(before: Option<Item>, after: Option<Item>, transactional: bool) -> Units {
        let shape = shape();
        let key = record(&[], 0);
        let write = item_write(&shape, &key, before.as_ref(), after.as_ref(), false);
        let call = Call {
            phase: String::new(),
            origin: crate::cost::Origin::Function,
            service: "DynamoDB".into(),
            operation: "UpdateItem".into(),
            table: None,
            index: None,
            transactional,
            consistent: false,
            failed: false,
            writes: vec![write],
            items_read: Vec::new(),
            scan: None,
            payload_bytes: 0,
        };
        call_units(&call)
    }

    #[test]
    fn writes_cost_the_larger_image_and_index_changes() {
        // A new item entering the index: 2 KB item (2 units), one index put.
        let new = units_of(None, Some(record(&[("gpk", "P"), ("gsk", "1")], 1500)), false);
        assert_eq!((new.write, new.index_write), (2.0, 1.0));
        // Shrinking to 100 bytes still costs the larger (before) image; the index key moves: 2.
        let moved = units_of(
            Some(record(&[("gpk", "P"), ("gsk", "1")], 1500)),
            Some(record(&[("gpk", "P"), ("gsk", "2")], 100)),
            true,
        );
        assert_eq!((moved.write, moved.index_write), (4.0, 2.0));
        // Leaving the index: one delete. A non-projected change: nothing in the index.
        let left = units_of(Some(record(&[("gpk", "P"), ("gsk", "1")], 10)), Some(record(&[], 10)), false);
        assert_eq!(left.index_write, 1.0);
        let quiet = units_of(
            Some(record(&[("gpk", "P"), ("gsk", "1")], 10)),
            Some(record(&[("gpk", "P"), ("gsk", "1")], 20)),
            false,
        );
        assert_eq!(quiet.index_write, 0.0);
        let projected = units_of(
            Some(record(&[("gpk", "P"), ("gsk", "1"), ("name", "a")], 10)),
            Some(record(&[("gpk", "P"), ("gsk", "1"), ("name", "b")], 10)),
            false,
        );
        assert_eq!(projected.index_write, 1.0);
    }

    #[test]
    fn reads_round_per_item_and_per_query() {
        let mut call = Call {
            phase: String::new(),
            origin: crate::cost::Origin::Function,
            service: "DynamoDB".into(),
            operation: "BatchGetItem".into(),
            table: None,
            index: None,
            transactional: false,
            consistent: false,
            failed: false,
            writes: Vec::new(),
            items_read: vec![100, 5000, 0],
            scan: None,
            payload_bytes: 0,
        };
        // 1 + 2 + 1 units, eventually consistent: halved.
        assert_eq!(call_units(&call).read, 2.0);
        call.items_read.clear();
        call.scan = Some(crate::cost::ScanRead { scanned_count: 30, scanned_bytes: 30 * 300, returned: 1 });
        // 9000 bytes: 3 units, halved.
        assert_eq!(call_units(&call).read, 1.5);
    }
}
