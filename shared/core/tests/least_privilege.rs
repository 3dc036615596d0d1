//! IAM as AWS would enforce it, read from `template.yaml` (the emulator checks no permission): every function
//! and the state machine get statements of their own, no action is a wildcard, a `*` resource only for
//! actions AWS offers no resource-level permission for, and no SAM event source that would attach the
//! managed SQS execution role (`sqs:ReceiveMessage` … on every queue of the account).

mod common;

use serde_yaml_ng::Value;

/// Actions without resource-level permissions (the Service Authorization Reference lists no resource type for
/// them): the vended-logs delivery of the state machine.
const NO_RESOURCE_LEVEL: [&str; 8] = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
];

/// SAM policy templates used, each scoped by its parameter to one resource.
const SCOPED_POLICY_TEMPLATES: [&str; 2] = ["SNSPublishMessagePolicy", "DynamoDBReadPolicy"];

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn principals(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function" || r["Type"] == "AWS::Serverless::StateMachine")
        .filter_map(|(name, r)| Some((name.as_str()?.to_owned(), r.clone())))
        .collect()
}

#[test]
fn no_wildcard_actions_and_star_resources_only_where_aws_allows_nothing_narrower() {
    let template = common::template();
    let mut statements = 0;
    for (name, resource) in principals(&template) {
        let policies = resource["Properties"]["Policies"].as_sequence().cloned().unwrap_or_default();
        assert!(!policies.is_empty(), "{name} has no policies of its own");
        for policy in policies {
            if let Some(template_name) = policy.as_mapping().and_then(|m| m.keys().next()).and_then(Value::as_str)
                && template_name != "Statement"
            {
                assert!(SCOPED_POLICY_TEMPLATES.contains(&template_name), "{name} uses {template_name}");
                continue;
            }
            for statement in policy["Statement"].as_sequence().expect("Statement list") {
                statements += 1;
                let actions = strings(&statement["Action"]);
                for action in &actions {
                    assert!(!action.contains('*'), "{name}: wildcard action {action}");
                }
                if strings(&statement["Resource"]).iter().any(|r| r == "*") {
                    for action in &actions {
                        assert!(NO_RESOURCE_LEVEL.contains(&action.as_str()), "{name}: {action} on *");
                    }
                }
            }
        }
    }
    assert!(statements >= 10, "the statements were found");
}

#[test]
fn functions_consume_their_own_queues_through_explicit_event_source_mappings() {
    let template = common::template();
    for (name, resource) in principals(&template) {
        let events = resource["Properties"]["Events"].as_mapping().cloned().unwrap_or_default();
        assert!(
            !events.values().any(|e| e["Type"] == "SQS"),
            "{name} has a SAM SQS event: SAM would attach AWSLambdaSQSQueueExecutionRole (every queue)"
        );
    }
    let mappings: Vec<Value> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .cloned()
        .collect();
    assert!(mappings.len() >= 6, "every queue is consumed through a mapping");
}
