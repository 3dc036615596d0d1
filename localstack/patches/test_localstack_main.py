"""The caches of localstack_main.py answer as the work they save would: the JSONPath parses find exactly what
fresh parses find, for every path of the saga's state machine, used over and over on changing data (a cached
parse is shared by every execution); each execution gets a program of its own, equal to a fresh parse of the
definition, parsed once; a task's client is reused only for the same service, region and role, and only for
a while; a task token is looked up while an execution starts, and a task failure only in running executions
with a worker; execution logs go out in timestamp order; SQS's metrics are summed, not dropped; garbage is still
collected, in fewer passes, and what start-up built is frozen once LocalStack is ready; the version installed is
the one the patches were validated on."""

import pathlib
import re
import types
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


def saga_definition() -> str:
    """The saga's definition as CloudFormation substitutes it."""
    text = (ROOT / "infra" / "order-saga.asl.json").read_text()
    numbers = {"StepRetryAttempts": "3", "CompensationRetryAttempts": "2", "RetryMaxDelaySeconds": "10", "SagaTimeoutSeconds": "600"}
    text = re.sub(r"\$\{(\w+)\}", lambda m: numbers.get(m.group(1), "FULL" if m.group(1) == "RetryJitterStrategy"
                  else f"arn:aws:sns:us-east-1:000000000000:{m.group(1)}"), text)
    return text


def shape(program) -> list:
    """What an execution runs: each state's name, kind, and (for a task) its resource and retries."""
    states = program.states.states
    return [(name, type(state).__name__, getattr(getattr(state, "resource", None), "resource_arn", None),
             len(getattr(getattr(state, "retry", None), "retriers", []) or []))
            for name, state in sorted(states.items())]


class CachedDefinitionParsing(unittest.TestCase):
    def test_each_execution_gets_its_own_copy_of_one_parse(self):
        from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser
        from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker

        fresh, original = AmazonStateLanguageParser.parse, ExecutionWorker._get_evaluation_entrypoint
        parses = []

        def counted(definition):
            parses.append(definition)
            return fresh(definition)

        AmazonStateLanguageParser.parse = staticmethod(counted)
        try:
            localstack_main.cache_definition_parsing()
            definition = saga_definition()
            worker = types.SimpleNamespace(_evaluation_details=types.SimpleNamespace(
                state_machine_details=types.SimpleNamespace(definition=definition)))
            first = ExecutionWorker._get_evaluation_entrypoint(worker)
            second = ExecutionWorker._get_evaluation_entrypoint(worker)
        finally:
            AmazonStateLanguageParser.parse, ExecutionWorker._get_evaluation_entrypoint = fresh, original
        self.assertEqual(len(parses), 1, "parsed once")
        self.assertTrue(first is not second, "each execution has a program of its own")
        self.assertTrue(first.states.states["ReserveInventory"] is not second.states.states["ReserveInventory"],
                        "no component shared between executions")
        expected = shape(fresh(definition)[0])
        self.assertEqual(shape(first), expected)
        self.assertEqual(shape(second), expected)
        # The comparison sees what matters (else equal shapes would prove nothing).
        self.assertIn(("CompleteOrder", "StateTaskServiceSns", "arn:aws:states:::sns:publish.waitForTaskToken", 2), expected)


