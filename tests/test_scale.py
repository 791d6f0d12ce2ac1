"""Fan-out over Ray (scale.workers / scale.address): the same demos and the same per-seed
evaluation as one process, a killed worker's item retried and reported, bad addresses and
oversubscription named. One local Ray session (2 CPUs) serves the whole module. Tests that use
it are marked slow: on the shared 2-core machine the session and its workers' first imports take
~20 s, and each worker's first item ~15 s more (``-m slow`` runs them: ~90 s in all)."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from train.config import compose
from train.demos import collect_demos
from train.evaluate import evaluate, rollout, rollout_fanned

ray = pytest.importorskip("ray")
import fanout  # noqa: E402
from fanout import ClusterUnreachable, Pool  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pool():
    with Pool(workers=2) as p:   # starts the session (workers import this module too); later Pools share it
        yield p


def make_env(max_steps=6, **kwargs):
    return gym.make(envs.env_id("reach_target"), max_episode_steps=max_steps, **kwargs)


class Reacher:
    """Scripted reach_target policy (as in test_evaluate_videos): with 6 steps some seeds succeed."""

    def reset(self, noise_seeds=None):
        pass

    def select_action(self, obs):
        from envs.backends.mujoco.controller import POS_SCALE

        a = np.zeros((len(obs), 7), np.float32)
        a[:, :3] = np.clip(obs[:, -3:] / POS_SCALE, -1, 1)
        a[:, 6] = 1.0
        return a


@pytest.mark.slow
def test_demos_on_workers_are_the_serial_store(pool, tmp_path):
    kw = dict(task="reach_target", num_demos=5, seed_start=0, progress=False)
    serial = collect_demos(store_root=tmp_path / "serial", **kw)
    fanned = collect_demos(store_root=tmp_path / "fanned", pool=pool, **kw)
    assert [e.seed for e in fanned.episodes] == [e.seed for e in serial.episodes]
    for a, b in zip(serial.episodes, fanned.episodes):
        for field in ("obs", "actions", "rewards", "final_obs", "slots", "proprio"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert fanned.path.name == serial.path.name   # the same cache key: either run reuses the other's store


@pytest.mark.slow
def test_evaluation_on_workers_has_the_serial_per_seed_outcome(pool, tmp_path):
    seeds = range(100_000, 100_006)
    serial = evaluate(Reacher(), make_env, seeds, progress=False)
    fanned = evaluate(Reacher(), make_env, seeds, video_dir=tmp_path, num_videos=2, progress=False, pool=pool)
    assert 0 < serial["num_successes"] < len(seeds)   # a mix, so the comparison means something
    assert fanned["episodes"] == serial["episodes"]
    assert len(fanned["videos"]) == 2   # filmed here, from the actions the workers returned


@pytest.mark.slow
def test_a_diffusion_policy_acts_the_same_on_workers(pool):
    from policies.diffusion import DiffusionConfig, DiffusionPolicy

    obs_dim = make_env().observation_space.shape[0]
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=7, n_obs_steps=2, horizon=8,
                                             n_action_steps=4, down_dims=(32, 64), diffusion_step_embed_dim=32,
                                             num_inference_steps=3))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(100, obs_dim)), rng.uniform(-1, 1, (100, 7)))
    policy.eval()
    seeds = [100_000, 100_001, 100_002]
    _, serial_actions, _ = rollout(policy, make_env, seeds, 1, False, run_seed=3)
    _, fanned_actions, _ = rollout_fanned(pool, policy, make_env, seeds, 1, False, run_seed=3)
    for s in seeds:   # per-seed sampler noise: the same actions whichever process runs the episode
        np.testing.assert_allclose(fanned_actions[s], serial_actions[s], atol=1e-5)


def _dies_once(marker_dir, x):
    """Kills its own worker the first time it sees ``x == 1`` (a worker lost mid-item)."""
    marker = os.path.join(marker_dir, f"ran{x}")
    if x == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_reported(pool, tmp_path):
    before = len(pool.incidents)
    assert list(pool.map(_dies_once, [0, 1, 2], shared=str(tmp_path), label=lambda x: f"item {x}")) == [0, 10, 20]
    (incident,) = pool.incidents[before:]
    assert incident.item == "item 1" and incident.attempt == 1 and incident.retried
    assert "WorkerCrashedError" in incident.error or "died" in incident.error.lower()


def _raises(x):
    raise ValueError(f"bad item {x}")


@pytest.mark.slow
def test_an_item_error_is_raised_not_retried(pool):
    with pytest.raises(ValueError, match="bad item 7"):
        list(pool.map(_raises, [7]))


def test_unreachable_address_fails_fast_naming_it():   # checked before any Ray session starts
    t0 = time.monotonic()
    with pytest.raises(ClusterUnreachable, match="127.0.0.1:9"):
        Pool(address="127.0.0.1:9")
    assert time.monotonic() - t0 < 10
    with pytest.raises(ClusterUnreachable, match="invalid"):
        Pool(address="no-port-here")


def test_a_local_session_that_starts_too_slowly_is_started_again(monkeypatch):
    """Ray gives its raylet a fixed 30 s to register (a starved CPU misses it): the attempt's own
    processes are ended and the session started again, with the workers' path in the environment
    the raylet inherits (no runtime env) and no dashboard. Ray itself is not started here."""
    calls, left = [], []

    def init(**kwargs):
        calls.append((kwargs, os.environ.get("PYTHONPATH")))
        if len(calls) == 1:   # what a failed start leaves behind: a child of this process
            left.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))
            raise Exception("The current node timed out during startup. This could happen because ...")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    before = os.environ.get("PYTHONPATH")
    fanout.start_local_session(2, "/the/workers/path")
    assert len(calls) == 2 and [c[1] for c in calls] == ["/the/workers/path"] * 2
    assert calls[1][0]["num_cpus"] == 2 and calls[1][0]["include_dashboard"] is False
    assert "runtime_env" not in calls[1][0]
    assert left[0].wait(timeout=15) is not None   # the failed attempt's process was ended
    assert os.environ.get("PYTHONPATH") == before   # this process's own environment is as it was

    def broken(**kwargs):
        raise Exception("some other start-up failure")

    monkeypatch.setattr(ray, "init", broken)
    with pytest.raises(Exception, match="some other start-up failure"):   # not retried: named at once
        fanout.start_local_session(2, "/the/workers/path")


@pytest.mark.slow
def test_more_workers_than_cores_warns(pool, caplog):
    with caplog.at_level(logging.WARNING, logger="fanout"):
        Pool(workers=4 * (os.cpu_count() or 1))
    assert "more than the" in caplog.text


def test_no_scale_keys_means_no_pool():
    from train.scale import run_pool

    config = compose("env=reach_target")
    assert not config.scale.enabled
    with run_pool(config) as p:
        assert p is None
    assert compose("env=reach_target", "scale.workers=2").scale.enabled
    with pytest.raises(Exception, match="scale.workers=-1 is invalid"):
        compose("env=reach_target", "scale.workers=-1")


@pytest.mark.slow
@pytest.mark.timeout(1800)   # 4 sandboxed gate runs: ~1 min idle, over 10 min on a loaded shared CPU
def test_generation_gates_on_workers_admit_the_serial_set(pool, tmp_path):
    from generation.gates import GateConfig
    from generation.library import Library
    from generation.pipeline import generate

    serial, fanned = Library(tmp_path / "serial"), Library(tmp_path / "fanned")
    config = GateConfig(runtime_seeds=1)   # the fewest seeds the gates allow: minutes of sandbox runs otherwise
    a = generate(serial, count=2, config=config, progress=False)
    b = generate(fanned, count=2, config=config, progress=False, pool=pool)
    assert b.admitted == a.admitted and b.rejected == a.rejected
    journal = [[(r["task"], r["outcome"], r["reason"]) for r in lib.journal("attempts")] for lib in (serial, fanned)]
    assert journal[0] == journal[1]


# -- train.py as a user runs it (fresh processes: their own Ray session) --------------------------
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_train_cli_with_workers_matches_the_single_process_run(tmp_path):
    from tests.test_train_cli import run_cli, tiny_args

    single = run_cli(*tiny_args(tmp_path, run="single", steps=10), timeout=900)   # minutes each under load
    fanned = run_cli(*tiny_args(tmp_path / "f", run="fanned", steps=10), "scale.workers=2", timeout=900)
    assert single.returncode == 0 and fanned.returncode == 0, fanned.stderr[-3000:]
    a, b = (json.loads((p / "metrics.json").read_text()) for p in (tmp_path / "single", tmp_path / "f" / "fanned"))
    assert [(e["seed"], e["success"]) for e in b["episodes"]] == [(e["seed"], e["success"]) for e in a["episodes"]]
    assert b["scale"] == {"workers": 2, "incidents": []} and "scale" not in a


@pytest.mark.slow
def test_train_cli_names_an_unreachable_address(tmp_path):
    from tests.test_train_cli import run_cli, tiny_args

    t0 = time.monotonic()
    res = run_cli(*tiny_args(tmp_path), "scale.address=127.0.0.1:9")
    assert res.returncode == 2 and "scale.address=127.0.0.1:9" in res.stderr, res.stderr[-2000:]
    assert time.monotonic() - t0 < 120   # the check itself waits at most CONNECT_TIMEOUT_S; the rest is imports
