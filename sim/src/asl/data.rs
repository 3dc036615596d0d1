//! The data flow of the states the interpreter runs: dotted JSONPaths, `Parameters` (with the context
//! object and `States.JsonToString`), `ResultPath`, and the `Catch`/`Retry` and Choice rules' matches.

use serde_json::{Map, Value};

pub(super) fn matches_error(rule: &Value, error: &str) -> bool {
    rule["ErrorEquals"].as_array().into_iter().flatten().any(|e| e == "States.ALL" || e == error)
}

pub(super) fn matches_choice(choice: &Value, data: &Value) -> bool {
    let found = path(data, choice["Variable"].as_str().unwrap_or_default());
    if let Some(present) = choice["IsPresent"].as_bool() {
        return found.is_some() == present;
    }
    if let Some(expected) = choice["StringEquals"].as_str() {
        return found.and_then(Value::as_str) == Some(expected);
    }
    false
}

/// `ResultPath`: absent replaces the input with the result, `null` keeps the input, `$.a.b` sets it there.
pub(super) fn apply_result_path(state: &Value, mut input: Value, result: Value) -> Value {
    match state.get("ResultPath") {
        None => result,
        Some(Value::Null) => input,
        Some(Value::String(at)) if at == "$" => result,
        Some(Value::String(at)) => {
            let keys: Vec<&str> = at.trim_start_matches("$.").split('.').collect();
            set(&mut input, &keys, result);
            input
        }
        Some(_) => input,
    }
}

/// Puts `value` at `keys` in `data`, making the objects on the way.
fn set(data: &mut Value, keys: &[&str], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        *data = value;
        return;
    };
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Value::Object(fields) = data {
        set(fields.entry((*first).to_owned()).or_insert(Value::Null), rest, value);
    }
}

/// A dotted JSONPath (`$`, `$.a.b`) in `data`.
fn path<'a>(data: &'a Value, at: &str) -> Option<&'a Value> {
    if at == "$" {
        return Some(data);
    }
    at.strip_prefix("$.")?.split('.').try_fold(data, |value, key| value.get(key))
}

/// `Parameters`: keys ending in `.$` take a path (of the input, or of the context object with `$$.`) or
/// an intrinsic; the others are copied as they are.
pub(super) fn evaluate(template: &Value, data: &Value, context: &Value) -> Value {
    match template {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| match (key.strip_suffix(".$"), value.as_str()) {
                    (Some(name), Some(expression)) => (name.to_owned(), resolve(expression, data, context)),
                    _ => (key.clone(), evaluate(value, data, context)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn resolve(expression: &str, data: &Value, context: &Value) -> Value {
    if let Some(inner) = expression.strip_prefix("States.JsonToString(").and_then(|e| e.strip_suffix(')')) {
        return Value::String(resolve(inner, data, context).to_string());
    }
    let found = match expression.strip_prefix('$') {
        // `$$.Task.Token`: the context object's `$.Task.Token`.
        Some(rest) if rest.starts_with('$') => path(context, rest),
        _ => path(data, expression),
    };
    found.cloned().unwrap_or(Value::Null)
}
