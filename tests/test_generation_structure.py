"""Structural novelty: the goal graph + scene signature beside the text embedding (issue 19)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import envs  # noqa: F401  (registers the built-ins)
from envs.registry import get_task
from generation.embedding import NoveltyIndex, builtin_sources, builtin_structures
from generation.gates import GateConfig, GateOutcome, validate
from generation.structure import describe_task, structure, task_structure

COPY = Path(__file__).parent / "generation_structure" / "cube_onto_cube.py"


def _task_class(source: str, monkeypatch):
    """The program's Task class, exec'd here without registering it anywhere."""
    import envs.registry

    found = []
    monkeypatch.setattr(envs.registry, "register_task", lambda name: (lambda cls: found.append(cls) or cls))
    exec(compile(source, "<candidate>", "exec"), {"__name__": "candidate"})
    return found[0]


def _fake_sandbox(monkeypatch):
    """Runtime + oracle outcomes as the sandbox would give them (the runtime stage's per-seed
    structure descriptions computed here, by the same function), without starting a process."""
    def sandboxed(source, name, config):
        descs = describe_task(_task_class(source, monkeypatch), [11, 12, 13, 14, 15])
        return [GateOutcome("runtime", True, "", {"seeds": [], "isolation": "test", "structure": descs}),
                GateOutcome("oracle", True, "", {"success_rate": 1.0, "seeds": [], "episodes": []})]
    return sandboxed


def test_no_two_builtins_are_structural_duplicates():
    structures = builtin_structures()
    assert len(structures) == len(builtin_sources()) >= 17
    dups = [(a, b) for a, b in itertools.permutations(structures, 2) if structures[a].duplicates(structures[b])]
    assert dups == []
    for name, s in structures.items():   # a task is its own duplicate, at similarity 1
        assert s.duplicates(s) and s.similarity(s) == 1.0, name


def test_renamed_reworded_copy_of_stack_blocks_is_rejected_naming_it(monkeypatch):
    source = COPY.read_text()
    verdict = validate(source, taken_names=set(), novelty=NoveltyIndex.with_builtins(),
                       config=GateConfig(), sandboxed=_fake_sandbox(monkeypatch))
    assert not verdict.admitted and verdict.gate == "novelty"
    assert verdict.reason.startswith("structural duplicate of 'stack_blocks'"), verdict.reason
    nov = verdict.summary()["novelty"]
    # the words alone would have let it through: the case
    assert nov["cosine"] < GateConfig().novelty_threshold
    assert nov["structural_nearest"] == "stack_blocks" and nov["structural_duplicate"]
    assert nov["structural_similarity"] == 1.0
    assert "cosine" in verdict.reason and "stack_blocks" in verdict.reason


NOVEL = '''"""Stand a small cylinder on a large block, with a zone on the table that nothing goes into."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("cyl_on_big_block_by_zone")
class CylOnBigBlockByZone(Task):
    instruction = "stand the {item.color} cylinder on the large {base.color} block"
    max_episode_steps = 200

    def build(self, scene, rng):
        a, b, c = scene.distinct_colors(3)
        self.zone = scene.add_zone(c, size=0.1, name="zone")
        self.base = scene.add_block(b, size=0.05, name="base")
        self.item = scene.add_cylinder(a, radius=0.018, height=0.045, name="item")
        scene.place_randomly([self.zone, self.base, self.item], min_gap=0.04)

    def goals(self):
        return [On(self.item, self.base)]
'''


def test_an_admitted_task_is_told_its_nearest_task_and_both_scores(monkeypatch):
    verdict = validate(NOVEL, taken_names=set(), novelty=NoveltyIndex.with_builtins(),
                       config=GateConfig(), sandboxed=_fake_sandbox(monkeypatch))
    assert verdict.admitted, verdict.reason
    nov = verdict.summary()["novelty"]
    assert nov["nearest"] and 0.0 < nov["cosine"] < 0.94
    assert nov["structural_nearest"] and 0.0 < nov["structural_similarity"] < 1.0
    assert not nov["structural_duplicate"]
    assert verdict.reason.startswith("novel: nearest by text ")
    assert repr(nov["nearest"]) in verdict.reason and repr(nov["structural_nearest"]) in verdict.reason


def _sig(cls_source: str, monkeypatch, seeds=(0, 1, 2, 3)):
    return structure(describe_task(_task_class(cls_source, monkeypatch), list(seeds)))


TEMPLATE = '''
from envs.core import On, InZone, Task, AtPose
from envs.registry import register_task

