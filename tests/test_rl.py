"""RL with stable-baselines3: every task is a valid SB3 env; tiny PPO / SAC runs go end to end
through ``train.rl.run_rl`` (metrics, checkpoints, video, resume); the exported policy acts like
the SB3 actor and survives a save/load; unsupported set-ups fail with a clear message.

Long learning runs are benchmarks (bench/rl_learning.py), not tests.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import envs
from policies.common.policy import Policy
from policies.rl import MLPActorPolicy, UnsupportedRLSetup, check_supported
from policies.rl.sb3 import export_policy, make_env
from train.config import RunConfig, compose
from train.rl import run_rl

def tiny_config(algo: str, task: str = "reach_target", *overrides: str, **policy) -> RunConfig:
    """A run config as train.py composes it for ``env=<task> policy=<algo>``, made tiny."""
    cfg = compose(f"env={task}", f"policy={algo}", "progress=false", "eval.episodes=2", "eval.num_videos=1",
                  "eval.video_size=[64,64]", *overrides)   # small frames: rendering dominates a tiny run's CPU
    small = {"ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
             "sac": {"learning_starts": 64, "batch_size": 64, "buffer_size": 2000}}[algo]
    over = {"total_timesteps": 256, "num_envs": 2, "vec_env": "dummy", "checkpoint_every": 128,
            "net_arch": [32, 32], "sb3": {**cfg.policy.sb3, **small}, **policy}
    return replace(cfg, policy=replace(cfg.policy, **over))


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    """A tiny SAC run with oracle demos in its replay buffer."""
    run_dir = tmp_path_factory.mktemp("sac_run")
    cfg = tiny_config("sac", demos=2)
    return cfg, run_dir, run_rl(cfg, run_dir)


def test_every_task_passes_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env

    for task in envs.list_tasks():
        env = make_env(task)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, warn=True)
        sb3_warnings = [str(w.message) for w in caught if "stable_baselines3" in w.filename]
        assert not sb3_warnings, f"{task}: {sb3_warnings}"
        env.close()


def test_ppo_end_to_end_in_subprocesses(tmp_path):
    cfg = tiny_config("ppo", vec_env="subproc")
    metrics = run_rl(cfg, tmp_path)
    assert 0.0 <= metrics["success_rate"] <= 1.0 and metrics["env_steps"] >= 256
    assert json.loads((tmp_path / "metrics.json").read_text())["success_rate"] == metrics["success_rate"]
    for f in ["checkpoints/config.json", "checkpoints/model.safetensors", "checkpoints/sb3/model.zip",
              "checkpoints/sb3/vecnormalize.pkl"]:
        assert (tmp_path / f).is_file(), f
    assert list((tmp_path / "videos").glob("*.mp4"))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents*"))
    assert metrics["collect_steps_per_s"] > 0


def test_sac_with_demos_writes_outputs(sac_run):
    _, run_dir, metrics = sac_run
    assert metrics["algorithm"] == "sac" and metrics["demo_episodes"] == 2 and metrics["demo_steps"] > 0
    assert metrics["env_steps"] >= 256
    assert (run_dir / "checkpoints/sb3/replay_buffer.npz").is_file()
    assert list((run_dir / "videos").glob("*.mp4"))


def test_demos_from_the_store_replay_as_training_transitions(tmp_path):
    """Store episodes go into SAC's buffer as exactly what the training env (success bonus on)
    returns when their actions are replayed: observations, rewards, bonus, termination."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    from policies.rl.sb3 import add_demos, success_bonus
    from train.demos import collect_demos

    gamma = 0.9
    store = collect_demos("reach_target", 2, seed_start=7, store_root=tmp_path, progress=False)
    model = SAC("MlpPolicy", DummyVecEnv([lambda: make_env("reach_target")]), buffer_size=2000, learning_starts=0)
    info = add_demos(model, store.episodes, success_bonus=success_bonus(gamma))
    assert info == {"demo_episodes": 2, "demo_steps": sum(len(e.actions) for e in store.episodes), "demo_successes": 2}
    rb, t = model.replay_buffer, 0
    for ep in store.episodes:
        env = make_env("reach_target", success_bonus_gamma=gamma)
        obs, _ = env.reset(seed=ep.seed)
        for a in ep.actions:
            np.testing.assert_allclose(rb.observations[t, 0], obs, atol=1e-4)
            obs, r, term, trunc, _ = env.step(np.clip(a, -1, 1))
            np.testing.assert_allclose(rb.next_observations[t, 0], obs, atol=1e-4)
            assert rb.rewards[t, 0] == pytest.approx(r, abs=1e-4) and bool(rb.dones[t, 0]) == (term or trunc)
            assert not rb.timeouts[t, 0]
            t += 1
        assert term and r > success_bonus(gamma)  # the success step carries the bonus
    sparse = SAC("MlpPolicy", DummyVecEnv([lambda: make_env("reach_target")]), buffer_size=2000, learning_starts=0)
    add_demos(sparse, store.episodes[:1], sparse=True)
    n = len(store.episodes[0].actions)
    assert sparse.replay_buffer.rewards[:n, 0].tolist() == [0.0] * (n - 1) + [1.0]


