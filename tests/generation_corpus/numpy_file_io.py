# expect: static
# reason: attribute 'save'
"""Writes a file through numpy instead of open()."""
import numpy as np

from envs.core import On, Task
from envs.registry import register_task


@register_task("numpy_file_io")
class NumpyFileIo(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        np.save("/tmp/roboforge_sentinel/pwned.npy", np.zeros(3))
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
