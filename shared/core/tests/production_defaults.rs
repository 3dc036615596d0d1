//! What a plain `sam deploy` of `template.yaml` gets, read from the template: no fault injection, data kept,
//! every hop traced, queues paced for AWS.

mod common;

#[test]
fn fault_injection_is_off_unless_asked_for() {
    let defaults = common::parameter_defaults();
    assert_eq!(defaults["ChaosEnabled"], "false", "ChaosEnabled defaults to false");
    let template = common::template();
    let variable = &template["Globals"]["Function"]["Environment"]["Variables"]["CHAOS_ENABLED"];
    let serde_yaml_ng::Value::Tagged(reference) = variable else {
        panic!("every function's CHAOS_ENABLED is !Ref ChaosEnabled, found {variable:?}")
    };
    assert_eq!(
        (reference.tag.to_string().as_str(), reference.value.as_str()),
        ("!Ref", Some("ChaosEnabled")),
        "every function's CHAOS_ENABLED is !Ref ChaosEnabled"
    );
}

#[test]
fn data_outlives_the_stack_and_every_hop_is_traced() {
    let template = common::template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut tables = 0;
    for (name, resource) in resources {
        if resource["Type"] == "AWS::DynamoDB::Table" {
            tables += 1;
            assert_eq!(resource["DeletionPolicy"], "Retain", "{name:?} is deleted with the stack");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{name:?} is deleted when replaced");
            assert_eq!(resource["Properties"]["DeletionProtectionEnabled"], true, "{name:?} can be deleted");
        }
        if resource["Type"] == "AWS::Serverless::StateMachine" {
            assert_eq!(resource["Properties"]["Tracing"]["Enabled"], true, "{name:?} is not traced");
        }
    }
    assert!(tables >= 6, "the tables were found");
    assert_eq!(template["Globals"]["Function"]["Tracing"], "Active", "the functions are not traced");
}

/// The statement every queue and topic policy carries: a request not over TLS is refused.
fn denies_insecure_transport(statement: &serde_yaml_ng::Value) -> bool {
    statement["Effect"] == "Deny"
        && statement["Principal"] == "*"
        && statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"
}

/// The names a policy's `Queues` or `Topics` list references (`!Ref Name`).
fn referenced(list: &serde_yaml_ng::Value) -> Vec<String> {
    list.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|item| match item {
            serde_yaml_ng::Value::Tagged(tagged) if tagged.tag == "!Ref" => tagged.value.as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[test]
fn every_queue_and_topic_refuses_requests_not_over_tls() {
    let template = common::template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let of_type = |kind: &str| -> Vec<String> {
        resources.iter().filter(|(_, r)| r["Type"] == kind).filter_map(|(n, _)| n.as_str().map(str::to_owned)).collect()
    };
    for (policy_type, list, resource_type) in
        [("AWS::SQS::QueuePolicy", "Queues", "AWS::SQS::Queue"), ("AWS::SNS::TopicPolicy", "Topics", "AWS::SNS::Topic")]
    {
        let mut guarded = Vec::new();
        for (name, policy) in resources.iter().filter(|(_, r)| r["Type"] == policy_type) {
            let statements = policy["Properties"]["PolicyDocument"]["Statement"].as_sequence().expect("statements");
            assert!(statements.iter().any(denies_insecure_transport), "{name:?} does not deny requests without TLS");
            guarded.extend(referenced(&policy["Properties"][list]));
        }
        let all = of_type(resource_type);
        assert!(!all.is_empty(), "{resource_type} found");
        for name in all {
            assert!(guarded.contains(&name), "{name} ({resource_type}) has no policy denying requests without TLS");
        }
    }
    // A topic policy replaces the default one: the alarm topic still lets CloudWatch's alarms publish.
    let alarm_policy =
        &resources.iter().find(|(n, _)| n.as_str() == Some("AlarmTopicPolicy")).expect("alarm topic policy").1;
    let statements = alarm_policy["Properties"]["PolicyDocument"]["Statement"].as_sequence().expect("statements");
    assert!(statements.iter().any(|s| s["Effect"] == "Allow"
        && s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
        && s["Action"] == "sns:Publish"));
}

#[test]
fn the_email_hash_secret_is_kept_with_the_tables() {
    let template = common::template();
    let secret = &template["Resources"]["EmailHashSecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert_eq!(
        (secret["DeletionPolicy"].as_str(), secret["UpdateReplacePolicy"].as_str()),
        (Some("Retain"), Some("Retain"))
    );
}

/// A happy order's callback tasks: each answered once.
const CALLBACKS_PER_ORDER: f64 = 4.0;
/// A record's function time on AWS, at most: a step's three round trips and its answer (`nexus bench`
/// measures about 60 ms on the emulator).
const RECORD_SECONDS: f64 = 0.06;

/// A default quota of the committed, cited table the bench's capacity model reads.
fn quota(name: &str) -> f64 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cli/src/bench/aws-quotas.json");
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("aws-quotas.json is readable")).expect("JSON");
    table["quotas"][name]["perSecond"].as_f64().unwrap_or_else(|| panic!("aws-quotas.json has no {name}"))
}

/// What `sam deploy` gets is paced for AWS, not for the emulator (local stacks deploy with 2): every mapping's
/// `MaximumConcurrency` is `QueueMaximumConcurrency`, whose default lets a queue take orders faster than the
/// callback quota lets them through, while all the mappings at once keep within a quarter of the account.
#[test]
fn each_queue_is_paced_for_aws_by_default() {
    let concurrency: f64 =
        common::parameter_defaults()["QueueMaximumConcurrency"].parse().expect("QueueMaximumConcurrency is a number");
    let template = common::template();
    let mappings: Vec<_> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .collect();
    assert!(mappings.len() >= 11, "every queue's mapping was found: {}", mappings.len());
    for (name, mapping) in &mappings {
        let limit = &mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"];
        let serde_yaml_ng::Value::Tagged(reference) = limit else { panic!("{name:?}: MaximumConcurrency {limit:?}") };
        assert_eq!(reference.value.as_str(), Some("QueueMaximumConcurrency"), "{name:?}");
    }
    assert!(
        concurrency / RECORD_SECONDS >= quota("sfnSendTask") / CALLBACKS_PER_ORDER,
        "QueueMaximumConcurrency {concurrency} binds before Step Functions' callback quota on AWS"
    );
    assert!(
        concurrency * mappings.len() as f64 <= quota("lambdaConcurrency") / 4.0,
        "{} mappings at {concurrency} take over a quarter of the account's Lambda concurrency",
        mappings.len()
    );
}
