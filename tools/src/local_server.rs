//! Serves the API over plain HTTP on this machine, through the same handler the Lambda runs.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shipments_api::ShipmentsApi;
use shipsync_http_api::{ApiError, MAX_REQUEST_BYTES};
use shopify_webhooks::ShopifyWebhooks;
use tokio::net::TcpListener;
use tracing::warn;

/// The HTTP functions the local stack serves, as API Gateway routes to them.
#[derive(Clone)]
pub struct LocalApps {
    pub api: ShipmentsApi,
    pub webhooks: ShopifyWebhooks,
    pub carrier_webhooks: carrier_webhooks::CarrierWebhooks,
}

impl LocalApps {
    async fn handle(&self, request: shipsync_http_api::ApiRequest) -> shipsync_http_api::ApiResponse {
        if request.uri().path().starts_with("/webhooks/") {
            self.webhooks.handle(request).await
        } else if request.uri().path().starts_with("/carrier_webhooks/") {
            self.carrier_webhooks.handle(request).await
        } else {
            self.api.handle(request).await
        }
    }
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: TcpListener, apps: LocalApps) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let api = apps.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let api = api.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    // Like API Gateway, refuse bodies over the limit before they reach the handler.
                    let response = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                        Ok(collected) => api.handle(http::Request::from_parts(parts, collected.to_bytes())).await,
                        Err(_) => ApiError::PayloadTooLarge { limit: MAX_REQUEST_BYTES }.into_response(),
                    };
                    Ok::<_, Infallible>(response.map(|text| Full::new(Bytes::from(text))))
                }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                warn!(%error, "connection ended with an error");
            }
        });
    }
}
