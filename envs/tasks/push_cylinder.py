"""Push an upright cylinder to a zone without picking it up."""
from envs.core import Pushed, Task
from envs.registry import register_task


@register_task("push_cylinder")
class PushCylinder(Task):
    instruction = "slide the {cyl.color} cylinder into the {zone.color} zone"

    def build(self, scene, rng):
        cc, cz = scene.distinct_colors(2)
        self.cyl = scene.add_cylinder(cc, radius=0.025, height=0.04, mass=0.1)
        self.zone = scene.add_zone(cz, size=0.1)
        scene.place_randomly([self.cyl, self.zone], min_gap=0.03)

    def goals(self):
        return [Pushed(self.cyl, self.zone, margin=0.025)]
