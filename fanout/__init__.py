"""Fan independent items (seed ranges, seed chunks, candidate programs) out over Ray workers.

One :class:`Pool` is one Ray session: local with ``workers`` CPUs, or a running cluster at
``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``). :meth:`Pool.map` yields results in
item order whatever order workers finish in, so a caller that consumes them as the serial loop
did (first N successful demos, the next candidate) gets the serial result. A worker that dies
mid-item (killed, out of memory, its node lost) has that item resubmitted, up to
``max_attempts`` times; every such retry is logged and kept in :attr:`Pool.incidents`. An
exception raised by the item's own code is not retried: it is raised in the caller.

Ray is imported only here, and only when a Pool is made: a run with no ``scale.*`` never imports
it. This module imports nothing from the project, so every layer may use it. Workers started by
a local session inherit the caller's environment and priority (start the caller under ``nice``).
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3          # per item: the first run and two retries after a worker died
CONNECT_TIMEOUT_S = 5.0   # an unreachable address fails within this (before Ray's own, much longer, retries)


class ClusterUnreachable(ConnectionError):
    """``scale.address`` names no Ray cluster that answers."""


class ItemFailed(RuntimeError):
    """An item whose worker died on every attempt."""


@dataclass
class Incident:
    """One item whose worker died: what it was, which attempt, what Ray said."""

    item: str
    attempt: int
    error: str
    retried: bool


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ClusterUnreachable` naming ``address`` unless something listens there.
    ``auto`` (the cluster this machine belongs to) is left to Ray, which answers at once."""
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(f"scale.address={address} is invalid; allowed: auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ClusterUnreachable(f"scale.address={address}: no Ray cluster answers there "
                                 f"(waited {timeout_s:.0f} s: {err})") from None


START_ATTEMPTS = 3        # a local session whose raylet did not register in time (a starved CPU) is started again
# What a local session needs and no more: no dashboard, no metrics agents' collection; on a small
# loaded machine every extra process at start-up is what makes Ray's fixed 30 s node-registration
# wait run out ("The current node timed out during startup", "Deadline Exceeded").
LOCAL_SYSTEM_CONFIG = {"enable_metrics_collection": False}


def start_local_session(workers: int, pythonpath: str) -> None:
    """``ray.init`` a local session of ``workers`` CPUs whose workers see ``pythonpath``.

    The path goes through the environment the raylet and its workers inherit, not a
    ``runtime_env``: a runtime env makes every worker's start a round trip through Ray's
    runtime-env agent, which under load is the slowest part. Ray waits a fixed 30 s for its
    raylet to register and gives up ("timed out during startup"); that attempt's processes are
    then ended (only the ones it started: this process's new children) and the start is
    tried again, up to :data:`START_ATTEMPTS` times."""
    import psutil
    import ray

    me, previous = psutil.Process(), os.environ.get("PYTHONPATH")
    for attempt in range(1, START_ATTEMPTS + 1):
        before = {c.pid for c in me.children(recursive=True)}
        os.environ["PYTHONPATH"] = pythonpath   # for the raylet started now (and so its workers) only
        try:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     _system_config=LOCAL_SYSTEM_CONFIG)
            return
        except Exception as err:  # noqa: BLE001  (Ray raises a bare Exception for this)
            if "timed out during startup" not in str(err) or attempt == START_ATTEMPTS:
                raise
            log.warning("Ray's local session did not start in time (attempt %d/%d: %s); starting it again",
                        attempt, START_ATTEMPTS, err)
            started = [c for c in me.children(recursive=True) if c.pid not in before]
            for child in started:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.terminate()
            _, alive = psutil.wait_procs(started, timeout=10)
            for child in alive:   # Ray's agents may outwait a SIGTERM whose GCS is gone
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            ray.shutdown()
        finally:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous


_SETUP_DONE: set[str] = set()   # per worker process: the setups already run


def _run(setup: Callable | None, fn: Callable, shared: Any, item: Any) -> Any:
    """What a worker runs for one item: the pool's setup once per process, then the item."""
    if setup is not None and repr(setup) not in _SETUP_DONE:
        setup()
        _SETUP_DONE.add(repr(setup))
    return fn(item) if shared is None else fn(shared, item)


