# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when it is
# missing and install tritium into it (editable, with the dev and fpga extras) under the
# pinned versions in constraints.txt. Nothing else needs to be on PATH.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tritium-installed
# pytest-xdist workers: one per core
JOBS   ?= auto

.PHONY: all venv demo test test-fast bench lint clean help
all: help

help:
	@echo "make demo   a generated checkpoint through the host driver into the simulated FPGA: every BitLinear checked, then 16 tokens on the token core"
	@echo "make test   the whole test suite (cocotb + Verilator, Amaranth sim, link, checkpoints, fpga flow)"
	@echo "make bench  benchmarks -> bench/results/*.json"
	@echo "make venv   only create/refresh $(VENV)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,fpga]'
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
