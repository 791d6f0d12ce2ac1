# expect: runtime
# reason: already hold at reset
"""A tolerance so loose that the goal holds before the robot moves."""
from envs.core import AtPose, Task
from envs.registry import register_task


@register_task("success_at_reset")
class SuccessAtReset(Task):
    instruction = "move the {block.color} block somewhere on the table"

    def build(self, scene, rng):
        self.block = scene.add_block(scene.distinct_colors(1)[0])
        scene.place_randomly([self.block])

    def goals(self):
        return [AtPose(self.block, xy=(0.5, 0.0), tol=1.0)]
