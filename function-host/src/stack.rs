//! The deployed stack as the function host sees it, and resolution of the template's intrinsics
//! (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`) against it.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("stack {stack} not found at the endpoint: run `make up` (or deploy the template) first")]
    NotFound { stack: String },
    #[error("cannot describe stack {stack}: {message}")]
    Describe { stack: String, message: String },
    #[error("cannot resolve {expression}: {problem}")]
    Resolve { expression: String, problem: String },
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub physical_id: String,
    pub resource_type: String,
}

/// What resolution needs to know about a deployed stack.
#[derive(Debug, Clone, Default)]
pub struct StackContext {
    pub stack_name: String,
    pub stack_id: String,
    pub region: String,
    pub account_id: String,
    pub parameters: BTreeMap<String, String>,
    pub resources: BTreeMap<String, Resource>,
}

impl StackContext {
    pub async fn describe(
        client: &aws_sdk_cloudformation::Client,
        stack: &str,
        region: &str,
    ) -> Result<Self, StackError> {
        let describe_error =
            |e: &dyn std::fmt::Display| StackError::Describe { stack: stack.into(), message: e.to_string() };
        let stacks = client.describe_stacks().stack_name(stack).send().await.map_err(|e| {
            let text = format!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(&e));
            if text.contains("does not exist") {
                StackError::NotFound { stack: stack.into() }
            } else {
                describe_error(&text)
            }
        })?;
        let description = stacks.stacks().first().ok_or_else(|| StackError::NotFound { stack: stack.into() })?;
        let stack_id = description.stack_id().unwrap_or_default().to_owned();
        let parameters = description
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value()?.to_owned())))
            .collect();
        let mut resources = BTreeMap::new();
        let mut pages = client.list_stack_resources().stack_name(stack).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| describe_error(&aws_sdk_cloudformation::error::DisplayErrorContext(&e)))?;
            for summary in page.stack_resource_summaries() {
                let (Some(logical), Some(physical)) = (summary.logical_resource_id(), summary.physical_resource_id())
                else {
                    continue;
                };
                resources.insert(
                    logical.to_owned(),
                    Resource {
                        physical_id: physical.to_owned(),
                        resource_type: summary.resource_type().unwrap_or_default().to_owned(),
                    },
                );
            }
        }
        // arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
        let account_id = stack_id.split(':').nth(4).unwrap_or("000000000000").to_owned();
        Ok(Self {
            stack_name: stack.to_owned(),
            stack_id,
            region: region.to_owned(),
            account_id,
            parameters,
            resources,
        })
    }

    /// Resolves an intrinsic expression to a string (what environment variables and queue ARNs need).
    pub fn resolve_string(&self, expression: &Value) -> Result<String, StackError> {
        match self.resolve(expression)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.error(expression, format!("resolves to {other}, not a string"))),
        }
    }

    pub fn resolve(&self, expression: &Value) -> Result<Value, StackError> {
        let Value::Object(map) = expression else {
            return Ok(expression.clone());
        };
        let Some((function, argument)) = map.iter().next().filter(|_| map.len() == 1) else {
            return Ok(expression.clone());
        };
        match function.as_str() {
            "Ref" => {
                let name = argument.as_str().ok_or_else(|| self.error(expression, "Ref takes a name".into()))?;
                self.reference(name).map(Value::String).ok_or_else(|| self.error(expression, "unknown name".into()))
            }
            "Fn::GetAtt" => {
                let parts: Vec<&str> = match argument {
                    Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                    Value::String(s) => s.splitn(2, '.').collect(),
                    _ => Vec::new(),
                };
                let [resource, attribute] = parts[..] else {
                    return Err(self.error(expression, "GetAtt takes [resource, attribute]".into()));
                };
                self.attribute(resource, attribute).map(Value::String).map_err(|p| self.error(expression, p))
            }
            "Fn::Sub" => self.substitute(expression, argument).map(Value::String),
            "Fn::Join" => {
                let (Some(delimiter), Some(items)) = (argument[0].as_str(), argument[1].as_array()) else {
                    return Err(self.error(expression, "Join takes [delimiter, [items]]".into()));
                };
                let parts = items.iter().map(|item| self.resolve_string(item)).collect::<Result<Vec<_>, _>>()?;
                Ok(Value::String(parts.join(delimiter)))
            }
            "Fn::Select" => {
                let index = argument[0].as_u64().or_else(|| argument[0].as_str()?.parse().ok());
                let list = self.resolve(&argument[1])?;
                index
                    .and_then(|i| list.as_array()?.get(i as usize).cloned())
                    .map(|item| self.resolve(&item))
                    .transpose()?
                    .ok_or_else(|| self.error(expression, "Select index out of range".into()))
            }
            other if other.starts_with("Fn::") => Err(self.error(expression, format!("{other} is not supported"))),
            _ => Ok(expression.clone()),
        }
    }

    fn reference(&self, name: &str) -> Option<String> {
        match name {
            "AWS::Region" => Some(self.region.clone()),
            "AWS::AccountId" => Some(self.account_id.clone()),
            "AWS::StackName" => Some(self.stack_name.clone()),
            "AWS::StackId" => Some(self.stack_id.clone()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            _ => self.parameters.get(name).cloned().or_else(|| self.resources.get(name).map(|r| r.physical_id.clone())),
        }
    }

    fn attribute(&self, logical_id: &str, attribute: &str) -> Result<String, String> {
        let resource =
            self.resources.get(logical_id).ok_or_else(|| format!("no resource {logical_id} in the stack"))?;
        let id = &resource.physical_id;
        let last = |separator: char| id.rsplit(separator).next().unwrap_or(id).to_owned();
        let (region, account) = (&self.region, &self.account_id);
        let value = match (resource.resource_type.as_str(), attribute) {
            ("AWS::SQS::Queue", "Arn") => format!("arn:aws:sqs:{region}:{account}:{}", last('/')),
            ("AWS::SQS::Queue", "QueueUrl") => id.clone(),
            ("AWS::SQS::Queue", "QueueName") => last('/'),
            ("AWS::SNS::Topic", "TopicArn") => id.clone(),
            ("AWS::SNS::Topic", "TopicName") => last(':'),
            ("AWS::DynamoDB::Table", "Arn") => format!("arn:aws:dynamodb:{region}:{account}:table/{id}"),
            ("AWS::StepFunctions::StateMachine", "Arn") => id.clone(),
            ("AWS::StepFunctions::StateMachine", "Name") => last(':'),
            ("AWS::Logs::LogGroup", "Arn") => format!("arn:aws:logs:{region}:{account}:log-group:{id}:*"),
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{account}:role/{id}"),
            (kind, _) => return Err(format!("attribute {attribute} of {kind} is not supported by the function host")),
        };
        Ok(value)
    }

    fn substitute(&self, expression: &Value, argument: &Value) -> Result<String, StackError> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), None),
            Value::Array(items) => match (items.first().and_then(Value::as_str), items.get(1)) {
                (Some(text), Some(Value::Object(vars))) => (text, Some(vars)),
                _ => return Err(self.error(expression, "Sub takes a string or [string, {vars}]".into())),
            },
            _ => return Err(self.error(expression, "Sub takes a string or [string, {vars}]".into())),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| self.error(expression, "unclosed ${".into()))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|vars| vars.get(name)) {
                out.push_str(&self.resolve_string(value)?);
            } else if let Some((resource, attribute)) = name.split_once('.').filter(|_| !name.starts_with("AWS::")) {
                out.push_str(&self.attribute(resource, attribute).map_err(|p| self.error(expression, p))?);
            } else {
                out.push_str(
                    &self.reference(name).ok_or_else(|| self.error(expression, format!("unknown name {name}")))?,
                );
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn error(&self, expression: &Value, problem: String) -> StackError {
        StackError::Resolve { expression: expression.to_string(), problem }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> StackContext {
        let resource = |id: &str, kind: &str| Resource { physical_id: id.into(), resource_type: kind.into() };
        StackContext {
            stack_name: "nexus".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:000000000000:stack/nexus/1".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            parameters: BTreeMap::from([("Stage".into(), "dev".into())]),
            resources: BTreeMap::from([
                ("Queue".into(), resource("http://127.0.0.1:4566/000000000000/nexus-Queue-AB", "AWS::SQS::Queue")),
                ("Table".into(), resource("nexus-orders", "AWS::DynamoDB::Table")),
                ("Topic".into(), resource("arn:aws:sns:us-east-1:000000000000:orders", "AWS::SNS::Topic")),
            ]),
        }
    }

    #[test]
    fn resolves_refs_to_parameters_resources_and_pseudo_parameters() {
        let ctx = context();
        assert_eq!(ctx.resolve_string(&json!({"Ref": "Stage"})).expect("param"), "dev");
        assert_eq!(ctx.resolve_string(&json!({"Ref": "Table"})).expect("table"), "nexus-orders");
        assert_eq!(ctx.resolve_string(&json!({"Ref": "AWS::AccountId"})).expect("account"), "000000000000");
        assert!(ctx.resolve_string(&json!({"Ref": "Missing"})).is_err());
    }

    #[test]
    fn resolves_queue_and_table_attributes() {
        let ctx = context();
        assert_eq!(
            ctx.resolve_string(&json!({"Fn::GetAtt": ["Queue", "Arn"]})).expect("arn"),
            "arn:aws:sqs:us-east-1:000000000000:nexus-Queue-AB"
        );
        assert_eq!(ctx.resolve_string(&json!({"Fn::GetAtt": "Queue.QueueName"})).expect("name"), "nexus-Queue-AB");
        assert_eq!(
            ctx.resolve_string(&json!({"Fn::GetAtt": ["Table", "Arn"]})).expect("table arn"),
            "arn:aws:dynamodb:us-east-1:000000000000:table/nexus-orders"
        );
        assert!(ctx.resolve_string(&json!({"Fn::GetAtt": ["Table", "StreamArn"]})).is_err());
    }

    #[test]
    fn substitutes_names_attributes_variables_and_literals() {
        let ctx = context();
        let sub = json!({"Fn::Sub": ["${AWS::StackName}-${Stage}/${Queue.QueueName}/${Extra}/${!Kept}",
            {"Extra": {"Ref": "Table"}}]});
        assert_eq!(ctx.resolve_string(&sub).expect("sub"), "nexus-dev/nexus-Queue-AB/nexus-orders/${Kept}");
        let join = json!({"Fn::Join": [":", [{"Ref": "Stage"}, "x"]]});
        assert_eq!(ctx.resolve_string(&join).expect("join"), "dev:x");
    }
}
