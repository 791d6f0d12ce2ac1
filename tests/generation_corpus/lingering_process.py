# expect: static
# reason: import of 'subprocess' is not allowed
"""Leaves a background process running after validation."""
import subprocess

from envs.core import On, Task
from envs.registry import register_task


@register_task("lingering_process")
class LingeringProcess(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        subprocess.Popen(["sh", "-c", "sleep 30; touch /tmp/roboforge_sentinel/late"], start_new_session=True)
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
