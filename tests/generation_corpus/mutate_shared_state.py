# expect: static
# reason: shared state
"""Repaints the palette every other task uses (through an alias)."""
from envs.core import COLORS, On, Task
from envs.registry import register_task


@register_task("mutate_shared_state")
class MutateSharedState(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        palette = COLORS
        palette["red"] = (0.0, 0.0, 0.0, 1.0)
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
