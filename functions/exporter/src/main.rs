//! The exporter Lambda: wiring only.

use exporter::{Exporter, ExporterConfig, ExporterEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{aws_sdk_config, init_tracing};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let exporter = Exporter::build(&ExporterConfig::from_env()?, &aws_sdk_config().await?)?;
    let exporter = &exporter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ExporterEvent>| async move {
        exporter.handle_event(event.payload, event.context.deadline()).await.map_err(Error::from)
    }))
    .await
}
