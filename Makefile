# turnscope: `make demo` and `make test` work on a fresh machine (Python 3.10+).
# the first interpreter that really runs (pyenv shims of inactive versions do not) and is >= 3.10
PYTHON ?= $(shell for c in python3 python3.12 python3.11 python3.13; do \
	$$c -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null && command -v $$c && break; done)
# the first python$(1) (pyenv's versions, then PATH) that really runs and is version $(1)
find_python = $(shell for c in $$(ls -d $$(pyenv root 2>/dev/null)/versions/$(1).*/bin/python$(1) 2>/dev/null) python$(1); do \
	$$c -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "$(1)"' 2>/dev/null && echo $$c && break; done)
# openai-agents 0.0.17 is tested on Python 3.10, our first user's environment; without one, on the
# newest Python that release supports (its classifiers and openai 1.84.0's stop at 3.12)
PY310 ?= $(call find_python,3.10)
OLD_PYTHON ?= $(or $(PY310),$(call find_python,3.12),$(call find_python,3.11))
VENV := .venv
OLD_VENV := .venv-old
STAMPS := .make-stamps
DEMO_DB ?= demo.db
PYTEST_ARGS ?=

.PHONY: demo test test-new test-old lint format venv venv-old bench bench-viewer bench-viewer-pg clean

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[viewer,dev]' 'openai-agents==0.24.0'
	@touch $@

$(STAMPS)/venv-old: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -n "$(OLD_PYTHON)" || (echo "Python 3.10, 3.12 or 3.11 not found (set PY310=/path/to/python3.10)"; exit 1)
	test -x $(OLD_VENV)/bin/python || $(OLD_PYTHON) -m venv $(OLD_VENV)
	$(OLD_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLD_VENV)/bin/python -m pip install -q -e '.[dev]' 'openai-agents==0.0.17' 'openai==1.84.0'
	@touch $@

venv: $(STAMPS)/venv
venv-old: $(STAMPS)/venv-old

demo: venv
	$(VENV)/bin/turnscope demo --db $(DEMO_DB)
	@if $(VENV)/bin/python -c "import turnscope.viewer.app" 2>/dev/null; then \
		$(VENV)/bin/turnscope view --db $(DEMO_DB); \
	else \
		$(VENV)/bin/turnscope runs --db $(DEMO_DB); \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-new: venv
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

test-old: venv-old
	@$(OLD_VENV)/bin/python -c 'import sys; v = "%d.%d" % sys.version_info[:2]; v == "3.10" or \
		print(f"Python 3.10 not found: running the openai-agents 0.0.17 suite on Python {v}")'
	$(OLD_VENV)/bin/python -m pytest -q -m "not browser" $(PYTEST_ARGS)

test: lint test-new test-old

bench: venv
	$(VENV)/bin/python -m pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/hot_path.py
	$(VENV)/bin/python benchmarks/ingest.py
	$(VENV)/bin/python benchmarks/memory.py

# 100,000 runs / 2,000,000 spans (a 1.5 GB database in a temporary folder) and a real browser
bench-viewer: venv
	$(VENV)/bin/python benchmarks/viewer_scale.py

# 1,000,000 runs / 20,000,000 spans in a PostgreSQL server of its own (~13 GB, temporary)
bench-viewer-pg: venv
	$(VENV)/bin/python benchmarks/pg_viewer_scale.py

clean:
	rm -rf $(VENV) $(OLD_VENV) $(STAMPS) *.egg-info
