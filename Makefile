# The two front doors: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo screenshot test lint format install chromium wrk bench

$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium drives the browser tests; Playwright's own browser download cannot work here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The benchmark's load tool, Debian's wrk (a new machine does not have it).
wrk:
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# ADDR: where the demo listens, e.g. `make demo ADDR=0.0.0.0:8000` to reach it from other machines.
ADDR ?= 127.0.0.1:8000
demo: install
	$(BIN)/python manage.py run_demo --addr $(ADDR)

# README's picture (docs/admin-customer.png), from a throwaway demo: its own temporary database,
# served on a free port, captured with Chromium, then removed. The running demo is not touched.
screenshot: install chromium
	$(BIN)/python scripts/screenshot.py

# Both cores: each pytest-xdist worker gets its own database, cache prefix and Celery queue.
test: install chromium
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark of BENCHMARKS.md: its own database (entitle_bench) and Redis database (13),
# N = 1k, 10k, 100k, about 25-35 minutes. Not part of `make test`. BENCH_ARGS: python -m bench --help.
bench: install wrk
	$(BIN)/python -m bench $(BENCH_ARGS)
