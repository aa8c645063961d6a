# ecom_pipeline: `make demo` and `make test` are the two commands; the rest are their parts.
# Everything is installed from the project's own files: Python packages in the ranges of settings.ini at the exact
# versions of constraints.txt into .venv (with uv, itself pinned below), compiled to bytecode as pip does,
# and the Delta Lake jars from Maven Central into ~/.cache/ecom_pipeline (once per machine; `ecom_pipeline.spark.delta_jars`).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHELL := /bin/bash
, := ,
SOURCES := nbs ecom_pipeline README.md dashboards
# uv installs constraints.txt's versions into .venv: 40 s from a new venv on 2 cores, where pip took 95 s with its cache
# warm (bench/README.md, session 34). --compile-bytecode does at install what pip does by default, where uv would leave
# it to the first import: setup 39 -> 55 s, and the demo's first scoring 7 s shorter (session 38). uv itself comes from
# PyPI through the venv's pip, at this version. uv reads neither pip.conf nor PIP_* settings: where it cannot install
# (a mirror only pip is configured for), pip does it instead.
UV_VERSION := 0.13.9
# $(call install,EXTRAS): the project with these extras at constraints.txt's versions, by uv, else by pip
install = $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(1)]" \
  || { echo "setup: uv could not install the packages; installing them with pip" >&2; $(BIN)/pip install -q -c constraints.txt -e ".[$(1)]"; }

.PHONY: deploy-prod lock bundle-check help setup hooks demo daily bench test lint check-sync nbtest pytest readme export clean cluster-test slow-test browser screenshots

help:
	@echo "make demo        generate sample data, run the daily pipeline for each day, score the customers, leave Delta tables in lakehouse/"
	@echo "make test        check the package is what the notebooks export, lint, then pytest: the notebooks' tests (tests/test_notebooks.py) and the tests/ files"
	@echo "make slow-test   tests that start Spark processes of their own: SIGKILL crash points in New York time, a notebook session open while two daily runs go through, the papermill report, the daily run as stage tasks, papermill on S3, backfill, maintenance; concurrent runs, SMTP and SES alerts, dimensions, a bad reference file (about 25 min, in PYTEST_WORKERS=2 processes)"
	@echo "make cluster-test  run the pipeline on a local standalone cluster (2 workers) and via Spark Connect; compare with local[2]"
	@echo "make daily DATE=YYYY-MM-DD  run one landing day through the papermill notebook nbs/runs/daily_run.ipynb; the executed notebook is kept in runs/"
	@echo "make bench       the benchmark (not part of make test, about 1 h 45 min): results in bench/results/latest.json and bench/README.md"
	@echo "make lint        ruff on the package, the tests and the tools (part of make test)"
	@echo "make nbtest      the notebooks' tests alone, with nbdev_test (make test runs them in pytest)"
	@echo "make setup       create .venv, install the dependencies at the versions of constraints.txt (compiled to bytecode), the Delta Lake jars and the git hooks (done by demo and test)"
	@echo "make bundle-check validate databricks.yml offline for every target: the CLI's JSON schema and deploy rules (part of make test)"
	@echo "make deploy-prod  deploy the bundle's prod target, only for a committed tree whose commit has a QA sign-off (ecom-pipeline signoff)"
	@echo "make lock        write constraints.txt again from the ranges in settings.ini (a new venv with every extra, frozen)"
	@echo "make export      nbdev_export + nbdev_clean + dashboards/sales_overview.lvdash.json + README.md after editing notebooks"
	@echo "make screenshots README pictures of the demo dashboard (after make demo)"
	@echo "make clean       remove lakehouse/ (the local warehouse and landing folder) and test artifacts"