class Pool:
    """A Ray session to run items on. ``workers``: CPUs of a local session (0 with an
    ``address``: every CPU of the cluster). ``setup``: called once in each worker process before
    its first item (e.g. registering a task library); it must be picklable and idempotent.

    A Pool made while Ray is already initialised (a test's shared session) uses that session
    and leaves it running on :meth:`close`."""

    def __init__(self, workers: int = 0, address: str | None = None, setup: Callable | None = None,
                 max_attempts: int = MAX_ATTEMPTS):
        import ray

        if workers < 0 or (workers == 0 and not address):
            raise ValueError(f"scale.workers={workers} is invalid; allowed: an integer >= 1 "
                             f"(or 0 together with scale.address: the whole cluster)")
        self.setup, self.max_attempts, self.incidents = setup, max_attempts, []
        if address:
            check_reachable(address)
        self._owned = not ray.is_initialized()
        if self._owned:
            # workers import the project as the caller does
            pythonpath = os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", ""), *sys.path] if p)
            if address:
                try:
                    ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
                except ConnectionError as err:
                    raise ClusterUnreachable(f"scale.address={address}: {err}") from None
            else:
                start_local_session(workers, pythonpath)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.workers = workers or cpus
        cores = cpus if address else (os.cpu_count() or 1)
        if self.workers > cores:
            log.warning("scale.workers=%d is more than the %d cores %s: items will share cores", self.workers,
                        cores, "the cluster has" if address else "of this machine")
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_run)   # retried here, so each retry is reported

    def submit(self, fn: Callable, item: Any, *, shared_ref: Any = None, label: str = "") -> "Job":
        """Start ``fn(item)`` (or ``fn(shared, item)``; ``shared_ref`` from :meth:`put`) on a worker."""
        return Job(self, fn, item, shared_ref, label or str(item))

    def put(self, value: Any):
        """``value`` in the object store, once, for several items to share."""
        import ray

        return ray.put(value)

    def map(self, fn: Callable, items: Iterable, *, shared: Any = None, label: Callable[[Any], str] = str,
            window: int | None = None) -> Iterator:
        """``fn(item)`` (or ``fn(shared, item)``) for each item, yielded in item order. At most
        ``window`` items (default: 2 per worker) are submitted ahead of the one yielded next, so
        ``items`` may be endless and a caller that stops early wastes little; items still running
        when the caller stops (or on Ctrl-C) are cancelled. ``shared`` (a policy, a config) is
        sent to the object store once, not once per item. ``label(item)`` names an item in
        reports."""
        shared_ref = None if shared is None else self.put(shared)
        window = window or 2 * self.workers
        source, jobs = iter(items), deque()
        try:
            while True:
                for item in itertools.islice(source, window - len(jobs)):
                    jobs.append(self.submit(fn, item, shared_ref=shared_ref, label=label(item)))
                if not jobs:
                    return
                yield jobs.popleft().result()
        finally:
            for job in jobs:
                job.cancel()

    def report(self) -> list[dict]:
        """The incidents (worker deaths and retries) as plain dicts, for metrics.json."""
        return [vars(i) for i in self.incidents]

    def close(self) -> None:
        import ray

        if self._owned and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Job:
    """One item on a worker: :meth:`result` waits for it, resubmitting it when its worker died."""

    def __init__(self, pool: Pool, fn: Callable, item: Any, shared_ref: Any, label: str):
        self.pool, self.fn, self.item, self.shared_ref, self.label = pool, fn, item, shared_ref, label
        self.attempt = 1
        self._start()

    def _start(self) -> None:
        self.ref = self.pool._remote.remote(self.pool.setup, self.fn, self.shared_ref, self.item)

    def result(self) -> Any:
        import ray
        from ray import exceptions as rex

        while True:
            try:
                return ray.get(self.ref)
            except rex.RayTaskError as err:   # the item's own code raised: not the worker's fault, not retried
                cause = err.cause if isinstance(err.cause, Exception) else err
                cause.add_note(f"(in the Ray task for {self.label})")
                raise cause from None
            except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError, rex.OwnerDiedError,
                    rex.LocalRayletDiedError) as err:
                pool, retry = self.pool, self.attempt < self.pool.max_attempts
                pool.incidents.append(Incident(self.label, self.attempt, f"{type(err).__name__}: {err}", retry))
                log.warning("%s: its worker died (attempt %d/%d, %s); %s", self.label, self.attempt,
                            pool.max_attempts, type(err).__name__, "retrying" if retry else "giving up")
                if not retry:
                    raise ItemFailed(f"{self.label}: its worker died on all {pool.max_attempts} attempts "
                                     f"(last: {type(err).__name__})") from None
                self.attempt += 1
                self._start()

    def cancel(self) -> None:
        """Drop the item (not forced: a forced cancel kills the worker, and a new one costs seconds)."""
        import ray

        ray.cancel(self.ref)
