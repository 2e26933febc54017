//! The sweeper Lambda (an EventBridge rate schedule): wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{aws_sdk_config, init_tracing};
use sweeper::{Sweeper, SweeperConfig};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let sweeper = Sweeper::build(&SweeperConfig::from_env()?, &aws_sdk_config().await?);
    let sweeper = &sweeper;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        // A failed run fails the invocation, so it shows in the function's errors (alarmed).
        let report = sweeper.sweep().await?;
        Ok::<_, Error>(serde_json::json!({ "requeued": report.requeued.len(), "more_left": report.more_left }))
    }))
    .await
}
