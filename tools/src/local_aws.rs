//! The AWS resources of the local stack and the tests, created on moto as the template declares
//! them: the table, the export queue with its dead-letter queue, the schedule group, and the KMS
//! key that seals channel credentials.

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use shipsync_planner::{ExportPlanner, PlannerConfig};
use shipsync_table::schema::create_table;
use shipsync_table::{CredentialAccess, KmsCipher, Table};

/// How many deliveries a failing export gets before its message goes to the dead-letter queue
/// (the template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

/// Clients and names of one local deployment.
#[derive(Debug, Clone)]
pub struct LocalAws {
    pub table: Table,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub planner: PlannerConfig,
    /// The export queue's ARN (its records' `eventSourceARN`).
    pub export_queue_arn: String,
    pub export_dead_letter_url: String,
    /// The order processor's queue (webhook events) and its dead-letter queue.
    pub order_queue_url: String,
    pub order_queue_arn: String,
    pub order_dead_letter_url: String,
    /// How long a received message stays invisible: short locally so retries come quickly.
    pub visibility_timeout_seconds: i32,
    pub kms: aws_sdk_kms::Client,
    /// The key channel credentials are sealed with (`alias/<name>-credentials`).
    pub credentials_key_id: String,
    /// The SDK settings every client here was made with: the functions' `build` takes them.
    pub sdk: aws_config::SdkConfig,
    /// The bucket label files are kept in (private; objects encrypted).
    pub labels_bucket: String,
    /// The renderer's queue (HTML labels to render) and its dead-letter queue.
    pub render_queue_url: String,
    pub render_queue_arn: String,
    pub render_dead_letter_url: String,
    /// The mailer's queue (purchase orders to email) and its dead-letter queue.
    pub mail_queue_url: String,
    pub mail_queue_arn: String,
    pub mail_dead_letter_url: String,
    /// The sender of purchase order emails (verified with the emulator's SES).
    pub mail_from: String,
    /// Signs console sessions: random per deployment (a restart signs everyone out).
    pub console_secret: String,
}

/// The sender the local stack's emails come from.
pub const LOCAL_MAIL_FROM: &str = "purchase-orders@shipsync.local";

#[derive(Debug, thiserror::Error)]
#[error("setting up {what} on the local emulator: {detail}")]
pub struct SetupError {
    what: &'static str,
    detail: String,
}

fn failed<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> SetupError {
    move |error| SetupError { what, detail: format!("{error:?}") }
}

/// The exporter function's ARN in a local deployment: the schedules' target, which the local
/// runner recognises and invokes in-process.
pub fn exporter_arn(deployment: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{deployment}-exporter")
}

/// The SDK configuration for an emulator endpoint, with static local credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_with_key(endpoint, "local", "local").await
}

/// The SDK configuration for an emulator endpoint that enforces IAM, signing with an IAM
/// user's access key.
pub async fn sdk_config_with_key(endpoint: &str, access_key_id: &str, secret: &str) -> aws_config::SdkConfig {
    // The functions' own HTTP client, speaking plain HTTP to the emulator.
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let loader = match shipsync_platform::aws_http::sdk_http_builder(Vec::new()).map(|builder| builder.build()) {
        Ok(Ok(http)) => loader.http_client(shipsync_platform::aws_http::sdk_http_client(http)),
        // Left without a client, every call then fails saying so.
        failed => {
            tracing::error!(?failed, "no HTTP client for the AWS SDK");
            loader
        }
    };
    loader
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            access_key_id,
            secret,
            None,
            None,
            "shipsync-local",
        ))
        .load()
        .await
}

impl LocalAws {
    /// Creates (or finds) every resource; names are prefixed with `name` so deployments can share an emulator.
    pub async fn provision(endpoint: &str, name: &str, visibility_timeout_seconds: i32) -> Result<Self, SetupError> {
        Self::provision_with(&sdk_config(endpoint).await, name, visibility_timeout_seconds).await
    }

