use super::*;
use serde_json::json;

struct Max;
impl Draw for Max {
    fn below(&mut self, max: u64) -> u64 {
        max
    }
}

fn machine() -> StateMachine {
    let definition = json!({
        "StartAt": "Start",
        "TimeoutSeconds": 100,
        "States": {
            "Start": {"Type": "Choice", "Choices": [{"Variable": "$.resume", "IsPresent": true, "Next": "Undo"}], "Default": "Do"},
            "Do": {
                "Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {"TopicArn": "${Topic}", "Message": {"id.$": "$.id", "token.$": "$$.Task.Token", "exec.$": "$$.Execution.Id"},
                               "MessageAttributes": {"id": {"DataType": "String", "StringValue.$": "$.id"}}},
                "TimeoutSeconds": 60, "ResultPath": null,
                "Retry": [{"ErrorEquals": ["No"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0, "MaxDelaySeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Wrap"}],
                "Next": "Done"
            },
            "Wrap": {"Type": "Pass", "Parameters": {"Error": "Wrapped", "Cause.$": "States.JsonToString($.error)"}, "ResultPath": "$.error", "Next": "Undo"},
            "Undo": {"Type": "Fail", "Error": "Undone"},
            "Done": {"Type": "Succeed"}
        }
    });
    let substitutions = BTreeMap::from([("Topic".to_owned(), "topic-a".to_owned())]);
    StateMachine::parse(&definition.to_string(), &substitutions).expect("parses")
}

fn token(effects: &[Effect]) -> String {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Publish { token, .. } => Some(token.clone()),
            _ => None,
        })
        .expect("a publish")
}

#[test]
fn a_task_publishes_its_message_and_succeeds_on_its_answer() {
    let machine = machine();
    let (mut execution, effects) = Execution::start(&machine, ("o-1", "arn:x:o-1"), json!({"id": "o-1"}), 0, &mut Max);
    let Effect::Publish { topic, message, attributes, token } = &effects[0] else { panic!("{effects:?}") };
    assert_eq!(topic, "topic-a");
    let message: Value = serde_json::from_str(message).expect("json");
    assert_eq!((message["id"].as_str(), message["exec"].as_str()), (Some("o-1"), Some("arn:x:o-1")));
    assert_eq!(message["token"].as_str(), Some(token.as_str()));
    assert_eq!(attributes["id"], "o-1");
    assert_eq!(effects[1], Effect::TaskTimeout { token: token.clone(), at: 60_000 });
    let done = execution.answer(&machine, token, Ok(json!({})), 5, &mut Max);
    assert_eq!(done, vec![Effect::Ended(End::Succeeded)]);
    assert!(execution.answer(&machine, token, Ok(json!({})), 6, &mut Max).is_empty(), "answered once");
}

#[test]
fn failures_are_retried_with_capped_backoff_then_caught_and_a_zero_attempt_retrier_catches_at_once() {
    let machine = machine();
    let (mut execution, effects) = Execution::start(&machine, ("o-2", "arn:x:o-2"), json!({"id": "o-2"}), 0, &mut Max);
    let first = token(&effects);
    let retry = execution.time_out(&machine, &first, 60_000, &mut Max);
    assert_eq!(retry, vec![Effect::Wake { wake: 1, at: 61_000 }]);
    let again = execution.wake(&machine, 1, 61_000, &mut Max);
    let second = token(&again);
    assert_ne!(first, second, "a retry is a new task with a new token");
    let retry = execution.answer(&machine, &second, Err(("Boom".into(), "c".into())), 62_000, &mut Max);
    assert_eq!(retry, vec![Effect::Wake { wake: 2, at: 63_000 }], "2 s capped at MaxDelaySeconds 1");
    let third = token(&execution.wake(&machine, 2, 63_000, &mut Max));
    let caught = execution.answer(&machine, &third, Err(("Boom".into(), "last".into())), 64_000, &mut Max);
    assert_eq!(caught, vec![Effect::Ended(End::Failed)], "caught, wrapped, then the Fail state");
    assert_eq!(execution.data["error"]["Error"], "Wrapped");
    assert!(execution.data["error"]["Cause"].as_str().is_some_and(|c| c.contains("last")));

    let (mut refused, effects) = Execution::start(&machine, ("o-3", "arn:x:o-3"), json!({"id": "o-3"}), 0, &mut Max);
    let ended = refused.answer(&machine, &token(&effects), Err(("No".into(), "c".into())), 1, &mut Max);
    assert_eq!(ended, vec![Effect::Ended(End::Failed)], "MaxAttempts 0: straight to the catcher");
}

#[test]
fn the_start_choice_resumes_at_the_compensation_and_a_stop_ends_it() {
    let machine = machine();
    let (_, effects) = Execution::start(&machine, ("r", "arn:x:r"), json!({"id": "r", "resume": "X"}), 0, &mut Max);
    assert_eq!(effects, vec![Effect::Ended(End::Failed)]);
    let (mut running, _) = Execution::start(&machine, ("s", "arn:x:s"), json!({"id": "s"}), 0, &mut Max);
    assert_eq!(running.end(End::Aborted), vec![Effect::Ended(End::Aborted)]);
    assert!(running.end(End::Aborted).is_empty());
}

#[test]
fn a_feature_the_interpreter_does_not_run_is_refused() {
    let map = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}});
    assert!(StateMachine::parse(&map.to_string(), &BTreeMap::new()).is_err());
    let unsubstituted = json!({"StartAt": "T", "States": {"T": {"Type": "Pass", "Comment": "${X}", "End": true}}});
    assert!(StateMachine::parse(&unsubstituted.to_string(), &BTreeMap::new()).is_err());
}
