# Two entry points, both self-contained on a fresh machine:
#   make demo   create .venv on first use, install, caption unseen clips with the bundled demo model
#   make test   same environment, run the whole test suite
# TORCH_SPEC picks the torch build without changing these commands, e.g.
#   make test TORCH_SPEC=torch==2.13.0      (a local CPU wheel on the dev/CI machines)
TORCH_SPEC ?= torch
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is named in the same pip command as the project so that a pinned local wheel
# satisfies the project's own `torch` requirement instead of pulling a CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kvcap demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
