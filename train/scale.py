"""The Ray pool a run's ``scale.*`` keys ask for (docs/scale.md), or None: one process, no Ray."""
from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Iterator

from train.config import RunConfig


@contextlib.contextmanager
def run_pool(config: RunConfig, enabled: bool = True) -> Iterator:
    """A :class:`fanout.Pool` for the run (its workers register ``library`` first), shut down when
    the block ends; None when no ``scale.*`` key is set (or not ``enabled``), and then Ray is not
    imported."""
    if not (config.scale.enabled and enabled):
        yield None
        return
    import envs
    from fanout import Pool

    setup = partial(envs.load_library, str(Path(config.library).resolve())) if config.library else None
    pool = Pool(config.scale.workers, config.scale.address, setup=setup)
    try:
        yield pool
    finally:
        pool.close()


def scale_report(pool) -> dict:
    """What metrics.json records of the fan-out: the workers and every worker death (item, attempt)."""
    return {} if pool is None else {"scale": {"workers": pool.workers, "incidents": pool.report()}}
