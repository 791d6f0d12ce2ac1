# roboforge: `make demo` and `make test` do all set-up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.roboforge-installed
SYSDEPS := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri bubblewrap
VULKAN_SYSDEPS := mesa-vulkan-drivers libvulkan1
BACKPORTS_LIST := /etc/apt/sources.list.d/bookworm-backports.list
export MUJOCO_GL ?= egl
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup sysdeps sysdeps-maniskill demo test test-slow bench bench-gpu clean-cache

setup: sysdeps sysdeps-maniskill $(STAMP)

# Headless rendering needs EGL (glvnd + Mesa's software driver); task generation's sandbox runs
# candidates under bubblewrap (bwrap) where it can. Installed when missing and we are root;
# otherwise the exact command is printed.
sysdeps:
	@if ldconfig -p | grep -q 'libEGL_mesa.so.0' && ldconfig -p | grep -q 'libGL.so.1' && command -v bwrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo ">> installing $(SYSDEPS) for headless rendering and the generation sandbox"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSDEPS); \
	else \
	  echo "!! headless rendering and the generation sandbox need: sudo apt-get install -y $(SYSDEPS)"; \
	fi

# The ManiSkill backend (SAPIEN) needs a Vulkan device even for state-only simulation. Without a GPU
# that is Mesa's lavapipe >= 24.3: on Debian bookworm it comes from bookworm-backports (bookworm's
# own Mesa 22.3 does not work). Installed when missing and we are root; otherwise the exact commands
# are printed. An NVIDIA Vulkan ICD counts as a device too.
sysdeps-maniskill:
	@mesa=$$(dpkg-query -W -f='$${Version}' mesa-vulkan-drivers 2>/dev/null | sed 's/^[0-9]*://'); \
	if [ -n "$$mesa" ] && dpkg --compare-versions "$$mesa" ge 24.3 && ldconfig -p | grep -q 'libvulkan.so.1'; then :; \
	elif ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "!! the ManiSkill backend needs a Vulkan driver: install Mesa >= 24.3 (lavapipe) and the Vulkan loader"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo ">> installing Mesa's Vulkan driver (lavapipe) for the ManiSkill backend"; \
	  if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then \
	    echo 'deb http://deb.debian.org/debian bookworm-backports main' > $(BACKPORTS_LIST); \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports $(VULKAN_SYSDEPS); \
	  else \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(VULKAN_SYSDEPS); \
	  fi; \
	else \
	  echo "!! the ManiSkill backend needs Mesa's Vulkan driver >= 24.3; on Debian bookworm run as root:"; \
	  echo "   echo 'deb http://deb.debian.org/debian bookworm-backports main' > $(BACKPORTS_LIST)"; \
	  echo "   apt-get update && apt-get install -y -t bookworm-backports $(VULKAN_SYSDEPS)"; \
	fi

# torch is installed first and alone with an exact pin: a local CPU wheel (find-links) satisfies it
# on CPU machines; on GPU machines it resolves to PyPI's CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "torch==$$(sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)"
	$(PY) -m pip install -q -e ".[test,maniskill,scale]"
	@touch $@

demo: setup
	$(PY) train.py env=stack_blocks

# the suite runs in TEST_WORKERS processes (pytest-xdist), one test file per worker at a time:
# CI's 2 cores are both used; TEST_WORKERS=0 runs it in this process
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

test-slow: setup
	$(PY) -m pytest -m slow

bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

# On a CUDA machine: the -m gpu tests, then the ManiSkill3 num_envs sweep into docs/benchmarks.md
bench-gpu: setup
	$(PY) -m pytest -m gpu -v
	$(PY) bench/maniskill_gpu.py
	$(PY) -m bench.run --report-only

clean-cache:
	rm -rf $${ROBOFORGE_CACHE:-$$HOME/.cache/roboforge}
