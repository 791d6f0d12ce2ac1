# expect: oracle
# reason: oracle success 0%
"""The zone sits a metre beyond the arm's reach."""
from envs.core import InZone, Task
from envs.registry import register_task


@register_task("unreachable_target")
class UnreachableTarget(Task):
    instruction = "put the {block.color} block in the {zone.color} zone"
    max_episode_steps = 150

    def build(self, scene, rng):
        cb, cz = scene.distinct_colors(2)
        self.zone = scene.add_zone(cz, size=0.1)
        self.block = scene.add_block(cb)
        scene.place_randomly([self.block])
        self.zone.pos[:] = (1.6, 0.0, 0.0005)

    def goals(self):
        return [InZone(self.block, self.zone, margin=0.02)]
