"""``python -m envs.generation ...``: an alias of ``python -m generation ...``.

Run by name (runpy), not imported, so that envs keeps no import of the pipeline above it.
"""
import runpy

runpy.run_module("generation", run_name="__main__", alter_sys=True)
