//! The price list the model uses: us-east-1, on-demand, past every free tier, each price with
//! where it was read and when. Lambda's memory comes from the template, never from here.

use std::collections::BTreeMap;

/// One price: `dollars` for `per` units of `unit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub what: &'static str,
    pub dollars: f64,
    pub per: f64,
    pub unit: &'static str,
    pub source: &'static str,
    pub read_on: &'static str,
}

impl Price {
    /// The price of one unit.
    pub fn each(&self) -> f64 {
        self.dollars / self.per
    }
}

/// On-demand write request unit (since the 1 November 2024 cut).
pub const DYNAMODB_WRITE: Price = Price {
    what: "DynamoDB on-demand write request units",
    dollars: 0.625,
    per: 1e6,
    unit: "write request units",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    read_on: "2026-11-22",
};

pub const DYNAMODB_READ: Price = Price {
    what: "DynamoDB on-demand read request units",
    dollars: 0.125,
    per: 1e6,
    unit: "read request units",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    read_on: "2026-11-22",
};

pub const LAMBDA_ARM64: Price = Price {
    what: "Lambda duration, arm64",
    dollars: 0.000_013_333_4,
    per: 1.0,
    unit: "GB-second",
    source: "https://aws.amazon.com/lambda/pricing/",
    read_on: "2026-11-22",
};

pub const LAMBDA_X86_64: Price = Price {
    what: "Lambda duration, x86_64",
    dollars: 0.000_016_666_7,
    per: 1.0,
    unit: "GB-second",
    source: "https://aws.amazon.com/lambda/pricing/",
    read_on: "2026-11-22",
};

pub const LAMBDA_REQUESTS: Price = Price {
    what: "Lambda requests",
    dollars: 0.20,
    per: 1e6,
    unit: "invocations",
    source: "https://aws.amazon.com/lambda/pricing/",
    read_on: "2026-11-22",
};

/// HTTP APIs, the first 300 million requests a month.
pub const API_GATEWAY_HTTP: Price = Price {
    what: "API Gateway HTTP API requests",
    dollars: 1.00,
    per: 1e6,
    unit: "requests (512 KB each)",
    source: "https://aws.amazon.com/api-gateway/pricing/",
    read_on: "2026-11-22",
};

/// Standard queues, past the first million a month; each 64 KB chunk of a payload is a request.
pub const SQS_REQUESTS: Price = Price {
    what: "SQS standard queue requests",
    dollars: 0.40,
    per: 1e6,
    unit: "requests (64 KB chunks)",
    source: "https://aws.amazon.com/sqs/pricing/",
    read_on: "2026-11-22",
};

/// Past the first 14 million invocations a month; the Scheduler's API calls are not billed.
pub const SCHEDULER_INVOCATIONS: Price = Price {
    what: "EventBridge Scheduler invocations",
    dollars: 1.00,
    per: 1e6,
    unit: "invocations",
    source: "https://aws.amazon.com/eventbridge/pricing/",
    read_on: "2026-11-22",
};

pub const KMS_REQUESTS: Price = Price {
    what: "KMS requests",
    dollars: 0.03,
    per: 10_000.0,
    unit: "requests",
    source: "https://aws.amazon.com/kms/pricing/",
    read_on: "2026-11-22",
};

pub const ALL: [Price; 9] = [
    DYNAMODB_WRITE,
    DYNAMODB_READ,
    LAMBDA_ARM64,
    LAMBDA_X86_64,
    LAMBDA_REQUESTS,
    API_GATEWAY_HTTP,
    SQS_REQUESTS,
    SCHEDULER_INVOCATIONS,
    KMS_REQUESTS,
];

/// The deployment template, read for each function's memory and architecture.
const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// Each function's memory (MB) as the template gives it (its own `MemorySize`, else the
/// `Globals`), by the function's directory name (`shipments-api`, ...).
pub fn function_memory() -> Result<BTreeMap<String, u64>, String> {
    let template: serde_yaml::Value =
        serde_yaml::from_str(TEMPLATE).map_err(|e| format!("infra/template.yaml: {e}"))?;
    // A number, or `!Ref` to a parameter with a default.
    let number = |value: &serde_yaml::Value| match value {
        serde_yaml::Value::Tagged(tagged) if tagged.tag == "Ref" => {
            tagged.value.as_str().and_then(|name| template["Parameters"][name]["Default"].as_u64())
        }
        other => other.as_u64(),
    };
    let global = number(&template["Globals"]["Function"]["MemorySize"]);
    let mut memory = BTreeMap::new();
    let Some(resources) = template["Resources"].as_mapping() else {
        return Err("infra/template.yaml has no Resources".into());
    };
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let properties = &resource["Properties"];
        let name = match (properties["CodeUri"].as_str(), resource["Metadata"]["DockerTag"].as_str()) {
            (Some(code), _) => code.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => continue,
        };
        let size = number(&properties["MemorySize"]).or(global).ok_or_else(|| format!("{name}: no MemorySize"))?;
        memory.insert(name, size);
    }
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_memory_size() {
        let memory = function_memory().expect("template");
        for name in
            ["shipments-api", "exporter", "order-processor", "shopify-webhooks", "carrier-webhooks", "order-poller"]
        {
            assert!(memory.get(name).is_some_and(|mb| *mb >= 128), "{name}: {memory:?}");
        }
    }
}
