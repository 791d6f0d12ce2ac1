"""The curriculum: per-task sampling weights from learning progress and interestingness.

    cur = Curriculum(["stack_blocks", "push_to_zone"], CurriculumConfig(name="omni"), judge=EmbeddingJudge())
    cur.set_random_success({"stack_blocks": 0.0, "push_to_zone": 0.1})   # once, a random policy's success
    weights = cur.update({"stack_blocks": 0.4, "push_to_zone": 0.0}, step=1000)   # after each evaluation
    dataset.set_task_weights(weights)

``uniform``: equal weights (the baseline, still evaluated and logged). ``lp``: OMNI's LP
distribution (:mod:`train.curriculum.learning_progress`). ``omni``: the same, each task's weight
at least ``floor``, then tasks judged boring given the mastered ones x ``boring_factor``;
weights sum to 1. Mastered tasks (success >= ``mastered_threshold``) are not judged: their
weight follows their LP, so forgetting one raises it again.
"""
from __future__ import annotations

import logging
from typing import Mapping, Sequence

from train.curriculum.config import CurriculumConfig
from train.curriculum.interestingness import task_descriptions
from train.curriculum.learning_progress import LearningProgress

log = logging.getLogger(__name__)
STATE_VERSION = 1


class Curriculum:
    def __init__(self, tasks: Sequence[str], config: CurriculumConfig, judge=None,
                 descriptions: Mapping[str, str] | None = None):
        if not tasks:
            raise ValueError("the curriculum needs at least one task in its pool")
        if config.name == "omni" and judge is None:
            raise ValueError("curriculum=omni needs an interestingness judge")
        self.config, self.judge = config, judge
        self.lp = LearningProgress(tasks, config.ema_alpha, config.theta)
        self.descriptions = dict(descriptions) if descriptions is not None else task_descriptions(tasks)
        self.random_measured = False
        self.weights = {t: 1.0 / len(self.lp.tasks) for t in self.lp.tasks}
        self.verdicts: dict[str, dict] = {}   # the latest verdict per task (with the step it was made at)
        self.history: list[dict] = []         # one entry per evaluation
        self.refills: list[dict] = []         # closed-loop generations (train.curriculum.refill)

    @property
    def tasks(self) -> list[str]:
        return list(self.lp.tasks)

    def add_tasks(self, tasks: Sequence[str], descriptions: Mapping[str, str] | None = None) -> None:
        """Tasks joining the pool (a refill): no evaluation yet, the current mean weight."""
        new = [t for t in tasks if t not in self.lp.random]
        self.lp.add_tasks(new)
        self.descriptions.update(descriptions if descriptions is not None else task_descriptions(new))
        mean = sum(self.weights.values()) / max(len(self.weights), 1)
        self.weights.update({t: mean for t in new})
        total = sum(self.weights.values())
        self.weights = {t: w / total for t, w in self.weights.items()}

    def set_random_success(self, rates: Mapping[str, float]) -> None:
        self.lp.set_random_success(rates)
        self.random_measured = True

    def mastered(self) -> list[str]:
        return [t for t in self.tasks if self.lp.success[t] >= self.config.mastered_threshold]

    def update(self, success: Mapping[str, float], step: int) -> dict[str, float]:
        """Fold one evaluation (``{task: success rate}``) in; returns the new weights (sum 1)."""
        self.lp.update(success)
        lp = self.lp.learning_progress()
        cfg = self.config
        boring: set[str] = set()
        if cfg.name == "uniform":
            weights = {t: 1.0 for t in self.tasks}
        else:
            dist = self.lp.distribution()
            weights = {t: max(dist[t], cfg.floor) for t in self.tasks}
            if cfg.name == "omni":
                boring = {t for t, v in self.judge_tasks(step).items() if not v["interesting"]}
                weights = {t: w * (cfg.boring_factor if t in boring else 1.0) for t, w in weights.items()}
        if len(self.history) >= 1 and not any(lp.values()) and not any(self.lp.success.values()):
            log.warning("curriculum: no task shows learning progress or any success after %d evaluations; "
                        "sampling evenly (the pool may be beyond this budget)", len(self.history) + 1)
        total = sum(weights.values())
        self.weights = {t: w / total for t, w in weights.items()}
        mastered = self.mastered()
        self.history.append({
            "step": int(step), "success": dict(self.lp.success), "lp": lp, "weights": dict(self.weights),
            "fast": dict(self.lp.fast), "slow": dict(self.lp.slow), "boring": sorted(boring),
            "mastered": mastered, "num_mastered": len(mastered)})
        return dict(self.weights)

    def judge_tasks(self, step: int) -> dict[str, dict]:
        """Judge every unmastered task given the mastered ones; log and keep each verdict."""
        mastered = self.mastered()
        candidates = {t: self.descriptions[t] for t in self.tasks if t not in mastered}
        verdicts = self.judge.judge({t: self.descriptions[t] for t in mastered}, candidates)
        out = {}
        for t in mastered:
            out[t] = {"task": t, "interesting": True, "reason": "mastered (not judged)", "judge": "-"}
        for t, v in verdicts.items():
            out[t] = {**v.as_dict()}
            changed = self.verdicts.get(t, {}).get("interesting") != v.interesting
            # every verdict goes to curriculum/verdicts.jsonl; the log shows the new and the changed ones
            log.log(logging.INFO if changed else logging.DEBUG, "interestingness @%d: %s is %s (%s): %s", step, t,
                    "interesting" if v.interesting else "BORING", v.judge, v.reason)
        for t, v in out.items():
            self.verdicts[t] = {**v, "step": int(step)}
        return out

    def learnable_and_interesting(self) -> list[str]:
        """Unmastered tasks that show progress (LP > 0 or some success) and are not judged boring."""
        lp = self.lp.learning_progress()
        return [t for t in self.tasks if t not in self.mastered() and (lp[t] > 0 or self.lp.success[t] > 0)
                and self.verdicts.get(t, {}).get("interesting", True)]

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        judge = self.judge.state_dict() if hasattr(self.judge, "state_dict") else {}
        return {"version": STATE_VERSION, "name": self.config.name, "lp": self.lp.state_dict(),
                "descriptions": dict(self.descriptions), "random_measured": self.random_measured,
                "weights": dict(self.weights), "verdicts": dict(self.verdicts), "history": list(self.history),
                "refills": list(self.refills), "judge": judge}

    def load_state_dict(self, state: Mapping) -> None:
        if state.get("name") != self.config.name:
            raise ValueError(f"the checkpoint's curriculum is {state.get('name')!r}, this run's is "
                             f"{self.config.name!r}; resume with curriculum={state.get('name')}")
        self.lp.load_state_dict(state["lp"])
        self.descriptions.update(state["descriptions"])
        self.random_measured = bool(state["random_measured"])
        self.weights = dict(state["weights"])
        self.verdicts = dict(state["verdicts"])
        self.history = list(state["history"])
        self.refills = list(state.get("refills", []))
        if hasattr(self.judge, "load_state_dict"):
            self.judge.load_state_dict(state.get("judge", {}))
