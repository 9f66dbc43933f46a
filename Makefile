# Two commands for a fresh machine: `make study` and `make test` (both create .venv if missing).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= 2
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: venv study test lint format dry-run browser-deps reference

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

study: venv  ## run the study at the scale in params.yaml (default quick) -> reports/report.html
	$(VENV)/bin/snakemake --cores $(CORES)

reference: venv  ## the cpu-full FCN reference run (about 75 min on 2 cores) -> reports/reference/
	bash benchmarks/reference_fcn.sh
	$(VENV)/bin/snakemake --cores $(CORES) --config scale=cpu-full
	$(PY) benchmarks/publish_reference.py

browser-deps:  ## Debian's chromium + chromium-driver for the report's browser test
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q chromium chromium-driver >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	else echo "the browser test needs: sudo apt-get install chromium chromium-driver" >&2; exit 1; fi

test: venv browser-deps  ## lint, then the whole test suite; pytest's "no tests collected" (5) is a failure
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/snakefmt --check Snakefile workflow/
	$(VENV)/bin/snakemake --lint --cores 1
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: venv  ## ruff for Python, snakefmt and `snakemake --lint` for the workflow
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/snakefmt --check Snakefile workflow/
	$(VENV)/bin/snakemake --lint --cores 1

format: venv
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/snakefmt Snakefile workflow/
	$(VENV)/bin/ruff check --fix src tests

dry-run: venv
	$(VENV)/bin/snakemake -n --cores $(CORES)
