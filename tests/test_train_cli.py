"""train.py as a user runs it: tiny end-to-end runs, resume after a kill, clear errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from policies.diffusion import DiffusionConfig, DiffusionPolicy
from train.datasets.demo_store import Episode
from train.datasets.sequence import SequenceDataset
from train.imitation import TrainingDiverged, checkpoint_dir, train_imitation

ROOT = Path(__file__).resolve().parents[1]
TINY_POLICY = ["policy.down_dims=[16,32]", "policy.horizon=8", "policy.n_action_steps=4", "policy.n_groups=4",
               "policy.diffusion_step_embed_dim=16"]


def run_cli(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "train.py", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def resume_with(run, timeout=300, **changes):
    """Resume the run in ``run`` after editing its saved config (``{"train.steps": 8}``): the
    way a larger budget continues a finished run."""
    from omegaconf import OmegaConf

    config = OmegaConf.load(run / "config.yaml")
    for key, value in changes.items():
        OmegaConf.update(config, key, value)
    OmegaConf.save(config, run / "config.yaml")
    return run_cli(f"resume={run}", f"hydra.run.dir={run}", timeout=timeout)


def tiny_args(tmp_path, run="run", steps=20, **extra):
    # small video frames and 2 denoising steps: at 480x360 the one video costs more CPU than the rest of the run
    args = ["env=stack_blocks", "data.num_demos=2", f"train.steps={steps}", "train.checkpoint_every=10",
            "train.log_every=5", "eval.episodes=2", "eval.num_videos=1", "eval.video_size=[64,64]",
            f"data.store_root={tmp_path}/demos", f"hydra.run.dir={tmp_path}/{run}", "progress=false",
            "train.num_threads=1", "policy.num_inference_steps=2", *TINY_POLICY]
    return args + [f"{k}={v}" for k, v in extra.items()]


def test_cli_end_to_end_writes_every_output(tmp_path):
    res = run_cli(*tiny_args(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["success_rate"] <= 1.0 and metrics["num_episodes"] == 2
    assert all(e["seed"] >= 100_000 for e in metrics["episodes"])  # unseen seeds
    assert (run / "config.yaml").read_text().count("env: stack_blocks") == 1
    ckpt = run / "checkpoints" / "last"
    assert {"config.json", "model.safetensors", "trainer_state.pt"} <= {p.name for p in ckpt.iterdir()}
    assert "obs_normalizer.low" in json.dumps(list(__import__("safetensors.torch").torch.load_file(ckpt / "model.safetensors")))
    videos = list((run / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    first = next(e for e in metrics["episodes"] if not e["success"]) if metrics["num_successes"] < 2 else metrics["episodes"][0]
    assert videos[0].name == f"eval_seed{first['seed']}_{'success' if first['success'] else 'fail'}.mp4"
    assert metrics["eval_timings"]["video_frames"] > first["length"] and metrics["eval_timings"]["rollout_s"] > 0
    assert list((run / "tb").glob("events.out.tfevents.*"))
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("success_rate=") and "unseen seeds" in last and str(run) in last


def test_demos_from_maniskill_train_a_mujoco_policy(tmp_path):
    """data.sim picks the demo backend: ManiSkill demos feed the MuJoCo training pipeline."""
    from envs.backends import maniskill

    if maniskill.problem():
        pytest.skip(maniskill.problem())
    res = run_cli(*tiny_args(tmp_path, steps=10, **{"data.sim": "maniskill", "eval.num_videos": 0,
                                                    "eval.max_episode_steps": 40}))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["sim"] == "mujoco" and metrics["demo_sim"] == "maniskill"
    assert "_maniskill_" in Path(metrics["demo_store"]).name and metrics["num_demos"] == 2
    assert metrics["num_episodes"] == 2


def test_resume_after_kill_continues_from_checkpoint(tmp_path):
    args = tiny_args(tmp_path, steps=300)
    proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / "run" / "checkpoints" / "last" / "trainer_state.pt"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.exists(), "no checkpoint was written before the kill"
    killed_at = torch.load(state, weights_only=False)["step"]
    # what it learns stays as saved (a warning lists what is ignored); evaluation may change
    res = run_cli(f"resume={tmp_path}/run", "train.lr=0.5", "eval.num_videos=0", "eval.max_episode_steps=40")
    assert res.returncode == 0, res.stderr[-3000:]
    said = res.stdout + res.stderr
    assert "resume: ignoring train.lr=0.5" in said and "resume: applying eval.num_videos=0" in said, said[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train"]["start_step"] >= killed_at >= 10
    assert torch.load(state, weights_only=False)["step"] == 300


BAD_OVERRIDES = [
    ("env=stack_blokcs", "unknown task 'stack_blokcs'. Did you mean 'stack_blocks'? Known tasks:"),
    ("train.steps=-3", "train.steps=-3 is invalid; allowed: an integer >= 1"),
    ("obs_mode=depth", "obs_mode='depth' is invalid; allowed: state, slots, rgb, rgbd, pointcloud"),
    ("policy.horizon=7", "policy.horizon=7 is invalid; allowed: a multiple of 2"),
    ("eval.seed_start=1", "eval.seed_start=1 is invalid; allowed: a seed range disjoint from the demo seeds"),
    ("eval.video_size=[480]", "eval.video_size=[480] is invalid; allowed: [width, height] in pixels"),
    ("data.sim=isaac", "data.sim='isaac' is invalid; allowed: null (the training sim), mujoco, maniskill"),
]


def test_bad_overrides_name_key_and_allowed_values(tmp_path):
    """Each message as train.py's preflight words it (in this process: a fresh train.py per
    case costs seconds of imports), then one real run shows train.py ends in that line, exit 2,
    no traceback; ``-m slow`` runs train.py for every case."""
    from train.run_checks import preflight

    check = _train_script().check_runnable
    for override, expected in BAD_OVERRIDES:
        said = preflight([*tiny_args(tmp_path), override], check)
        assert said is not None and expected in said, (override, said)
    override = "obs_mode=depth"   # a message that does not list this process's registered tasks
    res = run_cli(*tiny_args(tmp_path), override)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().endswith(preflight([*tiny_args(tmp_path), override], check)), res.stderr[-2000:]
    assert "Traceback" not in res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("override,expected", BAD_OVERRIDES)
def test_bad_overrides_end_train_py_in_one_line(tmp_path, override, expected):
    res = run_cli(*tiny_args(tmp_path), override)
    assert res.returncode == 2 and expected in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr


def test_library_override_loads_generated_tasks_and_names_the_generator(tmp_path):
    from generation.library import Library

    source = (ROOT / "envs" / "tasks" / "stack_tower.py").read_text().replace('"stack_tower"', '"tower_from_lib"')
    Library(tmp_path / "lib").admit("tower_from_lib", source, {"generator": "test"})
    # env= resolves to the library's task (else "unknown task"), so the next check is the one to fail
    res = run_cli(*tiny_args(tmp_path), f"library={tmp_path / 'lib'}", "env=tower_from_lib", "obs_mode=depth")
    assert res.returncode == 2 and "obs_mode='depth' is invalid" in res.stderr, res.stderr[-2000:]
    res = run_cli(*tiny_args(tmp_path), f"library={tmp_path / 'missing'}")
    assert res.returncode == 2 and "python -m generation generate --library DIR" in res.stderr, res.stderr[-2000:]


def test_unknown_sim_lists_options(tmp_path):
    res = run_cli("sim=bogus", f"hydra.run.dir={tmp_path}/r")
    assert res.returncode != 0 and "maniskill" in res.stderr and "mujoco" in res.stderr


def _tiny_setup():
    rng = np.random.default_rng(0)
    eps = [Episode(rng.normal(size=(20, 5)).astype(np.float32), rng.uniform(-1, 1, (20, 2)).astype(np.float32),
                   np.zeros(20, np.float32), seed=i, success=True) for i in range(3)]
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=5, action_dim=2, down_dims=(16, 32), horizon=8,
                                             n_action_steps=4, n_groups=4, diffusion_step_embed_dim=16))
    ds = SequenceDataset(eps, 2, 8)
    policy.fit_normalizer(*ds.stacked())
    return policy, ds


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    policy, ds = _tiny_setup()
    real = policy.compute_loss
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        loss = real(batch)
        return loss * float("nan") if calls["n"] > 12 else loss

    monkeypatch.setattr(policy, "compute_loss", flaky)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 12; last good checkpoint kept"):
        train_imitation(policy, ds, tmp_path, steps=50, batch_size=8, checkpoint_every=10, progress=False)
    state = torch.load(checkpoint_dir(tmp_path) / "trainer_state.pt", weights_only=False)
    assert state["step"] == 10 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_same_seed_gives_identical_weights_and_metrics(tmp_path):
    """Same config + seed on one machine and thread count (CPU) -> bit-identical weights and
    per-episode results: initial weights, data order, training noise and each evaluation
    episode's sampler noise all derive from the run seed. A different seed changes them."""
    def start(run, seed):
        args = tiny_args(tmp_path, run=run, steps=10, seed=seed, **{"eval.num_videos": 0, "eval.episodes": 2,
                                                                   "eval.max_episode_steps": 40,
                                                                   "data.store_root": f"{tmp_path}/demos_{run}"})
        return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    procs = {run: start(run, seed) for run, seed in (("a", 3), ("b", 3), ("c", 4))}  # concurrently: wall time
    for run, p in procs.items():
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    from safetensors.torch import load_file

    weights = {run: load_file(tmp_path / run / "checkpoints" / "last" / "model.safetensors") for run in procs}
    episodes = {run: json.loads((tmp_path / run / "metrics.json").read_text())["episodes"] for run in procs}
    assert weights["a"].keys() == weights["b"].keys()
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert episodes["a"] == episodes["b"]  # seeds, successes, returns (floats, compared exactly), lengths
    assert not torch.equal(weights["a"]["model.final.1.weight"], weights["c"]["model.final.1.weight"])
    assert [e["return"] for e in episodes["a"]] != [e["return"] for e in episodes["c"]]


