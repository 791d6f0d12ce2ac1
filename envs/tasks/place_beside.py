"""Place one block beside another, on a side named in the instruction."""
from envs.core import Near, Task
from envs.registry import register_task

SIDES = ("left", "right", "front", "behind")
WORDS = {"left": "to the left of", "right": "to the right of", "front": "in front of", "behind": "behind"}


@register_task("place_beside")
class PlaceBeside(Task):
    instruction = "put the {block.color} block {relation} the {anchor.color} block"

    def build(self, scene, rng):
        c1, c2 = scene.distinct_colors(2)
        self.side = SIDES[rng.integers(len(SIDES))]
        self.relation = WORDS[self.side]
        self.anchor = scene.add_block(c2, size=0.04, name="anchor")
        self.block = scene.add_block(c1, size=0.04, name="block")
        # the anchor stays away from the region's edge so every side has room
        scene.place_randomly([self.anchor], region="table", min_gap=0.0)
        self.anchor.pos[:2] = [min(max(self.anchor.pos[0], 0.46), 0.54), min(max(self.anchor.pos[1], -0.1), 0.1)]
        scene.place_randomly([self.block], min_gap=0.06)

    def goals(self):
        return [Near(self.block, self.anchor, direction=self.side, gap=0.07)]
