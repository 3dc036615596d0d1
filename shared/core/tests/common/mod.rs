#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

//! The stack's definitions as the tests read them: `template.yaml`'s parameters (with their defaults) and the
//! state machine with its `DefinitionSubstitutions` applied, as CloudFormation applies them (textually).

use std::collections::BTreeMap;

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// `template.yaml` as JSON (CloudFormation's short-form tags read as plain values, which these tests skip).
pub fn template() -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(format!("{ROOT}/template.yaml")).expect("template.yaml is readable");
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
}

/// Every parameter's default.
pub fn parameter_defaults() -> BTreeMap<String, String> {
    let template = template();
    let parameters = template["Parameters"].as_mapping().expect("Parameters");
    parameters
        .iter()
        .filter_map(|(name, parameter)| {
            let default = match &parameter["Default"] {
                serde_yaml_ng::Value::String(s) => s.clone(),
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((name.as_str()?.to_owned(), default))
        })
        .collect()
}

/// The state machine with every `${Name}` replaced: by `overrides`, else the template parameter's default, else
/// (the topics, resources of the stack) a placeholder ARN.
pub fn state_machine(overrides: &BTreeMap<String, String>) -> Value {
    let mut text = std::fs::read_to_string(format!("{ROOT}/infra/order-saga.asl.json"))
        .expect("infra/order-saga.asl.json is readable");
    let defaults = parameter_defaults();
    while let Some(start) = text.find("${") {
        let end = start + text[start..].find('}').expect("closed ${");
        let name = text[start + 2..end].to_owned();
        let value = overrides
            .get(&name)
            .or_else(|| defaults.get(&name))
            .cloned()
            .unwrap_or_else(|| format!("arn:aws:sns:us-east-1:000000000000:{name}"));
        text.replace_range(start..=end, &value);
    }
    serde_json::from_str(&text).expect("the substituted state machine is JSON")
}