class CachedTaskClients(unittest.TestCase):
    def test_a_client_is_reused_for_the_same_service_region_and_role_for_a_while(self):
        from localstack.services.stepfunctions.asl.utils import boto_client

        original, built, now = boto_client.boto_client_for, [], [0.0]

        def build(service, region, credentials):
            built.append((service, region, credentials.role_arn))
            return object()

        boto_client.boto_client_for = build
        try:
            localstack_main.cache_task_clients(clock=lambda: now[0])
            role = types.SimpleNamespace(role_arn="arn:aws:iam::000000000000:role/saga")
            other = types.SimpleNamespace(role_arn="arn:aws:iam::000000000000:role/other")
            first = boto_client.boto_client_for("sns", "us-east-1", role)
            self.assertIs(boto_client.boto_client_for("sns", "us-east-1", role), first)
            self.assertIsNot(boto_client.boto_client_for("sns", "eu-west-1", role), first)
            self.assertIsNot(boto_client.boto_client_for("sqs", "us-east-1", role), first)
            self.assertIsNot(boto_client.boto_client_for("sns", "us-east-1", other), first)
            now[0] = localstack_main.CLIENT_SECONDS + 1
            self.assertIsNot(boto_client.boto_client_for("sns", "us-east-1", role), first, "renewed after a while")
        finally:
            boto_client.boto_client_for = original
        self.assertEqual(len(built), 5)


class BatchedExecutionLogs(unittest.TestCase):
    def test_each_execution_s_events_are_put_together_in_order_and_a_failure_stops_no_other(self):
        import datetime
        import threading
        import time

        from localstack.services.stepfunctions.asl.eval.event.logging import CloudWatchLoggingSession

        original = CloudWatchLoggingSession.publish_history_log
        put, done = [], threading.Event()

        class Session:
            def __init__(self, name, fails=False):
                self.name, self.fails = name, fails

            def _publish_history_log_or_setup(self, log_events):
                if self.fails:
                    raise RuntimeError("no such log group")
                put.append((self.name, [e["message"] for e in log_events]))
                if sum(len(m) for _, m in put) == 5:
                    done.set()

        try:
            localstack_main.batch_execution_logs(flush_seconds=0.05)
            first, second, broken = Session("first"), Session("second"), Session("broken", fails=True)
            at = datetime.datetime.now(datetime.timezone.utc)
            # The clock stepped back between first's events 1 and 2: the batch is put in timestamp order
            # (CloudWatch Logs refuses one that goes back in time).
            earlier = at - datetime.timedelta(seconds=5)
            for session, n, when in [
                (broken, 0, at), (first, 1, at), (second, 1, at), (first, 2, earlier), (first, 3, at), (second, 2, at)
            ]:
                CloudWatchLoggingSession.publish_history_log(session, {"event_timestamp": when, "id": n})
            self.assertTrue(done.wait(5), put)
        finally:
            CloudWatchLoggingSession.publish_history_log = original
        ids = {name: [int(m.rsplit(":", 1)[1].rstrip("}")) for m in messages] for name, messages in put}
        self.assertEqual(ids, {"first": [2, 1, 3], "second": [1, 2]}, "by timestamp, one put per execution")
        self.assertEqual(len(put), 2)


class EnvironmentsBuiltWithWorkers(unittest.TestCase):
    def test_a_task_token_is_looked_up_while_an_execution_starts(self):
        import datetime

        from localstack.aws.api.stepfunctions import ExecutionStatus, InvalidToken
        from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker
        from localstack.services.stepfunctions.provider import StepFunctionsProvider

        details = types.SimpleNamespace(
            aws_execution_details=types.SimpleNamespace(account="000000000000", region="us-east-1",
                                                        role_arn="arn:aws:iam::000000000000:role/saga"),
            execution_details=types.SimpleNamespace(arn="arn:execution", inpt={}, name="o-1",
                                                    role_arn="arn:aws:iam::000000000000:role/saga",
                                                    start_time=datetime.datetime.now(datetime.timezone.utc)),
            state_machine_details=types.SimpleNamespace(arn="arn:saga", name="saga", typ="STANDARD",
                                                        definition=saga_definition()),
        )
        original = ExecutionWorker.__init__, ExecutionWorker._get_evaluation_environment
        try:
            localstack_main.build_environments_with_workers()
            # Listed as running, its thread not yet run: as StartExecution leaves it for a moment.
            worker = ExecutionWorker(details, exec_comm=None, cloud_watch_logging_session=None, activity_store={})
            starting = types.SimpleNamespace(exec_status=ExecutionStatus.RUNNING, exec_worker=worker)
            provider = StepFunctionsProvider.__new__(StepFunctionsProvider)  # only its token lookup is used
            provider.get_store = lambda context: types.SimpleNamespace(executions={"arn:execution": starting})
            with self.assertRaises(InvalidToken, msg="not a 500: no execution holds the token yet"):
                provider.send_task_success(None, task_token="t-1", output="{}")
            self.assertIs(worker._get_evaluation_environment(), worker.env, "the thread runs in the same one")
        finally:
            ExecutionWorker.__init__, ExecutionWorker._get_evaluation_environment = original


