//! What the simulation takes from `template.yaml`, so that it cannot drift from what is deployed: the SNS
//! subscriptions (topic, queue, filter policy and its scope), each queue's visibility timeout and redrive
//! policy (maxReceiveCount, DLQ), the event source mappings (queue, function, batch size, concurrency), the
//! parameters' defaults, and the state machine's definition with its `DefinitionSubstitutions` (a topic's
//! ARN is its logical id here).

use std::collections::BTreeMap;

use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}: {1}")]
    Read(String, String),
    #[error("template.yaml: {0}")]
    Shape(String),
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub topic: String,
    pub queue: String,
    /// The filter policy reads the message body (`MessageBody`), not its attributes.
    pub on_body: bool,
    pub filter: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub visibility_seconds: u64,
    /// maxReceiveCount and the DLQ's logical id (none for a DLQ itself).
    pub redrive: Option<(u32, String)>,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub queue: String,
    /// The function's binary (`order-intake`, `inventory`, …).
    pub function: String,
    pub batch_size: usize,
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub parameters: BTreeMap<String, String>,
    pub subscriptions: Vec<Subscription>,
    pub queues: BTreeMap<String, QueueSpec>,
    pub mappings: Vec<Mapping>,
    /// The state machine's definition and its substitutions.
    pub definition: String,
    pub substitutions: BTreeMap<String, String>,
}

fn read(path: &std::path::Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|e| TemplateError::Read(path.display().to_string(), e.to_string()))
}

/// The logical id a `!Ref X` or `!GetAtt X.Arn` names.
fn reference(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Tagged(tagged) => {
            let name = tagged.value.as_str()?;
            Some(name.split('.').next().unwrap_or(name).to_owned())
        }
        _ => None,
    }
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Topology {
    /// Reads `template.yaml` (and the definition it names) from the repository at `root`.
    pub fn load(root: &std::path::Path) -> Result<Self, TemplateError> {
        let template: Yaml = serde_yaml_ng::from_str(&read(&root.join("template.yaml"))?)
            .map_err(|e| TemplateError::Shape(e.to_string()))?;
        let parameters: BTreeMap<String, String> = template["Parameters"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, p)| Some((name.as_str()?.to_owned(), scalar(&p["Default"])?)))
            .collect();
        // A number, or a `!Ref` to a parameter: its default.
        let number = |value: &Yaml| -> Option<u64> {
            scalar(value).or_else(|| reference(value).and_then(|p| parameters.get(&p).cloned()))?.parse().ok()
        };
        let resources =
            template["Resources"].as_mapping().ok_or_else(|| TemplateError::Shape("no Resources".into()))?;
        let (mut subscriptions, mut queues, mut found_mappings) = (Vec::new(), BTreeMap::new(), Vec::new());
        let mut binaries = BTreeMap::new();
        let mut machine = None;
        for (name, resource) in resources {
            let name = name.as_str().unwrap_or_default().to_owned();
            let properties = &resource["Properties"];
            match resource["Type"].as_str().unwrap_or_default() {
                "AWS::SNS::Subscription" if properties["Protocol"] == "sqs" => {
                    let filter = match &properties["FilterPolicy"] {
                        Yaml::Null => None,
                        policy => Some(serde_json::to_value(policy).map_err(|e| TemplateError::Shape(e.to_string()))?),
                    };
                    subscriptions.push(Subscription {
                        topic: reference(&properties["TopicArn"]).unwrap_or_default(),
                        queue: reference(&properties["Endpoint"]).unwrap_or_default(),
                        on_body: properties["FilterPolicyScope"] == "MessageBody",
                        filter,
                    });
                }
                "AWS::SQS::Queue" => {
                    let redrive = &properties["RedrivePolicy"];
                    let redrive = redrive["maxReceiveCount"].as_u64().and_then(|count| {
                        Some((u32::try_from(count).ok()?, reference(&redrive["deadLetterTargetArn"])?))
                    });
                    let visibility_seconds = number(&properties["VisibilityTimeout"]).unwrap_or(30);
                    queues.insert(name, QueueSpec { visibility_seconds, redrive });
                }
                "AWS::Lambda::EventSourceMapping" => {
                    found_mappings.push((
                        reference(&properties["EventSourceArn"]).unwrap_or_default(),
                        reference(&properties["FunctionName"]).unwrap_or_default(),
                        number(&properties["BatchSize"]).unwrap_or(10),
                        number(&properties["ScalingConfig"]["MaximumConcurrency"]).unwrap_or(2),
                    ));
                }
                "AWS::Serverless::Function" => {
                    let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_default();
                    binaries.insert(name, binary.to_owned());
                }
                "AWS::Serverless::StateMachine" => machine = Some(properties.clone()),
                _ => {}
            }
        }
        let mut mappings = Vec::new();
        for (queue, function, batch_size, concurrency) in found_mappings {
            let function = binaries.get(&function).cloned().unwrap_or(function);
            mappings.push(Mapping {
                queue,
                function,
                batch_size: usize::try_from(batch_size).unwrap_or(10),
                concurrency: usize::try_from(concurrency).unwrap_or(2),
            });
        }
        let machine = machine.ok_or_else(|| TemplateError::Shape("no AWS::Serverless::StateMachine".into()))?;
        let definition = read(&root.join(machine["DefinitionUri"].as_str().unwrap_or_default()))?;
        let substitutions = machine["DefinitionSubstitutions"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                let value = scalar(value).or_else(|| {
                    let target = reference(value)?;
                    Some(parameters.get(&target).cloned().unwrap_or(target))
                })?;
                Some((key.as_str()?.to_owned(), value))
            })
            .collect();
        Ok(Self { parameters, subscriptions, queues, mappings, definition, substitutions })
    }
}

