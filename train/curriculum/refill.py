"""The closed loop (``curriculum.refill=true``): when fewer than ``refill_min`` tasks of the pool
are learnable-and-interesting, ask the task generator for new ones, goal-directed toward the
hardest unmastered interesting task, and let those that pass its gates (static, runtime, oracle,
novelty: admitted to the library) *and* the curriculum's interestingness judge join the pool
(their demos collected, the dataset grown, the curriculum's weights extended).

The generator is ``generation`` (procedural offline by default, the LLM with
``curriculum.refill_generator=llm``); tasks are admitted to ``curriculum.refill_library``
(default: ``library=`` when given, else ``<run_dir>/library``). Each refill is recorded in the
curriculum's state (``refills``: step, target, the tasks generated, joined and judged boring, the
generator's summary), so a resumed run re-adds the same tasks.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

# (library dir, target task or None, attempts) -> (admitted task names, the generator's summary dict)
GenerateFn = Callable[[Path, "str | None", int], "tuple[list[str], dict]"]
# task names -> {task: demo store}
CollectFn = Callable[[Sequence[str]], Mapping[str, object]]


def hardest_target(curriculum) -> str | None:
    """The unmastered, not-boring task with the lowest success (then the lowest LP): what the
    generator should build stepping stones toward. None when every task is mastered or boring."""
    lp = curriculum.lp.learning_progress()
    mastered = set(curriculum.mastered())
    open_tasks = [t for t in curriculum.tasks
                  if t not in mastered and curriculum.verdicts.get(t, {}).get("interesting", True)]
    if not open_tasks:
        return None
    return min(open_tasks, key=lambda t: (curriculum.lp.success[t], lp[t]))


def generate_tasks(library_dir: Path, target: str | None, count: int, generator: str = "procedural",
                   client=None) -> tuple[list[str], dict]:
    """``count`` generation attempts into ``library_dir``: stepping stones toward ``target``
    (``mode=goal``), and exploratory ones when the target yields none; the admitted tasks are
    registered (``envs.load_library``). Returns their names and the generator's summary."""
    import envs
    from generation.library import Library
    from generation.pipeline import generate

    library = Library(library_dir)
    summaries, admitted = [], []
    modes = (["goal"] if target else []) + ["exploratory"]
    for mode in modes:
        try:
            summary = generate(library, generator, count=count, mode=mode, target=target if mode == "goal" else None,
                               client=client, progress=False)
        except (ValueError, KeyError) as err:   # a target the generator cannot decompose
            log.info("refill: %s generation toward %s failed (%s)", mode, target, err)
            continue
        summaries.append(summary.as_dict())
        admitted += summary.admitted
        if admitted:
            break
    if admitted:
        envs.load_library(library_dir)
    return admitted, {"runs": summaries}


class Refill:
    """Called by the curriculum hook after each evaluation; ``collect(tasks)`` gets the new
    tasks' demos (the run's demo settings); ``generate`` defaults to :func:`generate_tasks`."""

    def __init__(self, library_dir, min_live: int, count: int, collect: CollectFn, generate: GenerateFn | None = None):
        self.library_dir, self.min_live, self.count = Path(library_dir), int(min_live), int(count)
        self.collect = collect
        self.generate = generate or (lambda lib, target, n: generate_tasks(lib, target, n))

    def __call__(self, hook, step: int) -> None:
        cur = hook.curriculum
        if len(cur.history) < 2:   # learning progress needs two evaluations
            return
        live = cur.learnable_and_interesting()
        if len(live) >= self.min_live:
            return
        target = hardest_target(cur)
        log.info("refill @%d: %d learnable-and-interesting task(s) %s < %d; generating %d toward %s", step, len(live),
                 live, self.min_live, self.count, target)
        try:
            admitted, summary = self.generate(self.library_dir, target, self.count)
        except Exception as err:   # a failed refill must not cost the run: record it, train on
            log.warning("refill @%d: generation failed (%s: %s); the pool stays as it is", step, type(err).__name__, err)
            cur.refills.append({"step": int(step), "target": target, "live": live, "admitted": [], "joined": [],
                                "boring": [], "library": str(self.library_dir), "error": f"{type(err).__name__}: {err}"})
            return
        new = [t for t in admitted if t not in cur.tasks]
        boring: list[str] = []
        if new and cur.judge is not None:   # the curriculum's own gate: interesting given what is mastered
            from train.curriculum.interestingness import task_descriptions

            descriptions = task_descriptions(new)
            verdicts = cur.judge.judge({t: cur.descriptions[t] for t in cur.mastered()}, descriptions)
            for t, v in verdicts.items():
                log.info("refill @%d: generated %s is %s (%s): %s", step, t,
                         "interesting" if v.interesting else "BORING", v.judge, v.reason)
                cur.verdicts[t] = {**v.as_dict(), "step": int(step)}
            boring = [t for t in new if not verdicts[t].interesting]
        joined = [t for t in new if t not in boring]
        error = None
        if joined:
            try:
                self._join(hook, joined)
            except Exception as err:   # e.g. no successful oracle demo of a new task: it stays out of the pool
                error = f"{type(err).__name__}: {err}"
                log.warning("refill @%d: could not add %s to the dataset (%s); the pool stays as it is", step, joined,
                            error)
                joined = []
        cur.refills.append({"step": int(step), "target": target, "live": live, "admitted": admitted,
                            "joined": joined, "boring": boring, "library": str(self.library_dir),
                            "generator": summary, **({"error": error} if error else {})})
        log.info("refill @%d: admitted %s, joined %s, boring %s", step, admitted, joined, boring)

    def _join(self, hook, tasks: Sequence[str]) -> None:
        hook.dataset.add_stores(self.collect(tasks))   # first: a failure here leaves the pool untouched
        hook.curriculum.add_tasks(tasks)
        hook.dataset.set_task_weights(hook.curriculum.weights)

    def restore(self, hook) -> None:
        """After a resume: the tasks earlier refills added to the pool, registered and back in the
        dataset (their demos come from the demo store's cache)."""
        missing = [t for t in hook.curriculum.tasks if t not in hook.dataset.tasks]
        if not missing:
            return
        import envs

        envs.load_library(self.library_dir)
        hook.dataset.add_stores(self.collect(missing))
