#!/usr/bin/env bash
# `make bench`: the emulator work of a happy order on the `make up` stack: LocalStack requests per order by
# operation, counted from LocalStack's own request log (one `AWS <service>.<Operation>` line per request)
# while ORDERS orders (default 30) are published at once on plentiful stock and run to COMPLETED, net of the
# idle traffic measured just before (the function host's long polls), plus the burst's wall time.
# Progress goes to stderr; the table to stdout. The waiting reads DynamoDB Local directly, so it adds
# nothing to the count.
source "$(dirname "$0")/lib.sh"
orders="${ORDERS:-30}"
requests_log="$NEXUS_ENV_DIR/logs/localstack.log"
[[ -f "$requests_log" ]] && localstack_healthy "$NEXUS_PORT" || die "no local stack: run \`make up\` first"
dynamodb="$(dynamodb_local_endpoint)"
[[ -n "$dynamodb" ]] || die "DynamoDB Local of this environment not found"
out() { awsl cloudformation describe-stacks --stack-name "$NEXUS_STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text; }
topic="$(out OrdersTopicArn)" orders_table="$(out OrdersTableName)" inventory_table="$(out InventoryTableName)"
ddb() { aws --endpoint-url "$dynamodb" --output text dynamodb "$@"; }
lines() { wc -l <"$requests_log"; }

run="bench-$(date +%s)"
sku="SKU-BENCH-$run"
ddb put-item --table-name "$inventory_table" \
  --item "{\"sku\":{\"S\":\"$sku\"},\"available\":{\"N\":\"1000000\"},\"initial\":{\"N\":\"1000000\"}}"
idle_seconds=10
log "measuring idle traffic for ${idle_seconds} s"
idle_from="$(lines)"; sleep "$idle_seconds"; idle_to="$(lines)"

bodies="$(mktemp -d)"
# The contract's sample, each with its own order id and key, one unit of the bench's SKU.
python3 - "$ROOT/examples/order.json" "$bodies" "$run" "$sku" "$orders" <<'PY'
import json, sys
sample, folder, run, sku, orders = sys.argv[1:]
for i in range(1, int(orders) + 1):
    order = json.load(open(sample))
    order.update(orderId=f"{run}-{i}", idempotencyKey=f"{run}-{i}", items=[{"sku": sku, "quantity": 1, "unitPriceCents": 1999}])
    json.dump(order, open(f"{folder}/{i}.json", "w"))
PY
log "publishing $orders orders at once"
from="$(lines)"; started=$SECONDS
for i in $(seq 1 "$orders"); do awsl sns publish --topic-arn "$topic" --message "file://$bodies/$i.json" >/dev/null & done
wait
while :; do
  # One scan of DynamoDB Local per round (an aws cli process per order would skew the timing).
  done_count="$(ddb scan --table-name "$orders_table" --select COUNT --query Count \
    --filter-expression 'begins_with(orderId, :run) AND #s = :completed' --expression-attribute-names '{"#s":"status"}' \
    --expression-attribute-values "{\":run\":{\"S\":\"$run-\"},\":completed\":{\"S\":\"COMPLETED\"}}")"
  (( done_count == orders )) && break
  (( SECONDS - started > 600 )) && die "only $done_count of $orders completed in 10 minutes"
  printf '   … %d/%d completed (%ds)\n' "$done_count" "$orders" $((SECONDS - started)) >&2
  sleep 1
done
wall=$((SECONDS - started))
sleep 5  # the last notifications and log shipping
to="$(lines)"; elapsed=$((SECONDS - started))
rm -rf "$bodies"
python3 - "$requests_log" "$idle_from" "$idle_to" "$from" "$to" "$idle_seconds" "$elapsed" "$orders" "$wall" <<'PY'
import collections, re, sys
path, idle_from, idle_to, start, end, idle_s, elapsed, orders, wall = sys.argv[1:]
lines = open(path, errors="replace").read().splitlines()
def count(a, b):
    return collections.Counter(m.group(1) for l in lines[int(a):int(b)] if (m := re.search(r"AWS ([\w-]+\.\w+) =>", l)))
idle, busy = count(idle_from, idle_to), count(start, end)
scale = int(elapsed) / int(idle_s)
net = {op: busy[op] - idle[op] * scale for op in busy}
rows = sorted(((n / int(orders), op) for op, n in net.items() if n / int(orders) >= 0.05), reverse=True)
print(f"{orders} happy orders in {wall} s ({int(orders) / max(int(wall), 1):.2f} orders/s); LocalStack requests per order, net of idle traffic:")
for per, op in rows:
    print(f"  {op:<40} {per:6.2f}")
print(f"  {'total':<40} {sum(p for p, _ in rows):6.2f}")
PY
