//! What the tools read from a deployed stack's outputs (template.yaml `Outputs`, part of the public contract):
//! the tables, every queue with its DLQ, the functions' log groups. The `nexus` CLI and the integration tests
//! both find the system this way.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::error::SdkError;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
use aws_sdk_cloudformation::types::Stack;
use nexus_aws::dynamo::{Ledgers, Tables};

/// Output key → value.
pub type Outputs = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
#[error("the stack has no output {0}")]
pub struct MissingOutput(pub &'static str);

/// The outputs of the deployed stack `stack` (the SDK's error as is: callers tell "no such stack" from
/// "cannot reach the endpoint" by it).
pub async fn describe(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Outputs, SdkError<DescribeStacksError>> {
    let outputs = |s: &Stack| {
        s.outputs().iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))).collect()
    };
    Ok(described(client, stack).await?.as_ref().map(outputs).unwrap_or_default())
}

/// The parameters the stack `stack` runs with, defaults included (parameter name → value).
pub async fn parameters(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<BTreeMap<String, String>, SdkError<DescribeStacksError>> {
    let parameters = |s: &Stack| {
        s.parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value()?.to_owned())))
            .collect()
    };
    Ok(described(client, stack).await?.as_ref().map(parameters).unwrap_or_default())
}

/// The stack `stack` as CloudFormation describes it.
async fn described(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<Stack>, SdkError<DescribeStacksError>> {
    Ok(client.describe_stacks().stack_name(stack).send().await?.stacks.unwrap_or_default().into_iter().next())
}

fn output(outputs: &Outputs, key: &'static str) -> Result<String, MissingOutput> {
    outputs.get(key).cloned().ok_or(MissingOutput(key))
}

/// The tables behind the DynamoDB adapter.
pub fn tables(outputs: &Outputs) -> Result<Tables, MissingOutput> {
    Ok(Tables {
        idempotency: output(outputs, "IdempotencyTableName")?,
        settings: output(outputs, "SettingsTableName")?,
        orders: output(outputs, "OrdersTableName")?,
        order_events: output(outputs, "OrderEventsTableName")?,
        inventory: output(outputs, "InventoryTableName")?,
        ledger: Ledgers {
            inventory: output(outputs, "InventoryLedgerTableName")?,
            payment: output(outputs, "PaymentLedgerTableName")?,
            shipping: output(outputs, "ShippingLedgerTableName")?,
            notification: output(outputs, "NotificationLedgerTableName")?,
        },
        customers: output(outputs, "CustomersTableName")?,
    })
}

/// A queue and its DLQ, named as operators name them (`order-intake`, `payment`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePair {
    pub name: String,
    pub url: String,
    pub dlq_url: String,
}

/// Every queue with its DLQ, from the `<Name>QueueUrl` / `<Name>DlqUrl` outputs, by name.
pub fn queues(outputs: &Outputs) -> Vec<QueuePair> {
    outputs
        .iter()
        .filter_map(|(key, url)| {
            let name = key.strip_suffix("QueueUrl")?;
            let dlq_url = outputs.get(&format!("{name}DlqUrl"))?;
            Some(QueuePair { name: kebab(name), url: url.clone(), dlq_url: dlq_url.clone() })
        })
        .collect()
}

/// Function name → log group, from the `<Name>LogGroupName` outputs (the state machine's left out).
pub fn function_log_groups(outputs: &Outputs) -> BTreeMap<String, String> {
    outputs
        .iter()
        .filter_map(|(key, group)| {
            let name = key.strip_suffix("LogGroupName")?;
            (name != "OrderSaga").then(|| (kebab(name), group.clone()))
        })
        .collect()
}

/// `OrderIntake` → `order-intake`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(pairs: &[(&str, &str)]) -> Outputs {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn queues_pair_with_their_dlqs_under_operator_names() {
        let outputs = outputs(&[
            ("OrderIntakeQueueUrl", "q1"),
            ("OrderIntakeDlqUrl", "d1"),
            ("PaymentQueueUrl", "q2"),
            ("PaymentDlqUrl", "d2"),
            ("LonelyQueueUrl", "q3"),
        ]);
        let names: Vec<(String, String)> = queues(&outputs).into_iter().map(|q| (q.name, q.dlq_url)).collect();
        assert_eq!(names, [("order-intake".to_owned(), "d1".to_owned()), ("payment".to_owned(), "d2".to_owned())]);
    }

    #[test]
    fn log_groups_leave_the_state_machine_out_and_tables_name_what_is_missing() {
        let outputs = outputs(&[("OrderIntakeLogGroupName", "/aws/lambda/x"), ("OrderSagaLogGroupName", "/s")]);
        assert_eq!(function_log_groups(&outputs).into_keys().collect::<Vec<_>>(), ["order-intake"]);
        assert_eq!(tables(&outputs).expect_err("no tables").0, "IdempotencyTableName");
    }
}
