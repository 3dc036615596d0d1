#!/usr/bin/env bash
# `make bench`: the emulator work of a happy order on the `make up` stack (ARCHITECTURE.md §7): LocalStack
# requests per order by operation, counted from LocalStack's own request log (one `AWS <service>.<Operation>`
# line per request), and CPU-seconds per order of LocalStack, DynamoDB Local and the function host with its
# functions, while ORDERS orders (default 30) are published at once (SNS PublishBatch, 10 a call) on
# plentiful stock and run to COMPLETED; each net of the idle rate measured just before (the function host's
# long polls). Progress goes to stderr; the table to stdout. The waiting reads DynamoDB Local directly, so
# it adds nothing to the count.
source "$(dirname "$0")/lib.sh"
orders="${ORDERS:-30}"
requests_log="$NEXUS_ENV_DIR/logs/localstack.log"
[[ -f "$requests_log" ]] && localstack_healthy "$NEXUS_PORT" || die "no local stack: run \`make up\` first"
dynamodb="$(dynamodb_local_endpoint)"
[[ -n "$dynamodb" ]] || die "DynamoDB Local of this environment not found"
out() { awsl cloudformation describe-stacks --stack-name "$NEXUS_STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text; }
topic="$(out OrdersTopicArn)" orders_table="$(out OrdersTableName)" inventory_table="$(out InventoryTableName)"
events_table="$(out OrderEventsTableName)"
ddb() { aws --endpoint-url "$dynamodb" --output text dynamodb "$@"; }
lines() { wc -l <"$requests_log"; }
localstack_pid="$(cat "$NEXUS_ENV_DIR/localstack.pid")"
host_pid="$(cat "$NEXUS_ENV_DIR/function-host-$NEXUS_STACK.pid")"
# CPU-seconds so far of: LocalStack alone, DynamoDB Local (its java child), the function host's process tree.
cpu() {
  python3 - "$localstack_pid" "$host_pid" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
stat = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    stat[int(pid)] = (int(fields[1]), sum(map(int, fields[11:15])) / tick, b"DynamoDBLocal.jar" in cmd)
def tree(root):
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += [p for p, (ppid, _, _) in stat.items() if ppid == pid and p not in found]
    return found
localstack, host = int(sys.argv[1]), int(sys.argv[2])
ddb = {p for p in tree(localstack) if stat[p][2]}
print(stat[localstack][1] - sum(stat[p][1] for p in ddb), sum(stat[p][1] for p in ddb), sum(stat[p][1] for p in tree(host)))
PY
}

run="bench-$(date +%s)"
sku="SKU-BENCH-$run"
ddb put-item --table-name "$inventory_table" \
  --item "{\"sku\":{\"S\":\"$sku\"},\"available\":{\"N\":\"1000000\"},\"initial\":{\"N\":\"1000000\"}}"
idle_seconds=10
log "measuring idle traffic for ${idle_seconds} s"
idle_from="$(lines)" idle_cpu_from="$(cpu)"; sleep "$idle_seconds"; idle_to="$(lines)" idle_cpu_to="$(cpu)"

bodies="$(mktemp -d)"
# The contract's sample, each with its own order id and key, one unit of the bench's SKU, in PublishBatch
# requests of 10.
python3 - "$ROOT/examples/order.json" "$bodies" "$run" "$sku" "$orders" <<'PY'
import json, sys
sample, folder, run, sku, orders = sys.argv[1:]
entries = []
for i in range(1, int(orders) + 1):
    order = json.load(open(sample))
    order.update(orderId=f"{run}-{i}", idempotencyKey=f"{run}-{i}", items=[{"sku": sku, "quantity": 1, "unitPriceCents": 1999}])
    entries.append({"Id": str(i), "Message": json.dumps(order)})
for n in range(0, len(entries), 10):
    json.dump(entries[n:n + 10], open(f"{folder}/batch-{n // 10}.json", "w"))
PY
log "publishing $orders orders at once"
from="$(lines)" cpu_from="$(cpu)"; started=$SECONDS published_at="$(date +%s.%N)"
for batch in "$bodies"/batch-*.json; do
  awsl sns publish-batch --topic-arn "$topic" --publish-batch-request-entries "file://$batch" >/dev/null &
done
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
to="$(lines)" cpu_to="$(cpu)"; elapsed=$((SECONDS - started))
rm -rf "$bodies"
# Each status change of the run's orders, as the functions recorded it (the order events table).
events_json="$NEXUS_ENV_DIR/bench-events.json"
aws --endpoint-url "$dynamodb" --output json dynamodb scan --table-name "$events_table" \
  --filter-expression 'begins_with(orderId, :run)' --expression-attribute-values "{\":run\":{\"S\":\"$run-\"}}" \
  --projection-expression 'orderId, #st, #at' --expression-attribute-names '{"#st":"status","#at":"at"}' >"$events_json"
python3 - "$requests_log" "$idle_from" "$idle_to" "$from" "$to" "$idle_seconds" "$elapsed" "$orders" "$wall" \
  "$idle_cpu_from" "$idle_cpu_to" "$cpu_from" "$cpu_to" <<'PY'
import collections, re, sys
path, idle_from, idle_to, start, end, idle_s, elapsed, orders, wall = sys.argv[1:10]
idle_cpu_from, idle_cpu_to, cpu_from, cpu_to = ([float(x) for x in a.split()] for a in sys.argv[10:14])
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
print("CPU milliseconds per order, net of idle:")
for i, name in enumerate(["LocalStack", "DynamoDB Local", "function host + functions"]):
    net_cpu = (cpu_to[i] - cpu_from[i]) - (idle_cpu_to[i] - idle_cpu_from[i]) * scale
    print(f"  {name:<40} {1000 * net_cpu / int(orders):6.0f}")
PY
# Latency: publish → COMPLETED per order (the whole burst was published at one moment), and each step.
python3 - "$events_json" "$published_at" <<'PY'
import collections, datetime, json, sys
items = json.load(open(sys.argv[1]))["Items"]
published = float(sys.argv[2])
at = lambda t: datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
orders = collections.defaultdict(dict)
for item in items:
    orders[item["orderId"]["S"]][item["status"]["S"]] = at(item["at"]["S"])
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]
def row(name, values):
    print(f"  {name:<40} {pct(values, 50):6.2f} {pct(values, 95):6.2f} {pct(values, 99):6.2f}")
print(f"latency in seconds over {len(orders)} orders:{'p50':>20} {'p95':>6} {'p99':>6}")
row("publish -> COMPLETED", [s["COMPLETED"] - published for s in orders.values() if "COMPLETED" in s])
steps = ["PENDING", "INVENTORY_RESERVED", "PAYMENT_CHARGED", "SHIPPED", "COMPLETED"]
row("publish -> PENDING (intake)", [s["PENDING"] - published for s in orders.values() if "PENDING" in s])
for before, after in zip(steps, steps[1:]):
    row(f"{before} -> {after}", [s[after] - s[before] for s in orders.values() if before in s and after in s])
PY
