# expect: runtime
# reason: ZeroDivisionError
"""Builds fine, then crashes when asked for its goals."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("crash_in_goals")
class CrashInGoals(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        ratio = 1 / 0
        return [On(self.top, self.base, xy_tol=ratio)]
