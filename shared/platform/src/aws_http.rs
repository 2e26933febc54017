//! The HTTP client the AWS SDK sends through: the same reqwest client, TLS set-up and connection
//! pool as the channels' calls (`shipsync_channels::http_client_builder`: rustls with ring,
//! Mozilla's roots compiled in, which hold Amazon Trust Services' roots every AWS endpoint chains
//! to). One HTTP stack per binary instead of two: the SDK's own client carried hyper's HTTP/2, a
//! second TLS set-up and, by default, read every certificate in `/etc/ssl/certs` at start-up.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// How long connecting to an AWS endpoint may take: the SDK's own default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);

/// The SDK's HTTP client over `http` (a reqwest client; see the module's comment).
pub fn sdk_http_client(http: reqwest::Client) -> SharedHttpClient {
    SharedHttpClient::new(ReqwestClient { http })
}

/// The reqwest builder the SDK's client is made from: channels' TLS and `extra_roots`, the SDK's
/// connect timeout, and no redirects (AWS answers none; a redirect would carry a signed request
/// elsewhere).
pub fn sdk_http_builder(
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<reqwest::ClientBuilder, shipsync_channels::HttpClientError> {
    Ok(shipsync_channels::http_client_builder_trusting(extra_roots)?
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none()))
}

#[derive(Debug, Clone)]
struct ReqwestClient {
    http: reqwest::Client,
}

impl HttpClient for ReqwestClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        // The connect timeout is the client's; the read timeout, when the SDK sets one, bounds
        // each request as a whole.
        SharedHttpConnector::new(ReqwestConnector { http: self.http.clone(), read_timeout: settings.read_timeout() })
    }
}

#[derive(Debug, Clone)]
struct ReqwestConnector {
    http: reqwest::Client,
    read_timeout: Option<Duration>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let prepared = self.prepare(&request);
        HttpConnectorFuture::new(async move {
            let response = prepared?.send().await.map_err(connector_error)?;
            let status = StatusCode::try_from(response.status().as_u16())
                .map_err(|error| ConnectorError::other(Box::new(error), None))?;
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(connector_error)?;
            let mut answer = HttpResponse::new(status, SdkBody::from(body));
            for (name, value) in &headers {
                answer
                    .headers_mut()
                    .append(name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            Ok(answer)
        })
    }
}

impl ReqwestConnector {
    fn prepare(&self, request: &HttpRequest) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let method = reqwest::Method::from_bytes(request.method().as_bytes())
            .map_err(|error| ConnectorError::user(Box::new(error)))?;
        // Every request shipsync's clients make (DynamoDB, SQS, Scheduler, KMS, STS) has its body
        // in memory; a streaming one would need a streaming body here.
        let body = request
            .body()
            .bytes()
            .ok_or_else(|| ConnectorError::user("a streaming request body is not supported by this client".into()))?
            .to_vec();
        let mut builder = self.http.request(method, request.uri()).body(body);
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(timeout) = self.read_timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder)
    }
}

/// Sorts a failed call as the SDK's retry rules expect: timeouts and connection failures are
/// transient (retried), the rest are not.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(Box::new(error))
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(Box::new(error))
    } else {
        ConnectorError::other(Box::new(error), None)
    }
}
