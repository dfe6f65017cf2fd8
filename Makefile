# sme-abm: `make run` runs the baseline, `make test` runs every test.
# Both create .venv with python3 and install what they need (pinned by constraints.txt).
# `make test-latest` tests the newest stack pyproject.toml allows (Python 3.12/3.13, no pins).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
CONSTRAINTS := -c constraints.txt

.PHONY: run test test-latest dashboard setup setup-test lint configs clean clean-kernels

$(VENV)/.base: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(CONSTRAINTS) -e .
	@touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install $(CONSTRAINTS) -e ".[test]"
	@touch $@

setup: $(VENV)/.base
setup-test: $(VENV)/.test

run: $(VENV)/.base
	$(BIN)/sme-abm run configs/baseline.toml

test: $(VENV)/.test
	$(BIN)/python -m pytest -n 2

# The newest stack: every Python 3.12 and 3.13 found under pyenv (or LATEST_PYTHONS=...),
# each in its own venv with unpinned, upgraded installs inside pyproject.toml's ranges.
# It runs the suite but the browser tests and the repeated kill trials, installs the
# built wheel into a venv of its own and runs it outside the repository, and checks
# that the economy's time series are bit for bit those of the pinned stack.
PYENV_ROOT ?= $(HOME)/.pyenv
LATEST_PYTHONS ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python3.12)) \
	$(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python3.13))
LATEST_TESTS ?= -m "not browser and not trials"

test-latest: $(VENV)/.test
	@test -n "$(strip $(LATEST_PYTHONS))" || { echo "test-latest: no Python 3.12 or 3.13 found; set LATEST_PYTHONS=/path/to/python3.12"; exit 2; }
	$(BIN)/python -m sme_abm.stackcheck write .stackcheck-pinned.parquet
	rm -f dist/sme_abm-*.whl; $(BIN)/python -m build --wheel --outdir dist/ . >/dev/null
	@set -e; for py in $(LATEST_PYTHONS); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); venv=.venv-latest-$$v; \
	  echo "== newest stack on Python $$v ($$py): $$venv"; \
	  test -x $$venv/bin/python || $$py -m venv $$venv; \
	  $$venv/bin/python -m pip --disable-pip-version-check -q install --upgrade --upgrade-strategy eager -e ".[test]"; \
	  $$venv/bin/python -m pip list --format=freeze | grep -iE '^(mesa|numpy|numba|pandas|pyarrow|pydantic|scipy|solara|dask|hypothesis|pytest)==' | tr '\n' ' '; echo; \
	  $$venv/bin/python -m pytest -n 2 $(LATEST_TESTS); \
	  $$venv/bin/python -m sme_abm.stackcheck write .stackcheck-$$v.parquet; \
	  $(BIN)/python -m sme_abm.stackcheck compare .stackcheck-pinned.parquet .stackcheck-$$v.parquet; \
	  wheelvenv=$$(mktemp -d)/venv; $$py -m venv $$wheelvenv; \
	  $$wheelvenv/bin/python -m pip --disable-pip-version-check -q install dist/sme_abm-*.whl; \
	  out=$$(mktemp -d); (cd $$out && $$wheelvenv/bin/sme-abm run $(CURDIR)/configs/baseline.toml --smes 500 --steps 6 --out $$out/run >/dev/null); \
	  test -s $$out/run/timeseries.parquet && echo "wheel: installed without the repository, sme-abm run wrote $$out/run"; \
	  rm -rf $$wheelvenv $$out; \
	done

$(VENV)/.dashboard: $(VENV)/.base
	$(PIP) install $(CONSTRAINTS) -e ".[dashboard]"
	@touch $@

dashboard: $(VENV)/.dashboard
	$(BIN)/sme-abm dashboard

configs: $(VENV)/.base
	$(BIN)/python -m sme_abm.configdoc configs

clean:
	rm -rf $(VENV) .venv-latest-* .stackcheck-* dist build .pytest_cache .mypy_cache .hypothesis

# numba's cache does not see edits to a helper inlined from another module (sme_abm/kernels.py)
clean-kernels:
	find sme_abm -name '*.nbi' -delete -o -name '*.nbc' -delete
