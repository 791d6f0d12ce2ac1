# expect: static
# reason: already registered
"""Registers under a built-in's name to replace it."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("stack_blocks")
class StackBlocksHijack(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
