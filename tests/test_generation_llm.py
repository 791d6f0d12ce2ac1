"""The LLM generator end to end against a scripted OpenAI-compatible server on 127.0.0.1:
good code is admitted; an answer without a code block, malformed code and code that crashes are
rejected at their gates; a 429 is retried; a slow answer past the timeout fails the attempt and
the run goes on; the model's failures land in the error book and the next prompt carries them
(a failed call does not); a dead endpoint says why and exits non-zero."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation import cli
from generation.library import Library
from test_llm_client import StubLLM

GOOD = '''"""Drop a cylinder into a bowl at the far edge, then set a block in front of the bowl."""
from envs.core import InZone, Near, Task
from envs.registry import register_task


@register_task("bowl_then_neighbour")
class BowlThenNeighbour(Task):
    instruction = ("drop the {cyl.color} cylinder into the {bowl.color} bowl, then set the "
                   "{block.color} block down in front of the bowl")
    features = frozenset({"bowl"})
    max_episode_steps = 300

    def build(self, scene, rng):
        cb, cc, ck = scene.distinct_colors(3)
        self.bowl = scene.add_bowl(cb, radius=0.06, height=0.03, name="bowl")
        self.cyl = scene.add_cylinder(cc, radius=0.018, height=0.045, name="cyl")
        self.block = scene.add_block(ck, size=0.04, name="block")
        self.bowl.pos[:] = (0.6, 0.0, self.bowl.half_size[2])
        scene.place_randomly([self.cyl, self.block], region="near", min_gap=0.04)

    def goals(self):
        return [InZone(self.cyl, self.bowl, margin=0.015),
                Near(self.block, self.bowl, direction="front", gap=0.1)]
'''
SYNTAX_ERROR = GOOD.replace("def goals(self):", "def goals(self)").replace("bowl_then_neighbour", "broken_syntax")
CRASHES = GOOD.replace("bowl_then_neighbour", "crashes_at_build").replace(
    "cb, cc, ck = scene.distinct_colors(3)", "cb, cc, ck = scene.distinct_colors(30)")
NEAR_COPY = GOOD.replace("bowl_then_neighbour", "bowl_then_block_in_front").replace("BowlThenNeighbour", "Copy")


def fenced(code: str) -> str:
    return f"Here is the task:\n```python\n{code}```\nIt uses InZone and Near."


def proposal(name: str) -> str:
    return json.dumps({"name": name, "description": "drop a cylinder in a bowl, then a block in front",
                       "instruction": "drop the cylinder into the bowl"})


def router(queues: dict[str, list]):
    """Pick the scripted reply by which stage is asking."""
    def reply(body):
        user = body["messages"][-1]["content"]
        key = ("critic" if "passed automatic checks" in user else "curriculum" if "Propose a curriculum" in user
               else "propose" if "Propose ONE new" in user else "code")
        return queues[key].pop(0)
    return reply


@pytest.fixture
def llm_env(monkeypatch):
    def configure(server, timeout=2.0):
        monkeypatch.setenv("ROBOFORGE_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("ROBOFORGE_LLM_MODEL", "stub-coder")
        monkeypatch.setenv("ROBOFORGE_LLM_API_KEY", "sk-never-in-the-sandbox")
        monkeypatch.setenv("ROBOFORGE_LLM_TIMEOUT", str(timeout))
        monkeypatch.setenv("ROBOFORGE_LLM_MAX_RETRIES", "1")
    return configure


def _code_prompts(server) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.requests if "Write the task" in r["messages"][-1]["content"]]


def test_exploratory_llm_generation_end_to_end(tmp_path, llm_env, capsys):
    queues = {
        "propose": [proposal("bowl_then_neighbour"),
                    ("status", 429, {"Retry-After": "0"}, {"error": {"message": "slow down"}}), proposal("no_code"),
                    proposal("broken_syntax"),
                    ("slow", 2.5, proposal("late")), ("slow", 2.5, proposal("late")),
                    proposal("crashes_at_build")],
        "code": [fenced(GOOD), "I would put the cylinder in the bowl first, then the block.",
                 fenced(SYNTAX_ERROR), fenced(CRASHES)],
    }
    lib = tmp_path / "lib"
    with StubLLM([router(queues)]) as server:
        llm_env(server, timeout=1.0)
        code = cli.main(["generate", "--generator", "llm", "--count", "5", "--library", str(lib), "--json",
                         "--no-progress"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert summary["admitted"] == ["bowl_then_neighbour"]
    assert summary["rejected"] == {"static": 2, "llm": 1, "runtime": 1}
    assert summary["tokens"]["total_tokens"] > 0

    prompts = _code_prompts(server)
    assert len(prompts) == 4
    assert all("## Goal predicates" in p and "# Example task:" in p for p in prompts)  # API ref + retrieval
    assert "no ```python code block" in prompts[2]            # the error book feeds the next prompt
    assert "syntax error" in prompts[3]
    later_proposals = [r["messages"][-1]["content"] for r in server.requests[2:]
                       if "Propose ONE new" in r["messages"][-1]["content"]]
    assert "bowl_then_neighbour" in later_proposals[-1]        # bootstrapping from the grown library

    library = Library(lib)
    book = library.journal("error_book")  # the model's mistakes only; the timed-out call is not one
    assert [e["gate"] for e in book] == ["static", "static", "runtime"]
    assert "SceneError" in book[2]["reason"]
    timed_out = [a for a in library.journal("attempts") if a["outcome"] == "llm"]
    assert len(timed_out) == 1 and "within 1 s" in timed_out[0]["reason"]
    assert summary["llm_answered"] < summary["llm_calls"] and "within 1 s" in summary["llm_failures"][0]
    meta = library.meta("bowl_then_neighbour")
    assert meta["generator"] == "llm" and meta["prompt_hash"] and meta["llm_tokens"]["total_tokens"] > 0

    assert cli.main(["report", "--library", str(lib), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["funnel"]["static"] == {"reached": 4, "passed": 2, "rate": 0.5}
    assert report["funnel"]["runtime"]["passed"] == 1 and report["llm_call_failures"] == 1
    assert report["llm_tokens"] == summary["tokens"]


def test_goal_directed_llm_curriculum(tmp_path, llm_env, capsys):
    plan = {"tasks": [{"name": "bowl_then_neighbour", "description": "a stepping stone"},
                      {"name": "bowl_then_block_in_front", "description": "the target"}]}
    queues = {"curriculum": [f"Sure:\n```json\n{json.dumps(plan)}\n```"], "code": [fenced(GOOD), fenced(NEAR_COPY)]}
    with StubLLM([router(queues)]) as server:
        llm_env(server)
        code = cli.main(["generate", "--generator", "llm", "--mode", "goal", "--target",
                         "drop a cylinder in a bowl and put a block in front of it", "--count", "3",
                         "--library", str(tmp_path / "lib"), "--json", "--no-progress"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["plan"] == ["bowl_then_neighbour", "bowl_then_block_in_front"]
    assert summary["admitted"] == ["bowl_then_neighbour"]
    assert summary["rejected"] == {"novelty": 1}  # the copy meets the stone admitted a moment before
    target_prompt = server.requests[0]["messages"][-1]["content"]
    assert "Target task: drop a cylinder in a bowl" in target_prompt


def test_critic_gate_can_veto(tmp_path, llm_env, capsys):
    task = tmp_path / "bowl.py"
    task.write_text(GOOD)
    verdict = json.dumps({"accept": False, "reason": "the same as place_in_bowl with an extra block"})
    with StubLLM([verdict]) as server:
        llm_env(server)
        code = cli.main(["admit", str(task), "--library", str(tmp_path / "lib"), "--critic", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == cli.EXIT_REJECTED and out["gate"] == "critic" and "place_in_bowl" in out["reason"]
    assert "Candidate:" in server.requests[0]["messages"][-1]["content"]
    assert not Path(tmp_path / "lib" / "manifest.json").exists()


def test_sandbox_gets_no_api_key(monkeypatch, tmp_path):
    from generation.sandbox import _child_env

    monkeypatch.setenv("ROBOFORGE_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    assert "sk-secret" not in json.dumps(_child_env(tmp_path))


def test_a_dead_endpoint_says_why_exits_nonzero_and_stays_out_of_the_error_book(tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ROBOFORGE_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("ROBOFORGE_LLM_MODEL", "stub-coder")
    monkeypatch.setenv("ROBOFORGE_LLM_MAX_RETRIES", "0")
    lib = tmp_path / "lib"
    code = cli.main(["generate", "--generator", "llm", "--count", "2", "--library", str(lib), "--no-progress"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_UNREACHABLE
    assert f"error: no attempt reached the LLM endpoint (cannot reach http://127.0.0.1:{port}/v1" in err
    assert "LLM calls failed: 2 of 2" in err
    library = Library(lib)
    assert library.journal("error_book") == []
    assert [a["outcome"] for a in library.journal("attempts")] == ["llm", "llm"]
