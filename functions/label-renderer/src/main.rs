//! The label renderer Lambda (the render queue's consumer, a container image with Chromium):
//! wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use label_renderer::{LabelRenderer, RendererConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{aws_sdk_config, init_tracing};

// One event at a time; Chromium runs as a child process beside it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let renderer = LabelRenderer::build(&RendererConfig::from_env()?, &aws_sdk_config().await?);
    let renderer = &renderer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(renderer.handle(event.payload).await)
    }))
    .await
}