$(STAMP): settings.ini setup.py constraints.txt
	@command -v java >/dev/null 2>&1 || { echo "ecom_pipeline needs Java 17+ for Spark, and no 'java' is on PATH: install a JDK 17 (e.g. apt-get install openjdk-17-jre-headless)." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "ecom_pipeline needs Python 3.10+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION) || echo "setup: pip could not install uv $(UV_VERSION)" >&2
	$(call install,dev$(,)local$(,)clv)
	$(BIN)/python -c 'from ecom_pipeline.spark import delta_jars; print(len(delta_jars()), "Delta Lake jars in the cache")'
	@touch $(STAMP)

setup: $(STAMP) hooks

# Notebooks are committed clean: nbdev's hooks (clean on save in Jupyter, a notebook merge driver: .gitconfig and
# .gitattributes) and a pre-commit hook that runs nbdev_clean on the staged notebooks. Skipped outside a git work tree.
hooks: $(STAMP)
	@if [ -d .git ]; then \
	  $(BIN)/nbdev_install_hooks >/dev/null && install -m 755 tools/pre-commit .git/hooks/pre-commit; \
	fi

demo: setup
	$(BIN)/ecom-pipeline demo

# One landing day through the papermill notebook; DATE defaults to yesterday in UTC. Records go to runs/YYYY/MM/DD/
# (or $$ECOM_RUN_RECORDS, e.g. s3://bucket/run-records).
daily: setup
	$(BIN)/ecom-pipeline run --via-papermill $(if $(DATE),--date $(DATE),)

lint: setup
	$(BIN)/ruff check ecom_pipeline tests tools bench

# The benchmark: throughput, fixed overhead, growth with history, layout; ratios to a bare Spark floor and to DuckDB.
# Not part of make test. `make bench ARGS=--quick` tries it on small sizes, once each (about 20 minutes).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) settings.ini constraints.txt
	$(call install,dev$(,)local$(,)clv$(,)bench)
	@touch $(BENCH_STAMP)

bench: setup $(BENCH_STAMP)
	$(BIN)/python bench/bench.py $(ARGS)

export: setup
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python -c "from ecom_pipeline.dashboard import write_lakeview; write_lakeview()"
	$(BIN)/python tools/readme.py

readme: setup
	$(BIN)/python tools/readme.py

# Fails when nbdev_export, nbdev_clean, the .lvdash.json build or the README build would change a file: the package must be exactly what
# the notebooks export, and notebooks are committed clean.
check-sync: setup
	@before=$$(find $(SOURCES) -type f -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' | sort | xargs md5sum); \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python -c "from ecom_pipeline.dashboard import write_lakeview; write_lakeview()" \
	  && $(BIN)/python tools/readme.py >/dev/null; \
	after=$$(find $(SOURCES) -type f -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' | sort | xargs md5sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "check-sync: nbdev_export / nbdev_clean / the .lvdash.json build / tools/readme.py changed these files; commit the result:" >&2; \
	  diff <(echo "$$before") <(echo "$$after") | grep '^[<>]' | awk '{print "  " $$3}' | sort -u >&2; exit 1; \
	fi; echo "check-sync: package, notebooks and README are in sync"

# The notebooks' tests alone, as nbdev runs them: two processes, each starting its own Spark. make test runs the same
# notebooks inside pytest's processes instead (tests/test_notebooks.py), where Spark is already up and warm.
nbtest: setup
	$(BIN)/nbdev_test --n_workers 2 --timing

# pytest in PYTEST_WORKERS processes (pytest-xdist), each with its own Spark session and temporary warehouse; a test file
# stays in one process (--dist loadfile), so its module-scoped lakehouse is built once. On 2 cores two processes took
# make test's pytest from 754 s to 630 s and make slow-test from about 1,790 s to 1,471 s (bench/README.md, session 26):
# one Spark session leaves part of a core idle while its driver plans. PYTEST_WORKERS=0 runs in this process, one test
# after the other.
PYTEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

pytest: setup browser
	$(BIN)/pytest $(XDIST)

# The dashboard test drives Debian's chromium through chromedriver (selenium). Installed here when missing and this
# runs as root with apt; otherwise that one test skips and says why. No browser is ever downloaded from elsewhere.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "browser: installing Debian chromium + chromium-driver for the dashboard test"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1; }; } \
	  || echo "browser: apt-get could not install chromium; the browser test will skip"; \
	else echo "browser: no chromium and not root with apt; the browser test will skip (apt-get install chromium chromium-driver)"; fi

# README pictures: the demo's dashboard, one screenshot per page, into docs/images/ (needs make demo first).
screenshots: setup browser
	$(BIN)/python tools/screenshots.py

test: check-sync lint pytest

# The longer tests (pytest -m slow): concurrent runs, the SMTP and SES alerts, a changed file; and those that start Spark processes of their own: SIGKILL at four points of a run, then a
# rerun that must converge, all in America/New_York time, to the tables of a UTC run; the CLI in
# separate processes finding each other's tables by name while a notebook-like session stays open on the same warehouse;
# the report notebook under papermill. CI runs it after make test.
slow-test: setup
	$(BIN)/pytest -m slow $(XDIST)

# The same pipeline on a Spark standalone master + two 1-core workers, and through a Spark Connect server, all on
# 127.0.0.1; gold must equal a local[2] run on the same input.
cluster-test: setup
	$(BIN)/pytest -m cluster -s tests/test_cluster.py

# The Databricks bundle against the CLI's schema (../shared/databricks/bundle_schema.json, or SCHEMA=) and deploy rules.
bundle-check: setup
	$(BIN)/python tools/bundle_check.py $(if $(SCHEMA),--schema $(SCHEMA),)

# The production deploy: only a committed tree, and only a commit with a QA sign-off in logs.qa_signoffs of production's
# catalog (ecom-pipeline diff, then signoff: README, "QA sign-off"), read through Databricks SQL with the CLI's login.
# CI's deploy step (buildspec.yml) makes the same check. SIGNOFF_ARGS: e.g. --catalog, --warehouse-id; DEPLOY_ARGS: the --vars.
deploy-prod:
	@git diff --quiet HEAD -- || { echo "deploy-prod: the work tree has uncommitted changes: deploy a committed, signed-off commit" >&2; exit 1; }
	$(PYTHON) tools/require_signoff.py --commit $$(git rev-parse HEAD) $(SIGNOFF_ARGS)
	databricks bundle deploy -t prod $(DEPLOY_ARGS)

# constraints.txt again from the ranges of settings.ini: a new virtual environment with every extra, frozen.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q --upgrade pip setuptools wheel
	.venv-lock/bin/pip install -q -e ".[dev,local,clv,bench]"
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e '; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock
	@echo "lock: constraints.txt written; run make setup to install it"

clean:
	rm -rf lakehouse test-artifacts spark-warehouse metastore_db derby.log
