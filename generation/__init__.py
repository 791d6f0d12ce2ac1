"""GenSim-style task generation: propose -> write code -> validate in a sandbox -> admit.

It sits above planners (it uses the task API, the goal-derived oracle and the LLM client);
nothing below imports it. Loading an admitted library is :func:`envs.load_library`.

Modules, by concern:
- what to build: ``proposal`` (a task idea), ``catalogue`` (every procedural draft, as data),
  ``compose`` (drafts of two sub-tasks side by side, from a table of sub-tasks),
  ``exploration`` (novelty-first search), ``curriculum`` (stepping stones towards a target),
  ``from_task`` (a registered task described as a draft);
- writing code: ``codegen_procedural`` (the draft types, drafts -> task source), ``codegen_llm``
  (prompts and answer parsing for the LLM generator, over :mod:`llm`);
- validation: ``gates`` (in order; the static gate is :mod:`envs.static_check`), ``sandbox`` +
  ``isolation`` + ``runner`` (the sandboxed runtime and oracle gates), ``embedding`` (novelty,
  retrieval, diversity), ``structure`` (structural novelty: goal graph + scene signature);
- the rest: ``library`` (atomic admission, the journal), ``pipeline`` (the generation loop),
  ``report`` and ``cli`` (``python -m generation``). See docs/generation.md.

Importing this package is light (the sandbox runner imports it inside the sandbox); the
embedding model and the simulator load on first use.
"""
