# expect: runtime
# reason: KeyError
"""The instruction names an attribute the task never sets."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("broken_instruction")
class BrokenInstruction(Task):
    instruction = "stack the {top.color} block on the {bottom.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
