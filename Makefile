# Everyday commands. `make run` and `make test` set up everything they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-timescale install lint fmt migrate job clean system-packages fuzz faults bench soak \
	bench-insights bench-serve migrations-manifest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: embedded default: local PostgreSQL in ./.engagement, migrations, service + scheduler
run: $(STAMP)
	$(BIN)/engagement dev

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

lint: $(STAMP)
	$(BIN)/ruff check service scheduler tests bench
	$(BIN)/mypy service scheduler bench

fmt: $(STAMP)
	$(BIN)/ruff check --fix service scheduler tests bench

migrate: $(STAMP)
	$(BIN)/engagement migrate

## migrations-manifest: append new files of sql/migrations to its MANIFEST.sha256 (applied
## migrations are immutable; it refuses while a listed file is missing or changed)
migrations-manifest:
	$(PYTHON) scripts/migrations-manifest --add

## job: run one scheduler job now against the `make run` database, e.g. make job JOB=compute-trending
job: $(STAMP)
	@test -f .engagement/dev.env || { echo "start 'make run' first"; exit 1; }
	set -a && . ./.engagement/dev.env && set +a && $(BIN)/engagement run-job $(JOB)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
