"""GenSim-style task generation: propose -> write code -> validate in a sandbox -> admit.

It sits above planners (it uses the task API, the goal-derived oracle and the LLM client);
nothing below imports it. Loading an admitted library is :func:`envs.load_library`.

Modules: ``proposals`` (what to build: the draft catalogue, novelty-first exploration,
curricula, drafts of registered tasks), ``codegen_procedural`` (drafts -> task source),
``codegen_llm`` (prompts and answer parsing for the LLM generator), ``sandbox`` + ``runner`` +
``gates`` (validation; the static gate is :mod:`envs.static_check`), ``embedding`` (novelty,
retrieval, diversity), ``library`` (atomic admission, the journal), ``pipeline`` (the
generation loop), ``report`` and ``cli`` (``python -m generation``). See docs/generation.md.

Importing this package is light (the sandbox runner imports it inside the sandbox); the
embedding model and the simulator load on first use.
"""
