"""The curriculum driving training: the trainer's slice hook moves the dataset's task weights,
the curriculum state rides the checkpoints and a resumed run continues it, the closed loop
grows the pool; then ``train.py curriculum=...`` as a user runs it (slow)."""
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from envs.core import observation as ob
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from tests.test_multitask_dataset import store
from tests.test_train_cli import TINY_POLICY, resume_with, run_cli
from train.curriculum.config import CurriculumConfig
from train.curriculum.curriculum import Curriculum
from train.curriculum.interestingness import Verdict
from train.curriculum.refill import Refill, hardest_target
from train.curriculum.runner import CurriculumHook, RandomPolicy
from train.datasets.multitask import MultiTaskDataset
from train.imitation import checkpoint_dir, train_imitation

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(16, 32), n_groups=4, diffusion_step_embed_dim=16,
            num_inference_steps=2, action_dim=7, obs_dim=ob.SLOTS_DIM, obs_key="slots")
SUCCESS = {4: {"a": 0.0, "b": 0.0, "c": 0.0}, 8: {"a": 0.5, "b": 0.0, "c": 0.0},
           12: {"a": 0.5, "b": 0.2, "c": 0.0}, 16: {"a": 0.6, "b": 0.4, "c": 0.0}}


class ScriptedEval:
    """Success rates by step (what the hook's per-task evaluation would measure)."""

    def __init__(self):
        self.calls, self.random_calls, self.step = [], 0, 0

    def __call__(self, policy, tasks):
        assert isinstance(policy, DiffusionPolicy) and not policy.training   # the EMA copy, in eval mode
        self.calls.append(list(tasks))
        return {t: SUCCESS[self.step].get(t, 0.0) for t in tasks}

    def random(self, tasks):
        self.random_calls += 1
        return {t: 0.0 for t in tasks}


class StepTrackingHook(CurriculumHook):
    def __call__(self, step, policy):
        self.evaluate.step = step
        return super().__call__(step, policy)


def setup(tmp_path, name="lp", refill=None, judge=None):
    data = MultiTaskDataset([store(tmp_path, t, 2, T=12) for t in "abc"], 2, 8)
    policy = DiffusionPolicy(DiffusionConfig(**TINY))
    policy.fit_normalizer(data.stacked_obs("slots"), data.stacked_actions())
    cfg = CurriculumConfig(name=name, slice_steps=2, eval_every=2)
    cur = Curriculum(list("abc"), cfg, judge=judge, descriptions={t: t for t in "abc"})
    ev = ScriptedEval()
    hook = StepTrackingHook(cur, data, ev, ev.random, tmp_path / "run", cfg.slice_steps, cfg.eval_every, refill=refill)
    return data, policy, hook, ev


def train(tmp_path, data, policy, hook, steps):
    return train_imitation(policy, data, tmp_path / "run", steps, batch_size=8, warmup_steps=0, checkpoint_every=100,
                           log_every=2, progress=False, sampler=data.sampler(num_samples=2 * 8, seed=0), hook=hook)


def test_slices_evaluate_every_k_and_move_the_weights_then_a_resume_continues(tmp_path):
    data, policy, hook, ev = setup(tmp_path)
    train(tmp_path, data, policy, hook, 8)
    assert [h["step"] for h in hook.curriculum.history] == [4, 8] and ev.random_calls == 1
    assert data.task_weights == pytest.approx({"a": 1 / 1.02, "b": 0.01 / 1.02, "c": 0.01 / 1.02})
    out = tmp_path / "run" / "curriculum"
    assert (out / "curriculum.png").stat().st_size > 1000
    saved = json.loads((out / "state.json").read_text())
    assert saved["lp"]["success"]["a"] == 0.5 and saved["random_measured"]
    assert "hook" in torch.load(checkpoint_dir(tmp_path / "run") / "trainer_state.pt", weights_only=False)

    # a fresh process resumes: the checkpoint's curriculum comes back (weights, EMAs, history)
    data2, policy2, hook2, ev2 = setup(tmp_path)
    train(tmp_path, data2, policy2, hook2, 16)
    steps = [h["step"] for h in hook2.curriculum.history]
    assert steps == [4, 8, 12, 16] and ev2.random_calls == 0 and len(ev2.calls) == 2
    reference = Curriculum(list("abc"), CurriculumConfig(name="lp"), descriptions={t: t for t in "abc"})
    reference.set_random_success({t: 0.0 for t in "abc"})
    for step in (4, 8, 12, 16):
        reference.update(SUCCESS[step], step)
    for key in ("fast", "slow", "success"):
        assert getattr(hook2.curriculum.lp, key) == pytest.approx(getattr(reference.lp, key))
    assert data2.task_weights == pytest.approx(reference.weights)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(tmp_path / "run" / "tb"))
    tb.Reload()
    assert {"curriculum/weight/a", "curriculum/lp/b", "curriculum/success/c",
            "curriculum/num_mastered"} <= set(tb.Tags()["scalars"])


