# make run  - serve on http://localhost:5000 with the embedded broker
# make test - install what the tests need and run the whole suite
# make bench - the fan-out benchmark in bench/

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean system-packages

run: $(VENV)/.runtime
	$(PY) service.py

test: $(VENV)/.dev system-packages
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) bench/fanout.py

# The tests start their own redis-server; install it where it is missing (as
# root, from Debian's packages) and fail, never skip, where that cannot be done.
system-packages:
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } || \
		{ echo "make test needs redis-server: sudo apt-get install redis-server"; exit 1; }

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
