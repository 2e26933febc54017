//! HTTP plumbing shared by shipsync's API functions. Requests and responses are plain `http`
//! types, so the same handler serves API Gateway (through `lambda_http`) and the local stack.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shipsync_app::Failure;
use shipsync_domain::ValidationErrors;

pub type ApiRequest = http::Request<Bytes>;
pub type ApiResponse = http::Response<String>;

/// The largest request body a route takes unless it says otherwise.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The largest request any route takes (a label's file, base64): Lambda's limit for a
/// synchronous invocation's payload, 6 MB.
pub const MAX_REQUEST_BYTES: usize = 6 << 20;

/// Every way a request can fail, each with its status. The body is always `{"errors": [...]}`.
#[derive(Debug)]
pub enum ApiError {
    /// Malformed JSON, or a value of the wrong type: 400.
    BadRequest(String),
    /// No or wrong credentials: 401.
    Unauthorized,
    /// A webhook whose signature (or sender) does not check out: 401, saying which check failed.
    WebhookRefused(&'static str),
    /// The caller's role may not do this: 403.
    Forbidden(String),
    /// Nothing there, or nothing the caller may see: 404.
    NotFound(String),
    MethodNotAllowed,
    /// Larger than the route takes (`limit` bytes).
    PayloadTooLarge {
        limit: usize,
    },
    /// The request is well formed but breaks a rule: 422.
    Invalid(ValidationErrors),
    /// Contention that outlasted our retries: 409, safe to retry.
    Conflict(String),
    /// A dependency is down: 503, safe to retry. The cause is logged, never shown.
    Unavailable,
    /// A bug or a corrupt record: 500. The cause is logged, never shown.
    Internal,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(ValidationErrors::single(field, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::WebhookRefused(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn messages(&self) -> Vec<String> {
        match self {
            ApiError::BadRequest(message)
            | ApiError::Forbidden(message)
            | ApiError::NotFound(message)
            | ApiError::Conflict(message) => vec![message.clone()],
            ApiError::Unauthorized => vec!["authentication required: HTTP Basic with your API key and password".into()],
            ApiError::WebhookRefused(why) => vec![format!("webhook refused: {why}")],
            ApiError::MethodNotAllowed => vec!["method not allowed on this path".into()],
            ApiError::PayloadTooLarge { limit } => vec![format!("request body is larger than {limit} bytes")],
            ApiError::Invalid(errors) => errors.messages(),
            ApiError::Unavailable => vec!["service temporarily unavailable, please retry".into()],
            ApiError::Internal => vec!["internal error".into()],
        }
    }

    pub fn into_response(self) -> ApiResponse {
        let mut response = json_response(self.status(), &serde_json::json!({ "errors": self.messages() }));
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"shipsync\""));
        }
        if matches!(self, ApiError::Unavailable | ApiError::Conflict(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The one mapping of the application's failures to HTTP. Causes are logged, never shown.
impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Conflict(what) => ApiError::Conflict(format!("the {what} was changed by another request; retry")),
            Failure::Exists(what) => ApiError::invalid("id", format!("{what} already exists")),
            Failure::NotFound(_) => ApiError::NotFound(failure.to_string()),
            Failure::Invalid(errors) => ApiError::Invalid(errors),
            Failure::Forbidden(reason) => ApiError::Forbidden(reason),
            Failure::Retryable { .. } => {
                tracing::error!(error = %failure.chain(), "unavailable");
                ApiError::Unavailable
            }
            Failure::Permanent { .. } => {
                tracing::error!(error = %failure.chain(), "internal failure");
                ApiError::Internal
            }
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Invalid(errors)
    }
}

/// A JSON response.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> ApiResponse {
    let text = serde_json::to_string(body).unwrap_or_else(|_| r#"{"errors":["internal error"]}"#.to_owned());
    let mut response = http::Response::new(text);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

/// The key and password of an `Authorization: Basic` header.
pub fn basic_credentials(request: &ApiRequest) -> Result<(String, String), ApiError> {
    let header = request.headers().get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
    let text = header.to_str().map_err(|_| ApiError::Unauthorized)?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Unauthorized);
    }
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| ApiError::Unauthorized)?;
    let decoded = String::from_utf8(decoded).map_err(|_| ApiError::Unauthorized)?;
    let (key, password) = decoded.split_once(':').ok_or(ApiError::Unauthorized)?;
    if key.is_empty() || password.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    Ok((key.to_owned(), password.to_owned()))
}

/// The decoded query parameters, in order.
/// The fields of a form a browser posted (`application/x-www-form-urlencoded`), at most
/// [`MAX_BODY_BYTES`] of them.
pub fn form_pairs(request: &ApiRequest) -> Vec<(String, String)> {
    let body = request.body();
    if body.len() > MAX_BODY_BYTES {
        return Vec::new();
    }
    form_urlencoded::parse(body).into_owned().collect()
}

pub fn query_pairs(request: &ApiRequest) -> Vec<(String, String)> {
    request
        .uri()
        .query()
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Parses a JSON body. Malformed JSON or a wrong type is a 400 that names where it went wrong.
pub fn json_body<T: DeserializeOwned>(request: &ApiRequest) -> Result<T, ApiError> {
    json_body_within(request, MAX_BODY_BYTES)
}

/// [`json_body`] for a route that takes more (files, base64): at most `limit` bytes.
pub fn json_body_within<T: DeserializeOwned>(request: &ApiRequest, limit: usize) -> Result<T, ApiError> {
    let body = request.body();
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is empty: a JSON object is required".into()));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let problem = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::BadRequest(format!("malformed JSON: {problem}"))
        } else {
            ApiError::BadRequest(format!("{path}: {problem}"))
        }
    })
}

