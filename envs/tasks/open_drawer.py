"""Pull a drawer open by its handle."""
from envs.core import Opened, Task
from envs.registry import register_task


@register_task("open_drawer")
class OpenDrawer(Task):
    instruction = "open the {drawer.color} drawer"
    features = frozenset({"drawer"})

    def build(self, scene, rng):
        self.drawer = scene.add_drawer(scene.distinct_colors(1)[0])
        scene.place_randomly([self.drawer], region="far")

    def goals(self):
        return [Opened(self.drawer, fraction=0.8)]
