# Two commands do everything on a fresh Debian 12 machine:
#   make demo   installs what it needs, builds the demo ERP database and runs the exporter on :9861
#   make test   installs what it needs and runs lint, type checks and the whole test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The monitored ERP (Tryton) lives in its own virtualenv: it is not part of the monitor.
TRYTON_VENV := .venv-tryton
TRYTON_STAMP := $(TRYTON_VENV)/.installed
LISTEN ?= :9861
TRYTON_PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# unixODBC and the Debian ODBC drivers; the database servers the tests start privately;
# Prometheus and Alertmanager (promtool and amtool check rules and configs); iproute2 for the network
# namespaces of the partition test.
APT_PACKAGES := unixodbc odbc-postgresql odbc-mariadb libsqliteodbc \
	postgresql mariadb-server mariadb-client \
	prometheus prometheus-alertmanager \
	python3-venv openssl procps iproute2
# Only the tests need these: headless Chromium opens the HTML reports.
TEST_APT_PACKAGES := chromium
# The exporters benchmarks/peers_benchmark.py compares with: Debian's packages unpacked (dpkg -x, so no
# service starts) and query-exporter from PyPI in a virtualenv of its own, all under var/peers.
PEERS_DIR := var/peers
PEER_DEBIAN_PACKAGES := prometheus-sql-exporter prometheus-postgres-exporter
PEERS_STAMP := $(PEERS_DIR)/.installed

.PHONY: help demo stack fleet test lint typecheck unit system-packages test-packages apt-install venv tryton peers dashboards rules clean

help:
	@echo "make demo    install, start a demo Tryton ERP, run the exporter on it on $(LISTEN)"
	@echo "make stack   the demo plus Prometheus and Alertmanager on loopback (no Docker)"
	@echo "make fleet   several landscapes, an agent pair per site, a central Prometheus, clustered Alertmanagers"
	@echo "make test    install, then ruff, mypy and the whole pytest suite"
	@echo "make peers   unpack the exporters benchmarks/peers_benchmark.py compares with (under var/peers)"
	@echo "make rules   regenerate alert_rules/*.rules.yml and the runbook index from alert_rules/thresholds.yml"
	@echo "make dashboards  regenerate grafana_dashboards/*.json (after changing thresholds or rules)"

system-packages:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

test-packages:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_APT_PACKAGES)"

apt-install:
	@missing=""; \
	for package in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: system-packages $(STAMP)

$(TRYTON_STAMP): deploy/tryton/requirements.txt
	$(PYTHON) -m venv $(TRYTON_VENV)
	$(TRYTON_VENV)/bin/pip install --quiet --upgrade pip
	$(TRYTON_VENV)/bin/pip install --quiet -r deploy/tryton/requirements.txt
	touch $@

tryton: system-packages $(TRYTON_STAMP)

# A real Tryton ERP on SQLite (built once, about 30 s), a few logged-in users, then the exporter in the
# foreground; Ctrl-C stops both.
demo: venv tryton
	$(BIN)/python deploy/demo/tryton_demo.py --listen $(LISTEN) --tryton-port $(TRYTON_PORT)

# The demo ERP + exporter, Debian's Prometheus and Alertmanager, all on loopback, no Docker; URLs printed,
# Ctrl-C stops everything. Other ports: make stack STACK_ARGS="--prometheus-port 19090 --exporter-port 19861"
STACK_ARGS ?=
stack: venv tryton
	$(BIN)/python deploy/stack/run_stack.py $(STACK_ARGS)

# Several landscapes (an exporter each on a small SQLite database), per site two Prometheus agents, a central
# Prometheus with the rules and two clustered Alertmanagers, all on loopback; ports printed, Ctrl-C stops all.
# More: make fleet FLEET_ARGS="--sites 2 --landscapes-per-site 3 --scrape-interval 5s"
FLEET_ARGS ?=
fleet: venv
	$(BIN)/python deploy/fleet/run_fleet.py $(FLEET_ARGS)

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

$(PEERS_STAMP):
	rm -rf $(PEERS_DIR) && mkdir -p $(PEERS_DIR)/debs
	cd $(PEERS_DIR)/debs && { apt-get download $(PEER_DEBIAN_PACKAGES) 2>/dev/null \
	  || { $(SUDO) apt-get update -qq && apt-get download $(PEER_DEBIAN_PACKAGES); }; }
	for deb in $(PEERS_DIR)/debs/*.deb; do dpkg -x "$$deb" $(PEERS_DIR)/debian; done
	$(PYTHON) -m venv $(PEERS_DIR)/query-exporter
	$(PEERS_DIR)/query-exporter/bin/pip install --quiet query-exporter==5.0.2 'psycopg[binary]==3.3.9'
	touch $@

peers: $(PEERS_STAMP)

unit: venv tryton test-packages peers
	$(BIN)/pytest

test: lint typecheck unit

rules: venv
	$(BIN)/python tools/gen_alert_rules.py

dashboards: venv
	$(BIN)/python tools/gen_dashboards.py

clean:
	rm -rf $(VENV) $(TRYTON_VENV) var .pytest_cache .mypy_cache .ruff_cache
