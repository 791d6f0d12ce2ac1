"""stable-baselines3 glue: roboforge tasks as SB3 vector envs, PPO/SAC built from a config,
checkpoints that resume, oracle demos in SAC's replay buffer, and export of the trained actor to
the common policy surface (:class:`policies.rl.mlp_policy.MLPActorPolicy`).

Everything here works on plain SB3 objects; :func:`train.rl.run_rl` strings it together.
"""
from __future__ import annotations

import functools
import json
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ALGORITHMS = ("ppo", "sac")
SIMS = ("mujoco", "maniskill")
VEC_ENVS = ("subproc", "dummy", "batched")
SUPPORTED_TEXT = ("supported: policy=ppo or policy=sac, each with obs_mode='state' (a flat float "
                  "Box observation) and a continuous Box action space (control_mode 'ee_delta_pose' "
                  "or 'joint_pos'), on sim=mujoco or sim=maniskill; oracle demos (policy.demos > 0) "
                  "with sac only")
ACTIVATIONS = ("relu", "tanh", "elu", "gelu")


class UnsupportedRLSetup(ValueError):
    """An algorithm / observation / action / simulator combination the RL glue cannot train.
    The message names the combination asked for and the supported ones."""


# -- what can be trained ------------------------------------------------------------------------
def check_supported(algo: str, observation_space: spaces.Space | None = None,
                    action_space: spaces.Space | None = None, *, obs_mode: str | None = None,
                    sim: str | None = None, demos: int = 0) -> None:
    """Raise :class:`UnsupportedRLSetup` unless ``algo`` can train on these spaces."""
    if algo not in ALGORITHMS:
        raise UnsupportedRLSetup(f"unknown RL algorithm {algo!r}; {SUPPORTED_TEXT}")
    if sim is not None and sim not in SIMS:
        raise UnsupportedRLSetup(f"unknown sim {sim!r} for RL; {SUPPORTED_TEXT}")
    if obs_mode is not None and obs_mode != "state":
        raise UnsupportedRLSetup(
            f"{algo} with obs_mode={obs_mode!r} is not supported (image / point-cloud observations "
            f"need an encoder the exported MLP policy does not have); {SUPPORTED_TEXT}")
    if observation_space is not None and not (
            isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1
            and np.issubdtype(observation_space.dtype, np.floating)):
        raise UnsupportedRLSetup(
            f"{algo} needs a flat float Box observation, got {observation_space}; {SUPPORTED_TEXT}")
    if action_space is not None and not (isinstance(action_space, spaces.Box)
                                         and len(action_space.shape) == 1):
        raise UnsupportedRLSetup(
            f"{algo} needs a continuous 1-D Box action space, got {action_space}; {SUPPORTED_TEXT}")
    if demos and algo != "sac":
        raise UnsupportedRLSetup(f"policy.demos={demos} seeds a replay buffer, which {algo} has not; "
                                 f"{SUPPORTED_TEXT}")


# -- environments --------------------------------------------------------------------------------
def success_bonus(gamma: float) -> float:
    """What the success step pays on top (see :class:`SuccessBonus`)."""
    return gamma / (1.0 - gamma)


class SuccessBonus(gym.Wrapper):
    """Training-time reward fix for termination on success.

    The dense staged reward pays up to ~0.9 per step just *near* the goal, and the env terminates
    on success: a discounted learner then prefers hovering next to the goal forever
    (~0.9 / (1 - gamma)) to succeeding (reward 1, then nothing). Adding ``gamma / (1 - gamma)`` on
    the success step makes success worth exactly what staying succeeded forever would be
    (1 / (1 - gamma)), so it dominates. Also copies ``info["success"]`` to ``info["is_success"]``,
    which SB3 logs as ``rollout/success_rate``.
    """

    def __init__(self, env: gym.Env, gamma: float):
        super().__init__(env)
        self.bonus = success_bonus(gamma)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = bool(info.get("success", False))
        if terminated and success:
            reward = float(reward) + self.bonus
        return obs, reward, terminated, truncated, {**info, "is_success": success}


