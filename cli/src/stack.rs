//! The deployed stack the CLI operates on: its outputs name every table, topic, queue and log group.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_cloudformation::error::{DisplayErrorContext, SdkError};
use nexus_aws::dynamo::Dynamo;
use nexus_ops::stack_outputs::{self, Outputs, QueuePair};

use crate::Global;
use crate::exit::Failure;

pub struct Nexus {
    pub config: SdkConfig,
    pub stack: String,
    /// The endpoint is this machine's (LocalStack), not AWS.
    pub local: bool,
    outputs: Outputs,
}

/// Whether `endpoint` names this machine (loopback), as a LocalStack endpoint does.
pub fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Nexus {
    pub async fn connect(global: &Global) -> anyhow::Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &global.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &global.endpoint {
            loader = loader.endpoint_url(endpoint);
            // LocalStack accepts any credentials; a fresh laptop has none configured.
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none() {
                loader = loader.test_credentials();
            }
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            config = config.into_builder().region(aws_config::Region::new("us-east-1")).build();
        }
        let place = global.endpoint.clone().unwrap_or_else(|| "AWS".into());
        let outputs = stack_outputs::describe(&aws_sdk_cloudformation::Client::new(&config), &global.stack).await;
        let outputs = match outputs {
            Ok(outputs) => outputs,
            Err(SdkError::ServiceError(e))
                if e.err().meta().message().is_some_and(|m| m.contains("does not exist")) =>
            {
                return Err(Failure::NotFound(format!(
                    "stack {} not found at {place}: run `make up`, or name the stack with --stack / NEXUS_STACK",
                    global.stack
                ))
                .into());
            }
            Err(e @ (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))) => {
                anyhow::bail!(
                    "cannot reach {place}: {}. Is LocalStack running? Start it with `make up` (or set AWS_ENDPOINT_URL)",
                    DisplayErrorContext(e)
                )
            }
            Err(e) => return Err(aws_error(e).context("describe the stack")),
        };
        let local = global.endpoint.as_deref().is_some_and(is_loopback);
        Ok(Self { config, stack: global.stack.clone(), local, outputs })
    }

    /// On a local stack, whether its LocalStack is Nexus's own and patched (None on AWS).
    pub async fn emulator(&self) -> Option<crate::emulator::Emulator> {
        let endpoint = self.config.endpoint_url().filter(|_| self.local)?;
        Some(crate::emulator::check(endpoint).await)
    }

    pub fn output(&self, key: &str) -> anyhow::Result<String> {
        self.outputs.get(key).cloned().with_context(|| {
            format!("stack {} has no output {key}: is it a Nexus stack? Redeploy it (`make up`)", self.stack)
        })
    }

    /// The stack's customer email hasher (its key is a secret of the stack; the operator may read it).
    pub async fn email_hasher(&self) -> anyhow::Result<nexus_core::domain::ids::EmailHasher> {
        let secret = self.output("EmailHashSecretArn")?;
        let client = aws_sdk_secretsmanager::Client::new(&self.config);
        nexus_aws::secrets::email_hasher(&client, &secret).await.context("read the email hash key")
    }

    /// The stack's order-events topic (an operator's retry and republish publish there).
    pub fn events(&self) -> anyhow::Result<nexus_aws::sns::SnsEvents> {
        let topic = self.output("OrderEventsTopicArn")?;
        Ok(nexus_aws::sns::SnsEvents::new(aws_sdk_sns::Client::new(&self.config), topic))
    }

    /// The stack's saga (its executions, and starting one).
    pub fn saga(&self) -> anyhow::Result<nexus_aws::sfn::StepFunctions> {
        let arn = self.output("OrderSagaStateMachineArn")?;
        Ok(nexus_aws::sfn::StepFunctions::new(aws_sdk_sfn::Client::new(&self.config), arn))
    }

    pub fn dynamo(&self) -> anyhow::Result<Dynamo> {
        self.dynamo_on(aws_sdk_dynamodb::Client::new(&self.config))
    }

    /// The stack's tables through `client` (the dashboard's counts its requests).
    pub fn dynamo_on(&self, client: aws_sdk_dynamodb::Client) -> anyhow::Result<Dynamo> {
        let tables = stack_outputs::tables(&self.outputs)
            .with_context(|| format!("stack {}: is it a Nexus stack? Redeploy it (`make up`)", self.stack))?;
        Ok(Dynamo::new(client, tables))
    }

    /// Every queue with its DLQ.
    pub fn queues(&self) -> Vec<QueuePair> {
        stack_outputs::queues(&self.outputs)
    }

    pub fn queue(&self, name: &str) -> anyhow::Result<QueuePair> {
        let mut queues = self.queues();
        let known: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
        let wanted = if name == "intake" { "order-intake" } else { name };
        match queues.iter().position(|q| q.name == wanted) {
            Some(index) => Ok(queues.swap_remove(index)),
            None => Err(Failure::NotFound(format!("no queue {name}; the queues are {}", known.join(", "))).into()),
        }
    }

    /// Function name → log group.
    pub fn function_log_groups(&self) -> BTreeMap<String, String> {
        stack_outputs::function_log_groups(&self.outputs)
    }
}

/// An SDK error with its whole chain of causes (the SDK's own Display names only the outermost).
pub fn aws_error<E: std::error::Error>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", DisplayErrorContext(error))
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_machine_is_local() {
        for local in ["http://127.0.0.1:4566", "http://localhost:4566/", "http://[::1]:4566", "127.0.0.2"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["https://sqs.eu-west-1.amazonaws.com", "http://10.0.0.5:4566", "http://localhost.evil.com"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
