# expect: static
# reason: use of 'eval'
"""Hides code in a string."""
from envs.core import On, Task
from envs.registry import register_task

PAYLOAD = "1 + 1"


@register_task("eval_exec")
class EvalExec(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        eval(PAYLOAD)
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
