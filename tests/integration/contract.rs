//! The API's OpenAPI document as a contract: every response an integration test receives through
//! the harness is checked against it ([`check`]), and `docs/openapi.json` must be what the code
//! generates (`shipsync-admin openapi` writes it).

use std::sync::OnceLock;

use http::{Method, StatusCode};
use serde_json::Value;

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(shipments_api::openapi::document)
}

/// The document's path template a request path falls under (`{id}` stands for one segment).
fn template_for(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    document()["paths"].as_object()?.keys().map(String::as_str).find(|template| {
        let pattern: Vec<&str> = template.split('/').collect();
        pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(expected, actual)| {
                if let Some(suffix) = expected.strip_prefix("{id}") {
                    actual.ends_with(suffix) && actual.len() > suffix.len()
                } else {
                    expected == actual
                }
            })
    })
}

/// Whether `body`, the answer to `method uri` with `status`, is what the document says.
pub fn check(method: &Method, uri: &str, status: StatusCode, body: &Value) -> Result<(), String> {
    let path = uri.split('?').next().unwrap_or_default();
    let responses = match template_for(path) {
        Some(template) => {
            let operation = &document()["paths"][template][method.as_str().to_ascii_lowercase()];
            if operation.is_null() {
                // A method the route does not serve: answered with the error body.
                &Value::Null
            } else {
                &operation["responses"]
            }
        }
        None => &Value::Null,
    };
    let schema = if status.is_success() {
        match responses.get(status.as_str()) {
            Some(response) => &response["content"]["application/json"]["schema"],
            None => return Err(format!("{method} {path} answered {status}, which the document does not list")),
        }
    } else {
        &document()["components"]["schemas"]["ErrorBody"]
    };
    validate(body, schema, "$")
}

fn resolve(schema: &Value) -> &Value {
    match schema["$ref"].as_str().and_then(|reference| reference.strip_prefix("#/components/schemas/")) {
        Some(name) => &document()["components"]["schemas"][name],
        None => schema,
    }
}

fn type_fits(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// A JSON Schema check for what `schemars` writes: `$ref`, `type` (one or several), `enum`,
/// `const`, `anyOf`/`oneOf`, `properties`, `required`, `items` and `minimum`.
fn validate(value: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(schema);
    if let Some(options) = schema["anyOf"].as_array().or_else(|| schema["oneOf"].as_array())
        && !options.iter().any(|option| validate(value, option, at).is_ok())
    {
        return Err(format!("{at}: {value} fits none of its schemas"));
    }
    match &schema["type"] {
        Value::String(kind) if !type_fits(value, kind) => return Err(format!("{at}: {value} is not {kind}")),
        Value::Array(kinds) if !kinds.iter().filter_map(Value::as_str).any(|kind| type_fits(value, kind)) => {
            return Err(format!("{at}: {value} is none of {kinds:?}"));
        }
        _ => {}
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return Err(format!("{at}: {value} is not {constant}"));
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64())
        && number < minimum
    {
        return Err(format!("{at}: {value} is below {minimum}"));
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(required) {
                return Err(format!("{at}: {required} is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                if let Some(field) = object.get(name) {
                    validate(field, property, &format!("{at}.{name}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            validate(item, items, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == shipments_api::openapi::document_text(),
        "docs/openapi.json is stale: run `cargo run -p shipsync-tools --bin shipsync-admin -- openapi`"
    );
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    for route in shipments_api::ShipmentsApi::routes() {
        let operation = &document["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(
            operation["responses"]["default"].is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
    }
}

#[test]
fn the_checker_refuses_what_the_document_does_not_allow() {
    let shipment = serde_json::json!({"shipment": {"id": "not a number"}});
    assert!(check(&Method::GET, "/shipments/7.json", StatusCode::OK, &shipment).is_err());
    assert!(
        check(&Method::GET, "/shipments/7.json", StatusCode::OK, &serde_json::json!({})).is_err(),
        "shipment is required"
    );
    assert!(
        check(&Method::GET, "/shipments/7.json", StatusCode::CREATED, &serde_json::json!({})).is_err(),
        "an unlisted status"
    );
    assert!(
        check(
            &Method::GET,
            "/nothing.json",
            StatusCode::NOT_FOUND,
            &serde_json::json!({"errors": ["no such resource"]})
        )
        .is_ok()
    );
    assert!(
        check(&Method::GET, "/shipments/7.json", StatusCode::NOT_FOUND, &serde_json::json!({"error": "x"})).is_err()
    );
}

#[tokio::test]
async fn the_api_serves_its_document_to_anyone() {
    let app = crate::harness::TestApp::new().await;
    let request =
        http::Request::builder().method(Method::GET).uri("/openapi.json").body(bytes::Bytes::new()).expect("request");
    let response = app.api.handle(request).await;
    assert_eq!(response.status(), StatusCode::OK, "no credentials needed: it holds no one's data");
    let served: Value = serde_json::from_str(response.body()).expect("JSON");
    assert_eq!(&served, document());
}
