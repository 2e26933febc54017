//! The exporter Lambda: wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use exporter::{Exporter, ExporterConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{aws_sdk_config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let exporter = Exporter::build(&ExporterConfig::from_env()?, &aws_sdk_config().await)?;
    let exporter = &exporter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(exporter.handle_until(event.payload, event.context.deadline()).await)
    }))
    .await
}
