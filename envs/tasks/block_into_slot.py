"""Lower an oblong block into a turned slot 3 mm wider than it on every side: turn, align, insert."""
import numpy as np

from envs.core import Inserted, Task
from envs.registry import register_task

BLOCK, CLEARANCE = (0.06, 0.03, 0.06), 0.003  # m


@register_task("block_into_slot")
class BlockIntoSlot(Task):
    instruction = "put the {block.color} block into the {slot.color} slot"
    max_episode_steps = 300
    features = frozenset({"socket"})

    def build(self, scene, rng):
        cb, cs = scene.distinct_colors(2)
        self.slot = scene.add_socket(cs, hole=(BLOCK[0] + 2 * CLEARANCE, BLOCK[1] + 2 * CLEARANCE), depth=0.03)
        self.block = scene.add_block(cb, size=BLOCK)
        scene.place_randomly([self.slot], min_gap=0.04, yaw_range=np.pi / 2)
        scene.place_randomly([self.block], min_gap=0.04, yaw_range=np.pi / 2)

    def goals(self):
        return [Inserted(self.block, self.slot)]
