//! The order poller Lambda (an EventBridge rate schedule, and the Amazon notification queue):
//! wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_poller::OrderPoller;
use shipsync_platform::{IntakeConfig, aws_sdk_config, init_tracing};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let poller = OrderPoller::build(&IntakeConfig::from_env()?, &aws_sdk_config().await?)?;
    let poller = &poller;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        // Boxed: its futures nest too deep for the compiler to lay out inline.
        Box::pin(poller.handle(event.payload)).await.map_err(|failure| Error::from(failure.chain()))
    }))
    .await
}