def make_env(task: str, sim: str = "mujoco", env_kwargs: dict | None = None, *, seed: int | None = None,
             success_bonus_gamma: float | None = None, monitor: bool = False) -> gym.Env:
    """One roboforge env as SB3 trains it. Importable (not a closure) so subprocesses can build it."""
    import envs  # noqa: F401  (registers the tasks in a fresh subprocess)
    from envs import env_id

    # the full SB3 check_env runs on every task in tests/test_rl.py; no passive checker per step
    env = gym.make(env_id(task), sim=sim, disable_env_checker=True, **(env_kwargs or {}))
    if success_bonus_gamma is not None:
        env = SuccessBonus(env, success_bonus_gamma)
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def make_vec_env(task: str, sim: str, num_envs: int, seed: int, *, env_kwargs: dict | None = None,
                 vec_env: str = "subproc", success_bonus_gamma: float | None = None):
    """``num_envs`` copies of the task as one SB3 ``VecEnv``.

    ``vec_env='subproc'``: one process per copy (the default; with ``sim='maniskill'`` on a CUDA
    machine and ``num_envs > 1`` it becomes ``'batched'``). ``'dummy'``: all in this process.
    ``'batched'`` (``sim='maniskill'``): one ManiSkill simulation holding every copy, on the GPU
    (``physx_cuda``); on a CPU-only machine PhysX holds one scene, so only ``num_envs=1``.
    Episode ``i`` of copy ``k`` is drawn from the RNG stream seeded with ``seed + k`` (subproc,
    dummy) or from the batch's stream seeded with ``seed`` (batched).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if vec_env not in VEC_ENVS:
        raise ValueError(f"unknown vec_env {vec_env!r}; choose one of {', '.join(VEC_ENVS)}")
    if sim == "maniskill" and vec_env == "subproc" and num_envs > 1:
        from envs.backends.maniskill.vector import gpu_sim_available

        if gpu_sim_available():
            vec_env = "batched"
    if vec_env == "batched":
        if sim != "maniskill":
            raise ValueError(f"vec_env='batched' is ManiSkill's one-simulation batch; sim={sim!r} has none "
                             f"(choose subproc or dummy)")
        venv = _maniskill_batch(task, num_envs, env_kwargs or {}, success_bonus_gamma)
    else:
        fns = [functools.partial(make_env, task, sim, env_kwargs, seed=seed + k,
                                 success_bonus_gamma=success_bonus_gamma, monitor=True)
               for k in range(num_envs)]
        if vec_env == "subproc" and num_envs > 1:
            # spawn for ManiSkill: a Vulkan instance does not survive a fork
            venv = SubprocVecEnv(fns, start_method="spawn" if sim == "maniskill" else None)
        else:
            venv = DummyVecEnv(fns)
    venv.seed(seed)
    return venv


def _maniskill_batch(task: str, num_envs: int, env_kwargs: dict, success_bonus_gamma: float | None):
    from envs.backends.maniskill.vector import gpu_sim_available, make_sb3_vec_env

    backend = "physx_cuda" if gpu_sim_available() else "physx_cpu"
    if backend == "physx_cpu" and num_envs != 1:
        raise UnsupportedRLSetup(f"vec_env='batched' with num_envs={num_envs} needs CUDA (PhysX's CPU backend "
                                 f"holds one scene); use vec_env=subproc on this machine. {SUPPORTED_TEXT}")
    with warnings.catch_warnings():  # ManiSkill's adapter does not pass render_mode to SB3's VecEnv
        warnings.filterwarnings("ignore", message="The `render_mode` attribute is not defined")
        return BatchEpisodes(make_sb3_vec_env(task, num_envs, sim_backend=backend, **env_kwargs), success_bonus_gamma)


def _vec_env_wrapper_base():
    from stable_baselines3.common.vec_env import VecEnvWrapper

    return VecEnvWrapper


class BatchEpisodes(_vec_env_wrapper_base()):
    """What :func:`make_env`'s wrappers give each copy, for ManiSkill's batched SB3 adapter: its
    ``info["episode"]`` carries whole-batch arrays on every step, so it is replaced by Monitor's
    per-episode scalars on the step an episode ends; ``is_success`` and ``TimeLimit.truncated`` as
    plain bools; the :class:`SuccessBonus` added to a successful final step."""

    def __init__(self, venv, success_bonus_gamma: float | None = None):
        super().__init__(venv)
        self.bonus = 0.0 if success_bonus_gamma is None else success_bonus_gamma / (1.0 - success_bonus_gamma)
        self.returns = np.zeros(self.num_envs)
        self.lengths = np.zeros(self.num_envs, np.int64)

    def reset(self):
        self.returns[:], self.lengths[:] = 0.0, 0
        return self.venv.reset()

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        reward = np.asarray(reward, np.float32).copy()
        for i, info in enumerate(infos):
            info.pop("episode", None)
            truncated = bool(info.get("TimeLimit.truncated", False))
            info["TimeLimit.truncated"] = truncated
            if not done[i]:
                info["is_success"] = False
            else:  # the adapter reads success on done steps; success terminates the episode
                success = bool(info.get("is_success", False))
                info["is_success"] = success
                if success and not truncated:
                    reward[i] += self.bonus
            self.returns[i] += reward[i]
            self.lengths[i] += 1
            if done[i]:
                info["episode"] = {"r": float(self.returns[i]), "l": int(self.lengths[i])}
                self.returns[i], self.lengths[i] = 0.0, 0
        return obs, reward, done, infos


# -- algorithms ------------------------------------------------------------------------------------
def _activation(name: str):
    import torch.nn as nn

    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}[name]


def algorithm_class(algo: str):
    from stable_baselines3 import PPO, SAC

    check_supported(algo)
    return {"ppo": PPO, "sac": SAC}[algo]


def build_model(algo: str, venv, *, net_arch: list[int], activation: str, sb3_kwargs: dict,
                policy_kwargs: dict | None = None, seed: int = 0, tensorboard_log: str | None = None):
    """A fresh SB3 PPO/SAC with an MLP policy; ``sb3_kwargs`` go to its constructor verbatim."""
    check_supported(algo, venv.observation_space, venv.action_space)
    pk = {"net_arch": list(net_arch), "activation_fn": _activation(activation), **(policy_kwargs or {})}
    return algorithm_class(algo)("MlpPolicy", venv, policy_kwargs=pk, seed=seed, device="cpu",
                                 tensorboard_log=tensorboard_log, verbose=0, **sb3_kwargs)


# -- demonstrations -------------------------------------------------------------------------------
def add_demos(model, episodes, *, success_bonus: float | None = None, sparse: bool = False,
              normalizer=None) -> dict:
    """Put demo-store episodes (``train.datasets.demo_store.Episode``) into the off-policy
    ``model``'s replay buffer as the transitions the training env would have produced: the stored
    dense reward (or the sparse one: 1 on the success step), the training env's success bonus on
    that step, terminated on success and truncated otherwise. Raw observations: SB3 normalizes at
    sampling time; ``normalizer`` (a VecNormalize) has its statistics seeded from them."""
    if getattr(model.replay_buffer, "optimize_memory_usage", False):
        raise UnsupportedRLSetup("demos need the replay buffer's optimize_memory_usage=False")
    rows = {"obs": [], "next_obs": [], "action": [], "reward": [], "done": [], "timeout": []}
    for ep in episodes:
        if ep.final_obs is None:
            raise ValueError(f"demo episode (seed {ep.seed}) has no final observation; regenerate its store")
        n = len(ep.actions)
        reward = np.zeros(n, np.float32) if sparse else ep.rewards.astype(np.float32)
        end = np.arange(n) == n - 1
        if ep.success:  # the dense reward already pays 1 on the success step
            if sparse:
                reward[-1] = 1.0
            reward[-1] += success_bonus or 0.0
        rows["obs"].append(ep.obs)
        rows["next_obs"].append(np.concatenate([ep.obs[1:], ep.final_obs[None]]))
        rows["action"].append(np.clip(ep.actions, -1.0, 1.0))
        rows["reward"].append(reward)
        rows["done"].append(end)
        rows["timeout"].append(end & (not ep.success))
    data = {k: np.concatenate(v) for k, v in rows.items()}
    if normalizer is not None:
        normalizer.obs_rms.update(data["obs"])
    # the buffer takes one row of n_envs transitions per add(); rows need not be one time step
    n = model.replay_buffer.n_envs
    usable = len(data["obs"]) - len(data["obs"]) % n
    for i in range(0, usable, n):
        sl = slice(i, i + n)
        model.replay_buffer.add(data["obs"][sl], data["next_obs"][sl], data["action"][sl], data["reward"][sl],
                                data["done"][sl], [{"TimeLimit.truncated": bool(t)} for t in data["timeout"][sl]])
    return {"demo_episodes": len(episodes), "demo_steps": usable,
            "demo_successes": sum(bool(ep.success) for ep in episodes)}


# -- checkpoints -----------------------------------------------------------------------------------
_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def save_replay_buffer(buffer, path: Path) -> None:
    """The filled part of an SB3 ``ReplayBuffer`` as ``.npz`` (SB3's own pickle writes the whole
    preallocated buffer: 240 MB for 1M slots of a 25-D observation, however few are filled)."""
    n = buffer.buffer_size if buffer.full else buffer.pos
    np.savez(path, pos=buffer.pos, full=buffer.full, **{f: getattr(buffer, f)[:n] for f in _BUFFER_FIELDS})


def load_replay_buffer(buffer, path: Path) -> None:
    """Inverse of :func:`save_replay_buffer`. A run resumed with another ``num_envs`` gets the
    same transitions regrouped into rows of its own width (rows need not be one time step)."""
    with np.load(path) as z:
        data = {f: z[f] for f in _BUFFER_FIELDS}
        pos, full = int(z["pos"]), bool(z["full"])
    rows, width = data["observations"].shape[:2]
    if width != buffer.n_envs:
        flat = {f: v.reshape(rows * width, *v.shape[2:]) for f, v in data.items()}
        rows = len(flat["observations"]) // buffer.n_envs
        data = {f: v[:rows * buffer.n_envs].reshape(rows, buffer.n_envs, *v.shape[1:]) for f, v in flat.items()}
        pos, full = rows, False
    if rows > buffer.buffer_size:  # keep the newest rows that fit
        data = {f: v[-buffer.buffer_size:] for f, v in data.items()}
        rows, pos, full = buffer.buffer_size, 0, True
    for f in _BUFFER_FIELDS:
        getattr(buffer, f)[:rows] = data[f]
    buffer.pos, buffer.full = pos % buffer.buffer_size, full or pos >= buffer.buffer_size




def save_training_state(directory: str | Path, model, venv_norm, *, replay_buffer: bool,
                        extra: dict | None = None) -> None:
    """Everything needed to resume: the SB3 model (weights, optimizers, step count), the
    VecNormalize statistics, SAC's replay buffer (optional: it can be large) and a progress note.
    Written to a sibling folder and swapped in, so a run killed mid-save keeps the last good one."""
    directory = Path(directory)
    tmp, old = directory.with_name(directory.name + ".tmp"), directory.with_name(directory.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    venv_norm.save(str(tmp / "vecnormalize.pkl"))
    if replay_buffer and hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        save_replay_buffer(model.replay_buffer, tmp / "replay_buffer.npz")
    (tmp / "progress.json").write_text(json.dumps({"num_timesteps": int(model.num_timesteps), **(extra or {})}))
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def find_training_state(directory: str | Path) -> Path | None:
    """The newest complete training state in ``directory`` (or its ``.old`` twin left by a run
    killed mid-swap), or None."""
    directory = Path(directory)
    for d in (directory, directory.with_name(directory.name + ".old")):
        if (d / "model.zip").is_file() and (d / "vecnormalize.pkl").is_file() and (d / "progress.json").is_file():
            return d
    return None


def load_training_state(directory: Path, algo: str, venv, *, tensorboard_log: str | None = None):
    """Inverse of :func:`save_training_state`: (model, normalized venv, progress dict)."""
    from stable_baselines3.common.vec_env import VecNormalize

    with open(directory / "vecnormalize.pkl", "rb") as f:
        saved = pickle.load(f).observation_space
    if saved.shape != venv.observation_space.shape:
        raise ValueError(f"cannot resume from {directory}: it was trained on observations of shape {saved.shape}, "
                         f"the env now gives {venv.observation_space.shape} (the task or the observation layout "
                         f"changed since); start a fresh run in a new directory")
    venv_norm = VecNormalize.load(str(directory / "vecnormalize.pkl"), venv)
    venv_norm.training = True
    model = algorithm_class(algo).load(directory / "model.zip", env=venv_norm, device="cpu",
                                       tensorboard_log=tensorboard_log)
    if (directory / "replay_buffer.npz").is_file() and getattr(model, "replay_buffer", None) is not None:
        load_replay_buffer(model.replay_buffer, directory / "replay_buffer.npz")
    progress = json.loads((directory / "progress.json").read_text())
    return model, venv_norm, progress


# -- export --------------------------------------------------------------------------------------
def _linear_stack(seq) -> tuple[list[Any], str | None]:
    import torch.nn as nn

    linears = [m for m in seq if isinstance(m, nn.Linear)]
    acts = {type(m).__name__.lower() for m in seq if not isinstance(m, nn.Linear)}
    if len(acts) > 1:
        raise ValueError(f"mixed activations in the actor: {acts}")
    return linears, (acts.pop() if acts else None)


def export_policy(model, venv_norm, *, task: str = "", env_kwargs: dict | None = None):
    """The trained actor as an :class:`MLPActorPolicy`: VecNormalize's observation statistics and
    the deterministic action head (PPO: Gaussian mean, clipped; SAC: tanh of the mean) in one
    torch module, so what is exported is one artifact."""
    import torch

    from policies.rl.mlp_policy import MLPActorConfig, MLPActorPolicy

    algo = type(model).__name__.lower()
    check_supported(algo)
    pol = model.policy
    if algo == "ppo":
        hidden, act = _linear_stack(pol.mlp_extractor.policy_net)
        head, output = pol.action_net, "clip"
    else:
        hidden, act = _linear_stack(pol.actor.latent_pi)
        head, output = pol.actor.mu, "tanh"
    act = {"relu": "relu", "tanh": "tanh", "elu": "elu", "gelu": "gelu", None: "relu"}[act]
    space = model.action_space
    rms = venv_norm.obs_rms if venv_norm is not None and venv_norm.norm_obs else None
    obs_dim = int(np.prod(model.observation_space.shape))
    config = MLPActorConfig(
        obs_dim=obs_dim, action_dim=int(space.shape[0]), hidden_sizes=[int(l.out_features) for l in hidden],
        activation=act, output=output, action_low=space.low.astype(float).tolist(),
        action_high=space.high.astype(float).tolist(),
        obs_clip=float(venv_norm.clip_obs) if rms is not None else float("inf"),
        obs_eps=float(venv_norm.epsilon) if rms is not None else 0.0,
        algorithm=algo, task=task, env_kwargs=dict(env_kwargs or {}))
    policy = MLPActorPolicy(config)
    with torch.no_grad():
        for dst, src in zip(policy.actor.hidden, hidden):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        policy.actor.head.weight.copy_(head.weight)
        policy.actor.head.bias.copy_(head.bias)
        if rms is not None:
            policy.actor.normalizer.mean.copy_(torch.as_tensor(rms.mean, dtype=torch.float32))
            policy.actor.normalizer.var.copy_(torch.as_tensor(rms.var, dtype=torch.float32))
    return policy.eval()
