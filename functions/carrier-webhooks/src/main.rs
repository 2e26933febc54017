//! The carrier webhook Lambda: wiring only.

use carrier_webhooks::CarrierWebhooks;
use lambda_http::{Body, Error, Request, service_fn};
use shipsync_platform::{IntakeConfig, aws_sdk_config, init_tracing};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let webhooks = CarrierWebhooks::build(&IntakeConfig::from_env()?, &aws_sdk_config().await?);
    let webhooks = &webhooks;
    lambda_http::run(service_fn(move |request: Request| async move {
        let response = webhooks.handle(shipsync_http_api::from_lambda(request)).await;
        Ok::<_, Error>(response.map(Body::from))
    }))
    .await
}
