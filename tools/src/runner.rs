//! Does locally what AWS does and moto does not: fires due one-time schedules by invoking their
//! target, the exporter, with their input (then deletes them, as ActionAfterCompletion DELETE
//! would; a failed invocation is retried on the next firing, as Lambda retries one), feeds queued messages to
//! the exporter in batches, deleting those it handled and leaving its batch item failures to
//! come back after the visibility timeout (moto moves them to the dead-letter queue after
//! `maxReceiveCount` receives), and runs the sweeper on its rate schedule. Not part of any Lambda.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use chrono::{DateTime, NaiveDateTime, Utc};
use exporter::Exporter;
use label_renderer::LabelRenderer;
use order_processor::OrderProcessor;
use sweeper::Sweeper;
use tracing::{info, warn};
use vendor_mailer::VendorMailer;

use crate::local_aws::LocalAws;

pub struct Runner {
    aws: LocalAws,
    exporter: Exporter,
    processor: OrderProcessor,
    sweeper: Sweeper,
    renderer: LabelRenderer,
    mailer: VendorMailer,
    /// Time spent inside the consumers (what Lambda bills), summed.
    handler_time: std::sync::Arc<std::sync::Mutex<std::time::Duration>>,
}

/// How often the sweeper runs: the template's `rate(5 minutes)`.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
#[error("local runner: {0}")]
pub struct RunnerError(String);

fn failed<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> RunnerError + '_ {
    move |error| RunnerError(format!("{what}: {error:?}"))
}

impl Runner {
    /// A runner whose sweeper reads the real clock; see [`Runner::with_sweeper`].
    pub fn new(aws: LocalAws, exporter: Exporter, processor: OrderProcessor) -> Self {
        let sweeper = Sweeper::build(&aws.sweeper_config(), &aws.sdk);
        let renderer = LabelRenderer::build(&aws.renderer_config(), &aws.sdk);
        let mailer = VendorMailer::build(&aws.mailer_config(), &aws.sdk);
        Self { aws, exporter, processor, sweeper, renderer, mailer, handler_time: Default::default() }
    }

    /// Runs this mailer instead (one as another IAM user, or on a test's clock).
    pub fn with_mailer(mut self, mailer: VendorMailer) -> Self {
        self.mailer = mailer;
        self
    }

    /// Receives one batch from the mail queue and hands it to the vendor mailer.
    pub async fn deliver_mail(&self) -> Result<usize, RunnerError> {
        let (queue, arn) = (&self.aws.mail_queue_url, &self.aws.mail_queue_arn);
        self.feed(queue, arn, |event| self.mailer.handle(event)).await
    }

    /// Runs this renderer instead (one as another IAM user).
    pub fn with_renderer(mut self, renderer: LabelRenderer) -> Self {
        self.renderer = renderer;
        self
    }

    /// Receives one batch from the render queue and hands it to the label renderer.
    pub async fn deliver_renders(&self) -> Result<usize, RunnerError> {
        let (queue, arn) = (&self.aws.render_queue_url, &self.aws.render_queue_arn);
        self.feed(queue, arn, |event| self.renderer.handle(event)).await
    }

    /// Runs this sweeper instead (one on a test's clock).
    pub fn with_sweeper(mut self, sweeper: Sweeper) -> Self {
        self.sweeper = sweeper;
        self
    }

