//! The sweeper Lambda (an EventBridge rate schedule): wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{aws_sdk_config, dynamodb_client, init_tracing, required_env};
use shipsync_table::Table;
use sweeper::Sweeper;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let table = required_env("SHIPSYNC_TABLE")?;
    let queue_url = required_env("SHIPSYNC_EXPORT_QUEUE_URL")?;
    let aws = aws_sdk_config().await;
    let sweeper = Sweeper::new(Table::new(dynamodb_client(&aws), table), aws_sdk_sqs::Client::new(&aws), queue_url);
    let sweeper = &sweeper;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        // A failed run fails the invocation, so it shows in the function's errors (alarmed).
        let report = sweeper.sweep().await?;
        Ok::<_, Error>(serde_json::json!({ "requeued": report.requeued.len(), "more_left": report.more_left }))
    }))
    .await
}
