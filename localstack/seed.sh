#!/usr/bin/env bash
# Loads the committed catalog (infra/catalog.json: stock and prices) into the stack's inventory table, and the
# committed customer records (infra/customers.json: who is VIP) into its customers table, each when the table
# is empty, so a re-run never resets stock that orders have moved or a tier an operator has changed.
source "$(dirname "$0")/lib.sh"
table="$(awsl cloudformation describe-stacks --stack-name "$NEXUS_STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='InventoryTableName'].OutputValue" --output text)"
[[ -n "$table" && "$table" != None ]] || die "stack $NEXUS_STACK has no InventoryTableName output"
count="$(awsl dynamodb scan --table-name "$table" --select COUNT --max-items 1 --query Count --output text)"
load_inventory() {
requests="$("$TOOLS_VENV/bin/python" - "$ROOT/infra/catalog.json" "$table" "$NEXUS_ENV_DIR" <<'PY'
import json, sys
catalog, table, out = sys.argv[1], sys.argv[2], sys.argv[3]
items = json.load(open(catalog))["items"]
files = []
for start in range(0, len(items), 25):  # BatchWriteItem takes 25 puts at most
    puts = [{"PutRequest": {"Item": {
        "sku": {"S": i["sku"]}, "name": {"S": i["name"]},
        "unitPriceCents": {"N": str(i["unitPriceCents"])}, "available": {"N": str(i["available"])},
        "initial": {"N": str(i["available"])}}}} for i in items[start:start + 25]]
    path = f"{out}/seed-{start // 25}.json"
    json.dump({table: puts}, open(path, "w"))
    files.append(path)
print(" ".join(files))
PY
)"
for file in $requests; do awsl dynamodb batch-write-item --request-items "file://$file" >/dev/null; rm -f "$file"; done
log "inventory loaded into $table from infra/catalog.json"
}
if [[ "$count" != 0 ]]; then log "inventory already loaded ($table)"; else load_inventory; fi

customers="$(awsl cloudformation describe-stacks --stack-name "$NEXUS_STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='CustomersTableName'].OutputValue" --output text)"
[[ -n "$customers" && "$customers" != None ]] || die "stack $NEXUS_STACK has no CustomersTableName output"
count="$(awsl dynamodb scan --table-name "$customers" --select COUNT --max-items 1 --query Count --output text)"
load_customers() {
"$TOOLS_VENV/bin/python" - "$ROOT/infra/customers.json" "$customers" >"$NEXUS_ENV_DIR/seed-customers.json" <<'PY'
import json, sys
records, table = json.load(open(sys.argv[1]))["customers"], sys.argv[2]
assert len(records) <= 25, "BatchWriteItem takes 25 puts at most"
print(json.dumps({table: [{"PutRequest": {"Item": {
    "customerId": {"S": r["customerId"]}, "tier": {"S": r["tier"]}}}} for r in records]}))
PY
awsl dynamodb batch-write-item --request-items "file://$NEXUS_ENV_DIR/seed-customers.json" >/dev/null
rm -f "$NEXUS_ENV_DIR/seed-customers.json"
log "customers loaded into $customers from infra/customers.json"
}
if [[ "$count" != 0 ]]; then log "customers already loaded ($customers)"; else load_customers; fi
