# Vyapaar Nexus — the local environment (localstack/), the build, lint, test and bench scripts (scripts/).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help up down reset test sim sim-long chaos priority bench build build-local lint fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

up: ## install tools, start LocalStack, build, deploy template.yaml, start the function host
	@bash localstack/up.sh

down: ## stop what `make up` started
	@bash localstack/down.sh

reset: ## stop and delete the local environment's data
	@bash localstack/reset.sh

test: ## lint, unit tests, integration tests on an isolated local stack (torn down afterwards)
	@bash scripts/test/run.sh

sim: ## the deterministic simulation, SEEDS=200 seeds of 20 orders (SEED=n replays one; TRACE=1 prints it)
	@SEEDS=$(or $(SEEDS),200) bash scripts/sim/run.sh

sim-long: ## the long simulation run: 50 000 seeds of 20 orders, a million orders
	@SEEDS=50000 bash scripts/sim/run.sh

chaos: ## the large chaos run alone (ORDERS=1000 by default) on its own isolated local stack
	@NEXUS_TEST_SUITE=chaos NEXUS_CHAOS_ORDERS=$(or $(ORDERS),1000) bash scripts/test/run.sh

priority: ## the VIP lane's measurement alone (BACKLOG=200 standard orders ahead) on its own isolated local stack
	@NEXUS_TEST_SUITE=priority NEXUS_PRIORITY_BACKLOG=$(or $(BACKLOG),200) bash scripts/test/run.sh

bench: ## nexus bench on its own isolated local stack: Nexus against the null saga (BENCH_ARGS="--burst 100 -o json")
	@bash scripts/bench/run.sh

build: ## the AWS deploy artifacts: arm64 bootstrap per function (cargo-lambda)
	@bash localstack/install.sh && bash scripts/build/aws.sh

build-local: ## the functions and the function host for this machine, as the local stack runs them
	@bash localstack/install.sh && bash scripts/build/local.sh

lint: ## cargo fmt --check, cfn-lint, checkov, the crate layering, clippy -D warnings (NEXUS_LINT_CACHE=0: no skips)
	@bash localstack/install.sh --lint && bash scripts/lint/lint.sh

fmt: ## format the code
	@cargo fmt --all
