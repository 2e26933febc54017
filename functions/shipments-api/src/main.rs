//! The shipments API Lambda: wiring only.

use lambda_http::{Body, Error, Request, service_fn};
use shipments_api::{ApiConfig, ShipmentsApi};
use shipsync_platform::{aws_sdk_config, init_tracing};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let api = ShipmentsApi::build(&ApiConfig::from_env()?, &aws_sdk_config().await?);
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        let response = api.handle(shipsync_http_api::from_lambda(request)).await;
        Ok::<_, Error>(response.map(Body::from))
    }))
    .await
}
