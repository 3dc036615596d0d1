//! What only AWS would show about the alarms, read from `template.yaml`: every alarm notifies the alarm
//! topic, CloudWatch may publish to that topic (its KMS key lets the CloudWatch service use it), an address
//! can be subscribed, and the signals a Well-Architected review asks for are all alarmed.

mod common;

use serde_yaml_ng::Value;

fn resources(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter_map(|(name, resource)| Some((name.as_str()?.to_owned(), resource.clone())))
        .collect()
}

/// `!Ref X` / `!GetAtt X.Attr` as (tag, value), or None for a plain value.
fn tagged(value: &Value) -> Option<(String, String)> {
    let Value::Tagged(tagged) = value else { return None };
    Some((tagged.tag.to_string(), tagged.value.as_str()?.to_owned()))
}

fn alarms(template: &Value) -> Vec<(String, Value)> {
    resources(template).into_iter().filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm").collect()
}

/// Every metric an alarm watches: (namespace, metric name, the dimension value's logical id or text).
fn watched(alarm: &Value) -> Vec<(String, String, String)> {
    let properties = &alarm["Properties"];
    let dimension = |dimensions: &Value| {
        dimensions
            .as_sequence()
            .and_then(|d| d.first())
            .map(|d| tagged(&d["Value"]).map_or_else(|| format!("{:?}", d["Value"]), |(_, v)| v))
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if let Some(metrics) = properties["Metrics"].as_sequence() {
        metrics
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .map(|stat| {
                let metric = &stat["Metric"];
                (text(&metric["Namespace"]), text(&metric["MetricName"]), dimension(&metric["Dimensions"]))
            })
            .collect()
    } else {
        vec![(text(&properties["Namespace"]), text(&properties["MetricName"]), dimension(&properties["Dimensions"]))]
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic_which_cloudwatch_can_publish_to() {
    let template = common::template();
    for (name, alarm) in alarms(&template) {
        let actions = alarm["Properties"]["AlarmActions"].as_sequence().cloned().unwrap_or_default();
        assert!(
            actions.iter().any(|a| tagged(a) == Some(("!Ref".into(), "AlarmTopic".into()))),
            "{name} does not notify the alarm topic"
        );
    }
    let topic = &template["Resources"]["AlarmTopic"]["Properties"];
    let (tag, key) = tagged(&topic["KmsMasterKeyId"]).expect("the alarm topic is encrypted with a key of the stack");
    assert_eq!(tag, "!Ref", "KmsMasterKeyId is a key of the stack, not the AWS managed alias/aws/sns");
    let key = &template["Resources"][key.as_str()];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    let statements = key["Properties"]["KeyPolicy"]["Statement"].as_sequence().expect("key policy");
    let cloudwatch = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com" && s["Effect"] == "Allow")
        .expect("the key policy lets CloudWatch use the key");
    let actions: Vec<&str> =
        cloudwatch["Action"].as_sequence().expect("actions").iter().filter_map(Value::as_str).collect();
    for needed in ["kms:Decrypt", "kms:GenerateDataKey*"] {
        assert!(actions.contains(&needed), "CloudWatch needs {needed} on the alarm topic's key");
    }
    let subscription = resources(&template)
        .into_iter()
        .find(|(_, r)| {
            r["Type"] == "AWS::SNS::Subscription"
                && tagged(&r["Properties"]["TopicArn"]).is_some_and(|(_, t)| t == "AlarmTopic")
        })
        .expect("an email subscription to the alarm topic");
    assert_eq!(subscription.1["Properties"]["Protocol"], "email");
    assert_eq!(subscription.1["Condition"], "HasAlarmEmail", "subscribed only when AlarmEmail is set");
}

#[test]
fn the_signals_that_matter_are_alarmed() {
    let template = common::template();
    let watched: Vec<(String, String, String)> = alarms(&template).iter().flat_map(|(_, a)| watched(a)).collect();
    let has = |namespace: &str, metric: &str, dimension: &str| {
        watched.iter().any(|(n, m, d)| n == namespace && m == metric && (dimension.is_empty() || d.contains(dimension)))
    };
    // Each means an order left without its final status (a routine NEEDS_ATTENTION execution succeeds).
    for metric in ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] {
        assert!(has("AWS/States", metric, "OrderSaga"), "no alarm on the saga's {metric}");
    }
    let reclaimed = nexus_core::domain::admission::SAGA_SLOTS_RECLAIMED;
    assert!(watched.iter().any(|(_, metric, _)| metric == reclaimed), "no alarm on {reclaimed}");
    for (name, resource) in resources(&template) {
        if resource["Type"] == "AWS::Serverless::Function" {
            let (_, function) = tagged(&resource["Properties"]["FunctionName"]).expect("a FunctionName");
            for metric in ["Errors", "Throttles"] {
                assert!(has("AWS/Lambda", metric, &function), "no alarm on {name}'s {metric}");
            }
        }
        if resource["Type"] == "AWS::SQS::Queue" {
            if resource["Properties"]["RedrivePolicy"].is_mapping() {
                assert!(has("AWS/SQS", "ApproximateAgeOfOldestMessage", &name), "no alarm on {name}'s oldest message");
            } else {
                assert!(has("AWS/SQS", "ApproximateNumberOfMessagesVisible", &name), "no alarm on the DLQ {name}");
            }
        }
    }
}

#[test]
fn kms_grants_name_keys_never_aliases() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).expect("template");
    // An alias ARN never matches a key in a policy's Resource: such a grant grants nothing.
    assert!(!text.contains(":alias/"), "a policy names a KMS alias ARN");
}
