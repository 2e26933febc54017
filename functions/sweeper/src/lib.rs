//! The sweeper: the safety net that makes sure no export is stranded. Every few minutes it
//! re-queues the shipments whose export should have moved on by now: still `scheduled` a grace
//! period after they were due (the schedule or its message was lost, or the API died between
//! its write and its queueing), or `exporting` under an expired claim (the attempt died). It
//! finds them through the sparse `by_export_due` index, never a scan.
//!
//! Re-queueing is always safe: the exporter re-reads the shipment and acts only if it is still
//! due, its claim (a conditional write) lets one attempt through, and an attempt that takes over
//! a dead one asks the channel first and adopts what the channel already has.

use std::sync::Arc;

use chrono::Utc;
use shipsync_app::Failure;
use shipsync_domain::export::{ExportReason, ExportRequest};
use shipsync_domain::ids::ShipmentId;
use shipsync_table::{Table, TableError};
use tracing::{info, warn};

use shipsync_domain::time::Clock;

/// The most shipments one run re-queues; the next run takes the rest.
pub const MAX_PER_SWEEP: usize = 1000;

/// Messages sent at once.
const CONCURRENT_SENDS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("finding overdue exports: {0}")]
    Table(#[from] TableError),
    #[error("{failed} of {found} overdue exports could not be queued (the next sweep tries again): {first}")]
    Queue { failed: usize, found: usize, first: String },
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// The shipments re-queued.
    pub requeued: Vec<ShipmentId>,
    /// Whether more were overdue than one run takes.
    pub more_left: bool,
}

/// What the sweeper is built from: read from the environment when deployed.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// `SHIPSYNC_EXPORT_QUEUE_URL`: where overdue exports are queued again.
    pub export_queue_url: String,
}

impl SweeperConfig {
    pub fn from_env() -> Result<Self, shipsync_platform::ConfigError> {
        Ok(Self {
            table_name: shipsync_platform::required_env("SHIPSYNC_TABLE")?,
            export_queue_url: shipsync_platform::required_env("SHIPSYNC_EXPORT_QUEUE_URL")?,
        })
    }
}

#[derive(Clone)]
pub struct Sweeper {
    table: Table,
    sqs: aws_sdk_sqs::Client,
    /// `SHIPSYNC_EXPORT_QUEUE_URL`
    queue_url: String,
    clock: Clock,
}

impl Sweeper {
    /// As deployed (its Lambda, the local stack): it opens no credentials.
    pub fn build(config: &SweeperConfig, aws: &aws_config::SdkConfig) -> Self {
        let table = Table::connect(aws, &config.table_name, shipsync_table::CredentialAccess::None);
        Self::new(table, aws_sdk_sqs::Client::new(aws), config.export_queue_url.clone())
    }

    pub fn new(table: Table, sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { table, sqs, queue_url, clock: Arc::new(Utc::now) }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// One run: finds what is overdue now and queues an export request for each.
    pub async fn sweep(&self) -> Result<SweepReport, SweepError> {
        let now = (self.clock)();
        let overdue = self.table.overdue_exports(now, MAX_PER_SWEEP).await?;
        let more_left = overdue.len() >= MAX_PER_SWEEP;
        let mut requeued = Vec::with_capacity(overdue.len());
        let mut failures = Vec::new();
        for chunk in overdue.chunks(CONCURRENT_SENDS) {
            let mut sends = tokio::task::JoinSet::new();
            for id in chunk.iter().copied() {
                let (sqs, queue_url) = (self.sqs.clone(), self.queue_url.clone());
                sends.spawn(async move { (id, queue(&sqs, &queue_url, id).await) });
            }
            while let Some(joined) = sends.join_next().await {
                match joined {
                    Ok((id, Ok(()))) => requeued.push(id),
                    Ok((id, Err(problem))) => failures.push(format!("shipment {id}: {}", problem.chain())),
                    Err(problem) => failures.push(format!("a send task failed: {problem}")),
                }
            }
        }
        requeued.sort_unstable();
        if !requeued.is_empty() {
            // Worth a look: something lost a delivery or an attempt died.
            warn!(count = requeued.len(), shipments = ?requeued, more_left, "re-queued overdue exports");
        } else {
            info!("no overdue exports");
        }
        match failures.first() {
            None => Ok(SweepReport { requeued, more_left }),
            Some(first) => {
                Err(SweepError::Queue { failed: failures.len(), found: overdue.len(), first: first.clone() })
            }
        }
    }
}

async fn queue(sqs: &aws_sdk_sqs::Client, queue_url: &str, id: ShipmentId) -> Result<(), Failure> {
    let request = ExportRequest { shipment_id: id, reason: ExportReason::Overdue };
    let body = serde_json::to_string(&request).map_err(|error| Failure::permanent(error.to_string()))?;
    sqs.send_message().queue_url(queue_url).message_body(body).send().await.map(|_| ()).map_err(|error| {
        Failure::Retryable { reason: "queueing an export".into(), after: None, cause: Some(Box::new(error)) }
    })
}
