# Two entry points, both self-contained on a fresh machine:
#   make demo   create .venv on first use, install, caption unseen clips with the bundled demo model
#   make test   same environment, run the whole test suite
#   make lock   re-resolve requirements.lock (every dependency but torch) from PyPI's newest
# Both install every dependency but torch at the version requirements.lock holds, so a given commit
# gets the same environment on any day; torch itself is TORCH_SPEC's.
# TORCH_SPEC picks the torch build without changing these commands, e.g.
#   make test TORCH_SPEC=torch==2.13.0      (a local CPU wheel on the dev/CI machines)
# TORCH_INDEX_URL is the pip index for the torch install only (PyPI has no CPU-only torch), e.g.
#   make demo TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu    (a 1.7 GB .venv, not 6.1 GB)
TORCH_SPEC ?= torch
TORCH_INDEX_URL ?=
# What `make demo` says it installs when no NVIDIA GPU is found (nvidia-smi absent).
HAS_NVIDIA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo yes)
CPU_INDEX_URL := https://download.pytorch.org/whl/cpu
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PYTEST_ARGS ?=

.PHONY: demo test install clean-venv lock

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is named in the same pip command as the project so that a pinned local wheel
# satisfies the project's own `torch` requirement instead of pulling a CUDA build.
# `-c $(LOCK)` pins every other package that gets installed, torch's own dependencies (sympy,
# networkx, ...) included, to the locked version; pip adds it to any constraint file in pip's
# own configuration (`pip config list`). torch's build-specific packages (nvidia-*, cuda-*,
# triton) are left out of the lock: each torch build pins its own with `==`.
# With TORCH_INDEX_URL, torch alone (--no-deps) comes from that index first; the project install
# then finds it already satisfied and takes everything else, torch's dependencies too, from PyPI.
$(STAMP): pyproject.toml $(LOCK) | $(PY)
ifeq ($(HAS_NVIDIA),)
ifeq ($(TORCH_INDEX_URL),)
ifeq ($(TORCH_SPEC),torch)
	@echo "no NVIDIA GPU found (nvidia-smi absent): installing torch from PyPI, the CUDA build (~6 GB)."
	@echo "  For the CPU-only build (~1.7 GB): make $(or $(MAKECMDGOALS),install) TORCH_INDEX_URL=$(CPU_INDEX_URL)"
else
	@echo "no NVIDIA GPU found (nvidia-smi absent): installing $(TORCH_SPEC) from pip's own indexes and wheel folders"
endif
else
	@echo "no NVIDIA GPU found (nvidia-smi absent): installing torch from $(TORCH_INDEX_URL)"
endif
endif
ifneq ($(TORCH_INDEX_URL),)
	$(PY) -m pip install --quiet --no-deps "$(TORCH_SPEC)" --index-url "$(TORCH_INDEX_URL)"
endif
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kvcap demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

# --- make test-compat: the version matrix (noxfile.py) ----------------------------------------
# `newest`: the whole suite on 3.11 with TORCH_SPEC's torch and every other dependency at its
# newest (not the lock): its line names what moved since requirements.lock when it fails. Then
# kvcap's torch-free tests on Python 3.12/3.13 with the newest dependencies and on 3.10 with the
# oldest pyproject allows, each in a fresh uv venv without torch; then the torch stack at its
# lower bounds on 3.11 with `make test-compat TORCH_SPEC=...` (default torch==2.13.0, the local
# CPU wheel here). nox and uv live in .venv.
# NOX_ARGS picks sessions (and pytest arguments after --), e.g.
#   make test-compat NOX_ARGS='-s newest -- tests/tui'
# A bad release can be forced into the matrix the way pip takes one, e.g.
#   PIP_CONSTRAINT=bad.txt make test-compat NOX_ARGS='-s newest'    (bad.txt: textual==1.0.0)
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

# --- make lock: requirements.lock, every dependency but torch ----------------------------------
# One universal resolution (uv pip compile --universal) of pyproject's dependencies and all its
# extras from PyPI, valid on every Python pyproject allows (markers split it where needed).
# torch is resolved (its CPU-side dependencies are locked) but not written, nor its build-specific
# packages. Re-run after changing pyproject's dependencies; commit requirements.lock with it.
LOCK_FLAGS := pyproject.toml --all-extras --universal --python-version 3.10 --quiet
TORCH_BUILD_PACKAGES := ^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)==

lock: $(COMPAT_TOOLS)
	$(VENV)/bin/uv pip compile $(LOCK_FLAGS) --no-annotate --no-header -o $(LOCK).all
	$(VENV)/bin/uv pip compile $(LOCK_FLAGS) --custom-compile-command "make lock" -o $(LOCK) \
	  $$(grep -oE '$(TORCH_BUILD_PACKAGES)' $(LOCK).all | sed 's/==$$//' | sort -u | sed 's/^/--no-emit-package /')
	@rm -f $(LOCK).all
	@echo "$(LOCK): $$(grep -cE '^[a-z0-9]' $(LOCK)) lines, $$(grep -oE '^[a-z0-9._-]+' $(LOCK) | sort -u | wc -l) packages"
