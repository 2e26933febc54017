//! The order processor: an SQS consumer of the order queue. Each message is one channel event,
//! handed to [`OrderIntake`] (shipsync-app), which applies it idempotently; this crate only
//! adapts SQS records to it and its failures to batch item failures.

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shipsync_app::intake::{OrderIntake, QueuedDelivery};
use shipsync_domain::time::{Clock, system_clock};
use shipsync_planner::{ExportPlanner, OrderQueue, PlannerConfig};
use shipsync_platform::{ConfigError, required_env};
use shipsync_table::{CredentialAccess, Table};

pub use shipsync_app::intake::MAX_RECEIVES;

/// The order processor as deployed: the table, and the planner that queues exports a carrier
/// scan makes due.
pub type Intake = OrderIntake<Table, ExportPlanner>;

/// What the order processor is built from: read from the environment when deployed, set by
/// the local stack and the tests.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// Where the exports a carrier scan makes due are queued.
    pub planner: PlannerConfig,
    /// `SHIPSYNC_MAIL_QUEUE_URL`, when the deployment sends email (`SHIPSYNC_MAIL_FROM` set):
    /// new purchase orders are emailed to the vendors that take them.
    pub mail_queue_url: Option<String>,
}

impl ProcessorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let planner = PlannerConfig::from_env().map_err(|missing| ConfigError::Missing(missing.0))?;
        let sends_mail = std::env::var("SHIPSYNC_MAIL_FROM").is_ok_and(|from| !from.trim().is_empty());
        let mail_queue_url = if sends_mail { Some(required_env("SHIPSYNC_MAIL_QUEUE_URL")?) } else { None };
        Ok(Self { table_name: required_env("SHIPSYNC_TABLE")?, planner, mail_queue_url })
    }
}

#[derive(Clone)]
pub struct OrderProcessor {
    intake: Intake,
}

impl OrderProcessor {
    /// The processor as deployed (its Lambda, the local stack): it opens no credentials.
    pub fn build(config: &ProcessorConfig, aws: &SdkConfig) -> Self {
        let table = Table::connect(aws, &config.table_name, CredentialAccess::None);
        let processor = Self::new(table, ExportPlanner::connect(aws, config.planner.clone()));
        match &config.mail_queue_url {
            Some(url) => processor.with_mail(OrderQueue::connect(aws, url.clone())),
            None => processor,
        }
    }

    /// Emails new purchase orders through `queue` (the mail queue) to vendors that take them.
    pub fn with_mail(self, queue: OrderQueue) -> Self {
        Self { intake: self.intake.with_mail(shipsync_app::ports::mail_sender(queue)) }
    }

    /// From parts: a planner is required, so a processor without one does not build.
    pub fn new(table: Table, planner: ExportPlanner) -> Self {
        Self { intake: OrderIntake::new(table, planner, system_clock()) }
    }

    pub fn with_clock(self, clock: Clock) -> Self {
        Self { intake: self.intake.with_clock(clock) }
    }

    pub fn with_max_receives(self, max_receives: u32) -> Self {
        Self { intake: self.intake.with_max_receives(max_receives) }
    }

    /// The use cases behind it.
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// Handles a batch; each record succeeds or fails on its own.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        shipsync_platform::for_each_record(event, "order-processor", async |message| {
            // Boxed: the nested futures are deep enough to exceed the compiler's layout limit.
            Box::pin(self.intake.apply_message(message.body.as_deref().unwrap_or_default(), &delivery(message))).await
        })
        .await
    }
}

/// Which message this is, and on which delivery.
fn delivery(message: &SqsMessage) -> QueuedDelivery {
    QueuedDelivery {
        message_id: message.message_id.clone().unwrap_or_default(),
        receives: message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse().ok()).unwrap_or(1),
    }
}
