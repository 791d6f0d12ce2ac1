"""GenSim-style task generation: propose -> write code -> validate in a sandbox -> admit.

Modules: ``proposal`` (what to build: the procedural space, novelty-first exploration,
curricula), ``codegen_procedural`` (drafts -> task source), ``codegen_llm`` (prompts and answer
parsing for the LLM generator), ``static`` + ``sandbox`` + ``runner`` + ``gates`` (validation),
``embedding`` (novelty, retrieval, diversity), ``library`` (atomic admission, loading),
``pipeline`` (the generation loop), ``report`` and ``cli``. See docs/generation.md.

Importing this package is light; the embedding model and the simulator load on first use.
"""
from envs.generation.library import Library, LibraryError, load_library

__all__ = ["Library", "LibraryError", "load_library"]
