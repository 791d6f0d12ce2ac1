# expect: static
# reason: from threading is not allowed
"""Starts a thread that outlives the episode."""
from threading import Thread

from envs.core import On, Task
from envs.registry import register_task


def spin():
    while True:
        pass


@register_task("lingering_thread")
class LingeringThread(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        Thread(target=spin, daemon=False).start()
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
