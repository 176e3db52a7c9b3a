# The two set-up commands are `make demo` and `make test`; both install into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-province lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## generate a cohort, serve it from the Kobo simulator, run the nightly flow
	$(BIN)/sammachip demo --workdir .

test: $(STAMP)  ## lint, then every test (real HTTP on loopback, real Prefect, real GX)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)  ## benchmarks at district scale (figures, never pass/fail)
	$(BIN)/python bench/pipeline.py --size small --workers

bench-province: $(STAMP)  ## the same at Ubon Ratchathani scale (~200k submissions; ~12 min on 2 cores)
	$(BIN)/python bench/pipeline.py --size province --workers

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf data .pytest_cache
