# expect: runtime
# reason: CPU-time limit|wall-clock limit
# limits: cpu=4 wall=30
"""Never finishes building its scene."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("infinite_loop")
class InfiniteLoop(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        n = 0
        while n >= 0:
            n += 1
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")

    def goals(self):
        return [On(self.top, self.base)]
