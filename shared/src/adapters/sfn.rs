//! Step Functions: starts the saga (execution named by the order id) and answers callback tasks.

use aws_sdk_sfn::Client;
use serde_json::Value;

use super::unavailable;
use crate::ports::{CallbackOutcome, PortError, PortResult, SagaStarter, StartOutcome, TaskCallbacks};

#[derive(Clone)]
pub struct StepFunctions {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctions {
    pub fn new(client: Client, state_machine_arn: String) -> Self {
        Self { client, state_machine_arn }
    }

    fn execution_arn(&self, name: &str) -> String {
        format!("{}:{name}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }
}

impl SagaStarter for StepFunctions {
    async fn start(&self, order_id: &str, input: &Value) -> PortResult<StartOutcome> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(order_id)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(output) => Ok(StartOutcome::Started { execution_arn: output.execution_arn }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_already_exists()) => {
                Ok(StartOutcome::AlreadyStarted { execution_arn: self.execution_arn(order_id) })
            }
            Err(e) => Err(unavailable("start saga", e)),
        }
    }
}

/// Errors meaning the task is over: answering again can never succeed, and need not.
fn task_closed(code: Option<&str>) -> bool {
    matches!(code, Some("TaskDoesNotExist" | "TaskTimedOut" | "InvalidToken"))
}

impl TaskCallbacks for StepFunctions {
    async fn succeed(&self, task_token: &str, output: &Value) -> PortResult<CallbackOutcome> {
        let result = self.client.send_task_success().task_token(task_token).output(output.to_string()).send().await;
        match result {
            Ok(_) => Ok(CallbackOutcome::Delivered),
            Err(e) if task_closed(aws_sdk_sfn::error::ProvideErrorMetadata::code(&e)) => Ok(CallbackOutcome::TaskAlreadyClosed),
            Err(e) => Err(unavailable("send task success", e)),
        }
    }

    async fn fail(&self, task_token: &str, error: &str, cause: &str) -> PortResult<CallbackOutcome> {
        if error.len() > 256 {
            return Err(PortError::Rejected { operation: "send task failure", message: format!("error name too long: {error}") });
        }
        let result = self.client.send_task_failure().task_token(task_token).error(error).cause(cause).send().await;
        match result {
            Ok(_) => Ok(CallbackOutcome::Delivered),
            Err(e) if task_closed(aws_sdk_sfn::error::ProvideErrorMetadata::code(&e)) => Ok(CallbackOutcome::TaskAlreadyClosed),
            Err(e) => Err(unavailable("send task failure", e)),
        }
    }
}
