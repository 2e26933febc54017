//! Ids: one atomic counter hands out blocks of numbers.

use std::ops::RangeInclusive;

use aws_sdk_dynamodb::types::ReturnValue;
use shipsync_domain::carrier::FIRST_ASSIGNED_ID;
use shipsync_domain::ids::MAX_JSON_SAFE_ID;

use crate::codec::{key, n};
use crate::keys::{SEQUENCE, SEQUENCE_IDS};
use crate::{Table, TableError};

impl Table {
    /// Reserves `count` new ids in one call. Numbers of a reservation that is not used are
    /// simply skipped: ids have gaps, never repeats.
    pub async fn allocate_ids(&self, count: usize) -> Result<RangeInclusive<u64>, TableError> {
        let count = count.max(1) as u64;
        self.count_call();
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(SEQUENCE.to_owned(), SEQUENCE_IDS)))
            .update_expression("ADD #last :count")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":count", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(TableError::unavailable("UpdateItem"))?;
        let last = output
            .attributes()
            .and_then(|a| a.get("last"))
            .and_then(|v| v.as_n().ok())
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| TableError::Corrupt { key: "SEQUENCE/ids".into(), reason: "no counter value".into() })?;
        let end = FIRST_ASSIGNED_ID + last;
        if end > MAX_JSON_SAFE_ID {
            return Err(TableError::Corrupt { key: "SEQUENCE/ids".into(), reason: "ids exhausted".into() });
        }
        Ok(end + 1 - count..=end)
    }
}

impl Table {
    /// Whether nothing was ever written (no id was ever handed out).
    pub async fn is_empty(&self) -> Result<bool, TableError> {
        self.count_call();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(SEQUENCE.to_owned(), SEQUENCE_IDS)))
            .send()
            .await
            .map_err(TableError::unavailable("GetItem"))?;
        Ok(output.item.is_none())
    }
}
