"""The OMNI curriculum's parts on hand-computed numbers: learning progress, its sampling
distribution, the interestingness judges (the LLM one against a local server) and the state a
checkpoint carries."""
import json

import numpy as np
import pytest

from test_llm_client import StubLLM
from train.config import compose
from train.curriculum.config import CurriculumConfig
from train.curriculum.curriculum import Curriculum
from train.curriculum.interestingness import EmbeddingJudge, LLMJudge, Verdict, judge_messages, parse_verdicts
from train.curriculum.learning_progress import LearningProgress, lp_distribution, normalize_success, reweight


# -- learning progress ----------------------------------------------------------------------------
def test_reweight_and_normalization_by_hand():
    # f(p) = 0.9 p / (0.8 p + 0.1): f(0.1) = 0.09 / 0.18, f(0.5) = 0.45 / 0.5, f(0.05) = 0.045 / 0.14
    assert reweight([0.0, 0.1, 0.5, 1.0, 0.05]) == pytest.approx([0.0, 0.5, 0.9, 1.0, 0.32142857])
    # (0.6 - 0.2) / 0.8 = 0.5; below the random policy -> 0; a random success of 0.9 is capped at 0.75
    assert normalize_success([0.6, 0.1, 1.0], [0.2, 0.2, 0.9]) == pytest.approx([0.5, 0.0, 1.0])


def test_fast_and_slow_emas_and_lp_by_hand():
    lp = LearningProgress(["a", "b"])
    lp.set_random_success({"a": 0.2})
    lp.update({"a": 0.2, "b": 0.0})           # first evaluation: both EMAs start at p (0 here), LP 0
    assert lp.learning_progress() == {"a": 0.0, "b": 0.0}
    lp.update({"a": 0.6})                     # p = 0.5; fast = 0.1 * 0.5 = 0.05; slow = 0.1 * 0.05 = 0.005
    assert lp.fast["a"] == pytest.approx(0.05) and lp.slow["a"] == pytest.approx(0.005)
    # |f(0.05) - f(0.005)| = 0.045/0.14 - 0.0045/0.104
    assert lp.learning_progress()["a"] == pytest.approx(0.32142857 - 0.04326923)
    assert lp.fast["b"] == 0.0 and lp.success == {"a": 0.6, "b": 0.0}   # b not evaluated again: kept
    lp.update({"a": 0.6})                     # fast = 0.05 + 0.1 * (0.5 - 0.05) = 0.095; slow = 0.005 + 0.1 * 0.09
    assert lp.fast["a"] == pytest.approx(0.095) and lp.slow["a"] == pytest.approx(0.014)


def test_forgetting_counts_as_progress_too():
    lp = LearningProgress(["a"])
    lp.update({"a": 1.0})
    lp.update({"a": 0.0})                     # fast 0.9, slow 0.99: |f(0.9) - f(0.99)| > 0
    assert lp.learning_progress()["a"] == pytest.approx(abs(reweight(0.9) - reweight(0.99)))


def test_lp_distribution_by_hand():
    # active: LP > 0 or success > 0 -> tasks 0, 1, 2; z over [0.3, 0.1, 0]: mean 0.1333, std 0.12472
    # z = [1.3363, -0.2673, -1.0690] -> sigmoid [0.79187, 0.43358, 0.25559] / 1.48104
    probs = lp_distribution([0.3, 0.1, 0.0, 0.0], [0.5, 0.0, 0.2, 0.0])
    assert probs == pytest.approx([0.53468, 0.29275, 0.17257, 0.0], abs=1e-5)
    assert lp_distribution([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]) == pytest.approx([1 / 3] * 3)   # nothing learnable: even
    assert lp_distribution([0.2, 0.2], [0.1, 0.0]) == pytest.approx([0.5, 0.5])               # zero spread: no division


def test_bad_success_rates_and_unknown_tasks_are_refused():
    lp = LearningProgress(["a"])
    with pytest.raises(ValueError, match=r"success rate of 'a'=1.5 is invalid; allowed: a number in \[0, 1\]"):
        lp.update({"a": 1.5})
    with pytest.raises(ValueError, match="success rate of 'a'=nan"):
        lp.update({"a": float("nan")})
    with pytest.raises(KeyError, match="'zz' is not in the curriculum's pool"):
        lp.update({"zz": 0.5})
    with pytest.raises(ValueError, match="theta=0.6 is invalid"):
        LearningProgress(["a"], theta=0.6)


