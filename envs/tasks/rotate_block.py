"""Turn an oblong block in place until its long side points away from the robot."""
import numpy as np

from envs.core import AtPose, Task
from envs.registry import register_task


@register_task("rotate_block")
class RotateBlock(Task):
    instruction = "turn the {bar.color} bar in place so that it points away from you"

    def build(self, scene, rng):
        self.bar = scene.add_block(scene.distinct_colors(1)[0], size=(0.06, 0.03, 0.03))
        scene.place_randomly([self.bar])
        # 45-90 degrees off the goal (an oblong block repeats every half turn, so 90 is the most)
        self.bar.yaw = float(rng.choice([-1.0, 1.0]) * rng.uniform(np.pi / 4, np.pi / 2))
        self.spot = (float(self.bar.pos[0]), float(self.bar.pos[1]))

    def goals(self):
        return [AtPose(self.bar, xy=self.spot, tol=0.02, yaw=0.0, yaw_tol=0.1)]
