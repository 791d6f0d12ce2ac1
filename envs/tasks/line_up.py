"""Line three blocks up left to right next to the first one."""
from envs.core import Near, Task
from envs.registry import register_task


@register_task("line_up")
class LineUp(Task):
    instruction = "line up the {b1.color} and {b2.color} blocks to the left of the {b0.color} block"
    max_episode_steps = 300

    def build(self, scene, rng):
        self.b0, self.b1, self.b2 = (scene.add_block(c, size=0.04) for c in scene.distinct_colors(3))
        scene.place_randomly([self.b0], region="right", min_gap=0.0)
        scene.place_randomly([self.b1, self.b2], region="table", min_gap=0.05)

    def goals(self):
        return [Near(self.b1, self.b0, direction="left", gap=0.065),
                Near(self.b2, self.b1, direction="left", gap=0.065)]
