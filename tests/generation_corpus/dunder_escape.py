# expect: static
# reason: attribute '__class__'
"""Classic sandbox escape: walk from a tuple to object's subclasses to find os."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("dunder_escape")
class DunderEscape(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        for cls in ().__class__.__bases__[0].__subclasses__():
            if cls.__name__ == "Popen":
                cls(["touch", "/tmp/roboforge_sentinel/pwned"])
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
