# The two set-up commands of the README. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[test]"
	touch $@

# The main job on data shipped with the package (for now: the LIF benchmark on the CPU).
demo: $(BIN)/.installed
	$(BIN)/python benchmarks/lif.py --quick --no-csv

# The whole test suite; Triton kernels run under the interpreter on the CPU.
test: $(BIN)/.installed
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q

# Benchmarks; appends to benchmarks/results/*.csv.
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/lif.py
	$(BIN)/python benchmarks/scorer.py

clean:
	rm -rf $(VENV) build dist *.egg-info
