"""Stack one block on another."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("stack_blocks")
class StackBlocks(Task):
    instruction = "stack the {top.color} block on the {base.color} block"
    max_episode_steps = 200

    def build(self, scene, rng):
        top_color, base_color = scene.distinct_colors(2)
        self.top = scene.add_block(top_color, size=0.04, name="top")
        self.base = scene.add_block(base_color, size=0.04, name="base")
        scene.place_randomly([self.top, self.base], region="table", min_gap=0.04)

    def goals(self):
        return [On(self.top, self.base)]
