"""Swing a cabinet door open by its handle."""
from envs.core import Opened, Task
from envs.registry import register_task


@register_task("open_door")
class OpenDoor(Task):
    instruction = "open the door of the {door.color} cabinet"
    features = frozenset({"door"})

    def build(self, scene, rng):
        self.door = scene.add_door(scene.distinct_colors(1)[0])
        scene.place_randomly([self.door], region="far")

    def goals(self):
        return [Opened(self.door, fraction=0.8)]
