#!/usr/bin/env bash
# `make test`: an isolated local environment (own data folder, own port when 4566 is taken); lint while the
# bench's stacks deploy, then the bench beside the other stacks' deploys and the unit tests; then the function
# hosts, the outage test in the background, the chaos test, the other integration tests (the dashboard and
# the priority test beside them), and teardown (also on failure). Never touches the environment of `make up`.
# NEXUS_TEST_SUITE=chaos (`make chaos`) runs the chaos test alone, NEXUS_CHAOS_ORDERS orders;
# NEXUS_TEST_SUITE=priority (`make priority`) the VIP lane's measurement alone, NEXUS_PRIORITY_BACKLOG orders.
source "$(dirname "$0")/../../localstack/lib.sh"
start=$SECONDS
suite="${NEXUS_TEST_SUITE:-all}"
# Each phase's wall time, printed as it ends and again at the end, so a slow loop shows where it goes.
phases=() phase_name="" phase_start=$SECONDS
phase() {
  if [[ -n "$phase_name" ]]; then
    phases+=("$(printf '%-40s %5d s' "$phase_name" $((SECONDS - phase_start)))")
    log "$phase_name took $((SECONDS - phase_start)) s"
  fi
  phase_name="$1" phase_start=$SECONDS
}
# The tests that need the local stack: the nexus-tests package, and the CLI's and the function host's integration tests.
STACK_TESTS='package(nexus-tests) or ((package(nexus-cli) or package(function-host)) and kind(test))'
[[ "$suite" == all || "$suite" == chaos || "$suite" == priority ]] ||
  die "NEXUS_TEST_SUITE is all, chaos or priority, not '$suite'"

phase "install tools"
bash "$ROOT/localstack/install.sh" --lint --sam

# One dev build serves the tests and the local stacks' functions and host (Cargo.toml: dependencies
# optimised, no debug info), kept apart from `make up`'s release build.
phase "build (dev)"
LAMBDA_DIR="$CARGO_TARGET_DIR/lambda-dev"
bash "$ROOT/scripts/build/dev.sh" "$LAMBDA_DIR"

phase "local stack up"
start_isolated_environment "${NEXUS_TEST_PORT:-}" test
NEXUS_TEST_ENDPOINT="$(endpoint)"
export NEXUS_TEST_ENDPOINT
# The saga stacks deploy in the background (deploy_stack) while the unit tests run (and, in `make test`, the
# bench); the function hosts start once they are all up (wait_for_deploys).
deploy_saga_stacks() {
  if [[ "$suite" != priority ]]; then
    # The chaos stack: the same template with short timeouts (an injected fault is retried after 15 s, not
    # after 3 minutes), run by a host that delivers every batch twice and kills 3 % of the invocations at
    # random. Its retries keep the template's backoff (to 60 s, jittered): backing off only to 15 s piled the
    # retries onto the busy emulator and halved the run's pace.
    export NEXUS_CHAOS_STACK=nexus-chaos
    deploy_stack "$NEXUS_CHAOS_STACK" "NEXUS_STACK_PARAMETERS=FunctionTimeoutSeconds=8 QueueVisibilityTimeoutSeconds=15"
  fi
  if [[ "$suite" != chaos ]]; then
    # The priority stack: at most 6 standard sagas in flight (admission control), for tests/tests/priority.rs.
    # Its host starts when its test does: every host's pollers cost LocalStack CPU even on empty queues.
    export NEXUS_PRIORITY_STACK=nexus-priority
    deploy_stack "$NEXUS_PRIORITY_STACK" "NEXUS_STACK_PARAMETERS=StandardSagaLimit=6"
  fi
  if [[ "$suite" == all ]]; then
    fixture_stack=nexus-fixture
    deploy_stack "$fixture_stack" "NEXUS_TEMPLATE=$ROOT/function-host/fixtures/template.yaml"
    # The CLI's DLQ test (cli/tests/verbs.rs), with queues of its own and 5 s visibility timeouts: a message
    # that keeps failing is dead-lettered after its 5 deliveries in about 25 s. Not in the background: it
    # polls every queue's depth (`nexus dlq list`), which halved the chaos run's pace.
    export NEXUS_DLQ_STACK=nexus-dlq
    deploy_stack "$NEXUS_DLQ_STACK" "NEXUS_STACK_PARAMETERS=FunctionTimeoutSeconds=3 QueueVisibilityTimeoutSeconds=5"
    deploy_stack "$NEXUS_STACK"
    # The outage stack: retries with an exact (unjittered) budget of 225 s per step and 25 s per compensation
    # (spent within tests/tests/outage.rs, which then retries the orders that needed attention).
    outage_stack=nexus-outage
    deploy_stack "$outage_stack" "NEXUS_STACK_PARAMETERS=FunctionTimeoutSeconds=8 QueueVisibilityTimeoutSeconds=48 \
StepRetryAttempts=25 CompensationRetryAttempts=5 RetryMaxDelaySeconds=10 RetryJitterStrategy=NONE"
  fi
}
if [[ "$suite" != all ]]; then
  deploy_saga_stacks
