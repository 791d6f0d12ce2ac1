# expect: runtime
# reason: sandbox violation: starting or signalling processes is not allowed
# static: skip
"""Starts a detached process meant to outlive validation."""
import subprocess

from envs.core import On, Task
from envs.registry import register_task


@register_task("spawn_process")
class SpawnProcess(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        subprocess.Popen(["sh", "-c", "sleep 5; touch /tmp/roboforge_sentinel/late"], start_new_session=True)
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
