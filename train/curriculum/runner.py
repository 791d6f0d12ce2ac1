"""The curriculum inside the imitation trainer: after every slice the trainer calls the hook;
every ``eval_every`` slices it evaluates each task, updates the curriculum and hands the new
weights to the dataset (its sampler reads them at the next slice, one sampler epoch per slice).

Outputs, in the run directory: ``curriculum/state.json`` (EMAs, verdicts, weights history),
``curriculum/verdicts.jsonl`` (every verdict with its reason), ``curriculum/curriculum.png`` and
TensorBoard scalars ``curriculum/{weight,lp,success}/<task>``, ``curriculum/num_mastered``. The
same state goes into the trainer's checkpoint, so ``resume=`` continues the curriculum.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from train.curriculum.curriculum import Curriculum
from train.curriculum.plot import plot_history

log = logging.getLogger(__name__)

# (policy, tasks) -> {task: success rate}
EvaluateTasks = Callable[[object, Sequence[str]], Mapping[str, float]]


class RandomPolicy:
    """Uniform random actions in [-1, 1] (the normalized action space), batched like a policy:
    the baseline a task's success is normalized against."""

    reads_instruction = False

    def __init__(self, action_dim: int, seed: int = 0):
        self.action_dim, self.rng = int(action_dim), np.random.default_rng(seed)

    def reset(self, noise_seeds=None, **_):
        if noise_seeds is not None:
            self.rng = np.random.default_rng(list(noise_seeds))

    def select_action(self, obs):
        batch = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
        return self.rng.uniform(-1.0, 1.0, size=(batch, self.action_dim)).astype(np.float32)


