"""Pick a block and place it in a coloured zone."""
from envs.core import InZone, Task
from envs.registry import register_task


@register_task("place_in_zone")
class PlaceInZone(Task):
    instruction = "put the {block.color} block in the {zone.color} zone"

    def build(self, scene, rng):
        cb, cz = scene.distinct_colors(2)
        self.zone = scene.add_zone(cz, size=0.1)
        self.block = scene.add_block(cb, size=0.04)
        scene.place_randomly([self.zone, self.block], min_gap=0.03)

    def goals(self):
        return [InZone(self.block, self.zone, margin=0.02)]
