"""Put one cube onto another cube.

A renamed and reworded copy of the built-in stack_blocks, written the way a new user would try
it: other attribute names, "cube" for "block", "place onto" for "stack on". The text gate alone
admitted such a copy; the structural check must name stack_blocks.
"""
from envs.core import On, Task
from envs.registry import register_task


@register_task("cube_onto_cube")
class CubeOntoCube(Task):
    instruction = "pick up the {mover.color} cube and place it onto the {support.color} cube"
    max_episode_steps = 200

    def build(self, scene, rng):
        first, second = scene.distinct_colors(2)
        self.mover = scene.add_block(first, size=0.04, name="mover")
        self.support = scene.add_block(second, size=0.04, name="support")
        scene.place_randomly([self.support, self.mover], region="table", min_gap=0.04)

    def goals(self):
        return [On(self.mover, self.support)]
