# Everyday commands. `make run` and `make test` set up everything they need.
# `make help` lists the targets with their `## ` comments.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help run demo test test-timescale install lock lint fmt migrate job clean system-packages fuzz \
	faults bench soak bench-insights bench-serve migrations-manifest
.DEFAULT_GOAL := help

## help: this list
help:
	@sed -n 's/^## \{0,1\}//p' $(MAKEFILE_LIST)

# The exact versions and hashes of requirements-dev.lock, nothing resolved: --no-deps, and
# the project itself installed with the locked setuptools (no build isolation).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## install: the virtualenv .venv from requirements-dev.lock (make run and make test do it)
install: $(STAMP)

# requirements.lock (the service, for the image) and requirements-dev.lock (with the tools)
# from pyproject.toml; lock-pins.txt holds the versions kept exact. uv does the resolving.
LOCK_TOOLS := $(VENV)-lock-tools
LOCK := $(LOCK_TOOLS)/bin/uv pip compile pyproject.toml - --universal --python-version 3.11 \
	--generate-hashes --constraint lock-pins.txt --custom-compile-command "make lock" --quiet

## lock: refresh requirements.lock and requirements-dev.lock to the newest allowed versions
lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
		$(LOCK_TOOLS)/bin/python -m pip install --quiet uv; }
	echo 'setuptools>=77' | $(LOCK) --upgrade -o requirements.lock
	echo 'setuptools>=77' | $(LOCK) --upgrade --extra dev -o requirements-dev.lock

## run: embedded default: local PostgreSQL in ./.engagement, migrations, service + scheduler
run: $(STAMP)
	$(BIN)/engagement dev

## demo: sample projects and traffic for the service `make run` started (in a second terminal)
demo: $(STAMP)
	$(BIN)/engagement demo $(DEMO_ARGS)

system-packages:
	scripts/ensure-system-packages

## test: the whole suite against a throwaway PostgreSQL (or TEST_DATABASE_URL)
test: $(STAMP) system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-timescale: the whole suite against TEST_DATABASE_URL, a server with TimescaleDB
## Community preloaded (stops at once if it is not); the profile is timescale
test-timescale: $(STAMP)
	$(BIN)/python scripts/check-timescale
	ENGAGEMENT_PROFILE=timescale $(BIN)/python -m pytest $(PYTEST_ARGS)

## fuzz: schemathesis, 1,000 generated cases per operation and every phase (about 20 minutes)
fuzz: $(STAMP) system-packages
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} FUZZ_PHASES=$${FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
		$(BIN)/python -m pytest tests/test_fuzz.py -p no:cacheprovider $(PYTEST_ARGS)

## faults: the fault-injection suite with more cycles of kills and restarts (FAULT_CYCLES)
faults: $(STAMP) system-packages
	FAULT_CYCLES=$${FAULT_CYCLES:-5} $(BIN)/python -m pytest tests/test_faults.py -p no:cacheprovider $(PYTEST_ARGS)

## bench: ingest and trending figures, each next to a baseline measured in the same run
## (about 25 minutes; bench-results/*.json). More: BENCH_ARGS="--trending-scales 10000,100000,1000000"
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## bench-insights: latency of the insights endpoints over 30 days for 10,000 projects (about
## 15 minutes). BENCH_ARGS="--database-url postgresql://... --profile timescale" for TimescaleDB
bench-insights: $(STAMP)
	$(BIN)/python -m bench.insights $(BENCH_ARGS)

## bench-serve: the bench's service, framework ceiling and database left running for another
## load generator (prints wrk and pgbench commands; Ctrl-C stops and prints the rows stored)
bench-serve: $(STAMP)
	$(BIN)/python -m bench.serve $(BENCH_ARGS)

## soak: finds the maximum track-click rate, then 10 minutes at 70 % of it (SOAK_SECONDS)
soak: $(STAMP)
	$(BIN)/python -m bench --only track-click --skip-trending \
		--soak-seconds $${SOAK_SECONDS:-600} $(BENCH_ARGS)

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check engagement cli service scheduler tests bench
	$(BIN)/mypy engagement cli service scheduler bench

## fmt: ruff's fixes
fmt: $(STAMP)
	$(BIN)/ruff check --fix engagement cli service scheduler tests bench

## migrate: apply the migrations to DATABASE_URL
migrate: $(STAMP)
	$(BIN)/engagement migrate

## migrations-manifest: append new files of sql/migrations to its MANIFEST.sha256 (applied
## migrations are immutable; it refuses while a listed file is missing or changed)
migrations-manifest:
	$(PYTHON) scripts/migrations-manifest --add

## job: run one scheduler job now against the `make run` database, e.g. make job JOB=compute-trending
## (without JOB: the list of jobs)
job: $(STAMP)
	@if [ -f .engagement/dev.env ]; then set -a && . ./.engagement/dev.env && set +a; \
	elif [ -n "$(JOB)" ] && [ -z "$$DATABASE_URL" ]; then \
		echo "no .engagement/dev.env (nor DATABASE_URL): start 'make run' first"; exit 1; fi; \
	$(BIN)/engagement run-job $(JOB)

## clean: remove the virtualenvs and caches
clean:
	rm -rf $(VENV) $(LOCK_TOOLS) .pytest_cache .mypy_cache .ruff_cache *.egg-info
