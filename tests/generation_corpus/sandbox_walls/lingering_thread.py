# expect: runtime
# reason: left 1 thread\(s\) running
# static: skip
"""Starts a thread that never ends; it must not keep the sandbox (or the verdict) alive."""
import threading

from envs.core import On, Task
from envs.registry import register_task


def spin():
    while True:
        threading.Event().wait(0.05)


@register_task("lingering_thread_dyn")
class LingeringThreadDyn(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        if not any(t.name == "spinner" for t in threading.enumerate()):
            threading.Thread(target=spin, name="spinner").start()
        ct, cb = scene.distinct_colors(2)
        self.top, self.base = scene.add_block(ct), scene.add_block(cb)
        scene.place_randomly([self.top, self.base], min_gap=0.04)

    def goals(self):
        return [On(self.top, self.base)]
