# protomesh entry points. `make run` and `make test` are the README's quick start;
# CI (.ci/run) calls `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BASELINE := proto/baseline.binpb
OPENAPI_CLIENT := $(VENV)/openapi-client/bin/openapi-python-client

.PHONY: setup generate lint check-generated breaking baseline test test-fast run bench api-wheel clean

setup: $(STAMP)

# openapi-python-client (a foreign REST client the tests generate) pins an older typer
# than ours, so it lives in a venv of its own: $(OPENAPI_CLIENT).
$(STAMP): requirements.lock pyproject.toml tools/openapi-client.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(VENV)/openapi-client
	$(BIN)/uv pip sync --quiet --python $(VENV)/openapi-client/bin/python tools/openapi-client.lock
	touch $(STAMP)

# Lock files from pyproject.toml and tools/openapi-client.in (run after changing dependencies).
lock: setup
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet tools/openapi-client.in --python-version 3.11 -o tools/openapi-client.lock

generate: setup
	$(BIN)/python tools/generate_protos.py

lint: setup
	$(BIN)/buf lint
	$(BIN)/ruff check .
	$(BIN)/mypy

# Fails when generated/ is not what `make generate` produces from proto/.
check-generated: generate
	@git add -N generated >/dev/null 2>&1 || true
	@git diff --exit-code --stat -- generated || (echo "generated/ is out of sync with proto/: run 'make generate' and commit" >&2; exit 1)

breaking: setup
	$(BIN)/buf breaking proto --against $(BASELINE)

# Records the current contracts as the baseline `make breaking` compares with.
baseline: setup
	$(BIN)/buf build proto --exclude-source-info -o $(BASELINE)

test: lint check-generated breaking
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -x -q

run: setup
	$(BIN)/protomesh up

bench: setup
	$(BIN)/protomesh bench

# The generated stubs alone as a wheel (protomesh-api: protobuf, grpcio and
# googleapis-common-protos, nothing of the services) in build/dist/.
api-wheel: setup
	$(BIN)/python tools/build_api_wheel.py build/dist

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
