# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run replay-example test lint typecheck bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on embedded defaults: the example rules, the console channel, SQLite under var/.
run: $(STAMP)
	@mkdir -p var
	$(BIN)/leadrules check
	$(BIN)/leadrules replay examples/events.jsonl --until 2026-06-01T00:00:00Z --out var/example-decisions.jsonl
	@echo "decisions written to var/example-decisions.jsonl"

replay-example: $(STAMP)
	$(BIN)/leadrules replay examples/events.jsonl --until 2026-06-01T00:00:00Z

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check engine adapters tests bench
	$(BIN)/ruff format --check engine adapters tests bench

typecheck: $(STAMP)
	$(BIN)/mypy engine adapters

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) var/*.db var/*.jsonl .pytest_cache .mypy_cache .ruff_cache
