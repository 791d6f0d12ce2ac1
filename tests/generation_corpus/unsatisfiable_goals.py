# expect: oracle
# reason: oracle success 0%
"""Each block must be on top of the other: no state satisfies both."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("unsatisfiable_goals")
class UnsatisfiableGoals(Task):
    instruction = "put the {a.color} block on the {b.color} block and the {b.color} block on the {a.color} block"
    max_episode_steps = 200

    def build(self, scene, rng):
        ca, cb = scene.distinct_colors(2)
        self.a, self.b = scene.add_block(ca, name="a"), scene.add_block(cb, name="b")
        scene.place_randomly([self.a, self.b], min_gap=0.05)

    def goals(self):
        return [On(self.a, self.b), On(self.b, self.a)]
