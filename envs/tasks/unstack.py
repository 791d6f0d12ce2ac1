"""Take the top block off a stack and put it in a zone."""
from envs.core import InZone, Task
from envs.registry import register_task


@register_task("unstack")
class Unstack(Task):
    instruction = "take the {top.color} block off the {base.color} block and put it in the {zone.color} zone"

    def build(self, scene, rng):
        ct, cb, cz = scene.distinct_colors(3)
        self.base = scene.add_block(cb, size=0.045, name="base")
        self.top = scene.add_block(ct, size=0.04, name="top")
        self.zone = scene.add_zone(cz, size=0.1)
        scene.place_randomly([self.zone, self.base], min_gap=0.04)  # largest first: it needs the most room
        scene.place_on(self.top, self.base)

    def goals(self):
        return [InZone(self.top, self.zone, margin=0.02)]
