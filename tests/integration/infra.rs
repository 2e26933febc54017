//! The table the template deploys is the table the code (and so the local stack and these
//! tests) creates.

use serde_yaml::Value;
use shipsync_store::schema::{INDEXES, PROJECTED_ATTRIBUTES, key_attributes};

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("read infra/template.yaml");
    serde_yaml::from_str(&text).expect("parse infra/template.yaml")
}

fn texts(list: &Value, field: &str) -> Vec<String> {
    list.as_sequence()
        .expect("a list")
        .iter()
        .map(|entry| entry[field].as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn the_templates_table_matches_the_schema_in_code() {
    let template = template();
    let table = &template["Resources"]["Table"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");

    let declared = texts(&table["AttributeDefinitions"], "AttributeName");
    assert_eq!(declared, key_attributes());
    assert!(texts(&table["AttributeDefinitions"], "AttributeType").iter().all(|t| t == "S"));
    assert_eq!(texts(&table["KeySchema"], "AttributeName"), ["pk", "sk"]);
    assert_eq!(texts(&table["KeySchema"], "KeyType"), ["HASH", "RANGE"]);

    let indexes = table["GlobalSecondaryIndexes"].as_sequence().expect("indexes");
    assert_eq!(indexes.len(), INDEXES.len());
    for (declared, expected) in indexes.iter().zip(INDEXES) {
        assert_eq!(declared["IndexName"], expected.name);
        assert_eq!(texts(&declared["KeySchema"], "AttributeName"), [expected.partition_key, expected.sort_key]);
        assert_eq!(texts(&declared["KeySchema"], "KeyType"), ["HASH", "RANGE"]);
        assert_eq!(declared["Projection"]["ProjectionType"], "INCLUDE");
        let projected: Vec<&str> = declared["Projection"]["NonKeyAttributes"]
            .as_sequence()
            .expect("attributes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(projected, PROJECTED_ATTRIBUTES);
    }
}

#[test]
fn every_function_is_arm64_on_provided_al2023_with_its_built_binary() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    let functions: Vec<(&Value, &Value)> = template["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .collect();
    assert!(!functions.is_empty());
    for (name, function) in functions {
        let code = function["Properties"]["CodeUri"].as_str().expect("CodeUri");
        let package = code.trim_end_matches('/').rsplit('/').next().expect("package");
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/").to_owned() + package;
        assert!(std::path::Path::new(&folder).is_dir(), "{name:?}: CodeUri {code} names no package in functions/");
    }
}

#[test]
fn the_exporter_reports_batch_item_failures_and_its_queue_outwaits_it() {
    let template = template();
    let resources = &template["Resources"];
    let exporter = &resources["Exporter"]["Properties"];
    let event = &exporter["Events"]["ExportRequests"]["Properties"];
    assert_eq!(event["FunctionResponseTypes"][0], "ReportBatchItemFailures");
    let timeout = exporter["Timeout"].as_u64().expect("exporter timeout");
    let queue = &resources["ExportQueue"]["Properties"];
    let visibility = queue["VisibilityTimeout"].as_u64().expect("visibility timeout");
    assert!(visibility >= 6 * timeout, "visibility {visibility}s < 6 × {timeout}s");
    // The claim an attempt holds must outlast the attempt, or a live export could be taken over.
    assert!(shipsync_domain::export::CLAIM_TIMEOUT.num_seconds() as u64 > timeout);
    let max_receives = queue["RedrivePolicy"]["maxReceiveCount"].as_u64().expect("maxReceiveCount");
    assert_eq!(exporter["Environment"]["Variables"]["SHIPSYNC_EXPORT_MAX_RECEIVES"], max_receives.to_string());
    assert_eq!(max_receives, u64::from(shipsync_tools::local_aws::MAX_RECEIVES));
}
