# Every target creates .venv from the lock when it is missing, so a fresh clone needs nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export ASFT_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(ASFT_DATA_DIR)/dagster_home
export MLFLOW_DISABLE_TELEMETRY := true
export DAGSTER_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
RUN_CONFIG ?=
PORT ?= 3000

.PHONY: install prepare run run-ml100k ml100k sysdeps test lint format dev docs graph mlflow-ui dagster-home bench clean

install: $(VENV)/.installed prepare

# The locks pin every package (torch 2.13.0, dbt-core < 1.12): no resolver. requirements-dev.lock is
# requirements.lock plus the tests' and linters' tools.
$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The code location's build step: `dbt parse` writes the manifest the dbt assets are built from
# (only when it is missing or a model, macro or yml changed). Loading the code location runs
# nothing, so every target that loads it depends on this one.
prepare: $(VENV)/.installed
	@$(BIN)/python -m orchestration.prepare

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# The main job on the embedded default data (the simulator), recorded in DAGSTER_HOME for the UI:
# one line per finished asset, then the stage reports' tables; the full event log (and dbt's
# per-test lines) in $(ASFT_DATA_DIR)/logs/, named in the last lines. Through Dagster's Python API
# (orchestration/launch.py): `dagster job execute` is superseded by `dg launch`, which is not in
# the lock.
run: install prepare dagster-home
	@$(BIN)/python -m orchestration.launch --job main_job --summary $(if $(RUN_CONFIG),--config $(RUN_CONFIG))

# ML-100K through the same assets, in its own data directory.
ml100k: install
	$(BIN)/python -m watchlogs.fetch_ml100k

run-ml100k: install
	$(MAKE) ml100k run ASFT_DATA_DIR=$(CURDIR)/data/ml-100k RUN_CONFIG=configs/ml-100k.yaml

# Debian packages the browser and Redis tests drive: headless Chromium and redis-server.
SYSTEM_PACKAGES := chromium redis-server
sysdeps:
	@command -v chromium >/dev/null && command -v redis-server >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

# Two pytest-xdist workers, each given whole test modules (`--dist loadfile`: a module's fixtures
# are built once), in collection order (`--no-loadscope-reorder`), where tests/conftest.py puts
# the slowest modules first. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: install prepare sysdeps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# The UI on 127.0.0.1:$(PORT), with the same DAGSTER_HOME as `make run`.
dev: install prepare dagster-home
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(ASFT_DATA_DIR)/mlflow/mlflow.db -h 127.0.0.1 -p 5000

# The dbt docs site (lineage, model and column docs, the catalog from the warehouse `make run`
# built) into $(ASFT_DATA_DIR)/dbt_docs/; prints where to open or serve it.
docs: install prepare
	$(BIN)/python -m orchestration.dbt_docs

# docs/asset-graph.png, the picture of the asset graph in the README (matplotlib; no network).
graph: install prepare
	$(BIN)/python -m orchestration.graph_png

bench: install
	$(BIN)/python -m benchmarks.sessionization --repeats 3

clean:
	rm -rf $(ASFT_DATA_DIR) transforms/target transforms/logs
