# Two entry points: `make run` (the whole DAG on the embedded default, or CORPORA=DIR) and `make test`.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON  ?= python3
CORPORA ?=
# default DVC remote (dvc push / dvc pull), set in the untracked .dvc/config.local unless one exists
DVC_REMOTE ?= $(abspath $(CURDIR)/../ser-dvc-remote)

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv || true
	@if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'; \
	 else $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'; fi
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
	@dvc metrics show

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf data/interim data/features metrics plots models
