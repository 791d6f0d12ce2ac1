"""Sub-goal keypose discovery (GravMAD, Chen et al., ICLR 2025, section 3.2): the steps of a
demonstration where what the robot is trying to reach changes, and the sub-goal at each.

A step ``t`` becomes a keypose candidate when (thresholds in :class:`KeyposeThresholds`):

- ``gripper``: the gripper command changes sign (open <-> closed) between ``t-1`` and ``t``;
- ``contact``: a finger starts or stops touching a manipulated object; the contact flag is first
  debounced (gaps of at most ``contact_gap_steps`` off-steps inside a touch are filled: a pushed
  block chatters against the fingers);
- ``rest``: the arm comes to rest: the joint-speed norm stays below ``rest_qvel`` rad/s for at
  least ``rest_min_steps`` consecutive steps (debounce); the keypose is the first of them.

Candidates within ``merge_steps`` of each other describe one event seen by several signals (the
gripper closes, then the fingers touch, then the arm stops) and merge into one keypose placed at
the most reliable signal's step (gripper, then contact, then rest). Step 0 is never a keypose (the
start pose is not a goal); the last step always is (``end``: where the demonstration finishes),
unless a keypose lies within ``merge_steps`` of it, which then also carries ``end``.

The sub-goal of a keypose is the TCP position (m, world frame) and the gripper openness in [0, 1]
(1 open) the robot is commanded to reach there: the command of step ``t`` onward, so a "close"
keypose says "be here with the gripper closed". :func:`score_keyposes` compares keyposes with the
oracle's phase boundaries (``bench/keyposes.py`` reports precision/recall on every built-in task).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from planners.subgoals.record import EpisodeSignals
from planners.subgoals.subgoal import SubGoal

REASONS = ("gripper", "contact", "rest", "end")  # merge priority, most reliable first


@dataclass(frozen=True)
class KeyposeThresholds:
    """Thresholds of :func:`discover_keyposes`; steps are control steps (20 Hz: 1 step = 50 ms)."""

    rest_qvel: float = 0.1       # rad/s: joint-speed norm under which the arm counts as at rest
    rest_min_steps: int = 2      # consecutive slow steps before a rest counts (debounce)
    contact_gap_steps: int = 3   # off-steps inside a touch that are bridged (contact chatter)
    merge_steps: int = 6         # candidates this close (steps) are one keypose


@dataclass(frozen=True)
class Keypose:
    step: int
    reasons: tuple[str, ...]   # which signals fired (REASONS)
    tcp_pos: np.ndarray        # (3,) m, world frame
    gripper_open: float        # in [0, 1]: commanded openness from this step on

    @property
    def subgoal(self) -> SubGoal:
        return SubGoal(pos=np.asarray(self.tcp_pos, float), gripper_open=self.gripper_open, source="keypose")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tcp_pos"] = [round(float(x), 5) for x in self.tcp_pos]
        d["reasons"] = list(self.reasons)
        return d


def _bridge(flag: np.ndarray, gap: int) -> np.ndarray:
    """``flag`` with off-runs of at most ``gap`` steps between two on-steps switched on."""
    out = flag.copy()
    on = np.flatnonzero(flag)
    for a, b in zip(on[:-1], on[1:]):
        if 1 < b - a <= gap + 1:
            out[a:b] = True
    return out


def _runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    d = np.diff(np.concatenate([[0], flag.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def candidate_steps(signals: EpisodeSignals, th: KeyposeThresholds = KeyposeThresholds()) -> dict[str, list[int]]:
    """Each signal's candidate steps before merging (``gripper``, ``contact``, ``rest``)."""
    cmd_open = signals.gripper_cmd > 0
    gripper = list(np.flatnonzero(cmd_open[1:] != cmd_open[:-1]) + 1)
    contact, T = [], len(signals)
    for a, b in _runs(_bridge(np.asarray(signals.contact, bool), th.contact_gap_steps)):
        contact += [int(a)] + ([int(b)] if b < T else [])
    slow = np.linalg.norm(signals.qvel, axis=1) < th.rest_qvel
    rest = [int(a) for a, b in _runs(slow) if b - a >= th.rest_min_steps and a > 0]
    return {"gripper": [int(s) for s in gripper], "contact": contact, "rest": rest}


