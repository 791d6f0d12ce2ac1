# expect: novelty
# reason: too similar to 'stack_blocks'
"""Stack one block onto another."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("pile_two_blocks")
class PileTwoBlocks(Task):
    instruction = "put the {upper.color} block on top of the {lower.color} block"
    max_episode_steps = 200

    def build(self, scene, rng):
        upper_color, lower_color = scene.distinct_colors(2)
        self.upper = scene.add_block(upper_color, size=0.045, name="upper")
        self.lower = scene.add_block(lower_color, size=0.045, name="lower")
        scene.place_randomly([self.upper, self.lower], region="table", min_gap=0.04)

    def goals(self):
        return [On(self.upper, self.lower)]