    /// `provision` with these SDK settings (an emulator that enforces IAM needs an admin's key).
    pub async fn provision_with(
        config: &aws_config::SdkConfig,
        name: &str,
        visibility_timeout_seconds: i32,
    ) -> Result<Self, SetupError> {
        let config = config.clone();
        let kms = aws_sdk_kms::Client::new(&config);
        let credentials_key_id = credentials_key(&kms, name).await?;
        // The table seals and opens credentials, as the functions that call channels do; the
        // API gets `encrypt_only_table`.
        let table = Table::connect(&config, name, CredentialAccess::Open { key_id: &credentials_key_id });
        create_table(table.client(), name).await.map_err(failed("the table"))?;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let scheduler = aws_sdk_scheduler::Client::new(&config);

        let (dead_letter_url, dead_letter_arn) = create_queue(&sqs, &format!("{name}-exports-dlq"), None).await?;
        let redrive =
            serde_json::json!({ "deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVES }).to_string();
        let (queue_url, queue_arn) =
            create_queue(&sqs, &format!("{name}-exports"), Some((redrive, visibility_timeout_seconds))).await?;
        let (_, schedule_dead_letter_arn) = create_queue(&sqs, &format!("{name}-schedules-dlq"), None).await?;
        let (order_dead_letter_url, order_dead_letter_arn) =
            create_queue(&sqs, &format!("{name}-orders-dlq"), None).await?;
        let order_redrive =
            serde_json::json!({ "deadLetterTargetArn": order_dead_letter_arn, "maxReceiveCount": MAX_RECEIVES })
                .to_string();
        let (order_queue_url, order_queue_arn) =
            create_queue(&sqs, &format!("{name}-orders"), Some((order_redrive, visibility_timeout_seconds))).await?;
        let (render_dead_letter_url, render_dead_letter_arn) =
            create_queue(&sqs, &format!("{name}-renders-dlq"), None).await?;
        let render_redrive =
            serde_json::json!({ "deadLetterTargetArn": render_dead_letter_arn, "maxReceiveCount": MAX_RECEIVES })
                .to_string();
        let (render_queue_url, render_queue_arn) =
            create_queue(&sqs, &format!("{name}-renders"), Some((render_redrive, visibility_timeout_seconds))).await?;
        let (mail_dead_letter_url, mail_dead_letter_arn) =
            create_queue(&sqs, &format!("{name}-mail-dlq"), None).await?;
        let mail_redrive =
            serde_json::json!({ "deadLetterTargetArn": mail_dead_letter_arn, "maxReceiveCount": MAX_RECEIVES })
                .to_string();
        let (mail_queue_url, mail_queue_arn) =
            create_queue(&sqs, &format!("{name}-mail"), Some((mail_redrive, visibility_timeout_seconds))).await?;
        shipsync_files::SesMailer::connect(&config)
            .create_identity(LOCAL_MAIL_FROM)
            .await
            .map_err(failed("the mail sender's SES identity"))?;
        let labels_bucket = bucket_name(name, "labels");
        create_bucket(&s3_client(&config), &labels_bucket).await?;
        let group = format!("{name}-exports");
        match scheduler.create_schedule_group().name(&group).send().await {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {}
            Err(error) => return Err(failed("the schedule group")(error)),
        }
        let planner = PlannerConfig {
            queue_url,
            exporter_arn: exporter_arn(name),
            schedule_group: group,
            scheduler_role_arn: "arn:aws:iam::123456789012:role/shipsync-scheduler".into(),
            schedule_dead_letter_arn,
        };
        Ok(Self {
            table,
            sqs,
            scheduler,
            planner,
            export_queue_arn: queue_arn,
            export_dead_letter_url: dead_letter_url,
            order_queue_url,
            order_queue_arn,
            order_dead_letter_url,
            visibility_timeout_seconds,
            kms,
            credentials_key_id,
            sdk: config,
            labels_bucket,
            render_queue_url,
            render_queue_arn,
            render_dead_letter_url,
            mail_queue_url,
            mail_queue_arn,
            mail_dead_letter_url,
            mail_from: LOCAL_MAIL_FROM.to_owned(),
            console_secret: random_secret(),
        })
    }

    /// The mailer's queue, as the API queues purchase order emails on it.
    pub fn mail_queue(&self) -> shipsync_files::MailQueueSqs {
        shipsync_files::MailQueueSqs::new(self.sqs.clone(), self.mail_queue_url.clone())
    }

    /// The mailer's configuration in this deployment.
    pub fn mailer_config(&self) -> vendor_mailer::MailerConfig {
        vendor_mailer::MailerConfig {
            table_name: self.table.table_name().to_owned(),
            labels_bucket: self.labels_bucket.clone(),
            mail_from: self.mail_from.clone(),
        }
    }

    /// The labels bucket, through this deployment's clients.
    pub fn label_bucket(&self) -> shipsync_files::LabelBucket {
        shipsync_files::LabelBucket::connect(&self.sdk, &self.labels_bucket)
    }

    /// An S3 client of this deployment (aws-sdk-s3, by path as the emulator wants): to set the
    /// bucket up and look inside it.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.sdk)
    }

    /// The renderer's queue, as the API queues HTML labels on it.
    pub fn render_queue(&self) -> shipsync_files::RenderQueueSqs {
        shipsync_files::RenderQueueSqs::new(self.sqs.clone(), self.render_queue_url.clone())
    }

    /// The renderer's configuration in this deployment.
    pub fn renderer_config(&self) -> label_renderer::RendererConfig {
        label_renderer::RendererConfig {
            table_name: self.table.table_name().to_owned(),
            labels_bucket: self.labels_bucket.clone(),
            chromium: label_renderer::chromium_path(),
        }
    }

    /// The same deployment reached with other SDK settings (another IAM user's credentials):
    /// every client is rebuilt from `config` (the store's cipher on the new KMS client), the
    /// names and the key stay.
    pub fn with_sdk_config(&self, config: &aws_config::SdkConfig) -> Self {
        let access = CredentialAccess::Open { key_id: &self.credentials_key_id };
        Self {
            table: Table::connect(config, self.table.table_name(), access),
            sqs: aws_sdk_sqs::Client::new(config),
            scheduler: aws_sdk_scheduler::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            sdk: config.clone(),
            ..self.clone()
        }
    }

    /// The same deployment with every client recording its calls in `recorder` as `origin`'s
    /// (the benchmark's cost model): the table (and its credential cipher), SQS, the Scheduler
    /// and KMS. Names, key and SDK settings stay.
    pub fn recorded(&self, recorder: &crate::cost::Recorder, origin: crate::cost::Origin) -> Self {
        let kms = recorder.kms(&self.sdk, origin);
        let cipher = KmsCipher::new(kms.clone(), self.credentials_key_id.clone());
        Self {
            table: Table::new(recorder.dynamodb(&self.sdk, origin), self.table.table_name())
                .with_cipher(Arc::new(cipher)),
            sqs: recorder.sqs(&self.sdk, origin),
            scheduler: recorder.scheduler(&self.sdk, origin),
            kms,
            ..self.clone()
        }
    }

    /// The store as the API has it: it can seal credentials but never open them.
    pub fn encrypt_only_table(&self) -> Table {
        let cipher = KmsCipher::encrypt_only(self.kms.clone(), self.credentials_key_id.clone());
        self.table.clone().with_cipher(Arc::new(cipher))
    }

    /// The API's configuration in this deployment, as its Lambda reads it from the environment.
    pub fn api_config(&self) -> shipments_api::ApiConfig {
        shipments_api::ApiConfig {
            table_name: self.table.table_name().to_owned(),
            credentials_key_id: self.credentials_key_id.clone(),
            planner: self.planner.clone(),
            labels_bucket: self.labels_bucket.clone(),
            render_queue_url: self.render_queue_url.clone(),
            mail_queue_url: self.mail_queue_url.clone(),
            mail_from: Some(self.mail_from.clone()),
            console_secret: Some(self.console_secret.clone()),
        }
    }

    /// The order processor's configuration in this deployment.
    pub fn processor_config(&self) -> order_processor::ProcessorConfig {
        order_processor::ProcessorConfig {
            table_name: self.table.table_name().to_owned(),
            planner: self.planner.clone(),
            mail_queue_url: Some(self.mail_queue_url.clone()),
        }
    }

    /// The configuration of the functions that take orders in (webhooks, poller) in this deployment.
    pub fn intake_config(&self) -> shipsync_platform::IntakeConfig {
        shipsync_platform::IntakeConfig {
            table_name: self.table.table_name().to_owned(),
            credentials_key_id: self.credentials_key_id.clone(),
            order_queue_url: self.order_queue_url.clone(),
        }
    }

    /// The sweeper's configuration in this deployment.
    pub fn sweeper_config(&self) -> sweeper::SweeperConfig {
        sweeper::SweeperConfig {
            table_name: self.table.table_name().to_owned(),
            export_queue_url: self.planner.queue_url.clone(),
        }
    }

    /// The exporter's configuration in this deployment, as its Lambda reads it from the environment.
    pub fn exporter_config(&self) -> exporter::ExporterConfig {
        exporter::ExporterConfig {
            table_name: self.table.table_name().to_owned(),
            credentials_key_id: self.credentials_key_id.clone(),
            queue_url: self.planner.queue_url.clone(),
            max_receives: MAX_RECEIVES,
            channel_timeout: exporter::CHANNEL_TIMEOUT,
        }
    }

    pub fn export_planner(&self) -> ExportPlanner {
        ExportPlanner::new(self.sqs.clone(), self.scheduler.clone(), self.planner.clone())
    }
}

/// A bucket name for a deployment's `purpose`: S3's rules (3 to 63 characters; lower-case
/// letters, digits and hyphens) applied to the deployment's name.
pub fn bucket_name(deployment: &str, purpose: &str) -> String {
    let cleaned: String =
        deployment.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let mut name = format!("{}-{purpose}", cleaned.trim_matches('-'));
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// An S3 client reaching an emulator by path (it serves no bucket host names).
fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// Creates the labels bucket as the template declares it (private, objects encrypted at rest),
/// or finds it.
async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), SetupError> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) => {}
        Err(error) => return Err(failed("the labels bucket")(error)),
    }
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(failed("the labels bucket's public access block"))?;
    Ok(())
}

