"""The null saga has Nexus's shape (bench/null-saga.py): every topic, queue, subscription, queue policy, log
group and event source mapping of template.yaml exactly as written, every function running the null
responder, and a state machine of the happy path's states exactly as the real one writes them."""

import json
import pathlib
import re
import subprocess
import sys
import tempfile
import unittest

from cfnlint.decode import cfn_yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPE = {"AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Logs::LogGroup",
         "AWS::Lambda::EventSourceMapping"}


def generate(*flags):
    folder = tempfile.mkdtemp()
    out = pathlib.Path(folder) / "null-saga.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "null-saga.py"), str(ROOT / "template.yaml"),
                    str(ROOT / "infra" / "order-saga.asl.json"), str(out), *flags], check=True)
    return json.loads(out.read_text()), definition((pathlib.Path(folder) / "null-saga.asl.json").read_text())


def definition(text):
    """A definition with its bare (numeric) substitutions as 0, the quoted ones left as written."""
    return json.loads(re.sub(r'(?<!")\$\{\w+\}(?!")', "0", text))


class NullSagaShape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nexus = json.loads(json.dumps(cfn_yaml.loads((ROOT / "template.yaml").read_text())))
        cls.null, cls.definition = generate()

    def test_every_topic_queue_subscription_and_event_source_is_nexus_s_own(self):
        nexus, null = self.nexus["Resources"], self.null["Resources"]
        shape = {name for name, r in nexus.items() if r["Type"] in SHAPE}
        self.assertGreaterEqual(len(shape), 60, "topics, queues, subscriptions, policies, log groups, mappings")
        for name in shape:
            self.assertEqual(null.get(name), nexus[name], name)

    def test_every_function_runs_the_null_responder_on_the_same_settings(self):
        nexus, null = self.nexus["Resources"], self.null["Resources"]
        functions = [n for n, r in nexus.items() if r["Type"] == "AWS::Serverless::Function"]
        self.assertEqual(len(functions), 5)
        for name in functions:
            self.assertEqual(null[name]["Metadata"]["BuildProperties"]["Binary"], "null-responder")
            for setting in ("FunctionName", "LoggingConfig"):
                self.assertEqual(null[name]["Properties"][setting], nexus[name]["Properties"][setting], name)
        self.assertEqual(self.null["Globals"]["Function"]["Timeout"], self.nexus["Globals"]["Function"]["Timeout"])
        self.assertNotIn("ORDER_EVENTS_TOPIC_ARN", self.null["Globals"]["Function"]["Environment"]["Variables"])

    def test_the_state_machine_is_the_happy_path_as_written(self):
        real = definition((ROOT / "infra" / "order-saga.asl.json").read_text())
        states = self.definition["States"]
        self.assertEqual(list(states), ["ReserveInventory", "ChargePayment", "DispatchShipping", "CompleteOrder"])
        for name, state in states.items():
            original = dict(real["States"][name])
            original.pop("Catch", None)
            self.assertEqual(state, original, name)
        machine = self.null["Resources"]["OrderSaga"]["Properties"]
        nexus_machine = self.nexus["Resources"]["OrderSaga"]["Properties"]
        for setting in ("Name", "Type", "Logging", "Tracing"):
            self.assertEqual(machine[setting], nexus_machine[setting], setting)

    def test_the_events_variant_publishes_to_the_order_events_topic(self):
        null, _ = generate("--events")
        variables = null["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(variables["ORDER_EVENTS_TOPIC_ARN"], {"Ref": "OrderEventsTopic"})


if __name__ == "__main__":
    unittest.main()
