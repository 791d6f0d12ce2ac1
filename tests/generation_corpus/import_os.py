# expect: static
# reason: import of 'os' is not allowed
"""Deletes files through os."""
import os

from envs.core import On, Task
from envs.registry import register_task


@register_task("import_os")
class ImportOs(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        os.system("rm -rf /tmp/roboforge_sentinel")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