def test_refill_grows_the_pool_when_too_few_tasks_are_learnable(tmp_path, monkeypatch):
    asked = []

    def generate(library, target, count):
        asked.append((target, count))
        return ["d", "e"], {"runs": []}

    class BoringE:
        def judge(self, mastered, candidates):
            return {t: Verdict(t, t != "e", "test", "fixed") for t in candidates}

    refill = Refill(tmp_path / "lib", min_live=2, count=3, generate=generate,
                    collect=lambda tasks: {t: store(tmp_path, t, 2, T=12) for t in tasks})
    data, policy, hook, ev = setup(tmp_path, name="omni", refill=refill, judge=BoringE())
    # the synthetic tasks are not registered: their descriptions are their names
    monkeypatch.setattr("train.curriculum.interestingness.task_descriptions", lambda tasks: {t: t for t in tasks})
    monkeypatch.setattr("train.curriculum.curriculum.task_descriptions", lambda tasks: {t: t for t in tasks})
    train(tmp_path, data, policy, hook, 8)
    # after the 2nd evaluation only 'a' had success (and it is mastered): 0 live < 2 -> refill toward b
    assert asked == [("b", 3)]
    cur = hook.curriculum
    assert cur.tasks == ["a", "b", "c", "d"] and data.tasks == ["a", "b", "c", "d"]
    assert cur.refills[0]["joined"] == ["d"] and cur.refills[0]["boring"] == ["e"]
    assert cur.verdicts["e"]["interesting"] is False and sum(cur.weights.values()) == pytest.approx(1.0)
    drawn = {int(b["task_id"].max()) for b in DataLoader(data, batch_size=64, sampler=data.sampler(512, seed=1))}
    assert 3 in drawn   # windows of the new task are sampled
    assert hardest_target(cur) in ("b", "c", "d")


def test_a_failing_generator_is_recorded_and_training_goes_on(tmp_path, caplog):
    def generate(library, target, count):
        raise RuntimeError("sandbox unavailable")

    refill = Refill(tmp_path / "lib", min_live=5, count=1, generate=generate, collect=lambda tasks: {})
    data, policy, hook, ev = setup(tmp_path, refill=refill)
    hook.eval_every = 1
    hook.evaluate.step = 4
    for step in (4, 8):   # two evaluations: the second asks for a refill
        hook.evaluate.step = step
        CurriculumHook.__call__(hook, step, policy.eval())
    assert hook.curriculum.refills[0]["error"] == "RuntimeError: sandbox unavailable"
    assert hook.curriculum.tasks == ["a", "b", "c"] and "generation failed" in caplog.text


def test_random_policy_is_batched_and_seeded():
    p = RandomPolicy(7)
    p.reset(noise_seeds=[1, 2])
    a = p.select_action(np.zeros((2, 5)))
    p.reset(noise_seeds=[1, 2])
    assert a.shape == (2, 7) and np.abs(a).max() <= 1 and np.array_equal(a, p.select_action(np.zeros((2, 5))))


# -- train.py as a user runs it -------------------------------------------------------------------
QUICK = ["obs_mode=slots", "data.num_demos=2", "train.checkpoint_every=100", "train.log_every=2", "train.batch_size=16",
         "eval.episodes=1", "eval.num_videos=0", "eval.max_episode_steps=12", "progress=false", "train.num_threads=1",
         "policy.num_inference_steps=2", "curriculum.slice_steps=2", "curriculum.eval_every=2",
         "curriculum.eval_episodes=2", "curriculum.random_episodes=2", *TINY_POLICY]


@pytest.mark.slow
def test_train_py_curriculum_omni_runs_and_resumes(tmp_path):
    args = ["env=[reach_target,push_to_zone]", "curriculum=omni", "train.steps=4", f"data.store_root={tmp_path}/demos",
            f"hydra.run.dir={tmp_path}/run", *QUICK]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["curriculum"]["name"] == "omni" and metrics["curriculum"]["evaluations"] == 1
    assert (run / "curriculum" / "curriculum.png").exists() and (run / "curriculum" / "verdicts.jsonl").exists()
    # continue the same run to a larger budget: the saved curriculum goes on from its state
    res = resume_with(run, **{"train.steps": 8})
    assert res.returncode == 0, res.stderr[-3000:]
    state = json.loads((run / "curriculum" / "state.json").read_text())
    assert [h["step"] for h in state["history"]] == [4, 8] and "curriculum resumed" in res.stderr + res.stdout
