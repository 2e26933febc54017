//! The order processor Lambda: wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_processor::OrderProcessor;
use shipsync_planner::{ExportPlanner, PlannerConfig};
use shipsync_platform::{aws_sdk_config, dynamodb_client, init_tracing, required_env};
use shipsync_table::Table;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let table = required_env("SHIPSYNC_TABLE")?;
    let aws = aws_sdk_config().await;
    let planner = ExportPlanner::new(
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_scheduler::Client::new(&aws),
        PlannerConfig::from_env()?,
    );
    let processor = OrderProcessor::new(Table::new(dynamodb_client(&aws), table), planner);
    let processor = &processor;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(processor.handle(event.payload).await)
    }))
    .await
}
