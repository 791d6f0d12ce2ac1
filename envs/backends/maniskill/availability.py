"""Can this machine run the ManiSkill backend? One question, one answer with the exact fix.

SAPIEN needs a Vulkan device even for state-only simulation. Without a GPU that is Mesa's software
rasteriser lavapipe, which works from Mesa 24.3 on; Debian bookworm ships 22.3 (it fails), so the
fix there takes ``mesa-vulkan-drivers`` from bookworm-backports.
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess

MIN_MESA = (24, 3)
INSTALL_EXTRA = "pip install -e '.[maniskill]'   (or `make setup`, which installs it)"
VULKAN_FIX = (
    "On Debian bookworm, as root:\n"
    "    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list\n"
    "    apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1\n"
    "(`make setup` does this when run as root). On Ubuntu 24.04+ or another distribution with Mesa >= 24.3: "
    "apt-get install -y mesa-vulkan-drivers libvulkan1. On an NVIDIA machine: install the NVIDIA driver "
    "with its Vulkan ICD (nvidia_icd.json).")


class ManiSkillUnavailable(RuntimeError):
    """sim='maniskill' was asked for but this machine can't run it; the message says how to fix it."""


def _mesa_version() -> tuple[int, int] | None:
    """Version of Debian/Ubuntu's mesa-vulkan-drivers, if dpkg knows it."""
    if not shutil.which("dpkg-query"):
        return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "mesa-vulkan-drivers"],
                             capture_output=True, text=True, timeout=10).stdout
        major, minor = out.split(":")[-1].split(".")[:2]
        return int(major), int(minor)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def problem() -> str | None:
    """``None`` when the backend can run here, else the one message saying why not and the fix."""
    try:
        import mani_skill  # noqa: F401
        import sapien
        import sapien.render
    except ImportError as err:
        return (f"sim='maniskill' needs the optional ManiSkill3 extra, which is not installed ({err}). "
                f"Install it with: {INSTALL_EXTRA}")
    try:
        summary = sapien.render.get_device_summary()
    except RuntimeError as err:
        return f"sim='maniskill' needs a Vulkan device for SAPIEN and none was found ({err}). {VULKAN_FIX}"
    has_cuda_device = any(int(c) >= 0 for c in re.findall(r"cudaId:\s*(-?\d+)", summary))
    if "llvmpipe" in summary and not has_cuda_device:
        mesa = _mesa_version()
        if mesa is not None and mesa < MIN_MESA:
            return (f"sim='maniskill' found only Mesa {mesa[0]}.{mesa[1]}'s lavapipe as Vulkan device; SAPIEN "
                    f"needs Mesa >= {MIN_MESA[0]}.{MIN_MESA[1]}. {VULKAN_FIX}")
    return None


def require() -> None:
    """Raise :class:`ManiSkillUnavailable` (one message, the exact fix) unless the backend can run."""
    msg = problem()
    if msg:
        raise ManiSkillUnavailable(msg)