# -- the curriculum's weights ---------------------------------------------------------------------
class FixedJudge:
    """Boring: the names in ``boring``; records what it was asked."""

    def __init__(self, boring=()):
        self.boring, self.calls = set(boring), []

    def judge(self, mastered, candidates):
        self.calls.append((sorted(mastered), sorted(candidates)))
        return {t: Verdict(t, t not in self.boring, "test", "fixed") for t in candidates}


DESC = {t: t for t in ("a", "b", "c", "d")}


def test_lp_curriculum_floor_keeps_every_task_alive():
    cur = Curriculum(list(DESC), CurriculumConfig(name="lp", floor=0.01), descriptions=DESC)
    assert cur.weights == pytest.approx({t: 0.25 for t in DESC})
    w = cur.update({"a": 0.5, "b": 0.0, "c": 0.0, "d": 0.0}, step=10)
    # only a is active (success > 0): LP distribution [1, 0, 0, 0] -> floor 0.01 -> / 1.03
    assert w == pytest.approx({"a": 1 / 1.03, "b": 0.01 / 1.03, "c": 0.01 / 1.03, "d": 0.01 / 1.03})
    assert cur.history[-1]["num_mastered"] == 1 and cur.mastered() == ["a"]


def test_omni_multiplies_boring_tasks_and_does_not_judge_mastered_ones():
    judge = FixedJudge(boring={"b"})
    cur = Curriculum(list(DESC), CurriculumConfig(name="omni", floor=0.01, boring_factor=0.001), judge=judge,
                     descriptions=DESC)
    w = cur.update({"a": 0.5, "b": 0.25, "c": 0.25, "d": 0.0}, step=10)
    assert judge.calls == [(["a"], ["b", "c", "d"])]
    # active a, b, c with LP 0 each -> 1/3 each; d floor 0.01; b x 0.001
    raw = {"a": 1 / 3, "b": 1 / 3 * 0.001, "c": 1 / 3, "d": 0.01}
    total = sum(raw.values())
    assert w == pytest.approx({t: v / total for t, v in raw.items()})
    assert cur.verdicts["b"]["interesting"] is False and cur.verdicts["a"]["reason"] == "mastered (not judged)"
    assert cur.history[-1]["boring"] == ["b"]


def test_uniform_stays_even_and_a_pool_without_progress_warns(caplog):
    cur = Curriculum(list(DESC), CurriculumConfig(name="uniform"), descriptions=DESC)
    for step in (10, 20):
        assert cur.update({t: 0.0 for t in DESC}, step) == pytest.approx({t: 0.25 for t in DESC})
    assert "no task shows learning progress or any success after 2 evaluations" in caplog.text


def test_state_round_trip_continues_the_emas():
    cfg = CurriculumConfig(name="omni")
    cur = Curriculum(list(DESC), cfg, judge=FixedJudge(), descriptions=DESC)
    cur.set_random_success({"a": 0.1})
    cur.update({"a": 0.3, "b": 0.0, "c": 0.0, "d": 0.0}, 10)
    state = json.loads(json.dumps(cur.state_dict()))           # what the checkpoint holds
    other = Curriculum(list(DESC), cfg, judge=FixedJudge(), descriptions=DESC)
    other.load_state_dict(state)
    for c in (cur, other):
        c.update({"a": 0.7, "b": 0.1, "c": 0.0, "d": 0.0}, 20)
    assert other.state_dict() == cur.state_dict()
    with pytest.raises(ValueError, match="resume with curriculum=omni"):
        Curriculum(list(DESC), CurriculumConfig(name="lp"), descriptions=DESC).load_state_dict(state)


def test_added_tasks_join_with_the_mean_weight():
    cur = Curriculum(["a", "b"], CurriculumConfig(name="lp"), descriptions={"a": "a", "b": "b"})
    cur.add_tasks(["c"], {"c": "c"})
    assert cur.tasks == ["a", "b", "c"] and cur.weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert cur.lp.learning_progress()["c"] == 0.0


# -- interestingness ------------------------------------------------------------------------------
def fake_embed(texts):
    """Unit vectors by the first word: same first word -> identical, else orthogonal."""
    words = sorted({t.split()[0] for t in texts} | {"stack", "push", "open", "sort"})
    return np.stack([np.eye(len(words))[words.index(t.split()[0])] for t in texts]).astype(np.float32)


