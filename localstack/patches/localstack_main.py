"""Starts LocalStack as `python -m localstack.runtime.main` does, with the local environment's patches of
emulator hot spots, in Step Functions and in its Python runtime (docs/local-environment.md, "The LocalStack
patches"), found by profiling LocalStack (py-spy) under `nexus bench` and the chaos run. Each keeps the
results the same and does less work, except one, which fixes a race (task tokens of starting executions):

- JSONPath: the interpreter calls jsonpath_ng's `parse` for every JSONPath of every state on every visit, and
  each call builds a new PLY parser: about 10 ms per path, several paths per task state. A state machine has
  a fixed set of paths, so the parses are cached (by path string; a parsed path is only read by `find` and
  `update_or_create`).
- The definition: every execution parses its state machine's whole definition with ANTLR before its first
  state (about 100 ms for Nexus's). The parsed program is cached by definition text, and each execution gets
  a deep copy of it (about 5 ms), so no execution shares a component with another.
- Clients for tasks: every task state (an SNS publish here) asks STS to assume the state machine's role and
  builds a new boto client with the credentials it got (about 15 % of LocalStack's CPU under load). The client
  is kept per service, region and role for five minutes.
- Execution logs (`Logging.Level: ALL`): every history event of every execution was put to CloudWatch Logs
  with a PutLogEvents of its own, inside the execution's thread (about a fifth of LocalStack's CPU). They are
  queued and put by one thread, in order, each execution's events of the last 200 ms in one call, as
  Step Functions delivers its vended logs on AWS: shortly after, not inside the state's transition. Each
  batch is put in timestamp order: CloudWatch Logs refuses a batch that goes back in time (as after a clock
  step), and LocalStack would swallow that refusal with the batch's events.
- Task tokens of executions that are starting: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat look
  for the token in every running execution's environment, which the execution's thread only builds once it
  runs, after the execution is already listed as running. A token sent back while any execution was
  starting met `None` and was answered with a 500 InternalError ('NoneType' object has no attribute
  'callback_pool_manager'; 84 to 150 times in one chaos run, each retried by the SDK after a backoff). The
  environment is now built with the execution's worker, before the execution is listed; the thread uses it.
  SendTaskFailure, unlike the other two, scanned every execution the store holds, ended ones and ones whose
  worker is not yet (or no longer) there included: it now looks in running executions that have one.
- SQS's own CloudWatch metrics: every message sent, received or deleted and every empty receive was put to
  CloudWatch (AWS/SQS) with a PutMetricData of its own, each a request through the gateway and a commit to
  CloudWatch's SQLite file (two fifths of LocalStack's CPU under the chaos run, with IN_MEMORY_CLIENT). They
  are summed per queue and metric and put once a second, as statistic sets (sample count, sum, minimum,
  maximum), one request for every queue: sums, counts, averages, minimums and maximums read as before. AWS
  itself publishes SQS metrics as one-minute aggregates.
- The cyclic garbage collector: LocalStack keeps every service's state as Python objects (about 1.5 million
  after one chaos run) and builds large containers per request; CPython collects its youngest generation
  every 2 000 allocations, and under the chaos run its collections took a third of the wall time (timed
  with `gc.callbacks`, finalizers included). It now collects every 100 000: the same garbage is found, in
  fewer passes, and once LocalStack reports itself ready, what its start-up built is frozen out of every
  pass (`gc.freeze`). The same 150-order chaos
  run on a fresh LocalStack: 345 s before, 142 s after.

Pinned: the patch is applied only to the LocalStack version it was read against and validated on
(`VALIDATED_VERSION`, here, not the version `localstack/versions.env` installs: a bump there without
validating the patch again starts LocalStack unpatched, with a warning on stderr and on `make up`'s console).
"""

import copy
import functools
import gc
import os
import runpy
import sys
import threading
import time
from datetime import datetime, timezone
from importlib.metadata import version

# The localstack-core release these patches were read against (its source) and validated on.
VALIDATED_VERSION = "2026.3.0"
# What the patched start-up prints first, and an unpatched one instead (start-localstack.sh reads them).
PATCHED_BANNER = "nexus: patched"
UNPATCHED_BANNER = "nexus: UNPATCHED"
# Where the launcher says it started this LocalStack, and whether patched (`mark_the_launcher`).
MARKER_PATH = "/_localstack/nexus"
# Distinct paths kept parsed: far more than any state machine of ours has.
PARSED_PATHS = 4096
# Definitions kept parsed (one per deployed state machine version).
PARSED_DEFINITIONS = 64
# How long a task's client (and the role credentials in it) is reused; LocalStack's own credentials last hours.
CLIENT_SECONDS = 300.0
# How often queued execution log events are put, and at most how many in one PutLogEvents (AWS takes 10 000).
LOG_FLUSH_SECONDS = 0.2
LOG_BATCH = 1000
# How often SQS's summed per-message metrics are put, and at most how many in one PutMetricData (AWS: 1 000).
SQS_METRIC_FLUSH_SECONDS = 1.0
METRICS_PER_PUT = 1000
# Allocations between two collections of the youngest generation (CPython's default: 2 000).
GC_YOUNG_THRESHOLD = 100_000