/// The credentials key of a deployment: found by its alias, or created (a symmetric
/// encrypt/decrypt key, as the template declares) with that alias.
async fn credentials_key(kms: &aws_sdk_kms::Client, name: &str) -> Result<String, SetupError> {
    let alias = format!("alias/{name}-credentials");
    match kms.describe_key().key_id(&alias).send().await {
        Ok(found) => {
            return found
                .key_metadata
                .map(|key| key.key_id)
                .ok_or_else(|| SetupError { what: "the credentials key", detail: format!("{alias} has no key") });
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
        Err(error) => return Err(failed("the credentials key")(error)),
    }
    let created = kms
        .create_key()
        .description(format!("{name}: seals channel credentials"))
        .send()
        .await
        .map_err(failed("the credentials key"))?;
    let key_id = created.key_metadata.map(|key| key.key_id).unwrap_or_default();
    kms.create_alias().alias_name(&alias).target_key_id(&key_id).send().await.map_err(failed("the key's alias"))?;
    Ok(key_id)
}

/// Creates a queue (or finds it) and returns its URL and ARN.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive_and_visibility: Option<(String, i32)>,
) -> Result<(String, String), SetupError> {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some((redrive, visibility)) = redrive_and_visibility {
        request = request
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string());
    }
    let url = request.send().await.map_err(failed("a queue"))?.queue_url.unwrap_or_default();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(failed("a queue's ARN"))?;
    let arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
    Ok((url, arn))
}

/// A fresh 64-hex-character secret, or a fixed one where the system offers no randomness
/// (a local stack's sessions only).
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        return "local-console-secret-without-randomness-0000000000000".to_owned();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
