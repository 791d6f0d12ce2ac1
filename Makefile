# roboforge: `make demo` and `make test` do all set-up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.roboforge-installed
SYSDEPS := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri
export MUJOCO_GL ?= egl
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup sysdeps demo test test-slow bench clean-cache

setup: sysdeps $(STAMP)

# Headless rendering needs EGL (glvnd + Mesa's software driver). Installed when missing and we
# are root; otherwise the exact command is printed.
sysdeps:
	@if ldconfig -p | grep -q 'libEGL_mesa.so.0' && ldconfig -p | grep -q 'libGL.so.1'; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo ">> installing $(SYSDEPS) for headless rendering"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSDEPS); \
	else \
	  echo "!! headless rendering needs: sudo apt-get install -y $(SYSDEPS)"; \
	fi

# torch is installed first and alone with an exact pin: a local CPU wheel (find-links) satisfies it
# on CPU machines; on GPU machines it resolves to PyPI's CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "torch==$$(sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)"
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

demo: setup
	$(PY) train.py env=stack_blocks

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

bench: setup
	$(PY) -m bench.run

clean-cache:
	rm -rf $${ROBOFORGE_CACHE:-$$HOME/.cache/roboforge}
