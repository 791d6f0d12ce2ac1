# expect: static
# reason: may not be overridden
"""Declares success by fiat so the oracle gate passes without doing anything."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("override_evaluate")
class OverrideEvaluate(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])
        self.calls = 0

    def goals(self):
        return [On(self.top, self.base)]

    def evaluate(self, state, goals=None):
        self.calls += 1
        return {"success": self.calls > 3, "released": True, "at_rest": True}