def test_rerun_resumes_the_step_count(sac_run):
    cfg, run_dir, first = sac_run
    cfg = replace(cfg, policy=replace(cfg.policy, total_timesteps=384))
    again = run_rl(cfg, run_dir)
    assert again["resumed_from_step"] == first["env_steps"]
    assert again["env_steps"] >= 384 and again["train_steps_this_run"] < 384
    # the resumed run still reports the demos its buffer was seeded with
    assert (again["demo_episodes"], again["demo_steps"]) == (first["demo_episodes"], first["demo_steps"])
    # the replay buffer came back with the demos and the first run's transitions in it
    with np.load(run_dir / "checkpoints/sb3/replay_buffer.npz") as z:
        assert len(z["observations"]) * 2 >= first["env_steps"] + first["demo_steps"]


def test_exported_policy_matches_sb3_and_round_trips(sac_run, tmp_path):
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    _, run_dir, _ = sac_run
    state = run_dir / "checkpoints" / "sb3"
    norm = VecNormalize.load(str(state / "vecnormalize.pkl"), DummyVecEnv([lambda: make_env("reach_target")]))
    norm.training = False
    model = SAC.load(state / "model.zip", device="cpu")

    env = make_env("reach_target")
    obs, _ = env.reset(seed=123)
    batch = np.stack([env.step(env.action_space.sample())[0] for _ in range(16)])
    expected, _ = model.predict(norm.normalize_obs(batch), deterministic=True)

    policy = export_policy(model, norm, task="reach_target")
    np.testing.assert_allclose(policy.select_action(batch), expected, atol=1e-5)

    policy.save_pretrained(tmp_path / "policy")
    loaded = Policy.from_pretrained(tmp_path / "policy")  # through the common registry
    assert isinstance(loaded, MLPActorPolicy)
    loaded.reset()
    for o in batch:
        np.testing.assert_array_equal(loaded.select_action(o), policy.select_action(o))
    # and what run_rl left in checkpoints/ loads the same way
    assert Policy.from_pretrained(run_dir / "checkpoints").select_action(batch[0]).shape == env.action_space.shape


def test_rl_checkpoint_exports_to_onnx_and_runs_without_torch_policy(sac_run, tmp_path):
    from policies.export import export_policy as export_artifact
    from policies.export.runtime import ExportedPolicy

    _, run_dir, _ = sac_run
    out = export_artifact(run_dir / "checkpoints", "onnx", tmp_path / "exported")
    torch_policy = Policy.from_pretrained(run_dir / "checkpoints")
    exported = ExportedPolicy(out)
    env = make_env("reach_target")
    obs, _ = env.reset(seed=5)
    batch = np.stack([env.step(env.action_space.sample())[0] for _ in range(8)])
    np.testing.assert_allclose(exported.select_action(batch), torch_policy.select_action(batch), atol=1e-5)
    assert exported.manifest["task"]["name"] == "reach_target" and exported.manifest["policy"]["algorithm"] == "sac"


def test_resume_with_a_changed_observation_layout_says_so(sac_run):
    from stable_baselines3.common.vec_env import DummyVecEnv

    from policies.rl.sb3 import load_training_state

    _, run_dir, _ = sac_run
    other = DummyVecEnv([lambda: make_env("push_to_zone")])  # a different observation size
    with pytest.raises(ValueError, match=r"trained on observations of shape \(\d+,\), the env now gives"):
        load_training_state(run_dir / "checkpoints" / "sb3", "sac", other)
    other.close()


@pytest.mark.parametrize("algo, kwargs, needle", [
    ("a2c", {}, "unknown RL algorithm 'a2c'"),
    ("sac", {"obs_mode": "rgb"}, "obs_mode='rgb' is not supported"),
    ("sac", {"action_space": gym.spaces.Discrete(4)}, "continuous 1-D Box action"),
    ("sac", {"observation_space": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)}, "flat float Box"),
    ("ppo", {"demos": 5}, "replay buffer"),
    ("ppo", {"sim": "isaac"}, "unknown sim 'isaac'"),
])
def test_unsupported_combinations_name_the_supported_ones(algo, kwargs, needle):
    with pytest.raises(UnsupportedRLSetup, match="supported: policy=ppo or policy=sac") as err:
        check_supported(algo, **kwargs)
    assert needle in str(err.value)


def _needs_maniskill():
    from envs.backends import maniskill

    if maniskill.problem():
        pytest.skip(maniskill.problem())


