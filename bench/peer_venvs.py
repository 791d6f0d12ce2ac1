"""The peer suites' virtual environments, ``bench/peers/.venv-<peer>``, created from PyPI on first use.

- ``.venv-maniskill``: torch 2.13.0 (the local CPU wheel), mani-skill 3.0.1, numpy<2 (mplib 0.1.1,
  which ManiSkill's motion planner uses, crashes with numpy 2). Needs Vulkan (lavapipe on CPU).
- ``.venv-robosuite``: robosuite 1.5.2 with mujoco<3.4, as robosuite requires.
- ``.venv-lerobot``: lerobot 0.4.4 with the torch/torchvision pair it pins (torch<2.11): PyPI's
  torch 2.10.0 is the CUDA build, so this is ~3 GB to download and ~8 GB on disk; it runs on CPU.

None of them is a project dependency; a stamp file in each venv records the install steps it was
made with, so changing :data:`PEER_VENVS` rebuilds that venv on the next run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, log

PEERS = ROOT / "bench" / "peers"

# name -> pip install steps, in order (each step one `pip install` call; torch first so that pip
# does not pull a CUDA build for mani-skill)
PEER_VENVS = {
    "maniskill": [["torch==2.13.0"], ["mani-skill==3.0.1", "numpy<2"]],
    "robosuite": [["robosuite==1.5.2", "mujoco<3.4"]],
    "lerobot": [["lerobot==0.4.4"]],
}
VULKAN_HELP = ("ManiSkill/SAPIEN needs Vulkan; on CPU that is lavapipe: echo 'deb http://deb.debian.org/debian "
               "bookworm-backports main' > /etc/apt/sources.list.d/backports.list && apt-get update && "
               "apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1")


def vulkan_ok() -> bool:
    """A Vulkan loader and at least one ICD are installed (SAPIEN cannot start without them)."""
    have_loader = any(Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/libvulkan.so.1", "/usr/lib/libvulkan.so.1",
                                                   "/usr/lib/aarch64-linux-gnu/libvulkan.so.1"))
    icds = list(Path("/usr/share/vulkan/icd.d").glob("*.json")) if Path("/usr/share/vulkan/icd.d").exists() else []
    return have_loader and bool(icds)


def peer_python(name: str, install: bool) -> Path | None:
    """The peer venv's interpreter, creating the venv first when missing (and ``install``)."""
    venv = PEERS / f".venv-{name}"
    py, stamp = venv / "bin" / "python", venv / ".bench-installed"
    spec = json.dumps(PEER_VENVS[name])
    if py.exists() and stamp.exists() and stamp.read_text() == spec:
        return py
    if not install:
        return None
    log(f"creating {venv.relative_to(ROOT)} ({'; '.join(' '.join(s) for s in PEER_VENVS[name])})")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    for step in PEER_VENVS[name]:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *step], env=env, capture_output=True, text=True)
        if r.returncode:
            log(f"pip install {' '.join(step)} failed in {venv.name}:\n{r.stderr[-2000:]}")
            return None
    stamp.write_text(spec)
    return py


def _base_python() -> str:
    """A python outside any venv, to create the peer venvs from (not the project venv's)."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else "python3"


def peer_pythons(names: set[str] | list[str], install: bool) -> dict:
    """``{peer: interpreter or None}`` for each named peer, plus ``{peer}_why`` saying why one is
    missing; the benchmarks record that reason in place of the peer's figures."""
    peers: dict = {}
    for name in sorted(names):
        if name == "maniskill" and not vulkan_ok():
            peers[f"{name}_why"] = "no Vulkan driver: " + VULKAN_HELP
            continue
        py = peer_python(name, install=install)
        if py is None:
            peers[f"{name}_why"] = (f"bench/peers/.venv-{name} missing (--no-install)" if not install
                                    else f"could not create bench/peers/.venv-{name}; see the log above")
        peers[name] = py
    return peers
