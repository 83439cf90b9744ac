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

# --- make test-compat: the version matrix (noxfile.py) ----------------------------------------
# kvcap's torch-free tests on Python 3.12/3.13 with the newest dependencies and on 3.10 with the
# oldest pyproject allows, each in a fresh uv venv without torch; then the torch stack at its
# lower bounds on 3.11 with `make test-compat TORCH_SPEC=...` (default torch==2.13.0, the local
# CPU wheel here). nox and uv live in .venv.
# NOX_ARGS picks sessions, e.g. make test-compat NOX_ARGS='-s newest-3.12'
NOX_SPEC ?= "nox>=2025.2.9" "uv>=0.8"
NOX_ARGS ?=
COMPAT_TOOLS := $(VENV)/.compat-tools

.PHONY: test-compat

$(COMPAT_TOOLS): | $(PY)
	$(PY) -m pip install --quiet $(NOX_SPEC)
	touch $(COMPAT_TOOLS)

# Ends with one line per session: its Python and pass/fail counts (.nox/*.summary).
test-compat: $(COMPAT_TOOLS)
	@rm -f .nox/*.summary
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/nox $(NOX_ARGS); status=$$?; \
	echo "== make test-compat: pass counts per session"; cat .nox/*.summary 2>/dev/null; exit $$status
