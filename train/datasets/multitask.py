"""Demo windows across many tasks, with per-task sampling weights a caller changes between epochs.

::

    stores = collect_demos_for_tasks(["stack_blocks", "place_in_zone"], 50)        # train.demos
    data = MultiTaskDataset(stores, n_obs_steps=2, horizon=16, obs_keys=("slots",))
    loader = DataLoader(data, batch_size=64, sampler=data.sampler(seed=0))
    data.set_task_weights({"stack_blocks": 2.0})          # the curriculum's lever; next epoch on
    emb = instruction_encoder(data.instructions)         # once; emb[batch["instruction_id"]]

A sample is one :class:`~train.datasets.sequence.SequenceDataset` window (``obs``: ``{key:
(n_obs_steps, ...)}`` for the requested ``obs_keys`` only, ``action``: (horizon, A)) plus
``task_id`` (an index into :attr:`MultiTaskDataset.tasks`), ``instruction`` (the episode's string)
and ``instruction_id`` (an index into :attr:`MultiTaskDataset.instructions`, for embeddings
computed once). Camera images arrive as uint8 (depth float32 m), point clouds as float32, decoded
from the store per sample.

Sampling: a task's weight is the probability mass of drawing from it (not scaled by how many
windows it has), spread evenly over its windows.

``explore_stores``: exploratory episodes of the same tasks (:func:`train.demos.collect_exploration`):
states off the demos' paths with where things are, for a camera policy's perception losses.
Their windows carry ``demo=False`` (a policy leaves them out of its action loss) and get
``explore_fraction`` of their task's weight; normalizers are fitted on the demos alone. :meth:`MultiTaskDataset.sampler` reads the
weights at the start of every epoch, so a DataLoader built once follows each change.
"""
from __future__ import annotations

import math
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, WeightedRandomSampler

from train.datasets.demo_store import DemoStore
from train.datasets.sequence import STEP_TARGET, VECTOR_KEYS, SequenceDataset, episode_observation


class IncompatibleTasksError(ValueError):
    """Stores that one policy cannot learn from together (different action spaces or
    observation shapes); the message says which tasks differ and how."""


