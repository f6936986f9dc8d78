# make run  - serve on http://localhost:5000 with the embedded broker
# make test - install what the tests need and run the whole suite
# make bench - the fan-out benchmark in bench/

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean

run: $(VENV)/.runtime
	$(PY) service.py

test: $(VENV)/.dev
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) bench/fanout.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis test-artifacts

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
