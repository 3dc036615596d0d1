//! Reads the SAM template: every `AWS::Serverless::Function` with its SQS event sources, `Globals` applied.
//! Intrinsics stay unresolved here (normalised to their long JSON form); `stack.rs` resolves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_yaml_ng::value::TaggedValue;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("template {path} is not valid YAML: {source}")]
    Yaml { path: PathBuf, source: serde_yaml_ng::Error },
    #[error("function {function}: {problem}")]
    Function { function: String, problem: String },
}

/// A function of the template, as the function host needs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// `FunctionName` (unresolved), when the template sets one.
    pub function_name: Option<Value>,
    /// Name of the cargo-lambda binary: `Metadata.BuildProperties.Binary`, else the last part of `CodeUri`.
    pub binary: String,
    pub handler: String,
    /// `Timeout` (unresolved: a number, or a `Ref` to a parameter).
    pub timeout: Value,
    pub memory_mb: u64,
    /// `Environment.Variables`, Globals first then the function's own (unresolved).
    pub environment: BTreeMap<String, Value>,
    /// `LoggingConfig` (unresolved): the function's own, else Globals'.
    pub logging: LoggingSpec,
    /// `Layers` is set: Lambda would run their extensions, which the host does not.
    pub has_layers: bool,
    pub sqs_events: Vec<SqsEventSpec>,
}