def test_embedding_judge_thresholds_and_novelty_hook():
    mastered = {"stack_red": "stack red on blue"}
    cands = {"stack_green": "stack green on red", "push_zone": "push the block"}
    verdicts = EmbeddingJudge(0.85, embed=fake_embed).judge(mastered, cands)
    assert not verdicts["stack_green"].interesting and verdicts["push_zone"].interesting
    assert "similarity 1.00 to mastered 'stack_red'" in verdicts["stack_green"].reason
    assert EmbeddingJudge(embed=fake_embed).judge({}, cands)["stack_green"].reason == "nothing mastered yet"
    # a novelty score (HILP's) above its threshold rescues a text-alike task
    novel = EmbeddingJudge(0.85, novelty=lambda t, m: 0.9 if t == "stack_green" else 0.0, novelty_threshold=0.5,
                           embed=fake_embed).judge(mastered, cands)
    assert novel["stack_green"].interesting and "novelty 0.900 (>= 0.5)" in novel["stack_green"].reason
    # a task the novelty cannot measure (no oracle goal state): the text view decides alone, and says so
    def unmeasurable(task, mastered):
        raise ValueError(f"task {task!r}: the oracle solved none of seeds [1]")

    blind = EmbeddingJudge(0.85, novelty=unmeasurable, embed=fake_embed).judge(mastered, cands)
    assert not blind["stack_green"].interesting and blind["push_zone"].interesting
    assert "novelty unavailable (task 'stack_green': the oracle solved none" in blind["stack_green"].reason


@pytest.mark.slow   # loads the MiniLM model (~25 s on a busy 2-core machine)
def test_embedding_judge_with_minilm_finds_the_near_duplicate():
    verdicts = EmbeddingJudge(0.85).judge(
        {"stack_red": "stack the red block on the blue block"},
        {"stack_green": "stack the green block on the blue block", "open_drawer": "open the top drawer"})
    assert not verdicts["stack_green"].interesting and verdicts["open_drawer"].interesting


def llm_judge(server, timeout_s=2.0):
    from llm import LLMClient, LLMConfig

    client = LLMClient(LLMConfig(base_url=server.base_url, model="stub", timeout_s=timeout_s, max_retries=0))
    return LLMJudge(client, EmbeddingJudge(0.85, embed=fake_embed))


MASTERED = {"stack_red": "stack red on blue"}
CANDS = {"stack_green": "stack green on red", "push_zone": "push the block"}
ANSWER = json.dumps({"verdicts": [{"task": "stack_green", "interesting": False, "reason": "a recoloured stack"},
                                  {"task": "push_zone", "interesting": True, "reason": "a new motion"}]})


def test_llm_judge_prompts_parses_and_caches_per_pair():
    with StubLLM([f"```json\n{ANSWER}\n```"]) as server:
        judge = llm_judge(server)
        v = judge.judge(MASTERED, CANDS)
        again = judge.judge(MASTERED, CANDS)                       # cached: no second request
        judge.judge({}, {"push_zone": "push the block"})           # another mastered set: a new pair
    assert len(server.requests) == 2
    prompt = server.requests[0]["messages"][1]["content"]
    assert "stack_red: stack red on blue" in prompt and "push_zone: push the block" in prompt
    assert not v["stack_green"].interesting and v["stack_green"].reason == "a recoloured stack"
    assert v["push_zone"].interesting and v["push_zone"].judge == "llm" and again == v
    assert len(judge.state_dict()["cache"]) == 3 and judge.invalid_json == 0   # 2 pairs + 1 pair


def test_llm_invalid_json_is_counted_and_treated_as_interesting():
    with StubLLM(["sure! stack_green is boring", json.dumps({"verdicts": [{"task": "stack_green"}]})]) as server:
        judge = llm_judge(server)
        first = judge.judge(MASTERED, CANDS)
        second = judge.judge(MASTERED, CANDS)                      # not cached: asked again, still malformed
    assert judge.invalid_json == 2 and len(server.requests) == 2
    for v in (*first.values(), *second.values()):
        assert v.interesting and v.judge == "llm-invalid-json" and "not valid JSON" in v.reason
    assert judge.state_dict()["cache"] == {}


