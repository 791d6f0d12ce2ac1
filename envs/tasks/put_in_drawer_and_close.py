"""Open a drawer, put a block in it, close it."""
from envs.core import Closed, InContainer, Opened, Task
from envs.registry import register_task


@register_task("put_in_drawer_and_close")
class PutInDrawerAndClose(Task):
    instruction = "open the {drawer.color} drawer, put the {item.color} block in it and close it"
    features = frozenset({"drawer"})
    max_episode_steps = 500

    def build(self, scene, rng):
        cd, ci = scene.distinct_colors(2)
        self.drawer = scene.add_drawer(cd)
        self.item = scene.add_block(ci, size=0.03)
        side = 1.0 if rng.random() < 0.5 else -1.0   # the block waits beside the drawer's path
        self.drawer.pos = [rng.uniform(0.58, 0.61), side * rng.uniform(0.05, 0.08), self.drawer.half_size[2]]
        self.item.pos = [rng.uniform(0.40, 0.50), -side * rng.uniform(0.1, 0.16), self.item.half_size[2]]
        self.item.yaw = rng.uniform(-0.6, 0.6)

    def goals(self):
        return [InContainer(self.item, self.drawer), Closed(self.drawer)]

    def oracle_goals(self):
        return [Opened(self.drawer, fraction=0.9), InContainer(self.item, self.drawer), Closed(self.drawer)]
