"""Gather two blocks into one zone."""
from envs.core import InZone, Task
from envs.registry import register_task


@register_task("place_two_in_zone")
class PlaceTwoInZone(Task):
    instruction = "put both the {a.color} and the {b.color} blocks in the {zone.color} zone"
    max_episode_steps = 300

    def build(self, scene, rng):
        ca, cb, cz = scene.distinct_colors(3)
        self.zone = scene.add_zone(cz, size=(0.1, 0.16))
        self.a = scene.add_block(ca, size=0.04, name="a")
        self.b = scene.add_block(cb, size=0.04, name="b")
        scene.place_randomly([self.zone, self.a, self.b], min_gap=0.03)

    def goals(self):
        return [InZone(self.a, self.zone, margin=0.015, offset=(0, 0.04)),
                InZone(self.b, self.zone, margin=0.015, offset=(0, -0.04))]