/// `LoggingConfig` as written in the template.
#[derive(Debug, Clone, Default)]
pub struct LoggingSpec {
    pub log_group: Option<Value>,
    pub log_format: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SqsEventSpec {
    pub name: String,
    /// The `Queue` property (an ARN once resolved).
    pub queue: Value,
    pub batch_size: usize,
    pub batching_window_seconds: u64,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency` (unresolved: a number, or a `Ref` to a parameter).
    pub maximum_concurrency: Option<Value>,
    pub enabled: bool,
}

/// Lambda's defaults when the template does not say.
const DEFAULT_TIMEOUT_SECONDS: u64 = 3;
const DEFAULT_MEMORY_MB: u64 = 128;
const DEFAULT_SQS_BATCH_SIZE: usize = 10;

pub fn load(path: &Path) -> Result<Vec<FunctionSpec>, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read { path: path.into(), source })?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|source| TemplateError::Yaml { path: path.into(), source })?;
    parse(&to_json(yaml))
}

pub fn parse(template: &Value) -> Result<Vec<FunctionSpec>, TemplateError> {
    let globals = &template["Globals"]["Function"];
    let mut functions = Vec::new();
    let Some(resources) = template["Resources"].as_object() else { return Ok(functions) };
    for (logical_id, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        functions.push(parse_function(logical_id, resource, globals)?);
    }
    // Event source mappings declared on their own (no SAM `Events`, so no managed SQS policy on every queue).
    for (logical_id, resource) in resources {
        if resource["Type"] != "AWS::Lambda::EventSourceMapping" {
            continue;
        }
        let p = &resource["Properties"];
        let problem = |problem: String| TemplateError::Function { function: logical_id.clone(), problem };
        let target = match &p["FunctionName"] {
            Value::Object(reference) => {
                reference.get("Ref").and_then(Value::as_str).or_else(|| reference.get("Fn::GetAtt")?.get(0)?.as_str())
            }
            _ => None,
        }
        .ok_or_else(|| problem("FunctionName must be !Ref or !GetAtt of a function of the template".into()))?;
        let function = functions
            .iter_mut()
            .find(|f| f.logical_id == target)
            .ok_or_else(|| problem(format!("FunctionName names {target}, not a function of the template")))?;
        function.sqs_events.push(sqs_event(logical_id, p, "EventSourceArn").map_err(problem)?);
    }
    Ok(functions)
}

/// An SQS event source, from a SAM `Events` entry (`Queue`) or an event source mapping (`EventSourceArn`).
fn sqs_event(name: &str, p: &Value, queue_key: &str) -> Result<SqsEventSpec, String> {
    let batch_size = p["BatchSize"].as_u64().map_or(DEFAULT_SQS_BATCH_SIZE, |n| n as usize);
    let window = p["MaximumBatchingWindowInSeconds"].as_u64().unwrap_or(0);
    if batch_size > 10 && window == 0 {
        return Err(format!("event {name}: BatchSize over 10 needs MaximumBatchingWindowInSeconds"));
    }
    Ok(SqsEventSpec {
        name: name.to_owned(),
        queue: p[queue_key].clone(),
        batch_size,
        batching_window_seconds: window,
        report_batch_item_failures: p["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
        maximum_concurrency: Some(p["ScalingConfig"]["MaximumConcurrency"].clone()).filter(|v| !v.is_null()),
        enabled: p["Enabled"].as_bool().unwrap_or(true),
    })
}

fn parse_function(logical_id: &str, resource: &Value, globals: &Value) -> Result<FunctionSpec, TemplateError> {
    let problem = |problem: String| TemplateError::Function { function: logical_id.to_owned(), problem };
    let props = &resource["Properties"];
    let property = |name: &str| if props[name].is_null() { &globals[name] } else { &props[name] };

    let binary = match resource["Metadata"]["BuildProperties"]["Binary"].as_str() {
        Some(binary) => binary.to_owned(),
        None => property("CodeUri")
            .as_str()
            .and_then(|uri| uri.trim_end_matches('/').rsplit('/').next())
            .filter(|name| !name.is_empty() && *name != ".")
            .ok_or_else(|| problem("set Metadata.BuildProperties.Binary or a CodeUri naming the crate".into()))?
            .to_owned(),
    };

    let mut environment = BTreeMap::new();
    for source in [&globals["Environment"]["Variables"], &props["Environment"]["Variables"]] {
        if let Some(vars) = source.as_object() {
            environment.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }

    let mut sqs_events = Vec::new();
    if let Some(events) = props["Events"].as_object() {
        for (name, event) in events.iter().filter(|(_, event)| event["Type"] == "SQS") {
            sqs_events.push(sqs_event(name, &event["Properties"], "Queue").map_err(problem)?);
        }
    }

    let logging = property("LoggingConfig");
    let text = |name: &str| logging[name].as_str().map(str::to_owned);
    let logging = LoggingSpec {
        log_group: Some(logging["LogGroup"].clone()).filter(|v| !v.is_null()),
        log_format: text("LogFormat"),
        application_log_level: text("ApplicationLogLevel"),
        system_log_level: text("SystemLogLevel"),
    };

    Ok(FunctionSpec {
        logical_id: logical_id.to_owned(),
        logging,
        has_layers: property("Layers").as_array().is_some_and(|layers| !layers.is_empty()),
        function_name: Some(props["FunctionName"].clone()).filter(|v| !v.is_null()),
        binary,
        handler: property("Handler").as_str().unwrap_or("bootstrap").to_owned(),
        timeout: Some(property("Timeout").clone()).filter(|v| !v.is_null()).unwrap_or(DEFAULT_TIMEOUT_SECONDS.into()),
        memory_mb: property("MemorySize").as_u64().unwrap_or(DEFAULT_MEMORY_MB),
        environment,
        sqs_events,
    })
}

/// YAML → JSON with CloudFormation short-form tags turned into their long form
/// (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` → `{"Fn::Sub": s}`).
pub fn to_json(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned), to_json(v)))
                .collect(),
        ),
        Y::Tagged(tagged) => tagged_to_json(*tagged),
    }
}

