# expect: static
# reason: syntax error at line
"""An LLM answer cut off mid-method."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("syntax_error")
class SyntaxErrorTask(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue"
        scene.place_randomly([self.top, self.base])
