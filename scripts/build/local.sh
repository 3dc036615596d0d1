#!/usr/bin/env bash
# What the local stack runs: the functions and the function host, for this machine, laid out under
# $LAMBDA_DIR as cargo-lambda lays out its builds (`<binary>/bootstrap`, where the function host looks).
# The dev profile, whose dependencies are optimised (Cargo.toml): `make test` runs the whole suite on it,
# and it builds in well under the time of a release build. The release artifacts are the arm64 ones that
# ship to Lambda (`make build`); `local.sh release` builds this machine's for `make bench`, with the two
# binaries the bench itself runs: the CLI (`nexus bench`) and the null saga's responder. Never the tests or
# the simulation.
source "$(dirname "$0")/../../localstack/lib.sh"
cd "$ROOT"
binaries=(function-host)
for dir in "$ROOT"/functions/*/; do binaries+=("$(basename "$dir")"); done
packages=()
for binary in "${binaries[@]}"; do packages+=(-p "$binary"); done
if [[ "${1:-dev}" == release ]]; then
  # `make bench`: the release build, as it ships (cargo-lambda, for this machine), and the bench's own two.
  packages+=(-p nexus-cli -p null-responder)
  with_progress "building functions and function host (cargo lambda build --release)" \
    "$LOCAL_DIR/logs/build-local.log" cargo lambda build --release --locked --lambda-dir "$LAMBDA_DIR" "${packages[@]}"
else
  with_progress "building functions and function host (cargo build)" "$LOCAL_DIR/logs/build-local.log" \
    cargo build --locked "${packages[@]}"
  rm -rf "$LAMBDA_DIR.new"
  for binary in "${binaries[@]}"; do
    mkdir -p "$LAMBDA_DIR.new/$binary"
    cp "$CARGO_TARGET_DIR/debug/$binary" "$LAMBDA_DIR.new/$binary/bootstrap"
  done
  rm -rf "$LAMBDA_DIR" && mv "$LAMBDA_DIR.new" "$LAMBDA_DIR"
fi
[[ -x "$(function_host_bin)" ]] || die "function host not built at $(function_host_bin)"
