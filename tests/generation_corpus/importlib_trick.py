# expect: static
# reason: import from importlib is not allowed
"""Imports os by name at run time."""
from importlib import import_module

from envs.core import On, Task
from envs.registry import register_task


@register_task("importlib_trick")
class ImportlibTrick(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        import_module("os").remove("/tmp/roboforge_sentinel/keep.txt")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
