# Greenlight: the two commands are `make serve` and `make test`.
# Everything is installed into a project-local virtualenv (.venv) from pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CQL_TOOLS := tools/cql
CQL_STAMP := $(CQL_TOOLS)/node_modules/.package-lock.json
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 1
# The FHIR IG packages inbound payloads are validated against (GREENLIGHT_IG_PACKAGES, unless set):
# the shared set beside the project when there is one, else the standard FHIR package cache.
IG_PACKAGES ?= $(firstword $(wildcard ../shared/fhir-packages) $(HOME)/.fhir/packages)

.PHONY: serve install test lint format bench conformance-report postgres-server cql-tools elm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The official CQL-to-ELM translator and engine (npm), pinned by tools/cql/package-lock.json
$(CQL_STAMP): $(CQL_TOOLS)/package.json $(CQL_TOOLS)/package-lock.json
	npm ci --prefix $(CQL_TOOLS) --no-audit --no-fund
	touch $@

cql-tools: $(CQL_STAMP)

## elm: translate every questionnaires/**/*.cql into the ELM JSON committed beside it
elm: $(CQL_STAMP)
	node $(CQL_TOOLS)/translate.mjs --path questionnaires/_shared questionnaires/*/*.cql

## serve: create the virtualenv, migrate, load the demo payer, serve on $(HOST):$(PORT)
serve: $(STAMP)
	GREENLIGHT_DEMO=true $(BIN)/greenlight demo-data
	GREENLIGHT_DEMO=true GREENLIGHT_IG_PACKAGES="$${GREENLIGHT_IG_PACKAGES:-$(IG_PACKAGES)}" \
		$(BIN)/greenlight serve --demo --no-auth --host $(HOST) --port $(PORT) --workers $(WORKERS)

## postgres-server: make sure the PostgreSQL server binaries exist (tests start their own cluster)
postgres-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		{ echo "installing the PostgreSQL server package"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null; }

## test: the whole suite, on SQLite and on a throwaway PostgreSQL (also records which IG
## requirement statements passing tests prove, for `make conformance-report`)
test: $(STAMP) postgres-server $(CQL_STAMP)
	mkdir -p var
	$(BIN)/pytest -q --requirements-json var/requirements-results.json

## conformance-report: IG statements (CRD, DTR, PAS server side) proven by passing tests; reads
## the results of the last `make test`, or runs the requirement-marked tests when there are none
conformance-report: $(STAMP)
	@if [ -f var/requirements-results.json ]; then \
		$(BIN)/python -m app.conformance.report --results var/requirements-results.json; \
	else \
		mkdir -p var && $(BIN)/python -m app.conformance.report --run-tests --results var/requirements-results.json; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: load on loopback, Greenlight beside a bare FastAPI app (see bench/README.md)
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(CQL_TOOLS)/node_modules
