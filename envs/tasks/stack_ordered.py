"""Stack blocks in a colour order read from the instruction (red, green, blue from the bottom)."""
from envs.core import On, Task
from envs.registry import register_task

ORDER = ("red", "green", "blue")


@register_task("stack_ordered")
class StackOrdered(Task):
    instruction = "stack the blocks red at the bottom, then green, then blue on top"
    max_episode_steps = 300

    def build(self, scene, rng):
        self.red, self.green, self.blue = (scene.add_block(c, size=0.04, name=c) for c in ORDER)
        scene.place_randomly([self.red, self.green, self.blue], min_gap=0.04)

    def goals(self):
        return [On(self.green, self.red), On(self.blue, self.green)]
