# expect: runtime
# reason: wall-clock limit
# static: skip
# limits: cpu=30 wall=4
"""Blocks without using CPU, so only the wall-clock limit can stop it."""
import time

from envs.core import On, Task
from envs.registry import register_task


@register_task("sleep_forever")
class SleepForever(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        time.sleep(3600)

    def goals(self):
        return [On(self.top, self.base)]