def discover_keyposes(signals: EpisodeSignals, th: KeyposeThresholds = KeyposeThresholds()) -> list[Keypose]:
    """The keyposes of one episode, in time order (see the module docstring)."""
    T = len(signals)
    if T == 0:
        return []
    cands = sorted((s, r) for r, steps in candidate_steps(signals, th).items() for s in steps if 0 < s < T)
    groups: list[list[tuple[int, str]]] = []
    for s, r in cands:
        if groups and s - groups[-1][-1][0] <= th.merge_steps:
            groups[-1].append((s, r))
        else:
            groups.append([(s, r)])
    steps = []
    for g in groups:
        best = min(g, key=lambda sr: (REASONS.index(sr[1]), sr[0]))
        steps.append((best[0], tuple(r for r in REASONS if any(r == x for _, x in g))))
    if steps and T - 1 - steps[-1][0] <= th.merge_steps:  # the last event already is the end
        steps[-1] = (steps[-1][0], steps[-1][1] + ("end",))
    else:
        steps.append((T - 1, ("end",)))
    return [Keypose(step=s, reasons=rs, tcp_pos=np.asarray(signals.tcp_pos[s], float).copy(),
                    gripper_open=float(signals.gripper_cmd[s] > 0)) for s, rs in steps]


def subgoal_per_step(keyposes: list[Keypose], length: int) -> np.ndarray:
    """(T,) index of the keypose each step heads for: the first keypose after ``t`` (the last one
    once every keypose is passed). What GravMAD conditions step ``t`` of a demonstration on."""
    steps = np.array([k.step for k in keyposes])
    idx = np.searchsorted(steps, np.arange(length), side="right")
    return np.minimum(idx, len(keyposes) - 1)


def subgoal_array(keyposes: list[Keypose], length: int) -> np.ndarray:
    """(T, 4) float32 per-step sub-goal labels of a demonstration: the TCP position (m) and gripper
    openness of the keypose each step heads for (:func:`subgoal_per_step`): what a GravMAD
    training batch draws its GravMaps from."""
    table = np.array([[*k.tcp_pos, k.gripper_open] for k in keyposes], np.float32).reshape(-1, 4)
    return table[subgoal_per_step(keyposes, length)]


@dataclass
class Match:
    """Keyposes against reference boundary steps: counts for precision and recall."""

    true_positives: int
    predicted: int
    reference: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.reference if self.reference else None

    def __add__(self, other: "Match") -> "Match":
        return Match(self.true_positives + other.true_positives, self.predicted + other.predicted,
                     self.reference + other.reference)


def score_keyposes(predicted: list[int], reference: list[int], tolerance: int) -> Match:
    """Greedy one-to-one matching of predicted to reference steps within ``tolerance`` steps
    (closest pairs first); a reference boundary matched twice counts once."""
    pairs = sorted((abs(p - r), i, j) for i, p in enumerate(predicted) for j, r in enumerate(reference)
                   if abs(p - r) <= tolerance)
    used_p, used_r = set(), set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
    return Match(len(used_p), len(predicted), len(reference))


def oracle_boundaries(signals: EpisodeSignals) -> list[int]:
    """The reference steps keypose discovery is scored against: the oracle's phase events
    (``planners.oracle.EVENT_KINDS``) strictly inside the episode, deduplicated. The first and
    last steps are left out on both sides: neither is discovered (step 0 is never a keypose, the
    last step always is)."""
    return sorted({e.step for e in signals.events if 0 < e.step < len(signals) - 1})


def scored_steps(keyposes: list[Keypose], length: int) -> list[int]:
    """The keyposes that are scored: those strictly inside an episode of ``length`` steps."""
    return [k.step for k in keyposes if 0 < k.step < length - 1]
