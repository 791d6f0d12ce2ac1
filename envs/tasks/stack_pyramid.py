"""Build a pyramid: two blocks side by side, a third across them."""
from envs.core import Bridge, Near, Task
from envs.registry import register_task


@register_task("stack_pyramid")
class StackPyramid(Task):
    instruction = "make a pyramid: put the {right.color} block left of the {left.color} block and the {apex.color} block on both"
    max_episode_steps = 300

    def build(self, scene, rng):
        self.left, self.right, self.apex = (scene.add_block(c, size=0.04) for c in scene.distinct_colors(3))
        scene.place_randomly([self.left, self.right, self.apex], min_gap=0.05, yaw_range=0.0)  # square to the gripper

    def goals(self):
        return [Near(self.right, self.left, direction="left", gap=0.05, tol=0.015),
                Bridge(self.apex, self.left, self.right)]