def test_llm_timeout_falls_back_to_the_offline_judge(caplog):
    with StubLLM([("slow", 2.0, ANSWER)]) as server:
        judge = llm_judge(server, timeout_s=0.3)
        v = judge.judge(MASTERED, CANDS)
    assert judge.fallbacks == 1 and "interestingness LLM timed out" in caplog.text
    assert v["stack_green"].judge == "embedding (llm timed out)" and not v["stack_green"].interesting
    assert "[LLM timed out" in v["stack_green"].reason


def test_parse_verdicts_needs_every_candidate_and_booleans():
    assert parse_verdicts(ANSWER, list(CANDS)) == {"stack_green": (False, "a recoloured stack"),
                                                   "push_zone": (True, "a new motion")}
    assert parse_verdicts(ANSWER, ["stack_green", "push_zone", "other"]) is None
    assert parse_verdicts(ANSWER.replace("false", '"no"'), list(CANDS)) is None
    assert parse_verdicts("[]", list(CANDS)) is None
    assert "Answer {\"verdicts\"" in judge_messages({}, CANDS)[1]["content"]


# -- config -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (["curriculum=omni"], "curriculum='omni' is invalid; allowed: none for a single task"),
    (["curriculum=lp", "env=builtin", "obs_mode=slots", "curriculum.theta=0.7"], "curriculum.theta=0.7 is invalid"),
    (["curriculum=omni", "env=builtin", "obs_mode=slots", "curriculum.judge=gpt"],
     "curriculum.judge='gpt' is invalid; allowed: embedding, llm"),
    (["curriculum=lp", "env=builtin", "obs_mode=slots", "curriculum.eval_seed_start=100010"],
     "curriculum.eval_seed_start=100010 is invalid; allowed: a seed range disjoint"),
    (["curriculum=lp", "env=reach_target", "policy=sac"], "curriculum='lp' is invalid; allowed: none for a single task"),
    (["curriculum=lp", "env=[reach_target,place_in_zone]", "policy=vla", "obs_mode=rgb"],
     "curriculum='lp' is invalid; allowed: none with policy=vla"),
    (["curriculum=omni", "env=builtin", "obs_mode=slots", "curriculum.novelty=hilp"],
     "curriculum.novelty='hilp' is invalid; allowed: hilp only with curriculum.hilp_checkpoint=RUN_DIR"),
    (["curriculum=lp", "env=builtin", "obs_mode=slots", "curriculum.novelty=hilp", "curriculum.hilp_checkpoint=x"],
     "curriculum.novelty='hilp' is invalid; allowed: none unless curriculum=omni"),
    (["curriculum=omni", "env=builtin", "obs_mode=slots", "curriculum.novelty=phi"],
     "curriculum.novelty='phi' is invalid; allowed: none, hilp"),
])
def test_bad_curriculum_config_names_the_key(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compose(*overrides)


def test_llm_endpoint_that_cannot_be_reached_falls_back_to_the_offline_judge(caplog):
    import socket

    from llm import LLMClient, LLMConfig

    with socket.socket() as s:   # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LLMClient(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="stub", timeout_s=2.0, max_retries=0))
    judge = LLMJudge(client, EmbeddingJudge(0.85, embed=fake_embed))
    v = judge.judge(MASTERED, CANDS)
    assert judge.fallbacks == 1 and "interestingness LLM failed" in caplog.text
    assert v["stack_green"].judge == "embedding (llm failed)" and not v["stack_green"].interesting
    assert v["push_zone"].interesting


def test_an_empty_or_unloadable_library_is_one_line_before_a_curriculum_run(tmp_path):
    import importlib.util
    from pathlib import Path

    from generation.library import Library
    from train.run_checks import preflight

    # train.py's own pre-flight (the script's name clashes with the train package)
    spec = importlib.util.spec_from_file_location("train_script", Path(__file__).parents[1] / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    check = script.check_runnable
    empty = Library(tmp_path / "empty")
    empty.root.mkdir()
    (empty.root / "manifest.json").write_text(json.dumps({"version": 1, "tasks": {}}))   # every task removed
    args = ["env=library", "obs_mode=slots", "curriculum=omni"]
    assert "env='library' is invalid; allowed: a set with at least one task" in \
        preflight([*args, f"library={empty.root}"], check)
    broken = Library(tmp_path / "broken")
    broken.root.mkdir()
    (broken.root / "manifest.json").write_text("{not json")
    assert "library=" in preflight([*args, f"library={broken.root}"], check)
    assert "is invalid; allowed: a loadable task library" in preflight([*args, f"library={broken.root}"], check)
