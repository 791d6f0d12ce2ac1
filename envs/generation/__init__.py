"""Old home of task generation, kept so ``python -m envs.generation ...`` still works.

The pipeline is the top-level package :mod:`generation` (above planners); loading a library is
:func:`envs.load_library`. This package imports neither: envs never depends on the pipeline.
"""
