# expect: static
# reason: module-level
"""Does work at import time, before any gate could watch it."""
from envs.core import On, Task
from envs.registry import register_task

PRIMES = [n for n in range(2, 10**8) if all(n % d for d in range(2, n))]


@register_task("module_side_effect")
class ModuleSideEffect(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
