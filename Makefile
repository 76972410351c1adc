# Two commands on a fresh machine: `make repro` (whole pipeline) and `make test`.
# Each bootstraps .venv from the pinned requirements.txt first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv repro test bench taiwan lint mlflow-ui clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

repro: venv  ## run the whole pipeline on the built-in simulated loan book
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: venv  ## run the test suite
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: venv  ## benchmarks -> benchmarks/results/*.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench_pipeline.py

lint: venv
	$(BIN)/ruff check src tests benchmarks

mlflow-ui: venv  ## MLflow UI on http://127.0.0.1:5000 over the local sqlite store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV)

TAIWAN_CSV ?= ../shared/data/taiwan_default/UCI_Credit_Card_named.csv
taiwan: venv  ## the real Taiwan data through the pipeline, then the comparison with its reference model
	$(BIN)/huishou --params params_taiwan.yaml adapt taiwan --input $(TAIWAN_CSV)
	$(BIN)/huishou --params params_taiwan.yaml validate
	$(BIN)/huishou --params params_taiwan.yaml features
	$(BIN)/huishou --params params_taiwan.yaml train
	$(BIN)/huishou --params params_taiwan.yaml evaluate
	$(BIN)/python benchmarks/bench_taiwan.py $(TAIWAN_CSV)
