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
