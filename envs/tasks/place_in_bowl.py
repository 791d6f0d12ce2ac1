"""Pick a cylinder and drop it into a bowl."""
from envs.core import InZone, Task
from envs.registry import register_task


@register_task("place_in_bowl")
class PlaceInBowl(Task):
    instruction = "put the {item.color} cylinder in the {bowl.color} bowl"
    features = frozenset({"bowl"})

    def build(self, scene, rng):
        ci, cb = scene.distinct_colors(2)
        self.bowl = scene.add_bowl(cb, radius=0.06, height=0.03)
        self.item = scene.add_cylinder(ci, radius=0.018, height=0.05)
        scene.place_randomly([self.bowl, self.item], min_gap=0.04)

    def goals(self):
        return [InZone(self.item, self.bowl, margin=0.015)]
