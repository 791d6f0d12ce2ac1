# expect: runtime
# reason: memory
"""Allocates until something gives."""
import numpy as np

from envs.core import On, Task
from envs.registry import register_task


@register_task("memory_hog")
class MemoryHog(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.hoard = []
        while len(self.hoard) < 10_000:
            self.hoard.append(np.empty(50_000_000))
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")

    def goals(self):
        return [On(self.top, self.base)]
