"""LLM proposal and code generation (GenSim's two stages), over :mod:`llm`.

Every code prompt carries: the task API reference (derived from the live code, so it cannot
drift), the few library tasks most similar to the proposal (embedding retrieval), and the error
book: recent failures with the gate messages that rejected them. Answers are parsed defensively:
code must come in a fenced ```python block, JSON may be wrapped in prose.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import re

from generation.proposal import Proposal

SYSTEM = ("You write robot manipulation tasks for roboforge, a MuJoCo tabletop suite with a Franka "
          "Panda arm. A task is one short Python class on a declarative API: build a scene, declare "
          "goal predicates; success, reward and the expert oracle derive from the goals.")

RULES = """Rules (a task breaking one is rejected automatically):
- Imports: only `from envs.core import ...`, `from envs.registry import register_task`, `import numpy as np`, `import math`.
- Exactly one class: `@register_task("snake_case_name")` over `class X(Task)`; define `instruction`, `build(self, scene, rng)`, `goals(self)`; optionally `max_episode_steps`, `features`, `oracle_goals(self)`.
- Do not override evaluate/dense_reward/describe; no dunder names, no eval/exec/open/getattr/type(), no numpy file I/O, no printing or module-level code besides constants.
- Objects (names and kinds) must be the same for every seed; randomise colours and positions with `rng` / scene helpers.
- The instruction is a template over task attributes, e.g. "put the {block.color} block in the {zone.color} zone"; it must format fully.
- Goals must not already hold at reset; the oracle (pick-and-place from above, pushing with closed fingers, reaching) must reach them on >= 80% of seeds.
- Keep objects inside the reachable table regions; blocks 0.03-0.05 m, cylinders radius 0.015-0.025 m; leave min_gap >= 0.03 m for the fingers."""


@functools.lru_cache(maxsize=1)
def api_reference() -> str:
    """Signatures and first docstring lines of the scene helpers and goal predicates, the
    colour palette and the regions, read from the code itself."""
    from envs.core.scene import COLORS, REGIONS, Scene

    lines = ["## Scene (argument `scene` of build)"]
    for name, fn in inspect.getmembers(Scene, inspect.isfunction):
        if name.startswith("_") or name == "signature":
            continue
        doc = (inspect.getdoc(fn) or "").split("\n")[0]
        lines.append(f"- scene.{name}{inspect.signature(fn)}".replace("(self, ", "(").replace("(self)", "()") +
                     (f"  # {doc}" if doc else ""))
    lines.append("Objects are ObjectSpec with .name .kind .color .half_size (x, y, z half extents, m) "
                 ".pos (np.array (3,), m; set it in build for fixed placement) .yaw (rad about +z; "
                 "place_randomly(..., yaw_range=...) turns objects). Goal yaws repeat every quarter turn for "
                 "square footprints and every half turn for oblong ones; cylinders have no yaw.")
    lines.append("\n## Goal predicates (from envs.core)")
    for cls in _predicate_classes():
        fields = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(cls) if f.name != "obj")
        doc = " ".join((inspect.getdoc(cls) or "").split())
        lines.append(f"- {cls.__name__}(obj, {fields})  # {doc}")
    lines.append("\n## Colours: " + ", ".join(COLORS))
    lines.append("## Regions (x range, y range in m; robot at the origin, +x away from it, +y to its left): " +
                 "; ".join(f"{k}: x {v[0][0]}-{v[0][1]}, y {v[1][0]}-{v[1][1]}" for k, v in REGIONS.items()))
    return "\n".join(lines)


def _predicate_classes() -> list[type]:
    """Every goal predicate ``envs.core`` exports, module by module (the position/orientation
    predicates, then those on containers and articulated fixtures) in the order each module defines
    them: new vocabulary appears in the prompt without editing this list."""
    import envs.core
    from envs.core import fixture_goals, predicates
    exported = set(envs.core.__all__)
    return [c for module in (predicates, fixture_goals) for c in vars(module).values()
            if isinstance(c, type) and issubclass(c, predicates.Goal) and c is not predicates.Goal
            and c.__module__ == module.__name__ and c.__name__ in exported]


def _default(f) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    return "..."


def prompt_hash(messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def error_book_text(entries: list[dict], limit: int = 6) -> str:
    """The most recent distinct failures, newest first, as prompt text."""
    seen, out = set(), []
    for e in reversed(entries):
        key = (e.get("gate"), (e.get("reason") or "")[:120])
        if key in seen:
            continue
        seen.add(key)
        out.append(f"- [{e.get('gate')}] {e.get('task') or '?'}: {(e.get('reason') or '')[:300]}")
        if len(out) == limit:
            break
    if not out:
        return ""
    return "Past failures (avoid repeating these mistakes):\n" + "\n".join(out)


def _examples_text(examples: dict[str, str]) -> str:
    return "\n\n".join(f"# Example task: {name}\n```python\n{src.strip()}\n```" for name, src in examples.items())


def propose_messages(library_tasks: dict[str, str], errors: str, n_show: int = 40) -> list[dict]:
    """Exploratory proposal: one new task idea, different from the library's."""
    listing = "\n".join(f"- {n}: {i}" for n, i in list(library_tasks.items())[:n_show])
    user = (f"The task library already has these tasks (name: instruction):\n{listing}\n\n"
            f"{errors}\n\nPropose ONE new tabletop task that is clearly different from all of them, "
            "interesting for a robot to learn, and achievable with the goal predicates below.\n\n"
            f"{api_reference()}\n\nAnswer with JSON only: "
            '{"name": "snake_case_name", "description": "what the robot must do and how the scene is set up", '
            '"instruction": "the language instruction"}')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def curriculum_messages(target: str, library_tasks: dict[str, str], max_tasks: int) -> list[dict]:
    """Goal-directed: stepping stones towards ``target``, simplest first, the target last."""
    listing = "\n".join(f"- {n}: {i}" for n, i in library_tasks.items())
    user = (f"Target task: {target}\n\nExisting tasks:\n{listing}\n\n"
            f"Propose a curriculum of at most {max_tasks} tasks that teaches the target: simpler "
            "stepping stones first (fewer objects, one skill at a time), each building on the previous, "
            "and the target itself LAST. Do not repeat existing tasks.\n\n"
            f"{api_reference()}\n\nAnswer with JSON only: "
            '{"tasks": [{"name": "snake_case_name", "description": "...", "instruction": "..."}, ...]}')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def code_messages(proposal: Proposal, examples: dict[str, str], errors: str) -> list[dict]:
    """Stage two: write the task program for ``proposal``."""
    user = (f"{api_reference()}\n\n{RULES}\n\n{_examples_text(examples)}\n\n{errors}\n\n"
            f"Write the task `{proposal.name}`: {proposal.description}\n"
            + (f"Instruction (template): {proposal.instruction}\n" if proposal.instruction else "")
            + "Answer with the complete program in one ```python code block.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def critic_messages(source: str, neighbours: dict[str, str]) -> list[dict]:
    user = (f"A candidate task passed automatic checks (it runs, and a scripted expert solves it). "
            f"Its nearest existing tasks:\n\n{_examples_text(neighbours)}\n\nCandidate:\n```python\n{source}\n```\n\n"
            "Is the candidate a sensible manipulation task whose instruction matches its goals, and "
            "meaningfully different from the existing tasks above? Answer with JSON only: "
            '{"accept": true or false, "reason": "one sentence"}')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class NoCodeBlock(ValueError):
    """The answer had no fenced Python code block."""


_FENCE = re.compile(r"```[ \t]*(python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


def extract_code(text: str) -> str:
    """The task program from an answer: the fenced block that registers a task (else the longest
    Python-tagged one). An unterminated last fence is accepted (answers cut at max_tokens)."""
    blocks = [(tag, body) for tag, body in _FENCE.findall(text or "")]
    if not blocks:
        raise NoCodeBlock("the LLM answer has no ```python code block")
    with_task = [b for _, b in blocks if "register_task" in b]
    pool = with_task or [b for t, b in blocks if t] or [b for _, b in blocks]
    return max(pool, key=len).strip() + "\n"


def parse_json_object(text: str):
    """The first JSON object in ``text`` (which may be fenced or wrapped in prose), or None."""
    if not text:
        return None
    cleaned = re.sub(r"```(?:json)?", "", text)
    start = cleaned.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(cleaned)):
            ch = cleaned[i]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
                continue
            if ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        return json.loads(cleaned[start:i + 1])
                    except json.JSONDecodeError:
                        break
        start = cleaned.find("{", start + 1)
    return None


def sanitize_name(name: str, fallback: str = "llm_task") -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", str(name or "").lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"{fallback}_{name}".strip("_")
    return name[:48]


def proposal_from_json(obj, origin: str = "llm") -> Proposal | None:
    if not isinstance(obj, dict) or not obj.get("description"):
        return None
    return Proposal(name=sanitize_name(obj.get("name")), description=str(obj["description"])[:1500],
                    instruction=str(obj.get("instruction") or "")[:300], origin=origin)