def cache_jsonpath_parsing() -> None:
    # Both modules are patched before LocalStack imports them (its modules bind `parse` at import time).
    import jsonpath_ng
    import jsonpath_ng.ext

    jsonpath_ng.parse = functools.lru_cache(maxsize=PARSED_PATHS)(jsonpath_ng.parse)
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=PARSED_PATHS)(jsonpath_ng.ext.parse)


def cache_definition_parsing() -> None:
    from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser
    from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker

    @functools.lru_cache(maxsize=PARSED_DEFINITIONS)
    def parsed(definition: str):
        return AmazonStateLanguageParser.parse(definition)[0]

    def evaluation_entrypoint(worker):
        return copy.deepcopy(parsed(worker._evaluation_details.state_machine_details.definition))

    ExecutionWorker._get_evaluation_entrypoint = evaluation_entrypoint


def cache_task_clients(clock=time.monotonic) -> None:
    # Patched in its module before the task services import the name.
    from localstack.services.stepfunctions.asl.utils import boto_client

    build, clients, lock = boto_client.boto_client_for, {}, threading.Lock()

    def boto_client_for(service, region, state_credentials):
        key = (service, region, state_credentials.role_arn)
        with lock:
            kept = clients.get(key)
            if kept and clock() - kept[1] < CLIENT_SECONDS:
                return kept[0]
        client = build(service, region, state_credentials)
        with lock:
            clients[key] = (client, clock())
        return client

    # Modules that already imported the name (`from … import boto_client_for`) get the cached one too.
    for module in [boto_client, *list(sys.modules.values())]:
        if getattr(module, "boto_client_for", None) is build:
            module.boto_client_for = boto_client_for


def batch_execution_logs(flush_seconds: float = LOG_FLUSH_SECONDS) -> threading.Thread:
    from localstack.aws.api.logs import InputLogEvent
    from localstack.services.stepfunctions.asl.eval.event.logging import CloudWatchLoggingSession
    from localstack.services.stepfunctions.asl.utils.encoding import to_json_str

    # Each execution's session with its events in arrival order; sessions in the order they first queued.
    queued: dict = {}
    ready = threading.Condition()

    def publish_history_log(session, history_log) -> None:
        timestamp = int(history_log["event_timestamp"].timestamp() * 1000)
        event = InputLogEvent(timestamp=timestamp, message=to_json_str(history_log))
        with ready:
            queued.setdefault(session, []).append(event)
            ready.notify()

    def ship() -> None:
        while True:
            with ready:
                ready.wait_for(lambda: queued)
            time.sleep(flush_seconds)
            with ready:
                batches = list(queued.items())
                queued.clear()
            for session, events in batches:
                events.sort(key=lambda event: event["timestamp"])  # stable: arrival order within a millisecond
                for start in range(0, len(events), LOG_BATCH):
                    try:
                        # LocalStack's own put: creates the stream when missing, logs its errors.
                        session._publish_history_log_or_setup(log_events=events[start : start + LOG_BATCH])
                    except Exception as error:  # one execution's logs never stop the others'
                        print(f"nexus: execution logs not put: {error!r}", file=sys.stderr)

    CloudWatchLoggingSession.publish_history_log = publish_history_log
    shipper = threading.Thread(target=ship, name="nexus-execution-logs", daemon=True)
    shipper.start()
    return shipper


def internal_cloudwatch(account_id: str, region: str):
    from localstack.aws.connect import connect_to

    return connect_to(region_name=region, aws_access_key_id=account_id).cloudwatch


class SqsMetricSums:
    """SQS's per-message metrics summed per account, region, queue, metric and unit since the last put."""

    def __init__(self, cloudwatch_for=internal_cloudwatch):
        self.cloudwatch_for = cloudwatch_for
        # (account, region) -> (queue, metric, unit) -> [sample count, sum, minimum, maximum]
        self.pending: dict = {}
        self.lock = threading.Lock()

    def add(self, account_id, region, queue_name, metric, value=1, unit="Count") -> None:
        with self.lock:
            queues = self.pending.setdefault((account_id, region), {})
            stats = queues.setdefault((queue_name, metric, unit), [0, 0, value, value])
            stats[0] += 1
            stats[1] += value
            stats[2] = min(stats[2], value)
            stats[3] = max(stats[3], value)

    def put(self) -> None:
        with self.lock:
            batches = list(self.pending.items())
            self.pending.clear()
        timestamp = datetime.now(timezone.utc)
        for (account_id, region), metrics in batches:
            data = [
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                    "Unit": unit,
                    "Timestamp": timestamp,
                    "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
                }
                for (queue_name, metric, unit), (count, total, low, high) in metrics.items()
            ]
            try:
                cloudwatch = self.cloudwatch_for(account_id, region)
                for start in range(0, len(data), METRICS_PER_PUT):
                    cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data[start : start + METRICS_PER_PUT])
            except Exception as error:  # one region's metrics never stop the others'
                print(f"nexus: SQS metrics not put: {error!r}", file=sys.stderr)


