//! The order poller Lambda (an EventBridge rate schedule): wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_poller::OrderPoller;
use shipsync_platform::{aws_sdk_config, dynamodb_client, init_tracing, required_env};
use shipsync_table::{KmsCipher, Table};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let table = required_env("SHIPSYNC_TABLE")?;
    let queue_url = required_env("SHIPSYNC_ORDER_QUEUE_URL")?;
    let aws = aws_sdk_config().await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        // A redirect would carry the channel's token header to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cipher = KmsCipher::new(aws_sdk_kms::Client::new(&aws), required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?);
    let table = Table::new(dynamodb_client(&aws), table).with_cipher(std::sync::Arc::new(cipher));
    // Channel calls go to each channel's own hosts (ChannelEndpoints::fixed, the default).
    let poller = OrderPoller::new(table, aws_sdk_sqs::Client::new(&aws), http, queue_url);
    let poller = &poller;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        let report = poller.tick().await?;
        // A store that failed makes the invocation fail, so it shows in the function's errors.
        if report.failures.is_empty() {
            Ok(serde_json::json!({ "orders_queued": report.orders_queued, "orders_kept": report.orders_kept }))
        } else {
            Err(Error::from(report.failures.join("; ")))
        }
    }))
    .await
}
