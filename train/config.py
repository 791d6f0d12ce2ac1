"""The run config of ``train.py``: every key, its type and its default, written once, here.

Hydra composes ``configs/config.yaml`` (the defaults list and Hydra's own settings; no values)
with the dataclasses below, which importing this module registers in Hydra's ConfigStore:

=====================  =====================================================================
``run_config``         :class:`RunConfig`: env, library, obs_mode, control_mode, seed, resume,
                       device, data, train, eval, scale, progress (the schema config.yaml starts from)
``sim/<name>``         :class:`SimConfig`, one option per backend
``policy/diffusion``   :class:`~policies.diffusion.DiffusionParams` + ``name``
``policy/ppo|sac``     :class:`~policies.rl.config.PPOConfig` / ``SACConfig`` + ``name``
``curriculum/<name>``  :class:`~train.curriculum.config.CurriculumConfig` (none|uniform|lp|omni)
``policy/vla``         :class:`~policies.vla.configuration.VLAParams` + ``name``
``policy/hilp``        :class:`~policies.hilp.HILPParams` + ``name`` (train/hilp)
``policy/gravmad``     :class:`~policies.gravmad.GravMADParams` + ``name`` (train/gravmad.py)
=====================  =====================================================================

Hydra checks each override's type as it composes (``train.steps=abc`` fails there); the
dataclasses check ranges in ``__post_init__`` when :func:`to_run_config` builds them, and the
error names the key as it is typed on the command line (``train.steps=-3 is invalid; allowed:
an integer >= 1``). ``python train.py --cfg job [policy=sac]`` prints the composed config.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from envs.core import CONTROL_MODES, OBS_MODES, SIMS
from envs.core.surface import RENDER_SIZE
from policies.common.config import ConfigError, UnknownConfigKey, is_int, is_number, require
from policies.diffusion.configuration import DiffusionParams
from policies.gravmad.configuration import GravMADParams
from policies.hilp.configuration import HILPParams
from policies.rl.config import PPOConfig, SACConfig
from train.curriculum.config import CURRICULA, CurriculumConfig
from policies.vla.configuration import VLAParams
from planners.subgoals.providers import PROVIDERS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEVICES = ("cpu", "cuda")

# hydra.run.dir in configs/config.yaml: a resumed run writes into its own directory
OmegaConf.register_new_resolver("run_dir", lambda resume, default: resume or default, replace=True)


@dataclass
class SimConfig:
    name: str = "mujoco"   # the backend the policy trains and is evaluated on

    def __post_init__(self):
        require(self.name in SIMS, self, "name", ", ".join(SIMS))


@dataclass
class DataConfig:
    """Oracle demonstrations, cached in the HDF5 demo store."""

    num_demos: int = 100
    sim: Optional[str] = None      # backend the demos come from (mujoco | maniskill); None: the training sim
    seed_start: int = 0            # demo seeds: seed_start .. seed_start + num_demos (+ retries)
    store_root: str = "${oc.env:ROBOFORGE_CACHE,${oc.env:HOME}/.cache/roboforge}/demos"
    # DART: the oracle's actions executed with Gaussian noise of this std (action units), its clean
    # actions recorded, so the demos visit states off the expert's path with the way back (0 = off)
    demo_noise: float = 0.0
    # cameras: exploratory episodes per task (a noisy oracle re-planning from where its noise left
    # it, std explore_noise, and explore_random of them random actions), rendered like the demos.
    # Their windows teach the perception losses only (where things are, seen with the arm anywhere),
    # never the action loss; they get explore_fraction of each task's samples (0 = none)
    explore_episodes: int = 0
    explore_noise: float = 0.5
    explore_random: float = 0.25
    explore_fraction: float = 0.25

    @property
    def exploration_seed_start(self) -> int:
        """First seed of exploratory episodes (HILP's, ``explore_episodes``): past every seed the
        demos may try (2x num_demos)."""
        return self.seed_start + 2 * self.num_demos

    def __post_init__(self):
        require(is_int(self.num_demos, 1), self, "num_demos", "an integer >= 1")
        require(isinstance(self.demo_noise, (int, float)) and 0 <= self.demo_noise <= 1, self, "demo_noise",
                "a number in [0, 1] (Gaussian std in action units; 0 = the oracle's own actions)")
        require(is_int(self.explore_episodes, 0), self, "explore_episodes", "an integer >= 0 (0 = none)")
        require(is_number(self.explore_noise) and 0 <= self.explore_noise <= 2, self, "explore_noise",
                "a number in [0, 2] (Gaussian std in action units)")
        require(is_number(self.explore_random) and 0 <= self.explore_random <= 1, self, "explore_random",
                "a number in [0, 1] (the share of exploratory episodes that are random actions)")
        require(is_number(self.explore_fraction) and 0 <= self.explore_fraction < 1, self, "explore_fraction",
                "a number in [0, 1) (the share of each task's samples drawn from its exploratory episodes)")
        require(self.sim is None or self.sim in SIMS, self, "sim", "null (the training sim), " + ", ".join(SIMS))
        require(is_int(self.seed_start, 0), self, "seed_start", "an integer >= 0")


@dataclass
class TrainConfig:
    """The imitation trainer (train/imitation.py); RL runs read their steps from ``policy``."""

    steps: int = 6000
    batch_size: int = 128
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-6
    warmup_steps: int = 300
    checkpoint_every: int = 1000
    log_every: int = 50
    num_threads: int = 2           # torch threads
    num_workers: int = 0           # DataLoader worker processes (image runs decode frames there); 0 = in the trainer

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "num_threads"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(is_int(self.num_workers, 0), self, "num_workers", "an integer >= 0")
        require(is_int(self.warmup_steps, 0), self, "warmup_steps", "an integer >= 0")
        require(is_number(self.lr) and self.lr > 0, self, "lr", "a number > 0")
        require(is_number(self.weight_decay) and self.weight_decay >= 0, self, "weight_decay", "a number >= 0")


@dataclass
class EvalConfig:
    """Evaluation on seeds the demos never used."""

    episodes: int = 50
    seed_start: int = 100_000      # disjoint from the demo seeds
    num_videos: int = 4            # half the first failures, half the first successes
    video_size: list[int] = field(default_factory=lambda: list(RENDER_SIZE))   # [width, height] of the frames, pixels
    max_episode_steps: Optional[int] = None   # cut episodes short (quick checks); null = each task's own limit

    def __post_init__(self):
        require(is_int(self.episodes, 1), self, "episodes", "an integer >= 1")
        require(is_int(self.seed_start, 0), self, "seed_start", "an integer >= 0")
        require(is_int(self.num_videos, 0) and self.num_videos <= self.episodes, self, "num_videos",
                f"an integer in [0, eval.episodes={self.episodes}]")
        require(self.max_episode_steps is None or is_int(self.max_episode_steps, 1), self, "max_episode_steps",
                "null (the task's own limit) or an integer >= 1")
        require(len(self.video_size) == 2 and all(is_int(v, 64) and v <= 4096 for v in self.video_size), self,
                "video_size", "[width, height] in pixels, each an integer in 64..4096 (e.g. [480, 360])")


@dataclass
class ScaleConfig:
    """Fan-out over Ray (docs/scale.md): demos per seed range and evaluation per seed chunk run on
    workers. Neither key set: one process, Ray never imported."""

    workers: int = 0                 # local Ray workers (one CPU each); 0 = no Ray, or with address: the whole cluster
    address: Optional[str] = None    # a running Ray cluster: auto | HOST:PORT | ray://HOST:PORT

    def __post_init__(self):
        require(is_int(self.workers, 0), self, "workers", "an integer >= 0 (0: one process, no Ray)")
        require(self.address is None or (isinstance(self.address, str) and bool(self.address)), self, "address",
                "null, auto, HOST:PORT or ray://HOST:PORT")

    @property
    def enabled(self) -> bool:
        return self.workers > 0 or self.address is not None


# -- the policy group: each option is a policy's own config dataclass plus its ``name`` ----------
@dataclass
class _Named:
    name: str = MISSING   # first, so the group reads `policy: {name: ..., ...}`


@dataclass
class DiffusionChoice(DiffusionParams, _Named):
    name: str = "diffusion"


@dataclass
class PPOChoice(PPOConfig, _Named):
    name: str = "ppo"


@dataclass
class SACChoice(SACConfig, _Named):
    name: str = "sac"


@dataclass
class VLAChoice(VLAParams, _Named):
    name: str = "vla"


@dataclass
class HILPChoice(HILPParams, _Named):
    name: str = "hilp"


@dataclass
class GravMADChoice(GravMADParams, _Named):
    name: str = "gravmad"


POLICIES: dict[str, type] = {"diffusion": DiffusionChoice, "ppo": PPOChoice, "sac": SACChoice, "vla": VLAChoice,
                             "hilp": HILPChoice, "gravmad": GravMADChoice}
IMITATION_POLICIES = ("diffusion",)
IMITATION_OBS_MODES = ("state", "slots", "rgb", "rgbd", "pointcloud")
TASK_SETS = ("builtin", "library")   # env= words that name a set of tasks
RL_POLICIES = ("ppo", "sac")


@dataclass
class RunConfig:
    """One ``train.py`` run. ``sim`` and ``policy`` come first, as Hydra's defaults list puts
    its groups first."""

    sim: SimConfig = field(default_factory=SimConfig)
    policy: Any = MISSING          # a POLICIES option, chosen with policy=<name>
    # a registered task (envs.list_tasks(), generated ones included), a list of them ([a,b]: one
    # multitask policy), ``builtin`` (every built-in task; with library=, its tasks too) or
    # ``library`` (every task of library=)
    env: Any = "stack_blocks"
    library: Optional[str] = None  # a generated-task library dir (python -m generation) whose tasks env= may name
    obs_mode: str = "state"
    control_mode: str = "ee_delta_pose"
    seed: int = 0
    resume: Optional[str] = None   # a previous run dir: continue it from its last checkpoint
    device: str = "cpu"            # cpu | cuda
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)   # curriculum=uniform|lp|omni
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    subgoals: str = "manual"       # policy=gravmad: where test-time sub-goals come from (manual | offline | llm)
    progress: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Top-level keys and what spans sections; each section checked itself when built."""
        def need(ok: bool, key: str, value: Any, allowed: str):
            if not ok:
                raise ConfigError(key, value, allowed)

        name = getattr(self.policy, "name", self.policy)
        if isinstance(self.env, (list, tuple)):
            self.env = list(self.env)
            need(len(self.env) > 0 and all(isinstance(t, str) and t for t in self.env), "env", self.env,
                 "a task name, a non-empty list of task names, builtin or library")
        else:
            need(isinstance(self.env, str) and bool(self.env), "env", self.env,
                 "a task name, a list of task names ([a,b]), builtin or library")
        need(self.env != "library" or bool(self.library), "env", self.env,
             "library only together with library=DIR (a generated-task library)")
        need(name in POLICIES and isinstance(self.policy, POLICIES[name]), "policy.name", name, ", ".join(POLICIES))
        need(self.obs_mode in OBS_MODES, "obs_mode", self.obs_mode, ", ".join(OBS_MODES))
        need(self.control_mode in CONTROL_MODES, "control_mode", self.control_mode, ", ".join(CONTROL_MODES))
        need(self.device in DEVICES, "device", self.device, ", ".join(DEVICES))
        need(is_int(self.seed, 0), "seed", self.seed, "an integer >= 0")
        demo_seeds = range(self.data.seed_start, self.data.exploration_seed_start)
        need(self.eval.seed_start >= demo_seeds.stop or self.eval.seed_start + self.eval.episodes <= demo_seeds.start,
             "eval.seed_start", self.eval.seed_start,
             f"a seed range disjoint from the demo seeds {demo_seeds.start}..{demo_seeds.stop - 1} "
             f"(evaluation must use unseen seeds)")
        if name in IMITATION_POLICIES:
            need(self.obs_mode in IMITATION_OBS_MODES, "obs_mode", self.obs_mode,
                 ", ".join(IMITATION_OBS_MODES))
            need(not (self.multitask and self.obs_mode == "state"), "obs_mode", self.obs_mode,
                 "slots, rgb, rgbd or pointcloud for several tasks (the state vector is laid out per task)")
        elif name == "gravmad":
            need(self.obs_mode == "pointcloud", "obs_mode", self.obs_mode,
                 "pointcloud for policy=gravmad (it reads the point cloud and the sub-goal's GravMap)")
            need(self.control_mode == "ee_delta_pose", "control_mode", self.control_mode,
                 "ee_delta_pose for policy=gravmad (its sub-goals guide the end effector's position)")
        elif name == "vla":
            need(self.obs_mode == "rgb", "obs_mode", self.obs_mode, "rgb for policy=vla (it reads one camera image)")
            need(not self.policy.load_in_4bit or self.device == "cuda", "policy.load_in_4bit", True,
                 "false on device=cpu (4-bit NF4 weights need CUDA and bitsandbytes; pass device=cuda)")
        elif name == "hilp":   # offline on every task's data; phi reads the task-independent observation
            need(self.obs_mode == "slots", "obs_mode", self.obs_mode, "slots for policy=hilp")
        else:   # RL: one task, or one policy over several on the observation every task shares
            need(not self.multitask or self.obs_mode == "slots", "obs_mode", self.obs_mode,
                 f"slots for several tasks with policy={name} (one policy needs one observation space; the state "
                 f"vector is laid out per task)")
        if self.data.explore_episodes:
            perceives = name == "diffusion" and self.obs_mode in ("rgb", "rgbd") and bool(
                self.policy.aux_position_loss or self.policy.fusion_pointer_loss)
            need(perceives, "data.explore_episodes", self.data.explore_episodes,
                 "0 unless policy=diffusion reads cameras (obs_mode=rgb|rgbd) with a perception loss "
                 "(policy.aux_position_loss or policy.fusion_pointer_loss): exploratory windows teach those only")
        # exploratory episodes (a camera policy's, or HILP's own count) come after the demo seeds
        n_explore = self.data.explore_episodes or (self.policy.explore_episodes if name == "hilp" else 0)
        explore = range(self.data.exploration_seed_start, self.data.exploration_seed_start + n_explore)
        need(not n_explore or self.eval.seed_start >= explore.stop
             or self.eval.seed_start + self.eval.episodes <= explore.start, "eval.seed_start", self.eval.seed_start,
             f"a seed range disjoint from the exploration seeds {explore.start}..{explore.stop - 1} "
             f"(evaluation must use unseen seeds)")
        need(self.subgoals in PROVIDERS, "subgoals", self.subgoals, ", ".join(PROVIDERS))
        need(self.subgoals == "manual" or name == "gravmad", "subgoals", self.subgoals,
             "manual (the default) unless policy=gravmad: only GravMAD reads sub-goals")
        if self.curriculum.active:
            need(name in IMITATION_POLICIES or name in RL_POLICIES, "curriculum", self.curriculum.name,
                 f"none with policy={name} (the curriculum weights the diffusion policy's multitask dataset "
                 f"or an RL policy's episodes: {', '.join(IMITATION_POLICIES + RL_POLICIES)})")
            need(not self.curriculum.refill or name in IMITATION_POLICIES, "curriculum.refill", True,
                 f"false with policy={name} (a refill collects oracle demos for the imitation learner)")
            need(self.multitask, "curriculum", self.curriculum.name,
                 "none for a single task (a curriculum chooses among several: env=builtin, library or [a,b])")
            cur_seeds = range(self.curriculum.eval_seed_start,
                              self.curriculum.eval_seed_start + self.curriculum.eval_episodes)
            for used in (demo_seeds, range(self.eval.seed_start, self.eval.seed_start + self.eval.episodes)):
                need(cur_seeds.start >= used.stop or cur_seeds.stop <= used.start, "curriculum.eval_seed_start",
                     self.curriculum.eval_seed_start,
                     f"a seed range disjoint from {used.start}..{used.stop - 1} (demo and final evaluation seeds)")

    @property
    def multitask(self) -> bool:
        """Whether ``env`` may name more than one task (a list, builtin or library)."""
        return isinstance(self.env, list) or self.env in TASK_SETS


ConfigStore.instance().store(name="run_config", node=RunConfig)
for _sim in SIMS:
    ConfigStore.instance().store(group="sim", name=_sim, node=SimConfig(name=_sim))
for _name, _cls in POLICIES.items():
    ConfigStore.instance().store(group="policy", name=_name, node=_cls)
for _name in CURRICULA:
    ConfigStore.instance().store(group="curriculum", name=_name, node=CurriculumConfig(name=_name))
# Training-budget presets (`train=long`): overrides on top of the dataclass defaults above, which
# are `make demo`'s budget (`train=default` changes nothing).
TRAIN_PRESETS = {
    "default": {},
    # more demos and 2.5x the optimizer steps, same network: aims at >= 0.97 on stack_blocks
    "long": {"data": {"num_demos": 200}, "train": {"steps": 15000, "warmup_steps": 500}},
}
for _name, _node in TRAIN_PRESETS.items():
    ConfigStore.instance().store(group="train", name=_name, node=_node, package="_global_")


def to_run_config(cfg: DictConfig | Mapping) -> RunConfig:
    """``cfg`` (as Hydra composed it, or a run's saved ``config.yaml``) typed against the schema
    and built into validated dataclasses. A bad value raises :class:`ConfigError` naming the key
    as the command line spells it (``policy.horizon=7 is invalid; allowed: ...``)."""
    plain = OmegaConf.to_container(cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg)), resolve=True)
    name = plain.get("policy", {}).get("name") if isinstance(plain.get("policy"), dict) else None
    if name not in POLICIES:
        raise ConfigError("policy.name", name, ", ".join(POLICIES))
    schema = OmegaConf.structured(RunConfig)
    schema.policy = OmegaConf.structured(POLICIES[name])
    try:
        typed = OmegaConf.merge(schema, plain)
    except OmegaConfBaseException as err:
        raise _schema_error(err, schema, plain) from None
    values = {}
    for key in typed:
        node = typed[key]
        if isinstance(node, DictConfig):  # a section: its dataclass checks its own ranges
            try:
                values[key] = OmegaConf.to_object(node)
            except ConfigError as err:
                raise err.within(key) from None
        elif isinstance(node, ListConfig):   # env=[a,b]
            values[key] = OmegaConf.to_container(node, resolve=True)
        else:
            values[key] = node
    return RunConfig(**values)


def _schema_error(err: OmegaConfBaseException, schema: DictConfig, plain: dict) -> ConfigError:
    """A saved config the schema refuses (hand-edited, or written by another version), on one line."""
    key = str(err.full_key)
    value = OmegaConf.select(OmegaConf.create(plain), key, default=None)
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(schema, parent_key) if parent_key else schema
    if isinstance(err, ConfigKeyError):
        return UnknownConfigKey(key, value, ", ".join(str(k) for k in parent))
    owner = OmegaConf.get_type(parent)
    hint = typing.get_type_hints(owner).get(leaf) if is_dataclass(owner) else None
    return ConfigError(key, value, f"a value of type {getattr(hint, '__name__', hint)}")


def compose(*overrides: str) -> RunConfig:
    """The validated config ``python train.py <overrides>`` would run with, without running it
    (for tests, benchmarks and notebooks), e.g. ``compose("env=reach_target", "policy=sac")``."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return to_run_config(hydra_compose(config_name="config", overrides=list(overrides)))


def to_yaml(config: RunConfig) -> str:
    """The run's config as ``config.yaml`` holds it (every value resolved; what ``resume=`` reads)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))
