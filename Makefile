# The two commands of the README: `make run` and `make test`. Each installs what it needs into
# a local virtualenv first, so both work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.docchat-installed

.PHONY: install run worker test lint format bench bench-scale clean postgres-server tesseract

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.docchat-bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# make bench BENCH_ARGS="--quick" | "--only live" | "--only formats" | "--corpus DIR"
bench: $(BENCH_STAMP) tesseract
	$(BIN)/python -m bench $(BENCH_ARGS)

# Ingestion with 1, 2 and 4 worker processes; one large document, batches parallel vs sequential.
# make bench-scale SCALE_ARGS="--large-pages 10000 --max-pages 10000"
bench-scale: $(BENCH_STAMP)
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

run: install tesseract
	$(BIN)/python scripts/run_local.py

worker: install tesseract
	$(BIN)/python worker.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports  # the import rules of pyproject.toml [tool.importlinter]

# tests/web drive Debian's Chromium through Playwright (no browser is downloaded at run time);
# installed from the distribution only when it is missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| ($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# The tests' throwaway PostgreSQL cluster (tests/postgres.py) needs the server binaries;
# installed from the distribution only when no initdb is found.
postgres-server:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		|| ($(SUDO) apt-get update -q \
			&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql)

# OCR of scans and image uploads (core/ingestion/extraction/ocr.py) runs Debian's Tesseract with the
# language data of DOCCHAT_OCR_LANGUAGES' default; installed from the distribution only when
# the program or one of these languages is missing. Nothing is downloaded at run time.
# Tesseract names a language jpn_vert, Debian packages it as tesseract-ocr-jpn-vert. kor is
# not in the default languages (each one costs every page time): the bench reads its Korean
# image with it (bench/retrieval_formats.py), and DOCCHAT_OCR_LANGUAGES may add it.
OCR_LANGUAGES := eng deu jpn jpn_vert kor

tesseract:
	@missing=$$(for l in $(OCR_LANGUAGES); do \
		tesseract --list-langs 2>/dev/null | grep -qx "$$l" || echo "$$l"; done); \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -q \
		&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tesseract-ocr \
			$(addprefix tesseract-ocr-,$(subst _,-,$(OCR_LANGUAGES))); \
	fi

test: install lint $(CHROMIUM) postgres-server tesseract
	DOCCHAT_TEST_POSTGRES=required PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
