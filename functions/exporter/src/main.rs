//! The exporter Lambda: wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use exporter::{Exporter, ExporterConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{ConfigError, aws_sdk_config, dynamodb_client, init_tracing, required_env};
use shipsync_table::{KmsCipher, Table};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let table = required_env("SHIPSYNC_TABLE")?;
    let config = ExporterConfig {
        queue_url: required_env("SHIPSYNC_EXPORT_QUEUE_URL")?,
        max_receives: required_env("SHIPSYNC_EXPORT_MAX_RECEIVES")?.parse().map_err(|_| ConfigError::Invalid {
            name: "SHIPSYNC_EXPORT_MAX_RECEIVES",
            reason: "not a number".into(),
        })?,
    };
    let aws = aws_sdk_config().await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        // A redirect would carry the channel's token header to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cipher = KmsCipher::new(aws_sdk_kms::Client::new(&aws), required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?);
    let table = Table::new(dynamodb_client(&aws), table).with_cipher(std::sync::Arc::new(cipher));
    // Channel calls go to each channel's own hosts (ChannelEndpoints::fixed, the default): a
    // store's base_url is never honoured by a Lambda.
    let exporter = Exporter::new(table, aws_sdk_sqs::Client::new(&aws), http, config);
    let exporter = &exporter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(exporter.handle_until(event.payload, event.context.deadline()).await)
    }))
    .await
}
