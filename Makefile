# Row-stationary bit-serial CNN accelerator generator: every entry point of the project.
# The first target that needs Python creates .venv/ and installs the pinned dependencies.

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
CONFIG  ?= default
OUT     ?= build/$(CONFIG)
# Extra config overrides, e.g. make verilog SET="rows=6 lanes=8"
SET     ?=
SET_ARGS := $(foreach s,$(SET),--set $(s))
# Parallel pytest workers (pytest-xdist); "auto" = one per core.
JOBS    ?= auto

.PHONY: help venv setup verilog demo lint test test-slow bench bitstream clean

help:
	@echo "make verilog   [CONFIG=default] [SET=\"rows=6 lanes=8\"]  -> build/<config>/accel.v + config.json"
	@echo "make demo      [CONFIG=default] [SIM=verilator]  run a 3x3 conv layer in simulation, check vs golden"
	@echo "make test      default test tier (unit tests + cocotb on Icarus and Verilator)"
	@echo "make test-slow long runs (@pytest.mark.slow)"
	@echo "make lint      verilator --lint-only -Wall on the generated Verilog"
	@echo "make bench     [BENCH=\"top simspeed\"|all|report]  benchmarks -> build/bench/ + docs/results.md"
	@echo "make bitstream [BOARD=ulx3s-85f] [CLOCK=MHz] [SET=\"cols=3\"]  FPGA bitstream + report (build/bitstream/<board>/)"
	@echo "make setup     install the system packages the simulations need (iverilog, ccache)"
	@echo "make clean     remove build/ and simulation outputs (keeps .venv)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,fpga]'
	touch $@

venv: $(STAMP)

# Icarus Verilog has no PyPI build: install it from the distribution (root) or say how.
setup:
	@if command -v iverilog >/dev/null && command -v ccache >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing iverilog and ccache with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog ccache; \
	elif command -v iverilog >/dev/null; then \
	  echo "note: ccache not found; Verilator rebuilds will be slower (sudo apt-get install -y ccache)"; \
	else \
	  echo "Icarus Verilog is missing. Run: sudo apt-get install -y iverilog ccache"; exit 1; \
	fi

verilog: $(STAMP)
	$(PY) -m gen verilog --config $(CONFIG) $(SET_ARGS) --out $(OUT)

# A demo conv layer on random data through the generated Verilog (Verilator or Icarus).
SIM ?= verilator
demo: $(STAMP) setup
	$(PY) -m gen demo --config $(CONFIG) $(SET_ARGS) --sim $(SIM)

lint: $(STAMP)
	$(PY) -m gen lint --config $(CONFIG) $(SET_ARGS) --out $(OUT)

test: $(STAMP) setup
	$(PY) -m pytest -n $(JOBS) -m "not slow"

test-slow: $(STAMP) setup
	$(PY) -m pytest -n $(JOBS) -m slow

bench: $(STAMP) setup
	$(PY) -m bench $(BENCH)

# FPGA bitstream of the board SoC with the YoWASP tools (boards: gen/boards.py).
BOARD ?= ulx3s-85f
bitstream: $(STAMP)
	$(PY) -m gen bitstream --board $(BOARD) $(SET_ARGS) $(if $(CLOCK),--clock-mhz $(CLOCK))

clean:
	rm -rf build sim_build results.xml .pytest_cache .hypothesis