def aggregate_sqs_metrics(sums: SqsMetricSums, flush_seconds: float = SQS_METRIC_FLUSH_SECONDS) -> threading.Thread:
    from localstack.services.sqs.provider import CloudwatchDispatcher

    def dispatch_sqs_metric(dispatcher, account_id, region, queue_name, metric, value=1, unit="Count"):
        if dispatcher.running:  # else shut down with the SQS provider, as LocalStack's own dispatch
            sums.add(account_id, region, queue_name, metric, value, unit)

    def ship() -> None:
        while True:
            time.sleep(flush_seconds)
            sums.put()

    CloudwatchDispatcher.dispatch_sqs_metric = dispatch_sqs_metric
    shipper = threading.Thread(target=ship, name="nexus-sqs-metrics", daemon=True)
    shipper.start()
    return shipper


def build_environments_with_workers() -> None:
    from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker

    init, build = ExecutionWorker.__init__, ExecutionWorker._get_evaluation_environment

    def get_evaluation_environment(worker):
        return worker.env if worker.env is not None else build(worker)

    def __init__(worker, *args, **kwargs):
        init(worker, *args, **kwargs)
        if type(worker)._get_evaluation_environment is get_evaluation_environment:  # not TestState's own
            worker.env = build(worker)

    ExecutionWorker.__init__ = __init__
    ExecutionWorker._get_evaluation_environment = get_evaluation_environment


def answer_failures_in_running_executions() -> None:
    from localstack.aws.api.stepfunctions import ExecutionStatus, InvalidToken, SendTaskFailureOutput
    from localstack.aws.api.stepfunctions import TaskDoesNotExist, TaskTimedOut
    from localstack.services.stepfunctions import provider as module

    def send_task_failure(provider, context, task_token, error=None, cause=None, **kwargs):
        outcome = module.CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        for execution in provider._get_executions(context, ExecutionStatus.RUNNING):
            worker = execution.exec_worker
            if worker is None or worker.env is None:
                continue
            try:
                if worker.env.callback_pool_manager.notify(callback_id=task_token, outcome=outcome):
                    return SendTaskFailureOutput()
            except module.CallbackNotifyConsumerError as consumer_error:
                if isinstance(consumer_error, module.CallbackConsumerTimeout):
                    raise TaskTimedOut()
                raise TaskDoesNotExist()
        raise InvalidToken("Invalid token")

    module.StepFunctionsProvider.send_task_failure = send_task_failure


def collect_garbage_less(young_threshold: int = GC_YOUNG_THRESHOLD, ready=None) -> threading.Thread:
    gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
    if ready is None:
        from localstack.runtime import events

        ready = events.infra_ready

    def freeze_when_ready() -> None:
        ready.wait()
        gc.collect()
        gc.freeze()  # what start-up built (the providers, their stores, the parsed specs): alive to the end

    freezer = threading.Thread(target=freeze_when_ready, name="nexus-gc-freeze", daemon=True)
    freezer.start()
    return freezer


def mark_the_launcher(patched: bool, installed: str) -> None:
    """Serves `GET /_localstack/nexus`: that this LocalStack was started by Nexus's launcher, and whether with
    its patches. `nexus top` and `nexus dashboard` read it, and warn when it says unpatched or is missing (a
    LocalStack that is not Nexus's own, such as one started with Docker)."""
    from localstack.http import Resource
    from localstack.services import internal

    marker = {
        "launcher": "nexus",
        "patched": patched,
        "localstackVersion": installed,
        "validatedVersion": VALIDATED_VERSION,
    }

    class NexusResource:
        def on_get(self, request):
            return dict(marker)

    add_default_routes = internal.LocalstackResources.add_default_routes

    def with_the_marker(self):
        add_default_routes(self)
        self.add(Resource(MARKER_PATH, NexusResource()))

    internal.LocalstackResources.add_default_routes = with_the_marker


def main() -> None:
    installed = version("localstack-core")
    patched = installed == VALIDATED_VERSION
    try:
        mark_the_launcher(patched, installed)
    except (ImportError, AttributeError) as error:  # another version's internals: started without the marker
        print(f"nexus: no {MARKER_PATH} on this LocalStack: {error}", file=sys.stderr)
    if patched:
        cache_jsonpath_parsing()
        cache_task_clients()
        cache_definition_parsing()
        batch_execution_logs()
        build_environments_with_workers()
        answer_failures_in_running_executions()
        aggregate_sqs_metrics(SqsMetricSums())
        collect_garbage_less()
        print(
            f"{PATCHED_BANNER}: localstack-core {installed}: Step Functions JSONPath parsing, definition parsing "
            "and task clients cached, execution logs batched, environments built before executions run, task "
            "failures answered by running executions, SQS metrics summed per second, garbage collected every "
            "100 000 allocations",
            file=sys.stderr,
        )
    else:
        print(
            f"{UNPATCHED_BANNER}: localstack-core {installed} is not {VALIDATED_VERSION}, the version these patches "
            "were validated on: started without them (slower, with the SendTask race)",
            file=sys.stderr,
        )
    sys.argv = ["localstack.runtime.main", *sys.argv[1:]]
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
