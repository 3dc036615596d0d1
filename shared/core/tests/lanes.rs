//! The VIP lanes, read from `template.yaml` as SNS would apply its filter policies: every command the state
//! machine sends (each carries the order's `tier` attribute) reaches exactly one queue, the VIP lane's for a
//! VIP order and the standard one otherwise (also when the attribute is missing, so nothing is dropped);
//! every submission reaches the standard intake queue, a VIP one the VIP lane too; and each VIP queue has
//! its DLQ and is consumed by the same function as its standard twin, through a mapping of its own.

mod common;

use nexus_core::domain::checkout::Tier;
use nexus_core::domain::messages::{CommandName, attributes};
use serde_yaml_ng::Value;

fn tier(tier: Tier) -> String {
    serde_json::to_value(tier).expect("json").as_str().expect("a string").to_owned()
}

/// `!Ref X` / `!GetAtt X.Attr` → X.
fn target(value: &Value) -> Option<String> {
    let Value::Tagged(tagged) = value else { return None };
    Some(tagged.value.as_str()?.split('.').next()?.to_owned())
}

/// Whether a filter policy's condition list (strings, or `{exists: bool}`) matches `value` (None: absent).
fn matches(conditions: &Value, value: Option<&str>) -> bool {
    conditions.as_sequence().expect("a list of conditions").iter().any(|condition| match condition {
        Value::String(text) => value == Some(text.as_str()),
        Value::Mapping(_) => condition["exists"].as_bool().expect("only exists") == value.is_some(),
        other => panic!("unsupported condition {other:?}"),
    })
}

/// Every SNS→SQS subscription: (topic, queue, scope, policy).
fn subscriptions(template: &Value) -> Vec<(String, String, String, Value)> {
    let resources = template["Resources"].as_mapping().expect("Resources");
    resources
        .values()
        .filter(|r| r["Type"] == "AWS::SNS::Subscription" && r["Properties"]["Protocol"] == "sqs")
        .map(|r| {
            let p = &r["Properties"];
            let scope = p["FilterPolicyScope"].as_str().unwrap_or("MessageAttributes").to_owned();
            (
                target(&p["TopicArn"]).expect("topic"),
                target(&p["Endpoint"]).expect("queue"),
                scope,
                p["FilterPolicy"].clone(),
            )
        })
        .collect()
}

/// The queues a message with these attributes (`tier` None: without one) reaches.
fn routed(template: &Value, command: CommandName, tier: Option<&str>) -> Vec<String> {
    subscriptions(template)
        .into_iter()
        .filter(|(topic, _, scope, policy)| {
            topic.ends_with("CommandsTopic")
                && scope == "MessageAttributes"
                && policy.as_mapping().is_some_and(|policy| {
                    policy.iter().all(|(key, conditions)| match key.as_str() {
                        Some(attributes::COMMAND) => matches(conditions, Some(command.as_str())),
                        Some(attributes::TIER) => matches(conditions, tier),
                        other => panic!("a filter on {other:?}"),
                    })
                })
        })
        .map(|(_, queue, _, _)| queue)
        .collect()
}

#[test]
fn every_command_reaches_exactly_one_queue_of_its_lane() {
    let template = common::template();
    for command in CommandName::ALL {
        let vip = routed(&template, command, Some(&tier(Tier::Vip)));
        let standard = routed(&template, command, Some(&tier(Tier::Standard)));
        let untiered = routed(&template, command, None);
        assert_eq!(vip.len(), 1, "{command:?} of a VIP order reaches {vip:?}");
        assert_eq!(standard.len(), 1, "{command:?} of a standard order reaches {standard:?}");
        assert!(vip[0].ends_with("VipQueue"), "{command:?}: {vip:?}");
        assert_eq!(vip[0].replace("VipQueue", "Queue"), standard[0], "{command:?}: the lanes are twins");
        assert_eq!(untiered, standard, "{command:?} without a tier goes to the standard lane, never nowhere");
    }
}

#[test]
fn submissions_all_reach_the_standard_intake_and_vip_ones_their_lane_too() {
    let template = common::template();
    let intake: Vec<_> = subscriptions(&template).into_iter().filter(|(topic, ..)| topic == "OrdersTopic").collect();
    let standard = intake.iter().find(|(_, queue, ..)| queue == "OrderIntakeQueue").expect("standard intake");
    assert!(standard.3.is_null(), "the standard intake takes every message (junk included): {:?}", standard.3);
    let vip = intake.iter().find(|(_, queue, ..)| queue == "OrderIntakeVipQueue").expect("VIP intake");
    assert_eq!(vip.2, "MessageBody", "submissions carry their tier in the body");
    assert!(matches(&vip.3["tier"], Some(&tier(Tier::Vip))) && !matches(&vip.3["tier"], Some(&tier(Tier::Standard))));
}