class TaskFailuresInRunningExecutions(unittest.TestCase):
    def test_a_failure_is_answered_by_running_executions_that_have_a_worker_only(self):
        from localstack.aws.api.stepfunctions import ExecutionStatus, InvalidToken
        from localstack.services.stepfunctions import provider as module

        original = module.StepFunctionsProvider.send_task_failure
        notified = []

        class Callbacks:
            def notify(self, callback_id, outcome):
                notified.append((callback_id, outcome.error))
                return callback_id == "t-1"

        with_worker = types.SimpleNamespace(env=types.SimpleNamespace(callback_pool_manager=Callbacks()))
        running = types.SimpleNamespace(exec_status=ExecutionStatus.RUNNING, exec_worker=with_worker)
        starting = types.SimpleNamespace(exec_status=ExecutionStatus.RUNNING, exec_worker=None)
        ended = types.SimpleNamespace(exec_status=ExecutionStatus.SUCCEEDED, exec_worker=None)
        try:
            localstack_main.answer_failures_in_running_executions()
            provider = module.StepFunctionsProvider.__new__(module.StepFunctionsProvider)
            store = types.SimpleNamespace(executions={"a": ended, "b": starting, "c": running})
            provider.get_store = lambda context: store
            provider.send_task_failure(None, task_token="t-1", error="Saga.Transient", cause="c")
            self.assertEqual(notified, [("t-1", "Saga.Transient")], "only the running execution with a worker")
            with self.assertRaises(InvalidToken, msg="not a 500 from an execution without a worker"):
                provider.send_task_failure(None, task_token="t-2", error="E", cause="c")
        finally:
            module.StepFunctionsProvider.send_task_failure = original


class LauncherMarker(unittest.TestCase):
    def test_the_internal_routes_say_nexus_started_it_and_whether_patched(self):
        from localstack.services import internal

        original = internal.LocalstackResources.add_default_routes
        try:
            localstack_main.mark_the_launcher(False, "1.2.3")
            router = internal.LocalstackResources()
            from localstack.http import Request

            response = router.dispatch(Request("GET", localstack_main.MARKER_PATH))
            self.assertEqual(response.status_code, 200)
            self.assertEqual(
                response.json,
                {"launcher": "nexus", "patched": False, "localstackVersion": "1.2.3",
                 "validatedVersion": localstack_main.VALIDATED_VERSION},
            )
        finally:
            internal.LocalstackResources.add_default_routes = original


class ValidatedVersion(unittest.TestCase):
    def test_the_installed_version_is_the_one_the_patches_were_validated_on(self):
        pinned = re.search(r"^LOCALSTACK_VERSION=(.+)$", (ROOT / "localstack" / "versions.env").read_text(), re.M)
        self.assertEqual(
            pinned.group(1),
            localstack_main.VALIDATED_VERSION,
            "versions.env installs another LocalStack: read the patches against its source, validate them, then "
            "raise VALIDATED_VERSION (until then it starts unpatched)",
        )


