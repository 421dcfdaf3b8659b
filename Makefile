# Churn MLOps — every workflow is one target. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
PYTEST_ARGS ?=

.PHONY: help setup run repro pull track app test test-setup system browser bench lint format lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The install stamp is named by the content of the files that define the environment, so a fresh
# clone sharing an installed VENV (VENV=/path/.venv make repro) does not reinstall it.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml 2>/dev/null | sha1sum | cut -c1-12)

setup: $(STAMP) ## create .venv with the pinned requirements and the churn package

$(STAMP):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

repro: pull ## run the DVC pipeline (only the stages whose inputs changed), then track it in MLflow
	$(PY) -m churn track

pull: setup ## the pipeline's outputs from the DVC remote when one is configured, else dvc repro
	$(PY) scripts/pull_or_repro.py

track: setup ## log the pipeline's models to MLflow (idempotent) and point the registry aliases at them
	$(PY) -m churn track

run: repro ## set up, run the pipeline on the default (synthetic) input, track it in MLflow, then open the app
	@if [ -f app/__main__.py ]; then $(PY) -m app; else \
	  echo; echo "Pipeline done. Metrics: dvc metrics show   Plots: dvc plots show (metrics/plots/)"; \
	  dvc metrics show; fi

app: setup ## start the Gradio app on 127.0.0.1:7860
	$(PY) -m app

system: ## install the Debian packages the tests need, when missing: chromium, postgresql, a Java runtime
	@missing=; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ ls /usr/lib/postgresql/*/bin/initdb || command -v initdb; } >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

browser: system ## (alias of system: Debian chromium for the browser tests and screenshots)

test-setup: setup system ## everything the tests need

test: test-setup ## set up and run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup ## run the benchmarks; results in bench/results/*.json
	$(PY) bench/run_all.py

lint: setup ## ruff check + format check + import layers (lint-imports)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

format: setup ## apply ruff fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

lock: ## re-resolve requirements.txt from the top-level pins in requirements.in
	rm -rf /tmp/churn-lock && python3 -m venv /tmp/churn-lock
	/tmp/churn-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Exact pins (the lock). Resolved together on Python 3.11; regenerate with 'make lock'."; \
	  /tmp/churn-lock/bin/pip freeze; } > requirements.txt

clean: ## remove caches (keeps .venv and DVC cache)
	rm -rf .pytest_cache .ruff_cache
