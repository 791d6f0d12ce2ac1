# expect: runtime
# reason: sandbox violation: (starting or signalling processes|file-system change outside)
# static: skip
"""Deletes the sentinel through os and a shell."""
import os

from envs.core import On, Task
from envs.registry import register_task


@register_task("delete_outside")
class DeleteOutside(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        os.remove("/tmp/roboforge_sentinel/keep.txt")
        os.system("rm -rf /tmp/roboforge_sentinel")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
