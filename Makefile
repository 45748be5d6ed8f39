# sdi: `make run` sets up everything and serves; `make test` sets up and tests.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYS_STAMP := var/.system-deps
ASSETS := sdi/api/static/vendor/.built

.PHONY: run test stop deps assets lint typecheck contracts pytest bench clean help

help:
	@echo "make run   - install what is missing, start PostGIS, load the demo, serve on :$${SDI_PORT:-5000}"
	@echo "make test  - the same set-up, then lint, types, import contracts and the test suite"
	@echo "make stop  - stop the embedded PostGIS cluster"

$(SYS_STAMP): scripts/install-system-deps
	./scripts/install-system-deps
	@mkdir -p var && touch $@

$(STAMP): pyproject.toml scripts/find-python | $(SYS_STAMP)
	@py=$$(./scripts/find-python) && echo "Using $$py" && \
	  { [ -x $(BIN)/python ] || $$py -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# Front-end libraries of the HTML pages, from npm into the package (no CDN).
$(ASSETS): frontend/package.json frontend/package-lock.json scripts/build-assets | $(SYS_STAMP)
	./scripts/build-assets
	@touch $@

assets: $(ASSETS)

deps: $(SYS_STAMP) $(STAMP) assets

run: deps
	$(BIN)/sdi up

stop:
	@[ -x $(BIN)/sdi ] && $(BIN)/sdi db stop || true

lint: deps
	$(BIN)/ruff check sdi tests bench
	$(BIN)/ruff format --check sdi tests bench

typecheck: deps
	$(BIN)/mypy

contracts: deps
	$(BIN)/lint-imports

pytest: deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: deps lint typecheck contracts pytest

bench: deps
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
