"""Pick a block and put it in an open box."""
from envs.core import InContainer, Task
from envs.registry import register_task


@register_task("put_in_box")
class PutInBox(Task):
    instruction = "put the {item.color} block in the {box.color} box"
    features = frozenset({"box"})

    def build(self, scene, rng):
        ci, cb = scene.distinct_colors(2)
        self.box = scene.add_box(cb, size=(0.14, 0.14, 0.06))
        self.item = scene.add_block(ci, size=0.04)
        scene.place_randomly([self.box, self.item], min_gap=0.04)

    def goals(self):
        return [InContainer(self.item, self.box)]
