# Two entry points: `make run` (the whole DAG on the embedded default, or CORPORA=DIR) and `make test`.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON  ?= python3
CORPORA ?=
# the installer that reads uv.lock; the same pin is in the dev extra so `uv sync` keeps it
UV_PIN  := uv==0.13.9
# default DVC remote (dvc push / dvc pull), set in the untracked .dvc/config.local unless one exists
DVC_REMOTE ?= $(abspath $(CURDIR)/../ser-dvc-remote)

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test plots clean browser

# Installs exactly what uv.lock pins (every package, hashes checked): a clean clone gets the
# TensorFlow, Keras, numpy and scikit-learn the committed metrics were measured with.
# After editing pyproject.toml dependencies, run `.venv/bin/uv lock` and commit uv.lock.
# --compile-bytecode writes every package's .pyc at install: each DVC stage is a fresh process, and
# without them (PYTHONDONTWRITEBYTECODE, read-only venvs) each one recompiled scipy, sklearn, skops...
$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check $(UV_PIN)
	@$(BIN)/uv sync -q --locked --extra dev --compile-bytecode --python $(BIN)/python
	@touch $(STAMP)

install: $(STAMP)

run: install
	@test -d .dvc || dvc init -q
	@dvc config core.analytics false
	@dvc remote default >/dev/null 2>&1 || dvc remote add --local -d localremote $(DVC_REMOTE)
ifneq ($(strip $(CORPORA)),)
	ser use-corpora $(CORPORA)
endif
	dvc repro
	@echo
	@$(BIN)/python -m ser.summary

# DVC's interactive charts, with vega inlined so the page works offline
plots: install
	@$(BIN)/python -m ser.dvc_html build/dvc_plots_template.html >/dev/null
	dvc plots show --html-template build/dvc_plots_template.html -o dvc_plots

test: install browser
	$(BIN)/python -m pytest -q

# Debian's headless Chromium for tests/test_web_browser.py (they skip, saying so, without it)
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	 elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	   || echo "could not install Chromium: the browser tests will be skipped"; \
	 else echo "no Chromium (install it as root with apt): the browser tests will be skipped"; fi

clean:
	rm -rf data/interim data/features metrics plots models dvc_plots build
