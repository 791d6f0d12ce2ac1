"""The ``llm`` sub-goal provider (planner -> composer) against the local scripted OpenAI-compatible server."""
import json

import gymnasium as gym
import numpy as np
import pytest

from llm import LLMClient, LLMConfig, LLMConfigError
from planners import make_oracle
from planners.subgoals.llm_provider import LLMProvider
from planners.subgoals.providers import SubGoalTracker, make_provider
from tests.test_llm_client import StubLLM

PLAN = '["pick up the top block and put it on the base block"]'


def client_for(server) -> LLMClient:
    return LLMClient(LLMConfig(base_url=server.base_url, model="stub-model", timeout_s=5.0, max_retries=0))


def test_llm_subgoals_follow_the_manual_ones_on_stack_blocks():
    composed = ('Here is the plan:\n```json\n'
                '[{"object": "top", "skill": "pick_place", "relation": "on", "reference": "base"}]\n```')
    env = gym.make("roboforge/stack_blocks-v0")
    obs, _ = env.reset(seed=2)
    with StubLLM([PLAN, composed]) as server:
        llm, manual = SubGoalTracker(LLMProvider(client_for(server))), SubGoalTracker(make_provider("manual"))
        llm.reset(env)
        manual.reset(env)
    # the planner saw the instruction and the labelled objects; the composer the sub-tasks
    prompt = server.requests[0]["messages"][-1]["content"]
    assert env.unwrapped.instruction in prompt and '"name": "top"' in prompt
    assert "1. pick up the top block" in server.requests[1]["messages"][-1]["content"]
    oracle = make_oracle(env)
    oracle.reset()
    agree = steps = 0
    while True:
        a, m = llm.update(), manual.update()
        agree += np.linalg.norm(a.pos - m.pos) < 0.02 and a.gripper_open == m.gripper_open
        steps += 1
        obs, _, term, trunc, info = env.step(oracle.act(obs))
        if term or trunc:
            break
    assert info["success"] and agree / steps > 0.97 and llm.fallbacks == 0 and a.source == "llm"


def test_unknown_objects_and_points_outside_the_workspace_are_rejected_with_reasons():
    composed = json.dumps([
        {"object": "lamp", "skill": "pick_place", "relation": "on", "reference": "base"},
        {"object": "top", "skill": "pick_place", "relation": "at", "xyz": [3.0, 0.0, 0.02]},
        {"object": "top", "skill": "pick_place", "relation": "on", "reference": "base"}])
    env = gym.make("roboforge/stack_blocks-v0")
    env.reset(seed=0)
    with StubLLM([PLAN, composed]) as server:
        t = SubGoalTracker(LLMProvider(client_for(server)))
        t.reset(env)
    assert t.fallbacks == 2
    assert "object 'lamp' is not in the scene" in t.rejections[0]
    assert "outside the workspace" in t.rejections[1]
    g = t.update()  # the run goes on with the usable step: grasp the top block
    np.testing.assert_allclose(g.pos, env.unwrapped.scene_state().objects["top"].pos)
    assert g.gripper_open == 0.0 and t.fallbacks == 2


def test_an_unusable_answer_holds_the_tcp_and_is_counted():
    env = gym.make("roboforge/stack_blocks-v0")
    env.reset(seed=0)
    with StubLLM([PLAN, "I cannot help with that."]) as server:
        t = SubGoalTracker(LLMProvider(client_for(server)))
        t.reset(env)
    g = t.update()
    assert t.fallbacks == 2 and "holds no JSON" in t.rejections[0] and g.source == "hold"


def test_no_endpoint_names_the_variables_to_set(monkeypatch):
    for var in ("ROBOFORGE_LLM_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY",
                "ROBOFORGE_LLM_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(LLMConfigError, match="set ROBOFORGE_LLM_BASE_URL and ROBOFORGE_LLM_MODEL"):
        make_provider("llm")
