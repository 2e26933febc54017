//! The table the template deploys is the table the code (and so the local stack and these
//! tests) creates.

use serde_yaml::Value;
use shipsync_table::schema::{INDEXES, PROJECTED_ATTRIBUTES, key_attributes};

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("read infra/template.yaml");
    serde_yaml::from_str(&text).expect("parse infra/template.yaml")
}

fn texts_of(list: &Value) -> Vec<&str> {
    list.as_sequence().expect("a list").iter().map(|entry| entry.as_str().expect("a string")).collect()
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
fn every_function_runs_on_the_architecture_parameter_arm64_by_default_on_provided_al2023_with_its_built_binary() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    let parameter = &template["Parameters"]["Architecture"];
    assert_eq!(parameter["Default"], "arm64");
    assert_eq!(texts_of(&parameter["AllowedValues"]), ["arm64", "x86_64"]);
    let architectures = serde_yaml::to_string(&globals["Architectures"]).expect("architectures");
    assert_eq!(architectures.trim(), "- !Ref Architecture");
    let functions: Vec<(&Value, &Value)> = template["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .collect();
    assert!(!functions.is_empty());
    for (name, function) in functions {
        let properties = &function["Properties"];
        assert!(properties["Architectures"].is_null(), "{name:?} overrides the Architecture parameter");
        // A zip of the package's `bootstrap` on provided.al2023, or (the renderer, which needs
        // Chromium) a container image built from a Dockerfile that copies that same binary.
        let package = match properties["PackageType"].as_str() {
            Some("Image") => {
                let metadata = &function["Metadata"];
                let dockerfile = metadata["Dockerfile"].as_str().expect("Metadata.Dockerfile");
                let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../").to_owned() + dockerfile)
                    .unwrap_or_else(|error| panic!("{name:?}: {dockerfile}: {error}"));
                let package = metadata["DockerTag"].as_str().expect("Metadata.DockerTag").to_owned();
                assert!(text.contains(&format!("target/lambda/{package}/bootstrap")), "{name:?}: {dockerfile}");
                assert!(properties["Runtime"].is_null() && properties["Handler"].is_null(), "{name:?}");
                package
            }
            _ => {
                assert_eq!(properties["Runtime"], "provided.al2023", "{name:?}");
                assert_eq!(properties["Handler"], "bootstrap", "{name:?}");
                let code = properties["CodeUri"].as_str().expect("CodeUri");
                code.trim_end_matches('/').rsplit('/').next().expect("package").to_owned()
            }
        };
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/").to_owned() + &package;
        assert!(std::path::Path::new(&folder).is_dir(), "{name:?}: {package} is no package in functions/");
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

/// `!Ref X` or `!GetAtt X.Y` as (`Ref`, `X`) or (`GetAtt`, `X.Y`).
fn reference(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(tagged) => {
            Some((tagged.tag.to_string().trim_start_matches('!').to_owned(), tagged.value.as_str()?.to_owned()))
        }
        _ => None,
    }
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(name, resource)| (name.as_str().expect("a resource name").to_owned(), resource))
        .collect()
}

/// The one topic alarms notify, and its e-mail subscription (only when `AlertEmail` is set).
fn alert_topic(template: &Value) -> String {
    let topics = resources_of_type(template, "AWS::SNS::Topic");
    assert_eq!(topics.len(), 1, "one alert topic");
    let topic = topics[0].0.clone();
    let parameter = &template["Parameters"]["AlertEmail"];
    assert_eq!((parameter["Type"].as_str(), parameter["Default"].as_str()), (Some("String"), Some("")));
    let condition = &template["Conditions"]["HasAlertEmail"];
    assert!(format!("{condition:?}").contains("AlertEmail"), "HasAlertEmail tests AlertEmail: {condition:?}");
    let subscriptions = resources_of_type(template, "AWS::SNS::Subscription");
    assert_eq!(subscriptions.len(), 1, "one e-mail subscription");
    let subscription = subscriptions[0].1;
    assert_eq!(subscription["Condition"], "HasAlertEmail", "no subscription without an address");
    let properties = &subscription["Properties"];
    assert_eq!(properties["Protocol"], "email");
    assert_eq!(reference(&properties["Endpoint"]), Some(("Ref".to_owned(), "AlertEmail".to_owned())));
    assert_eq!(reference(&properties["TopicArn"]), Some(("Ref".to_owned(), topic.clone())));
    topic
}

/// The alarms on `namespace`/`metric` and the references their dimension `dimension` holds.
fn alarmed(template: &Value, namespace: &str, metric: &str, dimension: &str) -> Vec<String> {
    resources_of_type(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, alarm)| &alarm["Properties"])
        .filter(|alarm| alarm["Namespace"] == namespace && alarm["MetricName"] == metric)
        .flat_map(|alarm| alarm["Dimensions"].as_sequence().cloned().unwrap_or_default())
        .filter(|entry| entry["Name"] == dimension)
        .filter_map(|entry| reference(&entry["Value"]).map(|(_, target)| target))
        .collect()
}

