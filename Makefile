# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when it is
# missing and install tritium into it (editable, with the dev, fpga and dram extras) under the
# pinned versions in constraints.txt. Nothing else needs to be on PATH.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tritium-installed
# pytest-xdist workers: one per core
JOBS   ?= auto

.PHONY: all venv demo test test-fast bench clean help
all: help

help:
	@echo "make demo       a generated HGRN-bit checkpoint through the host driver into the simulated FPGA: every BitLinear on the TMV engine checked against the golden, then 16 tokens generated on the token core and checked against the fixed-point golden and the cycle model"
	@echo "make test       the whole test suite: Verilator + cocotb benches, Amaranth sim, link and device, checkpoints, cycle model, import layers, packaging, the FPGA flow"
	@echo "make test-fast  the suite without the slow and fpga tests"
	@echo "make bench      every bench/*.py -> bench/results/<name>.json"
	@echo "make venv       only create/refresh $(VENV)"
	@echo "make clean      remove build outputs (build, dist, sim_build, .pytest_cache)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,fpga,dram]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/tritium demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS)

# the suite without slow and fpga tests, for quick iteration
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not slow and not fpga"

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build dist sim_build .pytest_cache
