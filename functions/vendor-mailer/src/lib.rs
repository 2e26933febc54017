//! The vendor mailer: takes purchase order email requests off the mail queue and hands each to
//! [`PurchaseOrderMailer`] (shipsync-app), which sends the order with its labels to the vendor
//! through SES.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shipsync_app::Failure;
use shipsync_app::mail::PurchaseOrderMailer;
use shipsync_domain::mail::MailRequest;
use shipsync_domain::time::{Clock, system_clock};
use shipsync_files::{LabelBucket, SesMailer};
use shipsync_platform::{ConfigError, required_env};
use shipsync_table::{CredentialAccess, Table};

/// The mailer's settings.
#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// `SHIPSYNC_LABELS_BUCKET`
    pub labels_bucket: String,
    /// `SHIPSYNC_MAIL_FROM`: the address emails come from (an identity verified in SES).
    pub mail_from: String,
}

impl MailerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env("SHIPSYNC_TABLE")?,
            labels_bucket: required_env("SHIPSYNC_LABELS_BUCKET")?,
            mail_from: required_env("SHIPSYNC_MAIL_FROM")?,
        })
    }
}

/// The mailer as deployed.
pub type Mailing = PurchaseOrderMailer<Table, LabelBucket, SesMailer>;

#[derive(Clone)]
pub struct VendorMailer {
    mailing: Mailing,
}

impl VendorMailer {
    /// As deployed: the table (no credentials), the labels bucket, SES.
    pub fn build(config: &MailerConfig, aws: &aws_config::SdkConfig) -> Self {
        let table = Table::connect(aws, &config.table_name, CredentialAccess::None);
        let bucket = LabelBucket::connect(aws, &config.labels_bucket);
        Self::new(table, bucket, SesMailer::connect(aws), config.mail_from.clone(), system_clock())
    }

    pub fn new(table: Table, bucket: LabelBucket, ses: SesMailer, from: String, clock: Clock) -> Self {
        Self { mailing: PurchaseOrderMailer::new(table, bucket, ses, from, clock) }
    }

    /// Sends each queued email; the records that fail come back (and end in the dead-letter
    /// queue after the queue's receives).
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        let mailing = &self.mailing;
        shipsync_platform::for_each_record(batch, "vendor-mailer", async |message| {
            let body = message.body.as_deref().unwrap_or_default();
            let request: MailRequest = serde_json::from_str(body)
                .map_err(|error| Failure::permanent(format!("not a mail request: {error}")))?;
            // Boxed: the nested futures are deep enough to exceed the compiler's layout limit.
            Box::pin(mailing.send(&request)).await
        })
        .await
    }
}