class SummedSqsMetrics(unittest.TestCase):
    def test_each_queue_s_metrics_are_put_as_statistic_sets_once_per_flush(self):
        from localstack.services.sqs.provider import CloudwatchDispatcher

        puts = []

        class CloudWatch:
            def __init__(self, account_id, region):
                self.where = (account_id, region)

            def put_metric_data(self, Namespace, MetricData):
                if self.where[1] == "broken-1":
                    raise RuntimeError("no such region")
                puts.append((self.where, Namespace, MetricData))

        original = CloudwatchDispatcher.dispatch_sqs_metric
        sums = localstack_main.SqsMetricSums(cloudwatch_for=CloudWatch)
        running, stopped = types.SimpleNamespace(running=True), types.SimpleNamespace(running=False)
        try:
            localstack_main.aggregate_sqs_metrics(sums, flush_seconds=3600)  # put below, not by its thread
            dispatch = CloudwatchDispatcher.dispatch_sqs_metric
            dispatch(running, "1", "broken-1", "orders", "NumberOfMessagesSent")
            for size in (10, 30, 20):
                dispatch(running, "1", "us-east-1", "orders", "NumberOfMessagesSent")
                dispatch(running, "1", "us-east-1", "orders", "SentMessageSize", value=size, unit="Bytes")
            dispatch(running, "1", "us-east-1", "payments", "NumberOfMessagesSent")
            dispatch(running, "2", "eu-west-1", "orders", "NumberOfMessagesDeleted")
            dispatch(stopped, "1", "us-east-1", "orders", "NumberOfMessagesSent")
        finally:
            CloudwatchDispatcher.dispatch_sqs_metric = original
        sums.put()
        self.assertEqual(len(puts), 2, "one put per account and region; a failing one stops no other")
        sums.put()
        self.assertEqual(len(puts), 2, "nothing put twice")

        def sets(where):
            [(namespace, data)] = [(namespace, data) for w, namespace, data in puts if w == where]
            self.assertEqual(namespace, "AWS/SQS")
            return {(d["Dimensions"][0]["Value"], d["MetricName"], d["Unit"]): d["StatisticValues"] for d in data}

        self.assertEqual(sets(("1", "us-east-1")), {
            ("orders", "NumberOfMessagesSent", "Count"): {"SampleCount": 3, "Sum": 3, "Minimum": 1, "Maximum": 1},
            ("orders", "SentMessageSize", "Bytes"): {"SampleCount": 3, "Sum": 60, "Minimum": 10, "Maximum": 30},
            ("payments", "NumberOfMessagesSent", "Count"): {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1},
        })
        self.assertEqual(sets(("2", "eu-west-1")), {
            ("orders", "NumberOfMessagesDeleted", "Count"): {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1},
        })


class FewerCollections(unittest.TestCase):
    def test_garbage_is_still_collected_only_in_fewer_passes(self):
        import gc
        import weakref

        import threading

        before, frozen = gc.get_threshold(), gc.get_freeze_count()
        ready = threading.Event()
        try:
            freezer = localstack_main.collect_garbage_less(young_threshold=5_000, ready=ready)
            self.assertEqual(gc.get_threshold(), (5_000, *before[1:]))
            built_at_start_up = [[] for _ in range(1_000)]
            self.assertEqual(gc.get_freeze_count(), frozen, "nothing frozen before LocalStack is ready")
            ready.set()
            freezer.join(5)
            self.assertGreaterEqual(
                gc.get_freeze_count(), frozen + len(built_at_start_up), "what start-up built is frozen"
            )

            class Node:
                pass

            def cycle():
                node = Node()
                node.self = node
                return weakref.ref(node)

            passes = gc.get_stats()[0]["collections"]
            dead = cycle()
            self.assertIsNotNone(dead(), "a cycle outlives its last reference until a collection")
            keep = [[] for _ in range(4_000)]  # fewer allocations than the threshold: no pass yet
            self.assertEqual(gc.get_stats()[0]["collections"], passes)
            self.assertIsNotNone(dead())
            keep += [[] for _ in range(2_000)]  # past it: collected
            self.assertGreater(gc.get_stats()[0]["collections"], passes)
            self.assertIsNone(dead(), "the cycle was collected")
        finally:
            gc.unfreeze()
            gc.set_threshold(*before)


if __name__ == "__main__":
    unittest.main()
