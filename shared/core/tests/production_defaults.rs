//! What a plain `sam deploy` of `template.yaml` gets, read from the template: no fault injection.

mod common;

#[test]
fn fault_injection_is_off_unless_asked_for() {
    let defaults = common::parameter_defaults();
    assert_eq!(defaults["ChaosEnabled"], "false", "ChaosEnabled defaults to false");
    let template = common::template();
    let variable = &template["Globals"]["Function"]["Environment"]["Variables"]["CHAOS_ENABLED"];
    let serde_yaml_ng::Value::Tagged(reference) = variable else {
        panic!("every function's CHAOS_ENABLED is !Ref ChaosEnabled, found {variable:?}")
    };
    assert_eq!(
        (reference.tag.to_string().as_str(), reference.value.as_str()),
        ("!Ref", Some("ChaosEnabled")),
        "every function's CHAOS_ENABLED is !Ref ChaosEnabled"
    );
}

#[test]
fn data_outlives_the_stack_and_every_hop_is_traced() {
    let template = common::template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut tables = 0;
    for (name, resource) in resources {
        if resource["Type"] == "AWS::DynamoDB::Table" {
            tables += 1;
            assert_eq!(resource["DeletionPolicy"], "Retain", "{name:?} is deleted with the stack");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{name:?} is deleted when replaced");
            assert_eq!(resource["Properties"]["DeletionProtectionEnabled"], true, "{name:?} can be deleted");
        }
        if resource["Type"] == "AWS::Serverless::StateMachine" {
            assert_eq!(resource["Properties"]["Tracing"]["Enabled"], true, "{name:?} is not traced");
        }
    }
    assert!(tables >= 6, "the tables were found");
    assert_eq!(template["Globals"]["Function"]["Tracing"], "Active", "the functions are not traced");
}
