# sme-abm: `make run` runs the baseline, `make test` runs every test.
# Both create .venv with python3 and install what they need (pinned by constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
CONSTRAINTS := -c constraints.txt

.PHONY: run test dashboard setup setup-test lint configs clean

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

$(VENV)/.dashboard: $(VENV)/.base
	$(PIP) install $(CONSTRAINTS) -e ".[dashboard]"
	@touch $@

dashboard: $(VENV)/.dashboard
	$(BIN)/sme-abm dashboard

configs: $(VENV)/.base
	$(BIN)/python -m sme_abm.configdoc configs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis
