#!/usr/bin/env bash
# `make up`: install the pinned tools, start LocalStack (or use the one already answering), build the
# functions, deploy template.yaml and start the function host. A second run reuses what already runs.
source "$(dirname "$0")/lib.sh"
start=$SECONDS

runtime="${NEXUS_FUNCTIONS_RUNTIME:-host}"
if [[ "$runtime" == lambda ]]; then
  bash "$ROOT/localstack/install.sh"
  # The functions deploy into LocalStack with the stack: built first (with cargo-lambda, installed above).
  bash "$ROOT/scripts/build/aws.sh"
else
  # The build (CPU, plain cargo) runs while the tools install, LocalStack starts and the stack deploys (the
  # functions are left out of it and run by the host), so all of that hides behind the build.
  bash "$ROOT/scripts/build/local.sh" &
  build_pid=$!
  bash "$ROOT/localstack/install.sh"
fi
bash "$ROOT/localstack/start-localstack.sh"

# Redeploy only when the template or what it packages (the state machine's DefinitionUri; with the host, the
# functions' code is the host's, not the stack's) changed since the last deploy to this LocalStack.
stamp="$NEXUS_ENV_DIR/deploy-$NEXUS_STACK.sha256"
packaged_files=()
while read -r uri; do
  packaged_files+=("$(dirname "$NEXUS_TEMPLATE")/$uri")
done < <(sed -n -E 's/^ +DefinitionUri: ([^ ]+)$/\1/p' "$NEXUS_TEMPLATE")
[[ "$runtime" == lambda ]] && packaged_files+=("$LAMBDA_ARM64_DIR"/*/bootstrap)
digest="$( (cat "$NEXUS_TEMPLATE" "${packaged_files[@]}"; echo "$runtime") | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]] && \
   awsl cloudformation describe-stacks --stack-name "$NEXUS_STACK" >/dev/null 2>&1; then
  log "stack $NEXUS_STACK is up to date"
else
  bash "$ROOT/localstack/deploy.sh"
  echo "$digest" >"$stamp"
fi

bash "$ROOT/localstack/seed.sh"
if [[ -n "${build_pid:-}" ]]; then
  wait "$build_pid" || die "the build failed (log: $LOCAL_DIR/logs/build-local.log)"
  log "build done ($((SECONDS - start)) s since make up started)"
fi

# Restart the function host only when a binary differs from the running snapshot or the template changed.
pidfile="$NEXUS_ENV_DIR/function-host-$NEXUS_STACK.pid"
if [[ "$runtime" == lambda ]]; then
  log "functions deployed into LocalStack (FunctionsRuntime=lambda); no function host needed"
elif pid_alive "$pidfile" && diff -rq "$LAMBDA_DIR" "$NEXUS_ENV_DIR/lambda-$NEXUS_STACK" >/dev/null 2>&1 && \
     [[ -z "$(find "$NEXUS_TEMPLATE" -newer "$pidfile" -print -quit)" ]]; then
  log "function host for $NEXUS_STACK already running (pid $(cat "$pidfile"))"
else
  start_function_host "$NEXUS_STACK" "$NEXUS_TEMPLATE"
fi

ep="$(endpoint)"
outputs="$(awsl cloudformation describe-stacks --stack-name "$NEXUS_STACK" --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text)"
output() { awk -v k="$1" '$1 == k { print $2 }' <<<"$outputs"; }
cat <<MSG

Vyapaar Nexus is up on $ep in $((SECONDS - start)) s (stack $NEXUS_STACK).

Stack outputs:
$(sed 's/^/  /' <<<"$outputs")

Try it (aws cli against the local stack):
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION
  aws --endpoint-url $ep dynamodb list-tables
  aws --endpoint-url $ep sns publish --topic-arn $(output OrdersTopicArn) --message file://examples/order.json
  aws --endpoint-url $ep sqs get-queue-attributes --queue-url $(output OrderIntakeDlqUrl) --attribute-names ApproximateNumberOfMessages
  aws --endpoint-url $ep logs describe-log-groups --query 'logGroups[].logGroupName'

Or with the operator CLI (cargo install --locked --path cli):
  export AWS_ENDPOINT_URL=$ep NEXUS_STACK=$NEXUS_STACK
  nexus submit examples/order.json --wait && nexus top && nexus verify

Logs: LocalStack $NEXUS_ENV_DIR/logs/localstack.log, function host $NEXUS_ENV_DIR/logs/function-host-$NEXUS_STACK.log
Stop with \`make down\`; start from scratch with \`make reset\`.
MSG
