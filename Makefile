# klik — the two commands: `make run` (whole stack) and `make test` (whole suite).
# Both create the venv and install the locked dependencies first when needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench proto proto-check stubs lint buf-lint typecheck check lock clean

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

run: stubs
	$(PY) -m stack

test: stubs
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
	$(VENV)/bin/mypy kit services gateway sandbox stack scripts tests bench

# Everything CI checks besides the tests.
check: proto-check buf-lint lint typecheck

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