class MultiTaskDataset(Dataset):
    """Windows over the episodes of ``stores`` (a list, or ``{task: store}`` as
    :func:`train.demos.collect_demos_for_tasks` returns; several stores of one task, e.g. one per
    backend, merge into that task). ``obs_keys``: what the policy reads (``slots``, ``proprio``,
    ``state``, camera keys such as ``front_rgb``). ``target_keys``: vector keys handed out apart, as
    ``sample["targets"]``, for training losses only (:class:`~train.datasets.sequence.SequenceDataset`).
    ``task_weights``: initial weights, 1.0 per task by default."""

    def __init__(self, stores: Sequence[DemoStore] | Mapping[str, DemoStore], n_obs_steps: int, horizon: int,
                 obs_keys: Sequence[str] = ("slots",), task_weights: Mapping[str, float] | None = None,
                 target_keys: Sequence[str] = (), explore_stores: Sequence[DemoStore] | Mapping[str, DemoStore] = (),
                 explore_fraction: float = 0.25):
        stores = list(stores.values()) if isinstance(stores, Mapping) else list(stores)
        explore = list(explore_stores.values()) if isinstance(explore_stores, Mapping) else list(explore_stores)
        if not stores:
            raise ValueError("MultiTaskDataset needs at least one demo store")
        if not 0 <= explore_fraction < 1:
            raise ValueError(f"explore_fraction={explore_fraction!r} is invalid; allowed: a number in [0, 1)")
        self._stores, self._explore, self._n_obs_steps, self._horizon = stores, explore, n_obs_steps, horizon
        self.obs_keys, self.target_keys, self.explore_fraction = tuple(obs_keys), tuple(target_keys), explore_fraction
        _check_action_spaces(stores + explore)
        demo_tasks = {ep.task or store.meta.get("task", "") for store in stores for ep in store.episodes}
        stray = sorted({_store_task(store) for store in explore} - demo_tasks)
        if stray:
            raise ValueError(f"exploration stores of {stray} have no demos here; exploration only adds states to "
                             f"tasks with demos ({', '.join(sorted(demo_tasks))})")
        episodes = [ep for store in stores + explore for ep in store.episodes]
        tasks = [ep.task or store.meta.get("task", "") for store in stores + explore for ep in store.episodes]
        is_demo = np.array([True] * sum(len(s.episodes) for s in stores) + [False] * sum(len(s.episodes) for s in explore))
        self.tasks: list[str] = list(dict.fromkeys(tasks))
        _check_observations(stores + explore, self.obs_keys + tuple(k for k in self.target_keys if k != STEP_TARGET))
        self.instructions: list[str] = sorted({ep.instruction for ep in episodes})
        self.sequences = SequenceDataset(episodes, n_obs_steps, horizon, self.obs_keys, self.target_keys)
        task_id = {t: i for i, t in enumerate(self.tasks)}
        instruction_id = {s: i for i, s in enumerate(self.instructions)}
        task_of_episode = np.array([task_id[t] for t in tasks], dtype=np.int64)
        instruction_of_episode = np.array([instruction_id[ep.instruction] for ep in episodes], dtype=np.int64)
        windows = np.array([i for i, _ in self.sequences.index], dtype=np.int64)
        self.window_task = task_of_episode[windows]            # task id of every window
        self.window_demo = is_demo[windows]                    # False: an exploration window (no action to imitate)
        self._demo_episodes = np.flatnonzero(is_demo)
        self._episode_instruction = instruction_of_episode
        self._weights = {t: 1.0 for t in self.tasks}
        if task_weights:
            self.set_task_weights(task_weights)

    # -- samples ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, k: int) -> dict:
        sample = self.sequences[k]
        i = self.sequences.index[k][0]
        instruction_id = int(self._episode_instruction[i])
        return {**sample, "task_id": torch.tensor(self.window_task[k]), "demo": torch.tensor(bool(self.window_demo[k])),
                "instruction": self.instructions[instruction_id], "instruction_id": torch.tensor(instruction_id)}

    @property
    def action_dim(self) -> int:
        return self.sequences.actions[0].shape[1]

    def stacked_obs(self, key: str) -> np.ndarray:
        """All demo steps of the vector observation ``key``, for fitting a normalizer."""
        return self.sequences.stacked_obs(key, self._demo_episodes)

    def stacked_actions(self) -> np.ndarray:
        """All demo actions (exploration's are not what the policy should output)."""
        return self.sequences.stacked_actions(self._demo_episodes)

    def windows_per_task(self) -> dict[str, int]:
        counts = np.bincount(self.window_task, minlength=len(self.tasks))
        return {t: int(n) for t, n in zip(self.tasks, counts)}

    def add_stores(self, stores: Sequence[DemoStore] | Mapping[str, DemoStore]) -> list[str]:
        """More tasks' demos (a curriculum refilling its pool): the same checks as the
        constructor; new tasks start at weight 1.0, the others keep theirs. Takes effect at the
        next epoch of every :meth:`sampler`. Returns the tasks that were added."""
        stores = list(stores.values()) if isinstance(stores, Mapping) else list(stores)
        before, weights = list(self.tasks), self.task_weights
        self.__init__(self._stores + stores, self._n_obs_steps, self._horizon, self.obs_keys,
                      target_keys=self.target_keys, explore_stores=self._explore, explore_fraction=self.explore_fraction)
        self._weights.update({t: w for t, w in weights.items() if t in self._weights})
        return [t for t in self.tasks if t not in before]

    # -- the curriculum's lever -------------------------------------------------------------
    @property
    def task_weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_task_weights(self, weights: Mapping[str, float]) -> None:
        """Set some tasks' sampling weights (finite, >= 0; the others keep theirs). Takes effect
        at the next epoch of every :meth:`sampler`."""
        unknown = [t for t in weights if t not in self._weights]
        if unknown:
            raise ValueError(f"task_weights names unknown task {unknown[0]!r}; this dataset's tasks: "
                             f"{', '.join(self.tasks)}")
        new = {**self._weights, **{t: float(w) for t, w in weights.items()}}
        bad = {t: w for t, w in new.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            t = next(iter(bad))
            raise ValueError(f"task_weights[{t!r}]={bad[t]} is invalid; allowed: a finite number >= 0")
        if not any(new.values()):
            raise ValueError("task_weights are all 0; at least one task needs a positive weight")
        self._weights = new

    def sample_weights(self) -> torch.Tensor:
        """(len(self),) float64: each window's draw probability (up to a constant): its task's
        weight over its task's number of windows; with exploration, a task's demo windows share
        ``1 - explore_fraction`` of its weight and its exploration windows the rest."""
        weight = np.array([self._weights[t] for t in self.tasks])
        counts = {demo: np.bincount(self.window_task[self.window_demo == demo], minlength=len(self.tasks))
                  for demo in (True, False)}
        explored = np.where(counts[False] > 0, self.explore_fraction, 0.0)   # a task without exploration: all demos
        out = np.zeros(len(self.window_task))
        for demo, share in ((True, 1.0 - explored), (False, explored)):
            sel = self.window_demo == demo
            out[sel] = (share * weight / np.maximum(counts[demo], 1))[self.window_task[sel]]
        return torch.from_numpy(out)

    def sampler(self, num_samples: int | None = None, seed: int = 0) -> "TaskWeightedSampler":
        """A sampler for ``DataLoader(sampler=...)`` drawing ``num_samples`` windows per epoch
        (default: ``len(self)``) with replacement by the current task weights; epoch ``e`` is
        seeded with ``seed + e``, so runs repeat."""
        return TaskWeightedSampler(self, num_samples or len(self), seed)


class TaskWeightedSampler(Sampler[int]):
    """torch's WeightedRandomSampler, rebuilt from the dataset's current task weights at the
    start of each epoch (a DataLoader keeps its sampler object, so the weights are read here)."""

    def __init__(self, dataset: MultiTaskDataset, num_samples: int, seed: int = 0):
        self.dataset, self.num_samples, self.seed, self.epoch = dataset, int(num_samples), int(seed), 0

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        yield from WeightedRandomSampler(self.dataset.sample_weights(), self.num_samples, replacement=True,
                                         generator=g)


def _store_task(store: DemoStore) -> str:
    return store.meta.get("task") or (store.episodes[0].task if store.episodes else "?")


def _check_action_spaces(stores: list[DemoStore]) -> None:
    spaces = {}
    for store in stores:
        spaces.setdefault((store.action_dim, store.meta.get("control_mode", "?")), []).append(_store_task(store))
    if len(spaces) > 1:
        described = "; ".join(f"{', '.join(dict.fromkeys(tasks))}: {dim}-D {mode} actions"
                              for (dim, mode), tasks in spaces.items())
        raise IncompatibleTasksError(f"these tasks' action spaces differ ({described}); one policy needs one "
                                     f"action space: collect every task's demos with the same control_mode")


def _check_observations(stores: list[DemoStore], obs_keys: tuple[str, ...]) -> None:
    """Every requested key exists in every store (MissingObservationError otherwise) with one
    shape per step across them."""
    for key in obs_keys:
        if key not in VECTOR_KEYS and key != "pointcloud" and not key.endswith(("_rgb", "_depth")):
            raise ValueError(f"obs key {key!r} is invalid; allowed: {', '.join(VECTOR_KEYS)}, pointcloud or camera "
                             f"keys such as 'front_rgb', 'wrist_depth'")
        shapes = {}
        for store in stores:
            value = episode_observation(store.episodes[0], key)
            shapes.setdefault(tuple(value.shape[1:]), []).append(_store_task(store))
        if len(shapes) > 1:
            described = "; ".join(f"{', '.join(dict.fromkeys(t))}: {s}" for s, t in shapes.items())
            hint = " ('state' is laid out per task; multitask policies read 'slots')" if key == "state" else ""
            raise IncompatibleTasksError(f"observation {key!r} has different shapes across tasks ({described})"
                                         f"{hint}")
