# expect: runtime
# reason: different set of objects|must not depend on the seed
"""Adds a different number of blocks per seed (observation spaces would change)."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("seed_dependent_objects")
class SeedDependentObjects(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        colors = scene.distinct_colors(5)
        self.top, self.base = scene.add_block(colors[0]), scene.add_block(colors[1])
        extra = [scene.add_block(c) for c in colors[2:2 + int(rng.integers(0, 3))]]
        scene.place_randomly([self.top, self.base] + extra)

    def goals(self):
        return [On(self.top, self.base)]
