"""The JSONPath parse cache of localstack_main.py answers exactly as fresh parses do, for every path of the
saga's state machine, used over and over on changing data (a cached parse is shared by every execution)."""

import json
import pathlib
import re
import unittest

import jsonpath_ng
import jsonpath_ng.ext

import localstack_main

ROOT = pathlib.Path(__file__).resolve().parents[2]


def state_machine_paths() -> set[str]:
    text = (ROOT / "infra" / "order-saga.asl.json").read_text()
    # Every "….$": "<path>" parameter, and every *Path field.
    paths = set(re.findall(r'"[^"]+\.\$"\s*:\s*"([^"]+)"', text))
    paths |= {v for k, v in re.findall(r'"(\w*Path)"\s*:\s*"([^"]+)"', text)}
    return {p for p in paths if p.startswith("$")}


class CachedParsing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Kept in a dict: a function stored as a class attribute would be bound as a method.
        cls.fresh = {"ext": jsonpath_ng.ext.parse, "plain": jsonpath_ng.parse}
        localstack_main.cache_jsonpath_parsing()

    @classmethod
    def tearDownClass(cls):
        jsonpath_ng.ext.parse, jsonpath_ng.parse = cls.fresh["ext"], cls.fresh["plain"]

    def test_the_state_machine_has_paths(self):
        self.assertGreaterEqual(len(state_machine_paths()), 4, state_machine_paths())

    def test_cached_parses_find_what_fresh_ones_find(self):
        for path in sorted(state_machine_paths()):
            for n in range(3):
                data = {"orderId": f"o-{n}", "correlationId": f"c-{n}", "error": {"Error": f"E{n}"},
                        "Execution": {"Id": f"x-{n}"}, "Task": {"Token": f"t-{n}"}}
                cached = [m.value for m in jsonpath_ng.ext.parse(path.replace("$$", "$")).find(data)]
                fresh = [m.value for m in self.fresh["ext"](path.replace("$$", "$")).find(data)]
                self.assertEqual(cached, fresh, path)

    def test_a_cached_result_path_updates_each_input_alone(self):
        first, second = {"a": 1}, {"a": 2}
        jsonpath_ng.parse("$.error").update_or_create(first, {"Error": "X"})
        jsonpath_ng.parse("$.error").update_or_create(second, {"Error": "Y"})
        self.assertEqual((first, second), ({"a": 1, "error": {"Error": "X"}}, {"a": 2, "error": {"Error": "Y"}}))
        self.assertIs(jsonpath_ng.parse("$.error"), jsonpath_ng.parse("$.error"), "parsed once")


if __name__ == "__main__":
    unittest.main()
