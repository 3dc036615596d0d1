//! Step Functions: starts the saga (an order's first execution is named by its order id, a retry's by
//! [`nexus_core::domain::ids::retry_execution_name`]) and answers callback tasks.

use std::collections::BTreeMap;

use aws_sdk_sfn::Client;
use serde_json::Value;

use crate::ext::unavailable;
use nexus_core::ports::{
    CallbackOutcome, ExecutionStatus, PortError, PortResult, SagaStarter, StartOutcome, TaskCallbacks,
};

#[derive(Clone)]
pub struct StepFunctions {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctions {
    pub fn new(client: Client, state_machine_arn: String) -> Self {
        Self { client, state_machine_arn }
    }
}

impl SagaStarter for StepFunctions {
    fn execution_arn(&self, name: &str) -> String {
        format!("{}:{name}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }

    async fn start(&self, name: &str, input: &Value) -> PortResult<StartOutcome> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(output) => Ok(StartOutcome::Started { execution_arn: output.execution_arn }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_already_exists()) => {
                Ok(StartOutcome::AlreadyStarted { execution_arn: self.execution_arn(name) })
            }
            Err(e) => Err(unavailable("start saga", e)),
        }
    }

    async fn status(&self, name: &str) -> PortResult<Option<ExecutionStatus>> {
        let result = self.client.describe_execution().execution_arn(self.execution_arn(name)).send().await;
        match result {
            Ok(output) => ExecutionStatus::parse(output.status().as_str()).map(Some).ok_or_else(|| {
                PortError::Corrupt { operation: "describe execution", message: format!("status {}", output.status()) }
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_does_not_exist()) => Ok(None),
            Err(e) => Err(unavailable("describe execution", e)),
        }
    }
}

impl StepFunctions {
    /// Every execution of the state machine by name, with its status (for the invariant checker).
    pub async fn executions(&self) -> PortResult<BTreeMap<String, ExecutionStatus>> {
        let mut pages =
            self.client.list_executions().state_machine_arn(&self.state_machine_arn).into_paginator().send();
        let mut found = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| unavailable("list executions", e))?;
            for execution in page.executions() {
                let status = ExecutionStatus::parse(execution.status().as_str()).ok_or_else(|| PortError::Corrupt {
                    operation: "list executions",
                    message: format!("status {}", execution.status()),
                })?;
                found.insert(execution.name().to_owned(), status);
            }
        }
        Ok(found)
    }
}

/// A task that is over (answered, timed out, execution gone) is not an error: answering it again can never
/// succeed, and need not. `is_closed` names those errors (the success and failure calls have their own types).
fn callback_outcome<T, E>(
    result: Result<T, aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>>,
    operation: &'static str,
    is_closed: impl Fn(&E) -> bool,
) -> PortResult<CallbackOutcome>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(CallbackOutcome::Delivered),
        Err(e) if e.as_service_error().is_some_and(&is_closed) => Ok(CallbackOutcome::TaskAlreadyClosed),
        Err(e) => Err(unavailable(operation, e)),
    }
}

impl TaskCallbacks for StepFunctions {
    async fn succeed(&self, task_token: &str, output: &Value) -> PortResult<CallbackOutcome> {
        let result = self.client.send_task_success().task_token(task_token).output(output.to_string()).send().await;
        callback_outcome(result, "send task success", |e| {
            e.is_task_does_not_exist() || e.is_task_timed_out() || e.is_invalid_token()
        })
    }

    async fn fail(&self, task_token: &str, error: &str, cause: &str) -> PortResult<CallbackOutcome> {
        if error.len() > 256 {
            return Err(PortError::Rejected {
                operation: "send task failure",
                message: format!("error name too long: {error}"),
            });
        }
        let result = self.client.send_task_failure().task_token(task_token).error(error).cause(cause).send().await;
        callback_outcome(result, "send task failure", |e| {
            e.is_task_does_not_exist() || e.is_task_timed_out() || e.is_invalid_token()
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    use aws_sdk_sfn::operation::start_execution::StartExecutionError;
    use aws_sdk_sfn::types::error::{ExecutionAlreadyExists, TaskTimedOut};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use serde_json::json;

    use super::*;

    const MACHINE: &str = "arn:aws:states:us-east-1:000000000000:stateMachine:saga";

    #[tokio::test]
    async fn a_timed_out_task_is_already_closed_not_an_error() {
        let timed_out = mock!(Client::send_task_success)
            .then_error(|| SendTaskSuccessError::TaskTimedOut(TaskTimedOut::builder().message("gone").build()));
        let sfn = StepFunctions::new(mock_client!(aws_sdk_sfn, [&timed_out]), MACHINE.into());
        let outcome = sfn.succeed("token", &json!({})).await.expect("not an error");
        assert_eq!(outcome, CallbackOutcome::TaskAlreadyClosed);
    }

    #[tokio::test]
    async fn throttling_is_transient() {
        let throttled = mock!(Client::send_task_success).then_error(|| {
            SendTaskSuccessError::generic(ErrorMetadata::builder().code("ThrottlingException").message("slow").build())
        });
        let ok = mock!(Client::send_task_success).then_output(|| SendTaskSuccessOutput::builder().build());
        let sfn =
            StepFunctions::new(mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&throttled, &ok]), MACHINE.into());
        assert!(matches!(sfn.succeed("token", &json!({})).await, Err(PortError::Unavailable { .. })));
        assert_eq!(sfn.succeed("token", &json!({})).await.expect("delivered"), CallbackOutcome::Delivered);
    }

    #[tokio::test]
    async fn starting_a_saga_twice_finds_the_first_execution() {
        let exists = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().message("dup").build())
        });
        let sfn = StepFunctions::new(mock_client!(aws_sdk_sfn, [&exists]), MACHINE.into());
        let outcome = sfn.start("order-1", &json!({"orderId": "order-1"})).await.expect("not an error");
        assert_eq!(
            outcome,
            StartOutcome::AlreadyStarted {
                execution_arn: "arn:aws:states:us-east-1:000000000000:execution:saga:order-1".into()
            }
        );
    }
}
