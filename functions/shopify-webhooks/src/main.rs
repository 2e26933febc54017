//! The Shopify webhook Lambda: wiring only.

use lambda_http::{Body, Error, Request, service_fn};
use shipsync_platform::{aws_sdk_config, dynamodb_client, init_tracing, required_env};
use shipsync_table::{KmsCipher, Table};
use shopify_webhooks::ShopifyWebhooks;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let table = required_env("SHIPSYNC_TABLE")?;
    let queue_url = required_env("SHIPSYNC_ORDER_QUEUE_URL")?;
    let aws = aws_sdk_config().await;
    // Opens the stores' webhook secrets to check signatures.
    let cipher = KmsCipher::new(aws_sdk_kms::Client::new(&aws), required_env("SHIPSYNC_CREDENTIALS_KEY_ID")?);
    let table = Table::new(dynamodb_client(&aws), table).with_cipher(std::sync::Arc::new(cipher));
    let webhooks = ShopifyWebhooks::new(table, aws_sdk_sqs::Client::new(&aws), queue_url);
    let webhooks = &webhooks;
    lambda_http::run(service_fn(move |request: Request| async move {
        let response = webhooks.handle(shipsync_http_api::from_lambda(request)).await;
        Ok::<_, Error>(response.map(Body::from))
    }))
    .await
}