else
  # `nexus bench`'s test: Nexus and the null saga (bench/null-saga.py) as stacks of their own, deployed first
  # (while lint runs) so that the bench can start early. No host runs for either: the bench starts and stops
  # them itself, one at a time.
  export NEXUS_BENCH_STACK=nexus-bench NEXUS_BENCH_NULL_STACK=nexus-null
  export NEXUS_BENCH_NULL_TEMPLATE="$NEXUS_ENV_DIR/null-saga.json"
  "$LINT_VENV/bin/python" "$ROOT/bench/null-saga.py" "$NEXUS_TEMPLATE" "$ROOT/infra/order-saga.asl.json" "$NEXUS_BENCH_NULL_TEMPLATE"
  deploy_stack "$NEXUS_BENCH_STACK"
  deploy_stack "$NEXUS_BENCH_NULL_STACK" "NEXUS_TEMPLATE=$NEXUS_BENCH_NULL_TEMPLATE"

  phase "lint"
  bash "$ROOT/scripts/lint/lint.sh"

  # The bench, small, in the background once its two stacks are up and before any function host starts: its
  # exact counts need an emulator that no other saga calls. Beside it, the other stacks deploy (calling
  # nothing it counts exactly) and the unit tests and the arm64 build run (calling nothing at all).
  wait_for_deploys "$NEXUS_BENCH_STACK" "$NEXUS_BENCH_NULL_STACK"
  export NEXUS_BENCH_LAMBDA_DIR="$NEXUS_ENV_DIR/lambda-bench" NEXUS_BENCH_WORK_DIR="$NEXUS_ENV_DIR/logs"
  rm -rf "$NEXUS_BENCH_LAMBDA_DIR" && cp -r "$LAMBDA_DIR" "$NEXUS_BENCH_LAMBDA_DIR"
  NEXUS_BENCH_DYNAMODB="$(dynamodb_local_endpoint)" NEXUS_BENCH_LOCALSTACK_LOG="$NEXUS_ENV_DIR/logs/localstack.log"
  NEXUS_BENCH_LOCALSTACK_PID="$(cat "$NEXUS_ENV_DIR/localstack.pid")"
  export NEXUS_BENCH_DYNAMODB NEXUS_BENCH_LOCALSTACK_LOG NEXUS_BENCH_LOCALSTACK_PID NEXUS_TEMPLATE
  start_background_tests bench --workspace --locked --profile integration -E "package(nexus-cli) and binary(bench)"
  deploy_saga_stacks

  phase "unit tests"
  log "unit tests"
  cargo nextest run --workspace --locked -E "not ($STACK_TESTS)"
  # The deterministic simulation's fixed seeds (docs/simulation.md): a few seconds.
  SEEDS=300 bash "$ROOT/scripts/sim/run.sh"
  # The documented patch LocalStack starts with (localstack/patches): cached parses answer as fresh ones.
  (cd "$ROOT/localstack/patches" && "$LOCALSTACK_VENV/bin/python" -m unittest test_localstack_main)
  # The bench's null saga keeps Nexus's shape (bench/null-saga.py).
  (cd "$ROOT" && "$LINT_VENV/bin/python" -m unittest bench/test_null_saga.py)

  phase "release build (arm64)"
  # The AWS deploy artifacts (arm64), so they can never silently break.
  bash "$ROOT/scripts/build/aws.sh"
  phase "sam validate, sam build"
  # The SAM path as docs/deploy.md gives it, on the same arm64 build.
  bash "$ROOT/scripts/build/sam.sh"

  phase "the other stacks deployed"
  wait_for_deploys
  phase "bench (its end)"
  wait_for_background_tests bench
fi
phase "stacks deployed, function hosts started"
wait_for_deploys
# The tests read the tables from the DynamoDB Local that the functions call (tests/src/lib.rs), unless
# NEXUS_DYNAMODB_DIRECT=0, so that their polling does not queue in LocalStack's gateway behind the sagas.
if [[ "${NEXUS_DYNAMODB_DIRECT:-1}" != 0 ]]; then
  NEXUS_TEST_DYNAMODB="$(dynamodb_local_endpoint)"
  export NEXUS_TEST_DYNAMODB
fi
# The loopback test reads the listening sockets of LocalStack's process tree.
NEXUS_LOCALSTACK_PID="$(cat "$NEXUS_ENV_DIR/localstack.pid")"
export NEXUS_LOCALSTACK_PID

# Each phase with only the function hosts it needs (22 pollers a stack, each a ReceiveMessage every 5 s that
# LocalStack's CPU serves). The outage test spends most of its 4.5 minutes waiting out retry budgets on a
# stack of its own, so it runs in the background from here: beside the chaos run while it only waits (load
# stretches its budgets, never shortens them), then beside the lighter tests. The chaos run and the other
# integration tests run one after the other, so that neither's load slows the other's sagas down; the
# dashboard and the priority test beside the integration tests; the scan of everything the suite logged on
# the main stack after them. The bench ran before any of them (above).
if [[ "$suite" != priority ]]; then
  NEXUS_FAULT_DUPLICATE_DELIVERY=true NEXUS_FAULT_KILL_PROBABILITY=0.03 \
    start_function_host "$NEXUS_CHAOS_STACK" "$NEXUS_TEMPLATE"
