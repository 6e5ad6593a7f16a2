# Two entry points: `make book` builds the book; `make test` runs every test.
# Both create .venv at the root when it is missing and install the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD_FLAGS := -W -n --keep-going

# Offline data: use ../shared/data when it sits beside the repository (as in CI),
# unless METALEARN_DATA_DIR is already set. Elsewhere the loaders download and cache.
SHARED_DATA := $(abspath $(CURDIR)/../shared/data)
ifeq ($(origin METALEARN_DATA_DIR), undefined)
ifneq ($(wildcard $(SHARED_DATA)),)
export METALEARN_DATA_DIR := $(SHARED_DATA)
endif
endif
# Plots work without a display. Chapters select the inline backend themselves
# (%matplotlib inline), so their figures reach the page whatever this is set to.
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test test-gpu lint browser data venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

## data: Omniglot and FS-Mol at hand (on disk, or Omniglot downloadable)? Seconds, not a failed build
data: venv
	$(BIN)/python -m metalearn.data.check

## book: build _build/html with every chapter executed (quick profile unless METALEARN_PROFILE=full)
book: venv data
	$(BIN)/jupyter-book build . $(BUILD_FLAGS)

## lint: the package's type hints hold (mypy); code fits 100 columns and is formatted
##       (package, tests, benchmarks and chapters)
lint: venv
	$(BIN)/mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

## browser: Debian's chromium and a CJK font (the chapters name terms in Chinese) for the
##          browser test; installed when missing and apt-get can, else the test skips
browser:
	@if ! command -v chromium >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "chromium could not be installed: the browser test will skip"; fi; \
	fi

## test: lint; one pytest run over the unit tests and every chapter under nbval, which stores
##       each chapter it executed (book/conftest.py); the strict book build from those
##       executions (every page re-read, no chapter executed twice); then the checks of the
##       built HTML and the browser test (screenshots in _build/screenshots/)
EXECUTED := _build/executed_chapters
test: venv lint browser data
	rm -rf $(EXECUTED)
	$(BIN)/pytest tests book --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider \
	  --executed-cache=$(EXECUTED) \
	  --ignore=tests/test_built_book.py --ignore=tests/test_browser.py
	METALEARN_EXECUTED_CACHE=$(EXECUTED) $(BIN)/jupyter-book build . --all $(BUILD_FLAGS)
	METALEARN_REQUIRE_HTML=1 METALEARN_REQUIRE_BROWSER=$$(command -v chromium >/dev/null && echo 1) \
	  $(BIN)/pytest tests/test_built_book.py tests/test_browser.py -p no:cacheprovider

## test-gpu: on a machine with CUDA: the unit tests (CUDA tests included), then every chapter under
##           nbval with METALEARN_DEVICE=cuda, one summary line per chapter with its time
test-gpu: venv
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
	METALEARN_DEVICE=cuda $(BIN)/pytest tests -q -p no:cacheprovider \
	  --ignore=tests/test_built_book.py --ignore=tests/test_browser.py
	METALEARN_DEVICE=cuda $(BIN)/python tests/run_chapters.py

clean:
	rm -rf _build
