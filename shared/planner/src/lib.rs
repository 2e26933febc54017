//! The queues, as the use cases' ports see them. `ExportPlanner` delivers export requests to the
//! exporter: at once through its SQS queue, or at a later time with an EventBridge Scheduler
//! one-time schedule that invokes the exporter with the same request when it is due (no queue on
//! the way: a queue's send, receive and delete would cost more than the schedule itself). `OrderQueue` sends channel events to the
//! order processor's queue.
//!
//! Both are safe to repeat: the exporter ignores a request that finds nothing to do, and a
//! schedule's name is derived from the shipment and due time, so a retry cannot make two.

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use chrono::{DateTime, Utc};
use shipsync_domain::export::{Delivery, ExportRequest};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::info;

/// Where export requests go.
#[derive(Debug, Clone)]
pub struct PlannerConfig {
    /// `SHIPSYNC_EXPORT_QUEUE_URL`
    pub queue_url: String,
    /// `SHIPSYNC_EXPORTER_ARN`: the schedules' target, the exporter function.
    pub exporter_arn: String,
    /// `SHIPSYNC_SCHEDULE_GROUP`
    pub schedule_group: String,
    /// `SHIPSYNC_SCHEDULER_ROLE_ARN`: the role EventBridge Scheduler assumes to invoke the exporter.
    pub scheduler_role_arn: String,
    /// `SHIPSYNC_SCHEDULE_DLQ_ARN`: where a schedule's undeliverable message goes.
    pub schedule_dead_letter_arn: String,
}

