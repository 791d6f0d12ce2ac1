# expect: oracle
# reason: oracle success 0%
"""The oracle is steered to a sub-goal that leaves the real goal unmet."""
from envs.core import InZone, On, Task
from envs.registry import register_task


@register_task("oracle_never_succeeds")
class OracleNeverSucceeds(Task):
    instruction = "stack the {top.color} block on the {base.color} block"
    max_episode_steps = 150

    def build(self, scene, rng):
        ct, cb, cz = scene.distinct_colors(3)
        self.top, self.base = scene.add_block(ct, name="top"), scene.add_block(cb, name="base")
        self.zone = scene.add_zone(cz, size=0.1)
        scene.place_randomly([self.zone, self.top, self.base], min_gap=0.04)

    def goals(self):
        return [On(self.top, self.base)]

    def oracle_goals(self):
        return [InZone(self.top, self.zone)]
