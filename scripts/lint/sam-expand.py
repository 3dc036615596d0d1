"""Prints template.yaml as CloudFormation deploys it: SAM's transform applied by aws-sam-translator (pinned in
localstack/versions.env; what `sam deploy` and CloudFormation's AWS::Serverless transform run), so tests can
read the IAM roles and policies SAM generates, not only the ones the template spells out.

Usage: sam-expand.py TEMPLATE  (JSON on stdout). Local code paths become placeholder S3 URIs, as `sam
validate` does: the translator only names the code, it never reads it.
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicyNames:
    """The template names no managed policy by name; the translator asks IAM for the names otherwise."""

    def load(self):
        return {}


def main(path):
    with open(path, encoding="utf-8") as source:
        template = yaml_parse(source.read())
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = f"s3://placeholder/{name}"
        if resource.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = f"s3://placeholder/{name}"
    # The translator takes its region from a boto session; any region expands the same policies.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    pseudo = {"AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::AccountId": "000000000000"}
    json.dump(transform(template, pseudo, NoManagedPolicyNames()), sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