def test_sac_on_maniskill_end_to_end_in_subprocesses(tmp_path):
    """sim=maniskill on a CPU machine: one spawned process per env copy, same outputs as MuJoCo."""
    _needs_maniskill()
    cfg = tiny_config("sac", "reach_target", "sim=maniskill", "eval.num_videos=0", vec_env="subproc",
                      total_timesteps=128, checkpoint_every=64)
    metrics = run_rl(cfg, tmp_path)
    assert metrics["sim"] == "maniskill" and metrics["env_steps"] >= 128 and metrics["num_episodes"] == 2
    assert (tmp_path / "checkpoints" / "sb3" / "model.zip").is_file()
    assert MLPActorPolicy.from_pretrained(tmp_path / "checkpoints").select_action(np.zeros((1, 28), np.float32)).shape == (1, 7)


def test_maniskill_batched_adapter_gives_what_make_env_gives():
    """ManiSkill's one-simulation SB3 adapter (vec_env=batched; on the GPU with CUDA, one CPU scene
    here) replays an oracle episode like the per-process env: success on the same step, the success
    bonus on it, Monitor's per-episode scalars only when the episode ends."""
    _needs_maniskill()
    from policies.rl.sb3 import make_vec_env
    from train.demos import rollout_oracle

    kw = {"obs_mode": "state", "control_mode": "ee_delta_pose", "reward_mode": "dense"}
    single = make_env("reach_target", "maniskill", kw)
    episode = rollout_oracle(single, seed=3)
    single.close()
    assert episode.success
    venv = make_vec_env("reach_target", "maniskill", 1, 3, env_kwargs=kw, vec_env="batched",
                        success_bonus_gamma=0.95)
    obs = venv.reset()
    np.testing.assert_allclose(obs[0], episode.obs[0], atol=1e-6)
    for t, action in enumerate(episode.actions):
        obs, reward, done, infos = venv.step(action[None])
        if t < len(episode.actions) - 1:
            assert not done[0] and "episode" not in infos[0] and infos[0]["is_success"] is False
            assert reward[0] == pytest.approx(episode.rewards[t], abs=1e-5)
    assert done[0] and infos[0]["is_success"] is True and infos[0]["TimeLimit.truncated"] is False
    assert reward[0] == pytest.approx(episode.rewards[-1] + 0.95 / 0.05, abs=1e-4)
    assert infos[0]["episode"] == {"r": pytest.approx(float(episode.rewards.sum()) + 19.0, abs=1e-3),
                                   "l": len(episode.actions)}
    venv.close()


def test_batched_vec_env_needs_maniskill_and_cuda_for_many_copies():
    from policies.rl.sb3 import make_vec_env

    with pytest.raises(ValueError, match="vec_env='batched' is ManiSkill's"):
        make_vec_env("reach_target", "mujoco", 2, 0, vec_env="batched")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedRLSetup, match="num_envs=4 needs CUDA"):
            make_vec_env("reach_target", "maniskill", 4, 0, vec_env="batched")


def test_run_rl_rejects_image_observations_before_training(tmp_path):
    cfg = tiny_config("sac", "reach_target", "obs_mode=rgb")
    with pytest.raises(UnsupportedRLSetup, match="obs_mode='rgb'"):
        run_rl(cfg, tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_replay_buffer_checkpoint_keeps_transitions_across_num_envs(tmp_path):
    from stable_baselines3.common.buffers import ReplayBuffer

    from policies.rl.sb3 import load_replay_buffer, save_replay_buffer

    obs_space, act_space = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-1, 1, (2,), np.float32)
    two = ReplayBuffer(100, obs_space, act_space, n_envs=2)
    for i in range(5):  # 10 transitions; observation = its index
        o = np.array([[2 * i] * 3, [2 * i + 1] * 3], np.float32)
        two.add(o, o + 0.5, np.zeros((2, 2), np.float32), np.ones(2, np.float32), np.zeros(2), [{}, {}])
    save_replay_buffer(two, tmp_path / "rb.npz")
    assert np.load(tmp_path / "rb.npz")["observations"].shape == (5, 2, 3)  # filled rows only

    same = ReplayBuffer(100, obs_space, act_space, n_envs=2)
    load_replay_buffer(same, tmp_path / "rb.npz")
    assert same.pos == 5 and np.array_equal(same.observations[:5], two.observations[:5])

    three = ReplayBuffer(99, obs_space, act_space, n_envs=3)
    load_replay_buffer(three, tmp_path / "rb.npz")
    assert three.pos == 3  # 10 transitions -> 3 rows of 3 (one left over)
    got = sorted(three.observations[:3, :, 0].ravel().tolist())
    assert got == list(range(9))
    np.testing.assert_array_equal(three.next_observations[:3], three.observations[:3] + 0.5)