/// serde_json appends " at line L column C"; the field path says more to an API caller.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(position) => message[..position].to_owned(),
        None => message.to_owned(),
    }
}

/// The path's segments after the leading slash, without a `.json` suffix on the last one.
pub fn path_segments(request: &ApiRequest) -> Vec<String> {
    let path = request.uri().path().trim_matches('/');
    let mut segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if let Some(last) = segments.last_mut()
        && let Some(stripped) = last.strip_suffix(".json")
    {
        *last = stripped.to_owned();
    }
    segments
}

/// A Lambda (API Gateway) request as a plain HTTP request; the body stays as sent (raw bytes,
/// which webhook signatures need).
pub fn from_lambda(request: lambda_http::Request) -> ApiRequest {
    let (parts, body) = request.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(data) => Bytes::from(data),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>, uri: &str, body: &str) -> ApiRequest {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(Bytes::from(body.to_owned())).unwrap()
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("key:pa:ss");
        let ok = request(Some(&format!("Basic {encoded}")), "/", "");
        assert_eq!(basic_credentials(&ok).unwrap(), ("key".into(), "pa:ss".into()));
        for bad in [None, Some("Bearer x"), Some("Basic !!!"), Some("Basic a2V5")] {
            assert!(matches!(basic_credentials(&request(bad, "/", "")), Err(ApiError::Unauthorized)));
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            inner: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            quantity: u32,
        }
        let wrong_type = json_body::<Outer>(&request(None, "/", r#"{"inner": {"quantity": "two"}}"#)).unwrap_err();
        assert_eq!(wrong_type.messages(), [r#"inner.quantity: invalid type: string "two", expected u32"#]);
        assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
        let malformed = json_body::<Outer>(&request(None, "/", r#"{"inner": "#)).unwrap_err();
        assert!(malformed.messages()[0].starts_with("malformed JSON"), "{malformed:?}");
        let empty = json_body::<Outer>(&request(None, "/", "")).unwrap_err();
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn paths_and_queries_are_split() {
        let req = request(None, "/shipments/12.json?search%5Btracking%5D=1Z%2012&page=2", "");
        assert_eq!(path_segments(&req), ["shipments", "12"]);
        assert_eq!(
            query_pairs(&req),
            [("search[tracking]".to_owned(), "1Z 12".to_owned()), ("page".into(), "2".into())]
        );
    }
}
