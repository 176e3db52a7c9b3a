# The two set-up commands are `make demo` and `make test`; both install into .venv first.
#
# Installs are locked: requirements.lock pins every package of the tree (the extras s3 and dask,
# dev, and the build backend) with its hashes, and .venv holds exactly that, nothing more.
# uv (itself pinned, in .tools/) installs it; it ignores pip's configuration on purpose.
# It writes the bytecode at install time: a process that may not write it (PYTHONDONTWRITEBYTECODE,
# a read-only install) would otherwise compile Prefect, GX and pandas at every start (~5 s).
# Upgrading is a deliberate change: `make lock-upgrade PACKAGE=x`, run the tests, commit the diff.
PYTHON     ?= python3
UV_VERSION := 0.13.9
VENV       := .venv
BIN        := $(VENV)/bin
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
LOCK       := requirements.lock
STAMP      := $(VENV)/.installed-stamp

# Every input of the lock: the project's dependencies with every extra, and its build backend
# (installed into .venv so the editable install needs nothing unlocked).
BUILD_REQUIRES = $(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'
COMPILE = $(BUILD_REQUIRES) | UV_PYTHON_DOWNLOADS=never $(UV) pip compile pyproject.toml - \
	--all-extras --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command 'make lock'

.PHONY: demo test test-fast bench bench-province lint install lock lock-upgrade lock-check clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

$(STAMP): pyproject.toml $(LOCK) | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## generate a cohort, serve it from the Kobo simulator, run the nightly flow
	$(BIN)/sammachip demo --workdir .

# The test files are spread over the cores (pytest-xdist; a file's tests stay on one worker, so
# a module's server or cohort is built once); the slowest tests are listed at the end.
PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile

test: lock-check $(STAMP)  ## the lock matches pyproject.toml; lint and format; every test (real HTTP on loopback, real Prefect, real GX)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST) --durations=15

test-fast: $(STAMP)  ## the edit loop: lint, format and every test not marked slow (no Prefect API, kills, Dask, browser)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST) -m "not slow" -q

# Re-resolves pyproject.toml keeping every locked version: any difference means the two disagree.
lock-check: | $(UV)
	@$(COMPILE) --no-header --constraint $(LOCK) --output-file $(TOOLS)/lock-check.txt
	@grep -v '^ *#' $(LOCK) > $(TOOLS)/lock-locked.txt
	@grep -v '^ *#' $(TOOLS)/lock-check.txt | diff -u $(TOOLS)/lock-locked.txt - || { \
	  echo "error: $(LOCK) does not match pyproject.toml: run 'make lock', review the" \
	       "diff, run 'make test', commit both" >&2; exit 1; }

lock: | $(UV)  ## re-lock after editing pyproject.toml (keeps every version that still fits)
	$(COMPILE) --output-file $(LOCK)

lock-upgrade: | $(UV)  ## make lock-upgrade PACKAGE=prefect: move one package (and what it needs)
	@test -n "$(PACKAGE)" || { echo "usage: make lock-upgrade PACKAGE=<name>" >&2; exit 2; }
	$(COMPILE) --output-file $(LOCK) --upgrade-package '$(PACKAGE)'

bench: $(STAMP)  ## benchmarks at district scale (figures, never pass/fail)
	$(BIN)/python bench/pipeline.py --size small --workers

bench-province: $(STAMP)  ## the same at Ubon Ratchathani scale (~200k submissions; ~12 min on 2 cores)
	$(BIN)/python bench/pipeline.py --size province --workers

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf data .pytest_cache
