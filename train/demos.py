"""Oracle demonstrations, cached in the HDF5 demo store.

Serial by default: an episode takes ~0.1 s on MuJoCo, so a few hundred demos take well under a
minute. With a :class:`fanout.Pool` (``scale.workers`` / ``scale.address``) seed ranges fan out
over Ray workers, which return episodes; this process stays the store's one writer and takes them
in seed order, so the store holds the same episodes as the serial path. Image modes cost more:
each step renders both cameras (``bench/dataset.py`` measures it).

The oracle always acts on the privileged scene state (``env.unwrapped.scene_state()``); what an
episode records is what a policy may read (the env's observation, its images and proprioception)
plus the task-independent ``slots`` observation, stored apart so a visual dataset can leave it out.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import envs
from envs.core import observation as ob
from envs.core.predicates import goal_delta
from planners import make_oracle
from planners.oracle import NOISY_PLAN
from train.datasets.demo_store import FORMAT_VERSION, CorruptDemoStoreError, DemoStore, Episode

log = logging.getLogger(__name__)

DEMO_OBS_MODES = ("state", "slots", "rgb", "rgbd", "pointcloud")
# a store's meta ``actions``: its episodes' actions are exploration, not demonstrations (nothing to imitate)
EXPLORATION = "exploration"
DEFAULT_IMAGE_SIZE = 64  # pixels: ImageEncoderConfig's default (bench/encoders.py sizes it for a 2-core CPU)


def default_store_root() -> Path:
    """Where demo stores are cached when a run names no ``data.store_root`` (as configs/config.yaml)."""
    return Path(os.environ.get("ROBOFORGE_CACHE", Path.home() / ".cache" / "roboforge")) / "demos"


class _SlotsRecorder:
    """The ``slots`` observation of an env in any obs_mode, built through the one builder
    (``envs.core.observation.slots_observation``) from the surface the oracle reads (scene state,
    scene objects, goals) and the robot part every flat observation starts with. Set up per
    episode: colours and sizes change with the seed. ``None`` (and one warning) when the scene has
    more objects than ``MAX_OBJECTS`` slots."""

    def __init__(self, env: gym.Env):
        u = env.unwrapped
        self.env, objects = u, u.scene.objects
        try:
            self.attributes = ob.slot_attributes(objects, u.task_cls.name)
        except ob.SlotCapacityError as err:
            log.warning("demos store no slots observation: %s", err)
            self.attributes = None
        index = {o.name: k for k, o in enumerate(objects)}
        self.goal_objects = np.array([index[g.obj.name] for g in u.goals], dtype=np.int64)
        self.names = [o.name for o in objects]

    def __call__(self, flat: np.ndarray) -> np.ndarray | None:
        if self.attributes is None:
            return None
        s, agent = self.env.scene_state(), flat[:ob.AGENT_DIM]  # the robot part of ``state``
        objs = [s.objects[n] for n in self.names]
        return ob.slots_observation(
            agent[:7], agent[7:14], agent[14:15], s.tcp_pos, s.tcp_quat,
            pos=np.array([o.pos for o in objs]).reshape(-1, 3), quat=np.array([o.quat for o in objs]).reshape(-1, 4),
            attributes=self.attributes, goal_objects=self.goal_objects,
            goal_deltas=np.array([goal_delta(g, s) for g in self.env.goals]).reshape(-1, 3))


def rollout_oracle(env: gym.Env, seed: int, action_noise: float = 0.0, record_clean: bool = False) -> Episode:
    """One oracle episode from ``seed``: the env's flat observation, actions and rewards, plus the
    ``slots`` observation and proprioception every step, and in image modes each camera's frames
    (``obs_mode=pointcloud``: the point cloud).
    ``action_noise`` > 0: a noisy oracle (Gaussian std in action units, seeded by ``seed``); the
    episode records the noisy actions it executed, or with ``record_clean`` the expert's own
    action at each state it reached (DART, Laskey et al. 2017: demos that visit states off the
    expert's path, labelled with the way back)."""
    oracle = make_oracle(env, action_noise=action_noise, noise_seed=seed)
    return _rollout(env, seed, oracle.act, on_reset=oracle.reset,
                    label=(lambda: oracle.clean_action) if record_clean else None)


def rollout_random(env: gym.Env, seed: int) -> Episode:
    """One episode of uniformly random actions from ``seed`` (the action noise seeded by it),
    recorded as :func:`rollout_oracle` records: exploratory data for offline RL (HILP)."""
    rng = np.random.default_rng(seed)
    space = env.action_space
    return _rollout(env, seed, lambda obs: rng.uniform(space.low, space.high).astype(np.float32))


def _rollout(env: gym.Env, seed: int, act, on_reset=None, label=None) -> Episode:
    """``label``: the action to record for the step just acted (default: the one executed)."""
    u = env.unwrapped
    obs, info = env.reset(seed=seed)
    if on_reset is not None:
        on_reset()
    slots_of = _SlotsRecorder(env)
    image_keys = [k for k in obs if k != "state"] if isinstance(obs, dict) else []   # cameras or the cloud
    flat, slots, actions, rewards = [], [], [], []
    images = {k: [] for k in image_keys}
    while True:
        action = act(obs)
        vector = obs["state"] if isinstance(obs, dict) else obs
        flat.append(vector)
        slots.append(obs if u.obs_mode == "slots" else slots_of(vector))
        for k in image_keys:
            images[k].append(obs[k])
        actions.append(action if label is None else label())
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    last = np.asarray(obs["state"] if isinstance(obs, dict) else obs, np.float32)
    flat = np.array(flat, np.float32)
    has_slots = slots[0] is not None
    return Episode(flat, np.array(actions, np.float32), np.array(rewards, np.float32), seed, bool(info["success"]),
                   info["instruction"], last, task=info["task"], sim=_sim_of(env), obs_mode=u.obs_mode,
                   slots=np.array(slots, np.float32) if has_slots else None,
                   final_slots=(last if u.obs_mode == "slots" else slots_of(last)) if has_slots else None,
                   proprio=flat[:, :ob.AGENT_DIM].copy(), images={k: np.array(v) for k, v in images.items()})


def _sim_of(env: gym.Env) -> str:
    """The backend gym.make was given (``envs.registry.make_env`` defaults to MuJoCo)."""
    return (env.spec.kwargs if env.spec else {}).get("sim", "mujoco")


def _check_reusable(store: DemoStore, env: gym.Env, obs_mode: str, image_size: int | None) -> None:
    """Raise :class:`CorruptDemoStoreError` saying why a cached store cannot serve this request."""
    path = store.path
    if store.format_version != FORMAT_VERSION:
        raise CorruptDemoStoreError(f"{path}: demo store format {store.format_version}; this roboforge writes "
                                    f"format {FORMAT_VERSION} (slots, proprioception, images, checksums)")
    if any(ep.final_obs is None for ep in store.episodes):
        raise CorruptDemoStoreError(f"{path}: written by an older roboforge without final observations")
    n_obs = (env.observation_space["state"] if isinstance(env.observation_space, gym.spaces.Dict)
             else env.observation_space).shape[0]
    if store.obs_dim != n_obs or store.action_dim != env.action_space.shape[0]:
        raise CorruptDemoStoreError(f"{path}: obs/action dims {store.obs_dim}/{store.action_dim} do not match "
                                    f"the env's {n_obs}/{env.action_space.shape[0]}")
    if store.meta.get("obs_mode") != obs_mode:
        raise CorruptDemoStoreError(f"{path}: holds obs_mode={store.meta.get('obs_mode')!r} demos; "
                                    f"asked for obs_mode={obs_mode!r}")
    want = {k: sp.shape for k, sp in env.observation_space.items() if k != "state"} if image_size else {}
    have = {k: tuple(v.shape[1:]) for k, v in store.episodes[0].images.items()}
    if have != want:
        raise CorruptDemoStoreError(f"{path}: holds images {have or 'none'}; asked for {want} "
                                    f"(obs_mode={obs_mode!r}, image_size={image_size})")
    slots = store.episodes[0].slots
    if slots is not None and slots.shape[1] != ob.SLOTS_DIM:
        raise CorruptDemoStoreError(f"{path}: slots of {slots.shape[1]} features; the slots layout has "
                                    f"SLOTS_DIM={ob.SLOTS_DIM}")


def collect_demos(task: str, num_demos: int, seed_start: int = 0, store_root=None, sim: str = "mujoco",
                  obs_mode: str = "state", control_mode: str = "ee_delta_pose", image_size: int = DEFAULT_IMAGE_SIZE,
                  max_attempts_factor: float = 2.0, progress: bool = True, pool=None,
                  demo_noise: float = 0.0) -> DemoStore:
    """``num_demos`` successful oracle episodes from seeds ``seed_start, seed_start + 1, ...``.

    ``obs_mode`` is what the episodes record besides the slots observation: ``state``/``slots``
    vectors, ``rgb``/``rgbd`` front and wrist images of ``image_size`` pixels, or the
    ``pointcloud`` unprojected from those cameras rendered at ``image_size`` (plus the privileged
    state vector and proprioception, stored apart). Reuses a valid cached store; one
    that cannot serve the request (corrupt, an older format, without the images asked for) is
    reported, deleted and regenerated. ``pool``: a :class:`fanout.Pool` to roll seed ranges out on.
    ``demo_noise`` > 0: DART demos, the oracle's actions executed with Gaussian noise of that std
    (action units) and its clean actions recorded (:func:`rollout_oracle`); a store of its own.
    """
    if not demo_noise >= 0:
        raise ValueError(f"demo_noise={demo_noise!r} is invalid; allowed: a number >= 0 (Gaussian std, action units)")
    if obs_mode not in DEMO_OBS_MODES:
        raise ValueError(f"obs_mode={obs_mode!r} is invalid for demo collection; allowed: {', '.join(DEMO_OBS_MODES)}")
    images = obs_mode in ob.IMAGE_OBS_MODES   # rendered at image_size: cameras, or the cloud from them
    make_kw = {"image_size": int(image_size)} if images else {}
    env = gym.make(envs.env_id(task), sim=sim, obs_mode=obs_mode, control_mode=control_mode, **make_kw)
    # The key covers the task's code and the backend's observation/action layout, so a change to
    # either (not just to the task file) invalidates the cache.
    key = [list(env.unwrapped.state_layout()), list(env.action_space.shape), ob.SLOTS_DIM]
    render = getattr(env.unwrapped, "observation_render", None)   # how the cameras draw (MuJoCo)
    if images and render is not None:
        key.append(render)
    if demo_noise:   # noisy demos are other demos (noiseless stores keep their key)
        key.append({"dart_noise": float(demo_noise), "plan": NOISY_PLAN})
    layout = json.dumps(key, sort_keys=True)
    code_hash = envs.task_source_hash(task) + hashlib.sha256(layout.encode()).hexdigest()[:8]
    seeds_key = range(seed_start, seed_start + num_demos)
    path = DemoStore.cache_path(store_root or default_store_root(), task, sim, obs_mode, control_mode, seeds_key,
                                code_hash, image_size=image_size if images else None)
    if path.exists():
        try:
            store = DemoStore.open(path)
            _check_reusable(store, env, obs_mode, image_size if images else None)
            log.info("reusing %d cached demos from %s", len(store), path)
            env.close()
            return store
        except CorruptDemoStoreError as err:
            log.warning("demo cache is unusable and will be regenerated: %s", err)
            path.unlink()
    attempts = int(np.ceil(num_demos * max_attempts_factor))
    bar = tqdm(total=num_demos, desc=f"demos {task}", unit="demo", disable=not progress)
    seed, seeds = seed_start, []
    tried = (_ for _ in ())   # (seed, episode or None) as they come, in seed order
    meta = dict(task=task, sim=sim, obs_mode=obs_mode, control_mode=control_mode,
                image_size=int(image_size) if images else 0, code_hash=code_hash)
    try:
        # streamed: image episodes are written as they come, never all held in memory
        with DemoStore.writer(path, **meta) as sink:
            if pool is None:
                tried = ((s, rollout_oracle(env, s, demo_noise, record_clean=True))
                         for s in range(seed_start, seed_start + attempts))
            else:
                spec = dict(task=task, sim=sim, obs_mode=obs_mode, control_mode=control_mode, **make_kw)
                if demo_noise:
                    spec["demo_noise"] = float(demo_noise)
                tried = _fanned_rollouts(pool, spec, range(seed_start, seed_start + attempts), num_demos)
            for seed, ep in tried:
                if ep is not None and ep.success:
                    sink.add(ep)
                    seeds.append(seed)
                    bar.update(1)
                bar.set_postfix(tried=seed - seed_start + 1)
                if len(seeds) == num_demos:
                    break
            if len(seeds) < num_demos:
                raise RuntimeError(f"the oracle solved only {len(seeds)} of {attempts} episodes of {task!r} "
                                   f"(seeds {seed_start}..{seed}); needed {num_demos}. Check the task's oracle.")
    finally:
        tried.close()   # items still running on workers are cancelled now, not when collected
        bar.close()
        env.close()
    return DemoStore.open(path)


def collect_exploration(task: str, num_episodes: int, seed_start: int = 0, store_root=None, sim: str = "mujoco",
                        obs_mode: str = "slots", control_mode: str = "ee_delta_pose", action_noise: float = 0.3,
                        random_fraction: float = 0.25, progress: bool = True,
                        image_size: int = DEFAULT_IMAGE_SIZE) -> DemoStore:
    """Exploratory episodes, stored and cached like demos (a ``DemoStore`` under
    ``<store_root>/explore``, meta ``actions="exploration"``): the first
    ``round(num_episodes * random_fraction)`` seeds are uniformly random actions, the rest a noisy
    oracle (``action_noise``, Gaussian std in action units). Every episode is kept, failed ones
    included (``Episode.success`` says which): they cover states the clean demos never visit. For
    offline RL (HILP), and in image modes (cameras at ``image_size``) for a camera policy's
    perception losses, which need where things are and not what to do (``data.explore_episodes``)."""
    if obs_mode not in DEMO_OBS_MODES:
        raise ValueError(f"obs_mode={obs_mode!r} is invalid for exploration data; allowed: {', '.join(DEMO_OBS_MODES)}")
    if not (isinstance(num_episodes, int) and num_episodes >= 1):
        raise ValueError(f"num_episodes={num_episodes!r} is invalid; allowed: an integer >= 1")
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction={random_fraction!r} is invalid; allowed: a number in [0, 1]")
    images = obs_mode in ob.IMAGE_OBS_MODES
    make_kw = {"image_size": int(image_size)} if images else {}
    env = gym.make(envs.env_id(task), sim=sim, obs_mode=obs_mode, control_mode=control_mode, **make_kw)
    n_random = int(round(num_episodes * random_fraction))
    key = [list(env.unwrapped.state_layout()), list(env.action_space.shape), ob.SLOTS_DIM,
           "explore", float(action_noise), n_random, NOISY_PLAN]
    render = getattr(env.unwrapped, "observation_render", None)
    if images and render is not None:
        key.append(render)
    layout = json.dumps(key, sort_keys=True)
    code_hash = envs.task_source_hash(task) + hashlib.sha256(layout.encode()).hexdigest()[:8]
    seeds = range(seed_start, seed_start + num_episodes)
    root = Path(store_root or default_store_root()) / "explore"
    path = DemoStore.cache_path(root, task, sim, obs_mode, control_mode, seeds, code_hash,
                                image_size=image_size if images else None)
    if path.exists():
        try:
            store = DemoStore.open(path)
            _check_reusable(store, env, obs_mode, image_size if images else None)
            env.close()
            return store
        except CorruptDemoStoreError as err:
            log.warning("exploration cache is unusable and will be regenerated: %s", err)
            path.unlink()
    meta = dict(task=task, sim=sim, obs_mode=obs_mode, control_mode=control_mode,
                image_size=int(image_size) if images else 0, code_hash=code_hash,
                action_noise=float(action_noise), random_episodes=n_random, actions=EXPLORATION)
    try:
        with DemoStore.writer(path, **meta) as sink:
            for i, seed in enumerate(tqdm(seeds, desc=f"explore {task}", unit="ep", disable=not progress)):
                sink.add(rollout_random(env, seed) if i < n_random else rollout_oracle(env, seed, action_noise))
    finally:
        env.close()
    return DemoStore.open(path)


def _fanned_rollouts(pool, spec: dict, seeds: range, num_demos: int):
    """(seed, episode or None for a failure) in seed order, seed ranges rolled out on ``pool``'s
    workers; ranges are small enough that every worker gets several and the caller, stopping at
    ``num_demos`` successes, leaves little unfinished work. At most 4 seeds a range: an episode is
    ~0.1 s against Ray's ~2 ms round trip, and a longer range is what the in-order caller waits on
    at the end (and what it throws away past ``num_demos``)."""
    size = max(1, min(4, -(-num_demos // (4 * pool.workers))))
    ranges = (seeds[i:i + size] for i in range(0, len(seeds), size))
    for chunk in pool.map(_rollout_range, ranges, shared=spec,
                          label=lambda r: f"demos {spec['task']} seeds {r.start}..{r.stop - 1}"):
        yield from chunk


_WORKER_ENVS: dict[str, gym.Env] = {}   # per Ray worker process: one env per spec, reused across ranges


def _rollout_range(spec: dict, seeds: range) -> list:
    """On a worker: the oracle episodes of ``seeds`` as (seed, episode), failures as (seed, None)
    (nothing of them is stored, so nothing of them is shipped back)."""
    key = json.dumps(spec, sort_keys=True)
    if key not in _WORKER_ENVS:
        kw = {k: v for k, v in spec.items() if k not in ("task", "demo_noise")}
        _WORKER_ENVS[key] = gym.make(envs.env_id(spec["task"]), **kw)
    env = _WORKER_ENVS[key]
    out = []
    for seed in seeds:
        ep = rollout_oracle(env, seed, spec.get("demo_noise", 0.0), record_clean=True)
        out.append((seed, ep if ep.success else None))
    return out


def collect_demos_for_tasks(tasks: Sequence[str], num_demos: int, seed_start: int = 0, store_root=None,
                            **kwargs) -> dict[str, DemoStore]:
    """One store per task (``{task: store}`` in the given order) through :func:`collect_demos`,
    each reusing its cache; ``kwargs`` (sim, obs_mode, control_mode, image_size, ...) apply to
    all. Every name is checked before any demo is collected: an unknown one raises
    :class:`envs.registry.UnknownTaskError` naming it and listing the known tasks."""
    tasks = list(dict.fromkeys(tasks))  # a task named twice is collected once
    if not tasks:
        raise ValueError("collect_demos_for_tasks needs at least one task name")
    for task in tasks:
        envs.get_task(task)
    return {task: collect_demos(task, num_demos, seed_start, store_root, **kwargs) for task in tasks}
