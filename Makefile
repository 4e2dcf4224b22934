# Two commands do all the set-up: `make train` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU-only machines get the CPU build of PyTorch first: a bare `torch` requirement would pull
# several GB of CUDA wheels. A machine with an NVIDIA driver takes the regular (CUDA) build.
TORCH_VERSION ?= 2.13.0

.PHONY: setup train test lint typecheck bench clean

$(BIN)/softac: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -e ".[dev,bench,ray,export]"
	touch $(BIN)/softac

setup: $(BIN)/softac

# The main job: SAC on Pendulum-v1 with the defaults (a few minutes on a laptop CPU).
train: setup
	$(BIN)/softac train --run-dir runs/sac-pendulum --overwrite

test: setup
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist worksteal --durations=10 tests

bench: setup
	$(BIN)/softac bench --env HalfCheetah-v5

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
