#!/usr/bin/env bash
# Deploys $NEXUS_TEMPLATE as stack $NEXUS_STACK to the local endpoint: package (uploads CodeUri folders to a
# local S3 bucket so the SAM transform accepts them), then create or update the stack and wait for it.
# The functions are left out of the stack (FunctionsRuntime=host): the function host runs them.
# NEXUS_STACK_PARAMETERS adds parameter overrides, as `sam deploy --parameter-overrides` takes them:
# "FunctionTimeoutSeconds=5 QueueVisibilityTimeoutSeconds=10".
source "$(dirname "$0")/lib.sh"

runtime="${NEXUS_FUNCTIONS_RUNTIME:-host}"
bucket="nexus-artifacts-$(echo "$NEXUS_STACK" | tr 'A-Z_' 'a-z-')"
packaged="$NEXUS_ENV_DIR/$NEXUS_STACK.packaged.yaml"
mkdir -p "$NEXUS_ENV_DIR"

template="$NEXUS_TEMPLATE"
if [[ "$runtime" == lambda ]]; then
  # Functions deploy into the stack (LocalStack with Docker): point each CodeUri at its built artifact folder.
  template="$NEXUS_ENV_DIR/$NEXUS_STACK.lambda.yaml"
  sed -E "s#^( +CodeUri: )functions/([a-z0-9-]+)/?\$#\1$LAMBDA_ARM64_DIR/\2#" "$NEXUS_TEMPLATE" >"$template"
fi

# The checks that run most (is there a bucket, the stack's status while it deploys) ask LocalStack with curl:
# each aws cli start costs about a CPU-second, and `make test` deploys eight stacks at once while lint and
# the unit tests run. LocalStack takes the service and region from the credential scope and checks no
# signature; what changes anything still goes through the aws cli.
curl -fsS -o /dev/null -I "$(endpoint)/$bucket" 2>/dev/null || awsl s3api create-bucket --bucket "$bucket" >/dev/null
log "packaging $(basename "$NEXUS_TEMPLATE") for stack $NEXUS_STACK"
# cloudformation package reads AWS_ENDPOINT_URL for its S3 upload (aws cli v1 quirk, docs/local-environment.md).
AWS_ENDPOINT_URL="$(endpoint)" aws cloudformation package --template-file "$template" \
  --s3-bucket "$bucket" --output-template-file "$packaged" >"$NEXUS_ENV_DIR/logs/package-$NEXUS_STACK.log"

stack_status() {  # NONE when there is no such stack (CloudFormation answers a ValidationError)
  local answer status
  answer="$(curl -fsS "$(endpoint)/" --data-urlencode Action=DescribeStacks --data-urlencode Version=2010-05-15 \
    --data-urlencode "StackName=$NEXUS_STACK" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20000101/$AWS_REGION/cloudformation/aws4_request, SignedHeaders=host, Signature=0" \
    2>/dev/null)" || { echo NONE; return; }
  status="$(sed -n 's#.*<StackStatus>\([A-Z_]*\)</StackStatus>.*#\1#p' <<<"$answer" | head -n 1)"
  echo "${status:-NONE}"
}

status="$(stack_status)"
if [[ "$status" == ROLLBACK_COMPLETE || "$status" == *FAILED ]]; then
  warn "stack $NEXUS_STACK is $status; deleting it first (\`make reset\` gives a fully clean slate)"
  awsl cloudformation delete-stack --stack-name "$NEXUS_STACK"
  for _ in $(seq 1 120); do [[ "$(stack_status)" == NONE || "$(stack_status)" == DELETE_COMPLETE ]] && break; sleep 1; done
  status=NONE
fi

parameters=("ParameterKey=FunctionsRuntime,ParameterValue=$runtime")
# Local stacks run with fault injection on (`nexus chaos`, the tests); AWS deploys keep the template's false.
if grep -q '^  ChaosEnabled:' "$NEXUS_TEMPLATE" && [[ " ${NEXUS_STACK_PARAMETERS:-} " != *" ChaosEnabled="* ]]; then
  parameters+=("ParameterKey=ChaosEnabled,ParameterValue=true")
