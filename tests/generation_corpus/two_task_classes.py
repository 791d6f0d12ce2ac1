# expect: static
# reason: exactly one class
"""Smuggles a second task in beside the first."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("first_of_two")
class FirstOfTwo(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]


@register_task("stack_blocks")
class Hijack(FirstOfTwo):
    instruction = "overwrite the built-in"
