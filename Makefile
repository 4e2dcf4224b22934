# Two commands do all the set-up: `make train` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU-only machines get the CPU build of PyTorch first: a bare `torch` requirement would pull
# several GB of CUDA wheels. A machine with an NVIDIA driver takes the regular (CUDA) build.
TORCH_VERSION ?= 2.13.0

.PHONY: setup train test docs lint typecheck bench clean

$(BIN)/softac: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -e ".[dev,bench,ray,export,docs,suite,dmc,robotics,pixels]"
	touch $(BIN)/softac

# Every example in the documentation calls a bare `softac`: say where it is.
setup: $(BIN)/softac
	@echo "softac $$($(BIN)/python -c 'import softac; print(softac.__version__)') is installed in $(VENV)/:" \
		"run 'source $(VENV)/bin/activate' once per shell to use the softac command (or call $(BIN)/softac)"

# The main job: SAC on Pendulum-v1 with its preset (a few minutes on a laptop CPU). Evaluated every
# 1,000 of its 20,000 steps, not the default 5,000: the curve a newcomer sees first then has 20
# points instead of 4. An evaluation (10 deterministic episodes of 200 steps, no updates) took
# 0.32-0.37 s here (2026-12-04, loaded 2-core machine): 16 more of them cost ≈ 6 s of a run of minutes.
train: setup
	$(BIN)/softac train --run-dir runs/sac-pendulum --overwrite --eval-freq 1000

test: setup docs
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist worksteal --durations=10 tests

# The documentation site (mkdocs.yml, docs/): --strict, so a broken link or an API name that no
# longer exists fails `make test`. Offline: no plugin fetches anything at build time. Not --quiet:
# it hides the warnings that --strict turns into a failure (a broken link then passed).
# NO_MKDOCS_2_WARNING: Material's banner about its own future, not about these pages.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: setup
	$(BIN)/softac bench --env HalfCheetah-v5

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
