# cslab: two commands on a fresh machine: `make audit` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := data/demo
REPORT := reports/demo

.DEFAULT_GOAL := help
.PHONY: help setup audit demo lint test lab bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)  ## Create .venv/ with the kit and its test tools (only when needed)

$(DEMO)/subscriptions.csv: | $(STAMP)
	$(BIN)/cslab synth --out $(DEMO)  # the demo book: 3,000 accounts, 36 months, seed 42 (cslab/config.py)

demo: $(DEMO)/subscriptions.csv  ## Generate the demo data in data/demo/ if absent

audit: $(STAMP) $(DEMO)/subscriptions.csv  ## Run the full audit on data/demo/ into reports/demo/
	$(BIN)/cslab summary $(DEMO)
	$(BIN)/cslab audit $(DEMO) --out $(REPORT) --client "Demo SaaS Co" --force

lint: $(STAMP)  ## Check the code with ruff: lint rules and formatting (pyproject.toml); `ruff format .` fixes the latter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint  ## Lint, then run the tests
	$(BIN)/python -m pytest

lab: $(STAMP)  ## Open JupyterLab on notebooks/
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)  ## Time every stage on books of 3k/30k/100k accounts into benchmarks/RESULTS.md (long; BENCH_ARGS="--sizes 3000")
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:  ## Remove generated reports and demo data (keeps .venv/)
	rm -rf $(REPORT) $(DEMO)