fi
if [[ "$suite" == all ]]; then
  bash "$ROOT/localstack/seed.sh"
  start_function_host "$outage_stack" "$NEXUS_TEMPLATE"
  # The saga runs with every batch delivered twice: the e2e tests then also prove every handler idempotent.
  NEXUS_FAULT_DUPLICATE_DELIVERY=true start_function_host "$NEXUS_STACK" "$NEXUS_TEMPLATE"
  export NEXUS_MAIN_STACK="$NEXUS_STACK" NEXUS_OUTAGE_STACK="$outage_stack"
  start_background_tests outage --workspace --locked --profile integration --no-capture \
    -E "package(nexus-tests) and binary(outage)"
fi
if [[ "$suite" != priority ]]; then
  phase "chaos"
  log "chaos test: ${NEXUS_CHAOS_ORDERS:-300} orders under injected faults"
  cargo nextest run --workspace --locked --profile integration --no-capture -E "package(nexus-tests) and binary(chaos)"
  stop_pid "$NEXUS_ENV_DIR/function-host-$NEXUS_CHAOS_STACK.pid" "function host ($NEXUS_CHAOS_STACK)"
fi
if [[ "$suite" == all ]]; then
  start_function_host "$fixture_stack" "$ROOT/function-host/fixtures/template.yaml" "$ROOT/function-host/fixtures/lambdas"
  start_function_host "$NEXUS_DLQ_STACK" "$NEXUS_TEMPLATE"
  # The conformance tests also start a host of their own on the fixture stack's build (to see it refuse).
  export NEXUS_FIXTURE_STACK="$fixture_stack" NEXUS_FIXTURE_LAMBDA_DIR="$NEXUS_ENV_DIR/lambda-$fixture_stack"
  # The dashboard in headless Chromium, then the VIP lane's measurement, on the priority stack, in the
  # background beside the integration tests: after the chaos run the machine is mostly idle, waiting on
  # timeouts. The dashboard goes first: no other test writes that stack's chaos settings meanwhile, and its
  # one VIP order is done before the measurement starts, which compares VIP and standard orders under the
  # same load.
  start_function_host "$NEXUS_PRIORITY_STACK" "$NEXUS_TEMPLATE"
  bash "$ROOT/scripts/test/install-browser.sh"
  export NEXUS_TEST_ARTIFACTS="$LOCAL_DIR/test-artifacts"
  NEXUS_DASHBOARD_STACK="$NEXUS_PRIORITY_STACK" start_background lanes bash -c \
    'cargo nextest run --workspace --locked --profile integration -E "package(nexus-cli) and binary(dashboard)" &&
     cargo nextest run --workspace --locked --profile integration --no-capture -E "package(nexus-tests) and binary(priority)"'
  phase "integration tests (priority beside)"
  log "integration tests against $(endpoint)"
  # Four at a time on two cores: these tests mostly wait out visibility timeouts and redeliveries.
  cargo nextest run --workspace --locked --profile integration --test-threads 4 \
    -E "($STACK_TESTS) and not (binary(outage) or binary(chaos) or binary(observability) or binary(priority) or binary(dashboard) or binary(bench) or binary(differential))"
  for stack in "$fixture_stack" "$NEXUS_DLQ_STACK"; do
    stop_pid "$NEXUS_ENV_DIR/function-host-$stack.pid" "function host ($stack)"
  done
  # The differential test takes the main stack's payment down (its chaos settings): alone on that stack.
  cargo nextest run --workspace --locked --profile integration -E "package(nexus-tests) and binary(differential)"
  cargo nextest run --workspace --locked --profile integration -E "package(nexus-tests) and binary(observability)"
  stop_pid "$NEXUS_ENV_DIR/function-host-$NEXUS_STACK.pid" "function host ($NEXUS_STACK)"
  phase "dashboard and priority (their end)"
  wait_for_background_tests lanes
  log "the page's screenshot: $NEXUS_TEST_ARTIFACTS/dashboard.png"
  stop_pid "$NEXUS_ENV_DIR/function-host-$NEXUS_PRIORITY_STACK.pid" "function host ($NEXUS_PRIORITY_STACK)"
  phase "outage test (its end)"
  wait_for_background_tests outage
  stop_pid "$NEXUS_ENV_DIR/function-host-$outage_stack.pid" "function host ($outage_stack)"
fi
if [[ "$suite" == priority ]]; then
  start_function_host "$NEXUS_PRIORITY_STACK" "$NEXUS_TEMPLATE"
  phase "priority"
  cargo nextest run --workspace --locked --profile integration --no-capture -E "package(nexus-tests) and binary(priority)"
fi
phase ""
printf '  %s\n' "${phases[@]}" >&2
log "make ${suite/all/test} passed in $((SECONDS - start)) s"
