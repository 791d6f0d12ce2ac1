# expect: runtime
# reason: sandbox violation: file write outside the sandbox
# static: skip
"""Writes into the sentinel dir from inside the sandbox."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("write_outside")
class WriteOutside(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        with open("/tmp/roboforge_sentinel/pwned", "w") as f:
            f.write("owned")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
