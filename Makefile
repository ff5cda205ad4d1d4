# Two commands matter on a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test test-quick lint typecheck bench package clean deps node-deps tools

demo: deps node-deps
	$(BIN)/bucket-ingest demo

test: deps node-deps tools lint typecheck
	$(BIN)/pytest -q

# Leaves out the slow end-to-end runs (terraform apply against moto, long pipelines).
test-quick: deps node-deps tools
	$(BIN)/pytest -q -m "not slow"

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

bench: deps node-deps
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

deps: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

node-deps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# One deployable zip per cloud under build/: only handlers/, shared/, the entry files and runtime dependencies.
package: deps
	$(BIN)/python -m bucket_ingest.package

# The infrastructure tools (sam, cfn-lint, checkov), each in its own virtual environment under .tools/.
tools:
	bash scripts/install-tools.sh

clean:
	rm -rf $(VENV) $(TOOLS) node_modules build .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