impl PlannerConfig {
    /// Reads the variables named on each field; a missing one fails the cold start.
    pub fn from_env() -> Result<Self, MissingVariable> {
        let read = |name: &'static str| match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(MissingVariable(name)),
        };
        Ok(Self {
            queue_url: read("SHIPSYNC_EXPORT_QUEUE_URL")?,
            exporter_arn: read("SHIPSYNC_EXPORTER_ARN")?,
            schedule_group: read("SHIPSYNC_SCHEDULE_GROUP")?,
            scheduler_role_arn: read("SHIPSYNC_SCHEDULER_ROLE_ARN")?,
            schedule_dead_letter_arn: read("SHIPSYNC_SCHEDULE_DLQ_ARN")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is required")]
pub struct MissingVariable(pub &'static str);

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("could not queue export of shipment {shipment}")]
    Queue {
        shipment: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not schedule export of shipment {shipment}")]
    Schedule {
        shipment: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not withdraw the schedule of shipment {shipment}")]
    Cancel {
        shipment: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[derive(Debug, Clone)]
pub struct ExportPlanner {
    sqs: aws_sdk_sqs::Client,
    scheduler: aws_sdk_scheduler::Client,
    config: PlannerConfig,
    calls: Arc<AtomicU64>,
}

/// A schedule's name: the shipment and its due time (names allow 64 of `[0-9a-zA-Z-_.]`).
pub fn schedule_name(request: &ExportRequest, due_at: DateTime<Utc>) -> String {
    format!("export-{}-{}", request.shipment_id, due_at.timestamp())
}

/// Scheduler's `at()` expression, in UTC to the second.
pub fn at_expression(due_at: DateTime<Utc>) -> String {
    format!("at({})", due_at.format("%Y-%m-%dT%H:%M:%S"))
}

impl ExportPlanner {
    /// The planner as a function is deployed with: SQS and Scheduler clients from `aws`.
    pub fn connect(aws: &aws_config::SdkConfig, config: PlannerConfig) -> Self {
        Self::new(aws_sdk_sqs::Client::new(aws), aws_sdk_scheduler::Client::new(aws), config)
    }

    pub fn new(sqs: aws_sdk_sqs::Client, scheduler: aws_sdk_scheduler::Client, config: PlannerConfig) -> Self {
        Self { sqs, scheduler, config, calls: Arc::default() }
    }

    /// How many SQS and Scheduler calls this planner has made: a figure the notes report.
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Delivers a request now or at its due time.
    pub async fn deliver(&self, request: ExportRequest, delivery: Delivery) -> Result<(), PlanError> {
        match delivery {
            Delivery::Now => self.queue(request).await,
            Delivery::At(due_at) => self.schedule(request, due_at).await,
        }
    }

    /// Withdraws a plan whose state change was never written (its write lost a race), so that no
    /// schedule is left behind for it. A queued request cannot be withdrawn; it is harmless: the
    /// exporter finds nothing due. A schedule already gone (fired, or withdrawn before) is fine.
    pub async fn cancel(&self, request: ExportRequest, delivery: Delivery) -> Result<(), PlanError> {
        let Delivery::At(due_at) = delivery else { return Ok(()) };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let shipment = request.shipment_id.get();
        let name = schedule_name(&request, due_at);
        let result = self.scheduler.delete_schedule().name(&name).group_name(&self.config.schedule_group).send().await;
        match result {
            Ok(_) => {
                info!(shipment_id = shipment, schedule = %name, "schedule withdrawn");
                Ok(())
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(error) => Err(PlanError::Cancel { shipment, source: Box::new(error) }),
        }
    }

    async fn queue(&self, request: ExportRequest) -> Result<(), PlanError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let shipment = request.shipment_id.get();
        let body =
            serde_json::to_string(&request).map_err(|error| PlanError::Queue { shipment, source: Box::new(error) })?;
        self.sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|error| PlanError::Queue { shipment, source: Box::new(error) })?;
        info!(shipment_id = shipment, "export queued");
        Ok(())
    }

    async fn schedule(&self, request: ExportRequest, due_at: DateTime<Utc>) -> Result<(), PlanError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let shipment = request.shipment_id.get();
        let failed = |error: Box<dyn std::error::Error + Send + Sync>| PlanError::Schedule { shipment, source: error };
        let input = serde_json::to_string(&request).map_err(|e| failed(Box::new(e)))?;
        let target = Target::builder()
            .arn(&self.config.exporter_arn)
            .role_arn(&self.config.scheduler_role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder().maximum_event_age_in_seconds(86_400).maximum_retry_attempts(185).build(),
            )
            .dead_letter_config(DeadLetterConfig::builder().arn(&self.config.schedule_dead_letter_arn).build())
            .build()
            .map_err(|e| failed(Box::new(e)))?;
        let window =
            FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().map_err(|e| failed(Box::new(e)))?;
        let name = schedule_name(&request, due_at);
        let result = self
            .scheduler
            .create_schedule()
            .name(&name)
            .group_name(&self.config.schedule_group)
            .schedule_expression(at_expression(due_at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match result {
            Ok(_) => {
                info!(shipment_id = shipment, schedule = %name, due_at = %due_at, "export scheduled");
                Ok(())
            }
            // The same plan was made before (a retried request): nothing more to do.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conflict_exception()) => Ok(()),
            Err(error) => Err(failed(Box::new(error))),
        }
    }
}

/// The planner as the use cases see it. A failure to queue or schedule is worth retrying:
/// nothing was planned.
impl shipsync_app::ports::ExportPlanner for ExportPlanner {
    async fn deliver(&self, request: ExportRequest, delivery: Delivery) -> Result<(), shipsync_app::Failure> {
        ExportPlanner::deliver(self, request, delivery).await.map_err(planning_failure)
    }

    async fn cancel(&self, request: ExportRequest, delivery: Delivery) -> Result<(), shipsync_app::Failure> {
        ExportPlanner::cancel(self, request, delivery).await.map_err(planning_failure)
    }

    async fn queue_update(
        &self,
        update: shipsync_domain::cancellations::ChannelUpdate,
    ) -> Result<(), shipsync_app::Failure> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let failed = |error: Box<dyn std::error::Error + Send + Sync>| shipsync_app::Failure::Retryable {
            reason: "could not queue a channel update".into(),
            after: None,
            cause: Some(error),
        };
        let body = serde_json::to_string(&update).map_err(|error| failed(Box::new(error)))?;
        self.sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|error| failed(Box::new(error)))?;
        info!(?update, "channel update queued");
        Ok(())
    }
}

fn planning_failure(error: PlanError) -> shipsync_app::Failure {
    shipsync_app::Failure::Retryable {
        reason: "could not plan an export".into(),
        after: None,
        cause: Some(Box::new(error)),
    }
}

/// The order queue: channel events for the order processor (webhooks and the poller send them).
#[derive(Debug, Clone)]
pub struct OrderQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl OrderQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { sqs, queue_url: queue_url.into() }
    }

    /// A queue of this deployment (the order queue, or the mail queue for emails the order
    /// processor asks for).
    pub fn connect(aws: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(aws_sdk_sqs::Client::new(aws), queue_url)
    }
}

impl shipsync_app::ports::EventQueue for OrderQueue {
    async fn queue_event(&self, body: String) -> Result<(), shipsync_app::Failure> {
        self.sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await.map(|_| ()).map_err(
            |error| shipsync_app::Failure::Retryable {
                reason: "queueing a channel event".into(),
                after: None,
                cause: Some(Box::new(error)),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipsync_domain::export::ExportReason;
    use shipsync_domain::ids::ShipmentId;

    #[test]
    fn schedules_are_named_by_shipment_and_due_time() {
        let due: DateTime<Utc> = "2026-03-02T12:30:00Z".parse().unwrap();
        let request = ExportRequest { shipment_id: ShipmentId::new_unchecked(42), reason: ExportReason::Scheduled };
        assert_eq!(schedule_name(&request, due), "export-42-1772454600");
        assert_eq!(at_expression(due), "at(2026-03-02T12:30:00)");
    }
}
