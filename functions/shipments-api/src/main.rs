//! The shipments API Lambda: wiring only.

use lambda_http::{Body, Error, Request, service_fn};
use shipments_api::ShipmentsApi;
use shipsync_planner::{ExportPlanner, PlannerConfig};
use shipsync_platform::{ApiConfig, aws_sdk_config, dynamodb_client, init_tracing};
use shipsync_store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = ApiConfig::from_env()?;
    let planner_config = PlannerConfig::from_env()?;
    let aws = aws_sdk_config().await;
    let planner =
        ExportPlanner::new(aws_sdk_sqs::Client::new(&aws), aws_sdk_scheduler::Client::new(&aws), planner_config);
    let api = ShipmentsApi::new(Store::new(dynamodb_client(&aws), config.table_name), planner);
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        let response = api.handle(shipsync_http_api::from_lambda(request)).await;
        Ok::<_, Error>(response.map(Body::from))
    }))
    .await
}
