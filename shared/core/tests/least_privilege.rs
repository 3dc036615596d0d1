//! IAM as AWS would enforce it (the emulator checks no permission), read from the template as CloudFormation
//! deploys it: SAM's transform applied by the pinned aws-sam-translator (`scripts/lint/sam-expand.py`), so a
//! role or managed policy SAM adds is judged too. Every function and the state machine has a role of its
//! own with inline statements only (SAM would attach AWSLambdaBasicExecutionRole, `logs:*` actions on every
//! group), no action is a wildcard, a `*` resource only for actions AWS offers no resource-level permission
//! for, each function writes only to its own log group, and each service only to its own ledger table.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

/// Actions without resource-level permissions (the Service Authorization Reference lists no resource type for
/// them): the vended-logs delivery of the state machine, and X-Ray's writes and sampling (tracing).
const NO_RESOURCE_LEVEL: [&str; 12] = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
];

/// `template.yaml` after SAM's transform, from the policy venv `make lint` / `make test` install.
fn expanded_template() -> Value {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let local = std::env::var_os("NEXUS_LOCAL_DIR").map_or_else(|| root.join(".local"), PathBuf::from);
    let python = local.join("policy-venv/bin/python");
    assert!(python.exists(), "{} is missing: `make lint` installs aws-sam-translator there", python.display());
    let output = std::process::Command::new(&python)
        .arg(root.join("scripts/lint/sam-expand.py"))
        .arg(root.join("template.yaml"))
        .output()
        .expect("run sam-expand.py");
    assert!(output.status.success(), "SAM's transform failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the expanded template is JSON")
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    let all = template["Resources"].as_object().expect("Resources");
    all.iter().filter(|(_, r)| r["Type"] == kind).map(|(name, r)| (name.as_str(), r)).collect()
}

/// The role resource a `Role: {"Fn::GetAtt": [name, "Arn"]}` names.
fn role_name(role: &Value) -> Option<&str> {
    role["Fn::GetAtt"][0].as_str()
}

#[test]
fn no_wildcard_actions_and_star_resources_only_where_aws_allows_nothing_narrower() {
    let template = expanded_template();
    let roles = resources(&template, "AWS::IAM::Role");
    assert!(roles.len() >= 6, "a role per function and the state machine: {}", roles.len());
    let standalone: Vec<_> = ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"]
        .iter()
        .flat_map(|kind| resources(&template, kind))
        .map(|(name, policy)| (name, &policy["Properties"]["PolicyDocument"]))
        .collect();
    let mut documents: Vec<(&str, &Value)> = standalone;
    for (name, role) in &roles {
        let managed = strings(&role["Properties"]["ManagedPolicyArns"]);
        assert!(managed.is_empty(), "{name} has managed policies {managed:?}: their statements are not ours to check");
        for policy in role["Properties"]["Policies"].as_array().into_iter().flatten() {
            documents.push((name, &policy["PolicyDocument"]));
        }
    }
    let mut statements = 0;
    for (name, document) in documents {
        for statement in document["Statement"].as_array().expect("Statement list") {
            statements += 1;
            let actions = strings(&statement["Action"]);
            assert!(!actions.is_empty() && statement["NotAction"].is_null(), "{name}: {statement}");
            for action in &actions {
                assert!(!action.contains('*'), "{name}: wildcard action {action}");
            }
            if strings(&statement["Resource"]).iter().any(|r| r.contains('*')) {
                for action in &actions {
                    assert!(
                        NO_RESOURCE_LEVEL.contains(&action.as_str()),
                        "{name}: {action} on {}",
                        statement["Resource"]
                    );
                }
            }
        }
    }
    assert!(statements >= 30, "the statements were found: {statements}");
}

#[test]
fn each_function_and_the_state_machine_has_a_role_of_its_own_writing_only_to_its_own_log_group() {
    let template = expanded_template();
    let mut principals = resources(&template, "AWS::Lambda::Function");
    assert_eq!(principals.len(), 5, "the five functions");
    principals.extend(resources(&template, "AWS::StepFunctions::StateMachine"));
    let roles: BTreeSet<&str> = principals
        .iter()
        .map(|(name, resource)| {
            let arn = resource["Properties"].get("Role").or_else(|| resource["Properties"].get("RoleArn"));
            arn.and_then(role_name).unwrap_or_else(|| panic!("{name} has no role of the stack"))
        })
        .collect();
    assert_eq!(roles.len(), principals.len(), "no two share a role: {roles:?}");

    for (name, function) in resources(&template, "AWS::Lambda::Function") {
        let group =
            function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].as_str().expect("a log group of its own");
        let role = role_name(&function["Properties"]["Role"]).expect("role");
        let policies = &template["Resources"][role]["Properties"]["Policies"];
        let log_statements: Vec<&Value> = policies
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().into_iter().flatten())
            .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("logs:")))
            .collect();
        assert!(!log_statements.is_empty(), "{name} may not write its logs");
        for statement in log_statements {
            assert_eq!(statement["Resource"], serde_json::json!({"Fn::GetAtt": [group, "Arn"]}), "{name}: {statement}");
        }
    }
}

