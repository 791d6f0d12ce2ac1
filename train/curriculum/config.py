"""``curriculum=none|uniform|lp|omni`` and its keys (``curriculum.slice_steps=200`` ...)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from policies.common.config import is_int, is_number, require

CURRICULA = ("none", "uniform", "lp", "omni")
JUDGES = ("embedding", "llm")
GENERATORS = ("procedural", "llm")
NOVELTIES = ("none", "hilp")


@dataclass
class CurriculumConfig:
    """Where each slice of the training budget goes (train/curriculum/, docs/curriculum.md).

    ``none``: the plain multitask run (weights fixed at 1). ``uniform``: the same sampling, but
    evaluated and plotted like the others (the baseline). ``lp``: OMNI's learning progress.
    ``omni``: learning progress x interestingness (boring tasks x ``boring_factor``)."""

    name: str = "none"
    slice_steps: int = 500          # optimizer steps per slice (one sampler epoch per slice)
    eval_every: int = 2             # K: slices between per-task evaluations (each feeds LP)
    eval_episodes: int = 10         # per task per evaluation, on fixed seeds
    eval_seed_start: int = 200_000  # curriculum evaluation seeds (disjoint from demo and final eval seeds)
    random_episodes: int = 10       # per task, the random-policy baseline measured once at the start
    ema_alpha: float = 0.1
    theta: float = 0.1              # the reweighting f(p) = (1-theta) p / (p + theta (1-2p))
    floor: float = 0.01             # every task's weight is at least this (before the boring factor)
    boring_factor: float = 0.001
    mastered_threshold: float = 0.5  # success rate from which a task counts as mastered
    judge: str = "embedding"        # embedding (offline MiniLM) | llm (the project's LLM client, env vars)
    similarity_threshold: float = 0.9   # cosine similarity to a mastered task from which a task is boring
    # the judge's second view (docs/curriculum.md): hilp = distance in a trained HILP phi-space from a task's
    # goal states to the mastered tasks' ones, relative to the task's own start-to-goal distance
    novelty: str = "none"           # none | hilp (curriculum=omni only; needs hilp_checkpoint)
    hilp_checkpoint: Optional[str] = None   # a policy=hilp run dir (or its checkpoints/last), trained on slots
    novelty_threshold: float = 0.5  # with a novelty score: at or above it a text-alike task stays interesting
    llm_timeout_s: float = 30.0     # for the whole answer; a timeout falls back to the embedding judge
    refill: bool = False            # closed loop: generate tasks when too few are learnable and interesting
    refill_min: int = 3             # N: refill below this many learnable-and-interesting tasks
    refill_count: int = 4           # generation attempts per refill
    refill_generator: str = "procedural"  # procedural (offline) | llm (the project's LLM client, env vars)
    refill_library: Optional[str] = None  # where generated tasks are admitted (default: library=, else run_dir/library)

    def __post_init__(self):
        require(self.name in CURRICULA, self, "name", ", ".join(CURRICULA))
        require(self.judge in JUDGES, self, "judge", ", ".join(JUDGES))
        require(self.novelty in NOVELTIES, self, "novelty", ", ".join(NOVELTIES))
        require(self.novelty == "none" or self.name == "omni", self, "novelty",
                "none unless curriculum=omni (only its interestingness judge reads novelty)")
        require(self.novelty != "hilp" or bool(self.hilp_checkpoint), self, "novelty",
                "hilp only with curriculum.hilp_checkpoint=RUN_DIR (a python train.py policy=hilp obs_mode=slots run)")
        require(self.refill_generator in GENERATORS, self, "refill_generator", ", ".join(GENERATORS))
        for key in ("slice_steps", "eval_every", "eval_episodes", "random_episodes", "refill_min", "refill_count"):
            require(is_int(getattr(self, key), 1), self, key, "an integer >= 1")
        require(is_int(self.eval_seed_start, 0), self, "eval_seed_start", "an integer >= 0")
        for key, lo, hi, allowed in (("ema_alpha", 0, 1, "a number in (0, 1]"), ("theta", 0, 0.5, "a number in (0, 0.5)"),
                                     ("boring_factor", 0, 1, "a number in (0, 1]"),
                                     ("mastered_threshold", 0, 1, "a number in (0, 1]"),
                                     ("similarity_threshold", -1, 1, "a number in (-1, 1]")):
            v = getattr(self, key)
            ok = is_number(v) and lo < v <= hi and not (key == "theta" and v >= 0.5)
            require(ok, self, key, allowed)
        require(is_number(self.floor) and 0 <= self.floor < 1, self, "floor", "a number in [0, 1)")
        require(is_number(self.novelty_threshold), self, "novelty_threshold", "a number")
        require(is_number(self.llm_timeout_s) and self.llm_timeout_s > 0, self, "llm_timeout_s", "a number > 0")

    @property
    def active(self) -> bool:
        return self.name != "none"
