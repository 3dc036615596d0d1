"""Creates the template's CloudWatch dashboards on LocalStack, whose CloudFormation skips
AWS::CloudWatch::Dashboard ("not supported but was deployed as a fallback") although its CloudWatch API has
PutDashboard. Resolves the body's Fn::Sub against the deployed stack, as CloudFormation would, and puts it.

usage: put-dashboard.py TEMPLATE STACK_NAME REGION  (stack resources JSON on stdin)
prints one `name<TAB>body` line per dashboard.
"""
import json
import re
import sys

import yaml


class CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
        return {name: value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _intrinsic)


def main():
    template_path, stack, region = sys.argv[1:4]
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in json.load(sys.stdin)["StackResources"]}
    with open(template_path) as f:
        template = yaml.load(f, Loader=CfnLoader)

    def resolve(value, local):
        if isinstance(value, str):
            return value
        if "Fn::Sub" in value:
            spec = value["Fn::Sub"]
            text, extra = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])
            names = dict(local)
            names.update({k: resolve(v, local) for k, v in extra.items()})
            return re.sub(r"\$\{([^}!]+)\}", lambda m: lookup(m.group(1), names), text)
        raise SystemExit(f"cannot resolve {value}")

    def lookup(name, names):
        if name in names:
            return names[name]
        if "." in name:
            resource, attribute = name.split(".", 1)
            if attribute == "QueueName":
                return physical[resource].rstrip("/").rsplit("/", 1)[-1]
            raise SystemExit(f"attribute {name} is not resolvable here")
        return physical[name]

    pseudo = {"AWS::Region": region, "AWS::StackName": stack, "AWS::Partition": "aws"}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Dashboard":
            continue
        props = resource["Properties"]
        name = resolve(props["DashboardName"], pseudo)
        body = json.loads(resolve(props["DashboardBody"], pseudo))
        print(f"{name}\t{json.dumps(body, separators=(',', ':'))}")


if __name__ == "__main__":
    main()
