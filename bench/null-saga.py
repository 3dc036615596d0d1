"""Writes the null saga's template (`nexus bench`'s ceiling) from template.yaml and infra/order-saga.asl.json,
so its shape cannot drift from Nexus's: the same topics, queues, DLQs, subscriptions (filter policies, raw
delivery), queue policies, log groups, functions and event source mappings (batch size, window, concurrency),
with every function running `null-responder` (bench/null-responder); and a state machine of the same name with
the happy path's states as they are (the four callback tasks with their messages, message attributes and
retries, the last task's End), the compensation branches dropped. No tables, no secrets, no
alarms: nothing the null saga would use.

With `--events`, the responder also publishes one event per hop (the submission and each command) to the
order events topic, as Nexus publishes one per status change, and the notification function's queue gets them:
the ceiling with Nexus's event fan-out.

Usage: null-saga.py TEMPLATE ASL OUT.json [--events]  (a JSON template, which CloudFormation and the function
host read, and its definition beside it as OUT.asl.json).
"""

import json
import os
import pathlib
import re
import sys

from cfnlint.decode import cfn_yaml

KEPT_TYPES = {
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::Logs::LogGroup",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Serverless::Function",
}
STATE_MACHINE = "OrderSaga"
RESPONDER = "null-responder"


def references(node):
    """Every logical id a piece of template refers to (Ref, GetAtt, Sub)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield (value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", text)
                if isinstance(value, list):
                    yield from references(value[1])
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def happy_path(asl):
    """The states an order completing visits, in the real definition's own words, without the Catches that
    lead to compensations: its tasks, the last of which ends the execution."""
    states = asl["States"]
    path, name = {}, asl["StartAt"]
    while name:
        state = dict(states[name])
        state.pop("Catch", None)
        path[name] = state
        name = state.get("Next")
    tasks = [n for n, s in path.items() if s["Type"] == "Task"]
    if len(tasks) != 4 or len(path) != 4 or path[tasks[-1]].get("End") is not True:
        sys.exit(f"null-saga.py: the happy path is no longer 4 tasks, the last one ending it: {list(path)}")
    return dict(asl, Comment="The null saga: Nexus's happy path, every task answered at once.", States=path)


def main(template_path, asl_path, out_path, events=False):
    template = json.loads(json.dumps(cfn_yaml.loads(pathlib.Path(template_path).read_text(encoding="utf-8"))))
    # ${Name} placeholders are DefinitionSubstitutions, some where a number goes: parse with the bare ones
    # held as strings, and write them back bare.
    asl_text = pathlib.Path(asl_path).read_text(encoding="utf-8")
    held = re.sub(r'(?<!")\$\{(\w+)\}(?!")', r'"@@\1@@"', asl_text)
    definition = re.sub(r'"@@(\w+)@@"', r"${\1}", json.dumps(happy_path(json.loads(held)), indent=1))
    asl_out = out_path.rsplit(".", 1)[0] + ".asl.json"
    pathlib.Path(asl_out).write_text(definition, encoding="utf-8")

    resources = template["Resources"]
    kept = {}
    for name, resource in resources.items():
        if resource["Type"] not in KEPT_TYPES:
            continue
        resource = json.loads(json.dumps(resource))
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Metadata"] = {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": RESPONDER}}
            resource["Properties"].pop("Environment", None)
            resource["Properties"].pop("Role", None)
            # Absolute: the generated template lives elsewhere, and `cloudformation package` reads CodeUri.
            resource["Properties"]["CodeUri"] = os.path.join(os.path.dirname(os.path.abspath(template_path)), "bench", RESPONDER)
        kept[name] = resource
    machine = json.loads(json.dumps(resources[STATE_MACHINE]))
    properties = machine["Properties"]
    properties["DefinitionUri"] = asl_out.rsplit("/", 1)[-1]
    used = set(re.findall(r"\$\{(\w+)\}", definition))
    properties["DefinitionSubstitutions"] = {k: v for k, v in properties["DefinitionSubstitutions"].items() if k in used}
    kept[STATE_MACHINE] = machine
    # Whatever the kept resources refer to comes along (the state machine's role and log group, ...).
    todo = list(kept)
    while todo:
        for ref in references(kept[todo.pop()]):
            if ref in resources and ref not in kept:
                kept[ref] = resources[ref]
                todo.append(ref)
    missing = {ref for r in kept.values() for ref in references(r)} - set(kept) - set(template["Parameters"])
    missing = {m for m in missing if not m.startswith("AWS::")}
    if missing:
        sys.exit(f"null-saga.py: the null saga refers to resources it does not have: {sorted(missing)}")

    globals_ = json.loads(json.dumps(template["Globals"]))
    variables = {"RUST_LOG": "info", "STATE_MACHINE_ARN": {"Ref": STATE_MACHINE}}
    if events:
        variables["ORDER_EVENTS_TOPIC_ARN"] = {"Ref": "OrderEventsTopic"}
    globals_["Function"]["Environment"] = {"Variables": variables}
    outputs = {
        key: value
        for key, value in template["Outputs"].items()
        if set(references(value)) <= set(kept) | set(template["Parameters"])
    }
    null = {
        "AWSTemplateFormatVersion": template["AWSTemplateFormatVersion"],
        "Transform": template["Transform"],
        "Description": "nexus bench: the null saga, Nexus's shape doing no work (generated by bench/null-saga.py)",
        "Parameters": template["Parameters"],
        "Conditions": template["Conditions"],
        "Globals": globals_,
        "Resources": kept,
        "Outputs": outputs,
    }
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(null, out, indent=1)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[4:] not in ([], ["--events"]):
        sys.exit("usage: null-saga.py TEMPLATE ASL OUT.json [--events]")
    main(*sys.argv[1:4], events=sys.argv[4:] == ["--events"])
