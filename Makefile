# The two set-up commands of the README. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench cards docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[test]"
	touch $@

# The main job on data shipped with the package: a short training-free search on the CPU.
demo: $(BIN)/.installed
	$(BIN)/python -m snnzoo.search --num-search 40 --width 0.5 --batch-size 128 \
		--out runs/demo --name snasnet_demo --resume

# The whole test suite, one worker per core (pytest-xdist), each file on one worker (its
# module fixtures run once); Triton kernels run under the interpreter on the CPU.
# One thread per worker, and inductor compiles in the worker (no pool of compile processes,
# each of which would import torch again): the workers do not contend for the cores.
# The goal: under 10 minutes on a fresh 2-core machine (docs/development.md).
test: $(BIN)/.installed
	OMP_NUM_THREADS=1 TORCHINDUCTOR_COMPILE_THREADS=1 TRITON_INTERPRET=1 \
		$(BIN)/python -m pytest -q -n auto --dist loadfile

# Benchmarks; appends to benchmarks/results/*.csv. The bench extra adds SpikingJelly 2.0, the
# models benchmark's second peer (it leaves the installed torch as it is).
$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install -e ".[bench]"
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/lif.py
	$(BIN)/python benchmarks/scorer.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python scripts/docs_tables.py

# The documentation site (mkdocs-material, API reference from the docstrings) into site/;
# --strict: a broken link or reference fails the build.
$(BIN)/.docs-installed: $(BIN)/.installed
	$(BIN)/pip install -e ".[docs]"
	touch $@

docs: $(BIN)/.docs-installed
	$(BIN)/python scripts/docs_tables.py --check
	TRITON_INTERPRET=1 NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Regenerate model_cards/ from the registered cfgs (never touches weights).
cards: $(BIN)/.installed
	$(BIN)/python scripts/make_model_cards.py

clean:
	rm -rf $(VENV) build dist site *.egg-info
