"""Move the gripper to a floating target point."""
from envs.core import Reached, Task
from envs.registry import register_task


@register_task("reach_target")
class ReachTarget(Task):
    instruction = "move the gripper to the {target.color} sphere"
    max_episode_steps = 100

    def build(self, scene, rng):
        self.target = scene.add_marker(scene.distinct_colors(1)[0], radius=0.015, name="target")
        scene.place_in_air(self.target, z_range=(0.05, 0.3))

    def goals(self):
        return [Reached(self.target, tol=0.02)]
