# expect: static
# reason: strings may not contain '__'
"""The instruction template walks into globals when formatted."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("format_string_leak")
class FormatStringLeak(Task):
    instruction = "stack {top.__class__.__init__.__globals__} on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
