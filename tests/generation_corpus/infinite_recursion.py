# expect: runtime
# reason: RecursionError
"""A helper that calls itself forever."""
from envs.core import On, Task
from envs.registry import register_task


def depth(n):
    return depth(n + 1) + 1


@register_task("infinite_recursion")
class InfiniteRecursion(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        depth(0)
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")

    def goals(self):
        return [On(self.top, self.base)]
