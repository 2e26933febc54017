//! What the sweeper reads: shipments whose export should have moved on by now, found through
//! the sparse `by_export_due` index (never a scan).

use chrono::{DateTime, Utc};
use shipsync_domain::ids::ShipmentId;

use crate::codec::s;
use crate::keys::{self, PK};
use crate::schema::{BY_EXPORT_DUE, EXPORT_DUE_SHARDS};
use crate::{Table, TableError};

impl Table {
    /// Shipments still scheduled [`SWEEP_GRACE`](shipsync_domain::export::SWEEP_GRACE) after
    /// their due time, or exporting under an expired claim, as of `now`: the longest overdue
    /// first in each shard, at most `limit` in all. The index is eventually consistent, so one
    /// may have moved on meanwhile; the exporter re-reads each one before acting.
    pub async fn overdue_exports(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ShipmentId>, TableError> {
        let mut found = Vec::new();
        for shard in 0..EXPORT_DUE_SHARDS {
            let mut start = None;
            loop {
                let wanted = limit.saturating_sub(found.len());
                if wanted == 0 {
                    return Ok(found);
                }
                self.count_call();
                let output = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_EXPORT_DUE.name)
                    .key_condition_expression("#ipk = :shard AND #isk <= :now")
                    .expression_attribute_names("#ipk", BY_EXPORT_DUE.partition_key)
                    .expression_attribute_names("#isk", BY_EXPORT_DUE.sort_key)
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":shard", s(keys::export_due_shard(shard)))
                    .expression_attribute_values(":now", s(keys::time_ceiling(now)))
                    .projection_expression("#pk")
                    .limit(i32::try_from(wanted.min(1000)).unwrap_or(1000))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(TableError::unavailable("Query"))?;
                for item in output.items.unwrap_or_default() {
                    let pk = item.get(PK).and_then(|value| value.as_s().ok()).map_or("", String::as_str);
                    let id = pk.strip_prefix("SHIPMENT#").and_then(|id| id.parse().ok()).ok_or_else(|| {
                        TableError::Corrupt { key: pk.to_owned(), reason: "not a shipment in by_export_due".into() }
                    })?;
                    found.push(id);
                }
                start = output.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(found)
    }
}