/// Whether a message passes an SNS filter policy (the forms the template uses: exact strings and
/// `{"exists": bool}`), every key of the policy matching.
pub fn passes(filter: Option<&Value>, read: impl Fn(&str) -> Option<String>) -> bool {
    let Some(policy) = filter.and_then(Value::as_object) else { return true };
    policy.iter().all(|(key, allowed)| {
        let value = read(key);
        allowed.as_array().into_iter().flatten().any(|rule| match rule {
            Value::String(expected) => value.as_deref() == Some(expected.as_str()),
            Value::Object(op) => op.get("exists").and_then(Value::as_bool).is_some_and(|e| e == value.is_some()),
            _ => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).expect("the template reads")
    }

    #[test]
    fn every_command_topic_reaches_one_queue_per_lane_and_every_queue_has_a_consumer() {
        let topology = topology();
        assert!(topology.subscriptions.len() >= 10, "{:?}", topology.subscriptions);
        for subscription in &topology.subscriptions {
            let spec = &topology.queues[&subscription.queue];
            assert!(spec.redrive.is_some(), "{} has a DLQ", subscription.queue);
            assert!(
                topology.mappings.iter().any(|m| m.queue == subscription.queue),
                "{} is consumed",
                subscription.queue
            );
        }
        let functions: std::collections::BTreeSet<_> = topology.mappings.iter().map(|m| m.function.as_str()).collect();
        assert_eq!(
            functions.into_iter().collect::<Vec<_>>(),
            vec!["inventory", "notification", "order-intake", "payment", "shipping"]
        );
        assert!(topology.substitutions.contains_key("StepRetryAttempts"));
    }

    #[test]
    fn filter_policies_match_strings_and_existence() {
        let policy = serde_json::json!({"tier": ["STANDARD", {"exists": false}], "command": ["A"]});
        let read = |tier: Option<&'static str>| {
            move |k: &str| if k == "tier" { tier.map(str::to_owned) } else { Some("A".into()) }
        };
        assert!(passes(Some(&policy), read(Some("STANDARD"))));
        assert!(passes(Some(&policy), read(None)));
        assert!(!passes(Some(&policy), read(Some("VIP"))));
        assert!(passes(None, read(Some("VIP"))));
    }
}
