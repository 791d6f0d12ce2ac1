"""Push a block along the table into a zone (non-prehensile)."""
from envs.core import Pushed, Task
from envs.registry import register_task


@register_task("push_to_zone")
class PushToZone(Task):
    instruction = "push the {block.color} block into the {zone.color} zone"

    def build(self, scene, rng):
        cb, cz = scene.distinct_colors(2)
        self.block = scene.add_block(cb, size=0.04)
        self.zone = scene.add_zone(cz, size=0.1)
        scene.place_randomly([self.zone, self.block], min_gap=0.04)  # largest first: it needs the most room

    def goals(self):
        return [Pushed(self.block, self.zone, margin=0.02)]
