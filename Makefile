# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup layout run replay-example test lint typecheck bench bench-quick soak mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on embedded defaults: the daemon with the example rules, the console channel
# and SQLite under var/. Set LEADRULES_WRITE_KEY to choose the ingest write key.
LEADRULES_WRITE_KEY ?= local-dev-key
export LEADRULES_WRITE_KEY
run: $(STAMP)
	@mkdir -p var
	$(BIN)/leadrules check
	@echo "write key: $(LEADRULES_WRITE_KEY)"
	$(BIN)/leadrules run

# A dry run of the example playbook over the example events; nothing is sent.
replay-example: $(STAMP)
	@mkdir -p var
	$(BIN)/leadrules replay examples/events.jsonl --until 2026-06-01T00:00:00Z --out var/example-decisions.jsonl
	@echo "decisions written to var/example-decisions.jsonl"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The import package `leadrules` maps engine/ and adapters/ (pyproject.toml, package-dir).
# Tools that read source trees rather than import hooks (import-linter, mypy) see it through
# a tree of two directory links under build/.
LAYOUT := build/layout
layout:
	@mkdir -p $(LAYOUT)/leadrules
	@ln -sfn ../../../engine $(LAYOUT)/leadrules/engine
	@ln -sfn ../../../adapters $(LAYOUT)/leadrules/adapters

lint: $(STAMP) layout
	$(BIN)/ruff check engine adapters tests bench
	$(BIN)/ruff format --check engine adapters tests bench
	PYTHONPATH=$(LAYOUT) $(BIN)/lint-imports

typecheck: $(STAMP) layout
	MYPYPATH=$(LAYOUT) $(BIN)/mypy -p leadrules.engine -p leadrules.adapters

# Benchmarks (bench/README.md): replay against its baselines, replay's memory at 1M and 10M
# events (bench/memory.py, about 15 minutes), replay and backtest on 1, 2 and a local
# cluster's workers against a stdlib floor (bench/scale.py), then the live daemon (SQLite,
# and PostgreSQL when LEADRULES_TEST_POSTGRES_URL is set).
bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.live
	if [ -n "$$LEADRULES_TEST_POSTGRES_URL" ]; then $(BIN)/python -m bench.live --database-url "$$LEADRULES_TEST_POSTGRES_URL"; fi

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick
	$(BIN)/python -m bench.scale --quick
	$(BIN)/python -m bench.live --quick

# Chaos soak (bench/soak.py): steady load, 20 SIGKILLs and 2 SIGTERMs of the real daemon, a
# receiver failing 10%; about 6 minutes. SOAK_ARGS="--duration 60 --postgres" to change.
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Mutation testing of the core (mutation/README.md): cosmic-ray's mutants, each tested in
# copies of the repository under build/mutation (never in the work tree) against the fast
# tests that execute its line; prints the score per module. Not part of `make test`.
MUTATION_STAMP := $(VENV)/.installed-mutation
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python mutation/run.py

clean:
	rm -rf $(VENV) build var/*.db var/*.jsonl .pytest_cache .mypy_cache .ruff_cache
