# The two commands of the README: `make demo` (set up, build a shipped spec, train a small one) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: demo test bench

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(READY)
	$(BIN)/nncompile check specs/*.yaml
	$(BIN)/nncompile build specs/resnet18.yaml -o build/resnet18.pt
	$(BIN)/nncompile summary specs/resnet18.yaml --depth 2
	$(BIN)/nncompile build specs/resnet18.yaml --emit python -o build/resnet18.py
	$(BIN)/nncompile graph specs/resnet18.yaml -o build/resnet18.html
	$(BIN)/nncompile train specs/digits_mlp.yaml --out runs/digits_mlp

test: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: $(READY)
	$(BIN)/python benchmarks/check_speed.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/train_loop.py
	$(BIN)/python benchmarks/gpu.py
