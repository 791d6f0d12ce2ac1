"""The held-out variants (see the package docstring): each a known skill on a new object or in a
new arrangement; the instructions use the built-in tasks' wording, so the offline sub-goal
parser and the instruction encoder see familiar phrases."""
from envs.core import InZone, On, Task
from envs.registry import register_task


@register_task("heldout_cylinder_in_zone")
class CylinderInZone(Task):
    """place_in_zone's goal on stack_cylinder's object."""

    instruction = "put the {cyl.color} cylinder in the {zone.color} zone"

    def build(self, scene, rng):
        cc, cz = scene.distinct_colors(2)
        self.zone = scene.add_zone(cz, size=0.1)
        self.cyl = scene.add_cylinder(cc, radius=0.02, height=0.04)
        scene.place_randomly([self.zone, self.cyl], min_gap=0.03)

    def goals(self):
        return [InZone(self.cyl, self.zone, margin=0.02)]


@register_task("heldout_block_in_bowl")
class BlockInBowl(Task):
    """place_in_bowl's goal on stack_blocks' object (a 3 cm block fits the 6 cm bowl)."""

    instruction = "put the {block.color} block in the {bowl.color} bowl"
    features = frozenset({"bowl"})

    def build(self, scene, rng):
        cb, cw = scene.distinct_colors(2)
        self.bowl = scene.add_bowl(cw, radius=0.06, height=0.03)
        self.block = scene.add_block(cb, size=0.03)
        scene.place_randomly([self.bowl, self.block], min_gap=0.04)

    def goals(self):
        return [InZone(self.block, self.bowl, margin=0.015)]


@register_task("heldout_stack_distractor")
class StackWithDistractor(Task):
    """stack_blocks with a third block on the table that must be left alone."""

    instruction = "stack the {top.color} block on the {base.color} block"
    max_episode_steps = 200

    def build(self, scene, rng):
        top_color, base_color, other_color = scene.distinct_colors(3)
        self.top = scene.add_block(top_color, size=0.04, name="top")
        self.base = scene.add_block(base_color, size=0.04, name="base")
        self.other = scene.add_block(other_color, size=0.04, name="other")
        scene.place_randomly([self.top, self.base, self.other], region="table", min_gap=0.04)

    def goals(self):
        return [On(self.top, self.base)]
