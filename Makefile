# hbnb: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hbnb-installed
# The local CPU build; any other version pulls gigabytes of CUDA packages.
TORCH := torch==2.13.0
# Wheels installed without their dependencies (listed in pyproject.toml, [tool.hbnb]).
NODEPS := $(shell $(PYTHON) -c "import shlex, tomllib; print(' '.join(shlex.quote(p) for p in tomllib.load(open('pyproject.toml', 'rb'))['tool']['hbnb']['install-without-deps']))")

.PHONY: setup test test-slow lint demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(NODEPS)
	$(PY) -m hbnb models prepare
	touch $@

test: setup
	$(PY) -m pytest -m "not slow"

test-slow: setup
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]  # exit 5: no slow tests collected

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: setup
	$(PY) -m hbnb run params/demo.yaml

clean:
	rm -rf $(VENV) build *.egg-info