class CurriculumHook:
    """What :func:`train.imitation.train_imitation` calls every ``every`` steps (one slice).

    ``evaluate(policy, tasks)`` -> ``{task: success}`` with the trained policy;
    ``evaluate_random(tasks)`` the same with a random policy (measured once, at the first
    evaluation)."""

    def __init__(self, curriculum: Curriculum, dataset, evaluate: EvaluateTasks,
                 evaluate_random: Callable[[Sequence[str]], Mapping[str, float]], run_dir, slice_steps: int,
                 eval_every: int, refill=None):
        self.curriculum, self.dataset = curriculum, dataset
        self.evaluate, self.evaluate_random = evaluate, evaluate_random
        self.every, self.eval_every = int(slice_steps), int(eval_every)
        self.out = Path(run_dir) / "curriculum"
        self.tb_dir = Path(run_dir) / "tb"
        self.refill = refill

    def __call__(self, step: int, policy) -> bool:
        """After slice ``step // every``; returns whether the curriculum changed (the trainer
        then checkpoints, so the saved state matches the weights in use)."""
        if (step // self.every) % self.eval_every:
            return False
        cur = self.curriculum
        if not cur.random_measured and cur.config.name != "uniform":
            rates = dict(self.evaluate_random(cur.tasks))
            cur.set_random_success(rates)
            log.info("curriculum: random-policy success %s", _fmt(rates))
        success = dict(self.evaluate(policy, cur.tasks))
        weights = cur.update(success, step)
        self.dataset.set_task_weights(weights)
        entry = cur.history[-1]
        log.info("curriculum @%d: %d/%d mastered; success %s; weights %s", step, entry["num_mastered"],
                 len(cur.tasks), _fmt(success), _fmt(weights))
        if self.refill is not None:
            self.refill(self, step)
        self._write(step)
        return True

    def _write(self, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        from envs.core.fileio import write_atomic

        cur, entry = self.curriculum, self.curriculum.history[-1]
        self.out.mkdir(parents=True, exist_ok=True)
        write_atomic(self.out / "state.json", json.dumps(cur.state_dict(), indent=1))
        with open(self.out / "verdicts.jsonl", "a", encoding="utf-8") as f:
            for t, v in cur.verdicts.items():
                if v.get("step") == step:
                    f.write(json.dumps(v) + "\n")
        plot_history(cur.history, self.out / "curriculum.png", title=f"curriculum={cur.config.name}")
        writer = SummaryWriter(str(self.tb_dir))
        for key, name in (("weights", "weight"), ("lp", "lp"), ("success", "success")):
            for t, v in entry[key].items():
                writer.add_scalar(f"curriculum/{name}/{t}", v, step)
        writer.add_scalar("curriculum/num_mastered", entry["num_mastered"], step)
        writer.add_scalar("curriculum/num_boring", len(entry["boring"]), step)
        writer.close()

    def summary(self) -> dict:
        """What metrics.json keeps of the curriculum."""
        cur = self.curriculum
        judge = cur.judge.state_dict() if hasattr(cur.judge, "state_dict") else {}
        return {"name": cur.config.name, "evaluations": len(cur.history),
                "num_mastered": [[h["step"], h["num_mastered"]] for h in cur.history],
                "weights": cur.weights, "boring": cur.history[-1]["boring"] if cur.history else [],
                "random_success": dict(cur.lp.random) if cur.random_measured else None,
                "llm_invalid_json": judge.get("invalid_json"), "llm_fallbacks": judge.get("fallbacks"),
                "refills": cur.refills, "plot": str(self.out / "curriculum.png")}

    # -- the trainer's checkpoint carries the curriculum -------------------------------------------
    def state_dict(self) -> dict:
        return {"curriculum": json.dumps(self.curriculum.state_dict())}

    def load_state_dict(self, state: Mapping) -> None:
        self.curriculum.load_state_dict(json.loads(state["curriculum"]))
        if self.refill is not None:
            self.refill.restore(self)
        # tasks the dataset holds but the saved pool does not (e.g. env=library re-resolved after a refill
        # admitted more tasks to that library) stay out of the pool, as they were in the run being resumed
        self.dataset.set_task_weights({t: self.curriculum.weights.get(t, 0.0) for t in self.dataset.tasks})
        log.info("curriculum resumed: %d evaluations so far, weights %s", len(self.curriculum.history),
                 _fmt(self.curriculum.weights))


def _fmt(values: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{t}: {v:.3f}" for t, v in values.items()) + "}"


def make_judge(config, novelty=None):
    """The interestingness judge ``config`` (:class:`CurriculumConfig`) names; ``novelty``: an
    optional ``(task, mastered) -> score`` (HILP's phi-space distance) for the offline judge."""
    from policies.common.config import ConfigError
    from train.curriculum.interestingness import EmbeddingJudge, LLMJudge

    offline = EmbeddingJudge(config.similarity_threshold, novelty=novelty, novelty_threshold=config.novelty_threshold)
    if config.judge == "embedding":
        return offline
    from llm import LLMClient, LLMConfigError

    try:
        client = LLMClient(timeout_s=config.llm_timeout_s)
    except LLMConfigError as err:
        raise ConfigError("curriculum.judge", config.judge, f"embedding (offline), or llm once configured: {err}") \
            from None
    return LLMJudge(client, offline)


def load_novelty(cc, sim: str, control_mode: str, device: str = "cpu", seeds=None):
    """``curriculum.novelty=hilp``: the judge's novelty score from the HILP checkpoint
    ``cc.hilp_checkpoint`` (:func:`train.hilp.features.hilp_novelty`; goal states from the
    oracle on ``seeds``, default ``train.hilp.features.FEATURE_SEEDS``)."""
    from policies.common.config import ConfigError
    from train.hilp.features import FEATURE_SEEDS, hilp_novelty, load_hilp

    try:
        policy = load_hilp(cc.hilp_checkpoint, device)
    except (ValueError, OSError) as err:
        raise ConfigError("curriculum.hilp_checkpoint", cc.hilp_checkpoint,
                          f"a HILP checkpoint trained on slots ({err})") from None
    log.info("curriculum: HILP novelty from %s (threshold %g)", cc.hilp_checkpoint, cc.novelty_threshold)
    return hilp_novelty(policy, FEATURE_SEEDS if seeds is None else seeds, sim, control_mode)


def build_hook(config, run_dir, tasks: Sequence[str], dataset, make_env: Callable[[str], Callable],
               collect: Callable | None = None, novelty=None) -> CurriculumHook:
    """The hook of a ``curriculum=...`` run (``config``: the :class:`~train.config.RunConfig`);
    ``make_env(task)`` -> an env factory for evaluation; ``collect(tasks)`` -> ``{task: demo
    store}`` (needed with ``curriculum.refill``); ``novelty``: see :func:`make_judge`."""
    from train.evaluate import evaluate

    cc = config.curriculum
    if novelty is None and cc.novelty == "hilp":
        novelty = load_novelty(cc, config.sim.name, config.control_mode, config.device)
    judge = make_judge(cc, novelty) if cc.name == "omni" else None
    curriculum = Curriculum(list(tasks), cc, judge=judge)
    seeds = list(range(cc.eval_seed_start, cc.eval_seed_start + cc.eval_episodes))
    random_seeds = list(range(cc.eval_seed_start, cc.eval_seed_start + cc.random_episodes))

    def success(policy, task_list, seed_list):
        return {t: evaluate(policy, make_env(t), seed_list, progress=False, run_seed=config.seed)["success_rate"]
                for t in task_list}

    def evaluate_policy(policy, task_list):
        return success(policy, task_list, seeds)

    def evaluate_random(task_list):
        return success(RandomPolicy(dataset.action_dim, config.seed), task_list, random_seeds)

    refill = None
    if cc.refill:
        from train.curriculum.refill import Refill, generate_tasks

        library_dir = Path(cc.refill_library or config.library or Path(run_dir) / "library")
        client = None
        if cc.refill_generator == "llm":
            from llm import LLMClient

            client = LLMClient()
        refill = Refill(library_dir, cc.refill_min, cc.refill_count, collect,
                        lambda lib, target, n: generate_tasks(lib, target, n, cc.refill_generator, client))
    return CurriculumHook(curriculum, dataset, evaluate_policy, evaluate_random, run_dir, cc.slice_steps,
                          cc.eval_every, refill=refill)
