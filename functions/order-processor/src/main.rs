//! The order processor Lambda: wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_processor::{OrderProcessor, ProcessorConfig};
use shipsync_platform::{aws_sdk_config, init_tracing};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let processor = OrderProcessor::build(&ProcessorConfig::from_env()?, &aws_sdk_config().await?);
    let processor = &processor;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(processor.handle(event.payload).await)
    }))
    .await
}
