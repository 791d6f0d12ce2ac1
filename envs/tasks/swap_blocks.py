"""Swap the places of two blocks (the oracle parks one in a free spot first)."""
import numpy as np

from envs.core import AtPose, Task
from envs.registry import register_task


@register_task("swap_blocks")
class SwapBlocks(Task):
    instruction = "swap the positions of the {a.color} block and the {b.color} block"
    max_episode_steps = 400

    def build(self, scene, rng):
        ca, cb = scene.distinct_colors(2)
        self.a = scene.add_block(ca, size=0.04, name="a")
        self.b = scene.add_block(cb, size=0.04, name="b")
        self.parking = scene.add_zone("gray", size=0.06, name="parking")
        scene.place_randomly([self.a, self.b, self.parking], min_gap=0.05)
        self.start_a, self.start_b = tuple(self.a.pos[:2]), tuple(self.b.pos[:2])

    def goals(self):
        return [AtPose(self.a, xy=self.start_b), AtPose(self.b, xy=self.start_a)]

    def oracle_goals(self):
        park = tuple(np.asarray(self.parking.pos[:2]))
        return [AtPose(self.a, xy=park), AtPose(self.b, xy=self.start_a), AtPose(self.a, xy=self.start_b)]
