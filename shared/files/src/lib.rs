//! Where label files go: a private S3 bucket (each object encrypted at rest, reached only by
//! links presigned for a few minutes by the function's own role), and the queue that hands HTML
//! labels to the renderer.
//!
//! The four S3 calls (PutObject, GetObject, DeleteObject, and a presigned GetObject) are signed
//! here with aws-sigv4, the signer the AWS SDK itself uses and every function links already,
//! and sent through the functions' HTTP client: linking aws-sdk-s3 instead added 0.9 MB to the
//! API's zip (3.69 MB against 2.80 MB), over the 3 MB budget the benchmark holds it to. The tools
//! and tests reach the same bucket with aws-sdk-s3.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use shipsync_app::Failure;
use shipsync_app::ports::{LabelFiles, MailQueue, Mailer, RenderQueue};
use shipsync_domain::labels::RenderRequest;
use shipsync_domain::mail::MailRequest;

/// Signs AWS requests with the function's credentials, and sends them through its HTTP client.
#[derive(Debug, Clone)]
struct Signer {
    /// Built on first use, not at a cold start: most of the API's requests never touch a label.
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
}

impl Signer {
    fn new(aws: &aws_config::SdkConfig) -> Self {
        Self {
            http: Arc::default(),
            credentials: aws.credentials_provider(),
            region: aws.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, Failure> {
        self.http
            .get_or_init(|| shipsync_platform::aws_reqwest_client().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|error| Failure::permanent(format!("no HTTP client for AWS: {error}")))
    }

    /// The headers (or, presigning, the query parameters) that sign a request to `service`.
    async fn signature(
        &self,
        service: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
        settings: SigningSettings,
    ) -> Result<(Vec<(String, String)>, Vec<(String, String)>), Failure> {
        let provider =
            self.credentials.as_ref().ok_or_else(|| Failure::permanent("no AWS credentials are configured"))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|error| Failure::retryable(format!("AWS credentials: {error}")))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|error| Failure::permanent(format!("signing for {service}: {error}")))?
            .into();
        let request = SignableRequest::new(method, url, headers.iter().copied(), body)
            .map_err(|error| Failure::permanent(format!("signing for {service}: {error}")))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|error| Failure::permanent(format!("signing for {service}: {error}")))?
            .into_parts();
        let (headers, query) = instructions.into_parts();
        Ok((
            headers.iter().map(|header| (header.name().to_owned(), header.value().to_owned())).collect(),
            query.into_iter().map(|(name, value)| (name.to_owned(), value.into_owned())).collect(),
        ))
    }
}

/// The labels bucket.
#[derive(Debug, Clone)]
pub struct LabelBucket {
    signer: Signer,
    bucket: String,
    /// Where the bucket is reached: its own host name on AWS, by path on an emulator.
    base: String,
}

impl LabelBucket {
    /// The bucket through the SDK settings a function runs with (credentials, region, and an
    /// emulator's endpoint, reached by path: it serves no bucket host names).
    pub fn connect(aws: &aws_config::SdkConfig, bucket: &str) -> Self {
        let signer = Signer::new(aws);
        let base = match aws.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com", signer.region),
        };
        Self { signer, bucket: bucket.to_owned(), base }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// An object's URL: each segment of the key escaped (shipsync's keys need none).
    fn url(&self, key: &str) -> String {
        let path: Vec<String> = key.split('/').map(escape).collect();
        format!("{}/{}", self.base, path.join("/"))
    }

    /// S3's signing settings: its paths are signed as sent (no normalising, one encoding).
    fn settings(location: SignatureLocation, expires_in: Option<Duration>) -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.signature_location = location;
        settings.expires_in = expires_in;
        settings
    }

    /// One signed call; its status and body.
    async fn call(
        &self,
        method: reqwest::Method,
        key: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), Failure> {
        let http = self.signer.http()?;
        let url = self.url(key);
        let settings = Self::settings(SignatureLocation::Headers, None);
        let (signed, _) =
            self.signer.signature("s3", method.as_str(), &url, headers, SignableBody::Bytes(&body), settings).await?;
        let mut request = http.request(method.clone(), &url);
        for (name, value) in headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).chain(signed) {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| Failure::retryable(format!("S3 {method} {key}: {error}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| Failure::retryable(format!("S3 {method} {key}: reading the answer: {error}")))?;
        Ok((status, bytes.to_vec()))
    }
}

/// A key's segment as S3 reads it: unreserved characters as they are, every other byte escaped.
fn escape(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// S3's refusal, for a person: its status and the error's code and message.
fn refused(operation: &str, status: reqwest::StatusCode, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        text.split_once(&open).and_then(|(_, rest)| rest.split_once(&format!("</{name}>"))).map(|(inner, _)| inner)
    };
    let detail = format!("{} {}", tag("Code").unwrap_or_default(), tag("Message").unwrap_or_default());
    let message = format!("S3 {operation} answered {}: {}", status.as_u16(), detail.trim());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Failure::retryable(message)
    } else {
        Failure::permanent(message)
    }
}

impl LabelFiles for LabelBucket {
    async fn put_file(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Failure> {
        // Encrypted at rest whatever the bucket's default says.
        let headers = [("content-type", content_type), ("x-amz-server-side-encryption", "AES256")];
        let (status, body) = self.call(reqwest::Method::PUT, key, &headers, bytes).await?;
        if status.is_success() { Ok(()) } else { Err(refused("PutObject", status, &body)) }
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let (status, body) = self.call(reqwest::Method::GET, key, &[], Vec::new()).await?;
        match status {
            status if status.is_success() => Ok(Some(body)),
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status => Err(refused("GetObject", status, &body)),
        }
    }

    async fn delete_file(&self, key: &str) -> Result<(), Failure> {
        let (status, body) = self.call(reqwest::Method::DELETE, key, &[], Vec::new()).await?;
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(refused("DeleteObject", status, &body))
        }
    }

