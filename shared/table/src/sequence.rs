//! Ids: one atomic counter hands out blocks of numbers.

use std::ops::RangeInclusive;

use aws_sdk_dynamodb::types::ReturnValue;
use shipsync_domain::carrier::FIRST_ASSIGNED_ID;
use shipsync_domain::ids::MAX_JSON_SAFE_ID;

use crate::codec::{key, n};
use crate::keys::{SEQUENCE, SEQUENCE_IDS};
use crate::{Table, TableError};

/// How many ids a container reserves at once beyond what it needs now: most requests need one
/// or two, and a counter update for each was one DynamoDB write per shipment.
pub(crate) const ID_BLOCK: u64 = 64;

impl Table {
    /// `count` new ids, consecutive: from this container's reserve when it holds enough, else
    /// from a new block reserved in one call. Numbers a container never hands out are simply
    /// skipped: ids have gaps, never repeats, and are not in creation order across containers.
    pub async fn allocate_ids(&self, count: usize) -> Result<RangeInclusive<u64>, TableError> {
        let count = count.max(1) as u64;
        if let Some(ids) = self.take_reserved_ids(count) {
            return Ok(ids);
        }
        let block = self.reserve_ids(count + ID_BLOCK).await?;
        let (first, last) = (*block.start(), *block.end());
        let mut reserve = self.id_reserve.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *reserve = Some(first + count..=last);
        Ok(first..=first + count - 1)
    }

    fn take_reserved_ids(&self, count: u64) -> Option<RangeInclusive<u64>> {
        let mut reserve = self.id_reserve.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let available = reserve.as_ref()?;
        let (first, last) = (*available.start(), *available.end());
        if first > last || last - first + 1 < count {
            return None;
        }
        *reserve = Some(first + count..=last);
        Some(first..=first + count - 1)
    }

    /// Reserves `count` new ids in one call.
    async fn reserve_ids(&self, count: u64) -> Result<RangeInclusive<u64>, TableError> {
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
