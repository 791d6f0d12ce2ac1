"""Put a cylinder on top of a block."""
from envs.core import On, Task
from envs.registry import register_task


@register_task("stack_cylinder")
class StackCylinder(Task):
    instruction = "put the {cyl.color} cylinder on the {block.color} block"

    def build(self, scene, rng):
        c1, c2 = scene.distinct_colors(2)
        self.cyl = scene.add_cylinder(c1, radius=0.02, height=0.04)
        self.block = scene.add_block(c2, size=0.05)
        scene.place_randomly([self.cyl, self.block], min_gap=0.04)

    def goals(self):
        return [On(self.cyl, self.block)]
