# Two commands: `make run` and `make test`. Everything either needs is installed from here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
# Debian packages the test suite drives: a PostgreSQL server, the browsers (chromium's
# headless shell; chromium itself for bench/; WebKitGTK on an Xvfb display), promtool,
# glewlwyd (a real OpenID provider; the suite runs its own instance, so the package's
# service is disabled below, and dbconfig-no-thanks keeps apt from choosing
# dbconfig-mysql and a MariaDB client for it).
TEST_DEB_PACKAGES := postgresql chromium chromium-headless-shell fonts-dejavu-core prometheus iproute2 python3-venv debootstrap coturn nftables systemd vagrant webkit2gtk-driver xvfb gstreamer1.0-gl gstreamer1.0-plugins-bad gstreamer1.0-libav libgl1-mesa-dri glewlwyd dbconfig-no-thanks
RUN_DEB_PACKAGES := python3-venv iproute2 fonts-dejavu-core
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# As root the suite runs in a network namespace of its own with only loopback, so
# browsers and media peers under test can reach nothing but this machine.
ISOLATE := $(shell [ "$$(id -u)" = 0 ] && unshare -n true 2>/dev/null && echo yes)
# One pytest worker more than cores, at most four (pytest-xdist): the browser and
# provisioning tests spend much of their time waiting (docs/development.md); tests that
# share a costly fixture are kept on one worker (tests/conftest.py). PYTEST_WORKERS=0
# runs in one process.
# Groups are handed out in collection order (pyproject's testpaths put the longest first),
# not xdist's default of the most tests first, which left single-test browser modules last.
# The slowest tests are listed at the end of the run.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadgroup --no-loadscope-reorder --durations=25

.PHONY: run test test-fast bench bench-impairment lint format messages system-packages-test system-packages-run clean

# `evr serve` needs the force's name: with none configured, `make run` passes a demo one.
DEMO_FORCE_NAME := Demo Constabulary (not a real force)

run: $(RUNTIME_STAMP)
	if [ -z "$$EVR_FORCE_NAME" ] && [ ! -f /etc/evr/evr.toml ]; then \
	  export EVR_FORCE_NAME="$(DEMO_FORCE_NAME)"; fi; $(BIN)/evr serve

test: system-packages-test $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# The provisioning tests' Debian chroot and wheelhouse need the network: fetch them
	# (or reuse the cache) before the suite runs in its network namespace.
	EVR_TEST_PYTHON=$(BIN)/python sh provisioning/tests/prepare-chroot.sh .
ifeq ($(ISOLATE),yes)
	unshare -n -- sh -c 'ip link set lo up && exec $(PYTEST)'
else
	$(PYTEST)
endif

# The inner loop: unit tests and the integration tests on SQLite only, no browser, no
# provisioning chroot, no PostgreSQL (meant to stay under 3 minutes). CI runs `make test`.
test-fast: $(DEV_STAMP)
ifeq ($(ISOLATE),yes)
	unshare -n -- sh -c 'ip link set lo up && exec $(PYTEST) --engine=sqlite tests/unit tests/integration'
else
	$(PYTEST) --engine=sqlite tests/unit tests/integration
endif

# Capacity, ours vs aiortc's default pipeline (bench/README.md); under 10 minutes on 2 cores.
bench: $(DEV_STAMP)
ifeq ($(ISOLATE),yes)
	unshare -n -- sh -c 'ip link set lo up && exec $(BIN)/python bench/capacity.py'
else
	$(BIN)/python bench/capacity.py
endif

# The caller's video through the box and browser to browser at 0, 3 and 10% UDP loss
# per hop (bench/README.md); about 4 minutes. nftables needs root: as root it runs in a
# network namespace of its own.
bench-impairment: system-packages-test $(DEV_STAMP)
	unshare -n -- sh -c 'ip link set lo up && exec $(BIN)/python bench/impairment.py'

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The callers' text into the template, then into each language's catalogue, where the
# translators find what is new (docs/languages.md); tests/unit/test_i18n.py fails until
# every offered language has translated it.
messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o appliance/locale/messages.pot --add-location=file \
		--sort-by-file --no-wrap --project="EVR appliance" --version=0.1.0 \
		--msgid-bugs-address="" -c "Translators:" .
	$(BIN)/pybabel update -i appliance/locale/messages.pot -d appliance/locale \
		--no-wrap --ignore-obsolete

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | system-packages-run $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

# Installs only what is missing, so a prepared machine pays nothing. glewlwyd's package
# would otherwise make a database through dbconfig ("Personalized", its default answer)
# and enable a service that restarts on failure with its sample config: the suite answers
# "No configuration" and disables the service (`--now` stops it where systemd runs; where
# it does not, the disable alone is done and systemctl's complaint ignored).
system-packages-test:
	@missing=$$(for p in $(TEST_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  echo "glewlwyd glewlwyd/config_type select No configuration" | $(SUDO) debconf-set-selections && \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing && \
	  if echo "$$missing" | grep -qx glewlwyd; then \
	    $(SUDO) systemctl disable --now glewlwyd.service 2>/dev/null || true; fi; \
	fi

system-packages-run:
	@missing=$$(for p in $(RUN_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