    /// Time the exporter and the order processor have spent handling the batches fed to them so
    /// far (their Lambda duration; receiving and deleting are the event source's, not theirs).
    pub fn handler_time(&self) -> std::time::Duration {
        *self.handler_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The exporter it invokes (a test delivers a schedule's request to it again).
    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    /// One run of the sweeper, as its schedule would invoke it. Returns how many it re-queued.
    pub async fn sweep(&self) -> Result<usize, RunnerError> {
        let report = self.sweeper.sweep().await.map_err(failed("sweeping"))?;
        Ok(report.requeued.len())
    }

    /// Hands one batch to the exporter as Lambda would with `deadline` as the invocation's.
    pub async fn deliver_batch_until(&self, deadline: std::time::SystemTime) -> Result<usize, RunnerError> {
        let (queue, arn) = (&self.aws.planner.queue_url, &self.aws.export_queue_arn);
        self.feed(queue, arn, |event| self.exporter.handle_until(event, deadline)).await
    }

    /// Invokes the exporter with every schedule due at `now` and deletes it. Returns how many fired.
    pub async fn fire_due_schedules(&self, now: DateTime<Utc>) -> Result<usize, RunnerError> {
        let group = &self.aws.planner.schedule_group;
        let listed =
            self.aws.scheduler.list_schedules().group_name(group).send().await.map_err(failed("listing schedules"))?;
        let mut fired = 0;
        for summary in listed.schedules() {
            let Some(name) = summary.name() else { continue };
            let schedule = self
                .aws
                .scheduler
                .get_schedule()
                .group_name(group)
                .name(name)
                .send()
                .await
                .map_err(failed("reading a schedule"))?;
            let due = schedule.schedule_expression().and_then(parse_at);
            if due.is_none_or(|due| due > now) {
                continue;
            }
            let Some(target) = schedule.target() else { continue };
            if target.arn() != self.aws.planner.exporter_arn {
                return Err(RunnerError(format!("schedule {name} targets {}, not the exporter", target.arn())));
            }
            let request = serde_json::from_str(target.input().unwrap_or_default())
                .map_err(failed("reading a schedule's request"))?;
            let started = std::time::Instant::now();
            let invoked = Box::pin(self.exporter.handle_scheduled(request)).await;
            *self.handler_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += started.elapsed();
            if let Err(error) = invoked {
                warn!(schedule = name, %error, "the exporter failed; the schedule fires again");
                continue;
            }
            self.aws
                .scheduler
                .delete_schedule()
                .group_name(group)
                .name(name)
                .send()
                .await
                .map_err(failed("deleting a fired schedule"))?;
            info!(schedule = name, "schedule fired");
            fired += 1;
        }
        Ok(fired)
    }

    /// Receives one batch from the export queue and hands it to the exporter. Returns how many
    /// messages it received.
    pub async fn deliver_batch(&self) -> Result<usize, RunnerError> {
        let (queue, arn) = (&self.aws.planner.queue_url, &self.aws.export_queue_arn);
        self.feed(queue, arn, |event| self.exporter.handle(event)).await
    }

    /// Receives one batch from the order queue and hands it to the order processor.
    pub async fn deliver_order_events(&self) -> Result<usize, RunnerError> {
        let (queue, arn) = (&self.aws.order_queue_url, &self.aws.order_queue_arn);
        self.feed(queue, arn, |event| self.processor.handle(event)).await
    }

    /// One batch from a queue to a consumer, as Lambda's event source mapping would.
    async fn feed<F, Fut>(&self, queue: &str, arn: &str, consume: F) -> Result<usize, RunnerError>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse>,
    {
        let received = self
            .aws
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(failed("receiving messages"))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let mut event = SqsEvent::default();
        for message in &messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            record.attributes = message
                .attributes()
                .map(|attributes| attributes.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                .unwrap_or_else(HashMap::new);
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(arn.to_owned());
            event.records.push(record);
        }
        let started = std::time::Instant::now();
        let response = consume(event).await;
        *self.handler_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += started.elapsed();
        let failed_ids: Vec<&str> =
            response.batch_item_failures.iter().map(|failure| failure.item_identifier.as_str()).collect();
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|message| !failed_ids.contains(&message.message_id().unwrap_or_default()))
            .enumerate()
            .filter_map(|(index, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .set_receipt_handle(message.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if !failed_ids.is_empty() {
            warn!(failed = failed_ids.len(), "messages left for redelivery");
        }
        if !entries.is_empty() {
            self.aws
                .sqs
                .delete_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failed("deleting handled messages"))?;
        }
        Ok(messages.len())
    }

    /// Runs until the task is dropped: fires schedules and feeds the queue, about twice a second,
    /// and sweeps every [`SWEEP_EVERY`].
    pub async fn run(&self) {
        let mut last_sweep: Option<std::time::Instant> = None;
        loop {
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(std::time::Instant::now());
                if let Err(error) = self.sweep().await {
                    warn!(%error, "sweeper");
                }
            }
            if let Err(error) = self.fire_due_schedules(Utc::now()).await {
                warn!(%error, "schedules");
            }
            let orders = self.deliver_order_events().await.unwrap_or_else(|error| {
                warn!(%error, "order queue");
                0
            });
            let exports = self.deliver_batch().await.unwrap_or_else(|error| {
                warn!(%error, "export queue");
                0
            });
            let renders = self.deliver_renders().await.unwrap_or_else(|error| {
                warn!(%error, "render queue");
                0
            });
            let mail = self.deliver_mail().await.unwrap_or_else(|error| {
                warn!(%error, "mail queue");
                0
            });
            if orders + exports + renders + mail > 0 {
                continue;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// The time of an `at(yyyy-mm-ddThh:mm:ss)` expression (UTC).
pub fn parse_at(expression: &str) -> Option<DateTime<Utc>> {
    let inner = expression.strip_prefix("at(")?.strip_suffix(')')?;
    NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S").ok().map(|time| time.and_utc())
}
