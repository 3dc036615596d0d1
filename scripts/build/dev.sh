#!/usr/bin/env bash
# `make test`'s one build for this machine: every workspace target in the dev profile (tests, the functions,
# the function host, the CLI), in one cargo invocation so the tests and the binaries the local stacks run
# share every compiled crate; then each binary laid out as `$1/<binary>/bootstrap`, the layout cargo-lambda
# gives `make up` (whose release build, with its own flags, would compile every crate a second time).
source "$(dirname "$0")/../../localstack/lib.sh"
lambda_dir="${1:?usage: build-dev.sh LAMBDA_DIR}"
with_progress "building tests, functions and function host (cargo build --all-targets)" "$LOCAL_DIR/logs/build-dev.log" \
  cargo build --workspace --all-targets --locked
# Workspace binaries, by name, from cargo's own metadata (no list kept by hand).
binaries="$(cargo metadata --no-deps --format-version 1 --locked |
  "$PYTHON_BIN" -c 'import json, sys; print("\n".join(t["name"] for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "bin" in t["kind"]))')"
rm -rf "$lambda_dir.new" && mkdir -p "$lambda_dir.new"
for binary in $binaries; do
  mkdir -p "$lambda_dir.new/$binary"
  cp "$CARGO_TARGET_DIR/debug/$binary" "$lambda_dir.new/$binary/bootstrap"
done
rm -rf "$lambda_dir" && mv "$lambda_dir.new" "$lambda_dir"
[[ -x "$lambda_dir/function-host/bootstrap" ]] || die "function host not built in $lambda_dir"
