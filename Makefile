# klik — the two commands: `make run` (whole stack) and `make test` (whole suite).
# Both create the venv and install the locked dependencies first when needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench proto proto-check stubs lint buf-lint typecheck check lock clean \
	web web-client web-check web-test

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "klik needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# Regenerate the protobuf stubs only when they are stale.
stubs: $(STAMP)
	@$(PY) scripts/gen_protos.py --check >/dev/null 2>&1 || $(PY) scripts/gen_protos.py

# klik studio (web/): installed from its lock, built into web/dist when its sources
# change; the gateway serves web/dist at /.
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json web/package.json web/package-lock.json

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --silent --no-audit --no-fund
	@touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent build
	@touch $@

web: web/dist/index.html

# The OpenAPI document and the TypeScript client's types, from the protos.
web-client: $(STAMP) web/node_modules/.installed
	$(PY) scripts/gen_web_client.py

web-check: $(STAMP) web/node_modules/.installed
	$(PY) scripts/gen_web_client.py --check
	cd web && node_modules/.bin/tsc --noEmit
	cd web && npm run --silent lint

web-test: web/node_modules/.installed
	cd web && node_modules/.bin/vitest run

run: stubs web
	$(PY) -m stack

test: stubs web
	$(PY) -m pytest $(PYTEST_ARGS)

# Every benchmark (bench/), then one table; installs wrk when missing.
bench: stubs
	$(PY) -m bench $(BENCH_ARGS)

proto: $(STAMP)
	$(PY) scripts/gen_protos.py

proto-check: $(STAMP)
	$(PY) scripts/gen_protos.py --check

node_modules/.bin/buf: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	@touch $@

buf-lint: node_modules/.bin/buf
	node_modules/.bin/buf lint

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy kit services gateway sandbox stack scripts tests bench clients/python/klik_client

# Everything CI checks besides the tests.
check: proto-check buf-lint lint typecheck web-check

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) node_modules web/node_modules web/dist var test-artifacts .pytest_cache .mypy_cache .ruff_cache