    /// Signed here, with no call: the link carries the role's right to read the object, for
    /// `seconds` only.
    async fn download_link(&self, key: &str, seconds: u64) -> Result<String, Failure> {
        let url = self.url(key);
        let host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default().to_owned();
        let settings = Self::settings(SignatureLocation::QueryParams, Some(Duration::from_secs(seconds)));
        let mut presigning = settings;
        // A presigned link's payload is the caller's, unknown when it is signed.
        presigning.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        let (_, query) = self
            .signer
            .signature("s3", "GET", &url, &[("host", host.as_str())], SignableBody::UnsignedPayload, presigning)
            .await?;
        let mut link = reqwest::Url::parse(&url).map_err(|error| Failure::permanent(format!("S3 link: {error}")))?;
        link.query_pairs_mut().extend_pairs(query);
        Ok(link.to_string())
    }
}

/// Sends email through SES (API v2, raw content), signed like the S3 calls.
#[derive(Debug, Clone)]
pub struct SesMailer {
    signer: Signer,
    url: String,
}

impl SesMailer {
    pub fn connect(aws: &aws_config::SdkConfig) -> Self {
        let signer = Signer::new(aws);
        let base = match aws.endpoint_url() {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://email.{}.amazonaws.com", signer.region),
        };
        Self { signer, url: format!("{base}/v2/email/outbound-emails") }
    }
}

impl SesMailer {
    /// Asks SES to verify a sender (an address or a domain): what an operator does once, and
    /// what the local stack does for its emulator.
    pub async fn create_identity(&self, identity: &str) -> Result<(), Failure> {
        let url = self.url.replace("/outbound-emails", "/identities");
        let (status, _) =
            self.post_json("CreateEmailIdentity", &url, serde_json::json!({"EmailIdentity": identity})).await?;
        // An identity already there is as good as a new one.
        if status.is_success() || status.as_u16() == 409 {
            Ok(())
        } else {
            Err(Failure::permanent(format!("SES CreateEmailIdentity answered {}", status.as_u16())))
        }
    }

    /// One signed JSON call to SES's API; its status and body.
    async fn post_json(
        &self,
        operation: &str,
        url: &str,
        body: serde_json::Value,
    ) -> Result<(reqwest::StatusCode, String), Failure> {
        let body = body.to_string();
        let headers = [("content-type", "application/json")];
        let (signed, _) = self
            .signer
            .signature("ses", "POST", url, &headers, SignableBody::Bytes(body.as_bytes()), SigningSettings::default())
            .await?;
        let mut request = self.signer.http()?.post(url).header("content-type", "application/json");
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response =
            request.body(body).send().await.map_err(|error| Failure::retryable(format!("SES {operation}: {error}")))?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}

impl Mailer for SesMailer {
    async fn send_raw(&self, from: &str, to: &str, raw: Vec<u8>) -> Result<String, Failure> {
        use base64::Engine;
        let body = serde_json::json!({
            "FromEmailAddress": from,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": base64::engine::general_purpose::STANDARD.encode(raw)}},
        });
        let (status, text) = self.post_json("SendEmail", &self.url, body).await?;
        if !status.is_success() {
            let message = format!("SES SendEmail answered {}: {text:.300}", status.as_u16());
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Failure::retryable(message)
            } else {
                Failure::permanent(message)
            });
        }
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(answer["MessageId"].as_str().unwrap_or_default().to_owned())
    }
}

/// A queue of JSON messages (SQS): the renderer's and the mailer's.
#[derive(Debug, Clone)]
pub struct JsonQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl JsonQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { sqs, queue_url }
    }

    async fn send(&self, message: &impl serde::Serialize) -> Result<(), Failure> {
        let body = serde_json::to_string(message).map_err(|error| Failure::permanent(error.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|error| Failure::retryable(format!("SQS SendMessage ({}): {error:?}", self.queue_url)))?;
        Ok(())
    }
}

/// The renderer's queue.
pub type RenderQueueSqs = JsonQueue;
/// The mailer's queue.
pub type MailQueueSqs = JsonQueue;

impl RenderQueue for JsonQueue {
    async fn queue_render(&self, request: &RenderRequest) -> Result<(), Failure> {
        self.send(request).await
    }
}

impl MailQueue for JsonQueue {
    async fn queue_mail(&self, request: &MailRequest) -> Result<(), Failure> {
        self.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_segment_by_segment() {
        assert_eq!(escape("7.pdf"), "7.pdf");
        assert_eq!(escape("a b+c"), "a%20b%2Bc");
    }

    #[test]
    fn refusals_carry_s3s_code() {
        let body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        let failure = refused("PutObject", reqwest::StatusCode::FORBIDDEN, body);
        assert!(matches!(&failure, Failure::Permanent { .. }), "{failure:?}");
        assert_eq!(failure.to_string(), "S3 PutObject answered 403: AccessDenied Access Denied");
        assert!(matches!(
            refused("GetObject", reqwest::StatusCode::SERVICE_UNAVAILABLE, b""),
            Failure::Retryable { .. }
        ));
    }
}
