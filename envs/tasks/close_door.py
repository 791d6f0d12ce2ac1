"""Swing an open cabinet door shut by its handle."""
from envs.core import Closed, Task
from envs.registry import register_task


@register_task("close_door")
class CloseDoor(Task):
    instruction = "close the door of the {door.color} cabinet"
    features = frozenset({"door"})

    def build(self, scene, rng):
        self.door = scene.add_door(scene.distinct_colors(1)[0], open_fraction=rng.uniform(0.5, 0.9))
        scene.place_randomly([self.door], region="far")

    def goals(self):
        return [Closed(self.door)]
