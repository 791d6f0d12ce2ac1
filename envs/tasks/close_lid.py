"""Put the lid on an open box."""
from envs.core import Covered, Task
from envs.registry import register_task


@register_task("close_lid")
class CloseLid(Task):
    instruction = "close the {box.color} box with the {lid.color} lid"
    features = frozenset({"box", "lid"})

    def build(self, scene, rng):
        cb, cl = scene.distinct_colors(2)
        self.box = scene.add_box(cb, size=(0.12, 0.12, 0.05))
        self.lid = scene.add_lid(cl, size=(0.13, 0.13))
        box_side = ["left", "right"][rng.integers(2)]   # the two are too wide to share one side
        scene.place_randomly([self.box], region=box_side)
        scene.place_randomly([self.lid], region="right" if box_side == "left" else "left")

    def goals(self):
        return [Covered(self.lid, self.box)]
