"""Fit an oblong block into a turned outline of its own shape: edges lined up, centred."""
import numpy as np

from envs.core import Aligned, Task
from envs.registry import register_task


@register_task("align_block")
class AlignBlock(Task):
    instruction = "fit the {bar.color} bar into the {zone.color} outline, lined up with it"

    def build(self, scene, rng):
        cb, cz = scene.distinct_colors(2)
        self.zone = scene.add_zone(cz, size=(0.08, 0.05))
        self.bar = scene.add_block(cb, size=(0.06, 0.03, 0.03))
        scene.place_randomly([self.zone], min_gap=0.03, yaw_range=np.pi / 2)
        scene.place_randomly([self.bar], min_gap=0.03, yaw_range=np.pi / 2)

    def goals(self):
        return [Aligned(self.bar, self.zone, yaw_tol=0.1, xy_tol=0.015)]
