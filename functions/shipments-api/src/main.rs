//! The shipments API Lambda: wiring only.

use lambda_http::{Body, Error, Request, service_fn};
use shipments_api::ShipmentsApi;
use shipsync_planner::{ExportPlanner, PlannerConfig};
use shipsync_platform::{ApiConfig, aws_sdk_config, dynamodb_client, init_tracing, required_env};
use shipsync_table::{KmsCipher, Table};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = ApiConfig::from_env()?;
    let planner_config = PlannerConfig::from_env()?;
    let aws = aws_sdk_config().await;
    let planner =
        ExportPlanner::new(aws_sdk_sqs::Client::new(&aws), aws_sdk_scheduler::Client::new(&aws), planner_config);
    // Credentials are write-only here: the API may seal them, never open them (nor may its role).
    let cipher = KmsCipher::encrypt_only(aws_sdk_kms::Client::new(&aws), required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?);
    let table = Table::new(dynamodb_client(&aws), config.table_name).with_cipher(std::sync::Arc::new(cipher));
    let api = ShipmentsApi::new(table, planner);
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        let response = api.handle(shipsync_http_api::from_lambda(request)).await;
        Ok::<_, Error>(response.map(Body::from))
    }))
    .await
}
