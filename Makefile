# Two entry points, each working from a fresh clone:
#   make serve   set up everything, then run the server on http://127.0.0.1:8000
#   make test    set up everything, then run the test suite (slow tests too when CI=true)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WHEELS := $(HOME)/.cache/streamwise/wheels
LLAMA_VERSION := 0.3.36
# A portable llama.cpp build: about 6 minutes instead of 16, and runs on any AVX2 machine.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
STAMP := $(VENV)/.installed
NEURAL_STAMP := $(VENV)/.neural
# A CPU build that lies on these machines' disk; any other torch request downloads a CUDA build.
TORCH_VERSION := 2.13.0
PYTEST_ARGS ?=

.PHONY: setup neural browser serve render test test-all bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	@mkdir -p $(WHEELS)
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) once (about 6 minutes)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-deps llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELS); }
	$(BIN)/pip install -q --find-links $(WHEELS) -e '.[dev]'
	$(BIN)/streamwise setup
	@touch $@

setup: $(STAMP)

# The neural extra (torch, diffusers, transformers) for the lip-sync tests, and the show extra
# (a sentence-embedding model) for bench/show.py's smoke test; `make serve` goes without.
$(NEURAL_STAMP): $(STAMP)
	$(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q --find-links $(WHEELS) -e '.[dev,neural,show]'
	@touch $@

neural: $(NEURAL_STAMP)

serve: setup
	$(BIN)/streamwise serve

render: setup
	$(BIN)/streamwise render --topic "$(or $(TOPIC),why the sky is blue)" --duration $(or $(DURATION),60) --out $(or $(OUT),out/episode.mp4)

# Browser tests use Debian's Chromium; install it when missing (root only, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; fi; }

# The default run skips tests marked slow; CI runs them too.
test: setup neural browser
	$(BIN)/python -m pytest $(if $(CI),,-m "not slow") $(PYTEST_ARGS)

test-all: setup neural browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/render.py

clean:
	rm -rf $(VENV) out .pytest_cache
