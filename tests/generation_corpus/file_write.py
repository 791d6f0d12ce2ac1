# expect: static
# reason: use of 'open'
"""Writes outside its sandbox."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("file_write")
class FileWrite(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        with open("/tmp/roboforge_sentinel/pwned", "w") as f:
            f.write("owned")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
