"""What keypose discovery reads from an episode, recorded from an oracle run or recomputed from a
stored demonstration by replaying its seed and actions.

Signals are per step ``t`` (the observation action ``t`` was chosen on): the TCP position, arm
joint velocities, gripper width and command, and whether a finger touches a manipulated object
(a movable object one of the task's goals moves). MuJoCo is deterministic for a seed and an
action sequence, so a demo store need not keep contacts: :func:`replay_signals` recomputes them
and checks the replay against the stored proprioception.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.core import observation as ob
from planners.oracle import PhaseEvent, make_oracle

# slices of the robot part every flat observation starts with (envs.core.observation.PROPRIO_FIELDS)
_PROPRIO = ob.state_layout([], [], 0)
REPLAY_TOLERANCE = 1e-4  # rad / m: largest replay-vs-store proprioception difference accepted


class ReplayMismatchError(RuntimeError):
    """Replaying a demonstration's seed and actions did not reproduce its stored states."""


@dataclass
class EpisodeSignals:
    """Per-step signals of one episode (T steps); units: m, rad/s, gripper command in [-1, 1]."""

    tcp_pos: np.ndarray        # (T, 3) world frame, m
    qvel: np.ndarray           # (T, 7) arm joint velocities, rad/s
    gripper_width: np.ndarray  # (T,) distance between the finger pads, m
    gripper_cmd: np.ndarray    # (T,) the action's gripper entry: +1 open, -1 closed
    contact: np.ndarray        # (T,) bool: a finger touches a manipulated object
    task: str = ""
    seed: int = -1
    instruction: str = ""
    events: list[PhaseEvent] = field(default_factory=list)  # the oracle's phase boundaries, if known

    def __len__(self) -> int:
        return len(self.gripper_cmd)

    @classmethod
    def from_arrays(cls, proprio: np.ndarray, actions: np.ndarray, contact: np.ndarray, **kw) -> "EpisodeSignals":
        """From a demo store episode's ``proprio`` (T, AGENT_DIM) and ``actions`` (T, A) and a
        contact flag per step."""
        proprio = np.asarray(proprio, np.float64)
        if len(proprio) != len(actions) or len(contact) != len(actions):
            raise ValueError(f"proprio, actions and contact must have one row per step; got "
                             f"{len(proprio)}, {len(actions)}, {len(contact)}")
        return cls(tcp_pos=proprio[:, _PROPRIO["tcp_pos"]], qvel=proprio[:, _PROPRIO["qvel"]],
                   gripper_width=proprio[:, _PROPRIO["gripper_width"]][:, 0],
                   gripper_cmd=np.asarray(actions, np.float64)[:, -1], contact=np.asarray(contact, bool), **kw)


def manipulated_objects(env) -> frozenset[str]:
    """Names of the movable objects the task's goals (oracle sub-goals included) move."""
    u = env.unwrapped
    movable = {o.name for o in u.scene.objects if o.movable}
    names = {g.obj.name for g in [*u.task.goals(), *u.task.oracle_goals()]}
    return frozenset(names & movable)


def _touching(env, objects: frozenset[str]) -> bool:
    return bool(env.unwrapped.scene_state().touching & objects)


def record_oracle_episode(env, seed: int) -> tuple[EpisodeSignals, np.ndarray, bool]:
    """Run the oracle from ``seed`` on a ``state``-mode env: (signals with the oracle's phase
    events, actions (T, A), success)."""
    oracle = make_oracle(env)
    obs, info = env.reset(seed=seed)
    oracle.reset()
    objects = manipulated_objects(env)
    rows, actions, contact = [], [], []
    while True:
        action = oracle.act(obs)
        rows.append(np.asarray(obs["state"] if isinstance(obs, dict) else obs)[:ob.AGENT_DIM])
        contact.append(_touching(env, objects))
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    actions = np.array(actions, np.float32)
    signals = EpisodeSignals.from_arrays(np.array(rows), actions, np.array(contact), task=info["task"], seed=seed,
                                         instruction=info["instruction"], events=list(oracle.events))
    return signals, actions, bool(info["success"])


def replay_signals(env, seed: int, actions: np.ndarray, proprio: np.ndarray | None = None,
                   instruction: str = "") -> EpisodeSignals:
    """Signals of a stored demonstration: reset ``env`` (same task, backend and control mode as the
    demo) with ``seed``, replay ``actions`` and read the finger contacts on the way. With
    ``proprio`` (the stored (T, AGENT_DIM) rows) the replay is checked against it and a
    :class:`ReplayMismatchError` says where it diverged."""
    obs, info = env.reset(seed=seed)
    objects = manipulated_objects(env)
    rows, contact = [], []
    for a in actions:
        rows.append(np.asarray(obs["state"] if isinstance(obs, dict) else obs)[:ob.AGENT_DIM])
        contact.append(_touching(env, objects))
        obs, *_ = env.step(a)
    rows = np.array(rows, np.float64)
    if proprio is not None:
        err = np.abs(rows - np.asarray(proprio, np.float64)).max(axis=1)
        bad = np.flatnonzero(err > REPLAY_TOLERANCE)
        if len(bad):
            raise ReplayMismatchError(f"replaying seed {seed} diverged from the stored demo at step {bad[0]} "
                                      f"(max difference {err[bad[0]]:.2g}); was it recorded with another "
                                      f"backend, control mode or task version?")
    return EpisodeSignals.from_arrays(rows, actions, np.array(contact), task=info["task"], seed=seed,
                                      instruction=instruction or info["instruction"])