#[test]
fn each_vip_queue_has_a_dlq_and_a_mapping_of_its_own_to_its_twins_function() {
    let template = common::template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mappings: Vec<(String, String)> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .map(|r| {
            let p = &r["Properties"];
            (target(&p["EventSourceArn"]).expect("queue"), target(&p["FunctionName"]).expect("function"))
        })
        .collect();
    let function_of = |queue: &str| mappings.iter().find(|(q, _)| q == queue).map(|(_, f)| f.clone());
    let vip_queues: Vec<String> = resources
        .keys()
        .filter_map(Value::as_str)
        .filter(|name| name.ends_with("VipQueue"))
        .map(str::to_owned)
        .collect();
    assert_eq!(vip_queues.len(), 5, "intake, order commands, inventory, payment, shipping: {vip_queues:?}");
    for queue in vip_queues {
        let redrive = &template["Resources"][queue.as_str()]["Properties"]["RedrivePolicy"];
        assert_eq!(target(&redrive["deadLetterTargetArn"]), Some(queue.replace("Queue", "Dlq")), "{queue}");
        let twin = queue.replace("VipQueue", "Queue");
        assert!(function_of(&queue).is_some(), "{queue} has no mapping");
        assert_eq!(function_of(&queue), function_of(&twin), "{queue} is consumed as {twin} is");
    }
}

#[test]
fn order_intake_tells_every_order_commands_lane_from_its_submissions() {
    let template = common::template();
    // The queues the order commands topic feeds: both lanes.
    let mut command_queues: Vec<String> = subscriptions(&template)
        .into_iter()
        .filter(|(topic, ..)| topic == "OrderCommandsTopic")
        .map(|(_, queue, ..)| queue)
        .collect();
    command_queues.sort();
    let variables = &template["Resources"]["OrderIntakeFunction"]["Properties"]["Environment"]["Variables"];
    let Value::Tagged(join) = &variables["ORDER_COMMANDS_QUEUE_ARNS"] else { panic!("a !Join of queue ARNs") };
    let listed = join.value.as_sequence().expect("[separator, list]")[1].as_sequence().expect("list");
    let mut named: Vec<String> = listed.iter().filter_map(target).collect();
    named.sort();
    assert_eq!(named, command_queues, "a commands queue intake does not know would be read as submissions");
}

/// Admission control as the template wires it: order-intake gets the bound and its own queue to wait in,
/// may write the saga slots item and no other settings item, and may send only to its queue and its DLQ.
#[test]
fn order_intake_is_given_the_bound_its_queue_and_the_slots_item_only() {
    use nexus_core::domain::admission::{MAX_STANDARD_SAGAS, SAGA_SLOTS_ITEM};
    let template = common::template();
    let parameter = &template["Parameters"]["StandardSagaLimit"];
    assert_eq!(parameter["MaxValue"].as_u64(), Some(u64::from(MAX_STANDARD_SAGAS)));
    assert_eq!(parameter["Default"].as_u64(), Some(0), "no bound unless a stack asks for one");

    let function = &template["Resources"]["OrderIntakeFunction"]["Properties"];
    let variables = &function["Environment"]["Variables"];
    assert_eq!(target(&variables["STANDARD_SAGA_LIMIT"]).as_deref(), Some("StandardSagaLimit"));
    assert_eq!(target(&variables["INTAKE_QUEUE_URL"]).as_deref(), Some("OrderIntakeQueue"));

    let role = target(&function["Role"]).expect("an explicit role");
    let statements = template["Resources"][role.as_str()]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements")
        .clone();
    let on = |action: &str| -> Vec<&Value> {
        statements
            .iter()
            .filter(|s| s["Action"].as_sequence().is_some_and(|a| a.iter().any(|a| a.as_str() == Some(action))))
            .collect()
    };
    let settings_writes: Vec<_> = on("dynamodb:UpdateItem")
        .into_iter()
        .filter(|s| target(&s["Resource"]).as_deref() == Some("SettingsTable"))
        .collect();
    assert_eq!(settings_writes.len(), 1, "one statement writes the settings table");
    let keys = &settings_writes[0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
    assert_eq!(keys.as_sequence().map(Vec::len), Some(1));
    assert_eq!(keys[0].as_str(), Some(SAGA_SLOTS_ITEM), "the slots item, and no other (not the chaos settings)");
    let mut sends: Vec<String> = on("sqs:SendMessage").iter().filter_map(|s| target(&s["Resource"])).collect();
    sends.sort();
    assert_eq!(sends, ["OrderIntakeDlq", "OrderIntakeQueue"]);
}
