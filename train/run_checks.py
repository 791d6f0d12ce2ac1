"""What ``train.py`` checks around Hydra: bad input ends in one ``error: ...`` line (exit 2)
before anything is written, and ``resume=`` says which overrides it applies and which it ignores.

Hydra creates the run directory (``outputs/<date>/<time>/``, or the ``resume=`` directory) and
writes ``.hydra/`` into it before ``main`` runs, so :func:`preflight` composes the same config
through Hydra's compose API and validates it first; :func:`remove_unused_run_dir` takes away a
run directory that a later failure left holding nothing but Hydra's own files.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from envs.core.fileio import Artifact
from policies.common.config import ConfigError

log = logging.getLogger("roboforge")

# what Hydra writes into a run directory before the run starts
_HYDRA_ONLY = Artifact("run directory Hydra created", (".hydra", "train.log"))
# overrides a resumed run applies: how long it trains and how it is evaluated, never what it learns
RESUME_SAFE = ("train.steps", "train.checkpoint_every", "train.log_every", "train.num_threads", "train.num_workers",
               "policy.total_timesteps", "eval", "progress", "device")


_ABSENT = object()


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (a value, a file, a library), said in one line at the entry point."""
    from envs import UnknownTaskError
    from envs.core.fileio import ReplaceRefusedError
    from envs.library import LibraryError
    from llm import LLMConfigError
    from policies.common.policy import CheckpointDamagedError
    from train.datasets.demo_store import CorruptDemoStoreError
    from train.datasets.multitask import IncompatibleTasksError

    # ConnectionError: an unreachable scale.address (fanout.Pool names the address)
    return (UnknownTaskError, ConfigError, IncompatibleTasksError, LibraryError, CheckpointDamagedError,
            ReplaceRefusedError, CorruptDemoStoreError, ConnectionError, LLMConfigError)


def check_resume_dir(resume: str) -> Path:
    """``resume=`` must name a run directory (one holding the run's ``config.yaml``)."""
    path = Path(resume)
    if not path.is_dir() or not (path / "config.yaml").is_file():
        what = "a file" if path.is_file() else "missing" if not path.exists() else "a directory without config.yaml"
        raise ConfigError("resume", resume, f"a run directory holding config.yaml, e.g. outputs/<date>/<time> "
                                            f"(this path is {what})")
    return path


def preflight(argv: list[str], check_runnable: Callable[[Any], Any]) -> str | None:
    """The one-line error ``python train.py <argv>`` would end in, found before Hydra creates a
    run directory (``check_runnable``: train.py's check of tasks, library and device); None when
    the config is runnable, or when Hydra itself should answer (its own flags such as ``--cfg``,
    an override it cannot parse)."""
    if any(a.startswith("-") for a in argv):
        return None
    from train.vla import renamed_override

    renamed = renamed_override(argv)
    if renamed:
        return renamed
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from train.config import CONFIG_DIR, to_run_config

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(argv))
    except (HydraException, OmegaConfBaseException):
        return None
    try:
        if cfg.resume:
            check_resume_dir(cfg.resume)  # its saved config was checked when the run started
        else:
            check_runnable(to_run_config(cfg))
    except user_errors() as err:
        return str(err)
    return None


def resume_config(saved: DictConfig, cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The saved config of a resumed run, with the overrides that are safe to change applied
    (:data:`RESUME_SAFE`: steps, evaluation, progress) and the others listed in a warning."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    merged = OmegaConf.merge(saved, {"resume": str(cfg.resume)})
    applied, ignored = [], []
    for o in OverridesParser.create().parse_overrides(overrides):
        key = o.key_or_group
        if key == "resume" or key.startswith("hydra"):
            continue
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if any(key == k or key.startswith(k + ".") for k in RESUME_SAFE) and value is not _ABSENT:
            OmegaConf.update(merged, key, value, force_add=False)
            applied.append(o.input_line)
        else:
            ignored.append(o.input_line)
    if applied:
        log.warning("resume: applying %s", " ".join(applied))
    if ignored:
        log.warning("resume: ignoring %s (a resumed run keeps its saved config; only %s may change)",
                    " ".join(ignored), ", ".join(RESUME_SAFE))
    return merged


def remove_unused_run_dir(run_dir: Path) -> None:
    """Remove ``run_dir`` when it holds only what Hydra wrote before the run failed; never a
    directory with anything else in it (a resumed run's, a user's)."""
    if run_dir.is_dir() and _HYDRA_ONLY.foreign(run_dir) is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        parent = run_dir.parent  # outputs/<date>/ left empty too
        if parent.name != "outputs" and parent.parent.name == "outputs" and not any(parent.iterdir()):
            parent.rmdir()
