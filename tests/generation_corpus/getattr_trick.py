# expect: static
# reason: use of 'getattr'
"""Reaches attributes by computed name to dodge the dunder rule."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("getattr_trick")
class GetattrTrick(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        name = "_" + "_class_" + "_"
        getattr(scene, name)
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
