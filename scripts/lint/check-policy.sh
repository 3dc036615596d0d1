#!/usr/bin/env bash
# Policy as code over template.yaml: checkov (pinned), every check on but those skipped in
# infra/checkov-skips.txt, each with its reason. cfn-lint (which is what `sam validate --lint` runs) is beside
# it in `make lint`; IAM least privilege is held by shared/core/tests/least_privilege.rs, over the template as
# SAM's transform (aws-sam-translator, installed beside checkov) expands it.
source "$(dirname "$0")/../../localstack/lib.sh"
skips="$(grep -Eo '^CKV[A-Z0-9_]+' "$ROOT/infra/checkov-skips.txt" | paste -sd, -)"
# --skip-download: no network (the guideline links it would fetch are not needed to judge the template).
out="$("$POLICY_VENV/bin/checkov" --file "$ROOT/template.yaml" --framework cloudformation --skip-download \
  --compact --quiet --skip-check "$skips" 2>&1)" || { echo "$out" >&2; die "checkov: the template breaks a policy (above); fix it or add a reasoned skip to infra/checkov-skips.txt"; }
# checkov exits 0 on a template it could not parse: that must not pass for a clean bill.
[[ "$out" =~ Passed\ checks:\ [1-9] && ! "$out" =~ Parsing\ errors:\ [1-9] ]] || { echo "$out" >&2; die "checkov parsed nothing of template.yaml"; }
log "checkov: template.yaml passes (skipped with reasons: $skips)"
"$POLICY_VENV/bin/python" "$ROOT/scripts/lint/sam-expand.py" "$ROOT/template.yaml" >/dev/null \
  || die "SAM's transform (aws-sam-translator $SAM_TRANSLATOR_VERSION) refuses template.yaml (above)"
log "aws-sam-translator: template.yaml expands"
