//! Each function's IAM policy, read from `infra/template.yaml`, and translated for moto.
//!
//! Where moto (5.2.1, with tools/moto_runner.py's two corrections) differs from AWS:
//! - Resources: moto checks them only for SQS (the queue's ARN) and, through the runner, for
//!   DynamoDB (the table's ARN, or `table/T/index/I` for a query of an index). For every other
//!   service (Scheduler, KMS, IAM) it passes the resource `*`, so those statements are given
//!   `Resource: *` here: a wrong schedule-group or key ARN in the template is not caught.
//! - Transactions: AWS authorises `TransactWriteItems` by each item's action (PutItem,
//!   UpdateItem, DeleteItem, ConditionCheckItem) and `TransactGetItems` by GetItem; moto checks
//!   the operation's name, which the runner replaces with AWS's rule. A batch or transaction is
//!   checked against its first table only.
//! - Conditions: moto evaluates a `Condition` only in role trust policies; on a service call it
//!   would refuse every conditioned statement, so conditions are dropped here (the template's
//!   `iam:PassedToService` and KMS encryption-context conditions are not tested).
//! - `iam:PassRole`: AWS checks it when `CreateSchedule` names the Scheduler role; moto never
//!   does, so that statement is carried but proves nothing.
//! - Service-linked calls the platform makes for a function (the SQS event source's
//!   ReceiveMessage/DeleteMessage, CloudWatch Logs) are done by the harness's runner as an admin,
//!   so the template's event-source permissions (from SAM's `Events`) are not tested.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use serde_yaml::Value;

/// Services whose resources moto checks; their statements keep the template's resources.
const RESOURCE_CHECKED_SERVICES: [&str; 2] = ["dynamodb", "sqs"];

pub fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("read infra/template.yaml");
    serde_yaml::from_str(&text).expect("parse infra/template.yaml")
}

/// One statement of a function's policy, as the template writes it.
#[derive(Debug, Clone)]
pub struct Statement {
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<Value>,
}

/// A function's inline policy statements, by the function's package (`CodeUri`'s folder).
#[derive(Debug, Clone)]
pub struct FunctionPolicy {
    pub logical_id: String,
    pub package: String,
    pub statements: Vec<Statement>,
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Every function of the template with its policy. Only inline `Statement` policies are read: a
/// SAM policy template or a managed policy would go untested, so it fails here instead.
pub fn function_policies() -> Vec<FunctionPolicy> {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut functions = Vec::new();
    for (logical_id, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let logical_id = logical_id.as_str().expect("a resource name").to_owned();
        let properties = &resource["Properties"];
        // A zip's package is its CodeUri's folder; an image's, its DockerTag.
        let package = match properties["CodeUri"].as_str() {
            Some(code) => code.trim_end_matches('/').rsplit('/').next().expect("package").to_owned(),
            None => resource["Metadata"]["DockerTag"].as_str().expect("CodeUri or Metadata.DockerTag").to_owned(),
        };
        let mut statements = Vec::new();
        for policy in list(&properties["Policies"]) {
            assert!(
                policy["Statement"].is_sequence(),
                "{logical_id}: only inline policy documents (`- Version: ..., Statement: [...]`) are tested \
                 under IAM; write {policy:?} as one"
            );
            for statement in list(&policy["Statement"]) {
                let effect = statement["Effect"].as_str().expect("Effect").to_owned();
                let actions: Vec<String> = list(&statement["Action"])
                    .iter()
                    .map(|action| action.as_str().expect("an action is a string").to_owned())
                    .collect();
                assert!(statement.get("NotAction").is_none(), "{logical_id}: NotAction is not supported here");
                statements.push(Statement { effect, actions, resources: list(&statement["Resource"]) });
            }
        }
        functions.push(FunctionPolicy { logical_id, package, statements });
    }
    functions
}

impl FunctionPolicy {
    /// Every action the policy allows.
    pub fn actions(&self) -> Vec<&str> {
        self.statements
            .iter()
            .filter(|s| s.effect == "Allow")
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect()
    }

    /// The same policy without `action` (to show that moto then refuses the flow).
    pub fn without(&self, action: &str) -> Self {
        assert!(self.actions().contains(&action), "{} does not grant {action}", self.logical_id);
        let mut changed = self.clone();
        for statement in &mut changed.statements {
            statement.actions.retain(|granted| granted != action);
        }
        changed.statements.retain(|statement| !statement.actions.is_empty());
        changed
    }

    /// The policy document for moto: template references resolved to this deployment's names
    /// where moto checks resources, `*` elsewhere, conditions dropped (see the module's notes).
    pub fn moto_document(&self, names: &Names) -> String {
        let statements: Vec<Json> =
            self.statements
                .iter()
                .map(|statement| {
                    let checked = statement.actions.iter().all(|action| {
                        RESOURCE_CHECKED_SERVICES.contains(&action.split(':').next().unwrap_or_default())
                    });
                    let resources: Vec<String> = if checked {
                        statement
                            .resources
                            .iter()
                            .map(|resource| {
                                names.resolve(resource).unwrap_or_else(|| {
                                    panic!("{}: cannot resolve the resource {resource:?} for moto", self.logical_id)
                                })
                            })
                            .collect()
                    } else {
                        vec!["*".to_owned()]
                    };
                    json!({"Effect": statement.effect, "Action": statement.actions, "Resource": resources})
                })
                .collect();
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }
}

/// What the template's references (`!GetAtt X.Arn`, `!Ref X`, `${X}` in `!Sub`) stand for in a
/// test deployment.
pub struct Names(pub BTreeMap<String, String>);

impl Names {
    fn lookup(&self, reference: &str) -> Option<String> {
        self.0.get(reference).cloned()
    }

    fn substitute(&self, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}')? + start;
            out.push_str(&self.lookup(&rest[start + 2..end])?);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// A resource of the template as this deployment's ARN; `None` if it names something unknown.
    pub fn resolve(&self, resource: &Value) -> Option<String> {
        match resource {
            Value::String(text) => self.substitute(text),
            Value::Tagged(tagged) => {
                let argument = tagged.value.as_str()?;
                match tagged.tag.to_string().as_str() {
                    "!GetAtt" => self.lookup(argument),
                    "!Ref" => self.lookup(argument),
                    "!Sub" => self.substitute(argument),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}
