//! An SQS event source mapping, resolved against the deployed stack and checked as Lambda's
//! `CreateEventSourceMapping` checks it, so a mapping AWS would refuse at deploy is refused here at start-up.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::event_source::SqsSource;
use crate::instance::FunctionConfig;
use crate::stack::StackContext;
use crate::template::SqsEventSpec;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("function {function}, event {event}: {source}")]
    Resolve { function: String, event: String, source: crate::stack::StackError },
    #[error("function {function}, event {event}: queue {queue}: {message}")]
    Queue { function: String, event: String, queue: String, message: String },
    /// "The visibility timeout of the queue must be at least the function timeout" (Lambda's SQS guide);
    /// the second sentence is CreateEventSourceMapping's own error text.
    #[error(
        "function {function}, event {event}: queue {queue} has a visibility timeout of {visibility} s, less than \
         the function timeout of {timeout} s; AWS refuses this event source mapping (InvalidParameterValueException: \
         Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds)"
    )]
    VisibilityTooShort { function: String, event: String, queue: String, visibility: u64, timeout: u64 },
}

/// Resolves `event` of `function` to the queue it polls, refusing what AWS would refuse.
pub async fn resolve(
    sqs: &aws_sdk_sqs::Client,
    stack: &StackContext,
    function: &FunctionConfig,
    event: &SqsEventSpec,
) -> Result<SqsSource, MappingError> {
    let queue_arn = stack.resolve_string(&event.queue).map_err(|source| MappingError::Resolve {
        function: function.name.clone(),
        event: event.name.clone(),
        source,
    })?;
    let queue_name = queue_arn.rsplit(':').next().unwrap_or(&queue_arn).to_owned();
    let queue_error = |message: String| MappingError::Queue {
        function: function.name.clone(),
        event: event.name.clone(),
        queue: queue_name.clone(),
        message,
    };
    let queue_url = sqs
        .get_queue_url()
        .queue_name(&queue_name)
        .send()
        .await
        .map_err(|e| queue_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
        .queue_url
        .unwrap_or_default();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| queue_error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
    let visibility = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| queue_error("no VisibilityTimeout attribute".into()))?;
    check_visibility(&function.name, &event.name, &queue_name, visibility, function.timeout)?;
    Ok(SqsSource {
        function: function.name.clone(),
        event: event.name.clone(),
        queue_url,
        queue_arn,
        region: stack.region.clone(),
        batch_size: event.batch_size,
        batching_window: Duration::from_secs(event.batching_window_seconds),
        report_batch_item_failures: event.report_batch_item_failures,
    })
}

fn check_visibility(
    function: &str,
    event: &str,
    queue: &str,
    visibility_seconds: u64,
    timeout: Duration,
) -> Result<(), MappingError> {
    let timeout = timeout.as_secs();
    if visibility_seconds < timeout {
        return Err(MappingError::VisibilityTooShort {
            function: function.into(),
            event: event.into(),
            queue: queue.into(),
            visibility: visibility_seconds,
            timeout,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visibility_timeout_below_the_function_timeout_is_refused_naming_everything() {
        assert!(check_visibility("f", "E", "q", 30, Duration::from_secs(30)).is_ok());
        let error = check_visibility("stack-fixture", "Batch", "stack-BatchQueue", 6, Duration::from_secs(30))
            .expect_err("6 s < 30 s");
        let text = error.to_string();
        for part in ["stack-fixture", "Batch", "stack-BatchQueue", "6 s", "30 s", "Queue visibility timeout: 6 seconds"]
        {
            assert!(text.contains(part), "{part} in {text}");
        }
    }
}