# -- bad input ends in one line, before anything is written ----------------------------------------

def _train_script():
    """train.py as a module (its name clashes with the train package), for its check_runnable."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preflight_refuses_bad_resume_and_library_before_hydra_writes(tmp_path):
    from generation.library import Library
    from train.run_checks import preflight

    check = _train_script().check_runnable
    (tmp_path / "a_file").write_text("x")
    assert "resume='" in preflight([f"resume={tmp_path / 'a_file'}"], check) and "(this path is a file)" in \
        preflight([f"resume={tmp_path / 'a_file'}"], check)
    assert "a directory without config.yaml" in preflight([f"resume={tmp_path}"], check)
    lib = Library(tmp_path / "lib")
    lib.admit("tower_pf", (ROOT / "envs" / "tasks" / "stack_tower.py").read_text()
              .replace('"stack_tower"', '"tower_pf"'), {"generator": "test"})
    (lib.root / "manifest.json").write_text("[]")
    assert "is not a roboforge library manifest" in preflight([f"library={lib.root}", "env=tower_pf"], check)
    assert preflight(["--cfg", "job"], check) is None  # Hydra's own flags are Hydra's to answer
    assert preflight(["env=stack_blocks"], check) is None


def test_a_bad_value_leaves_no_run_directory_and_resume_writes_nothing_into_a_non_run_dir(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for args in (["eval.seed_start=-5"], [f"resume={mine}"]):
        res = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert res.returncode == 2 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "outputs").exists() and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_a_failed_run_removes_only_the_directory_hydra_made(tmp_path):
    from train.run_checks import remove_unused_run_dir

    made = tmp_path / "outputs" / "2026-01-01" / "10-00-00"
    (made / ".hydra").mkdir(parents=True)
    (made / "train.log").write_text("")
    kept = tmp_path / "outputs" / "2026-01-01" / "09-00-00"
    (kept / ".hydra").mkdir(parents=True)
    (kept / "config.yaml").write_text("env: stack_blocks\n")
    remove_unused_run_dir(made)
    remove_unused_run_dir(kept)
    assert not made.exists() and (kept / "config.yaml").exists()


def test_resume_applies_safe_overrides_and_names_the_ignored_ones(caplog):
    from omegaconf import OmegaConf

    from train.run_checks import resume_config

    saved = OmegaConf.create({"train": {"steps": 100, "lr": 0.001}, "eval": {"episodes": 50}, "resume": None})
    asked = OmegaConf.create({"train": {"steps": 300, "lr": 0.5}, "eval": {"episodes": 5}, "resume": "run"})
    with caplog.at_level("WARNING", logger="roboforge"):
        cfg = resume_config(saved, asked, ["resume=run", "train.steps=300", "train.lr=0.5", "eval.episodes=5"])
    assert (cfg.train.steps, cfg.train.lr, cfg.eval.episodes, cfg.resume) == (300, 0.001, 5, "run")
    assert "resume: applying train.steps=300 eval.episodes=5" in caplog.text
    assert "resume: ignoring train.lr=0.5" in caplog.text


def test_divergence_before_any_checkpoint_says_none_was_kept(tmp_path, monkeypatch):
    policy, ds = _tiny_setup()
    monkeypatch.setattr(policy, "compute_loss", lambda batch: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingDiverged, match="loss became nan at step 0; no checkpoint was saved before it"):
        train_imitation(policy, ds, tmp_path, steps=5, batch_size=8, checkpoint_every=10, progress=False)


def test_a_truncated_checkpoint_is_one_line_on_resume_and_load(tmp_path):
    from policies import Policy
    from policies.common.policy import CheckpointDamagedError

    policy, ds = _tiny_setup()
    train_imitation(policy, ds, tmp_path, steps=2, batch_size=8, checkpoint_every=1, progress=False)
    ckpt = checkpoint_dir(tmp_path)
    for name in ("trainer_state.pt", "model.safetensors"):
        data = (ckpt / name).read_bytes()
        (ckpt / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointDamagedError, match="trainer_state.pt cannot be read .*cannot resume from it"):
        train_imitation(policy, ds, tmp_path, steps=4, batch_size=8, checkpoint_every=1, progress=False)
    with pytest.raises(CheckpointDamagedError, match="model.safetensors cannot be read .*damaged"):
        Policy.from_pretrained(ckpt)