#[test]
fn every_alarm_notifies_the_alert_topic_which_mails_the_alert_email() {
    let template = template();
    let topic = alert_topic(&template);
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (name, alarm) in alarms {
        let actions = alarm["Properties"]["AlarmActions"].as_sequence().cloned().unwrap_or_default();
        assert!(
            actions.iter().any(|action| reference(action) == Some(("Ref".to_owned(), topic.clone()))),
            "{name} notifies nobody: its AlarmActions lack !Ref {topic}"
        );
    }
}

#[test]
fn every_function_has_an_errors_alarm_and_the_api_a_5xx_alarm() {
    let template = template();
    let watched = alarmed(&template, "AWS/Lambda", "Errors", "FunctionName");
    for (function, _) in resources_of_type(&template, "AWS::Serverless::Function") {
        assert!(watched.contains(&function), "{function} has no AWS/Lambda Errors alarm");
    }
    for (api, _) in resources_of_type(&template, "AWS::Serverless::HttpApi") {
        assert!(alarmed(&template, "AWS/ApiGateway", "5xx", "ApiId").contains(&api), "{api} has no 5xx alarm");
    }
}

#[test]
fn every_dead_letter_queue_is_alarmed() {
    let template = template();
    let watched = alarmed(&template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName");
    // A dead-letter queue is one a redrive policy or a schedule sends to; all are named so.
    let dead_letter_queues: Vec<String> = resources_of_type(&template, "AWS::SQS::Queue")
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.ends_with("DeadLetterQueue"))
        .collect();
    for queue in resources_of_type(&template, "AWS::SQS::Queue") {
        if let Some((_, target)) = reference(&queue.1["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) {
            let target = target.trim_end_matches(".Arn").to_owned();
            assert!(dead_letter_queues.contains(&target), "{target} is a dead-letter queue: name it …DeadLetterQueue");
        }
    }
    assert!(!dead_letter_queues.is_empty());
    for queue in dead_letter_queues {
        assert!(watched.contains(&format!("{queue}.QueueName")), "{queue} has no alarm on its visible messages");
    }
}

/// A permanently failed export deletes its message (no Lambda error, no dead letter): the
/// exporter's own log line is what the alarm counts, so the two must not drift apart.
#[test]
fn a_failed_export_is_alarmed_through_the_exporters_log_line() {
    let template = template();
    let resources = &template["Resources"];
    let filter = &resources["ExportsFailedMetric"]["Properties"];
    let pattern = filter["FilterPattern"].as_str().expect("a filter pattern");
    let term = pattern.trim_matches('"');
    // The export use case (run by the exporter Lambda, so logged in its log group) writes it.
    let exporter = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/app/src/exports.rs"))
        .expect("read the export use case");
    assert!(exporter.contains(&format!("\"{term}\"")), "the exporter logs {pattern} when an export fails for good");
    assert_eq!(reference(&filter["LogGroupName"]), Some(("Ref".into(), "ExporterLogs".into())));
    let metric = filter["MetricTransformations"][0]["MetricName"].as_str().expect("metric");
    let alarm = &resources["ExportsFailedAlarm"]["Properties"];
    assert_eq!(alarm["MetricName"].as_str(), Some(metric));
    assert_eq!(alarm["Namespace"], filter["MetricTransformations"][0]["MetricNamespace"]);
}

/// API Gateway forwards only the resources the template names: every route the API's router
/// serves (and the console's pages) must be one of them, or it is unreachable when deployed.
#[test]
fn every_route_of_the_api_and_the_console_is_reachable_through_the_http_api() {
    let template = template();
    let events = template["Resources"]["ShipmentsApi"]["Properties"]["Events"].as_mapping().expect("events");
    let forwarded: Vec<(String, String)> = events
        .values()
        .filter(|event| event["Type"] == "HttpApi")
        .map(|event| {
            let properties = &event["Properties"];
            (
                properties["Method"].as_str().unwrap_or_default().to_owned(),
                properties["Path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let reaches = |method: &str, path: &str| {
        forwarded.iter().any(|(allowed, pattern)| {
            let method_ok = allowed == "ANY" || allowed.eq_ignore_ascii_case(method);
            let path_ok = match pattern.strip_suffix("{proxy+}") {
                Some(prefix) => path.starts_with(prefix) && path.len() > prefix.len(),
                None => pattern == path,
            };
            method_ok && path_ok
        })
    };
    let mut unreachable = Vec::new();
    for route in shipments_api::ShipmentsApi::routes() {
        let path = route.path.replace("{id}", "1");
        if !reaches(route.method.as_str(), &path) {
            unreachable.push(format!("{} {}", route.method, route.path));
        }
    }
    for (method, path) in
        [("GET", "/console"), ("GET", "/console/health"), ("POST", "/console/sign-in"), ("GET", "/openapi.json")]
    {
        if !reaches(method, path) {
            unreachable.push(format!("{method} {path}"));
        }
    }
    assert!(unreachable.is_empty(), "routes API Gateway does not forward: {unreachable:?}");
}