fn tagged_to_json(TaggedValue { tag, value }: TaggedValue) -> Value {
    let name = tag.to_string().trim_start_matches('!').to_owned();
    let value = to_json(value);
    let (key, value) = match name.as_str() {
        "Ref" | "Condition" => (name, value),
        "GetAtt" => match value {
            Value::String(s) => match s.split_once('.') {
                Some((resource, attribute)) => ("Fn::GetAtt".into(), Value::from(vec![resource, attribute])),
                None => ("Fn::GetAtt".into(), Value::String(s)),
            },
            other => ("Fn::GetAtt".into(), other),
        },
        _ => (format!("Fn::{name}"), value),
    };
    Value::Object(Map::from_iter([(key, value)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 7
    Environment:
      Variables:
        SHARED: !Ref AWS::Region
        OVERRIDDEN: global
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: worker-bin
    Properties:
      CodeUri: functions/worker
      MemorySize: 256
      Environment:
        Variables:
          OVERRIDDEN: !Sub "${AWS::StackName}-own"
          QUEUE_ARN: !GetAtt Queue.Arn
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 3
        Timer:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/plain/
      Layers: [arn:aws:lambda:us-east-1:123456789012:layer:extension:1]
      LoggingConfig:
        LogFormat: JSON
        ApplicationLogLevel: WARN
        SystemLogLevel: DEBUG
        LogGroup: !Ref PlainLogs
"#;

    fn functions() -> Vec<FunctionSpec> {
        let yaml = serde_yaml_ng::from_str(TEMPLATE).expect("yaml");
        let mut functions = parse(&to_json(yaml)).expect("template parses");
        functions.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
        functions
    }

    #[test]
    fn reads_functions_with_globals_and_sqs_events() {
        let functions = functions();
        assert_eq!(functions.len(), 2);
        let worker = &functions[1];
        assert_eq!(worker.binary, "worker-bin");
        assert_eq!((worker.timeout.as_u64(), worker.memory_mb), (Some(7), 256));
        assert_eq!(worker.environment["SHARED"], serde_json::json!({"Ref": "AWS::Region"}));
        assert_eq!(worker.environment["OVERRIDDEN"], serde_json::json!({"Fn::Sub": "${AWS::StackName}-own"}));
        assert_eq!(worker.environment["QUEUE_ARN"], serde_json::json!({"Fn::GetAtt": ["Queue", "Arn"]}));
        assert_eq!(worker.sqs_events.len(), 1, "only SQS events are emulated");
        let event = &worker.sqs_events[0];
        assert_eq!((event.batch_size, event.batching_window_seconds), (5, 2));
        assert!(event.report_batch_item_failures && event.enabled);
        assert_eq!(event.maximum_concurrency, Some(serde_json::json!(3)));
    }

    #[test]
    fn applies_lambda_defaults_and_binary_from_code_uri() {
        let plain = &functions()[0];
        assert_eq!(plain.binary, "plain");
        assert_eq!((plain.timeout.as_u64(), plain.memory_mb), (Some(7), 128));
        assert_eq!(plain.handler, "bootstrap");
        assert!(plain.sqs_events.is_empty());
        assert!(plain.has_layers);
        assert_eq!(plain.logging.log_group, Some(serde_json::json!({"Ref": "PlainLogs"})));
        assert_eq!(plain.logging.log_format.as_deref(), Some("JSON"));
        assert_eq!(plain.logging.application_log_level.as_deref(), Some("WARN"));
        assert_eq!(plain.logging.system_log_level.as_deref(), Some("DEBUG"));
        let worker = &functions()[1];
        assert!(!worker.has_layers && worker.logging.log_group.is_none() && worker.logging.log_format.is_none());
    }

    #[test]
    fn reads_event_source_mappings_declared_on_their_own() {
        let template = serde_json::json!({"Resources": {
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "f"}},
            "Q": {"Type": "AWS::SQS::Queue"},
            "FnCommands": {"Type": "AWS::Lambda::EventSourceMapping", "Condition": "DeployFunctions", "Properties": {
                "FunctionName": {"Ref": "Fn"}, "EventSourceArn": {"Fn::GetAtt": ["Q", "Arn"]}, "BatchSize": 5,
                "FunctionResponseTypes": ["ReportBatchItemFailures"], "ScalingConfig": {"MaximumConcurrency": 3}}}}});
        let functions = parse(&template).expect("parses");
        let event = &functions[0].sqs_events[0];
        assert_eq!((event.name.as_str(), event.batch_size), ("FnCommands", 5));
        assert_eq!(event.maximum_concurrency, Some(serde_json::json!(3)));
        assert_eq!(event.queue, serde_json::json!({"Fn::GetAtt": ["Q", "Arn"]}));
        assert!(event.report_batch_item_failures);
        let orphan = serde_json::json!({"Resources": {"M": {"Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"FunctionName": {"Ref": "Missing"}, "EventSourceArn": "arn:aws:sqs:us-east-1:1:q"}}}});
        assert!(matches!(parse(&orphan), Err(TemplateError::Function { .. })));
    }

    #[test]
    fn rejects_large_batches_without_a_window() {
        let template = serde_json::json!({"Resources": {"F": {"Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "f", "Events": {"E": {"Type": "SQS", "Properties": {"BatchSize": 50}}}}}}});
        assert!(matches!(parse(&template), Err(TemplateError::Function { .. })));
    }
}