#[test]
fn functions_consume_their_own_queues_through_explicit_event_source_mappings() {
    let template = common::template();
    let functions = template["Resources"].as_mapping().expect("Resources").iter();
    for (name, resource) in functions.filter(|(_, r)| r["Type"] == "AWS::Serverless::Function") {
        let events = resource["Properties"]["Events"].as_mapping().cloned().unwrap_or_default();
        assert!(
            !events.values().any(|e| e["Type"] == "SQS"),
            "{name:?} has a SAM SQS event: SAM would attach AWSLambdaSQSQueueExecutionRole (every queue)"
        );
    }
    let mappings: Vec<serde_yaml_ng::Value> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .cloned()
        .collect();
    assert!(mappings.len() >= 6, "every queue is consumed through a mapping");
}

/// The ledger tables a role's statements let it write, by logical id (a `*` resource counts as every one).
fn ledger_tables_written<'a>(role: &'a Value, ledgers: &[&'a str]) -> BTreeSet<&'a str> {
    const WRITES: [&str; 4] =
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"];
    let statements = role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().into_iter().flatten());
    let mut written = BTreeSet::new();
    for statement in statements.filter(|s| strings(&s["Action"]).iter().any(|a| WRITES.contains(&a.as_str()))) {
        let targets = match &statement["Resource"] {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for target in targets {
            if target == "*" {
                written.extend(ledgers.iter().copied());
            }
            written.extend(ledgers.iter().copied().filter(|t| target["Fn::GetAtt"][0] == *t));
        }
    }
    written
}

#[test]
fn each_service_writes_only_its_own_ledger_table() {
    let template = expanded_template();
    let ledgers = ["InventoryLedgerTable", "PaymentLedgerTable", "ShippingLedgerTable", "NotificationLedgerTable"];
    for table in ledgers {
        assert_eq!(template["Resources"][table]["Type"], "AWS::DynamoDB::Table", "{table}");
    }
    let own = |role: &str| match role {
        "InventoryRole" => Some("InventoryLedgerTable"),
        "PaymentRole" => Some("PaymentLedgerTable"),
        "ShippingRole" => Some("ShippingLedgerTable"),
        "NotificationRole" => Some("NotificationLedgerTable"),
        _ => None,
    };
    let roles = resources(&template, "AWS::IAM::Role");
    assert!(roles.len() >= 6, "the functions' and the state machine's roles: {}", roles.len());
    for (role, resource) in roles {
        let written = ledger_tables_written(resource, &ledgers);
        assert_eq!(written, own(role).into_iter().collect(), "{role} writes these ledger tables");
    }
}

#[test]
fn saga_functions_read_only_the_order_attributes_their_service_reads_and_write_only_a_transitions() {
    use nexus_core::services::{TRANSITION_WRITES, inventory, notification, payment, shipping};
    let template = expanded_template();
    // A role, the order attributes it reads, and those it writes (none: it may not write orders).
    type Access<'a> = (&'a str, Vec<&'a str>, Option<&'a [&'a str]>);
    let expected: [Access; 4] = [
        ("InventoryRole", inventory::ORDER_READS.attributes(), Some(TRANSITION_WRITES)),
        ("PaymentRole", payment::ORDER_READS.attributes(), Some(TRANSITION_WRITES)),
        ("ShippingRole", shipping::ORDER_READS.attributes(), Some(TRANSITION_WRITES)),
        ("NotificationRole", notification::ORDER_READS.to_vec(), None),
    ];
    let orders_table = serde_json::json!({"Fn::GetAtt": ["OrdersTable", "Arn"]});
    let set = |names: &[&str]| -> BTreeSet<String> { names.iter().map(|a| (*a).to_owned()).collect() };
    for (role, reads, writes) in expected {
        let policies = template["Resources"][role]["Properties"]["Policies"].as_array().expect("policies");
        let on_orders: Vec<&Value> = policies
            .iter()
            .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().into_iter().flatten())
            .filter(|s| s["Resource"] == orders_table || strings(&s["Resource"]).iter().any(|r| r == "*"))
            .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("dynamodb:")))
            .collect();
        let (mut read, mut written) = (false, false);
        for statement in on_orders {
            let condition = &statement["Condition"];
            let allowed: BTreeSet<String> =
                strings(&condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]).into_iter().collect();
            // Reads and writes are separate statements, each with its own attributes.
            match strings(&statement["Action"]).as_slice() {
                [get] if get == "dynamodb:GetItem" => {
                    assert_eq!(allowed, set(&reads), "{role}: the template's reads are not the service's");
                    assert_eq!(condition["StringEqualsIfExists"]["dynamodb:Select"], "SPECIFIC_ATTRIBUTES", "{role}");
                    read = true;
                }
                [update] if update == "dynamodb:UpdateItem" => {
                    let writes = writes.unwrap_or_else(|| panic!("{role} may not write orders"));
                    assert_eq!(allowed, set(writes), "{role}: it may write more than a transition does");
                    written = true;
                }
                actions => panic!("{role}: {actions:?} on the orders table"),
            }
        }
        assert!(read, "{role} cannot read orders");
        assert_eq!(written, writes.is_some(), "{role} writes orders: {written}");
    }
}
