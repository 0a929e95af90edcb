# Aquifer - the README's commands are these targets. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python >= 3.11; prefer 3.11, whose CPU torch wheel lies on these machines' disk (shared/STACK.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# llama.cpp (the local model of `make up`) is compiled here for this CPU, but without AMX: some VMs report AMX
# without granting its tile state, and the first matrix multiply then dies of SIGILL (seen here). The wheel is built
# once per machine into LLAMA_WHEELS: pip's own wheel cache would hand back one built with other flags.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
LLAMA_WHEELS ?= $(HOME)/.cache/aquifer/wheels/llama-cpp-python-0.3.36-noamx
LLAMA_CFLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)

# The certified OpenID provider the end-to-end tests use as the IdP (npm oidc-provider, pinned in tests/oidc_provider):
# installed once per machine outside the repo, found there by tests/test_oidc_provider.py.
export AQUIFER_OIDC_PROVIDER_DIR ?= $(HOME)/.cache/aquifer/oidc-provider
OIDC_PROVIDER_SRC := tests/oidc_provider

export AQUIFER_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(AQUIFER_DATA_DIR)/dagster
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM ?= true

.PHONY: help setup browser oidc-provider up test test-fast sample materialize ui status lint bench bench-policy bench-retrieval bench-gateway bench-mcp bench-ship bench-tracing bench-openlineage policy-test serve clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install Aquifer with its dev tools
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 needed, {sys.executable} is {sys.version.split()[0]}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: anything looser pulls a multi-GB CUDA build (shared/STACK.md)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" \
		$(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps -w $(LLAMA_WHEELS) '$(LLAMA_CPP)'
	$(BIN)/python -m pip install --quiet --find-links $(LLAMA_WHEELS) '$(LLAMA_CPP)'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

browser: ## Headless Chromium for the page tests (Debian's package; skipped where apt cannot install it)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } \
		|| echo "no chromium: the page tests will be skipped (apt-get install chromium)"

# npm ci into a fresh folder, moved into place when complete; the copied lock file says what is installed. A missing
# node/npm or an unreachable registry prints a line (the provider's tests are then skipped) and never fails the caller.
oidc-provider: ## The OpenID provider the end-to-end tests use as the IdP (npm, into ~/.cache; skipped without node/npm)
	@dir="$(AQUIFER_OIDC_PROVIDER_DIR)"; \
	if [ -d "$$dir/node_modules/oidc-provider" ] && cmp -s $(OIDC_PROVIDER_SRC)/package-lock.json "$$dir/package-lock.json"; then :; \
	elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "no node/npm: the OpenID provider tests will be skipped (apt-get install nodejs npm)"; \
	else \
		tmp=; mkdir -p "$$dir" && tmp=$$(mktemp -d "$$dir/.install.XXXXXX") && \
		cp $(OIDC_PROVIDER_SRC)/package.json $(OIDC_PROVIDER_SRC)/package-lock.json "$$tmp/" && \
		(cd "$$tmp" && npm ci --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000) >"$$dir/npm-ci.log" 2>&1 && \
		rm -rf "$$dir/node_modules" && mv "$$tmp/node_modules" "$$dir/node_modules" && \
		cp $(OIDC_PROVIDER_SRC)/package.json $(OIDC_PROVIDER_SRC)/package-lock.json "$$dir/" && \
		echo "oidc-provider installed in $$dir/node_modules" || \
		echo "npm could not install oidc-provider (see $$dir/npm-ci.log): the OpenID provider tests will be skipped"; \
		[ -z "$$tmp" ] || rm -rf "$$tmp"; \
	fi

sample: setup ## Generate the sample landing zone if it is absent
	@if [ -d "$(AQUIFER_DATA_DIR)/landing" ]; then echo "sample corpus present in $(AQUIFER_DATA_DIR)/landing"; \
	else $(BIN)/aquifer sample; fi

materialize: sample ## Promote the landing zone through bronze -> silver -> gold -> platinum
	@mkdir -p "$(DAGSTER_HOME)"
	$(BIN)/aquifer materialize

ui: setup ## Start the Dagster UI on http://127.0.0.1:3000 (foreground; Ctrl-C stops it)
	@mkdir -p "$(DAGSTER_HOME)"
	exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

up: sample ## Set up, materialize the sample data, start the Dagster UI and the API (Ctrl-C stops everything)
	@mkdir -p "$(DAGSTER_HOME)"
	$(BIN)/aquifer materialize || echo "materialize reported failed checks or steps: open the UI to see why"
	$(BIN)/aquifer status
	exec $(BIN)/aquifer up

status: setup ## Every table: rows, Delta version, last run, quarantine
	$(BIN)/aquifer status

test: setup browser oidc-provider ## Run the whole test suite (slow tests included)
	$(BIN)/python -m pytest -m "slow or not slow" -p no:cacheprovider

test-fast: setup ## Run the fast tests only
	$(BIN)/python -m pytest

lint: setup ## ruff and mypy --strict on the library
	$(BIN)/ruff check src pipelines tests bench agents
	$(BIN)/ruff format --check src pipelines tests bench agents
	$(BIN)/mypy

policy-test: setup ## Run the Rego policy tests (like `opa test -v`)
	$(BIN)/aquifer policy test

bench-retrieval: materialize ## Retrieval benchmark at 100k and 1M chunks (needs the sample index; ~15 min)
	$(BIN)/python bench/retrieval.py

serve: setup ## Serve the API alone on http://127.0.0.1:8000 (docs at /docs)
	$(BIN)/aquifer serve

bench-gateway: materialize ## Gateway overhead vs llama.cpp direct, context tokens, prompt-cache reuse (~5 min)
	$(BIN)/python bench/gateway.py

bench-mcp: materialize ## MCP search_context vs POST /v1/context: latency, concurrency 4, session open (~1-2 min)
	$(BIN)/python bench/mcp.py

bench-tracing: materialize ## Request traces: /v1/context p50 with OTLP span export vs not configured (~2 min)
	$(BIN)/python bench/tracing.py

bench-ship: materialize ## Decision-log shipper: records/s over OTLP/HTTP, serving p50/p99 with it on vs off (~4 min)
	$(BIN)/python bench/ship.py

bench-openlineage: setup ## OpenLineage: a bronze -> platinum run with lineage events vs without, cost per step (~3 min)
	$(BIN)/python bench/lineage_export.py

bench-policy: setup ## Policy decision benchmark (microseconds per decision)
	$(BIN)/python bench/policy.py

bench: setup ## Pipeline benchmark at 1,000,000 records (writes docs/benchmarks.md figures to stdout)
	$(BIN)/python bench/pipeline.py

clean: ## Remove generated data (keeps .venv)
	rm -rf "$(AQUIFER_DATA_DIR)"
