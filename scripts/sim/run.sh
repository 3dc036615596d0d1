#!/usr/bin/env bash
# `make sim`: the deterministic simulation (docs/simulation.md). SEEDS seeds of ORDERS orders from FIRST;
# SEED=n replays one seed (its digest on the last line; TRACE=1 prints its whole trace).
source "$(dirname "$0")/../../localstack/lib.sh"
cd "$ROOT"
args=(--orders "${ORDERS:-20}")
if [[ -n "${SEED:-}" ]]; then
  args+=(--seed "$SEED")
  [[ "${TRACE:-0}" != 0 ]] && args+=(--trace)
else
  args+=(--seeds "${SEEDS:-200}" --first "${FIRST:-1}")
fi
# The dev profile `make test` builds (the simulation's crates optimised in it, Cargo.toml).
cargo run -q --locked -p nexus-sim -- "${args[@]}"