fi
# Two invocations at once per queue, the least Lambda allows: the emulator's two cores, not AWS's scale, set
# the pace here, and each concurrent invocation is a process of the function host. (Any template that names
# the parameter, YAML or the null saga's JSON, declares it.)
if grep -q 'QueueMaximumConcurrency' "$NEXUS_TEMPLATE" && [[ " ${NEXUS_STACK_PARAMETERS:-} " != *" QueueMaximumConcurrency="* ]]; then
  parameters+=("ParameterKey=QueueMaximumConcurrency,ParameterValue=2")
fi
for override in ${NEXUS_STACK_PARAMETERS:-}; do
  [[ "$override" == *=* ]] || die "NEXUS_STACK_PARAMETERS: '$override' is not Key=Value"
  parameters+=("ParameterKey=${override%%=*},ParameterValue=${override#*=}")
done
# By URL, as `sam deploy` does past CloudFormation's 51,200-byte limit on an inline template body.
awsl s3 cp "$packaged" "s3://$bucket/$NEXUS_STACK.template.yaml" >/dev/null
args=(--stack-name "$NEXUS_STACK" --template-url "$(endpoint)/$bucket/$NEXUS_STACK.template.yaml" --parameters "${parameters[@]}"
  --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND)
if [[ "$status" == NONE || "$status" == DELETE_COMPLETE ]]; then
  log "creating stack $NEXUS_STACK"
  awsl cloudformation create-stack "${args[@]}" >/dev/null
else
  log "updating stack $NEXUS_STACK"
  if ! out="$(awsl cloudformation update-stack "${args[@]}" 2>&1)"; then
    if [[ "$out" == *"No updates are to be performed"* ]]; then
      log "stack $NEXUS_STACK is up to date"; exit 0
    fi
    die "update-stack failed: $out"
  fi
fi

# Poll every 3 s (cloudformation deploy/wait polls every 30 s).
start=$SECONDS last_shown=$SECONDS
while :; do
  sleep 3
  status="$(stack_status)"
  case "$status" in
    CREATE_COMPLETE|UPDATE_COMPLETE) log "stack $NEXUS_STACK $status in $((SECONDS - start)) s"; break ;;
    *ROLLBACK*|*FAILED*)
      awsl cloudformation describe-stack-events --stack-name "$NEXUS_STACK" \
        --query 'StackEvents[?contains(ResourceStatus, `FAILED`)].[LogicalResourceId,ResourceStatusReason]' --output text >&2 || true
      die "stack $NEXUS_STACK ended $status" ;;
  esac
  (( SECONDS - start > 600 )) && die "stack $NEXUS_STACK still $status after 10 minutes"
  if (( SECONDS - last_shown >= 15 )); then
    printf '   … %s (%ds)\n' "$status" $((SECONDS - start)) >&2
    last_shown=$SECONDS
  fi
done

# LocalStack's CloudFormation skips AWS::CloudWatch::Dashboard; its CloudWatch has PutDashboard. Put the
# template's dashboards there, so they exist locally as on AWS.
if [[ "$runtime" == host ]] && grep -q 'AWS::CloudWatch::Dashboard' "$NEXUS_TEMPLATE"; then
  awsl cloudformation describe-stack-resources --stack-name "$NEXUS_STACK" --output json |
    python "$ROOT/localstack/put-dashboard.py" "$NEXUS_TEMPLATE" "$NEXUS_STACK" "$AWS_REGION" |
    while IFS=$'\t' read -r name body; do
      awsl cloudwatch put-dashboard --dashboard-name "$name" --dashboard-body "$body" >/dev/null
      log "dashboard $name put (LocalStack's CloudFormation skips dashboards)"
    done
fi
