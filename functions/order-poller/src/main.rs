//! The order poller Lambda (an EventBridge rate schedule): wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_poller::OrderPoller;
use shipsync_platform::{IntakeConfig, aws_sdk_config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let poller = OrderPoller::build(&IntakeConfig::from_env()?, &aws_sdk_config().await)?;
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
