# Two entry points for a fresh machine: `make demo` (set up + run the main job; FULL=1 for
# its full-size version) and `make test` (set up + run the checks). Everything installs
# into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13.0 from pip's configured index: the CPU build where that index holds it (the CI
# image), else PyPI's Linux wheel, the multi-GB CUDA build. For the CPU build elsewhere:
# PIP_INDEX_URL=https://download.pytorch.org/whl/cpu PIP_EXTRA_INDEX_URL=https://pypi.org/simple make setup
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test test-all test-heavy lint bench clean-venv

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch through pip, whose configuration here finds the CPU build on local disk.
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" "uv>=0.5"
	# The rest through uv: parallel downloads and bytecode compiling (fresh venv on 2 cores:
	# 34 s against pip's 94 s). It keeps the torch above, which satisfies the project's range.
	# pip stays the fallback where uv cannot reach an index that pip's configuration names.
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -e ".[dev]" \
		|| $(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

# The quick demo (a few minutes on 2 cores); make demo FULL=1 runs the full-size one.
FULL ?=
demo: setup
	PATH="$(abspath $(BIN)):$$PATH" FULL="$(FULL)" bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check hpo tests benchmarks
	$(BIN)/lint-imports

# The quick suite (every test not marked slow); test-all adds the slow ones but the heavy
# (what CI runs, .ci/run); test-heavy runs those. MARK narrows test-all (.ci/run runs the
# tests needing PostgreSQL or Chromium once they are installed); LINT= skips the lint.
LINT ?= lint
MARK ?= not heavy
test: setup lint
	$(BIN)/python -m pytest -q -m "not slow" --durations=15

test-all: setup $(LINT)
	$(BIN)/python -m pytest -q -m "$(MARK)" --durations=30

test-heavy: setup
	$(BIN)/python -m pytest -q -m heavy --durations=15

bench: setup
	$(BIN)/python benchmarks/svm_bench.py

clean-venv:
	rm -rf $(VENV)
