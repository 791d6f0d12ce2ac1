"""Stack three blocks into a tower."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("stack_tower")
class StackTower(Task):
    instruction = "build a tower: the {b1.color} block on the {b0.color} block, then the {b2.color} block on top"
    max_episode_steps = 300

    def build(self, scene, rng):
        self.b0, self.b1, self.b2 = (scene.add_block(c, size=0.04) for c in scene.distinct_colors(3))
        scene.place_randomly([self.b0, self.b1, self.b2], min_gap=0.04)

    def goals(self):
        return [On(self.b1, self.b0), On(self.b2, self.b1)]