@register_task("t")
class T(Task):
    instruction = "x"
    def build(self, scene, rng):
        c = scene.distinct_colors(3)
        self.{a} = scene.add_block({ca}, size={sa}, name="{a}")
        self.{b} = scene.add_block({cb}, size={sb}, name="{b}")
        scene.place_randomly([self.{a}, self.{b}], min_gap=0.04)
    def goals(self):
        return [On(self.{top}, self.{base})]
'''


def _stack(monkeypatch, a="a", b="b", ca="c[0]", cb="c[1]", sa=0.04, sb=0.04, top="a", base="b"):
    return _sig(TEMPLATE.format(a=a, b=b, ca=ca, cb=cb, sa=sa, sb=sb, top=top, base=base), monkeypatch)


def test_signature_ignores_names_and_sees_roles_sizes_and_colour_roles(monkeypatch):
    ref = _stack(monkeypatch)
    assert _stack(monkeypatch, a="apple", b="pear", top="apple", base="pear").hashes == ref.hashes   # names stripped
    assert ref.hashes == task_structure(get_task("stack_blocks")).hashes
    small_on_large = _stack(monkeypatch, sa=0.035, sb=0.05)
    large_on_small = _stack(monkeypatch, sa=0.035, sb=0.05, top="b", base="a")
    assert small_on_large.hashes != large_on_small.hashes          # which one is on top is structure
    assert small_on_large.hashes != ref.hashes                     # size classes
    fixed = _stack(monkeypatch, ca='"red"', cb='"blue"')
    assert fixed.hashes != ref.hashes                              # a named colour is a role
    assert _stack(monkeypatch, ca='"green"', cb='"yellow"').hashes == fixed.hashes   # which colour is not
    matching = _stack(monkeypatch, cb="c[0]")
    assert matching.hashes != ref.hashes                           # "the block of the same colour"


def test_builtin_structures_tell_apart_start_stacks_swaps_and_named_colours():
    s = builtin_structures()
    assert not s["unstack"].duplicates(s["place_in_zone"])   # starts stacked
    assert not s["stack_ordered"].duplicates(s["stack_tower"])   # colours named in the instruction
    assert s["place_beside"].graphs >= 2                    # its direction is drawn per seed
    swap = describe_task(get_task("swap_blocks"), [0])[0]
    assert [link[0] for g in swap["goals"] for link in g["links"]].count("xy:start_of") == 2


@pytest.mark.slow
def test_copy_of_stack_blocks_through_the_real_gates(tmp_path):
    from generation.pipeline import build_index, taken_names
    from generation.library import Library

    index = build_index(Library(tmp_path / "lib"))
    verdict = validate(COPY.read_text(), taken_names=taken_names(index), novelty=index, config=GateConfig())
    assert verdict.gate == "novelty", verdict.reason
    assert verdict.reason.startswith("structural duplicate of 'stack_blocks'")
    assert np.isfinite(verdict.summary()["novelty"]["cosine"])


def _draft_sig(draft, monkeypatch):
    from generation.codegen_procedural import render

    return _sig(render(draft), monkeypatch, seeds=(0, 1, 2))


def test_composed_drafts_are_distinct_structures_and_mirrors_are_not(monkeypatch):
    from generation.compose import SUBTASKS, compose, composed_space

    space = composed_space()
    assert len(space) >= 300 and len({d.name for d in space}) == len(space)
    sample = [space[i] for i in np.random.default_rng(0).choice(len(space), 24, replace=False)]
    sigs = [_draft_sig(d, monkeypatch) for d in sample]
    assert len({s.hashes for s in sigs}) == len(sample)
    a, b = ("stack", SUBTASKS["stack"][1][1]), ("beside", SUBTASKS["beside"][1][0])
    # the left/right mirror and the goal order are not structure; a distractor is
    assert _draft_sig(compose(a, b, None), monkeypatch).hashes == _draft_sig(compose(b, a, None), monkeypatch).hashes
    assert _draft_sig(compose(a, b, "block"), monkeypatch).hashes != _draft_sig(compose(a, b, None), monkeypatch).hashes
