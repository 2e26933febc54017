//! Cancellations: under their retailer and purchase order, found by id through a reference
//! under the retailer. A cancellation, the purchase order whose units it cancels and its order
//! health problem are written in one transaction: none without the others.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use shipsync_domain::cancellations::{Cancellation, ProblemUpdate};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId};
use shipsync_domain::purchase_order::PurchaseOrder;

use crate::codec::{compact_item, item, key, n, record, s};
use crate::keys;
use crate::schema::BY_ATTENTION;
use crate::{Table, TableError};

#[derive(serde::Serialize, serde::Deserialize)]
struct CancellationRefRecord {
    purchase_order_id: PurchaseOrderId,
}

fn rejected(error: impl std::error::Error + Send + Sync + 'static) -> TableError {
    TableError::Rejected { operation: "TransactWriteItems", source: Box::new(error) }
}

impl Table {
    /// Writes a cancellation (new, or changed from the version before it), the purchase order
    /// it changes (if any, only if nobody changed it since it was read), and its order health
    /// problem (listed while a person must act, removed once none need), all or nothing.
    /// [`TableError::Conflict`] when the cancellation or the purchase order changed meanwhile.
    pub async fn save_cancellation(
        &self,
        cancellation: &Cancellation,
        po: Option<&PurchaseOrder>,
        problem: &ProblemUpdate,
    ) -> Result<(), TableError> {
        let table = self.table_name();
        let retailer = cancellation.retailer_id;
        let mut record = compact_item(
            keys::cancellations(retailer, cancellation.purchase_order_id),
            &keys::cancellation(cancellation.id),
            cancellation,
        )?;
        record.insert("version".into(), n(cancellation.version));
        let new = cancellation.version == 1;
        let mut put = Put::builder().table_name(table).set_item(Some(record));
        put = if new {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :read")
                .expression_attribute_values(":read", n(cancellation.version - 1))
        };
        let mut steps = vec![TransactWriteItem::builder().put(put.build().map_err(rejected)?).build()];
        if new {
            let reference = item(
                keys::retailer(retailer),
                &keys::cancellation_ref(cancellation.id),
                &CancellationRefRecord { purchase_order_id: cancellation.purchase_order_id },
            )?;
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(reference))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(rejected)?;
            steps.push(TransactWriteItem::builder().put(put).build());
        }
        let problem_key = Cancellation::problem_key(cancellation.id);
        match problem {
            ProblemUpdate::List(problem) => {
                let mut listed = item(keys::retailer(retailer), &keys::problem(&problem.key), problem)?;
                listed.insert(BY_ATTENTION.partition_key.into(), s(keys::retailer_attention(retailer)));
                listed.insert(
                    BY_ATTENTION.sort_key.into(),
                    s(format!("{}#{}", keys::by_time(problem.since, 0), problem.key)),
                );
                let put = Put::builder().table_name(table).set_item(Some(listed)).build().map_err(rejected)?;
                steps.push(TransactWriteItem::builder().put(put).build());
            }
            ProblemUpdate::Unchanged => {}
            ProblemUpdate::Clear => {
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key(keys::retailer(retailer), &keys::problem(&problem_key))))
                    .build()
                    .map_err(rejected)?;
                steps.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        if let Some(po) = po {
            steps.push(crate::purchase_orders::put_purchase_order_if_unchanged(table, po, None)?);
        }
        let po_step = steps.len() - 1;
        let has_po = po.is_some();
        self.transact(steps, |step| match step {
            0 if new => TableError::AlreadyExists(format!("cancellation {}", cancellation.id)),
            0 => TableError::Conflict("the cancellation"),
            step if has_po && step == po_step => TableError::Conflict("purchase order"),
            _ => TableError::AlreadyExists(format!("cancellation {}", cancellation.id)),
        })
        .await
    }

    /// A cancellation as it stands after every write so far.
    pub async fn cancellation(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
        id: u64,
    ) -> Result<Option<Cancellation>, TableError> {
        let found = self.item_now(keys::cancellations(retailer, po), &keys::cancellation(id)).await?;
        Ok(found
            .map(record::<Cancellation>)
            .transpose()?
            .filter(|cancellation| cancellation.retailer_id == retailer && cancellation.purchase_order_id == po))
    }

    /// A cancellation of this retailer by id; another retailer's is as absent as a missing one.
    pub async fn retailer_cancellation(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> Result<Option<Cancellation>, TableError> {
        let Some(reference) = self.item_now(keys::retailer(retailer), &keys::cancellation_ref(id)).await? else {
            return Ok(None);
        };
        let reference: CancellationRefRecord = record(reference)?;
        self.cancellation(retailer, reference.purchase_order_id, id).await
    }

    /// A purchase order's cancellations, oldest first.
    pub async fn purchase_order_cancellations(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<Vec<Cancellation>, TableError> {
        let mut found: Vec<Cancellation> =
            self.partition_prefix_now(keys::cancellations(retailer, po), "CANCEL#").await?;
        found.retain(|cancellation| cancellation.retailer_id == retailer && cancellation.purchase_order_id == po);
        Ok(found)
    }
}
